"""Running the ``image-builder`` console script the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMAGE_BUILDER = Path(sys.executable).with_name("image-builder")


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IMAGE_BUILDER), *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
