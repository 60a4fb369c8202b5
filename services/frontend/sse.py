"""Reading a server-sent event stream (the backend's ``/composes/updates``).

The format is the WHATWG HTML standard's "event stream": lines of
``field: value``, an empty line ends an event, lines starting with ``:`` are
comments (keep-alives, passed on as ``comment`` messages so a relay can
forward them), several ``data`` lines join with newlines.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import msgspec


class Message(msgspec.Struct, frozen=True):
    event: str
    data: str


async def messages(lines: AsyncIterable[str]) -> AsyncIterator[Message]:
    event = "message"
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Message(event, "\n".join(data))
            event, data = "message", []
            continue
        if line.startswith(":"):
            yield Message("comment", line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
