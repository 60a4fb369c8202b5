"""The client's subcommands of ``image-builder``, and how their errors end.

Exit codes: 0 done; 1 the server refused or could not be reached, or the
compose failed (``--watch``, ``--follow``); 2 a usage error (argparse's, or
no credentials). With ``--json`` an API error's own JSON is printed on
stdout as well, for scripts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from domain.composes import ComposeStatus
from services.client import blueprint_commands, compose_commands
from services.client.output import print_json
from services.client.session import ApiError, ClientError, Session, open_session
from services.client.settings import DEFAULT_SERVER, load_client_settings

Handler = Callable[[Session, argparse.Namespace], int]
TARGETS = ("local", "aws.s3", "aws")
STATUSES = tuple(status.value for status in ComposeStatus)


def add_client_commands(commands: Any) -> None:
    """Add ``compose`` and ``blueprint`` to the ``image-builder`` parser's subcommands."""
    common = _connection_options()

    compose = commands.add_parser("compose", help="create composes and follow them on a server (CLI client)")
    actions = compose.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="push a blueprint file and compose it")
    create.add_argument("--blueprint", dest="file", required=True, metavar="FILE", help="osbuild TOML or JSON blueprint")
    _image_options(create)
    create.add_argument("--watch", action="store_true", help="then follow it as `compose status --watch` does")
    create.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    create.set_defaults(run=_client(compose_commands.create))

    listing = actions.add_parser("list", parents=[common], help="the build history, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--type", help="only this image type")
    listing.add_argument("--name", help="part of the image name")
    listing.add_argument("--blueprint", help="only composes made from this blueprint id")
    listing.add_argument("--limit", type=int, default=20, help="composes per page (default 20, at most 100)")
    listing.add_argument("--cursor", help="the page after the one that printed this cursor")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=_client(compose_commands.listing))

    status = actions.add_parser("status", parents=[common], help="a compose's status")
    status.add_argument("compose", metavar="ID")
    status.add_argument("--watch", action="store_true", help="follow it until it succeeds (exit 0) or fails (exit 1)")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between reads (default 2)")
    status.set_defaults(run=_client(compose_commands.status))

    logs = actions.add_parser("logs", parents=[common], help="a compose's build logs")
    logs.add_argument("compose", metavar="ID")
    logs.add_argument("--follow", action="store_true", help="print new lines until the compose ends")
    logs.add_argument("--interval", type=float, default=2.0, help="seconds between reads (default 2)")
    logs.set_defaults(run=_client(compose_commands.logs))

    download = actions.add_parser("download", parents=[common], help="save a local image, checked against its sha256")
    download.add_argument("compose", metavar="ID")
    download.add_argument("-o", "--output", metavar="PATH", help="file or directory (default: the image's name, here)")
    download.add_argument("--artifact", metavar="NAME", help="another file of the compose than its image")
    download.set_defaults(run=_client(compose_commands.download))

    blueprint = commands.add_parser("blueprint", help="push, list and export blueprints on a server (CLI client)")
    actions = blueprint.add_subparsers(required=True, metavar="ACTION")
    push = actions.add_parser("push", parents=[common], help="create a blueprint, or add a version to the one of its name")
    push.add_argument("file", metavar="FILE", help="osbuild TOML or JSON blueprint")
    _image_options(push)
    push.set_defaults(run=_client(blueprint_commands.push))

    blueprints = actions.add_parser("list", parents=[common], help="the org's blueprints")
    blueprints.add_argument("--name", help="part of the name")
    blueprints.set_defaults(run=_client(blueprint_commands.listing))

    export = actions.add_parser("export", parents=[common], help="a blueprint as osbuild TOML or JSON")
    export.add_argument("blueprint", metavar="ID|NAME")
    export.add_argument("--format", choices=("toml", "json"), default="toml", help="default toml")
    export.add_argument("--version", type=int, help="this version (default the latest)")
    export.add_argument("-o", "--output", metavar="FILE", help="write it here instead of stdout")
    export.set_defaults(run=_client(blueprint_commands.export))


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the API's JSON, for scripts")
    group = common.add_argument_group("connection (flags override the IMAGE_BUILDER_* variables)")
    group.add_argument("--server", help=f"the server's URL (IMAGE_BUILDER_SERVER, default {DEFAULT_SERVER})")
    group.add_argument("--token", help="a bearer token (IMAGE_BUILDER_TOKEN)")
    group.add_argument("--client-id", help="an OAuth2 client (IMAGE_BUILDER_CLIENT_ID; its secret: IMAGE_BUILDER_CLIENT_SECRET)")
    group.add_argument("--token-url", help="its token endpoint (IMAGE_BUILDER_CLIENT_TOKEN_URL; default: discovered)")
    group.add_argument("--issuer", help="the issuer to discover it from (IMAGE_BUILDER_CLIENT_ISSUER, default <server>/oidc)")
    group.add_argument("--audience", help="the audience to ask tokens for (IMAGE_BUILDER_CLIENT_AUDIENCE)")
    return common


def _image_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("images (a TOML blueprint has none: these make them; a JSON one's are picked from)")
    group.add_argument("--type", action="append", default=[], help="image type, repeatable (TOML default guest-image)")
    group.add_argument("--arch", default="x86_64", help="architecture (default x86_64)")
    group.add_argument("--target", choices=TARGETS, help="upload target (default: the image type's)")
    group.add_argument("--region", help="AWS region of an aws or aws.s3 target")
    group.add_argument("--bucket", help="S3 bucket of an aws.s3 target")
    parser.add_argument("--name", help="the blueprint's name, instead of the file's")


def _client(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_client_settings(
            server=args.server, token=args.token, client_id=args.client_id, token_url=args.token_url,
            issuer=args.issuer, audience=args.audience,
        )  # fmt: skip
        session: Session | None = None
        try:
            session = open_session(settings)
            return handler(session, args)
        except ClientError as error:
            if args.json and isinstance(error, ApiError) and error.body is not None:
                print_json(error.body)
            for line in error.lines():
                print(line, file=sys.stderr, flush=True)
            return error.exit_code
        except KeyboardInterrupt:
            return 130
        finally:
            if session is not None:
                session.close()

    return run
