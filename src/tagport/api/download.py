"""`GET /download?file=<uri>`: stream a finished job's file, or redirect to it in the
object store that holds it."""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import RedirectResponse

from tagport.api.deps import current_token, get_core
from tagport.api.filestream import ResultFileResponse
from tagport.api.responses import errors
from tagport.auth.signing import LinkSigner
from tagport.auth.tokens import Token
from tagport.exports.formats import COMPRESSIONS, FORMATS
from tagport.jobs.models import ExportJob
from tagport.results import StoredObject

router = APIRouter()

def content_disposition(file_name: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name in `filename*`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def raw_path(file: str) -> str:
    """The file's path, given as the job result's uri (`%2Fjobs%2F...`, which the query
    string's decoding already turned into the path) or once more encoded by a client
    that encoded the uri again; a raw path (`/jobs/results/...`) is taken as it is."""
    if file[:3].upper() == "%2F":
        return unquote(file)
    return file


def _caller(request: Request, authorization: str | None = Header(None)) -> Token | None:
    """The token, unless the request carries a signature (checked in the route)."""
    if request.query_params.get("signature") is not None:
        return None
    return current_token(request, authorization)


@router.get("/download", response_class=ResultFileResponse, responses={
    200: {"description": "The file.", "content": {
        info.content_type: {} for info in [*FORMATS.values(), *COMPRESSIONS.values()]
        if info.content_type}},
    307: {"description": "The file is in an object store (`TAGPORT_RESULT_URL=s3://...`): "
          "`Location` is a presigned URL that serves it with the same headers."},
    **errors(400, 401, 403, 404, 410),
})
def download(
    request: Request,
    file: str = Query(..., description="A uri from the job result, as returned."),
    expires: str | None = Query(None, description="Signed links: expiry, unix seconds."),
    signature: str | None = Query(None, description="Signed links: HMAC-SHA256, hex."),
    token: Token | None = Depends(_caller),
) -> ResultFileResponse:
    """The file is looked up among the jobs' files; a path is never resolved from the
    request. Authorised by the Bearer token, or by a signed link from the job result;
    both are checked before any redirect."""
    if token is None:
        signer: LinkSigner = request.app.state.signer
        signer.verify(file, expires, signature or "")
        owner = None
    else:
        owner = token.job_owner
    job, local = get_core(request).jobs.file_for(raw_path(file), token_id=owner)
    if isinstance(local, StoredObject):
        return _redirect(request, job, local)
    return ResultFileResponse(
        local,
        media_type=job.output.content_type,
        headers={"Content-Disposition": content_disposition(local.name)},
    )


def _redirect(request: Request, job: ExportJob, found: StoredObject) -> RedirectResponse:
    """307 to a presigned URL that answers with the headers a local download has."""
    core = get_core(request)
    url = core.results.presigned_url(found, job.output.content_type,
                                     content_disposition(found.name),
                                     core.settings.signed_link_ttl)
    return RedirectResponse(url, status_code=307)
