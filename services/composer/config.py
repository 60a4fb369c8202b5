"""Turning the process settings into the composer's configuration."""

from __future__ import annotations

from services.composer.app import ComposerConfig
from services.identity.tokens import TokenValidator
from services.settings import SERVICE_TOPICS, Settings


def composer_config(settings: Settings) -> ComposerConfig:
    assert settings.artifact_dir is not None
    return ComposerConfig(
        database_url=settings.composer_database_url,
        artifact_dir=settings.artifact_dir,
        trusted_clients=settings.composer_trusted_clients,
        lease_seconds=settings.composer_lease_seconds,
        max_attempts=settings.composer_max_attempts,
        outbox_topic=SERVICE_TOPICS["composer"],
        operator_org=settings.operator_org,
    )


def token_validator(settings: Settings) -> TokenValidator:
    assert settings.oidc_issuer is not None
    return TokenValidator(
        settings.oidc_issuer,
        settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        org_claim=settings.oidc_org_claim,
        roles_claim=settings.oidc_roles_claim,
    )
