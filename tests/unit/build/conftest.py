"""A stage context whose commands are recorded instead of run, over a small fake tree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from workers.build.context import StageContext
from workers.build.sources import DebCache

EPOCH = 1686355200


class Recorder:
    def __init__(self) -> None:
        self.argvs: list[list[str]] = []
        self.stdins: list[bytes | None] = []

    async def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None,
        env: Mapping[str, str],
        capture: bool,
    ) -> str:
        assert env["SOURCE_DATE_EPOCH"] == str(EPOCH)
        self.argvs.append(list(argv))
        self.stdins.append(stdin)
        return "Package: fake\nVersion: 1\n" if argv[0] == "dpkg-deb" else ""


def make_tree(root: Path) -> Path:
    for sub in (
        "etc/ssh",
        "etc/systemd/system",
        "usr/share/zoneinfo/Europe",
        "usr/sbin",
        "boot",
        "home",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
    )
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:\nalice:x:1000:\n")
    (root / "usr/share/zoneinfo/Europe/Berlin").write_text("TZif")
    return root


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def ctx(tmp_path: Path, recorder: Recorder) -> StageContext:
    tree = make_tree(tmp_path / "tree")
    (tmp_path / "out").mkdir()
    (tmp_path / "scratch").mkdir()
    return StageContext(
        tree=tree,
        output_dir=tmp_path / "out",
        scratch=tmp_path / "scratch",
        debs=DebCache(tmp_path / "cache"),
        source_date_epoch=EPOCH,
        runner=recorder,
    )
