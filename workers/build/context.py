"""What a stage gets to work with: its tree, its scratch space and a way to run commands."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from workers.build import process
from workers.build.paths import resolve_in_tree
from workers.build.process import CancelEvent, LogCallback
from workers.build.sources import DebCache

DEFAULT_TIMEOUT = 900.0


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None,
        env: Mapping[str, str],
        capture: bool,
    ) -> Awaitable[str]: ...


@dataclass
class StageContext:
    tree: Path
    output_dir: Path
    scratch: Path
    debs: DebCache
    source_date_epoch: int
    on_log: LogCallback = lambda line: None
    cancel: CancelEvent | None = None
    # Replaced by a recorder in unit tests, which check the argument vectors.
    runner: Runner | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LC_ALL": "C.UTF-8",
            "HOME": "/root",
            "DEBIAN_FRONTEND": "noninteractive",
            "SOURCE_DATE_EPOCH": str(self.source_date_epoch),
            **self.extra_env,
        }

    async def run(
        self, argv: Sequence[str | os.PathLike[str]], *, timeout: float = DEFAULT_TIMEOUT,
        stdin: bytes | None = None, capture: bool = False,
    ) -> str:  # fmt: skip
        args = [os.fspath(a) for a in argv]
        if self.runner is not None:
            return await self.runner(
                args, timeout=timeout, stdin=stdin, env=self.env, capture=capture
            )
        return await process.run(
            args,
            timeout=timeout,
            stdin=stdin,
            env=self.env,
            capture=capture,
            on_log=self.on_log,
            cancel=self.cancel,
        )

    def path(self, inside: str, *, follow_last: bool = True) -> Path:
        """`inside` (absolute, as the image sees it) on the host; refused if it escapes the tree."""
        return resolve_in_tree(self.tree, inside, follow_last=follow_last)


StageRun = Callable[[StageContext, object], Awaitable[None]]
