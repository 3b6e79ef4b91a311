import json

import pytest

from tagport.catalog.models import Kind, ValueType
from tagport.catalog.service import entries_from_file, read_catalog_file
from tagport.errors import InvalidInput


def write(tmp_path, doc):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc, ensure_ascii=False) if not isinstance(doc, str) else doc)
    return path


def test_the_issue_example_reads(tmp_path):
    path = write(tmp_path, {
        "identities": [{"key": "id_$basic_userId", "name": "登录用户ID"}],
        "attributes": [{"key": "usr_gender", "name": "性别", "type": "string"}],
        "tags": [{"key": "tag_rfm", "name": "会员等级", "type": "string", "description": "..."},
                 {"key": "tag_i", "name": "兴趣", "type": "string", "isArray": True}],
    })
    entries = entries_from_file(read_catalog_file(path))
    assert [(e.key, e.kind) for e in entries] == [
        ("id_$basic_userId", Kind.IDENTITY), ("usr_gender", Kind.ATTRIBUTE),
        ("tag_rfm", Kind.TAG), ("tag_i", Kind.TAG)]
    assert entries[3].is_array and entries[3].value_type is ValueType.STRING
    assert entries[2].description == "..."


@pytest.mark.parametrize("doc, message", [
    ({"attributes": [{"key": "gender", "name": "性别"}]}, "attribute key 'gender' must start with 'usr_'"),
    ({"tags": [{"key": "tag_1x", "name": "x"}]}, "not starting with a digit"),
    ({"tags": [{"key": "tag_a-b", "name": "x"}]}, "letters, digits"),
    ({"tags": [{"key": "tag_a", "name": "x"}, {"key": "tag_a", "name": "y"}]}, "appears twice"),
])
def test_bad_keys_are_refused_with_the_key(tmp_path, doc, message):
    with pytest.raises(InvalidInput) as e:
        entries_from_file(read_catalog_file(write(tmp_path, doc)))
    assert message in e.value.message


def test_unknown_type_names_the_field(tmp_path):
    with pytest.raises(InvalidInput) as e:
        read_catalog_file(write(tmp_path, {"attributes": [{"key": "usr_a", "name": "a", "type": "float"}]}))
    assert "attributes.0.type" in e.value.message


def test_broken_json_names_line_and_column(tmp_path):
    with pytest.raises(InvalidInput) as e:
        read_catalog_file(write(tmp_path, '{"tags": [\n  {"key": }]}'))
    assert "line 2, column" in e.value.message
