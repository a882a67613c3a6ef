"""The officer's desk work list (/dossier/desk/{ward_id}): a ward's open dossiers in tabs
with their counts, and the search by receipt code, citizen's name (accents aside) or
national id (CCCD).

Plain functions (deps, principal, input) like every use case; the desk's pages only
translate HTTP. Every query is by the ward and an index (store.ensure_indexes:
ward_status_due, ward_assignee_status, ward_citizen_name, ward_citizen, counter_record)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from motcua_common import rpc
from motcua_common.auth import Principal
from motcua_common.http import forbidden
from motcua_common.names import fold

from . import counter_records, domain, payments, store, views
from .deps import Deps
from .dossiers import note_staff_read, working_calendar

log = logging.getLogger(__name__)

OPEN_STATUSES = (domain.SUBMITTED, domain.RECEIVED, domain.PROCESSING, domain.SUPPLEMENT_REQUESTED,
                 domain.RESULT_READY)
ROWS_SHOWN = 200
SEARCH_ROWS = 100
MIN_NAME_QUERY = 2


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    leader_only: bool = False


TABS = (
    Tab("cua-toi", "Của tôi"),
    Tab("ca-phuong", "Cả phường"),
    Tab("den-han", "Đến hạn hôm nay"),
    Tab("qua-han", "Quá hạn"),
    Tab("cho-bo-sung", "Chờ bổ sung"),
    Tab("cho-tra", "Chờ trả kết quả"),
    Tab("cho-duyet", "Chờ phê duyệt", leader_only=True),
)
DEFAULT_TAB = "ca-phuong"


def check_staff(principal: Principal, ward_id: str) -> None:
    if not principal.is_staff_of(ward_id):
        raise forbidden("Chỉ cán bộ của phường xem được hồ sơ của phường. / Staff of this ward only.")


def is_leader(principal: Principal) -> bool:
    return principal.role in domain.LEADER_ROLES


def tabs_for(principal: Principal) -> list[Tab]:
    return [t for t in TABS if not t.leader_only or is_leader(principal)]


def _in_tab(tab: str, row: dict, principal: Principal, today: str) -> bool:
    running = row["status"] in domain.CLOCK_RUNNING_STATUSES
    return {
        "cua-toi": lambda: row.get("assignee_id") == principal.subject,
        "ca-phuong": lambda: True,
        "den-han": lambda: running and row["due_date"] == today,
        "qua-han": lambda: running and row["due_date"] < today,
        "cho-bo-sung": lambda: row["status"] == domain.SUPPLEMENT_REQUESTED,
        "cho-tra": lambda: row["status"] == domain.RESULT_READY,
        "cho-duyet": lambda: row["status"] == domain.PROCESSING,
    }[tab]()


def work_list(deps: Deps, principal: Principal, ward_id: str, tab: str) -> dict:
    """{tabs: [{key, label, count}], tab, rows}: the tab's dossiers, overdue first, then by
    due date; each row with its due-date mark (overdue, due_soon). Every tab is a part of
    the ward's open dossiers, read once (lean) and counted here."""
    check_staff(principal, ward_id)
    shown = tabs_for(principal)
    if tab not in {t.key for t in shown}:
        tab = DEFAULT_TAB
    today = deps.clock.today().isoformat()
    open_rows = store.ward_open_rows(deps.db, ward_id, OPEN_STATUSES)
    counts = [{"key": t.key, "label": t.label,
               "count": sum(1 for r in open_rows if _in_tab(t.key, r, principal, today))} for t in shown]
    chosen = [r for r in open_rows if _in_tab(tab, r, principal, today)]
    rows = decorate(deps, chosen, ROWS_SHOWN)
    return {"tabs": counts, "tab": tab, "rows": rows, "more": max(0, len(chosen) - ROWS_SHOWN)}


def decorate(deps: Deps, rows: list[dict], limit: int | None = None) -> list[dict]:
    """Rows with their marks (overdue, due_soon: due by the next working day), overdue
    first then by due date, the first `limit` of them with the citizen's name."""
    today = deps.clock.today()
    next_working_day = working_calendar(deps).add_working_days(today, 1)
    for row in rows:
        due = date.fromisoformat(row["due_date"])
        row["overdue"] = domain.is_overdue(row["status"], due, today)
        row["due_soon"] = (not row["overdue"] and row["status"] in domain.CLOCK_RUNNING_STATUSES
                           and due <= next_working_day)
    ordered = sorted(rows, key=lambda r: (not r["overdue"], r["due_date"], r.get("receipt_code", "")))
    ordered = ordered[:limit] if limit is not None else ordered
    fill_names(deps, ordered)
    return ordered


def fill_names(deps: Deps, rows: list[dict]) -> None:
    """The citizen's name of the rows without one (online dossiers: the citizen's token
    carries no name): one question to identity for the page, kept on the dossiers so that
    the search by name finds them from then on. Unanswered, the rows stay unnamed."""
    missing = sorted({r["citizen_id"] for r in rows if not r.get("citizen_name") and r.get("citizen_id")})
    if not missing:
        return
    try:
        names = deps.citizens.names(missing)
    except (rpc.RpcUnavailable, AttributeError) as exc:
        log.warning("citizens' names not asked: %s", exc.__class__.__name__)
        return
    names = {k: v for k, v in (names or {}).items() if isinstance(v, str) and v}
    if names:
        store.set_citizen_names(deps.db, names, {k: fold(v) for k, v in names.items()})
    for row in rows:
        if not row.get("citizen_name") and row.get("citizen_id") in names:
            row["citizen_name"] = names[row["citizen_id"]]


_RECEIPT_LIKE = re.compile(r"^[A-Za-z]{2,6}[- ]?\d{6}[- ]?[0-9A-Za-z]{1,5}$|^[A-Za-z]{2,6}-\d")


def search(deps: Deps, principal: Principal, ward_id: str, raw: str) -> dict:
    """The desk's search box: 12 digits are a national id (the citizen's dossiers, by
    account and by counter record), a receipt code finds its dossier, anything else is a
    name matched without accents. {kind, query_shown, rows, error?}. The national id is
    never echoed back into an address: the page posts it."""
    check_staff(principal, ward_id)
    text = " ".join((raw or "").split())[:100]
    if not text:
        return {"kind": "empty", "rows": [], "error": "Nhập mã biên nhận, họ tên hoặc số CCCD để tìm."}
    if text.isdigit():
        if not domain.is_national_id(text):
            return {"kind": "national_id", "rows": [], "error": "Số CCCD phải gồm đúng 12 chữ số."}
        return {"kind": "national_id", "rows": decorate(deps, _by_national_id(deps, ward_id, text))}
    if _RECEIPT_LIKE.match(text):
        found = store.find_by_receipt_code(deps.db, text)
        if found is not None and found["ward_id"] == ward_id:
            return {"kind": "receipt_code", "rows": decorate(deps, [found])}
    key = fold(text)
    if len(key) < MIN_NAME_QUERY:
        return {"kind": "name", "rows": [], "error": "Nhập ít nhất 2 chữ của họ tên."}
    rows = store.desk_rows(deps.db, {"ward_id": ward_id, "citizen_name_key": {"$regex": re.escape(key)}},
                           SEARCH_ROWS)
    return {"kind": "name", "rows": decorate(deps, rows)}


def _by_national_id(deps: Deps, ward_id: str, national_id: str) -> list[dict]:
    clauses = []
    record = counter_records.of_national_id(deps, national_id)
    if record is not None:
        clauses.append({"counter_record_id": record["_id"]})
    try:
        account = deps.citizens.find_by_national_id(national_id)
    except rpc.RpcUnavailable as exc:
        log.warning("citizen not asked of identity: %s", exc.__class__.__name__)
        account = None
    if account:
        clauses.append({"citizen_id": account["citizen_id"]})
    if not clauses:
        return []
    return store.desk_rows(deps.db, {"ward_id": ward_id, "$or": clauses}, SEARCH_ROWS)


def one(deps: Deps, principal: Principal, dossier: dict) -> dict:
    """What a dossier's page shows beside the dossier: its procedure and form labels, the
    chained dossiers, the steps the caller may take now (approve only for the leader),
    the ward's staff for the assignment select and their names on the timeline, the fee,
    the papers, the counter record (no account) and who collected the result."""
    check_staff(principal, dossier["ward_id"])
    note_staff_read(deps, principal, dossier, "desk")  # staff saw the citizen's data: audited
    procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
    try:
        staff = deps.officers.of_ward(dossier["ward_id"])
    except (rpc.RpcUnavailable, AttributeError) as exc:
        log.warning("ward's officers not asked: %s", exc.__class__.__name__)
        staff = []
    names = {o["officer_id"]: o["full_name"] for o in staff}
    fill_names(deps, [dossier])
    allowed = views.actions_for(dossier)
    record = store.get_counter_record(deps.db, dossier["counter_record_id"]) if dossier.get("counter_record_id") else None
    return {
        "procedure": procedure, "labels": {f.name: f.label for f in procedure.form} if procedure else {},
        "chained": store.linked_dossiers(deps.db, dossier["chain_id"], dossier["_id"]) if dossier.get("chain_id") else [],
        "actions": [a for a in allowed if domain.may_take(principal.role, a)],
        "awaiting_leader": "approve" in allowed and not domain.may_take(principal.role, "approve"),
        "staff": staff, "officer_names": names, "payment": views.payment_state(dossier),
        "fee_unpaid": dossier.get("payment_status") == payments.UNPAID,
        "record": {"full_name": record["full_name"], "date_of_birth": record.get("date_of_birth"),
                   "national_id_end": record["national_id"][-4:], "has_phone": bool(record.get("phone")),
                   "claimed": bool(record.get("claimed_by"))} if record else None,
        "documents": procedure.required_documents if procedure else (),
        "open_for_papers": dossier["status"] not in domain.FINISHED_STATUSES,
    }
