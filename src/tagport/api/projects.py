"""`GET /v1/api/projects` and the project forms of the tag routes (spec section 8).

Users, identities, attributes and tags are shared by all projects, so a project form
is its platform route's own endpoint registered under `/v1/api/projects/{project_id}`
behind one more dependency: after authentication, an unknown project is 404
`PROJECT_NOT_FOUND` before the endpoint looks at anything.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute

from tagport.api.deps import current_token_async, get_core, store_read
from tagport.api.localized import LocalizedRoute, request_language
from tagport.auth.tokens import Token
from tagport.i18n import Language
from tagport.profiles.lookup import MAX_PAGE_LIMIT, Page, check_page
from tagport.projects.models import Project

PLATFORM_PREFIX = "/v1/api"
PROJECT_PREFIX = "/projects/{project_id}"
# the platform routes that have a project form (users and tags are every project's)
TAG_ROUTES = frozenset({
    "/v1/api/user_tags",
    "/v1/api/user_tags/{tag_key}/users",
    "/v1/api/user_tags/{tag_key}/export_jobs",
    "/v1/api/user_tags/{tag_key}/computes",
    "/v1/api/users/{user_key}/{value:path}",  # GrowingIO's 空间-单用户查询
})

router = APIRouter(prefix=PLATFORM_PREFIX, route_class=LocalizedRoute, tags=["projects"])


async def existing_project(
    request: Request,
    project_id: str = Path(description="A project's 8-character id (`tagport project list`)."),
    token: Token = Depends(current_token_async),
) -> Project:
    """The project named in the path; 404 `PROJECT_NOT_FOUND` when there is none."""
    return await store_read(request, get_core(request).projects.get, project_id)


@router.get("/projects")
def list_projects(
    request: Request,
    limit: int = Query(MAX_PAGE_LIMIT, description=f"Page size, 1 to {MAX_PAGE_LIMIT}."),
    offset: int = Query(0, description="How many items to skip."),
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The projects, oldest (the default project) first (tagport's own route)."""
    check_page(limit, offset, language)
    projects = get_core(request).projects
    total = projects.count()
    values = [p.document() for p in projects.list(limit, offset)]
    return Page(limit, offset, total, values, offset + limit < total).document()


def project_forms(*platform: APIRouter) -> APIRouter:
    """The routes of `platform` listed in TAG_ROUTES, each again under the project prefix:
    the same endpoint, answer models and route class, after `existing_project`."""
    forms = APIRouter(prefix=PLATFORM_PREFIX + PROJECT_PREFIX, tags=["projects"])
    for source in platform:
        for route in source.routes:
            if not (isinstance(route, APIRoute) and route.path in TAG_ROUTES):
                continue
            forms.add_api_route(
                route.path.removeprefix(PLATFORM_PREFIX), route.endpoint,
                methods=sorted(route.methods), name=f"project_{route.name}",
                response_model=route.response_model, responses=route.responses,
                status_code=route.status_code, summary=route.summary,
                description=route.description,
                dependencies=[Depends(existing_project), *route.dependencies],
                route_class_override=type(route),
            )
    return forms
