from concurrent.futures import ThreadPoolExecutor

from tagport.secret_files import read_or_create


def test_a_secret_is_made_once_private_and_read_back(tmp_path):
    path = tmp_path / "s.secret"
    first = read_or_create(path)
    assert len(first) >= 32 and read_or_create(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["s.secret"]


def test_racing_creators_all_read_the_same_non_empty_secret(tmp_path):
    for n in range(20):
        path = tmp_path / f"s{n}.secret"
        with ThreadPoolExecutor(8) as pool:
            seen = set(pool.map(read_or_create, [path] * 8))
        assert len(seen) == 1 and "" not in seen
