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

from tagport.errors import fault_of

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


def without_fault_traceback(record: logging.LogRecord, debug: bool) -> logging.LogRecord:
    """`record` without its traceback when it is of a known fault (a store down, full or
    read-only: errors.fault_of), the fault's code and message added to its line; as it
    is at the debug level, or for any other exception (a bug keeps its traceback)."""
    if debug or not record.exc_info or record.exc_info[1] is None:
        return record
    fault = fault_of(record.exc_info[1])
    if fault is None:
        return record
    return logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None,
                                  "msg": f"{record.getMessage()}: {fault.code}: {fault.message}",
                                  "args": None})


def FaultLinesFormatter(*args: Any, debug: bool = False, **kwargs: Any) -> logging.Formatter:  # noqa: N802
    """uvicorn's text lines; a known fault's in one line (see without_fault_traceback).
    A factory, so that the CLI's other commands do not import uvicorn."""
    from uvicorn.logging import DefaultFormatter

    class FaultLines(DefaultFormatter):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(without_fault_traceback(record, debug))

    return FaultLines(*args, **kwargs)


class JsonLineFormatter(logging.Formatter):
    """One compact JSON object per line: ts, level, logger, message, and job_id, the
    request's method/path/status, exc where they apply."""

    def __init__(self, *args: Any, debug: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        record = without_fault_traceback(record, self.debug)
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
    debug = level.lower() == "debug"
    if log_format == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": f"{__name__}.JsonLineFormatter", "debug": debug}
        config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    else:  # uvicorn's own, without the traceback of a known fault (but at debug)
        config["formatters"]["default"] = {**config["formatters"]["default"],
                                           "()": f"{__name__}.FaultLinesFormatter",
                                           "debug": debug}
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
