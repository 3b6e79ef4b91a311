"""The GrowingIO CDP 2.9 routes: submit an export job and poll it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tagport.api.deps import current_token_async, get_core, store_read
from tagport.api.responses import errors
from tagport.auth.signing import LinkSigner
from tagport.auth.tokens import Token
from tagport.exports.result import JobResult
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import ExportJob, JobStage

router = APIRouter(prefix="/v1/api")


class ExportJobBody(BaseModel):
    """The seed's body; every field is optional. Keys are matched in any case, as
    GrowingIO's pages also spell them (`fileformat`, `csvheadertype`)."""

    model_config = ConfigDict(extra="ignore")

    properties: list[str] | None = Field(
        None, description="Identities, attributes and tags to include; at most 60.",
        examples=[["ids_$basic_userId", "usr_gender", "tag_rfm"]],
    )
    fileFormat: str = Field("csv", description="`csv` (default), `json` or `parquet`.")
    csvHeaderType: str = Field("key", description="`key` (default) or `name`; csv only.")
    compression: str = Field("none", description="`none` (default), `gzip` or `zstd`; "
                             "csv and json only (`..._UserList.csv.gz`, `.zst`).")
    charset: str = Field("UTF-8", description="csv only: `UTF-8` (default), `UTF-8-BOM` "
                         "(Excel), or `UTF-16LE` (Excel; tab-separated, with its BOM).")

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = {name.lower(): name for name in cls.model_fields}
        return {names.get(k.lower(), k) if isinstance(k, str) else k: v
                for k, v in data.items()}

    def request(self, tag_key: str) -> ExportRequest:
        return ExportRequest(tag_key, self.properties or [], self.fileFormat,
                             self.csvHeaderType, self.compression, self.charset)


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
    export = body.request(tag_key)
    job = await core.jobs.submit_async(export, token.id)
    request.app.state.wake_workers()
    return ExportJobCreated(id=job.id, name=job.name)


@router.get("/job/result/{job_id}",
            responses={200: {"model": JobResult}, **errors(401, 404)})
async def job_result(job_id: str, request: Request,
                     token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """The job's stage and, once FINISH, the percent-encoded uris of its files, and
    signed download links that work without the token for a short while; while it is
    unfinished, `liveWorkers`: how many live workers take it (0: nobody will run it)."""
    jobs = get_core(request).jobs
    job = await store_read(request, jobs.get, job_id, token.job_owner)
    live = None if job.stage.is_final else await store_read(request, jobs.live_workers, job.kind)
    return _document(request, job, live)


@router.delete("/job/{job_id}",
               responses={200: {"model": JobResult}, **errors(401, 404, 409)})
def cancel_job(job_id: str, request: Request,
               token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """Stop a job that has not finished; it ends in ERROR with code CANCELLED."""
    jobs = get_core(request).jobs
    return _document(request, jobs.cancel(job_id, token_id=token.job_owner))


def _document(request: Request, job: ExportJob, live_workers: int | None = None) -> dict[str, Any]:
    links = None
    if job.stage is JobStage.FINISH:
        signer: LinkSigner = request.app.state.signer
        links = [signer.link(path) for path in job.files]
    return get_core(request).jobs.document(job, links, live_workers=live_workers)
