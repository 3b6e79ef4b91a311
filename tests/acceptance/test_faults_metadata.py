"""The metadata store out of reach, for real: a PostgreSQL cluster of the module's own,
stopped and started again under a running server; a wrong URL; a wrong password.

Every command ends with one line (no traceback) and the API answers 503
METADATA_UNAVAILABLE with Retry-After, then recovers once PostgreSQL is back.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport
from tagport.demo import write_catalog, write_events, write_users
from tests import postgres_server
from tests.acceptance.processes import TAGPORT, Api, free_port, one_line

PASSWORD_USER = "tagport_pw"


@pytest.fixture(scope="module")
def own_postgres():
    """A cluster of this module's own (stopping the session's would break other tests),
    with a user that must give a password."""
    try:
        server = postgres_server.start()
    except postgres_server.Unavailable as exc:
        pytest.skip(str(exc))
    if server.cluster is None:
        server.stop()
        pytest.skip("stopping PostgreSQL needs a cluster of our own (TAGPORT_TEST_DATABASE_URL)")
    hba = server.cluster / "data" / "pg_hba.conf"
    hba.write_text(f"local all {PASSWORD_USER} scram-sha-256\n" + hba.read_text())
    with sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD 'right'"))
        conn.execute(sa.text("SELECT pg_reload_conf()"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(own_postgres, tmp_path_factory):
    """A data dir whose metadata is in PostgreSQL: the demo catalog, 2,000 users, a token,
    and the files the commands load."""
    tmp = tmp_path_factory.mktemp("pg-faults")
    url = own_postgres.new_database()
    tp = Tagport(Settings(data_dir=tmp / "data", database_url=url))
    spec = read_catalog_file(write_catalog(tmp / "c.json"))
    tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
    users = write_users(tmp / "u.parquet", 2_000)
    tp.profiles.load(users)
    token = tp.tokens.create("t")
    tp.close()
    return {"tmp": tmp, "url": url, "token": token, "users": users,
            "events": write_events(tmp / "e.parquet", 2_000, 5_000)}


def commands(setup) -> dict[str, list[str]]:
    return {
        "load": ["load", str(setup["users"])],
        "events load": ["events", "load", str(setup["events"])],
        "export": ["export", "tag_rfm", "-o", str(setup["tmp"] / "out.csv")],
        "compute": ["compute"],
        "serve": ["serve", "--port", str(free_port())],
        "worker": ["worker"],
    }


def tagport(setup, args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAGPORT_DATABASE_URL": url}
    return subprocess.run([*TAGPORT, "--data-dir", str(setup["tmp"] / "data"), *args],
                          env=env, capture_output=True, text=True, timeout=120)



def wrong_url(url: str) -> str:
    """The same database on a port nobody listens on."""
    parsed = make_url(url)
    query = {**parsed.query, "port": str(free_port())}
    return parsed.set(query=query).render_as_string(hide_password=False)


def wrong_password(url: str) -> str:
    parsed = make_url(url).set(username=PASSWORD_USER, password="wrong")
    return parsed.render_as_string(hide_password=False)


ADVICE = "check TAGPORT_DATABASE_URL, its user and password, and that the database server runs"


@pytest.mark.parametrize("fault", ["wrong URL", "wrong password"])
@pytest.mark.parametrize("command", ["load", "events load", "export", "compute", "serve",
                                     "worker"])
def test_a_metadata_store_out_of_reach_ends_every_command_in_one_line(setup, command, fault):
    url = (wrong_url if fault == "wrong URL" else wrong_password)(setup["url"])
    started = time.monotonic()
    line = one_line(tagport(setup, commands(setup)[command], url),
                           "error: METADATA_UNAVAILABLE: the metadata store does not answer: ",
                           ADVICE)
    assert time.monotonic() - started < 60
    assert "wrong" not in line  # the password is not shown
    if fault == "wrong password":
        assert "password authentication failed" in line


def test_a_stopped_postgresql_answers_503_and_the_service_recovers(setup, own_postgres):
    tmp = setup["tmp"]
    env = {"TAGPORT_DATABASE_URL": setup["url"], "TAGPORT_POLL_INTERVAL": "0.1"}
    api = Api(tmp / "data", setup["token"], env, tmp / "serve.log")
    try:
        assert api.http.get("/v1/api/user_tags").status_code == 200
        own_postgres.pause()
        try:
            for method, route in [("GET", "/v1/api/user_tags"), ("GET", "/v1/api/catalog"),
                                  ("GET", "/v1/api/job/result/abcdefgh"),
                                  ("POST", "/v1/api/user_tags/tag_rfm/export_jobs"),
                                  ("GET", "/v1/api/users/$basic_userId/U00000001")]:
                response = api.http.request(method, route, json={} if method == "POST" else None)
                assert response.status_code == 503, (route, response.text)
                assert response.json()["code"] == "METADATA_UNAVAILABLE", response.text
                assert response.json()["message"].startswith(
                    "the metadata store does not answer: ")
                assert int(response.headers["Retry-After"]) > 0
            assert api.http.get("/readyz").status_code == 503
            # every command of this data dir says so in one line too
            for command in ("load", "export", "compute", "worker"):
                one_line(tagport(setup, commands(setup)[command], setup["url"]),
                                "error: METADATA_UNAVAILABLE: ", ADVICE)
            time.sleep(1)  # the workers looked for jobs meanwhile
        finally:
            own_postgres.resume()
        deadline = time.monotonic() + 30
        while api.http.get("/v1/api/user_tags").status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
        job = api.submit("tag_rfm", {"properties": ["usr_city"]})
        assert api.wait(job["id"])["stage"] == "FINISH"
        assert api.http.get("/readyz").status_code == 200
    finally:
        api.stop()
    log = api.output()
    assert "Traceback" not in log, log
    assert "METADATA_UNAVAILABLE" in log  # the API's and the workers' lines say why
    # the workers say it once per fault, not once per look
    assert log.count("claiming or running a job failed") <= 2 * 2, log  # 2 threads


def test_the_cli_says_why_when_the_metadata_store_is_stopped_before_it_starts(
        setup, own_postgres):
    own_postgres.pause()
    try:
        for command in ("events load", "serve"):
            one_line(tagport(setup, commands(setup)[command], setup["url"]),
                            "error: METADATA_UNAVAILABLE: ", ADVICE)
    finally:
        own_postgres.resume()
    done = tagport(setup, ["jobs", "list"], setup["url"])  # and the store is whole again
    assert done.returncode == 0, done.stderr
