"""A compose's logs, metadata and SBOMs: the composer keeps them, the backend asks for them.

These are the composer's documents of its jobs (build logs, package lists,
SPDX), not state the backend records, so they are fetched when asked for:
with the backend's service token and the compose's org in
``X-Image-Builder-Org``, so the composer too only answers for that org. The
org check happens first, here: another org's compose is a 404 before any
call is made.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from domain.compose_history import Submission
from services.backend.composer_client import ComposerLost
from services.backend.history import HistoryViews
from services.backend.records import ComposeNotFound

Document = Literal["logs", "metadata", "sboms"]


class ComposerDocuments(Protocol):
    async def document(self, org_id: str, composer_id: str, name: str) -> dict[str, Any]: ...


class NotAtComposer(Exception):
    """The composer has not taken this compose (yet, or ever): it has no documents of it."""

    def __init__(self, compose_id: str, submission: Submission) -> None:
        reason = "was refused by the composer" if submission is Submission.REFUSED else "has not reached the composer yet"
        super().__init__(f"compose {compose_id} {reason}, so it has no logs, metadata or SBOMs")
        self.compose_id = compose_id
        self.submission = submission


class ComposeDocuments:
    def __init__(self, history: HistoryViews, composer: ComposerDocuments) -> None:
        self.history = history
        self.composer = composer

    async def fetch(self, org_id: str, compose_id: str, name: Document) -> dict[str, Any]:
        entry = await self.history.compose(org_id, compose_id)
        if entry.composer_id is None:
            raise NotAtComposer(compose_id, entry.submission)
        try:
            return await self.composer.document(org_id, entry.composer_id, name)
        except ComposerLost:
            raise ComposeNotFound(compose_id) from None
