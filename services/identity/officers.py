"""Officers' accounts: an admin creates any (officers, ward admins, the monitoring
centre), a ward admin creates officers of their own ward. Called by POST /officers."""
from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from motcua_common.auth import Principal

from . import domain, store
from .accounts import audit
from .deps import Deps
from .errors import Invalid, NotAllowed, UsernameTaken

ROLES = ("officer", "ward_admin", "monitor")


def _valid_username(username: object) -> bool:
    return (isinstance(username, str) and 3 <= len(username) <= 40
            and all(c.isalnum() or c in "._-" for c in username) and not username.isdigit())


def create_officer(deps: Deps, principal: Principal, body: dict, client: str) -> str:
    """The new officer's id."""
    errors = []
    username = body.get("username")
    if not _valid_username(username):
        errors.append(domain.FieldError("username", "Tên đăng nhập 3–40 ký tự: chữ, số, '.', '_' hoặc '-' (không chỉ gồm số)."))
    full_name = domain.normalise_name(body.get("full_name"))
    if full_name is None:
        errors.append(domain.FieldError("full_name", "Họ tên không hợp lệ. / Invalid name."))
    role = body.get("role")
    if role not in ROLES:
        errors.append(domain.FieldError("role", "Vai trò phải là officer, ward_admin hoặc monitor."))
    ward_id = body.get("ward_id")
    if role == "monitor":
        ward_id = None  # the monitoring centre watches every ward
    elif not isinstance(ward_id, str) or store.get_ward(deps.db, ward_id) is None:
        errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
    errors += domain.check_password(body.get("password"))
    if errors:
        raise Invalid(errors)
    if principal.role == "ward_admin" and (principal.ward_id != ward_id or role != "officer"):
        raise NotAllowed("Trưởng bộ phận chỉ tạo cán bộ cho phường mình. / Ward admins create officers of their ward.")
    try:
        officer_id = store.create_officer(deps.db, username=username, full_name=full_name, ward_id=ward_id, role=role,
                                          password=body["password"], created_by=principal.subject,
                                          now=deps.clock.now())
    except DuplicateKeyError:
        raise UsernameTaken()
    audit(deps, "create_officer", account_id=officer_id, client=client, by=principal.subject, role=role)
    return officer_id
