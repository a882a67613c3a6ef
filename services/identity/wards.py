"""Wards: the platform's reference list (public), the official administrative units and
opening a ward from them (the admin's API and page, the platform CLI, the demo), an admin's
free-text ward and target population, and registration coverage (R3: registered citizens aged 18–60 against the
ward's target population) for the ward's staff and the monitoring centre. Called by the
API, the pages (the registration form's ward list), the worker (dossier's questions) and
the metrics collector."""
from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from motcua_common.auth import Principal
from motcua_common.wards import is_ward_id

from . import domain, events, store, units
from .accounts import audit
from .deps import Deps
from .errors import Invalid, NotAllowed, WardExists, WardNotFound

PUBLIC_FIELDS = ("ward_id", "name", "province", "district", "target_population", "official_code", "kind",
                 "province_code")
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


# ---------------------------------------------------------------- the official list
def administrative_units(deps: Deps, province_code: object = None, q: object = None) -> list[dict]:
    """GET /administrative-units: the units of a province (or all) whose name contains `q`
    typed with or without accents, each with the ward opened for it (`opened`: ward id or None)."""
    errors = []
    code = None
    if province_code not in (None, ""):
        code = units.province_code(province_code)
        if code is None:
            errors.append(domain.FieldError("province_code", "Mã tỉnh gồm 2 chữ số của một trong 34 tỉnh, thành phố "
                                                             "(ví dụ 19: Thái Nguyên). / Unknown province code."))
    if q is not None and (not isinstance(q, str) or len(q) > 100):
        errors.append(domain.FieldError("q", "Tên tìm kiếm tối đa 100 ký tự. / At most 100 characters."))
    if errors:
        raise Invalid(errors)
    opened = store.opened_codes(deps.db)
    return [{**u.public(), "opened": opened.get(u.official_code)} for u in units.search(code, q)]


def _is_console(principal: Principal | None) -> bool:
    return principal is None  # the platform operator at the console (motcua wards …)


def _check_opener(principal: Principal | None) -> None:
    if not _is_console(principal) and principal.role != "admin":
        raise NotAllowed("Chỉ quản trị hệ thống mở phường mới. / Only the platform admin opens wards.")


def open_ward(deps: Deps, principal: Principal | None, official_code: object, ward_id: object = None,
              target_population: object = None) -> dict:
    """Open the ward of an official code (five digits, e.g. "05518"; "5518" and 5518 are
    read the same): its name, province and kind come from the official list; its id is
    `ward_id` or the unit's codename ("phuong-song-cong"), with "-<code>" appended when
    another ward already has that id. The ward and its WardOpened event are written
    together. `principal` None is the platform operator at the console.

    Raises Invalid (unknown or malformed code, bad ward id or population), WardExists
    (the code or the ward id is already open), NotAllowed (not the platform admin)."""
    _check_opener(principal)
    errors = []
    code = units.official_code(official_code)
    found = units.unit(code) if code else None
    if code is None:
        errors.append(domain.FieldError("official_code", "Mã đơn vị hành chính gồm 5 chữ số, ví dụ 05518. "
                                                         "/ Five digits, e.g. 05518."))
    elif found is None:
        errors.append(domain.FieldError("official_code", f"Không có xã, phường nào mang mã {code} trong danh mục "
                                                         "hiện hành. / No such administrative unit."))
    if ward_id is not None and not is_ward_id(ward_id):
        errors.append(domain.FieldError("ward_id", "Mã phường: 2–63 chữ thường không dấu (a–z), số hoặc '-', "
                                                   "ví dụ phuong-song-cong."))
    population = 0 if target_population is None else target_population
    if not _is_count(population) or not 0 <= population <= MAX_POPULATION:
        errors.append(domain.FieldError("target_population", "Số nguyên từ 0 đến 10.000.000."))
    if errors:
        raise Invalid(errors)
    already = store.ward_by_official_code(deps.db, found.official_code)
    if already is not None:
        raise WardExists("official_code", already["ward_id"], found.official_code)
    if ward_id is not None:
        chosen = ward_id
        if store.get_ward(deps.db, chosen) is not None:
            raise WardExists("ward_id", chosen, found.official_code)
    else:
        chosen = units.default_ward_id(found)
        if store.get_ward(deps.db, chosen) is not None:
            chosen = units.unique_ward_id(found)
    ward = {"ward_id": chosen, "official_code": found.official_code, "name": found.name, "province": found.province,
            "province_code": found.province_code, "kind": found.kind, "target_population": population,
            "opened_at": deps.clock.now()}
    try:
        store.insert_opened_ward(deps.db, ward, [events.ward_opened(ward)])
    except DuplicateKeyError:
        # Opened at the same moment by someone else: nothing of ours was written.
        already = store.ward_by_official_code(deps.db, found.official_code)
        if already is not None:
            raise WardExists("official_code", already["ward_id"], found.official_code)
        raise WardExists("ward_id", chosen, found.official_code)
    audit(deps, "open_ward", by=principal or "console", ward_id=chosen,
          official_code=found.official_code)
    return {k: ward[k] for k in ("ward_id", "official_code", "name", "province", "province_code", "kind",
                                 "target_population")}


def open_wards_of_province(deps: Deps, principal: Principal | None, province_code: object,
                           codes: list[str] | None = None) -> list[dict]:
    """Open many units of one province at once (the admin's page): `codes` the official
    codes ticked (None: every unit of the province). One outcome per unit, in code order:
    {official_code, name, outcome: opened|exists, ward_id}. Each ward is its own
    transaction; a unit already open is reported, not an error. Invalid when the province
    is unknown or a code is not one of its units (nothing is opened then)."""
    _check_opener(principal)
    province = units.province_code(province_code)
    if province is None:
        raise Invalid([domain.FieldError("province_code", "Chọn một tỉnh, thành phố. / Choose a province.")])
    of_province = {u.official_code: u for u in units.search(province)}
    if codes is None:
        chosen = sorted(of_province)
    else:
        chosen = sorted({units.official_code(c) or str(c) for c in codes})
        if not chosen:
            raise Invalid([domain.FieldError("units", "Chọn ít nhất một xã, phường. / Choose at least one unit.")])
        stray = [c for c in chosen if c not in of_province]
        if stray:
            raise Invalid([domain.FieldError("units", f"Mã {', '.join(stray[:5])} không thuộc tỉnh đã chọn. "
                                                      "/ Not a unit of this province.")])
    outcomes = []
    for code in chosen:
        try:
            ward = open_ward(deps, principal, code)
            outcomes.append({"official_code": code, "name": ward["name"], "outcome": "opened",
                             "ward_id": ward["ward_id"]})
        except WardExists as exists:
            outcomes.append({"official_code": code, "name": of_province[code].name, "outcome": "exists",
                             "ward_id": exists.ward_id})
    return outcomes


def ward_info(deps: Deps) -> list[dict]:
    """{ward_id, official_code, name, province} of every open ward (one query), for the
    motcua_ward_info series; a ward opened without an official code has it empty."""
    return [{"ward_id": w["ward_id"], "official_code": w.get("official_code") or "", "name": w.get("name") or "",
             "province": w.get("province") or ""} for w in store.list_wards(deps.db)]


def set_population(deps: Deps, principal: Principal, ward_id: str, population: object) -> dict:
    if not _is_count(population) or not 0 <= population <= MAX_POPULATION:
        raise Invalid([domain.FieldError("target_population", "Số nguyên từ 0 đến 10.000.000.")])
    if store.get_ward(deps.db, ward_id) is None:
        raise WardNotFound(ward_id)
    store.set_target_population(deps.db, ward_id, population)
    audit(deps, "set_population", by=principal, ward_id=ward_id)
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
    answer = {"ward_id": found["ward_id"], "name": found["name"], "province": found.get("province")}
    if found.get("official_code"):
        answer["official_code"] = found["official_code"]
    return answer
