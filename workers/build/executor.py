"""Run a manifest: validate all of it, fetch its sources, then run each stage in order.

Nothing runs until every stage's options have been checked against its
schema, so a typo in the last stage fails in a second, not after a
ten-minute bootstrap (osbuild does the same, `osbuild/main_cli.py`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import msgspec

from workers.build import process
from workers.build.context import Runner, StageContext
from workers.build.manifest import Manifest, PipelineSpec, StageSpec, stage_ids
from workers.build.process import CancelEvent, LogCallback
from workers.build.sources import DebCache, FetchFailed, FetchStats
from workers.build.stages import STAGES

StageCallback = Callable[[int, int, str], None]
SOURCES_STEP = "sources"


class ManifestInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class StageFailed(Exception):
    def __init__(self, stage_name: str, tail: str) -> None:
        self.stage_name = stage_name
        self.tail = tail
        super().__init__(f"stage {stage_name} failed: {tail[-500:]}")


class BuildCancelled(Exception):
    pass


@dataclass(frozen=True)
class PlannedStage:
    pipeline: PipelineSpec
    spec: StageSpec
    module: ModuleType
    options: msgspec.Struct
    id: str


def validate(manifest: Manifest) -> list[PlannedStage]:
    """Every stage with its parsed options; ManifestInvalid lists every problem found."""
    problems: list[str] = []
    planned: list[PlannedStage] = []
    ids = stage_ids(manifest)
    names = [p.name for p in manifest.pipelines]
    if len(set(names)) != len(names):
        problems.append(f"pipeline names must be unique: {names}")
    for p_index, pipeline in enumerate(manifest.pipelines):
        if pipeline.input is not None and pipeline.input not in names[:p_index]:
            problems.append(
                f"pipeline {pipeline.name}: input {pipeline.input!r} is not an earlier pipeline"
            )
        for s_index, spec in enumerate(pipeline.stages):
            where = f"pipeline {pipeline.name}, stage {s_index} ({spec.type})"
            module = STAGES.get(spec.type)
            if module is None:
                problems.append(f"{where}: no such stage")
                continue
            try:
                options = msgspec.convert(spec.options, module.Options)
                if check := getattr(module, "check", None):
                    check(options)
            except (msgspec.ValidationError, ValueError) as error:
                problems.append(f"{where}: {error}")
                continue
            planned.append(
                PlannedStage(
                    pipeline, spec, module, options, ids[pipeline.name][s_index]
                )
            )
    if problems:
        raise ManifestInvalid(problems)
    return planned


async def execute(
    manifest: Manifest, *, work_dir: Path, cache_dir: Path, output_dir: Path,
    on_stage: StageCallback, on_log: LogCallback, cancel: CancelEvent | None = None, runner: Runner | None = None,
) -> FetchStats:  # fmt: skip
    """Build every pipeline; artifacts end up in `output_dir`, all else under `work_dir` is removed.

    `on_stage(index, total, name)` is called as each step starts, so `index`
    steps are done; step 0 fetches the sources.
    """
    stages = validate(manifest)
    total = len(stages) + 1
    debs = DebCache(cache_dir)
    scratch_root = work_dir / "scratch"
    output_dir.mkdir(parents=True, exist_ok=True)
    # Stages create their pipeline's tree themselves (mmdebstrap wants to).
    (work_dir / "trees").mkdir(parents=True, exist_ok=True)
    done_with = _trees_done_after(stages)
    removals: list[asyncio.Task[None]] = []
    try:
        on_stage(0, total, SOURCES_STEP)
        try:
            stats = await debs.fetch(manifest.sources, on_log=on_log, cancel=cancel)
        except FetchFailed as failed:
            raise StageFailed(SOURCES_STEP, str(failed)) from None
        except process.Cancelled:
            raise BuildCancelled() from None
        on_log(f"sources: {stats.downloaded} downloaded, {stats.reused} from the cache")
        for index, stage in enumerate(stages, start=1):
            if process.is_cancelled(cancel):
                raise BuildCancelled()
            on_stage(index, total, stage.spec.type)
            on_log(
                f"stage {stage.spec.type} ({stage.pipeline.name}) id {stage.id[:16]}"
            )
            tree_name = stage.pipeline.input or stage.pipeline.name
            scratch = scratch_root / f"{index:02d}-{stage.spec.type}"
            scratch.mkdir(parents=True)
            context = StageContext(
                tree=work_dir / "trees" / tree_name, output_dir=output_dir, scratch=scratch, debs=debs,
                source_date_epoch=manifest.source_date_epoch, on_log=on_log, cancel=cancel, runner=runner,
            )  # fmt: skip
            try:
                await stage.module.run(context, stage.options)
            except process.Cancelled:
                raise BuildCancelled() from None
            except process.CommandFailed as failed:
                raise StageFailed(
                    stage.spec.type,
                    f"{' '.join(failed.argv[:3])}: {failed.reason}\n{failed.tail}",
                ) from None
            except (OSError, ValueError) as error:
                raise StageFailed(stage.spec.type, str(error)) from None
            finally:
                await _remove(scratch)
            for tree in done_with.get(index, ()):
                # Seconds for a whole root tree: they overlap the stages still to run.
                removals.append(asyncio.create_task(_remove(work_dir / "trees" / tree)))
        return stats
    finally:
        await asyncio.gather(*removals)
        await _remove(scratch_root)
        await _remove(work_dir / "trees")


def _trees_done_after(stages: list[PlannedStage]) -> dict[int, list[str]]:
    """For a stage's index (1-based, as the loop counts), the trees no stage after it reads."""
    last: dict[str, int] = {}
    for index, stage in enumerate(stages, start=1):
        if getattr(stage.module, "USES_TREE", True):
            last[stage.pipeline.input or stage.pipeline.name] = index
    done: dict[int, list[str]] = {}
    for tree, index in last.items():
        done.setdefault(index, []).append(tree)
    return done


async def _remove(path: Path) -> None:
    """rmtree off the event loop: removing a tree takes seconds, in which the worker must keep renewing its lease."""
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
