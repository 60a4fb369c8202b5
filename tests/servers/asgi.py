"""Real HTTP for identity tests: an ASGI app under uvicorn on a loopback port.

The socket is bound before the app is built, so the app can know its own URL
(an issuer must, for ``iss`` and its discovery document).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from litestar.types import ASGIApp, Receive, Scope, Send


def reserve_socket() -> tuple[socket.socket, str]:
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP, and the accepted ones inherit the protocol. Without it a response
    # written in two parts waits for the client's delayed ACK, ~40 ms per request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Leave Ctrl-C to pytest: the server lives inside the test session.
        yield


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket, shutdown_grace: float | None = None) -> AsyncIterator[None]:
    """`shutdown_grace`: how long requests still running at the end may go on (default: until they finish)."""
    server = _InProcessServer(
        uvicorn.Config(app, log_level="warning", lifespan="auto", timeout_graceful_shutdown=shutdown_grace)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()


class RequestLog:
    """Wraps an ASGI app and remembers the path of every HTTP request, so a
    test can tell how often a client really went over the wire."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)

    def count(self, path: str) -> int:
        return sum(1 for seen in self.paths if seen.endswith(path))
