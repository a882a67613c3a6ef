"""Wards: the platform's reference list (public), an admin's new ward and target
population, and registration coverage (R3: registered citizens aged 18–60 against the
ward's target population) for the ward's staff and the monitoring centre. Called by the
API, the pages (the registration form's ward list), the worker (dossier's questions) and
the metrics collector."""
from __future__ import annotations

from motcua_common.auth import Principal
from motcua_common.wards import is_ward_id

from . import domain, store
from .accounts import audit
from .deps import Deps
from .errors import Invalid, NotAllowed, WardNotFound

PUBLIC_FIELDS = ("ward_id", "name", "province", "district", "target_population")
MAX_POPULATION = 10_000_000


def public_list(deps: Deps) -> list[dict]:
    return [{k: w[k] for k in PUBLIC_FIELDS if k in w} for w in store.list_wards(deps.db)]


def all_wards(deps: Deps) -> list[dict]:
    return store.list_wards(deps.db)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def create_ward(deps: Deps, principal: Principal, body: dict) -> dict:
    """A new ward (or the same ward again, updated); the ward as stored."""
    errors = []
    ward_id = body.get("ward_id")
    if not is_ward_id(ward_id):
        errors.append(domain.FieldError("ward_id", "Mã phường: 2–63 chữ thường không dấu (a–z), số hoặc '-', "
                                                   "ví dụ dn-hai-chau."))
    for name in ("name", "province"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            errors.append(domain.FieldError(name, "Bắt buộc. / Required."))
    population = body.get("target_population", 0)
    if not _is_count(population) or population < 0:
        errors.append(domain.FieldError("target_population", "Phải là số nguyên không âm."))
    if errors:
        raise Invalid(errors)
    ward = {"ward_id": ward_id, "name": body["name"].strip(), "province": body["province"].strip(),
            "target_population": population}
    if isinstance(body.get("district"), str):
        ward["district"] = body["district"].strip()
    store.upsert_ward(deps.db, ward)
    return ward


def set_population(deps: Deps, principal: Principal, ward_id: str, population: object) -> dict:
    if not _is_count(population) or not 0 <= population <= MAX_POPULATION:
        raise Invalid([domain.FieldError("target_population", "Số nguyên từ 0 đến 10.000.000.")])
    if store.get_ward(deps.db, ward_id) is None:
        raise WardNotFound(ward_id)
    store.set_target_population(deps.db, ward_id, population)
    audit(deps, "set_population", by=principal.subject, ward_id=ward_id)
    return store.get_ward(deps.db, ward_id)


def coverage(deps: Deps, principal: Principal, ward_id: str) -> dict:
    if not principal.can_watch(ward_id):
        raise NotAllowed()
    ward = store.get_ward(deps.db, ward_id)
    if ward is None:
        raise WardNotFound(ward_id)
    registered = store.count_registered_aged(deps.db, ward_id, deps.clock.today(), 18, 60)
    target = ward.get("target_population") or 0
    return {"ward_id": ward_id, "registered_18_60": registered, "target_population": target,
            "ratio": round(registered / target, 4) if target else None}


def coverage_by_ward(deps: Deps) -> list[tuple[str, int, int]]:
    """(ward_id, registered aged 18–60, target population) for every ward, one aggregation."""
    counts = store.registered_aged_by_ward(deps.db, deps.clock.today(), 18, 60)
    return [(w["ward_id"], counts.get(w["ward_id"], 0), w.get("target_population") or 0)
            for w in store.list_wards(deps.db)]


def ward_for_rpc(deps: Deps, ward_id: object) -> dict | None:
    """A ward of the platform's reference data, asked by dossier before it takes a dossier
    for the ward and when it names the ward on a result; None for a ward that does not exist."""
    if not is_ward_id(ward_id):
        return None
    found = store.get_ward(deps.db, ward_id)
    if found is None:
        return None
    return {"ward_id": found["ward_id"], "name": found["name"], "province": found.get("province")}
