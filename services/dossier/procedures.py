"""The procedure catalog (danh mục thủ tục) as the use cases see it: reading it, the
platform administrator's changes to it, and the citizen portal's search in it and the
chains (liên thông) it offers online.

Plain functions of the dependencies (deps.Deps) and the caller, which the API and the
portal call; what a procedure must say is checked in catalog.py (pure)."""
from __future__ import annotations

import logging

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden, not_found
from motcua_common.names import fold

from . import store
from .catalog import Procedure, procedure_errors
from .deps import Deps

# Kept under the name the API's routes wrote them under (log queries keep matching).
api_log = logging.getLogger("motcua_dossier.api")


# ---------------------------------------------------------------- reading
def active(deps: Deps) -> list[Procedure]:
    return store.list_procedures(deps.db)


def get(deps: Deps, code: str) -> Procedure:
    """An active procedure, or 404."""
    found = store.get_procedure(deps.db, code)
    if found is None:
        raise not_found("Không có thủ tục với mã này. / No such procedure.")
    return found


def find(deps: Deps, code: str) -> Procedure | None:
    return store.get_procedure(deps.db, code)


def catalog_info(deps: Deps) -> dict:
    return {"version": store.catalog_version(deps.db), "procedures": len(store.active_procedure_codes(deps.db))}


def online_chain(deps: Deps, procedure: Procedure) -> list[Procedure]:
    """The procedure and the ones chained to it (liên thông), when all can be submitted online."""
    following = [store.get_procedure(deps.db, code) for code in procedure.next_procedures]
    if not following or any(p is None or not p.online for p in following):
        return []
    return [procedure, *following]


def search(deps: Deps, query: str, field: str) -> tuple[list[tuple[str, list[Procedure]]], list[str], int]:
    """The portal's catalog: the active procedures whose name, code or field holds every
    word of `query` (accents and case aside), in `field` when given. Returns the groups by
    field (those with a match), every field, and how many procedures matched."""
    procedures = store.list_procedures(deps.db)
    fields = sorted({p.field for p in procedures}, key=fold)
    words = fold(query).split()
    shown = [p for p in procedures if _matches(p, words) and (not field or p.field == field)]
    groups = [(f, sorted((p for p in shown if p.field == f), key=lambda p: fold(p.name))) for f in fields]
    return [(f, ps) for f, ps in groups if ps], fields, len(shown)


def _matches(procedure: Procedure, words: list[str]) -> bool:
    haystack = fold(f"{procedure.name} {procedure.code} {procedure.field}")
    return all(word in haystack for word in words)


# ---------------------------------------------------------------- the administrator's changes
def check_admin(principal: Principal) -> None:
    # The catalog is the platform's, shared by every ward: its administrator edits it.
    if principal.role != "admin":
        raise forbidden("Chỉ quản trị viên hệ thống sửa được danh mục thủ tục. / Platform administrators only.")


def create(deps: Deps, principal: Principal, body: dict) -> Procedure:
    """POST /procedures: a new procedure under a new catalog version."""
    check_admin(principal)
    data = _procedure_body(deps, body, code=None)
    try:
        saved = store.save_procedure(deps.db, data, principal.subject, deps.clock.now(), create=True)
    except store.ProcedureExists as exc:
        raise Problem(409, "procedure_exists", "Thủ tục đã có",
                      f"Đã có thủ tục mã {data['code']}; dùng PUT để sửa. / Use PUT to change it.") from exc
    api_log.info("procedure created", extra={"procedure_code": saved.code, "catalog_version": saved.catalog_version})
    return saved


def update(deps: Deps, principal: Principal, code: str, body: dict) -> Procedure:
    """PUT /procedures/{code}: a changed procedure under a new catalog version."""
    check_admin(principal)
    data = _procedure_body(deps, body, code=code)
    try:
        saved = store.save_procedure(deps.db, data, principal.subject, deps.clock.now(), create=False)
    except store.NoSuchProcedure as exc:
        raise not_found("Không có thủ tục với mã này; dùng POST /procedures để thêm. / No such procedure.") from exc
    api_log.info("procedure changed", extra={"procedure_code": saved.code, "catalog_version": saved.catalog_version})
    return saved


def withdraw(deps: Deps, principal: Principal, code: str) -> None:
    """DELETE /procedures/{code}: no more dossiers for it (it stays readable)."""
    check_admin(principal)
    try:
        version = store.withdraw_procedure(deps.db, code, principal.subject, deps.clock.now())
    except store.NoSuchProcedure as exc:
        raise not_found("Không có thủ tục với mã này. / No such procedure.") from exc
    api_log.info("procedure withdrawn", extra={"procedure_code": code, "catalog_version": version})


def revisions(deps: Deps, principal: Principal, code: str) -> list[dict]:
    """Who changed the procedure, when, to what."""
    check_admin(principal)
    return store.procedure_revisions(deps.db, code)


def _procedure_body(deps: Deps, data: dict, code: str | None) -> dict:
    if code is not None:
        if data.setdefault("code", code) != code:
            raise ValidationFailed([field_error("code", "Mã thủ tục trong nội dung khác mã trên đường dẫn.")])
    data.pop("catalog_version", None), data.pop("online", None), data.pop("active", None)
    data.setdefault("required_documents", []), data.setdefault("next_procedures", []), data.setdefault("form", [])
    problems = procedure_errors(data, store.active_procedure_codes(deps.db))
    if problems:
        raise ValidationFailed([field_error(name, message) for name, message in problems])
    return data
