import re
from datetime import datetime

from tagport.exports import naming
from tagport.exports.formats import FileFormat, OutputFormat


def test_job_id_is_eight_letters_or_digits():
    for _ in range(200):
        assert re.fullmatch(r"[A-Za-z0-9]{8}", naming.new_job_id())


def test_job_name_is_des_minute_and_thirteen_digits():
    name = naming.new_job_name(datetime(2022, 5, 24, 1, 36))
    assert re.fullmatch(r"DES-202205240136-\d{13}", name)


def test_file_name_is_display_name_date_and_userlist():
    day = datetime(2026, 11, 28, 23, 59)
    assert naming.result_file_name("会员等级", day, OutputFormat(FileFormat.CSV)) == "会员等级_2026-11-28_UserList.csv"
    assert naming.result_file_name("会员等级", day, OutputFormat(FileFormat.JSON)) == "会员等级_2026-11-28_UserList.json"


def test_unsafe_characters_in_the_display_name_are_replaced():
    day = datetime(2026, 1, 2)
    assert naming.result_file_name('a/b\\c:d*e?f"g<h>i|j\nk', day, OutputFormat(FileFormat.CSV)) == (
        "a_b_c_d_e_f_g_h_i_j_k_2026-01-02_UserList.csv"
    )
    assert naming.result_file_name("../..", day, OutputFormat(FileFormat.CSV)) == "__2026-01-02_UserList.csv"  # no leading dots: never a hidden file


def test_overlong_display_names_are_cut_to_fit_a_file_name():
    name = naming.result_file_name("长" * 300, datetime(2026, 1, 2), OutputFormat(FileFormat.CSV))
    assert len(name.encode()) <= 255


def test_uri_is_percent_encoded_like_the_seed():
    path = naming.result_path(
        "DES-202205240136-5818534160000", "zxm_用户_字符串_加密_2022-04-26_UserList.json"
    )
    assert naming.encode_uri(path) == (
        "%2Fjobs%2Fresults%2FDES-202205240136-5818534160000%2Fzxm_%E7%94%A8%E6%88%B7_"
        "%E5%AD%97%E7%AC%A6%E4%B8%B2_%E5%8A%A0%E5%AF%86_2022-04-26_UserList.json"
    )
