"""The citizens projection: what the adoption figures need about each registered citizen
(ward, channel, age band, when), kept from identity's CitizenRegistered events — never a
name or a number. Rebuilt from events, so it may lag identity by a moment.

A plain function of the dependencies and the event, which the worker's handler calls
inside its once-only handling (motcua_common.consumer.handle_once)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from pymongo.client_session import ClientSession

from . import store
from .deps import Deps


def on_registered(deps: Deps, event) -> Callable[[ClientSession], object]:
    """The change CitizenRegistered makes (run by handle_once in its transaction)."""
    if not event["citizen_id"]:
        # Nothing to project; acknowledged (and remembered) rather than retried forever.
        return lambda session: None
    citizen = {
        "citizen_id": event["citizen_id"],
        "ward_id": event["ward_id"] or event.ward_id,
        "channel": event["channel"],
        "age_band": event["age_band"],
        "registered_at": _moment(event.occurred_at),
    }
    return lambda session: store.record_citizen(deps.db, session, citizen)


def _moment(iso: str) -> datetime | str:
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return iso  # kept as sent rather than losing the event over a timestamp
