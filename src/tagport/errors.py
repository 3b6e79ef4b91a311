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
