"""Use cases about the wards dossier knows: identity opens a ward (WardOpened) and dossier
keeps its official code, name and province, so that it knows the ward without asking
identity (ward_directory.WardDirectory looks here first). The worker's handler and the
demo's bootstrap both call record_ward_opened."""
from __future__ import annotations

from collections.abc import Mapping

from motcua_common import rpc
from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event
from motcua_common.http import Problem

from . import store
from .deps import SERVICE, Deps

WARD_FIELDS = ("official_code", "name", "province", "province_code", "kind")


def record_ward_opened(deps: Deps, principal: Principal | None, payload: Mapping, session=None) -> None:
    fields = {k: payload[k] for k in WARD_FIELDS if payload.get(k) not in (None, "")}
    store.record_ward(deps.db, payload["ward_id"], fields, deps.clock.now(), session)


def on_ward_opened(deps: Deps, principal: Principal | None, event: Event) -> str:
    """The worker's WardOpened, once per event: "processed" or "duplicate"."""
    return handle_once(deps.db, SERVICE, event,
                       lambda session: record_ward_opened(deps, principal, event.payload, session=session))


def find(deps: Deps, ward_id: str) -> dict | None:
    """{ward_id, name, province}: this service's record, else identity's answer; None for a
    ward that does not exist. Raises rpc.RpcUnavailable when identity must be asked and
    does not answer."""
    return deps.wards.ward(ward_id)


def name_or_none(deps: Deps, ward_id: str) -> str | None:
    """The ward's name when it can be told now, else None (never waits on an outage twice)."""
    try:
        found = find(deps, ward_id)
    except rpc.RpcUnavailable:
        return None
    return found["name"] if found and found.get("name") else None


def ward_not_found() -> Problem:
    return Problem(404, "ward_not_found", "Không có phường này",
                   "Phường (xã) này chưa được mở trên hệ thống. / No such ward.")
