"""The error hierarchy: each error carries its code, HTTP status and message."""

from __future__ import annotations


class TagportError(Exception):
    """Base of every error tagport reports to a user."""

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class BadRequest(TagportError):
    status = 400
    code = "BAD_REQUEST"


class Unauthorized(TagportError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(TagportError):
    status = 403
    code = "FORBIDDEN"


class NotFound(TagportError):
    status = 404
    code = "NOT_FOUND"


class Conflict(TagportError):
    status = 409
    code = "CONFLICT"


class InvalidInput(TagportError):
    """Bad input to a CLI command (a file, a value); status for completeness."""

    status = 400
    code = "INVALID_INPUT"


class StoreBusy(TagportError):
    """The profile store is held by another process."""

    status = 409
    code = "STORE_BUSY"


class StorageError(TagportError):
    """The result storage (a directory, an S3 bucket) failed to write, read or delete."""

    status = 500
    code = "STORAGE_ERROR"


class ConfigError(TagportError):
    """A setting that cannot work (a missing optional dependency, an unsupported URL)."""

    status = 500
    code = "CONFIG_ERROR"


class NotImplementedYet(TagportError):
    status = 501
    code = "NOT_IMPLEMENTED"


class Gone(TagportError):
    status = 410
    code = "GONE"


class PayloadTooLarge(TagportError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(TagportError):
    """Back-pressure: the client should retry after `retry_after` seconds."""

    status = 429
    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class StorageFull(TagportError):
    """The disk under the data dir (the profile store, the metadata store) is full."""

    status = 507
    code = "STORAGE_FULL"


class StorageUnwritable(TagportError):
    """The data dir's file system refuses writes (read-only, or no permission)."""

    status = 507
    code = "STORAGE_UNWRITABLE"


class Unavailable(TagportError):
    """A store tagport needs cannot be reached or opened now; retry after `retry_after`."""

    status = 503
    code = "UNAVAILABLE"
    retry_after = 5


class MetadataUnavailable(Unavailable):
    """The metadata store (SQLite file, PostgreSQL) does not answer."""

    code = "METADATA_UNAVAILABLE"


class EngineUnavailable(Unavailable):
    """The profile store (the DuckDB file, the Spark cluster) cannot be opened or reached."""

    code = "ENGINE_UNAVAILABLE"


_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "database or disk is full")
_UNWRITABLE_WORDS = ("Read-only file system", "readonly database", "read-only database",
                     "Permission denied")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    """The message's first line, without SQLAlchemy's `(driver.Error) ` prefix."""
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0]
    if line.startswith("(") and ") " in line:
        line = line.split(") ", 1)[1]
    return line.strip()


def fault_of(exc: BaseException) -> TagportError | None:
    """The TagportError that an infrastructure failure is for the user, or None when it is
    not one (a bug). Reads the exception and its causes, by type and by the OS error in
    the message (DuckDB, SQLite and Arrow report ENOSPC and EROFS as text):
    StorageFull, StorageUnwritable, MetadataUnavailable (SQLAlchemy's operational errors,
    a driver that cannot connect), EngineUnavailable (DuckDB cannot open its file, Spark's
    gateway is gone)."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, TagportError):
            return item
    for item in chain:
        text = str(item)
        number = getattr(item, "errno", None) if isinstance(item, OSError) else None
        if number in (28, 122) or any(w in text for w in _FULL_WORDS):  # ENOSPC, EDQUOT
            return StorageFull(f"the disk is full: {_first_line(item)}")
        if number == 30 or any(w in text for w in _UNWRITABLE_WORDS):  # EROFS
            return StorageUnwritable(f"the file system refuses writes: {_first_line(item)}")
    for item in chain:
        module, name = type(item).__module__, type(item).__name__
        if module.startswith("sqlalchemy") and name in (
                "OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError",
                "NoSuchModuleError", "ArgumentError"):
            return MetadataUnavailable(
                f"the metadata store does not answer: {_first_line(item.__cause__ or item)}")
        if module.startswith("psycopg") and name in ("OperationalError", "InterfaceError"):
            return MetadataUnavailable(f"the metadata store does not answer: {_first_line(item)}")
        if module.lstrip("_").startswith("duckdb") and name in (
                "IOException", "FatalException", "SerializationException"):
            return EngineUnavailable(f"the profile store cannot be used: {_first_line(item)}")
        if module.startswith("py4j") or name == "Py4JNetworkError":
            return EngineUnavailable(f"the Spark engine does not answer: {_first_line(item)}")
    for item in chain:  # a path that is not there, not a directory, ...
        if isinstance(item, OSError) and item.filename is not None:
            return StorageError(f"{item.strerror or _first_line(item)}: {item.filename}")
    return None
