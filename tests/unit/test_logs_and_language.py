"""JSON log lines (job id on every line about a job) and the `language` header."""

from __future__ import annotations

import json
import logging

import pytest

from tagport.i18n import Language, language_of
from tagport.ops.logs import JsonLineFormatter, job_context, logging_config


def record(msg, *args, name="tagport.jobs", **extra):
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def line(rec) -> dict:
    return json.loads(JsonLineFormatter().format(rec))


def test_a_json_line_has_time_level_logger_and_message():
    out = line(record("loaded %d users", 5, name="tagport.profiles"))
    assert set(out) == {"ts", "level", "logger", "message"}
    assert (out["level"], out["logger"], out["message"]) == ("info", "tagport.profiles",
                                                             "loaded 5 users")


@pytest.mark.parametrize("rec", [
    record("job %s finished: %s rows", "kqQeWeGr", 3),
    record("job %s: result files expired and deleted", "kqQeWeGr"),
    record('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/v1/api/job/result/kqQeWeGr",
           "1.1", 200, name="uvicorn.access"),
    record("claimed", job_id="kqQeWeGr"),
])
def test_lines_about_a_job_carry_its_id(rec):
    assert line(rec)["job_id"] == "kqQeWeGr"


def test_lines_inside_a_job_context_carry_its_id():
    with job_context("AbCd1234"):
        assert line(record("writing rows"))["job_id"] == "AbCd1234"
    assert "job_id" not in line(record("writing rows"))


def test_access_lines_carry_method_path_and_status():
    out = line(record('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", "/v1/api/user_tags",
                      "1.1", 401, name="uvicorn.access"))
    assert (out["method"], out["path"], out["status"]) == ("POST", "/v1/api/user_tags", 401)


def test_exceptions_are_kept_in_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        rec = logging.LogRecord("tagport", logging.ERROR, __file__, 1, "failed", (),
                                sys.exc_info())
    text = JsonLineFormatter().format(rec)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exc"]


def test_the_json_config_formats_tagport_and_uvicorn_lines_as_json():
    # (tests/acceptance runs `tagport serve` with it and parses every line)
    config = logging_config("json", "info")
    assert config["formatters"]["default"]["()"].endswith("JsonLineFormatter")
    assert config["formatters"]["access"]["()"].endswith("JsonLineFormatter")
    assert config["loggers"]["tagport"] == {"handlers": ["default"], "level": "INFO",
                                            "propagate": False}


def test_the_text_config_keeps_uvicorns_lines_and_adds_tagports():
    config = logging_config("text", "debug")
    # uvicorn's DefaultFormatter and its format, which drops a known fault's traceback
    # below the debug level
    assert config["formatters"]["default"]["()"].endswith("FaultLinesFormatter")
    assert config["formatters"]["default"]["fmt"] == "%(levelprefix)s %(message)s"
    assert config["loggers"]["tagport"]["level"] == "DEBUG"


@pytest.mark.parametrize("header, language", [
    (None, Language.CH), ("CH", Language.CH), ("US", Language.US), ("us", Language.US),
    ("en-US", Language.US), ("zh", Language.CH), ("", Language.CH),
])
def test_the_language_header(header, language):
    assert language_of(header) is language
