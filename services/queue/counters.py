"""Use cases about a ward's reference data: the ward itself, its services and its counters
(listing them, finding one, saving them). Reads that every kiosk request makes are
remembered in deps.cache (cache.py); a save through this process forgets them at once.

Like every use-case module of the queue: plain functions `(deps, principal, input...)`,
called alike by the API, the pages, the worker and the CLI; refusals are raised as
motcua_common.http.Problem with the contract's codes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.http import Problem

if TYPE_CHECKING:
    from .deps import Deps


# ---------------------------------------------------------------- the ward
def ward_exists(deps: "Deps", ward_id: str) -> bool:
    return deps.cache.remembered(("ward", ward_id), lambda: deps.store.ward_exists(ward_id))


def require_ward(deps: "Deps", principal: Principal | None, ward_id: str) -> None:
    """A ward that uses the queue, or 404 ward_not_found (before anything else is asked)."""
    if not ward_exists(deps, ward_id):
        raise Problem(404, "ward_not_found", "Không tìm thấy phường",
                      f"Phường '{ward_id}' chưa dùng hệ thống xếp hàng. / Unknown ward.")


def ward_name(deps: "Deps", principal: Principal | None, ward_id: str) -> str | None:
    """The ward's name, None when the ward does not use the queue (the pages' 404)."""
    return deps.store.ward_name(ward_id)


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
    return deps.store.counter(ward_id, counter_id)


def require_counter(deps: "Deps", ward_id: str, counter_id: str) -> dict:
    found = counter(deps, ward_id, counter_id)
    if found is None:
        raise Problem(404, "counter_not_found", "Không tìm thấy quầy",
                      f"Phường không có quầy '{counter_id}'. / Unknown counter.")
    return found


def counters_serving(deps: "Deps", ward_id: str, service_code: str) -> int:
    return deps.cache.remembered(("serving", ward_id, service_code),
                                 lambda: deps.store.counters_serving(ward_id, service_code))


# ---------------------------------------------------------------- saving (bootstrap, simulation)
def save_ward(deps: "Deps", principal: Principal | None, ward_id: str, name: str) -> None:
    deps.store.save_ward(ward_id, name)
    deps.cache.clear()


def save_service(deps: "Deps", principal: Principal | None, ward_id: str, code: str, name: str, prefix: str) -> None:
    deps.store.save_service(ward_id, code, name, prefix)
    deps.cache.clear()


def save_counter(deps: "Deps", principal: Principal | None, ward_id: str, counter_id: str, name: str,
                 service_codes: list[str]) -> None:
    deps.store.save_counter(ward_id, counter_id, name, service_codes)
    deps.cache.clear()
