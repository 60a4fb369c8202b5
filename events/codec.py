"""How an event envelope travels as a message: JSON value, identifying headers."""

from __future__ import annotations

import msgspec

from events.envelope import EventEnvelope
from events.transport import Message

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EventEnvelope)

HEADER_EVENT_ID = "event_id"
HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"


def envelope_message(topic: str, envelope: EventEnvelope) -> Message:
    return Message(
        topic=topic,
        key=envelope.stream_id,
        value=_encoder.encode(envelope),
        headers=(
            (HEADER_EVENT_ID, str(envelope.event_id).encode()),
            (HEADER_EVENT_TYPE, envelope.event_type.encode()),
            (HEADER_SCHEMA_VERSION, str(envelope.schema_version).encode()),
        ),
    )


def decode_envelope(message: Message) -> EventEnvelope:
    return _decoder.decode(message.value)
