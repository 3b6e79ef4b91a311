"""The GrowingIO CDP 2.9 routes: submit an export job and poll it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tagport.api.deps import current_token, get_core
from tagport.auth.tokens import Token
from tagport.exports.spec import ExportRequest
from tagport.jobs.service import result_document

router = APIRouter(prefix="/v1/api")


class ExportJobBody(BaseModel):
    """The seed's body; every field is optional."""

    model_config = ConfigDict(extra="ignore")

    properties: list[str] | None = Field(
        None, description="Identities, attributes and tags to include; at most 60.",
        examples=[["ids_$basic_userId", "usr_gender", "tag_rfm"]],
    )
    fileFormat: str = Field("csv", description="`csv` (default) or `json`.")
    csvHeaderType: str = Field("key", description="`key` (default) or `name`; csv only.")


class ExportJobCreated(BaseModel):
    id: str = Field(examples=["kqQeWeGr"])
    name: str = Field(examples=["DES-202205240136-5818534160000"])


@router.post("/user_tags/{tag_key}/export_jobs", response_model=ExportJobCreated)
def submit_export_job(
    tag_key: str,
    request: Request,
    body: ExportJobBody | None = Body(None),
    token: Token = Depends(current_token),
) -> ExportJobCreated:
    """Download the users covered by a user tag: queue an export job."""
    body = body or ExportJobBody()
    core = get_core(request)
    job = core.jobs.submit(
        ExportRequest(tag_key, body.properties or [], body.fileFormat, body.csvHeaderType),
        token_id=token.id,
    )
    request.app.state.wake_workers()
    return ExportJobCreated(id=job.id, name=job.name)


@router.get("/job/result/{job_id}")
def job_result(job_id: str, request: Request,
               token: Token = Depends(current_token)) -> dict[str, Any]:
    """The job's stage and, once FINISH, the percent-encoded uris of its files."""
    return result_document(get_core(request).jobs.get(job_id, token_id=token.id))
