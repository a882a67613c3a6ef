"""Officers' accounts: an admin creates any (officers, ward admins, leaders, the
monitoring centre), a ward admin creates the staff of their own ward; both list a ward's
staff, deactivate, re-role, rename and seat them at a counter, and reset a forgotten
password to a temporary one. Deactivating, moving or re-roling an officer ends every
session they hold, on every service (SessionsRevoked, motcua_common.revocations).
Called by POST/PATCH /officers, GET /wards/{ward_id}/officers and the ward admin's page."""
from __future__ import annotations

import re

from pymongo.errors import DuplicateKeyError

from motcua_common.auth import WARD_STAFF_ROLES, Principal
from motcua_common.phones import normalise_phone

from . import domain, events, store
from .accounts import audit, forget_revocation_cache, temporary_until
from .deps import Deps
from .errors import Invalid, NotAllowed, OfficerNotFound, UsernameTaken, WardNotFound

ROLES = WARD_STAFF_ROLES + ("monitor",)   # officer, ward_admin, leader, monitor
ROLE_NAMES = {"officer": "Cán bộ một cửa", "ward_admin": "Trưởng bộ phận", "leader": "Lãnh đạo phường",
              "monitor": "Giám sát", "admin": "Quản trị hệ thống"}
EDITABLE = ("active", "role", "ward_id", "full_name", "counter_id", "phone", "email")
# An officer's contacts are optional: the ward's leaders get the end-of-day digest of
# overdue dossiers there (notify asks ward_leaders_contacts).
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,24}$")
_COUNTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def _valid_username(username: object) -> bool:
    return (isinstance(username, str) and 3 <= len(username) <= 40
            and all(c.isalnum() or c in "._-" for c in username) and not username.isdigit())


def _counter_id(value: object, errors: list) -> str | None:
    """A counter id as queue names it ("quay-1"), or None/"" for none."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _COUNTER_ID.match(value.strip()):
        errors.append(domain.FieldError("counter_id", "Mã quầy: tối đa 40 chữ, số, '-' hoặc '_' (ví dụ quay-1)."))
        return None
    return value.strip()


def _contacts(body: dict, errors: list) -> dict:
    """{phone?, email?} as given (an empty value clears it), or errors beside the field."""
    found = {}
    if "phone" in body:
        value = body["phone"]
        phone = normalise_phone(value) if value not in (None, "") else None
        if value not in (None, "") and (phone is None or not str(value).isascii()):
            errors.append(domain.FieldError("phone", "Số điện thoại di động không hợp lệ. / Invalid mobile number."))
        else:
            found["phone"] = phone
    if "email" in body:
        value = body["email"]
        if value in (None, ""):
            found["email"] = None
        elif not isinstance(value, str) or len(value) > 254 or not EMAIL.match(value.strip()):
            errors.append(domain.FieldError("email", "Địa chỉ thư điện tử không hợp lệ. / Invalid e-mail address."))
        else:
            found["email"] = value.strip().lower()
    return found


def ward_leaders_contacts(deps: Deps, ward_id: object) -> list[dict]:
    """The ward's active leaders and how to reach them (the overdue digest)."""
    if not isinstance(ward_id, str):
        return []
    return [{"officer_id": o["_id"], **({"phone": o["phone"]} if o.get("phone") else {}),
             **({"email": o["email"]} if o.get("email") else {})}
            for o in store.officers_of_ward(deps.db, ward_id)
            if o.get("role") == "leader" and o.get("active", True) is not False]


def view(officer: dict) -> dict:
    """An officer as the API and the pages show it: never the password hash."""
    return {"officer_id": officer["_id"], "username": officer["username"], "full_name": officer.get("full_name"),
            "role": officer.get("role"), "ward_id": officer.get("ward_id"), "counter_id": officer.get("counter_id"),
            "active": officer.get("active", True), "must_change_password": bool(officer.get("must_change_password")),
            "last_login_at": _iso(officer.get("last_login_at")), "phone": officer.get("phone"),
            "email": officer.get("email")}


def _iso(moment) -> str | None:
    return moment.isoformat().split(".")[0] + "Z" if moment is not None else None


def create_officer(deps: Deps, principal: Principal, body: dict, client: str) -> str:
    """The new officer's id. A ward admin creates staff (officer, ward_admin, leader) of
    their own ward only."""
    errors = []
    username = body.get("username")
    if not _valid_username(username):
        errors.append(domain.FieldError("username", "Tên đăng nhập 3–40 ký tự: chữ, số, '.', '_' hoặc '-' (không chỉ gồm số)."))
    full_name = domain.normalise_name(body.get("full_name"))
    if full_name is None:
        errors.append(domain.FieldError("full_name", "Họ tên không hợp lệ. / Invalid name."))
    role = body.get("role")
    if role not in ROLES:
        errors.append(domain.FieldError("role", "Vai trò phải là officer, ward_admin, leader hoặc monitor."))
    ward_id = body.get("ward_id")
    if role == "monitor":
        ward_id = None  # the monitoring centre watches every ward
    elif not isinstance(ward_id, str) or store.get_ward(deps.db, ward_id) is None:
        errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
    counter_id = _counter_id(body.get("counter_id"), errors)
    errors += domain.check_password(body.get("password"))
    if errors:
        raise Invalid(errors)
    if principal.role == "ward_admin" and (principal.ward_id != ward_id or role not in WARD_STAFF_ROLES):
        raise NotAllowed("Trưởng bộ phận chỉ tạo cán bộ cho phường mình. / Ward admins create officers of their ward.")
    try:
        officer_id = store.create_officer(deps.db, username=username, full_name=full_name, ward_id=ward_id, role=role,
                                          password=body["password"], created_by=principal.subject,
                                          now=deps.clock.now(), counter_id=counter_id)
    except DuplicateKeyError:
        raise UsernameTaken()
    audit(deps, "create_officer", account_id=officer_id, client=client, by=principal, role=role)
    return officer_id


# ---------------------------------------------------------------- a ward's staff
def _manages_ward(principal: Principal, ward_id: str | None) -> bool:
    """The platform admin, or the ward admin of `ward_id`."""
    return principal.role == "admin" or (principal.role == "ward_admin" and ward_id is not None
                                         and principal.ward_id == ward_id)


def list_officers(deps: Deps, principal: Principal, ward_id: str) -> list[dict]:
    """A ward's staff (ward admin of the ward, admin)."""
    if not _manages_ward(principal, ward_id):
        raise NotAllowed()
    if store.get_ward(deps.db, ward_id) is None:
        raise WardNotFound(ward_id)
    return [view(o) for o in store.officers_of_ward(deps.db, ward_id)]


def officer_in_ward(deps: Deps, officer_id: object, ward_id: object) -> bool:
    """Is `officer_id` an active member of `ward_id`'s staff (officer, ward admin or
    leader)? Asked by dossier before it assigns a dossier to someone."""
    if not isinstance(officer_id, str) or not isinstance(ward_id, str):
        return False
    found = store.officer(deps.db, officer_id)
    return (found is not None and found.get("active", True) is not False
            and found.get("role") in WARD_STAFF_ROLES and found.get("ward_id") == ward_id)


def ward_officers(deps: Deps, ward_id: object) -> list[dict]:
    """The ward's active staff (officers, ward admins, leaders), [{officer_id, full_name,
    role}] by name: asked by dossier for the desk's assignment select and officers' names."""
    if not isinstance(ward_id, str) or not ward_id:
        return []
    staff = [o for o in store.officers_of_ward(deps.db, ward_id)
             if o.get("active", True) is not False and o.get("role") in WARD_STAFF_ROLES]
    return [{"officer_id": o["_id"], "full_name": o.get("full_name") or o.get("username", ""), "role": o["role"]}
            for o in sorted(staff, key=lambda o: (o.get("full_name") or "", o["_id"]))]


def _managed_officer(deps: Deps, principal: Principal, officer_id: object) -> dict:
    """The officer `principal` may manage: 404 for none, 403 for another ward's or the
    platform's own accounts (admin, monitor: the admin's alone)."""
    found = store.officer(deps.db, officer_id) if isinstance(officer_id, str) else None
    if found is None:
        raise OfficerNotFound()
    if found.get("role") == "admin":
        raise NotAllowed("Tài khoản quản trị hệ thống không sửa ở đây. / The platform admin's account is not managed here.")
    if principal.role != "admin" and (found.get("role") not in WARD_STAFF_ROLES
                                      or not _manages_ward(principal, found.get("ward_id"))):
        raise NotAllowed("Trưởng bộ phận chỉ quản lý cán bộ của phường mình. / Ward admins manage their own ward's staff.")
    return found


def update_officer(deps: Deps, principal: Principal, officer_id: str, body: dict, client: str) -> dict:
    """PATCH /officers/{officer_id}: {active?, role?, ward_id? (admin only), full_name?,
    counter_id?} -> the officer's view. Deactivating, re-roling or moving ends the
    officer's sessions everywhere (revocation and SessionsRevoked in the same write)."""
    officer = _managed_officer(deps, principal, officer_id)
    errors = []
    if not isinstance(body, dict) or not body:
        raise Invalid([domain.FieldError("body", "Cần ít nhất một trường: " + ", ".join(EDITABLE) + ".")])
    for name in body:
        if name not in EDITABLE:
            errors.append(domain.FieldError(name, "Trường này không sửa được. / Not an editable field."))
    changes: dict = {}
    if "active" in body:
        if not isinstance(body["active"], bool):
            errors.append(domain.FieldError("active", "Phải là true hoặc false."))
        elif body["active"] != officer.get("active", True):
            changes["active"] = body["active"]
    if "role" in body:
        allowed = WARD_STAFF_ROLES if officer.get("role") in WARD_STAFF_ROLES else (officer.get("role"),)
        if body["role"] not in allowed:
            errors.append(domain.FieldError("role", "Vai trò phải là officer, ward_admin hoặc leader."))
        elif body["role"] != officer.get("role"):
            changes["role"] = body["role"]
    if "ward_id" in body:
        if not isinstance(body["ward_id"], str) or store.get_ward(deps.db, body["ward_id"]) is None:
            errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
        elif officer.get("role") not in WARD_STAFF_ROLES:
            errors.append(domain.FieldError("ward_id", "Tài khoản giám sát không thuộc phường nào."))
        elif body["ward_id"] != officer.get("ward_id"):
            changes["ward_id"] = body["ward_id"]
    if "full_name" in body:
        full_name = domain.normalise_name(body["full_name"])
        if full_name is None:
            errors.append(domain.FieldError("full_name", "Họ tên không hợp lệ. / Invalid name."))
        elif full_name != officer.get("full_name"):
            changes["full_name"] = full_name
    if "counter_id" in body:
        counter_id = _counter_id(body["counter_id"], errors)
        if counter_id != officer.get("counter_id") and not any(e.field == "counter_id" for e in errors):
            changes["counter_id"] = counter_id
    changes.update(_contacts(body, errors))
    if errors:
        raise Invalid(errors)
    if "ward_id" in changes and principal.role != "admin":
        raise NotAllowed("Chỉ quản trị hệ thống chuyển cán bộ sang phường khác. / Only the admin moves officers.")
    if officer["_id"] == principal.subject and ({"active", "role", "ward_id"} & set(changes)):
        raise NotAllowed("Bạn không thể tự khóa, đổi vai trò hay chuyển phường của chính mình. "
                         "/ You cannot deactivate, re-role or move yourself.")
    if not changes:
        return view(officer)
    now = deps.clock.now()
    changes["updated_at"] = now
    reason = None
    if changes.get("active") is False:
        reason = "officer_deactivated"
    elif {"role", "ward_id"} & set(changes):
        reason = "officer_changed"
    revocation = event_list = None
    if reason:
        ward_id = changes.get("ward_id", officer.get("ward_id"))
        revocation = {"account_id": officer["_id"], "revoked_before": now, "reason": reason, "ward_id": ward_id}
        event_list = [events.sessions_revoked(officer["_id"], ward_id, now, reason)]
    store.update_officer(deps.db, officer["_id"], changes, revocation, event_list or [])
    if revocation:
        forget_revocation_cache(deps, officer["_id"])
    audit(deps, "update_officer", account_id=officer["_id"], by=principal, client=client,
          changed=sorted(k for k in changes if k != "updated_at"), **({"reason": reason} if reason else {}))
    return view(store.officer(deps.db, officer["_id"]))


def reset_password(deps: Deps, principal: Principal, officer_id: str, client: str) -> dict:
    """A temporary password for an officer who forgot theirs: shown once in the answer,
    valid 72 hours, to be changed at the next sign-in; the officer's earlier sessions end."""
    officer = _managed_officer(deps, principal, officer_id)
    if officer["_id"] == principal.subject:
        raise NotAllowed("Hãy đổi mật khẩu của chính mình ở trang đổi mật khẩu. / Change your own password instead.")
    password = domain.new_temporary_password()
    until = temporary_until(deps)
    now = deps.clock.now()
    ward_id = officer.get("ward_id")
    revocation = {"account_id": officer["_id"], "revoked_before": now, "reason": "officer_changed", "ward_id": ward_id}
    store.reset_officer_password(deps.db, officer["_id"], password, until, revocation,
                                 [events.sessions_revoked(officer["_id"], ward_id, now, "officer_changed")])
    forget_revocation_cache(deps, officer["_id"])
    audit(deps, "reset_officer_password", account_id=officer["_id"], by=principal, client=client)
    return {"officer_id": officer["_id"], "username": officer["username"], "temporary_password": password,
            "must_change_password": True, "expires_at": _iso(until)}
