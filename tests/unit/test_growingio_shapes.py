"""GrowingIO's user shape: values as strings, doubles exactly as the CSV export writes them."""

from __future__ import annotations

import io
import random
import struct

import pyarrow as pa
import pyarrow.csv as pacsv

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.profiles.growingio import csv_double, growingio_user

E = CatalogEntry


def test_doubles_are_written_as_the_csv_export_writes_them():
    rng = random.Random(7)
    values = [0.0, -0.0, 3.0, 1.5, 1e10, 9999999999.0, 1e-6, 1e-7, 1 / 3, 5e-324,
              1.7976931348623157e308, -2.5e-300]
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(5000)]
    values += [rng.uniform(-1e7, 1e7) for _ in range(5000)]
    values = [v for v in values if v == v and abs(v) != float("inf")]
    out = io.BytesIO()
    pacsv.write_csv(pa.table({"x": pa.array(values, pa.float64())}), out)
    assert [csv_double(v) for v in values] == out.getvalue().decode().splitlines()[1:]


def test_a_user_has_a_string_id_identity_lists_and_string_values():
    entries = [E("id_u", Kind.IDENTITY, "用户", ValueType.STRING),
               E("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
               E("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
               E("usr_b", Kind.ATTRIBUTE, "余额", ValueType.DOUBLE),
               E("usr_day", Kind.ATTRIBUTE, "生日", ValueType.DATE),
               E("tag_n", Kind.TAG, "数组", ValueType.INT, is_array=True),
               E("tag_rfm", Kind.TAG, "等级", ValueType.STRING)]
    doc = {"gio_id": 603542, "identifications": {"id_u": "C001||C002"},
           "properties": {"usr_age": 28, "usr_vip": False, "usr_b": 1e10,
                          "usr_day": "2024-02-29", "tag_n": [3, 1], "tag_rfm": None}}
    assert growingio_user(doc, entries, identity_prefix="ids_") == {
        "gioId": "603542", "identifications": {"ids_u": ["C001", "C002"]},
        "properties": {"usr_age": "28", "usr_vip": "false", "usr_b": "1e+10",
                       "usr_day": "2024-02-29", "tag_n": ["3", "1"], "tag_rfm": None}}
