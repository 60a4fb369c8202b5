"""One place where the backend's errors become HTTP errors.

The body has the composer's shape: ``{"errors": [{"id", "reason", "details"}]}``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from domain.blueprint_toml import NotInToml
from domain.blueprints import BlueprintRuleBroken, UnknownVersion
from domain.compose_history import ComposeRuleBroken
from domain.field_errors import ValidationFailed
from services.backend.blueprint_records import BlueprintNameTaken, BlueprintNotFound
from services.backend.build_reads import ArtifactNotFound
from services.backend.catalog_api import UnknownDistribution
from services.backend.compose_documents import NotAtComposer
from services.backend.composer_client import ComposerUnavailable, ComposerUnreachable
from services.backend.history import BadCursor
from services.backend.packages import PackageListsUnavailable
from services.backend.quotas import QuotaExceeded
from services.backend.records import ComposeNotFound
from services.identity.guards import IDENTITY_EXCEPTION_HANDLERS, error_response


def _validation_failed(_: Request[Any, Any, Any], failed: ValidationFailed) -> Response:
    errors = [
        {"id": "400", "reason": f"{error.field or 'body'}: {error.reason}", "details": {"field": error.field}}
        for error in failed.errors
    ]
    return Response({"errors": errors}, status_code=400)


def _not_found(_: Request[Any, Any, Any], error: ComposeNotFound) -> Response:
    return error_response(404, str(error), {"compose_id": error.compose_id})


def _no_artifact(_: Request[Any, Any, Any], error: ArtifactNotFound) -> Response:
    return error_response(404, str(error), {"compose_id": error.compose_id, "name": error.name})


def _unknown_distribution(_: Request[Any, Any, Any], error: UnknownDistribution) -> Response:
    return error_response(404, str(error), {"distribution": error.distribution})


def _bad_cursor(_: Request[Any, Any, Any], error: BadCursor) -> Response:
    return error_response(400, str(error), {"field": "cursor"})


def _conflict(_: Request[Any, Any, Any], error: ComposeRuleBroken | BlueprintRuleBroken) -> Response:
    return error_response(409, str(error))


def _not_at_composer(_: Request[Any, Any, Any], error: NotAtComposer) -> Response:
    return error_response(409, str(error), {"compose_id": error.compose_id, "submission": error.submission.value})


def _composer_unavailable(_: Request[Any, Any, Any], error: ComposerUnavailable) -> Response:
    # Unreachable: 503, try again later; any other failure of the composer: 502.
    status = 503 if isinstance(error, ComposerUnreachable) else 502
    return error_response(status, f"the composer could not answer: {error}", headers={"Retry-After": "30"})


def _no_package_lists(_: Request[Any, Any, Any], error: PackageListsUnavailable) -> Response:
    return error_response(503, str(error), headers={"Retry-After": "60"})


def _over_quota(_: Request[Any, Any, Any], error: QuotaExceeded) -> Response:
    headers = None if error.frees_at is None else {"Retry-After": str(error.retry_after_seconds())}
    return error_response(403, str(error), error.details(), headers=headers)


def _blueprint_not_found(_: Request[Any, Any, Any], error: BlueprintNotFound | UnknownVersion) -> Response:
    details: dict[str, Any] = {"blueprint_id": error.blueprint_id}
    if error.version is not None:
        details["version"] = error.version
    return error_response(404, str(error), details)


def _name_taken(_: Request[Any, Any, Any], error: BlueprintNameTaken) -> Response:
    return error_response(409, str(error), {"name": error.name})


def _not_in_toml(_: Request[Any, Any, Any], error: NotInToml) -> Response:
    return error_response(409, str(error), {"fields": error.fields})


def _http(_: Request[Any, Any, Any], error: HTTPException) -> Response:
    return error_response(error.status_code, str(error.detail), error.extra or None)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **IDENTITY_EXCEPTION_HANDLERS,
    ValidationFailed: _validation_failed,
    ComposeNotFound: _not_found,
    ArtifactNotFound: _no_artifact,
    UnknownDistribution: _unknown_distribution,
    BadCursor: _bad_cursor,
    ComposeRuleBroken: _conflict,
    BlueprintNotFound: _blueprint_not_found,
    UnknownVersion: _blueprint_not_found,
    BlueprintNameTaken: _name_taken,
    BlueprintRuleBroken: _conflict,
    NotInToml: _not_in_toml,
    NotAtComposer: _not_at_composer,
    ComposerUnavailable: _composer_unavailable,
    QuotaExceeded: _over_quota,
    PackageListsUnavailable: _no_package_lists,
    HTTPException: _http,
}
