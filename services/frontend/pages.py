"""Rendering a page: every template gets the signed-in user (or None) besides its own context."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from services.frontend.session import signed_in

NO_STORE = {"Cache-Control": "no-store"}


def page(request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any) -> Template:
    # Pages show one user's data: never cached by a browser or a proxy for someone else.
    return Template(
        template_name=template, context={"user": signed_in(request), **context}, status_code=status_code, headers=NO_STORE
    )
