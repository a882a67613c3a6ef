"""Use cases about the wards rating knows: identity opens a ward (WardOpened) and rating
keeps its name, official code and province, so that statistics and rankings name wards
rather than show bare ids. The worker's handler and the demo's bootstrap both call
record_ward_opened."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event

from . import store

if TYPE_CHECKING:
    from .deps import Deps

SERVICE = "rating"
WARD_FIELDS = ("name", "official_code", "province", "province_code", "kind", "target_population")


def record_ward_opened(deps: "Deps", principal: Principal | None, payload: Mapping, session=None) -> None:
    fields = {k: payload[k] for k in WARD_FIELDS if payload.get(k) not in (None, "")}
    if isinstance(fields.get("target_population"), str) and fields["target_population"].isdigit():
        fields["target_population"] = int(fields["target_population"])  # int64 travels as a JSON string
    store.record_ward(deps.db, payload["ward_id"], fields, deps.clock.now(), session)


def on_ward_opened(deps: "Deps", principal: Principal | None, event: Event) -> str:
    """The worker's WardOpened, once per event: "processed" or "duplicate"."""
    return handle_once(deps.db, SERVICE, event,
                       lambda session: record_ward_opened(deps, principal, event.payload, session=session))


def names(deps: "Deps", principal: Principal | None, ward_ids=None) -> dict[str, dict]:
    """ward_id -> {name, province, official_code} for the wards rating has heard of."""
    return store.ward_names(deps.db, ward_ids)
