"""`GET /download?file=<uri>`: stream a finished job's file."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from tagport.api.deps import current_token, get_core
from tagport.auth.tokens import Token

router = APIRouter()

class ResultFileResponse(FileResponse):
    # 1 MiB reads: a 700 MB export is 700 thread hops, not 11,000
    chunk_size = 1024 * 1024


CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/x-ndjson; charset=utf-8"}


def content_disposition(file_name: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name in `filename*`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


@router.get("/download")
def download(
    request: Request,
    file: str = Query(..., description="A uri from the job result, as returned."),
    token: Token = Depends(current_token),
) -> ResultFileResponse:
    """The file is looked up among the jobs' files; a path is never resolved from the request."""
    job, local = get_core(request).jobs.file_for(file, token_id=token.id)
    return ResultFileResponse(
        local,
        media_type=CONTENT_TYPES[job.file_format],
        headers={"Content-Disposition": content_disposition(local.name)},
    )
