"""Settings for every process, read from the environment in one place.

Embedded mode needs none of them: without database URLs each service keeps a
SQLite event store under the data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

SERVICE_TOPICS = {"composer": "composer.events.v1", "backend": "image-builder.events.v1"}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    composer_database_url: str
    backend_database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    kafka_bootstrap: str | None = None
    kafka_partitions: int = 6
    relay_poll_interval: float = 2.0
    outbox_retention_hours: float = 24.0
    oidc_issuer: str | None = None
    oidc_audience: str = "image-builder"
    oidc_jwks_url: str | None = None
    oidc_org_claim: str = "org_id"
    oidc_roles_claim: str = "roles"
    # The built-in issuer served on its own (`serve issuer`): its TOML or JSON configuration.
    issuer_config: Path | None = None
    composer_trusted_clients: frozenset[str] = frozenset()
    composer_lease_seconds: float = 60.0
    composer_max_attempts: int = 3
    artifact_dir: Path | None = None
    # The backend calls the composer as this OAuth2 client (role service, trusted by the composer).
    backend_composer_url: str | None = None
    backend_client_id: str | None = None
    backend_client_secret: str | None = None
    backend_token_url: str | None = None
    # GET /packages' apt lists; by default the worker's cache, so one machine keeps one copy.
    backend_package_cache_dir: Path = Path(".cache/worker")
    # Composes an org may request per window (None: no limit), and orgs with limits of their own.
    quota_composes: int | None = None
    quota_window_seconds: float = 24 * 3600.0
    quota_overrides: dict[str, int | None] = msgspec.field(default_factory=dict)
    # Auditors that also have role admin in this org read every org's event log.
    operator_org: str | None = None
    # The web frontend: the backend it reads, where browsers reach it, its OAuth2
    # client (no secret: a public client) and the secret its session cookies are sealed with.
    frontend_backend_url: str | None = None
    frontend_public_url: str | None = None
    frontend_client_id: str | None = None
    frontend_client_secret: str | None = None
    frontend_session_secret: str | None = None
    worker_client_id: str | None = None
    worker_client_secret: str | None = None
    worker_cache_dir: Path = Path(".cache/worker")
    worker_work_dir: Path = Path("/var/tmp/image-builder")
    # Uploads: a request never carries credentials; without keys boto3's own
    # chain applies (AWS_* variables, ~/.aws, an instance profile).
    worker_aws_access_key_id: str | None = None
    worker_aws_secret_access_key: str | None = None
    worker_aws_region: str = "us-east-1"
    worker_aws_bucket: str | None = None
    worker_aws_s3_endpoint_url: str | None = None
    worker_aws_ec2_endpoint_url: str | None = None
    worker_aws_url_expiry_seconds: int = 24 * 3600
    worker_aws_import_timeout_seconds: float = 3600.0
    # auto: a worker started as root on Debian installs missing build tools; never: it only names them.
    install_build_tools: str = "auto"

    def database_url(self, service: str) -> str:
        if service == "composer":
            return self.composer_database_url
        if service == "backend":
            return self.backend_database_url
        raise ValueError(f"unknown service {service!r}; choose composer or backend")

    def worker_aws(self) -> dict[str, Any]:
        """The worker's AWS settings under the names workers.aws.config.AwsConfig takes."""
        prefix = "worker_aws_"
        return {name.removeprefix(prefix): getattr(self, name) for name in self.__struct_fields__ if name.startswith(prefix)}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(str(overrides.get("data_dir") or env.get("IMAGE_BUILDER_DATA_DIR", ".data"))).resolve()
    return Settings(
        data_dir=data_dir,
        composer_database_url=env.get("IMAGE_BUILDER_COMPOSER_DATABASE_URL")
        or f"sqlite+aiosqlite:///{data_dir / 'composer.db'}",
        backend_database_url=env.get("IMAGE_BUILDER_BACKEND_DATABASE_URL")
        or f"sqlite+aiosqlite:///{data_dir / 'image-builder.db'}",
        host=str(overrides.get("host") or env.get("IMAGE_BUILDER_HOST", "127.0.0.1")),
        port=int(overrides.get("port") or env.get("IMAGE_BUILDER_PORT", "8080")),
        kafka_bootstrap=env.get("IMAGE_BUILDER_KAFKA_BOOTSTRAP") or None,
        kafka_partitions=int(env.get("IMAGE_BUILDER_KAFKA_PARTITIONS", "6")),
        relay_poll_interval=float(env.get("IMAGE_BUILDER_RELAY_POLL_INTERVAL", "2.0")),
        outbox_retention_hours=float(env.get("IMAGE_BUILDER_OUTBOX_RETENTION_HOURS", "24")),
        oidc_issuer=env.get("IMAGE_BUILDER_OIDC_ISSUER") or None,
        oidc_audience=env.get("IMAGE_BUILDER_OIDC_AUDIENCE", "image-builder"),
        oidc_jwks_url=env.get("IMAGE_BUILDER_OIDC_JWKS_URL") or None,
        oidc_org_claim=env.get("IMAGE_BUILDER_OIDC_ORG_CLAIM", "org_id"),
        oidc_roles_claim=env.get("IMAGE_BUILDER_OIDC_ROLES_CLAIM", "roles"),
        issuer_config=Path(env["IMAGE_BUILDER_ISSUER_CONFIG"]) if env.get("IMAGE_BUILDER_ISSUER_CONFIG") else None,
        composer_trusted_clients=frozenset(
            name.strip() for name in env.get("IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS", "").split(",") if name.strip()
        ),
        composer_lease_seconds=float(env.get("IMAGE_BUILDER_COMPOSER_LEASE_SECONDS", "60")),
        composer_max_attempts=int(env.get("IMAGE_BUILDER_COMPOSER_MAX_ATTEMPTS", "3")),
        artifact_dir=Path(env.get("IMAGE_BUILDER_ARTIFACT_DIR") or data_dir / "artifacts"),
        backend_composer_url=env.get("IMAGE_BUILDER_BACKEND_COMPOSER_URL") or None,
        backend_client_id=env.get("IMAGE_BUILDER_BACKEND_CLIENT_ID") or None,
        backend_client_secret=env.get("IMAGE_BUILDER_BACKEND_CLIENT_SECRET") or None,
        backend_token_url=env.get("IMAGE_BUILDER_BACKEND_TOKEN_URL") or None,
        backend_package_cache_dir=Path(
            env.get("IMAGE_BUILDER_BACKEND_PACKAGE_CACHE_DIR") or env.get("IMAGE_BUILDER_WORKER_CACHE_DIR") or data_dir / "worker-cache"
        ),
        quota_composes=_quota("IMAGE_BUILDER_QUOTA_COMPOSES", env.get("IMAGE_BUILDER_QUOTA_COMPOSES", "")),
        quota_window_seconds=_window(env.get("IMAGE_BUILDER_QUOTA_WINDOW_SECONDS", str(24 * 3600))),
        quota_overrides=_quota_overrides(env.get("IMAGE_BUILDER_QUOTA_OVERRIDES", "")),
        operator_org=env.get("IMAGE_BUILDER_OPERATOR_ORG") or None,
        frontend_backend_url=env.get("IMAGE_BUILDER_FRONTEND_BACKEND_URL") or None,
        frontend_public_url=env.get("IMAGE_BUILDER_FRONTEND_PUBLIC_URL") or None,
        frontend_client_id=env.get("IMAGE_BUILDER_FRONTEND_CLIENT_ID") or None,
        frontend_client_secret=env.get("IMAGE_BUILDER_FRONTEND_CLIENT_SECRET") or None,
        frontend_session_secret=env.get("IMAGE_BUILDER_FRONTEND_SESSION_SECRET") or None,
        worker_client_id=env.get("IMAGE_BUILDER_WORKER_CLIENT_ID") or None,
        worker_client_secret=env.get("IMAGE_BUILDER_WORKER_CLIENT_SECRET") or None,
        worker_cache_dir=Path(env.get("IMAGE_BUILDER_WORKER_CACHE_DIR") or data_dir / "worker-cache"),
        worker_work_dir=Path(env.get("IMAGE_BUILDER_WORKER_WORK_DIR") or data_dir / "builds"),
        worker_aws_access_key_id=env.get("IMAGE_BUILDER_WORKER_AWS_ACCESS_KEY_ID") or None,
        worker_aws_secret_access_key=env.get("IMAGE_BUILDER_WORKER_AWS_SECRET_ACCESS_KEY") or None,
        worker_aws_region=env.get("IMAGE_BUILDER_WORKER_AWS_REGION") or "us-east-1",
        worker_aws_bucket=env.get("IMAGE_BUILDER_WORKER_AWS_BUCKET") or None,
        worker_aws_s3_endpoint_url=env.get("IMAGE_BUILDER_WORKER_AWS_S3_ENDPOINT_URL") or None,
        worker_aws_ec2_endpoint_url=env.get("IMAGE_BUILDER_WORKER_AWS_EC2_ENDPOINT_URL") or None,
        worker_aws_url_expiry_seconds=int(env.get("IMAGE_BUILDER_WORKER_AWS_URL_EXPIRY_SECONDS", str(24 * 3600))),
        worker_aws_import_timeout_seconds=float(env.get("IMAGE_BUILDER_WORKER_AWS_IMPORT_TIMEOUT_SECONDS", "3600")),
        install_build_tools=env.get("IMAGE_BUILDER_INSTALL_BUILD_TOOLS", "auto"),
    )


def _quota(name: str, text: str) -> int | None:
    """A number of composes; empty or ``unlimited`` for no limit."""
    text = text.strip()
    if text in ("", "unlimited"):
        return None
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number of composes (or 'unlimited')")
    return int(text)


def _window(text: str) -> float:
    seconds = float(text)
    if seconds <= 0:
        raise ValueError(f"IMAGE_BUILDER_QUOTA_WINDOW_SECONDS: {text!r} is not a positive number of seconds")
    return seconds


def _quota_overrides(text: str) -> dict[str, int | None]:
    """``org-a=100,org-b=0,org-c=unlimited``: per-org limits over the default."""
    found: dict[str, int | None] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        org, equals, limit = item.partition("=")
        if not equals or not org.strip():
            raise ValueError(f"IMAGE_BUILDER_QUOTA_OVERRIDES: {item!r} is not ORG=LIMIT")
        found[org.strip()] = _quota(f"IMAGE_BUILDER_QUOTA_OVERRIDES ({org.strip()})", limit)
    return found
