"""Litestar integration: bearer authentication middleware and role guards.

    app = Litestar(
        route_handlers=[...],
        middleware=[BearerAuth(validator)],
        exception_handlers=IDENTITY_EXCEPTION_HANDLERS,
    )

    @get("/audit", guards=[require_roles("auditor", "admin")])
    async def audit(request: Request[Principal, str, State]) -> ...: request.user.org_id

Errors have one body shape, as the compose API's error objects:
``{"errors": [{"id": "401", "reason": "<human reason>", "details": <object or null>}]}``
with ``id`` the HTTP status as a string: 401 (no or invalid token, with an
RFC 6750 ``WWW-Authenticate`` header), 403 (a required role is missing) and
503 (the issuer's keys cannot be fetched, so no token can be judged).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    ExceptionHandlersMap,
    Guard,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from services.identity.principal import ROLES, Principal, Role
from services.identity.tokens import InvalidToken, IssuerUnavailable, TokenValidator

# Probes and the API description must answer without a token.
DEFAULT_EXCLUDED_PATHS = ("/health", "/ready", "/metrics", "/schema")
# A handler with opt={"exclude_from_auth": True} is public too (Litestar's convention).
EXCLUDE_OPT_KEY = "exclude_from_auth"
REALM = "image-builder"


def error_body(status_code: int, reason: str, details: object = None) -> dict[str, list[dict[str, object]]]:
    return {"errors": [{"id": str(status_code), "reason": reason, "details": details}]}


def error_response(
    status_code: int, reason: str, details: object = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(error_body(status_code, reason, details), status_code=status_code, headers=headers)


class NotAuthenticated(NotAuthorizedException):
    """Raised by a guard on a route the middleware did not authenticate."""


class MissingRole(PermissionDeniedException):
    """The caller is authenticated but has none of the roles the route needs."""


class BearerAuth(ASGIMiddleware):
    """Puts the caller's Principal at ``request.user`` (``scope["user"]``) and
    the raw token at ``request.auth``; answers 401 or 503 itself otherwise.

    ``exclude`` holds path prefixes matched on whole segments ("/health"
    covers "/health" and "/health/live", not "/healthy") against the path as
    the client sent it. Handlers with ``opt={"exclude_from_auth": True}``
    (``mount_issuer`` sets it) are public too."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = EXCLUDE_OPT_KEY

    def __init__(self, validator: TokenValidator, exclude: Iterable[str] = DEFAULT_EXCLUDED_PATHS) -> None:
        self.validator = validator
        self.exclude = tuple(path.rstrip("/") for path in exclude)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self._excluded(_path_as_sent(scope)):
            await next_app(scope, receive, send)
            return
        scheme, _, token = _header(scope, b"authorization").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            challenge = f'Bearer realm="{REALM}"'
            await _refuse(scope, send, 401, "a bearer token is required", headers={"WWW-Authenticate": challenge})
            return
        try:
            principal = await self.validator.validate(token)
        except InvalidToken as invalid:
            challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{_quoted(invalid.reason)}"'
            await _refuse(scope, send, 401, f"invalid token: {invalid.reason}", headers={"WWW-Authenticate": challenge})
            return
        except IssuerUnavailable as unavailable:
            reason = "tokens cannot be checked right now"
            await _refuse(scope, send, 503, reason, details=str(unavailable), headers={"Retry-After": "30"})
            return
        scope["user"] = principal
        scope["auth"] = token
        await next_app(scope, receive, send)

    def _excluded(self, path: str) -> bool:
        if any(segment in (".", "..") for segment in path.split("/")):
            return False  # "/health/../api" must not pass as health
        return any(path == prefix or path.startswith(f"{prefix}/") for prefix in self.exclude)


def require_roles(*roles: Role) -> Guard:
    """A guard passing callers that have at least one of ``roles``."""
    if not roles or not ROLES.issuperset(roles):
        raise ValueError(f"require_roles needs known roles, got {list(roles)}")
    needed = frozenset(roles)

    def has_a_required_role(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise NotAuthenticated("a bearer token is required")
        if principal.roles.isdisjoint(needed):
            raise MissingRole(f"this needs one of the roles: {', '.join(sorted(needed))}")

    return has_a_required_role


def _auth_exception_response(
    _: Request[Any, Any, Any], error: NotAuthorizedException | PermissionDeniedException
) -> Response:
    headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'} if error.status_code == 401 else None
    return error_response(error.status_code, error.detail, headers=headers)


# Register with the app so guard failures get the same body as the middleware's.
IDENTITY_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotAuthenticated: _auth_exception_response,
    MissingRole: _auth_exception_response,
}


async def _refuse(
    scope: Scope, send: Send, status: int, reason: str, details: object = None, headers: dict[str, str] | None = None
) -> None:
    if scope["type"] == "websocket":
        # A websocket cannot get an HTTP status before accept; 1008 is
        # "policy violation" (RFC 6455 section 7.4.1).
        await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
        return
    body = msgspec.json.encode(error_body(status, reason, details))
    raw_headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode("latin-1")) for name, value in (headers or {}).items()),
    ]
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=raw_headers))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


def _path_as_sent(scope: Scope) -> str:
    """Routing rewrites ``scope["path"]`` for mounted apps ("/files/health/x"
    becomes "/health/x"), so match the raw path instead. It stays
    percent-encoded: a prefix matches literally or not at all (fail closed)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
    root = scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _quoted(text: str) -> str:
    # RFC 6750 section 3: error_description is a quoted string of printable ASCII, no '"' or '\'.
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')
