"""The job-result document (`GET /v1/api/job/result/{id}`), built and typed in one place.

GrowingIO's `stage` and `uris` come first, then tagport's additions; an extra field may be
added, never removed. The API, the console's job list and `tagport jobs` all answer it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tagport.exports.naming import encode_uri


class JobError(BaseModel):
    code: str | None
    message: str | None


class JobResult(BaseModel):
    """GrowingIO's `stage` and `uris`, then tagport's additions."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(examples=["FINISH"])
    uris: list[str] = Field(examples=[[
        "%2Fjobs%2Fresults%2FDES-202205240136-5818534160000%2F"
        "zxm_%E7%94%A8%E6%88%B7_%E5%AD%97%E7%AC%A6%E4%B8%B2_%E5%8A%A0%E5%AF%86_2022-04-26_UserList.json"
    ]])
    id: str
    name: str
    tagKey: str
    fileFormat: str
    compression: str = "none"
    charset: str = "UTF-8"
    rowCount: int | None = None
    byteCount: int | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    expiresAt: str | None = None
    expired: bool | None = None
    error: JobError | None = None
    downloadLinks: list[str] | None = Field(
        None, description="Signed links that download each file without the token, "
                          "for a short while (FINISH only).")
    liveWorkers: int | None = Field(
        None, description="Unfinished jobs only: how many live workers (the server's, "
                          "`tagport worker` processes) take jobs of this kind. 0 means "
                          "nobody runs it until a worker starts (a server run with "
                          "`--no-worker`, workers that stopped or died).")


class _Stage(Protocol):
    @property
    def value(self) -> str: ...


class ResultSource(Protocol):
    """What the document is made of (jobs.models.ExportJob)."""

    id: str
    name: str
    tag_key: str
    file_format: str
    compression: str
    charset: str
    files: tuple[str, ...]
    row_count: int | None
    byte_count: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error_code: str | None
    error_message: str | None

    @property
    def stage(self) -> _Stage: ...


def job_result(job: ResultSource, *, expires_at: datetime | None = None, expired: bool = False,
               download_links: list[str] | None = None,
               live_workers: int | None = None) -> dict[str, Any]:
    """The document of `job`. A finished job says when its files expire, or that they
    have (`"expired": true`, `stage` and `uris` kept: they answer 410); a failed one
    carries `error`; `download_links` are added to a finished job's, unless expired;
    `live_workers`, when given, to an unfinished one's."""
    finished = job.stage.value == "FINISH"
    fields: dict[str, Any] = {
        "stage": job.stage.value,
        "uris": [encode_uri(path) for path in job.files] if finished else [],
        "id": job.id, "name": job.name, "tagKey": job.tag_key, "fileFormat": job.file_format,
        "compression": job.compression, "charset": job.charset,
        "rowCount": job.row_count, "byteCount": job.byte_count,
        "createdAt": _iso(job.created_at), "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at),
    }
    if finished:
        fields.update(expiresAt=_iso(expires_at), expired=expired)
        if download_links is not None and not expired:
            fields["downloadLinks"] = download_links
    if live_workers is not None:
        fields["liveWorkers"] = live_workers
    if job.stage.value == "ERROR":
        fields["error"] = JobError(code=job.error_code, message=job.error_message)
    return JobResult(**fields).model_dump(mode="json", exclude_unset=True)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None
