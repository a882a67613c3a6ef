"""Which procedures each ward takes online (thủ tục cung cấp trực tuyến): a ward offers
an online service only once it has reviewed it, so a ward starts with none and its
administrator switches them on one by one (PUT /wards/{ward}/procedures/{code}, or the
page /dossier/admin/{ward}). Counter intake by the ward's staff is never limited by this.

Plain functions `(deps, principal, input...)`; the API, the admin page, the citizen
portal, submission.submit and the demo's bootstrap all call them."""
from __future__ import annotations

import logging
from datetime import date

from motcua_common import rpc
from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden, not_found

from . import store, wards
from .catalog import Procedure
from .deps import Deps

log = logging.getLogger(__name__)

CONFIGURING_ROLES = ("admin", "ward_admin")


def may_configure(principal: Principal | None, ward_id: str) -> bool:
    """The platform administrator, or the ward's own administrator."""
    if principal is None:
        return False
    return principal.role == "admin" or (principal.role == "ward_admin" and principal.ward_id == ward_id)


def check_may_configure(principal: Principal, ward_id: str) -> None:
    if not may_configure(principal, ward_id):
        raise forbidden("Chỉ quản trị viên của phường (hoặc quản trị hệ thống) bật, tắt nộp hồ sơ trực tuyến. "
                        "/ The ward's administrator only.")


def _known_ward(deps: Deps, ward_id: str, strict: bool) -> None:
    """404 ward_not_found for a ward identity says does not exist. When identity cannot be
    asked (and the ward is not in this service's record): 503 if `strict`, else trusted."""
    try:
        found = wards.find(deps, ward_id)
    except rpc.RpcUnavailable as exc:
        if not strict:
            return
        raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                      "Chưa kiểm tra được phường, vui lòng thử lại sau ít phút. / Identity is unavailable.",
                      headers={"Retry-After": "10"}) from exc
    if found is None:
        raise wards.ward_not_found()


def _since(raw, errors: list) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str) and len(raw) == 10:
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            pass
    errors.append(field_error("since", "Ngày bắt đầu nhận trực tuyến theo dạng YYYY-MM-DD."))
    return None


def set_online(deps: Deps, principal: Principal, ward_id: str, code: str, body: dict) -> dict:
    """PUT /wards/{ward}/procedures/{code} {online, since?}: switch online submission of a
    procedure on (from `since`, today by default; an earlier date is kept when it is on
    already) or off, at one ward."""
    check_may_configure(principal, ward_id)
    errors: list = []
    online = body.get("online")
    if not isinstance(online, bool):
        errors.append(field_error("online", "Phải là true (nhận trực tuyến) hoặc false."))
    since = _since(body.get("since"), errors)
    if errors:
        raise ValidationFailed(errors)
    _known_ward(deps, ward_id, strict=True)
    procedure = store.get_procedure(deps.db, code)
    if procedure is None:
        raise not_found("Không có thủ tục với mã này. / No such procedure.")
    if online and not procedure.online:
        raise ValidationFailed([field_error(
            "online", f"Thủ tục «{procedure.name}» mức độ {procedure.level} chỉ nộp tại Bộ phận một cửa.")])
    if online and since is None:
        current = store.ward_procedure(deps.db, ward_id, code)
        since = current["online_since"] if current and current.get("online") else deps.clock.today().isoformat()
    saved = store.set_ward_procedure(deps.db, ward_id, code, online, since, principal.subject, deps.clock.now())
    log.info("ward procedure switched", extra={"ward_id": ward_id, "procedure_code": code, "online": online})
    return view(procedure, saved)


def view(procedure: Procedure, configured: dict | None) -> dict:
    online = bool(configured and configured.get("online"))
    return {**procedure.to_dict(), "ward_online": online, "online": online,
            "online_possible": procedure.online, "online_since": configured.get("online_since") if online else None}


def catalog_for(deps: Deps, ward_id: str) -> list[dict]:
    """GET /wards/{ward}/procedures (anyone): the active catalog, each procedure with
    whether this ward takes it online and since when."""
    _known_ward(deps, ward_id, strict=False)
    configured = store.ward_procedures(deps.db, ward_id)
    return [view(p, configured.get(p.code)) for p in store.list_procedures(deps.db)]


def online_since(deps: Deps, ward_id: str) -> dict[str, str]:
    """code -> the date the ward began taking it online, for what it takes online now."""
    return {code: d.get("online_since") or "" for code, d in store.ward_procedures(deps.db, ward_id).items()
            if d.get("online")}


def check_offered_online(deps: Deps, ward_id: str, procedures: list[Procedure]) -> None:
    """409 not_offered_online unless the ward takes every one of `procedures` online."""
    offered = online_since(deps, ward_id)
    missing = [p for p in procedures if p.code not in offered]
    if not missing:
        return
    ward = wards.name_or_none(deps, ward_id) or "Phường (xã)"
    names = ", ".join(f"«{p.name}»" for p in missing)
    raise Problem(409, "not_offered_online", "Phường chưa nhận hồ sơ trực tuyến thủ tục này",
                  f"{ward} chưa nhận hồ sơ trực tuyến thủ tục này ({names}); vui lòng nộp tại Bộ phận một cửa. "
                  "/ This ward does not take this procedure online.",
                  procedure_codes=[p.code for p in missing])


def switch_on_every_online_procedure(deps: Deps, principal: Principal, ward_id: str) -> int:
    """The demo: every level 3-4 procedure taken online at `ward_id` (through set_online);
    how many were switched on now (0 when all were on already)."""
    configured = online_since(deps, ward_id)
    switched = 0
    for procedure in store.list_procedures(deps.db):
        if procedure.online and procedure.code not in configured:
            set_online(deps, principal, ward_id, procedure.code, {"online": True})
            switched += 1
    return switched
