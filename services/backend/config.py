"""Turning the process settings into the backend's configuration."""

from __future__ import annotations

from services.backend.app import BackendConfig
from services.backend.quotas import QuotaPolicy
from services.identity.client import ServiceTokenSource
from services.settings import SERVICE_TOPICS, Settings


def missing_settings(settings: Settings) -> list[str]:
    """The environment variables ``serve backend`` needs that are not set."""
    needed = {
        "IMAGE_BUILDER_OIDC_ISSUER": settings.oidc_issuer,
        "IMAGE_BUILDER_BACKEND_COMPOSER_URL": settings.backend_composer_url,
        "IMAGE_BUILDER_BACKEND_CLIENT_ID": settings.backend_client_id,
        "IMAGE_BUILDER_BACKEND_CLIENT_SECRET": settings.backend_client_secret,
        "IMAGE_BUILDER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    return [name for name, value in needed.items() if not value]


def backend_config(settings: Settings) -> BackendConfig:
    assert settings.backend_composer_url is not None and settings.backend_client_id is not None
    return BackendConfig(
        database_url=settings.backend_database_url,
        composer_url=settings.backend_composer_url,
        client_id=settings.backend_client_id,
        outbox_topic=SERVICE_TOPICS["backend"],
        composer_topic=SERVICE_TOPICS["composer"],
        quota=quota_policy(settings),
        operator_org=settings.operator_org,
        package_cache_dir=settings.backend_package_cache_dir,
    )


def quota_policy(settings: Settings) -> QuotaPolicy:
    return QuotaPolicy(
        composes=settings.quota_composes, window_seconds=settings.quota_window_seconds, overrides=settings.quota_overrides
    )


def backend_tokens(settings: Settings) -> ServiceTokenSource:
    """The backend's client-credentials tokens for calling the composer."""
    assert settings.backend_client_id is not None and settings.backend_client_secret is not None
    token_url = settings.backend_token_url or f"{settings.oidc_issuer}/token"
    return ServiceTokenSource(
        token_url, settings.backend_client_id, settings.backend_client_secret, audience=settings.oidc_audience
    )
