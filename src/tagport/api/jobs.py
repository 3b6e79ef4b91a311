"""`GET /v1/api/jobs`: the calling token's export jobs, newest first (an admin's: all)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.openapi import _document as job_document
from tagport.api.responses import errors
from tagport.auth.tokens import Token
from tagport.i18n import Language
from tagport.profiles.lookup import MAX_PAGE_LIMIT, Page, check_page

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["jobs"])


@router.get("/jobs", responses=errors(400, 401))
def list_jobs(
    request: Request,
    limit: int = Query(20, description=f"Page size, 1 to {MAX_PAGE_LIMIT}."),
    offset: int = Query(0, description="How many jobs to skip."),
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """A page of jobs in GrowingIO's envelope; each value is the job's result document
    (`GET /v1/api/job/result/{id}`), signed download links included once FINISH."""
    check_page(limit, offset, language)
    page = get_core(request).jobs.page(token.job_owner, limit, offset)
    values = [job_document(request, job) for job in page.jobs]
    return Page(limit, offset, page.total, values, offset + len(values) < page.total).document()
