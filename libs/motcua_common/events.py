"""Event envelopes built from and checked against the generated proto classes.

On the wire an event is the proto3 JSON form of `Envelope` with the original (snake_case)
field names; its payload is the JSON form of the message named by `type`."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from . import events_pb2, tracing

SCHEMA_VERSION = 1

# event type -> (emitting service, payload class)
EVENT_TYPES: dict[str, tuple[str, type[Message]]] = {
    "CitizenRegistered": ("identity", events_pb2.CitizenRegistered),
    "PasswordChanged": ("identity", events_pb2.PasswordChanged),
    "WardOpened": ("identity", events_pb2.WardOpened),
    "SessionsRevoked": ("identity", events_pb2.SessionsRevoked),
    "DossierSubmitted": ("dossier", events_pb2.DossierSubmitted),
    "DossierStatusChanged": ("dossier", events_pb2.DossierStatusChanged),
    "DossierResultReady": ("dossier", events_pb2.DossierResultReady),
    "DossierOverdue": ("dossier", events_pb2.DossierOverdue),
    "TicketIssued": ("queue", events_pb2.TicketIssued),
    "TicketCalled": ("queue", events_pb2.TicketCalled),
    "TicketServed": ("queue", events_pb2.TicketServed),
    "NotificationSent": ("notify", events_pb2.NotificationSent),
    "NotificationFailed": ("notify", events_pb2.NotificationFailed),
    "RatingGiven": ("rating", events_pb2.RatingGiven),
}


class InvalidEvent(ValueError):
    """A message that is not a valid envelope or whose payload breaks its schema."""


def exchange_for(source: str) -> str:
    return f"{source}.events"


def _to_dict(message: Message) -> dict:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def _parse_payload(event_type: str, payload: Any) -> Message:
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    if not isinstance(payload, dict):
        raise InvalidEvent("payload must be a JSON object")
    cls = EVENT_TYPES[event_type][1]
    try:
        # Unknown fields are tolerated so that a newer publisher (added fields) never
        # breaks an older consumer; wrong types are not.
        return json_format.ParseDict(payload, cls(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidEvent(f"{event_type} payload: {exc}") from exc


def new_traceparent() -> str:
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def new_event(event_type: str, ward_id: str, payload: dict, traceparent: str | None = None) -> dict:
    """Build a validated envelope (a JSON-ready dict) for `event_type`."""
    source = EVENT_TYPES.get(event_type, (None,))[0]
    if source is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    message = _parse_payload(event_type, payload)
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "version": SCHEMA_VERSION,
        "source": source,
        "ward_id": ward_id or "",
        "occurred_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        # The current span (the request, the consumed event) continues through the event.
        "traceparent": traceparent or tracing.current_traceparent() or new_traceparent(),
        "payload": _to_dict(message),
    }
    return envelope


@dataclass(frozen=True)
class Event:
    """A received, validated event as handlers see it."""

    event_id: str
    type: str
    version: int
    source: str
    ward_id: str
    occurred_at: str
    traceparent: str
    payload: dict

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]


def parse_envelope(body: Any) -> Event:
    """Check a received body against the Envelope and its payload's schema."""
    if not isinstance(body, dict):
        raise InvalidEvent("envelope must be a JSON object")
    try:
        envelope = json_format.ParseDict(body, events_pb2.Envelope(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidEvent(f"envelope: {exc}") from exc
    if not envelope.event_id:
        raise InvalidEvent("envelope: event_id is missing")
    try:
        uuid.UUID(envelope.event_id)
    except ValueError as exc:
        raise InvalidEvent("envelope: event_id is not a UUID") from exc
    if not envelope.type:
        raise InvalidEvent("envelope: type is missing")
    payload = _to_dict(_parse_payload(envelope.type, body.get("payload")))
    return Event(
        event_id=envelope.event_id,
        type=envelope.type,
        version=envelope.version,
        source=envelope.source,
        ward_id=envelope.ward_id,
        occurred_at=body.get("occurred_at", ""),
        traceparent=envelope.traceparent,
        payload=payload,
    )
