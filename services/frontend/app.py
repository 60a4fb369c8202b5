"""The web frontend: ``create_app`` wires one replica; ``frontend_router`` is the same pages
for a bigger app (``image-builder up`` serves them beside the APIs at ``/``).

Pages are rendered on the server from Jinja templates; a little JavaScript of
our own (static/live.js) makes status changes appear live. Everything shown
is read from the backend's API with the signed-in user's token; the frontend
has no database, and its session is a sealed cookie, so replicas share nothing.

Every route sits behind the session middleware (client-side, AES-GCM sealed,
HttpOnly, SameSite=Lax) and the CSRF middleware (a signed double-submit
token: the ``_csrf_token`` field of every form must match the cookie).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from litestar import Litestar, Request, Response, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.client_side import (
    ClientSideSessionBackend,
    CookieBackendConfig,
)
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, ExceptionHandlersMap

from services.frontend.backend_api import ApiError, BackendUnavailable, SignInAgain
from services.frontend.blueprint_pages import BlueprintsController
from services.frontend.catalog import Catalog
from services.frontend.compose_page import ComposeController
from services.frontend.config import FrontendConfig
from services.frontend.create_pages import CreateImageController
from services.frontend.images import ImagesController
from services.frontend.pages import page
from services.frontend.session import SignInRequired, here, sign_in_url
from services.frontend.signin import OidcClient, SignInController
from services.identity.tokens import TokenValidator
from services.logs import log_unhandled

HERE = Path(__file__).parent
SESSION_COOKIE = "image_builder_session"
CSRF_COOKIE = "image_builder_csrf"
# The pages load nothing from elsewhere and are never framed (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Frontend:
    """What the frontend's handlers find at ``state.frontend``."""

    config: FrontendConfig
    # Base URL: the backend. Every call carries the user's own token.
    http: httpx2.AsyncClient
    oidc: OidcClient
    catalog: Catalog


@asynccontextmanager
async def frontend_state(config: FrontendConfig, validator: TokenValidator) -> AsyncIterator[dict[str, Any]]:
    """The frontend's state for ``app.state``, with its HTTP client open until closed."""
    async with httpx2.AsyncClient(base_url=config.backend_url, timeout=30.0) as http:
        yield {"frontend": Frontend(config=config, http=http, oidc=OidcClient(config, validator), catalog=Catalog())}


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def frontend_router(config: FrontendConfig) -> Router:
    """Every page, with the session and CSRF middleware and HTML error pages.

    Opted out of bearer authentication (``exclude_from_auth``) for when it
    shares an app with the APIs: a browser signs in with the session cookie.
    """
    session = CookieBackendConfig(
        secret=config.session_key(), key=SESSION_COOKIE, httponly=True, samesite="lax",
        secure=config.secure_cookies, max_age=config.session_max_age,
    )  # fmt: skip
    csrf = CSRFConfig(
        secret=config.csrf_secret(), cookie_name=CSRF_COOKIE, cookie_httponly=True, cookie_samesite="lax",
        cookie_secure=config.secure_cookies, header_name="x-csrf-token",
    )  # fmt: skip
    static = create_static_files_router(path="/static", directories=[HERE / "static"], opt={"exclude_from_auth": True})
    return Router(
        path="/",
        route_handlers=[
            SignInController, ImagesController, CreateImageController, ComposeController, BlueprintsController, static,
        ],
        middleware=[DefineMiddleware(_sessions, config=session), DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers=EXCEPTION_HANDLERS,
        response_headers=SECURITY_HEADERS,
        opt={"exclude_from_auth": True},
        include_in_schema=False,
    )


def _sessions(app: ASGIApp, config: CookieBackendConfig) -> SessionMiddleware[ClientSideSessionBackend]:
    # Built with the app: registering a Router copies its middleware, and the
    # backend's AES-GCM cipher cannot be copied.
    return SessionMiddleware(app=app, backend=ClientSideSessionBackend(config=config))


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(config: FrontendConfig, validator: TokenValidator) -> Litestar:
    """``validator`` judges the access tokens the issuer hands out, as the backend will."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with frontend_state(config, validator) as state:
            app.state.update(state)
            yield

    return Litestar(
        route_handlers=[frontend_router(config), health],
        lifespan=[lifespan],
        template_config=template_config(),
        exception_handlers={NotFoundException: _not_found},
        after_exception=[log_unhandled({**EXCEPTION_HANDLERS, NotFoundException: _not_found})],
        # The process configures logging (services/logs.py); Litestar must not replace it.
        logging_config=None,
        openapi_config=None,
    )


def _sign_in(request: Request[Any, Any, State], error: SignInRequired) -> Response[Any]:
    return Redirect(sign_in_url(error.next_url))


def _sign_in_again(request: Request[Any, Any, State], _: SignInAgain) -> Response[Any]:
    request.clear_session()
    return Redirect(sign_in_url(here(request) if request.method == "GET" else "/images"))


def _api_error(request: Request[Any, Any, State], error: ApiError) -> Response[Any]:
    if error.status == 404:
        return _not_found(request, NotFoundException())
    return page(request, "error.html", status_code=error.status, title="The image builder refused", reason=error.reason)


def _unavailable(request: Request[Any, Any, State], error: BackendUnavailable) -> Response[Any]:
    return page(request, "error.html", status_code=503, title="The image builder is unavailable", reason=str(error))


def _forbidden(request: Request[Any, Any, State], error: PermissionDeniedException) -> Response[Any]:
    # The CSRF middleware's refusal: most often a form left open past its cookie.
    reason = "This form expired or did not come from this site. Go back, reload the page and try again."
    return page(request, "error.html", status_code=403, title="Form refused", reason=reason)


def _not_found(request: Request[Any, Any, State], _: NotFoundException) -> Response[Any]:
    return page(request, "error.html", status_code=404, title="Not found",
                reason="There is nothing here, or it belongs to another organization.")  # fmt: skip


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: _sign_in,
    SignInAgain: _sign_in_again,
    ApiError: _api_error,
    BackendUnavailable: _unavailable,
    PermissionDeniedException: _forbidden,
    NotFoundException: _not_found,
}
