"""One place where domain errors become HTTP errors.

Every error body has the same shape: ``{"errors": [{"id", "reason", "details"}]}``
(the identity middleware answers 401/403 the same way).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from domain.field_errors import ValidationFailed
from domain.jobs import JobRuleBroken, StaleToken
from services.composer.artifacts import ArtifactNotFound, ArtifactRejected
from services.composer.fleet import UnknownWorker
from services.composer.views import ComposeNotFound
from services.identity.guards import IDENTITY_EXCEPTION_HANDLERS, error_response


def _validation_failed(_: Request[Any, Any, Any], failed: ValidationFailed) -> Response:
    return Response(
        {
            "errors": [
                {"id": "400", "reason": f"{error.field or 'body'}: {error.reason}", "details": {"field": error.field}}
                for error in failed.errors
            ]
        },
        status_code=400,
    )


def _not_found(_: Request[Any, Any, Any], error: ComposeNotFound) -> Response:
    return error_response(404, str(error), {"compose_id": error.compose_id})


def _no_artifact(_: Request[Any, Any, Any], error: ArtifactNotFound) -> Response:
    return error_response(404, str(error), {"compose_id": error.compose_id, "name": error.name})


def _unknown_worker(_: Request[Any, Any, Any], error: UnknownWorker) -> Response:
    return error_response(404, str(error), {"worker_id": error.worker_id})


def _stale(_: Request[Any, Any, Any], error: StaleToken) -> Response:
    return error_response(409, str(error))


def _conflict(_: Request[Any, Any, Any], error: JobRuleBroken) -> Response:
    return error_response(409, str(error))


def _rejected(_: Request[Any, Any, Any], error: ArtifactRejected) -> Response:
    return error_response(400, str(error))


def _http(_: Request[Any, Any, Any], error: HTTPException) -> Response:
    details = error.extra if error.extra else None
    return error_response(error.status_code, str(error.detail), details)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **IDENTITY_EXCEPTION_HANDLERS,
    ValidationFailed: _validation_failed,
    ComposeNotFound: _not_found,
    ArtifactNotFound: _no_artifact,
    UnknownWorker: _unknown_worker,
    StaleToken: _stale,
    JobRuleBroken: _conflict,
    ArtifactRejected: _rejected,
    HTTPException: _http,
}
