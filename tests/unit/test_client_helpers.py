"""The client's pure parts: where files go, and which exception an error answer raises."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tagport.client import (
    Client,
    ConflictError,
    NotFoundError,
    ServerError,
    TagportAPIError,
    TooManyRequestsError,
    destinations,
    error_from,
)

URIS = ["%2Fjobs%2Fresults%2FDES-1%2F%E4%BC%9A%E5%91%98_2026-11-28_UserList-00001.csv",
        "%2Fjobs%2Fresults%2FDES-1%2F%E4%BC%9A%E5%91%98_2026-11-28_UserList-00002.csv"]


def test_files_keep_the_servers_names_in_a_directory(tmp_path):
    assert destinations(URIS, tmp_path) == [
        tmp_path / "会员_2026-11-28_UserList-00001.csv",
        tmp_path / "会员_2026-11-28_UserList-00002.csv"]
    assert destinations(URIS[:1], str(tmp_path / "new") + "/") == [
        tmp_path / "new" / "会员_2026-11-28_UserList-00001.csv"]
    assert destinations(URIS[:1], None) == [Path("会员_2026-11-28_UserList-00001.csv")]


def test_a_file_destination_names_one_file_or_numbers_the_parts(tmp_path):
    assert destinations(URIS[:1], tmp_path / "rfm.csv") == [tmp_path / "rfm.csv"]
    assert destinations(URIS, tmp_path / "rfm.csv") == [
        tmp_path / "rfm-00001.csv", tmp_path / "rfm-00002.csv"]


@pytest.mark.parametrize("status, cls", [
    (404, NotFoundError), (409, ConflictError), (500, ServerError), (503, ServerError),
    (418, TagportAPIError),
])
def test_error_answers_become_typed_exceptions(status, cls):
    exc = error_from(httpx.Response(status, json={"code": "X", "message": "why"}))
    assert type(exc) is cls
    assert (exc.status, exc.code, exc.message) == (status, "X", "why")


def test_too_many_requests_carries_retry_after():
    exc = error_from(httpx.Response(429, json={"code": "TOO_MANY_JOBS", "message": "wait"},
                                    headers={"Retry-After": "7"}))
    assert isinstance(exc, TooManyRequestsError) and exc.retry_after == 7


def test_an_error_without_a_json_body_still_has_a_code():
    exc = error_from(httpx.Response(502, text="Bad Gateway"))
    assert isinstance(exc, ServerError)
    assert (exc.code, exc.message) == ("HTTP_502", "Bad Gateway")


class Clock:
    """time.monotonic and time.sleep for Client.wait: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def waiting_on(results: list[dict], monkeypatch, grace: float = 10.0) -> Client:
    """A client whose job result answers `results` in turn (the last one after that)."""
    monkeypatch.setattr("tagport.client.time", Clock())
    answers = iter(results)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers, results[-1]))

    return Client("http://tagport", "t", transport=httpx.MockTransport(answer),
                  poll_interval=1.0, max_poll_interval=1.0, no_worker_grace=grace)


def job(stage: str = "NONE", **extra) -> dict:
    return {"id": "j1", "stage": stage, "uris": [], **extra}


def test_a_job_no_live_worker_takes_for_the_grace_period_raises_no_worker(monkeypatch):
    client = waiting_on([job(liveWorkers=0)], monkeypatch)
    with pytest.raises(TagportAPIError) as raised:
        client.wait("j1")
    assert raised.value.code == "NO_WORKER"
    assert raised.value.message.startswith("job j1 is NONE, and no live worker has taken "
                                           "jobs of its kind for 10 s")
    assert "start `tagport worker`" in raised.value.message


def test_a_worker_seen_within_the_grace_period_starts_it_again(monkeypatch):
    client = waiting_on([*[job(liveWorkers=0)] * 9, job("READY", liveWorkers=1),
                         *[job("NONE", liveWorkers=0)] * 9, job("FINISH")], monkeypatch)
    assert client.wait("j1")["stage"] == "FINISH"


def test_a_server_that_does_not_count_workers_is_waited_on(monkeypatch):
    client = waiting_on([*[job()] * 100, job("FINISH")], monkeypatch, grace=1.0)
    assert client.wait("j1")["stage"] == "FINISH"
