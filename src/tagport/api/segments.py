"""Segments' routes (spec section 8): GrowingIO's segment list, users page, export and
computes, exactly as their 2.9 pages; and tagport's own for defining segments (admin
scope), uploading an identity list, estimating a definition's size while it is edited,
and the 群体画像 (portrait) of a segment or a tag against all users."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Any

import anyio
from fastapi import APIRouter, Body, Depends, Path, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.openapi import ExportJobBody, ExportJobCreated
from tagport.api.responses import errors
from tagport.api.tags import BINS, LIMIT, OFFSET, TOP, ComputeTriggered, property_keys
from tagport.auth.tokens import Token
from tagport.errors import BadRequest, Forbidden
from tagport.i18n import Language
from tagport.tags.service import TRIGGERED

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["segments"])
SEGMENTS = "/projects/{project_id}/segment_profiles"
ONE = SEGMENTS + "/{segment_key}"
PROJECT = Path(description="A project's 8-character id (`tagport project list`).")
KEY = Path(description="The segment's key (`seg_…`).", examples=["seg_paid_twice"])
UPLOAD_CHUNK = 1024 * 1024


def admin_token(token: Token = Depends(current_token_async)) -> Token:
    """The caller's token, which must have the `admin` scope (defining segments)."""
    if not token.is_admin:
        raise Forbidden("defining segments takes a token with the admin scope "
                        "(`tagport token create NAME --scope admin`)", code="ADMIN_REQUIRED")
    return token


@router.get(SEGMENTS, responses=errors(400, 401, 404))
def list_segments(
    request: Request,
    project_id: str = PROJECT,
    limit: int = LIMIT,
    offset: int = OFFSET,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The project's segments, oldest first, in GrowingIO's page envelope."""
    return get_core(request).segments.page(project_id, limit, offset, language).document()


@router.post(SEGMENTS, status_code=201, responses=errors(400, 401, 403, 404, 409))
def create_segment(
    request: Request,
    project_id: str = PROJECT,
    body: Any = Body(..., examples=[{
        "key": "seg_paid_twice", "name": "30天内支付两次", "scheduler": "DAILY",
        "definition": {"did": {"event": "payOrderSuccess", "measure": "count",
                               "window": {"lastDays": 30}}, "op": ">=", "values": ["2"]}}]),
    token: Token = Depends(admin_token),
) -> dict[str, Any]:
    """Define a segment (tagport's own; GrowingIO does this in its UI): `DIRECT` with a
    `definition` (a condition), computed at once; or `FROM_FILES`, whose members come from
    `POST .../members`."""
    segments = get_core(request).segments
    segment = segments.create(project_id, body, token.id)
    request.app.state.wake_workers()
    return segments.document(segment)


@router.get(ONE, responses=errors(401, 404))
def get_segment(request: Request, project_id: str = PROJECT, segment_key: str = KEY,
                token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """One segment, as the list shows it, with its definition."""
    segments = get_core(request).segments
    return segments.document(segments.get(project_id, segment_key))


@router.put(ONE, responses=errors(400, 401, 403, 404, 409))
def replace_segment(request: Request, project_id: str = PROJECT, segment_key: str = KEY,
                    body: Any = Body(...), token: Token = Depends(admin_token)
                    ) -> dict[str, Any]:
    """Change a segment; a changed definition is computed again."""
    segments = get_core(request).segments
    segment = segments.replace(project_id, segment_key, body, token.id)
    request.app.state.wake_workers()
    return segments.document(segment)


@router.delete(ONE, responses=errors(401, 403, 404, 409))
def delete_segment(request: Request, project_id: str = PROJECT, segment_key: str = KEY,
                   token: Token = Depends(admin_token)) -> dict[str, Any]:
    """Forget a segment and clear its members (409 while another segment names it)."""
    segment = get_core(request).segments.delete(project_id, segment_key, token.id)
    request.app.state.wake_workers()
    return {"key": segment.key, "deleted": True}


@router.post(ONE + "/members", responses=errors(400, 401, 403, 404, 413),
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {
                 "type": "string", "example": "id_$basic_userId\nC001\nC002\n"}}}}})
async def upload_members(request: Request, project_id: str = PROJECT,
                         segment_key: str = KEY, token: Token = Depends(admin_token)
                         ) -> dict[str, Any]:
    """A `FROM_FILES` segment's members: a CSV whose one column is headed by an identity
    key; exactly the users holding those values (unknown values counted, never created),
    up to 20 million rows, streamed to disk; a new upload replaces the members."""
    core = get_core(request)
    with tempfile.TemporaryDirectory(dir=core.settings.resolved_data_dir) as tmp:
        path = FilePath(tmp) / "members.csv"
        first_line = await _save_body(request, path)
        identity_key = first_line.strip().lstrip("\ufeff").strip('"')
        report = await anyio.to_thread.run_sync(
            core.segments.upload_members, project_id, segment_key, path, identity_key)
    return {"values": report.values, "members": report.members, "unknown": report.unknown}


async def _save_body(request: Request, path: FilePath) -> str:
    """Stream the body into `path`; its first line (the header)."""
    head = b""
    async with await anyio.open_file(path, "wb") as out:
        async for chunk in request.stream():
            if len(head) < UPLOAD_CHUNK and b"\n" not in head:
                head += chunk[:UPLOAD_CHUNK]
            await out.write(chunk)
    if not head.strip():
        raise BadRequest("the body is empty: send a CSV whose first line is an identity "
                         "key (id_…)", code="EMPTY_UPLOAD")
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")


@router.get(ONE + "/users", responses=errors(400, 401, 404))
def list_segment_users(
    request: Request,
    project_id: str = PROJECT,
    segment_key: str = KEY,
    keys: list[str] = Depends(property_keys),
    limit: int = LIMIT,
    offset: int = OFFSET,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """A page of the segment's members, as the tag's users page, by gio_id."""
    core = get_core(request)
    selection = core.segments.selection(project_id, segment_key)
    return core.lookup.selection_users(selection, keys, limit, offset, language).document()


@router.post(ONE + "/export_jobs", response_model=ExportJobCreated,
             responses=errors(400, 401, 404, 413, 429))
async def submit_segment_export_job(
    request: Request,
    project_id: str = PROJECT,
    segment_key: str = KEY,
    body: ExportJobBody | None = Body(None),
    token: Token = Depends(current_token_async),
) -> ExportJobCreated:
    """Download a segment's members (群体画像 download): the seed's body, answers, stages
    and files, named `{segment name}_{yyyy-MM-dd}_UserList`."""
    core = get_core(request)
    await anyio.to_thread.run_sync(core.segments.get, project_id, segment_key)
    job = await core.jobs.submit_async((body or ExportJobBody()).request(segment_key),
                                       token.id)
    request.app.state.wake_workers()
    return ExportJobCreated(id=job.id, name=job.name)


@router.post(ONE + "/computes", response_model=ComputeTriggered,
             responses=errors(400, 401, 404, 409))
def compute_segment(request: Request, project_id: str = PROJECT, segment_key: str = KEY,
                    token: Token = Depends(current_token_async)) -> ComputeTriggered:
    """Compute the segment's members now (GrowingIO's 触发计算); 409
    `COMPUTE_IN_PROGRESS` while a computation of it is queued or running."""
    core = get_core(request)
    core.segments.get(project_id, segment_key)
    core.tag_computes.trigger([segment_key], token_id=token.id)
    request.app.state.wake_workers()
    return ComputeTriggered(value=True, message=TRIGGERED)


@router.get(ONE + "/portrait", responses=errors(400, 401, 404))
def segment_portrait(
    request: Request,
    project_id: str = PROJECT,
    segment_key: str = KEY,
    keys: list[str] = Depends(property_keys),
    top: int = TOP,
    bins: int = BINS,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """群体画像: how each named attribute or tag spreads among the segment's members
    against all users (tagport's own, for the console), computed on the engine."""
    core = get_core(request)
    column = core.segments.get(project_id, segment_key).column
    return core.segments.portrait(column, keys, top, bins, language)


@router.get("/user_tags/{tag_key}/portrait", responses=errors(400, 401, 404))
def tag_portrait(
    request: Request,
    tag_key: str,
    keys: list[str] = Depends(property_keys),
    top: int = TOP,
    bins: int = BINS,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """群体画像 of a tag's users: each named attribute or tag among them against all users."""
    core = get_core(request)
    tag = core.lookup.tag(tag_key, language)
    return core.segments.portrait(tag, keys, top, bins, language)


@router.post("/projects/{project_id}/segment_estimates", responses=errors(400, 401, 404))
def estimate_segment(
    request: Request,
    project_id: str = PROJECT,
    body: Any = Body(..., examples=[{"definition": {
        "key": "usr_gender", "op": "=", "values": ["男"]}}]),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The size of a definition not yet saved, for live editing: counted on a sample of
    the users when there are many (`exact: false`, `sampleRatio`); answered in well under
    a second. A saved segment's count (its detector's `totalUsers`) is exact."""
    if not isinstance(body, dict) or "definition" not in body:
        raise BadRequest('the body is {"definition": <a condition>}', code="INVALID_SEGMENT")
    core = get_core(request)
    core.projects.get(project_id)
    return core.segments.estimate(project_id, body["definition"])
