"""The transport contract on the in-process broker (the embedded mode's transport)."""

from __future__ import annotations

import pytest

from events.inprocess import InProcessBroker
from tests.contracts.transport import TransportContract


@pytest.fixture
def transport() -> InProcessBroker:
    return InProcessBroker()


class TestInProcessTransport(TransportContract):
    pass
