"""The executor checks the whole manifest first, reports progress, and stops on failure or cancel."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import pytest

from tests.processes import running, until_running
from tests.unit.build.conftest import Recorder
from workers.build import process
from workers.build.executor import (
    BuildCancelled,
    _trees_done_after,
    ManifestInvalid,
    StageFailed,
    execute,
    validate,
)
from workers.build.manifest import Manifest, PipelineSpec, StageSpec


def manifest(*stages: StageSpec) -> Manifest:
    return Manifest(
        source_date_epoch=1686355200,
        pipelines=(PipelineSpec(name="os", stages=stages),),
    )


async def test_a_bad_last_stage_fails_the_manifest_before_any_stage_runs(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    bad = manifest(
        StageSpec(type="services", options={"enabled": ["ssh"]}),
        StageSpec(type="hostname", options={"hostnmae": "x"}),
        StageSpec(type="no-such-stage"),
    )
    with pytest.raises(ManifestInvalid) as raised:
        await execute(
            bad,
            work_dir=tmp_path,
            cache_dir=tmp_path / "c",
            output_dir=tmp_path / "o",
            on_stage=lambda *a: None,
            on_log=lambda line: None,
            runner=recorder,
        )
    assert len(raised.value.problems) == 2
    assert (
        "hostnmae" in raised.value.problems[0]
        and "no such stage" in raised.value.problems[1]
    )
    assert recorder.argvs == []


def test_an_assembler_must_read_an_earlier_pipeline() -> None:
    bad = Manifest(
        pipelines=(
            PipelineSpec(
                name="image", input="os", stages=(StageSpec(type="finalize"),)
            ),
        )
    )
    with pytest.raises(ManifestInvalid, match="not an earlier pipeline"):
        validate(bad)


async def test_progress_is_reported_per_stage_and_scratch_trees_are_removed(
    tmp_path: Path,
) -> None:
    recorder, seen = Recorder(), []
    good = manifest(
        StageSpec(type="services", options={"enabled": ["ssh"]}),
        StageSpec(type="services", options={"masked": ["x"]}),
    )
    await execute(
        good,
        work_dir=tmp_path / "w",
        cache_dir=tmp_path / "c",
        output_dir=tmp_path / "w/o",
        on_stage=lambda *a: seen.append(a),
        on_log=lambda line: None,
        runner=recorder,
    )
    assert seen == [(0, 3, "sources"), (1, 3, "services"), (2, 3, "services")]
    assert len(recorder.argvs) == 2
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["o"]


async def test_a_failing_command_fails_its_stage_with_the_tail_of_its_output(
    tmp_path: Path,
) -> None:
    async def failing(argv, **kwargs):  # type: ignore[no-untyped-def]
        return await process.run(
            ["sh", "-c", "echo first; echo 'the reason' >&2; exit 3"], timeout=10
        )

    with pytest.raises(StageFailed) as raised:
        await execute(
            manifest(StageSpec(type="services", options={"enabled": ["ssh"]})),
            work_dir=tmp_path,
            cache_dir=tmp_path / "c",
            output_dir=tmp_path / "o",
            on_stage=lambda *a: None,
            on_log=lambda line: None,
            runner=failing,
        )
    assert raised.value.stage_name == "services"
    assert "the reason" in raised.value.tail and "status 3" in raised.value.tail


async def test_output_lines_stream_to_the_log_callback() -> None:
    lines: list[str] = []
    await process.run(
        ["sh", "-c", "echo one; echo two >&2"], timeout=10, on_log=lines.append
    )
    assert lines == ["one", "two"]


async def test_a_command_that_runs_too_long_is_killed_with_its_children() -> None:
    marker = f"{random.randint(1000, 9999)}.5"
    started = time.monotonic()
    with pytest.raises(process.CommandFailed, match="timed out"):
        await process.run(["sh", "-c", f"sleep {marker} & wait"], timeout=0.5)
    assert time.monotonic() - started < 10
    await asyncio.sleep(0.2)
    assert running(["sleep", marker]) == []


@pytest.mark.parametrize("kind", ["asyncio", "threading"])
async def test_cancelling_kills_the_running_command(kind: str) -> None:
    cancel = asyncio.Event() if kind == "asyncio" else threading.Event()
    asyncio.get_running_loop().call_later(0.3, cancel.set)
    started = time.monotonic()
    with pytest.raises(process.Cancelled):
        await process.run(["sleep", "60"], timeout=120, cancel=cancel)
    assert time.monotonic() - started < 10


async def test_cancelling_the_task_that_runs_a_command_kills_the_command() -> None:
    pause = f"{random.randint(1000, 9999)}.25"
    command = asyncio.create_task(process.run(["sh", "-c", f"sleep {pause} & wait"], timeout=120))
    await until_running(["sleep", pause])
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        await command
    assert running(["sleep", pause]) == []


def test_a_command_is_an_argument_vector_never_a_shell_string() -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(process.run(["echo hi; rm -rf /"], timeout=5))


async def test_a_cancelled_build_stops_and_removes_its_trees(tmp_path: Path) -> None:
    cancel = asyncio.Event()

    async def slow(argv, **kwargs):  # type: ignore[no-untyped-def]
        cancel.set()
        return await process.run(["sleep", "60"], timeout=120, cancel=cancel)

    (tmp_path / "w/trees/os").mkdir(parents=True)
    with pytest.raises(BuildCancelled):
        await execute(manifest(StageSpec(type="services", options={"enabled": ["ssh"]})), work_dir=tmp_path / "w",
                      cache_dir=tmp_path / "c", output_dir=tmp_path / "w/o", on_stage=lambda *a: None,
                      on_log=lambda line: None, cancel=cancel, runner=slow)  # fmt: skip
    assert not (tmp_path / "w/trees").exists()


async def test_trees_are_removed_without_stalling_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker renews its lease from the same loop: a tree removal that blocks it loses the lease."""
    removed: list[str] = []

    def slow_rmtree(path: Path, ignore_errors: bool = False) -> None:
        time.sleep(0.5)
        removed.append(Path(path).name)

    monkeypatch.setattr("workers.build.executor.shutil.rmtree", slow_rmtree)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    await execute(manifest(StageSpec(type="services", options={"enabled": ["ssh"]})), work_dir=tmp_path / "w",
                  cache_dir=tmp_path / "c", output_dir=tmp_path / "w/o", on_stage=lambda *a: None,
                  on_log=lambda line: None, runner=Recorder())  # fmt: skip
    elapsed = time.monotonic() - started
    ticking.cancel()
    assert removed == ["01-services", "os", "scratch", "trees"]
    # Blocked, the ticker would have missed the 2 s of removals.
    assert ticks >= (elapsed - 0.3) / 0.05 * 0.6


def test_a_tree_is_released_after_the_last_stage_that_reads_it() -> None:
    stages = validate(
        Manifest(
            pipelines=(
                PipelineSpec(name="os", stages=(StageSpec(type="finalize"),)),
                PipelineSpec(
                    name="image",
                    input="os",
                    stages=(
                        StageSpec(type="tar", options={"filename": "root.tar"}),
                        StageSpec(
                            type="disk-format",
                            options={"source": "disk.raw", "filename": "disk.qcow2", "format": "qcow2"},
                        ),
                    ),
                ),
            )
        )
    )
    # The tar stage (2) is the last to read "os"; the conversion (3) reads only the output directory.
    assert _trees_done_after(stages) == {2: ["os"]}
