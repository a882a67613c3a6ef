"""identity's events, built here and nowhere else (validated against proto/ by new_event).
Personal data never goes into them: ids, the ward, the channel, an age band."""
from __future__ import annotations

from datetime import date

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
