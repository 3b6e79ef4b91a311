"""The documented shape of errors, for the OpenAPI document (the job result's is
exports.result.JobResult)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["TAG_NOT_FOUND"])
    message: str = Field(examples=["user tag 'tag_nope' does not exist"])


_WHY = {
    400: "Bad request body or parameters.",
    401: "Missing, unknown or revoked token.",
    403: "Not allowed (a bad or expired signed link).",
    404: "Unknown tag, job or file (or another token's).",
    409: "Conflicts with the job's state (or a computation already queued or running).",
    410: "The result files have expired.",
    413: "The request body is too large.",
    429: "Too many unfinished jobs for this token; see Retry-After.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error body."""
    return {s: {"model": ErrorBody, "description": _WHY[s]} for s in statuses}
