"""Use cases of a ward's groups and broadcasts: its leadership (the ward_admin, or an
admin) keeps lists of people to text — heads of residential groups, a front committee —
and sends them one message, which becomes one pending notification per member.

Plain functions `(deps, principal, input...)` called by the API (and any CLI). Making a
group or a broadcast is two calls, `check_*` then `create_*`, so that the API refuses a
wrong request before it reserves its Idempotency-Key, as it always did."""
from __future__ import annotations

from dataclasses import dataclass

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden

from . import domain, store
from .notifications import iso, notification_view


def manages_groups_of(principal: Principal, ward_id: str) -> bool:
    """Groups and broadcasts belong to the ward's leadership: its ward_admin (or an admin)."""
    return principal.role == "admin" or (principal.role == "ward_admin" and principal.ward_id == ward_id)


def _errors(found: list[domain.FieldError]) -> list[dict]:
    return [field_error(e.field, e.message) for e in found]


# ---------------------------------------------------------------- groups
def check_group(deps, principal: Principal, body: dict) -> domain.Group:
    """The group `body` asks for, checked: 403 outside the caller's ward, 422 otherwise wrong."""
    ward_id = body.get("ward_id")
    if isinstance(ward_id, str) and ward_id.strip() and not manages_groups_of(principal, ward_id.strip()):
        raise forbidden("Chỉ trưởng bộ phận của phường mới lập được nhóm. / Only the ward's admin.")
    group, errors = domain.check_group(body)
    if errors:
        raise ValidationFailed(_errors(errors))
    return group


def create_group(deps, principal: Principal, group: domain.Group) -> dict:
    group_id = store.create_group(deps.db, group, principal.subject, deps.clock.now())
    return {"group_id": group_id, "members": len(group.members)}


def list_groups(deps, principal: Principal, ward_id: str | None) -> list[dict]:
    """A ward's groups (the caller's own ward by default), for its staff."""
    ward_id = ward_id or principal.ward_id
    if not ward_id:
        raise ValidationFailed([field_error("ward_id", "Cần chọn phường. / ward_id is required.")])
    if not principal.is_staff_of(ward_id):
        raise forbidden()
    # Members' numbers stay in the database: the list says how many, not who.
    return [
        {"group_id": g["_id"], "name": g["name"], "ward_id": g["ward_id"], "members": len(g["members"]),
         "created_at": iso(g.get("created_at"))}
        for g in store.list_groups(deps.db, ward_id)
    ]


# ---------------------------------------------------------------- broadcasts
@dataclass(frozen=True)
class NewBroadcast:
    group: dict
    text: str
    sms: domain.SmsBody   # the text as it will go out: encoding and segments


def check_broadcast(deps, principal: Principal, body: dict) -> NewBroadcast:
    """The broadcast `body` asks for: an existing group (404), of the caller's ward (403),
    a text that fits (422)."""
    group_id = body.get("group_id")
    if not isinstance(group_id, str) or not group_id:
        raise ValidationFailed([field_error("group_id", "Cần chọn nhóm. / group_id is required.")])
    group = store.find_group(deps.db, group_id)
    if group is None:
        raise Problem(404, "group_not_found", "Không tìm thấy nhóm",
                      "Không có nhóm với mã này. / No group with this id.")
    if not manages_groups_of(principal, group["ward_id"]):
        raise forbidden("Chỉ trưởng bộ phận của phường mới gửi được tin cho nhóm. / Only the ward's admin.")
    sms, errors = domain.check_broadcast_text(body.get("text"), deps.settings.sms_unaccented)
    if errors:
        raise ValidationFailed(_errors(errors))
    return NewBroadcast(group, body["text"].strip(), sms)


def create_broadcast(deps, principal: Principal, broadcast: NewBroadcast) -> dict:
    """The broadcast and one pending message per member, throttled (deps.broadcast_per_second)."""
    broadcast_id = store.create_broadcast(deps.db, broadcast.group, broadcast.text, principal.subject,
                                          deps.clock.now(), deps.broadcast_per_second)
    return {"broadcast_id": broadcast_id, "recipients": len(broadcast.group["members"]),
            "encoding": broadcast.sms.encoding, "segments": broadcast.sms.segments}


def broadcast_progress(deps, principal: Principal, broadcast_id: str) -> dict:
    """Where each member's message is: the ward sees who has not been reached yet."""
    broadcast = store.find_broadcast(deps.db, broadcast_id)
    if broadcast is None:
        raise Problem(404, "broadcast_not_found", "Không tìm thấy tin nhắn nhóm",
                      "Không có tin nhắn nhóm với mã này. / No broadcast with this id.")
    if not principal.is_staff_of(broadcast["ward_id"]):
        raise forbidden("Chỉ cán bộ của phường. / Only the ward's staff.")
    deliveries = [notification_view(doc) for doc in store.broadcast_deliveries(deps.db, broadcast_id)]
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    return {"broadcast_id": broadcast_id, "group_id": broadcast["group_id"],
            "ward_id": broadcast["ward_id"], "recipients": broadcast["recipients"],
            "created_at": iso(broadcast.get("created_at")), "by_status": counts,
            "deliveries": deliveries}
