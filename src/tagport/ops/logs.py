"""Logging for `tagport serve`: uvicorn's text lines, or JSON lines (TAGPORT_LOG_FORMAT=json).

Every JSON line about a job carries `job_id`: taken from `extra={"job_id": ...}`, from
`job_context(id)` around the work, or from the message itself (`job <id> ...`, or a
request path `/job/result/<id>`), which is how tagport words its lines about jobs.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_JOB = contextvars.ContextVar[str | None]("tagport_job_id", default=None)
_JOB_IN_MESSAGE = re.compile(r"(?:\bjob |/job/result/)([A-Za-z0-9]{8})\b")


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Lines logged inside this block (same thread or task) carry `job_id`."""
    token = _JOB.set(job_id)
    try:
        yield
    finally:
        _JOB.reset(token)


def job_id_of(record: logging.LogRecord, message: str) -> str | None:
    explicit = getattr(record, "job_id", None) or _JOB.get()
    if explicit:
        return str(explicit)
    found = _JOB_IN_MESSAGE.search(message)
    return found.group(1) if found else None


class JsonLineFormatter(logging.Formatter):
    """One compact JSON object per line: ts, level, logger, message, and job_id, the
    request's method/path/status, exc where they apply."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if job_id := job_id_of(record, message):
            line["job_id"] = job_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
                and len(record.args) == 5:
            _, line["method"], line["path"], _, line["status"] = record.args
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's `log_config`, covering tagport's loggers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": f"{__name__}.JsonLineFormatter"}
        config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["tagport"] = {"handlers": ["default"], "level": level.upper(),
                                    "propagate": False}
    return config


class OneLineFormatter(logging.Formatter):
    """`tagport: <message>`, one line: the traceback only at the debug level."""

    def __init__(self, debug: bool) -> None:
        super().__init__("tagport: %(message)s")
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if not self.debug and (record.exc_info or record.exc_text):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None})
        return super().format(record)


def configure_cli_logging(level: str) -> None:
    """The CLI's log lines on stderr: warnings and above (or `level` when lower), one
    line each; a traceback only with TAGPORT_LOG_LEVEL=debug."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(debug=level == "debug"))
    logger = logging.getLogger("tagport")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logger.propagate = False
