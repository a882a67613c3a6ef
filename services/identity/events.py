"""identity's events, built here and nowhere else (validated against proto/ by new_event).
Personal data never goes into them: ids, the ward, the channel, an age band."""
from __future__ import annotations

from datetime import date, datetime, timezone

from motcua_common.events import new_event

from . import domain


def citizen_registered(citizen_id: str, ward_id: str, channel: str, date_of_birth: date, today: date) -> dict:
    return new_event("CitizenRegistered", ward_id, {
        "citizen_id": citizen_id, "ward_id": ward_id, "channel": channel,
        "age_band": domain.age_band(date_of_birth, today),
    })


def password_changed(account: dict, channel: str) -> dict:
    ward_id = account.get("ward_id") or ""
    return new_event("PasswordChanged", ward_id, {"account_id": account["_id"], "ward_id": ward_id, "channel": channel})


def ward_opened(ward: dict) -> dict:
    """A ward opened from the official list: queue, rating and dossier learn of it here."""
    return new_event("WardOpened", ward["ward_id"], {
        "ward_id": ward["ward_id"], "official_code": ward["official_code"], "name": ward["name"],
        "province": ward["province"], "province_code": ward["province_code"], "kind": ward["kind"],
        "target_population": int(ward.get("target_population") or 0),
    })


def sessions_revoked(account_id: str, ward_id: str | None, revoked_before: datetime, reason: str) -> dict:
    """Every token of the account issued up to `revoked_before` is refused by every service.
    reason: officer_deactivated | officer_changed | contact_changed."""
    moment = revoked_before.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return new_event("SessionsRevoked", ward_id or "", {
        "account_id": account_id, "ward_id": ward_id or "", "revoked_before": moment, "reason": reason,
    })
