"""Structured logs: one JSON object per line, with the ids that tie lines together.

Pass ``extra={"compose_id": ..., "job_id": ...}`` to a log call and the ids
become fields, so one compose's story can be found with a single filter.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

CONTEXT_FIELDS = ("compose_id", "job_id", "worker_id", "org_id", "event_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if (value := getattr(record, name, None)) is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry).decode()


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # aiokafka logs an error every 100 ms while a broker is down; the relay says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)



def log_unhandled(handled: Mapping[Any, Any]) -> Callable[[Exception, Any], Awaitable[None]]:
    """A Litestar ``after_exception`` hook: a request that ends in a 500 leaves its traceback.

    Litestar logs exceptions only in debug mode and through its own logging
    config, which the services do not use (they configure logging above).
    ``handled`` is the app's exception handler map: what it turns into an
    answer is no crash, and neither is an HTTPException raised on purpose.
    """
    from litestar.exceptions import HTTPException  # here: the CLI imports this module too

    answered = tuple(kind for kind in handled if isinstance(kind, type))

    async def hook(exception: Exception, scope: Any) -> None:
        if isinstance(exception, (HTTPException, *answered)):
            return
        logging.getLogger("services.http").error(
            "%s %s failed: %r", scope.get("method"), scope.get("path"), exception, exc_info=exception
        )

    return hook
