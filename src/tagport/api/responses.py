"""The documented shapes of errors and job results, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["TAG_NOT_FOUND"])
    message: str = Field(examples=["user tag 'tag_nope' does not exist"])


class JobError(BaseModel):
    code: str | None
    message: str | None


class JobResult(BaseModel):
    """GrowingIO's `stage` and `uris`, then tagport's additions."""

    model_config = ConfigDict(extra="allow")

    stage: str = Field(examples=["FINISH"])
    uris: list[str] = Field(examples=[[
        "%2Fjobs%2Fresults%2FDES-202205240136-5818534160000%2F"
        "zxm_%E7%94%A8%E6%88%B7_%E5%AD%97%E7%AC%A6%E4%B8%B2_%E5%8A%A0%E5%AF%86_2022-04-26_UserList.json"
    ]])
    id: str
    name: str
    rowCount: int | None = None
    byteCount: int | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    expiresAt: str | None = None
    expired: bool | None = None
    downloadLinks: list[str] | None = None
    error: JobError | None = None


_WHY = {
    400: "Bad request body or parameters.",
    401: "Missing, unknown or revoked token.",
    403: "Not allowed (a bad or expired signed link).",
    404: "Unknown tag, job or file (or another token's).",
    409: "Conflicts with the job's state.",
    410: "The result files have expired.",
    413: "The request body is too large.",
    429: "Too many unfinished jobs for this token; see Retry-After.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error body."""
    return {s: {"model": ErrorBody, "description": _WHY[s]} for s in statuses}
