"""Structured logs: one JSON object per line, with the ids that tie lines together.

Pass ``extra={"compose_id": ..., "job_id": ...}`` to a log call and the ids
become fields, so one compose's story can be found with a single filter.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

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
