"""Routes whose error messages follow the `language` header (CH default, US English).

The sibling routes use `LocalizedRoute`: their services word their own errors in the
caller's language; this class translates what happens before the service runs (bad
query parameters, a missing or unknown token). The seed routes keep their messages.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from tagport.errors import BadRequest, TagportError
from tagport.i18n import Language, Text, language_of

# the shared auth errors, by their English message
_SHARED = {
    "missing Authorization header: use 'Bearer <token>'":
        Text("缺少 Authorization 请求头：请使用 'Bearer <token>'",
             "missing Authorization header: use 'Bearer <token>'"),
    "the Authorization header must be 'Bearer <token>'":
        Text("Authorization 请求头必须是 'Bearer <token>'",
             "the Authorization header must be 'Bearer <token>'"),
    "the token is unknown or revoked":
        Text("令牌不存在或已被吊销", "the token is unknown or revoked"),
}
_INVALID = {
    "int_parsing": Text("{field}：必须是整数", "{field}: must be an integer"),
    "missing": Text("{field}：缺少此参数", "{field}: is required"),
}
_OTHER = Text("{field}：{msg}", "{field}: {msg}")


def request_language(
    language: str | None = Header(None, description="`CH` (default) or `US` (English)."),
) -> Language:
    return language_of(language)


def validation_message(exc: RequestValidationError, language: Language) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
        text = _INVALID.get(err["type"], _OTHER)
        problems.append(text(language, field=field, msg=err["msg"]))
    return "; ".join(problems)


class LocalizedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def localized(request: Request) -> Response:
            language = language_of(request.headers.get("language"))
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise BadRequest(validation_message(exc, language)) from None
            except TagportError as exc:
                if (text := _SHARED.get(exc.message)) is not None:
                    exc.message = text(language)
                raise

        return localized
