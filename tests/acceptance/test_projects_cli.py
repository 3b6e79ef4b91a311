"""`tagport project list|create` through the real CLI, and a project route of `tagport serve`."""

from __future__ import annotations

import re

from tests.acceptance.test_cli_and_server import prepared, server, tagport  # noqa: F401

LINE = re.compile(r"^([A-Za-z0-9]{8}) (.+)$")


def projects(data) -> list[tuple[str, str]]:
    lines = tagport(data, "project", "list").stdout.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    return [LINE.match(line).groups() for line in lines]  # type: ignore[union-attr]


def test_the_default_project_is_listed_from_the_first_start(tmp_path):
    data = tmp_path / "data"
    first = projects(data)
    assert [name for _, name in first] == ["默认项目"]
    assert projects(data) == first  # the same id at the next start


def test_create_prints_the_new_line_and_list_shows_it_last(tmp_path):
    data = tmp_path / "data"
    created = tagport(data, "project", "create", "营销").stdout.strip()
    match = LINE.match(created)
    assert match and match.group(2) == "营销"
    assert projects(data)[-1] == match.groups()
    assert len(projects(data)) == 2


def test_a_duplicate_or_empty_name_is_refused_with_its_reason(tmp_path):
    data = tmp_path / "data"
    tagport(data, "project", "create", "营销")
    again = tagport(data, "project", "create", "营销", check=False)
    assert again.returncode != 0
    assert "a project named '营销' already exists" in again.stderr
    empty = tagport(data, "project", "create", " ", check=False)
    assert empty.returncode != 0 and "a project needs a name" in empty.stderr
    assert len(projects(data)) == 2


def test_a_project_route_of_the_server_answers_as_the_platform_route(server):  # noqa: F811
    data, client = server
    project_id = projects(data)[0][0]
    platform = client.get("/v1/api/user_tags/tag_rfm/users?properties=tag_rfm")
    scoped = client.get(f"/v1/api/projects/{project_id}/user_tags/tag_rfm/users"
                        "?properties=tag_rfm")
    assert platform.status_code == scoped.status_code == 200
    assert scoped.content == platform.content
    unknown = client.get("/v1/api/projects/nOpe1234/user_tags")
    assert unknown.status_code == 404 and unknown.json()["code"] == "PROJECT_NOT_FOUND"
