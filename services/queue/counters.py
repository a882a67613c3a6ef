"""Use cases about a ward's reference data: the ward itself, its services and its counters
(listing them, finding one, and the ward admin's saving and removing them). Reads that every kiosk request makes are
remembered in deps.cache (cache.py); a save through this process forgets them at once.

Like every use-case module of the queue: plain functions `(deps, principal, input...)`,
called alike by the API, the pages, the worker and the CLI; refusals are raised as
motcua_common.http.Problem with the contract's codes."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping

from motcua_common.auth import Principal
from motcua_common.names import normalise_display_name
from motcua_common.problems import Problem, ValidationFailed, field_error, forbidden

from .store import PrefixTaken

if TYPE_CHECKING:
    from .deps import Deps


# ---------------------------------------------------------------- the ward
def ward(deps: "Deps", ward_id: str) -> dict | None:
    """The ward's record (name, official code, province, opening hours), remembered like
    all reference data; None when the ward does not use the queue."""
    return deps.cache.remembered(("ward", ward_id), lambda: deps.store.ward(ward_id))


def ward_exists(deps: "Deps", ward_id: str) -> bool:
    return ward(deps, ward_id) is not None


def require_ward(deps: "Deps", principal: Principal | None, ward_id: str) -> dict:
    """A ward that uses the queue, or 404 ward_not_found (before anything else is asked)."""
    found = ward(deps, ward_id)
    if found is None:
        raise Problem(404, "ward_not_found", "Không tìm thấy phường",
                      f"Phường '{ward_id}' chưa dùng hệ thống xếp hàng. / Unknown ward.")
    return found


def ward_name(deps: "Deps", principal: Principal | None, ward_id: str) -> str | None:
    """The ward's name, None when the ward does not use the queue (the pages' 404)."""
    return deps.store.ward_name(ward_id)


def may_configure(principal: Principal | None, ward_id: str) -> bool:
    """The platform admin, or the ward's own admin (trưởng bộ phận một cửa)."""
    return principal is not None and (
        principal.role == "admin" or (principal.role == "ward_admin" and principal.ward_id == ward_id))


def require_ward_admin(principal: Principal | None, ward_id: str) -> Principal:
    if not may_configure(principal, ward_id):
        raise forbidden("Chỉ trưởng bộ phận một cửa của phường hoặc quản trị hệ thống mới thay đổi được cấu hình này. "
                        "/ Only the ward's admin or the platform admin may change this.")
    return principal


# ---------------------------------------------------------------- services and counters
def services(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    return deps.store.services(ward_id)


def list_services(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    require_ward(deps, principal, ward_id)
    return services(deps, principal, ward_id)


def counters(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    return deps.store.counters(ward_id)


def list_counters(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    require_ward(deps, principal, ward_id)
    return counters(deps, principal, ward_id)


def service(deps: "Deps", ward_id: str, code: str) -> dict | None:
    return deps.cache.remembered(("service", ward_id, code), lambda: deps.store.service(ward_id, code))


def counter(deps: "Deps", ward_id: str, counter_id: str) -> dict | None:
    """The counter and the services it calls, remembered like the ward (every call-next reads it)."""
    return deps.cache.remembered(("counter", ward_id, counter_id), lambda: deps.store.counter(ward_id, counter_id))


def require_counter(deps: "Deps", ward_id: str, counter_id: str) -> dict:
    found = counter(deps, ward_id, counter_id)
    if found is None:
        raise Problem(404, "counter_not_found", "Không tìm thấy quầy",
                      f"Phường không có quầy '{counter_id}'. / Unknown counter.")
    return found


def counters_serving(deps: "Deps", ward_id: str, service_code: str) -> int:
    return deps.cache.remembered(("serving", ward_id, service_code),
                                 lambda: deps.store.counters_serving(ward_id, service_code))


# ---------------------------------------------------------------- configuring (ward admin)
SERVICE_CODE = re.compile(r"^[A-Z0-9_-]{1,16}$")
PREFIX = re.compile(r"^[A-Z]{1,2}$")
COUNTER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_NAME = 120


def _name(body: Mapping, errors: list[dict], what: str) -> str | None:
    value = body.get("name")
    if not isinstance(value, str) or not value.strip():
        errors.append(field_error("name", f"Hãy nhập tên {what}. / name is required (a string)."))
        return None
    name = normalise_display_name(value)
    if name is None:
        errors.append(field_error("name", "Tên có ký tự không được phép (ký tự điều khiển hoặc ẩn). / "
                                          "name has control or invisible characters."))
    elif len(name) > MAX_NAME:
        errors.append(field_error("name", f"Tên dài tối đa {MAX_NAME} ký tự. / At most {MAX_NAME} characters."))
    return name


def _forget(deps: "Deps") -> None:
    """A save through this process is seen by it at once; by the others within the cache's TTL."""
    deps.cache.clear()


def put_service(deps: "Deps", principal: Principal | None, ward_id: str, code: str, body: Mapping) -> dict:
    """Create or update one of the ward's queue services: {name, prefix} -> {code, name, prefix}."""
    require_ward(deps, principal, ward_id)
    require_ward_admin(principal, ward_id)
    errors = []
    if not isinstance(code, str) or not SERVICE_CODE.match(code):
        errors.append(field_error("code", "Mã dịch vụ gồm 1–16 ký tự A–Z, 0–9, '_' hoặc '-'. / "
                                          "code: 1-16 of A-Z 0-9 _ -."))
    name = _name(body, errors, "dịch vụ")
    prefix = body.get("prefix")
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        errors.append(field_error("prefix", "Chữ in trên phiếu gồm 1–2 chữ cái in hoa A–Z. / "
                                            "prefix: 1-2 capital letters A-Z."))
        prefix = None
    if prefix is not None:
        holder = deps.store.service_with_prefix(ward_id, prefix)
        if holder is not None and holder["code"] != code:
            errors.append(field_error("prefix", f"Chữ “{prefix}” đã dùng cho dịch vụ “{holder['name']}”. / "
                                                "prefix already used in this ward."))
    if errors:
        raise ValidationFailed(errors)
    if deps.store.prefix_printed_today(ward_id, day_of(deps), prefix, code):
        # Its numbers restart at 1 for this service: A001 would be printed a second time today.
        raise Problem(409, "prefix_used_today", "Chữ đầu số đã dùng hôm nay",
                      f"Hôm nay đã có phiếu mang chữ “{prefix}” của dịch vụ khác; hãy đổi từ ngày mai. / "
                      "Tickets with this prefix were issued today for another service.")
    try:
        deps.store.save_service(ward_id, code, name, prefix)
    except PrefixTaken:
        raise ValidationFailed([field_error("prefix", f"Chữ “{prefix}” đã dùng cho dịch vụ khác. / "
                                                      "prefix already used in this ward.")]) from None
    _forget(deps)
    return {"code": code, "name": name, "prefix": prefix}


def delete_service(deps: "Deps", principal: Principal | None, ward_id: str, code: str) -> None:
    """Remove a service (and it from every counter); 409 while its tickets wait today."""
    require_ward(deps, principal, ward_id)
    require_ward_admin(principal, ward_id)
    if deps.store.service(ward_id, code) is None:
        raise Problem(404, "service_not_found", "Không tìm thấy dịch vụ",
                      f"Phường không có dịch vụ '{code}'. / Unknown service.")
    waiting = deps.store.waiting_for_service(ward_id, day_of(deps), code)
    if waiting:
        raise Problem(409, "service_has_waiting_tickets", "Dịch vụ còn người chờ",
                      f"Còn {waiting} người đang chờ dịch vụ này hôm nay; hãy xóa sau khi phục vụ xong. / "
                      "Tickets of this service are waiting today.", waiting=waiting)
    deps.store.delete_service(ward_id, code)
    _forget(deps)


def put_counter(deps: "Deps", principal: Principal | None, ward_id: str, counter_id: str, body: Mapping) -> dict:
    """Create or update a counter: {name, service_codes} -> {counter_id, name, service_codes}."""
    require_ward(deps, principal, ward_id)
    require_ward_admin(principal, ward_id)
    errors = []
    if not isinstance(counter_id, str) or not COUNTER_ID.match(counter_id):
        errors.append(field_error("counter_id", "Mã quầy gồm 1–32 ký tự a–z, 0–9, '_' hoặc '-', ví dụ quay-1. / "
                                                "counter_id: 1-32 of a-z 0-9 _ -."))
    name = _name(body, errors, "quầy")
    codes = body.get("service_codes")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        errors.append(field_error("service_codes", "Hãy chọn các dịch vụ quầy phục vụ. / "
                                                   "service_codes must be a list of service codes."))
        codes = []
    elif not codes:
        errors.append(field_error("service_codes", "Hãy chọn ít nhất một dịch vụ. / Choose at least one service."))
    codes = list(dict.fromkeys(codes))
    known = {s["code"] for s in services(deps, principal, ward_id)}
    unknown = [c for c in codes if c not in known]
    if unknown:
        errors.append(field_error("service_codes", f"Phường không có dịch vụ: {', '.join(unknown)}. / "
                                                   "Unknown service codes."))
    if errors:
        raise ValidationFailed(errors)
    deps.store.save_counter(ward_id, counter_id, name, codes)
    _forget(deps)
    return {"counter_id": counter_id, "name": name, "service_codes": codes}


def delete_counter(deps: "Deps", principal: Principal | None, ward_id: str, counter_id: str) -> None:
    """Remove a counter; 409 while it has a ticket called or transferred to it today."""
    require_ward(deps, principal, ward_id)
    require_ward_admin(principal, ward_id)
    require_counter(deps, ward_id, counter_id)
    if deps.store.counter_in_use(ward_id, day_of(deps), counter_id):
        raise Problem(409, "counter_in_use", "Quầy đang phục vụ",
                      "Quầy đang có số được gọi hoặc được chuyển đến hôm nay; hãy xóa sau khi xử lý xong. / "
                      "The counter has a called or transferred ticket today.")
    deps.store.delete_counter(ward_id, counter_id)
    _forget(deps)


def day_of(deps: "Deps") -> str:
    """Today, on the ward's calendar (as tickets count days)."""
    return deps.clock.local(deps.clock.now()).date().isoformat()
