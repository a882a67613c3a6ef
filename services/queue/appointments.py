"""Use case of the queue's projection of dossier: the day each citizen returns for a
result (DossierSubmitted), recorded once per event; the kiosk's "nhận kết quả" service
looks it up by receipt code. Called by the worker (worker.py only wires it to the broker)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event

if TYPE_CHECKING:
    from .deps import Deps


def record_submitted(deps: "Deps", principal: Principal | None, event: Event) -> str:
    """"processed", or "duplicate" for an event already recorded."""
    return handle_once(deps.db, "queue", event,
                       lambda session: deps.store.record_appointment(event.payload, deps.clock.now(), session))
