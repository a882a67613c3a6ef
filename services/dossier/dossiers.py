"""The dossier use cases after submission: finding and reading dossiers, who may read
them, the officers' actions and assignments, the public lookup by receipt code (and the
SMS status question, which asks the same thing), a ward's numbers and the overdue notices.

Plain functions `(deps, principal, input...)` that the API, the citizen portal, the worker
and the CLI all call, so that there is one path into the data and every rule is written
once; refusals are problem details (motcua_common.http.Problem) the callers pass on or
turn into a page. Submitting lives in submission.py, fees in paying.py, attaching papers
in attaching.py, results in issuing.py."""
from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from motcua_common import audit, metrics, rpc
from motcua_common.auth import STAFF_ROLES, WARD_STAFF_ROLES, Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden, not_found
from motcua_common.names import normalise_display_name

from . import attachments, domain, events, issuing, payments, store, verification, views
from .deps import LOOKUPS_PER_WINDOW, Deps
from .working_days import WorkingCalendar

log = logging.getLogger(__name__)
# Lines the API's routes used to write keep the logger name they were written under, so
# that log queries and dashboards keep finding them.
api_log = logging.getLogger("motcua_dossier.api")

MAX_NOTE_LENGTH = domain.MAX_NOTE_LENGTH
DEFAULT_LIST_LIMIT = 50
NOT_FOUND_DETAIL = ("Không tìm thấy hồ sơ với mã biên nhận và 4 số cuối điện thoại này. Vui lòng kiểm tra lại. "
                    "/ No dossier matches this receipt code and these digits.")


def working_calendar(deps: Deps) -> WorkingCalendar:
    """The working-day calendar with the administrators' current exceptions (a handful of
    rows, read per request so that every API process sees a change at once)."""
    return deps.calendar.with_exceptions(store.calendar_exceptions(deps.db))


# ---------------------------------------------------------------- finding and reading
def get(deps: Deps, dossier_id: str) -> dict:
    """The dossier, or 404."""
    dossier = store.get_dossier(deps.db, dossier_id)
    if dossier is None:
        raise not_found("Không tìm thấy hồ sơ. / No such dossier.")
    return dossier


def may_read(principal: Principal, dossier: dict) -> bool:
    """The citizen who submitted the dossier, and the staff of its ward: the API and the
    portal ask the same question."""
    owner = principal.role == "citizen" and principal.subject == dossier["citizen_id"]
    return owner or principal.is_staff_of(dossier["ward_id"])


def check_reader(principal: Principal, dossier: dict, detail: str) -> None:
    """403 with `detail` unless `principal` may read `dossier`."""
    if not may_read(principal, dossier):
        raise forbidden(detail)


def readable_or_none(deps: Deps, principal: Principal, dossier_id: str) -> dict | None:
    """The dossier when `principal` may read it; None when it does not exist or is someone
    else's (the portal does not confirm that an id exists)."""
    dossier = store.get_dossier(deps.db, dossier_id)
    if dossier is None or not may_read(principal, dossier):
        return None
    return dossier


def read(deps: Deps, principal: Principal, dossier_id: str) -> dict:
    """GET /dossiers/{id}: everything, for its owner and its ward's staff (a staff read of
    the citizen's data is audited)."""
    dossier = get(deps, dossier_id)
    check_reader(principal, dossier, "Chỉ người nộp và cán bộ của phường xem được hồ sơ này. / Owner or ward staff only.")
    note_staff_read(deps, principal, dossier, "api")
    answer = views.detail(dossier, linked(deps, dossier), for_staff=principal.is_staff_of(dossier["ward_id"]))
    if dossier.get("collected"):  # who collected the result, and when (the return's record)
        answer["collected"] = _collected_view(dossier["collected"])
        for shown, kept in zip(answer["history"], dossier["history"]):
            if kept.get("collected"):
                shown["collected"] = _collected_view(kept["collected"])
    return answer


# What a staff read of a dossier shows of the citizen (field names, for the audit record).
PERSONAL_FIELDS = ("citizen_id", "citizen_name", "form", "phone_last4", "attachments", "collected")


def audit_entry(deps: Deps, principal: Principal, action: str, dossier: dict, outcome: str = "ok",
                **details) -> dict:
    """An audit record of `principal` doing `action` on `dossier` (motcua_common.audit):
    ids and field names in `details`, never the citizen's data."""
    return audit.entry(action=action, actor_id=principal.subject, actor_role=principal.role, subject_type="dossier",
                       subject_id=dossier["_id"], ward_id=dossier.get("ward_id"), outcome=outcome,
                       at=deps.clock.now(), details=details)


def note_staff_read(deps: Deps, principal: Principal, dossier: dict, via: str) -> None:
    """A member of staff (not the citizen owning it) read the dossier with the citizen's
    data: one audit record (`via`: api, desk). The owner's own reads are not recorded."""
    if principal.role == "citizen" or not principal.is_staff_of(dossier["ward_id"]):
        return
    shown = sorted(name for name in PERSONAL_FIELDS if dossier.get(name) not in (None, "", [], {}))
    store.append_audit(deps.db, audit_entry(deps, principal, "read_dossier", dossier, fields=shown, via=via))


def _collected_view(collected: dict) -> dict:
    return {"collected_by": collected.get("collected_by"), "collected_at": views.iso(collected["collected_at"])}


def linked(deps: Deps, dossier: dict) -> list[dict]:
    """The other dossiers of its chain (liên thông)."""
    return store.linked_dossiers(deps.db, dossier["chain_id"], dossier["_id"]) if dossier.get("chain_id") else []


def search(deps: Deps, principal: Principal, filters: Mapping[str, str], default_limit: int = DEFAULT_LIST_LIMIT
           ) -> list[dict]:
    """GET /dossiers and «Hồ sơ của tôi»: a citizen's own dossiers, or a ward's for its
    staff, newest first. `filters` are the query's strings: ward_id, status, assignee
    ("me" or an officer id), limit (1-100)."""
    query: dict = {}
    if principal.role == "citizen":
        query["citizen_id"] = principal.subject
    elif principal.role in STAFF_ROLES:
        ward_id = filters.get("ward_id") or principal.ward_id
        if not ward_id or not principal.is_staff_of(ward_id):
            raise forbidden("Cán bộ chỉ xem hồ sơ của phường mình. / Staff of this ward only.")
        query["ward_id"] = ward_id
    else:
        raise forbidden()
    errors: list[dict] = []
    status = filters.get("status")
    if status:
        if status in domain.STATUS_LABELS:
            query["status"] = status
        else:
            errors.append(field_error("status", "Trạng thái không hợp lệ."))
    assignee = filters.get("assignee")
    if assignee:
        if principal.role == "citizen":
            errors.append(field_error("assignee", "Chỉ cán bộ lọc theo người được phân công."))
        else:
            query["assignee_id"] = principal.subject if assignee == "me" else assignee
    limit = whole_number("limit", filters.get("limit", ""), errors, 1, 100) if "limit" in filters else default_limit
    if errors:
        raise ValidationFailed(errors)
    return store.find_dossiers(deps.db, query, limit)


def whole_number(name: str, raw: str, errors: list, low: int, high: int) -> int:
    """`raw` as a whole number in [low, high]; otherwise an error named `name` (and `low`)."""
    if not raw.isdigit() or not low <= int(raw) <= high:
        errors.append(field_error(name, f"Phải là số nguyên từ {low} đến {high}."))
        return low
    return int(raw)


# ---------------------------------------------------------------- public lookup and SMS status
def count_lookup(deps: Deps, client: str) -> None:
    """One lookup by `client` (its address): a fixed one-minute window, counted in the
    database so that every API process shares it; 429 once over the limit."""
    verdict = deps.lookup_limiter.hit(client, deps.clock.now())
    if not verdict.allowed:
        retry_after = verdict.retry_after_seconds
        raise Problem(429, "rate_limited", "Tra cứu quá nhiều lần",
                      f"Bạn đã tra cứu quá {LOOKUPS_PER_WINDOW} lần trong một phút, vui lòng thử lại sau "
                      f"{retry_after} giây. / Too many lookups, retry later.",
                      headers={"Retry-After": str(retry_after)})


def lookup_errors(code: str, last4: str) -> list[dict]:
    errors = []
    if not code:
        errors.append(field_error("receipt_code", "Nhập mã biên nhận hồ sơ."))
    if not (last4.isascii() and domain.PHONE_LAST4.match(last4)):  # not fullwidth or other scripts' digits
        errors.append(field_error("phone_last4", "Nhập 4 chữ số cuối của số điện thoại đã đăng ký."))
    return errors


def matching_receipt(deps: Deps, code: str, last4: str) -> dict | None:
    """The dossier with this receipt code and phone digits, or None. One answer for a
    wrong code and for wrong digits, so that a stranger learns nothing about which
    receipt codes exist. The public lookup and the SMS status question both ask this."""
    dossier = store.find_by_receipt_code(deps.db, code)
    expected = (dossier or {}).get("phone_last4") or "----"
    if dossier is None or not hmac.compare_digest(expected.encode(), last4.encode()):
        return None
    return dossier


def lookup(deps: Deps, client: str, code: str, last4: str) -> dict:
    """GET /lookup and the portal's lookup form: counted against `client`'s rate limit
    first, then checked; the dossier, or 404 for a wrong code and wrong digits alike."""
    count_lookup(deps, client)
    errors = lookup_errors(code, last4)
    if errors:
        raise ValidationFailed(errors)
    dossier = matching_receipt(deps, code, last4)
    if dossier is None:
        raise Problem(404, "not_found", "Không tìm thấy hồ sơ", NOT_FOUND_DETAIL)
    return dossier


def status_for_sms(deps: Deps, receipt_code, phone_last4) -> dict | None:
    """identity's `TT <receipt code>` answer: the status, only when the asking phone ends
    in the digits registered on the dossier (the same rule as the public lookup)."""
    dossier = matching_receipt(deps, str(receipt_code or "").strip().upper(), str(phone_last4 or ""))
    if dossier is None:
        return None
    return {"status": dossier["status"], "due_date": dossier["due_date"], "ward_id": dossier["ward_id"],
            "citizen_id": dossier.get("citizen_id")}  # identity answers only the phone of that account


SMS_RATING_DAYS = 30


def latest_ratable(deps: Deps, citizen_id) -> dict | None:
    """identity's question when a citizen answers the result-ready SMS with 1, 2 or 3: that
    citizen's most recent dossier whose result is ready or was returned within the last
    SMS_RATING_DAYS days (rating decides whether it may still be rated); None if none."""
    if not isinstance(citizen_id, str) or not citizen_id:
        return None
    from datetime import timedelta

    since = deps.clock.now() - timedelta(days=SMS_RATING_DAYS)
    found = deps.db[store.DOSSIERS].find_one(
        {"citizen_id": citizen_id, "status": {"$in": [domain.RESULT_READY, domain.RETURNED]}, "updated_at": {"$gte": since}},
        {"receipt_code": 1, "ward_id": 1, "updated_at": 1}, sort=[("updated_at", -1)])
    if found is None:
        return None
    return {"dossier_id": found["_id"], "receipt_code": found["receipt_code"], "ward_id": found["ward_id"],
            "at": found["updated_at"].isoformat()}


def for_sms(deps: Deps, dossier_id, event_id) -> dict | None:
    """notify's question before it texts the citizen about a step (DossierStatusChanged or
    DossierResultReady): the procedure's short name, whether the result is also issued
    online (level 4), and the officer's note on the step that event announced. None for a
    dossier this service does not know. The note is asked for rather than carried in the
    event: it is free text an officer wrote, and events stay free of anything personal."""
    dossier = store.get_dossier(deps.db, str(dossier_id or ""))
    if dossier is None:
        return None
    procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
    level = procedure.level if procedure else 0
    note = next((h.get("note") for h in dossier["history"] if event_id and h.get("event_id") == event_id), None)
    return {"procedure": domain.short_procedure_name(dossier.get("procedure_name") or dossier["procedure_code"]),
            "procedure_code": dossier["procedure_code"], "level": level, "e_result": level >= 4,
            "status": dossier["status"], "note": note}


# ---------------------------------------------------------------- officers' actions
def check_may_act(principal: Principal, dossier: dict) -> None:
    if not principal.is_staff_of(dossier["ward_id"]):
        raise forbidden("Chỉ cán bộ của phường tiếp nhận mới xử lý được hồ sơ này. / Staff of this ward only.")


def act(deps: Deps, principal: Principal, dossier: dict, body: dict) -> dict:
    """POST /dossiers/{id}/actions: one step of the workflow by an officer of the ward; an
    approval signs the result in the same step."""
    check_may_act(principal, dossier)
    action, note = _action_request(body)
    collected = collection_record(deps, body, action)
    check_may_take(principal, action)
    try:
        payments.check_action(action, dossier.get("payment_status"), dossier.get("fee", 0))
    except payments.PaymentRequired as exc:
        raise Problem(409, "payment_required", "Hồ sơ chưa nộp lệ phí", exc.message,
                      current_status=dossier["status"], payment=views.payment_state(dossier),
                      allowed_actions=views.actions_for(dossier)) from exc
    today, now = deps.clock.today(), deps.clock.now()
    requested_on = dossier.get("supplement_requested_on")
    try:
        outcome = domain.decide(dossier["status"], action, date.fromisoformat(dossier["due_date"]),
                                date.fromisoformat(requested_on) if requested_on else None, today,
                                working_calendar(deps))
        result_pdf = result_token = None
        if outcome.to_status == domain.RESULT_READY:
            procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
            # The public verification address goes on the result before it is signed.
            result_token = verification.new_token()
            result_pdf = issuing.issue(deps.result_keys, deps.wards, dossier, procedure, deps.clock.local(now), note,
                                       verification.address(deps, result_token))
        announced = events.transition(dossier, outcome, principal.subject)
        # The history entry names its DossierStatusChanged, so that notify can ask for this
        # step's note (the note stays out of the event: it is free text).
        updated = store.record_outcome(deps.db, dossier, outcome, principal.subject, note, now, today,
                                       announced, result_pdf, event_id=announced[0]["event_id"],
                                       result_token=result_token, collected=collected,
                                       audit_entry=audit_entry(deps, principal, f"action:{action}", dossier,
                                                               from_status=outcome.from_status,
                                                               to_status=outcome.to_status,
                                                               event_id=announced[0]["event_id"],
                                                               fields=sorted(
                                                                   (["note"] if note else [])
                                                                   + (["collected"] if collected else []))))
    except domain.InvalidTransition as exc:
        raise invalid_transition(exc.message, dossier["status"]) from exc
    except store.StaleDossier as exc:
        current = store.get_dossier(deps.db, dossier["_id"])
        raise invalid_transition("Hồ sơ vừa được cán bộ khác xử lý, vui lòng tải lại. / Changed meanwhile.",
                                 current["status"]) from exc
    if outcome.to_status == domain.RETURNED:
        metrics.DOSSIERS_RETURNED.labels(dossier["ward_id"], "true" if outcome.returned_on_time else "false").inc()
    api_log.info("dossier action", extra={"dossier_id": dossier["_id"], "action": action,
                                          "from_status": outcome.from_status, "to_status": outcome.to_status})
    return {"status": updated["status"], "status_label": domain.STATUS_LABELS[updated["status"]],
            "due_date": updated["due_date"], "allowed_actions": views.actions_for(updated)}


MAX_COLLECTOR_LENGTH = 200
# A clock a little ahead at the counter PC: a collection "now" typed there is not refused.
COLLECTED_AT_SKEW = timedelta(minutes=10)


def collection_record(deps: Deps, body: dict, action: str) -> dict | None:
    """Who collected the result and when (return only; both optional): {collected_by,
    collected_at}, kept on the return's timeline entry and on the dossier. `collected_at`
    is ISO 8601; without a zone it is the ward's local time; left out, it is now."""
    by, at = body.get("collected_by"), body.get("collected_at")
    if by in (None, "") and at in (None, ""):
        return {"collected_by": None, "collected_at": deps.clock.now()} if action == "return" else None
    if action != "return":
        raise ValidationFailed([field_error("collected_by", "Chỉ ghi người nhận kết quả khi trả kết quả.")])
    errors, name = [], None
    if by not in (None, ""):
        name = normalise_display_name(by) if isinstance(by, str) else None
        if not name or len(name) > MAX_COLLECTOR_LENGTH:
            errors.append(field_error("collected_by", f"Họ tên người nhận: chữ, tối đa {MAX_COLLECTOR_LENGTH} ký tự, "
                                                      "không có ký tự ẩn."))
    moment = deps.clock.now()
    if at not in (None, ""):
        moment = _local_moment(deps, at)
        if moment is None:
            errors.append(field_error("collected_at", "Thời điểm nhận kết quả không hợp lệ (ví dụ 2026-03-12T15:30)."))
        elif moment > deps.clock.now() + COLLECTED_AT_SKEW:
            errors.append(field_error("collected_at", "Thời điểm nhận kết quả không thể ở tương lai."))
    if errors:
        raise ValidationFailed(errors)
    return {"collected_by": name, "collected_at": moment}


def _local_moment(deps: Deps, raw) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(deps.settings.timezone))
    return moment.astimezone(timezone.utc)


def check_may_take(principal: Principal, action: str) -> None:
    """403 leader_only: approving (and signing) a result is the ward leader's."""
    if not domain.may_take(principal.role, action):
        raise Problem(403, "leader_only", "Chỉ lãnh đạo phường phê duyệt",
                      "Chỉ lãnh đạo phường (chủ tịch, phó chủ tịch) phê duyệt và ký kết quả; cán bộ chuyển hồ sơ "
                      "để lãnh đạo phê duyệt. / Only the ward's leader approves.")


def check_may_assign(principal: Principal, dossier: dict) -> None:
    if not principal.is_staff_of(dossier["ward_id"]):
        raise forbidden("Chỉ cán bộ của phường tiếp nhận mới phân công được hồ sơ này. / Staff of this ward only.")


def assign(deps: Deps, principal: Principal, dossier: dict, body: dict) -> dict:
    """POST /dossiers/{id}/assign: hand the current step to an officer of the ward (the
    officer themself when `officer_id` is left out): the person responsible for the step, R6."""
    check_may_assign(principal, dossier)
    officer_id, note = body.get("officer_id", principal.subject), body.get("note")
    errors = []
    if not domain.is_officer_id(officer_id):
        errors.append(field_error("officer_id", "Mã cán bộ không hợp lệ."))
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
        errors.append(field_error("note", f"Ghi chú là chữ, tối đa {MAX_NOTE_LENGTH} ký tự."))
    if errors:
        raise ValidationFailed(errors)
    check_officer_in_ward(deps, principal, officer_id, dossier["ward_id"])
    try:
        domain.check_assignable(dossier["status"])
        updated = store.assign(deps.db, dossier, officer_id, principal.subject, (note or "").strip() or None,
                               deps.clock.now(),
                               audit_entry=audit_entry(deps, principal, "assign", dossier, step=dossier["status"],
                                                       assignee_id=officer_id,
                                                       fields=["note"] if (note or "").strip() else []))
    except domain.NotAssignable as exc:
        raise Problem(409, "not_assignable", "Hồ sơ đã kết thúc",
                      f"Hồ sơ ở trạng thái «{domain.STATUS_LABELS[exc.status]}» không còn bước nào để phân công.",
                      current_status=exc.status) from exc
    except store.StaleDossier as exc:
        raise invalid_transition("Hồ sơ vừa chuyển bước, vui lòng tải lại. / Changed meanwhile.",
                                 store.get_dossier(deps.db, dossier["_id"])["status"]) from exc
    api_log.info("dossier assigned", extra={"dossier_id": dossier["_id"], "step": updated["status"]})
    return {"status": updated["status"], "assignee_id": updated["assignee_id"],
            "assignments": views.assignments(updated)}


def check_officer_in_ward(deps: Deps, principal: Principal, officer_id: str, ward_id: str) -> None:
    """422 officer_not_in_ward unless `officer_id` is an active officer of `ward_id`, as
    identity says now. A member of the ward's staff taking a step themself is proof enough:
    their token is current (a deactivated officer's tokens are refused)."""
    if officer_id == principal.subject and principal.role in WARD_STAFF_ROLES and principal.ward_id == ward_id:
        return
    try:
        in_ward = deps.officers.in_ward(officer_id, ward_id)
    except rpc.RpcUnavailable as exc:
        log.warning("officer not checked, identity did not answer: %s", exc, extra={"ward_id": ward_id})
        raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                      "Chưa kiểm tra được cán bộ được phân công, vui lòng thử lại sau ít phút. "
                      "/ Identity is unavailable, retry shortly.", headers={"Retry-After": "10"}) from exc
    if not in_ward:
        raise Problem(422, "officer_not_in_ward", "Không phải cán bộ của phường",
                      "Chỉ phân công được cho cán bộ đang làm việc tại phường tiếp nhận hồ sơ. "
                      "/ Not an active officer of this ward.",
                      errors=[field_error("officer_id", "Không phải cán bộ đang làm việc của phường này.")])


def _action_request(body: dict) -> tuple[str, str | None]:
    action, note = body.get("action"), body.get("note")
    errors = []
    if action not in domain.TRANSITIONS:
        errors.append(field_error("action", "Thao tác không hợp lệ; chọn một trong: " + ", ".join(domain.TRANSITIONS) + "."))
    wrong_note = domain.note_error(action if isinstance(action, str) else "", note)
    if wrong_note:
        errors.append(field_error("note", wrong_note))
    if errors:
        raise ValidationFailed(errors)
    return action, domain.clean_note(note)


def invalid_transition(detail: str, status: str) -> Problem:
    return Problem(409, "invalid_transition", "Thao tác không hợp lệ với trạng thái hiện tại",
                   detail, current_status=status, allowed_actions=domain.allowed_actions(status))


# ---------------------------------------------------------------- what the citizen's page shows
def citizen_view(deps: Deps, dossier: dict) -> dict:
    """What the portal's dossier page shows beside the dossier: its procedure and the
    labels of its form, the chained dossiers, the officer's latest note on the current
    step, the fee, and whether papers may still be attached."""
    procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
    notes = [h["note"] for h in dossier["history"] if h.get("note") and h["status"] == dossier["status"]]
    return {
        "procedure": procedure, "labels": {f.name: f.label for f in procedure.form} if procedure else {},
        "chained": linked(deps, dossier), "officer_note": notes[-1] if notes else None,
        "payment": views.payment_state(dossier), "online_payment": deps.payments.provider is not None,
        "open_for_papers": dossier["status"] not in attachments.CLOSED_STATUSES,
        "documents": procedure.required_documents if procedure else (),
    }


# ---------------------------------------------------------------- numbers and overdue notices
def ward_stats(deps: Deps, principal: Principal, ward_id: str) -> dict:
    """GET /wards/{id}/stats: a ward's numbers as of today."""
    from . import numbers  # a range of days, the overdue list, the exports: numbers.py

    return numbers.ward_numbers(deps, principal, ward_id)


def overdue_by_ward(deps: Deps) -> dict[str, int]:
    """Overdue dossiers per ward today (the motcua_dossiers_overdue gauge)."""
    return store.overdue_by_ward(deps.db, deps.clock.today())


def announce_overdue(deps: Deps, today: date | None = None, now: datetime | None = None) -> int:
    """One DossierOverdue per dossier and due date, through the outbox; how many were
    announced. Several workers may run this at once: the conditional write lets exactly
    one announce each."""
    today = today or deps.clock.today()
    now = now or deps.clock.now()
    announced = 0
    for dossier in store.overdue_dossiers(deps.db, today):
        if domain.needs_overdue_notice(dossier["status"], date.fromisoformat(dossier["due_date"]), today,
                                       dossier.get("overdue_noticed_for")):
            announced += store.announce_overdue(deps.db, dossier, now, events.overdue(dossier))
    return announced
