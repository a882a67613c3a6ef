"""Counter intake (tiếp nhận tại quầy): an officer of the ward files a dossier on a
citizen's behalf — found by national id (CCCD) — and prints the receipt (giấy tiếp nhận
hồ sơ và hẹn trả kết quả).

A citizen with an account is filed on as POST /dossiers files with `citizen_national_id`
(the same submission.submit). A citizen with no account is filed all the same, on a
counter record (counter_records.py) the citizen claims once they register. The papers
the officer received are kept on the dossier (the receipt lists them); the chained
procedures (liên thông) filed too are the ones the officer ticks.

Plain functions (deps, principal, input); the desk's pages only translate HTTP."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from motcua_common import rpc
from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error

from . import counter_records, domain, issuing, store, submission, wards, worklist
from .catalog import Procedure
from .deps import Deps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Citizen:
    """Who the dossier is filed for: an account (citizen_id, its name) or a counter record
    (the one kept, if any, for this national id)."""
    national_id: str
    account: dict | None = None   # {citizen_id, full_name, phone_last4}
    record: dict | None = None    # the counter record of this national id, if kept


@dataclass(frozen=True)
class Intake:
    """What the officer filled in at the counter."""
    national_id: str
    procedure_code: str
    form: dict
    chain_codes: tuple[str, ...] = ()
    papers_received: tuple[str, ...] = ()
    record: dict = field(default_factory=dict)   # full_name, date_of_birth, phone (no account only)


def procedures_offered(deps: Deps) -> list[Procedure]:
    """Every active procedure: the counter takes them all (level 2 included)."""
    return store.list_procedures(deps.db)


def find_citizen(deps: Deps, principal: Principal, ward_id: str, national_id: str) -> Citizen:
    """The citizen of `national_id`: their account (identity's find_citizen, then their
    name) or, without one, the counter record kept for them, if any. 422 for a malformed
    national id; 503 when identity cannot say whether an account exists."""
    worklist.check_staff(principal, ward_id)
    national_id = (national_id or "").strip()
    if not domain.is_national_id(national_id):
        raise ValidationFailed([field_error("national_id", "Số CCCD phải gồm đúng 12 chữ số.")])
    try:
        found = deps.citizens.find_by_national_id(national_id)
    except rpc.RpcUnavailable as exc:
        log.warning("identity did not answer: %s", exc.__class__.__name__)
        raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                      "Chưa kiểm tra được công dân đã có tài khoản hay chưa, vui lòng thử lại sau ít phút. "
                      "/ Identity is unavailable, retry shortly.", headers={"Retry-After": "10"}) from exc
    record = counter_records.of_national_id(deps, national_id)
    if not found:
        return Citizen(national_id, None, record)
    account = {"citizen_id": found["citizen_id"], "phone_last4": domain.phone_last4(found),
               "full_name": found.get("full_name") or _name_of(deps, found["citizen_id"])}
    if record is not None and not record.get("claimed_by"):
        # Registered meanwhile (the registration's event not yet handled): theirs now.
        counter_records.claim_quietly(deps, national_id, found["citizen_id"], account["phone_last4"])
    return Citizen(national_id, account, None)


def _name_of(deps: Deps, citizen_id: str) -> str | None:
    try:
        return (deps.citizens.names([citizen_id]) or {}).get(citizen_id)
    except (rpc.RpcUnavailable, AttributeError):
        return None


def check_papers(chain: list[Procedure], papers: tuple[str, ...]) -> list[dict]:
    known = {d for p in chain for d in p.required_documents}
    if any(p not in known for p in papers):
        return [field_error("papers_received", "Chỉ đánh dấu các giấy tờ của thủ tục này.")]
    return []


def file(deps: Deps, principal: Principal, ward_id: str, intake: Intake) -> list[dict]:
    """File the dossier (and the chained ones ticked) for the citizen of intake.national_id;
    the dossiers, the one asked for first. Nothing is written while anything is wrong:
    the form, the papers and (no account) the counter record are all checked first."""
    citizen = find_citizen(deps, principal, ward_id, intake.national_id)
    body = {"procedure_code": intake.procedure_code, "ward_id": ward_id, "form": intake.form,
            "citizen_national_id": citizen.national_id, "chain_procedures": list(intake.chain_codes)}
    errors: list[dict] = []
    try:
        chain = submission.check(deps, principal, body)[3]
    except ValidationFailed as problem:
        errors.extend(problem.errors or [])
        head = store.get_procedure(deps.db, intake.procedure_code) if isinstance(intake.procedure_code, str) else None
        chain = [head] if head else []
    errors.extend(check_papers(chain, intake.papers_received))
    cleaned = None
    if citizen.account is None:
        cleaned, record_problems = counter_records.record_errors({**intake.record, "national_id": citizen.national_id},
                                                                 deps.clock.today())
        errors.extend(field_error(f"record.{name}", message) for name, message in record_problems.items())
    if errors:
        raise ValidationFailed(errors)
    if citizen.account is not None:
        filing = submission.CounterFiling(citizen_name=citizen.account.get("full_name"),
                                          papers_received=intake.papers_received)
    else:
        record = counter_records.keep(deps, principal, ward_id, cleaned)
        filing = submission.CounterFiling(citizen_name=record["full_name"], record=record,
                                          papers_received=intake.papers_received)
    return submission.submit(deps, principal, body, filing)


def receipt(deps: Deps, principal: Principal, ward_id: str, dossier: dict) -> dict:
    """What the receipt (giấy tiếp nhận hồ sơ và hẹn trả kết quả) prints: the ward, the
    dossier and the chained ones, the citizen's name, the papers received, when it was
    received and is due, and the officer who received it."""
    worklist.check_staff(principal, ward_id)
    procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
    chained = store.linked_dossiers(deps.db, dossier["chain_id"], dossier["_id"]) if dossier.get("chain_id") else []
    worklist.fill_names(deps, [dossier])
    return {
        "ward_name": wards.name_or_none(deps, ward_id) or issuing.named_by_id(ward_id),
        "dossier": dossier, "chained": chained, "procedure": procedure,
        "papers": dossier.get("papers_received") or [],
        "officer_name": officer_name(deps, ward_id, dossier.get("submitted_by"), principal),
    }


def officer_names(deps: Deps, ward_id: str) -> dict[str, str]:
    """{officer_id: full name} of the ward's active staff; empty when identity cannot say."""
    try:
        return {o["officer_id"]: o["full_name"] for o in deps.officers.of_ward(ward_id)}
    except (rpc.RpcUnavailable, AttributeError) as exc:
        log.warning("ward's officers not asked: %s", exc.__class__.__name__)
        return {}


def officer_name(deps: Deps, ward_id: str, officer_id: str | None, principal: Principal) -> str:
    if not officer_id:
        return ""
    names = officer_names(deps, ward_id)
    if officer_id in names:
        return names[officer_id]
    if officer_id == principal.subject and principal.username:
        return principal.username
    return officer_id
