"""``image-builder worker``: one worker process with its job slots."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from workers.aws.config import AwsConfig
from workers.client import ComposerClient
from workers.jobs import job_runners
from workers.process import Worker
from workers.workspace import Workspace


def create_worker(
    composer_url: str, token_url: str, client_id: str, client_secret: str, *,
    cache_dir: Path, work_dir: Path, slots: int = 1, name: str | None = None, poll_timeout: float = 30.0,
    aws: AwsConfig | None = None,
) -> Worker:  # fmt: skip
    client = ComposerClient(composer_url, token_url, client_id, client_secret)
    # Also removes what workers killed on this machine left under work_dir.
    workspace = Workspace.claim(work_dir)
    runners = job_runners(client, cache_dir, workspace.path, aws)
    return Worker(
        client, runners, name=name or socket.gethostname(), slots=slots, poll_timeout=poll_timeout, workspace=workspace
    )


async def run_worker(
    composer_url: str, token_url: str, client_id: str, client_secret: str, *,
    cache_dir: Path, work_dir: Path, slots: int = 1, name: str | None = None, aws: AwsConfig | None = None,
) -> None:  # fmt: skip
    worker = create_worker(
        composer_url, token_url, client_id, client_secret,
        cache_dir=cache_dir, work_dir=work_dir, slots=slots, name=name, aws=aws,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.request_stop)
    try:
        await worker.run()
    finally:
        await worker.close()
