"""A request that ends in a 500 leaves its traceback in the log; answered errors do not.

Litestar logs exceptions only in debug mode, through a logging config the
services do not use, so without the hook a crash was a bare 500 with nothing
in the log to say why.
"""

from __future__ import annotations

import logging

import pytest
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotAuthorizedException
from litestar.testing import AsyncTestClient

from services.logs import log_unhandled


class Refused(Exception):
    pass


def _refused(_: Request, error: Refused) -> Response:
    return Response({"detail": str(error)}, status_code=409)


@get("/crash")
async def crash() -> None:
    raise RuntimeError("the disk caught fire")


@get("/refuse")
async def refuse() -> None:
    raise Refused("already done")


@get("/forbidden")
async def forbidden() -> None:
    raise NotAuthorizedException("who are you")


HANDLERS = {Refused: _refused}


def app() -> Litestar:
    return Litestar(
        route_handlers=[crash, refuse, forbidden],
        exception_handlers=HANDLERS,
        after_exception=[log_unhandled(HANDLERS)],
        logging_config=None,
    )


async def test_a_crash_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncTestClient(app()) as client:
        with caplog.at_level(logging.ERROR, logger="services.http"):
            response = await client.get("/crash")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "services.http"]
    assert "GET /crash failed" in record.getMessage()
    assert record.exc_info is not None and "the disk caught fire" in str(record.exc_info[1])


async def test_answered_errors_are_not_logged_as_crashes(caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncTestClient(app()) as client:
        with caplog.at_level(logging.ERROR, logger="services.http"):
            assert (await client.get("/refuse")).status_code == 409
            assert (await client.get("/forbidden")).status_code == 401
    assert [r for r in caplog.records if r.name == "services.http"] == []

