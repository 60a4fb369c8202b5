"""Live history updates on PostgreSQL, where a replica hears what another committed."""

from __future__ import annotations

import time

import pytest

from events.inprocess import InProcessBroker
from tests.backend_service import Backend, running_backend
from tests.composer_service import Composer
from tests.contracts.history_updates import HistoryUpdatesContract, following, post

pytestmark = pytest.mark.integration


class TestHistoryUpdatesOnPostgreSQL(HistoryUpdatesContract):
    async def test_a_replica_hears_the_changes_another_replica_committed(
        self, backend: Backend, composer: Composer, backend_database_url: str
    ) -> None:
        # The second replica consumes nothing: every change is committed by the first.
        async with (
            running_backend(composer, backend_database_url, InProcessBroker()) as other,
            following(other, "alice-cli") as follower,
        ):
            started = time.monotonic()
            compose_id = await post(backend, image_name="elsewhere")
            heard = await follower.next()
            waited = time.monotonic() - started

        assert heard["id"] == compose_id and heard["image_name"] == "elsewhere"
        # Woken by the NOTIFY of the other replica's commit, not by the 5 s fallback read.
        assert waited < 2.5, waited
