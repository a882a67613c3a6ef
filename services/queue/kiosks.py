"""Use cases of the kiosks: pairing one to a ward (a one-time link a ward admin asks for),
listing and revoking paired devices, knowing the device behind a cookie, and the kiosk's
own ticket form with its double-tap guard. The credential itself (signing, reading) is
devices.py."""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.http import Problem, forbidden

from . import counters, domain, tickets, wards
from .devices import PAIRING_CODE_TTL_SECONDS, KioskDevice, new_pairing_code

if TYPE_CHECKING:
    from .deps import Deps


# ---------------------------------------------------------------- the device behind a cookie
def device_principal(deps: "Deps", principal: Principal | None, credential: str | None) -> Principal | None:
    """The kiosk device a credential names, while its device record is active; as a
    Principal with role "kiosk" so that rules read alike."""
    device = deps.devices.read(credential)
    if device is None or not deps.store.device_active(device.device_id, device.ward_id):
        return None
    return Principal(subject=f"kiosk:{device.device_id}", role="kiosk", ward_id=device.ward_id)


def allowed_here(deps: "Deps", credential: str | None, ward_id: str) -> bool:
    """A kiosk page issues tickets when the device is paired to this ward, or with --demo."""
    if deps.settings.demo:
        return True
    kiosk = device_principal(deps, None, credential)
    return kiosk is not None and kiosk.ward_id == ward_id


# ---------------------------------------------------------------- pairing (the ward admin)
def _ward_admin_of(principal: Principal, ward_id: str) -> Principal:
    if not counters.may_configure(principal, ward_id):
        raise forbidden("Chỉ trưởng bộ phận một cửa của phường mới ghép nối được máy lấy số. / "
                        "Only the ward's admin pairs kiosks.")
    return principal


def create_pairing(deps: "Deps", principal: Principal, ward_id: str) -> tuple[str, datetime]:
    """A one-time pairing code, valid PAIRING_CODE_TTL_SECONDS, and when it expires."""
    counters.require_ward(deps, principal, ward_id)
    _ward_admin_of(principal, ward_id)
    now = domain.to_millis(deps.clock.now())
    expires_at = now + timedelta(seconds=PAIRING_CODE_TTL_SECONDS)
    code = new_pairing_code()
    deps.store.create_pairing(ward_id, code, principal.subject, now, expires_at)
    return code, expires_at


def list_devices(deps: "Deps", principal: Principal, ward_id: str) -> list[dict]:
    counters.require_ward(deps, principal, ward_id)
    _ward_admin_of(principal, ward_id)
    return [{"device_id": d["_id"], "status": d["status"], "paired_at": domain.iso_utc(d["paired_at"])}
            for d in deps.store.kiosk_devices(ward_id)]


def revoke(deps: "Deps", principal: Principal, ward_id: str, device_id: str) -> None:
    """A lost or replaced kiosk stops issuing at once; its cookie is worth nothing after."""
    counters.require_ward(deps, principal, ward_id)
    _ward_admin_of(principal, ward_id)
    if not deps.store.revoke_device(ward_id, device_id, deps.clock.now()):
        raise Problem(404, "kiosk_not_found", "Không tìm thấy máy lấy số", "Không có máy này. / Unknown kiosk.")


def pair(deps: "Deps", principal: Principal | None, ward_id: str, code: str) -> str | None:
    """The pairing link opened on the kiosk: the one-time code becomes a device record,
    and the answer is the device credential; None when the code is unknown, used, expired
    or for another ward."""
    now = domain.to_millis(deps.clock.now())
    pairing = deps.store.take_pairing(code)
    if pairing is None or domain.pairing_expired(pairing["expires_at"], now):
        return None
    device = {"_id": str(uuid.uuid4()), "ward_id": pairing["ward_id"], "status": "active",
              "paired_by": pairing["created_by"], "paired_at": now}
    deps.store.add_device(device)
    if device["ward_id"] != ward_id:
        return None
    return deps.devices.credential(KioskDevice(device["_id"], ward_id))


# ---------------------------------------------------------------- the kiosk's form
def new_form_token() -> str:
    """The start screen's form token: a double tap submits it twice, and prints one ticket."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class FormOutcome:
    ticket_id: str | None = None   # the ticket to show
    error: str | None = None       # else why not: "service" (unknown), "busy" (the first tap still runs),
                                   # "closed" (outside the ward's opening hours)


def issue_from_form(deps: "Deps", principal: Principal | None, ward_id: str, service_code: str,
                    priority: str, form_token: str) -> FormOutcome:
    """Issue from the kiosk's start screen (allowed_here first). A form token already used
    answers the ticket it produced, so a double tap prints one ticket, not two."""
    service = counters.service(deps, ward_id, service_code)
    if service is None:
        return FormOutcome(error="service")
    if not wards.office_status(deps, principal, ward_id).open:
        return FormOutcome(error="closed")
    if form_token:
        earlier = deps.store.claim_kiosk_request(ward_id, form_token, deps.clock.now())
        if earlier is not None:
            if earlier.get("ticket_id"):
                return FormOutcome(ticket_id=earlier["ticket_id"])
            return FormOutcome(error="busy")
    ticket = None
    try:
        ticket = tickets.issue(deps, principal, tickets.TicketOrder(ward_id, service, priority))
    finally:
        if form_token:
            deps.store.complete_kiosk_request(ward_id, form_token, ticket["ticket_id"] if ticket else None)
    return FormOutcome(ticket_id=ticket["ticket_id"])
