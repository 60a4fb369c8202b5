"""A build described as data: sources to fetch, then pipelines of stages.

Shaped after osbuild's manifest (osbuild/osbuild `osbuild/formats/v2.py`): a
pipeline builds one tree stage by stage; a pipeline with an `input` starts
from another pipeline's finished tree and writes artifacts (an assembler).
The manifest is stored with the build's results, so what was built can be
read, diffed and rebuilt.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from workers.build.depsolve import PackageSpec

VERSION = "1"


class StageSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str
    options: dict[str, Any] = {}


class PipelineSpec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    name: str
    stages: tuple[StageSpec, ...]
    # The pipeline whose tree this one reads; None for a pipeline that builds a tree.
    input: str | None = None


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str = VERSION
    # Every .deb any stage installs, fetched into the content-addressed cache first.
    sources: tuple[PackageSpec, ...] = ()
    pipelines: tuple[PipelineSpec, ...] = ()
    # SOURCE_DATE_EPOCH for every command: the one timestamp the artifacts carry.
    source_date_epoch: int = 0

    def to_json(self) -> bytes:
        return msgspec.json.encode(self, order="sorted")

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        return msgspec.json.decode(data, type=cls)

    def stage_count(self) -> int:
        return sum(len(p.stages) for p in self.pipelines)


def stage_id(stage: StageSpec, inputs: list[str]) -> str:
    """osbuild's id: hash of the stage's name, options and its inputs' ids (`osbuild/pipeline.py`).

    Two stages with the same id produce the same tree, so a cached tree could
    be reused; options are encoded with sorted keys so the id is canonical.
    """
    blob = msgspec.json.encode(
        {"type": stage.type, "options": stage.options, "inputs": inputs}, order="sorted"
    )
    return hashlib.sha256(blob).hexdigest()


def stage_ids(manifest: Manifest) -> dict[str, list[str]]:
    """Each pipeline's stage ids, in order; a pipeline's id is its last stage's."""
    sources = hashlib.sha256(msgspec.json.encode(manifest.sources)).hexdigest()
    ids: dict[str, list[str]] = {}
    for pipeline in manifest.pipelines:
        previous = [ids[pipeline.input][-1]] if ids.get(pipeline.input) else [sources]
        chain: list[str] = []
        for stage in pipeline.stages:
            chain.append(stage_id(stage, previous))
            previous = [chain[-1]]
        ids[pipeline.name] = chain
    return ids
