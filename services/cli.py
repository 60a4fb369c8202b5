"""The ``image-builder`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from events.migrations import SERVICES, upgrade
from services.client.commands import add_client_commands
from services.logs import configure_logging
from services.settings import Settings, load_settings
from services.stores import open_store


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="image-builder", description="Event-sourced Debian image builder")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="upgrade a service database to the newest schema")
    migrate.add_argument("--service", choices=SERVICES, required=True)
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(run=_migrate)

    audit = commands.add_parser("audit", help="audit a service's event log")
    audit_commands = audit.add_subparsers(required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="walk the hash chain; exit 1 if it is broken")
    verify.add_argument("--service", choices=SERVICES, required=True)
    verify.set_defaults(run=_verify)

    replay = commands.add_parser("replay", help="rebuild a service's projections from its event store")
    replay.add_argument("--service", choices=("backend",), required=True)
    replay.set_defaults(run=_replay)

    relay = commands.add_parser("relay", help="publish a service's outbox to Kafka")
    relay.add_argument("--service", choices=SERVICES, required=True)
    relay.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    relay.set_defaults(run=_relay)

    serve = commands.add_parser("serve", help="run one service (distributed mode)")
    serve.add_argument("service", choices=("composer", "backend", "frontend", "issuer"))
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a worker that builds images for a composer")
    worker.add_argument("--composer", required=True, help="the composer's base URL")
    worker.add_argument("--token-url", help="OAuth2 token endpoint (default: <issuer>/token)")
    worker.add_argument("--jobs", type=int, default=1, help="jobs to run at once (default 1)")
    worker.add_argument("--name", help="name shown in the composer (default: host name)")
    worker.set_defaults(run=_worker)

    up = commands.add_parser("up", help="run the whole system in one process (embedded mode)")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default 8080)")
    up.add_argument("--data-dir", help="where the embedded databases live (default ./.data)")
    up.set_defaults(run=_up)

    add_client_commands(commands)
    return parser


def _migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    upgrade(settings.database_url(args.service), args.service, args.revision)
    print(f"{args.service} database is at {args.revision}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    async def verify() -> int:
        async with open_store(load_settings(), args.service) as store:
            report = await store.verify()
        if report.intact:
            print(f"{args.service}: hash chain intact ({report.checked} events)")
            return 0
        print(
            f"{args.service}: hash chain BROKEN at position {report.first_broken_position}: {report.reason} "
            f"({report.checked} events verified before it)"
        )
        return 1

    return asyncio.run(verify())


def _replay(args: argparse.Namespace) -> int:
    from services.backend.replay import rebuild_projections

    async def replay() -> int:
        async with open_store(load_settings(), args.service) as store:
            report = await rebuild_projections(store)
        print(
            f"{args.service}: rebuilt the projections from {report.events} events: "
            f"{report.composes} composes, {report.blueprints} blueprints"
        )
        return 0

    return asyncio.run(replay())


def _relay(args: argparse.Namespace) -> int:
    from services.relay import run_relay

    settings = load_settings()
    if not settings.kafka_bootstrap:
        print(
            "image-builder relay publishes to Kafka: set IMAGE_BUILDER_KAFKA_BOOTSTRAP=host:port "
            "(the embedded mode relays in-process inside `image-builder up`)",
            file=sys.stderr,
        )
        return 2
    import uvloop

    uvloop.run(run_relay(settings, args.service, metrics_port=args.metrics_port))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings(host=args.host, port=args.port)
    if args.service == "backend":
        return _serve_backend(settings)
    if args.service == "frontend":
        return _serve_frontend(settings)
    if args.service == "issuer":
        return _serve_issuer(settings)
    from services.composer.app import create_app
    from services.composer.config import composer_config, token_validator

    if not settings.oidc_issuer:
        print(
            "image-builder serve composer checks bearer tokens: set IMAGE_BUILDER_OIDC_ISSUER to the "
            "OpenID Connect issuer URL (and IMAGE_BUILDER_OIDC_AUDIENCE if not image-builder)",
            file=sys.stderr,
        )
        return 2
    configure_logging()
    app = create_app(composer_config(settings), token_validator(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    return 0


def _serve_backend(settings: Settings) -> int:
    import uvicorn

    from events.kafka import KafkaTransport
    from services.backend.app import create_app
    from services.backend.config import backend_config, backend_tokens, missing_settings
    from services.composer.config import token_validator

    if missing := missing_settings(settings):
        print(
            f"image-builder serve backend needs {', '.join(missing)}: the token issuer, the composer's URL, "
            "the backend's OAuth2 client (role service, listed in the composer's "
            "IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS) and Kafka, where it follows the composer's events",
            file=sys.stderr,
        )
        return 2
    assert settings.kafka_bootstrap is not None
    configure_logging()
    transport = KafkaTransport(settings.kafka_bootstrap, client_id="image-builder-backend")
    app = create_app(backend_config(settings), token_validator(settings), backend_tokens(settings), transport)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    return 0


def _serve_frontend(settings: Settings) -> int:
    import uvicorn

    from services.composer.config import token_validator
    from services.frontend.app import create_app
    from services.frontend.config import frontend_config, missing_settings

    if missing := missing_settings(settings):
        print(
            f"image-builder serve frontend needs {', '.join(missing)}: the OpenID Connect issuer people sign in "
            "at, the backend's URL, the frontend's OAuth2 client (authorization code flow; "
            "IMAGE_BUILDER_FRONTEND_CLIENT_SECRET unless it is a public client) and a secret of at least "
            "32 characters for its session cookies",
            file=sys.stderr,
        )
        return 2
    try:
        config = frontend_config(settings)
    except ValueError as error:
        print(f"image-builder serve frontend: {error}", file=sys.stderr)
        return 2
    configure_logging()
    uvicorn.run(create_app(config, token_validator(settings)), host=settings.host, port=settings.port, log_config=None)
    return 0


def _serve_issuer(settings: Settings) -> int:
    import msgspec
    import uvicorn
    from litestar import Litestar

    from services.identity.config import IssuerConfig
    from services.identity.issuer import create_issuer_app, mount_issuer

    if settings.issuer_config is None:
        print(
            "image-builder serve issuer needs IMAGE_BUILDER_ISSUER_CONFIG: the path of its TOML or JSON file "
            "(issuer URL, audiences, users and clients with scrypt hashes of their secrets; README, Deploying)",
            file=sys.stderr,
        )
        return 2
    try:
        config = IssuerConfig.from_file(settings.issuer_config)
    except (OSError, ValueError, msgspec.MsgspecError) as error:
        print(f"image-builder serve issuer: {settings.issuer_config}: {error}", file=sys.stderr)
        return 2
    configure_logging()
    # Served at the path of its own URL, so the URLs it advertises are the ones it answers.
    if urlsplit(config.issuer).path:
        app = Litestar(route_handlers=[mount_issuer(config)], openapi_config=None)
    else:
        app = create_issuer_app(config)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from workers.main import AwsConfig, run_worker

    settings = load_settings()
    token_url = args.token_url or (settings.oidc_issuer and f"{settings.oidc_issuer}/token")
    if not token_url or not settings.worker_client_id or not settings.worker_client_secret:
        print(
            "image-builder worker authenticates with OAuth2 client credentials: set "
            "IMAGE_BUILDER_WORKER_CLIENT_ID and IMAGE_BUILDER_WORKER_CLIENT_SECRET, and --token-url "
            "or IMAGE_BUILDER_OIDC_ISSUER",
            file=sys.stderr,
        )
        return 2
    if not _build_tools_ready(settings.install_build_tools):
        return 2
    try:
        aws = AwsConfig(**settings.worker_aws())
    except ValueError as error:
        print(f"image-builder worker: IMAGE_BUILDER_WORKER_AWS_*: {error}", file=sys.stderr)
        return 2
    configure_logging()
    asyncio.run(
        run_worker(
            args.composer, token_url, settings.worker_client_id, settings.worker_client_secret,
            cache_dir=settings.worker_cache_dir, work_dir=settings.worker_work_dir, slots=args.jobs, name=args.name,
            aws=aws,
        )
    )  # fmt: skip
    return 0


def _up(args: argparse.Namespace) -> int:
    import uvicorn

    from services.embedded import create_app
    from services.embedded_identity import embedded_identity

    settings = load_settings(host=args.host, port=args.port, data_dir=args.data_dir)
    if not _build_tools_ready(settings.install_build_tools):
        return 2
    url = f"http://{settings.host}:{settings.port}"
    identity = embedded_identity(settings.data_dir, f"{url}/oidc", settings.frontend_public_url or url)
    secrets = identity.secrets
    print(
        f"image-builder (embedded) on {url}  (data in {settings.data_dir})\n"
        f"  web frontend:      {settings.frontend_public_url or url}/\n"
        f"  sign in as:        {secrets.username} / {secrets.password}\n"
        f"  service account:   client id {secrets.client_id}, secret {secrets.client_secret}\n"
        f"  token endpoint:    {url}/oidc/token  (client credentials)\n"
        f"  image-builder API: {url}/api/image-builder/v1\n"
        f"  compose API:       {url}/api/image-builder-composer/v2\n"
        f"  status:            {url}/status",
        flush=True,
    )
    uvicorn.run(create_app(settings, identity), host=settings.host, port=settings.port, log_level="info")
    return 0


def _build_tools_ready(mode: str) -> bool:
    """A worker's build tools are there (installed now if allowed); False after saying what is missing."""
    from workers.build.tools import MissingBuildTools, ensure_build_tools

    try:
        ensure_build_tools(mode, say=lambda line: print(line, flush=True))
    except ValueError as problem:
        print(f"image-builder: IMAGE_BUILDER_INSTALL_BUILD_TOOLS: {problem}", file=sys.stderr)
        return False
    except MissingBuildTools as problem:
        print(f"image-builder: {problem}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
