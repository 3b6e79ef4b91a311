"""The GrowingIO CDP 2.9 routes: submit an export job and poll it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tagport.api.deps import current_token_async, get_core, store_read
from tagport.api.responses import JobResult, errors
from tagport.auth.signing import LinkSigner
from tagport.auth.tokens import Token
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import ExportJob, JobStage
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


@router.post("/user_tags/{tag_key}/export_jobs", response_model=ExportJobCreated,
             responses=errors(400, 401, 404, 413, 429))
async def submit_export_job(
    tag_key: str,
    request: Request,
    body: ExportJobBody | None = Body(None),
    token: Token = Depends(current_token_async),
) -> ExportJobCreated:
    """Download the users covered by a user tag: queue an export job."""
    body = body or ExportJobBody()
    core = get_core(request)
    export = ExportRequest(tag_key, body.properties or [], body.fileFormat, body.csvHeaderType)
    job = await core.jobs.submit_async(export, token.id)
    request.app.state.wake_workers()
    return ExportJobCreated(id=job.id, name=job.name)


@router.get("/job/result/{job_id}",
            responses={200: {"model": JobResult}, **errors(401, 404)})
async def job_result(job_id: str, request: Request,
                     token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """The job's stage and, once FINISH, the percent-encoded uris of its files, and
    signed download links that work without the token for a short while."""
    jobs = get_core(request).jobs
    return _document(request, await store_read(request, jobs.get, job_id, token.job_owner))


@router.delete("/job/{job_id}",
               responses={200: {"model": JobResult}, **errors(401, 404, 409)})
def cancel_job(job_id: str, request: Request,
               token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """Stop a job that has not finished; it ends in ERROR with code CANCELLED."""
    jobs = get_core(request).jobs
    return _document(request, jobs.cancel(job_id, token_id=token.job_owner))


def _document(request: Request, job: ExportJob) -> dict[str, Any]:
    jobs = get_core(request).jobs
    expired = jobs.is_expired(job)
    doc = result_document(job, expires_at=jobs.expires_at(job), expired=expired)
    if job.stage is JobStage.FINISH and not expired:
        signer: LinkSigner = request.app.state.signer
        doc["downloadLinks"] = [signer.link(path) for path in job.files]
    return doc
