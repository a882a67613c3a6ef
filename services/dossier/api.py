"""The dossier HTTP API (/dossier/api/v1): the catalog, the working-day calendar, submitting
and tracking dossiers, the officers' actions and a ward's numbers.

Routes translate HTTP into calls of the domain, the submission use case and the store,
and back; the rules live in domain.py, catalog.py, working_days.py and submission.py."""
from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from flask import Blueprint, Response, render_template, request, send_file
from prometheus_client.core import GaugeMetricFamily
from pymongo.errors import PyMongoError

from motcua_common import metrics
from motcua_common.auth import TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    Problem, ServiceContext, ValidationFailed, create_service_app, current_principal, field_error,
    forbidden, idempotent, json_body, not_found, request_context,
)
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import pending_count

from . import attachments, domain, issuing, paying, payment_provider, payments, results, store, submission, views
from .catalog import procedure_errors
from .citizen_directory import CitizenDirectory
from .clock import SystemClock
from .payment_provider import LocalPaymentProvider, PaymentSetup
from .signing_keys import ResultKeys
from .ward_directory import WardDirectory
from .working_days import DAY_OFF, MAX_WORKING_DAYS, WORKING_DAY, CalendarException, WorkingCalendar

log = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.yaml"
LOOKUPS_PER_WINDOW = 20
LOOKUP_WINDOW = timedelta(minutes=1)
MAX_NOTE_LENGTH = 1000
MAX_VERIFY_BYTES = 10 * 1024 * 1024

bp = Blueprint("dossier", __name__, url_prefix="/dossier/api/v1")
# The local payment provider's checkout pages (one machine and tests only).
local_pay = Blueprint("dossier_local_pay", __name__, url_prefix="/dossier/pay/local")


def create_app(settings: Settings, verifier: TokenVerifier | None = None,
               citizens: CitizenDirectory | None = None, clock: SystemClock | None = None,
               result_keys: ResultKeys | None = None, payment_setup: PaymentSetup | None = None,
               wards: WardDirectory | None = None):
    """The dossier API. `citizens` and `wards` (identity's directories), `clock`, the result
    signing keys and the payment provider default to the real ones; tests pass stand-ins."""
    db = service_database(connect(settings), settings, "dossier")
    payment_setup = payment_setup or payment_provider.from_env(settings.data_dir)
    if isinstance(payment_setup.provider, LocalPaymentProvider):
        log.warning("online fees go through the local payment provider, which takes no money "
                    "(PAYMENT_PROVIDER=none turns online payment off)")
    ctx = ServiceContext(
        "dossier", settings, db, verifier or TokenVerifier.from_url(settings.jwks_url),
        citizens=citizens or CitizenDirectory(settings),
        wards=wards or WardDirectory(settings),
        clock=clock or SystemClock(settings.timezone),
        calendar=WorkingCalendar(),
        result_keys=result_keys or ResultKeys.from_settings(settings),
        payments=payment_setup,
    )
    collectors = [metrics.OutboxPendingCollector("dossier", lambda: pending_count(db)), OverdueCollector(db, ctx.clock)]
    from .portal import portal  # the citizen portal's pages, which call this module's functions

    return create_service_app(ctx, [bp, local_pay, portal], OPENAPI_FILE, extra_collectors=collectors)


class OverdueCollector:
    """motcua_dossiers_overdue{ward_id}, counted from the database at scrape time.

    Counted here rather than by a worker timer: the number is as fresh as the scrape, the
    same in every API process without coordination, and needs no worker metrics port."""

    def __init__(self, db, clock):
        self.db, self.clock = db, clock

    def collect(self):
        described = metrics.DOSSIERS_OVERDUE.describe()[0]
        family = GaugeMetricFamily(described.name, described.documentation, labels=["ward_id"])
        try:
            overdue = store.overdue_by_ward(self.db, self.clock.today())
        except PyMongoError as exc:
            # The other metrics still get scraped; the gap in this one shows the outage.
            log.warning("overdue dossiers not counted: %s", exc.__class__.__name__)
            overdue = {}
        for ward_id, count in sorted(overdue.items()):
            family.add_metric([ward_id], float(count))
        yield family


def ctx() -> ServiceContext:
    return request_context()


def calendar_today() -> WorkingCalendar:
    """The working-day calendar with the administrators' current exceptions (a handful of
    rows, read per request so that every API process sees a change at once)."""
    c = ctx()
    return c.calendar.with_exceptions(store.calendar_exceptions(c.db))


# ---------------------------------------------------------------- catalog and calendar
@bp.get("/procedures")
def procedures():
    return [p.to_dict() for p in store.list_procedures(ctx().db)]


@bp.get("/procedures/<code>")
def procedure(code: str):
    found = store.get_procedure(ctx().db, code)
    if found is None:
        raise not_found("Không có thủ tục với mã này. / No such procedure.")
    return found.to_dict()


@bp.get("/catalog")
def catalog_info():
    return {"version": store.catalog_version(ctx().db), "procedures": len(store.active_procedure_codes(ctx().db))}


@bp.post("/procedures")
def create_procedure():
    principal = _catalog_admin()
    data = _procedure_body(code=None)
    try:
        saved = store.save_procedure(ctx().db, data, principal.subject, ctx().clock.now(), create=True)
    except store.ProcedureExists as exc:
        raise Problem(409, "procedure_exists", "Thủ tục đã có",
                      f"Đã có thủ tục mã {data['code']}; dùng PUT để sửa. / Use PUT to change it.") from exc
    log.info("procedure created", extra={"procedure_code": saved.code, "catalog_version": saved.catalog_version})
    return saved.to_dict(), 201


@bp.put("/procedures/<code>")
def update_procedure(code: str):
    principal = _catalog_admin()
    data = _procedure_body(code=code)
    try:
        saved = store.save_procedure(ctx().db, data, principal.subject, ctx().clock.now(), create=False)
    except store.NoSuchProcedure as exc:
        raise not_found("Không có thủ tục với mã này; dùng POST /procedures để thêm. / No such procedure.") from exc
    log.info("procedure changed", extra={"procedure_code": saved.code, "catalog_version": saved.catalog_version})
    return saved.to_dict()


@bp.delete("/procedures/<code>")
def withdraw_procedure(code: str):
    principal = _catalog_admin()
    try:
        version = store.withdraw_procedure(ctx().db, code, principal.subject, ctx().clock.now())
    except store.NoSuchProcedure as exc:
        raise not_found("Không có thủ tục với mã này. / No such procedure.") from exc
    log.info("procedure withdrawn", extra={"procedure_code": code, "catalog_version": version})
    return Response(status=204)


@bp.get("/procedures/<code>/revisions")
def procedure_revisions(code: str):
    _catalog_admin()
    return [{**r, "at": views.iso(r["at"])} for r in store.procedure_revisions(ctx().db, code)]


def _catalog_admin():
    principal = current_principal()
    # The catalog is the platform's, shared by every ward: its administrator edits it.
    if principal.role != "admin":
        raise forbidden("Chỉ quản trị viên hệ thống sửa được danh mục thủ tục. / Platform administrators only.")
    return principal


def _procedure_body(code: str | None) -> dict:
    data = json_body()
    if code is not None:
        if data.setdefault("code", code) != code:
            raise ValidationFailed([field_error("code", "Mã thủ tục trong nội dung khác mã trên đường dẫn.")])
    data.pop("catalog_version", None), data.pop("online", None), data.pop("active", None)
    data.setdefault("required_documents", []), data.setdefault("next_procedures", []), data.setdefault("form", [])
    problems = procedure_errors(data, store.active_procedure_codes(ctx().db))
    if problems:
        raise ValidationFailed([field_error(name, message) for name, message in problems])
    return data


@bp.get("/calendar/due-date")
def due_date():
    errors: list[dict] = []
    start = _date_arg("from", errors, default=ctx().clock.today())
    working_days = _int_arg("working_days", errors, 0, MAX_WORKING_DAYS)
    if errors:
        raise ValidationFailed(errors)
    due = calendar_today().due_date(start, working_days)
    return {
        "from": start.isoformat(), "working_days": working_days, "due_date": due.due_date.isoformat(),
        "skipped": [{"date": s.day.isoformat(), "reason": s.reason} for s in due.skipped],
    }


@bp.get("/calendar/exceptions")
def calendar_exceptions():
    errors: list[dict] = []
    year = _int_arg("year", errors, 2000, 2098) if "year" in request.args else None
    if errors:
        raise ValidationFailed(errors)
    return [{"date": e.day.isoformat(), "kind": e.kind, "reason": e.reason}
            for e in store.calendar_exceptions(ctx().db, year)]


@bp.put("/calendar/exceptions/<day>")
def put_calendar_exception(day: str):
    principal = _calendar_admin()
    on = _path_date(day)
    body = json_body()
    kind, reason = body.get("kind"), body.get("reason")
    errors = []
    if kind not in (DAY_OFF, WORKING_DAY):
        errors.append(field_error("kind", "«day_off» (ngày nghỉ thêm) hoặc «working_day» (ngày làm bù)."))
    if not isinstance(reason, str) or not 0 < len(reason.strip()) <= 200:
        errors.append(field_error("reason", "Nêu lý do (tối đa 200 ký tự), ví dụ: Làm bù cho ngày 02/01."))
    if not errors:
        base_off = ctx().calendar.base_day_off_reason(on)
        if kind == DAY_OFF and base_off:
            errors.append(field_error("kind", f"Ngày {on:%d/%m/%Y} đã là ngày nghỉ ({base_off})."))
        if kind == WORKING_DAY and not base_off:
            errors.append(field_error("kind", f"Ngày {on:%d/%m/%Y} đã là ngày làm việc."))
    if errors:
        raise ValidationFailed(errors)
    exception = CalendarException(on, kind, reason.strip())
    store.save_calendar_exception(ctx().db, exception, principal.subject, ctx().clock.now())
    log.info("calendar exception saved", extra={"day": on.isoformat(), "kind": kind})
    return {"date": on.isoformat(), "kind": kind, "reason": exception.reason}


@bp.delete("/calendar/exceptions/<day>")
def delete_calendar_exception(day: str):
    _calendar_admin()
    if not store.delete_calendar_exception(ctx().db, _path_date(day)):
        raise not_found("Ngày này không có ngoại lệ. / No exception on this day.")
    return Response(status=204)


def _calendar_admin():
    principal = current_principal()
    # Days off are decided nationally (or by the province for all its wards): the platform
    # administrator records them, not one ward.
    if principal.role != "admin":
        raise forbidden("Chỉ quản trị viên hệ thống sửa được lịch làm việc. / Platform administrators only.")
    return principal


def _path_date(raw: str) -> date:
    try:
        value = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        value = None
    if value is None or not 2000 <= value.year <= 2098:
        raise ValidationFailed([field_error("date", "Ngày phải theo dạng YYYY-MM-DD, trong các năm 2000–2098.")])
    return value


def _date_arg(name: str, errors: list, default: date) -> date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        value = None
    # The holiday data covers these years; a date outside them is a typing mistake.
    if value is None or not 2000 <= value.year <= 2098:
        errors.append(field_error(name, "Ngày phải theo dạng YYYY-MM-DD, trong các năm 2000–2098."))
        return default
    return value


def _int_arg(name: str, errors: list, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if not raw.isdigit() or not low <= int(raw) <= high:
        errors.append(field_error(name, f"Phải là số nguyên từ {low} đến {high}."))
        return low
    return int(raw)


# ---------------------------------------------------------------- submitting and reading
@bp.post("/dossiers")
def submit_dossier():
    principal = current_principal()
    body = json_body()
    c = ctx()
    return idempotent(c.db, "dossiers", lambda: (views.submission(submission.submit(c, principal, body)), 201))


@bp.get("/dossiers")
def list_dossiers():
    principal = current_principal()
    query: dict = {}
    if principal.role == "citizen":
        query["citizen_id"] = principal.subject
    elif principal.role in submission.STAFF_ROLES:
        ward_id = request.args.get("ward_id") or principal.ward_id
        if not ward_id or not principal.is_staff_of(ward_id):
            raise forbidden("Cán bộ chỉ xem hồ sơ của phường mình. / Staff of this ward only.")
        query["ward_id"] = ward_id
    else:
        raise forbidden()
    errors: list[dict] = []
    status = request.args.get("status")
    if status:
        if status in domain.STATUS_LABELS:
            query["status"] = status
        else:
            errors.append(field_error("status", "Trạng thái không hợp lệ."))
    assignee = request.args.get("assignee")
    if assignee:
        if principal.role == "citizen":
            errors.append(field_error("assignee", "Chỉ cán bộ lọc theo người được phân công."))
        else:
            query["assignee_id"] = principal.subject if assignee == "me" else assignee
    limit = _int_arg("limit", errors, 1, 100) if "limit" in request.args else 50
    if errors:
        raise ValidationFailed(errors)
    return [views.summary(d) for d in store.find_dossiers(ctx().db, query, limit)]


@bp.get("/dossiers/<dossier_id>")
def get_dossier(dossier_id: str):
    principal = current_principal()
    dossier = _dossier_or_404(dossier_id)
    if not may_read(principal, dossier):
        raise forbidden("Chỉ người nộp và cán bộ của phường xem được hồ sơ này. / Owner or ward staff only.")
    chained = store.linked_dossiers(ctx().db, dossier["chain_id"], dossier["_id"]) if dossier.get("chain_id") else []
    return views.detail(dossier, chained, for_staff=principal.is_staff_of(dossier["ward_id"]))


def may_read(principal, dossier: dict) -> bool:
    """The citizen who submitted the dossier, and the staff of its ward: the API and the
    portal ask the same question."""
    owner = principal.role == "citizen" and principal.subject == dossier["citizen_id"]
    return owner or principal.is_staff_of(dossier["ward_id"])


def _dossier_or_404(dossier_id: str) -> dict:
    dossier = store.get_dossier(ctx().db, dossier_id)
    if dossier is None:
        raise not_found("Không tìm thấy hồ sơ. / No such dossier.")
    return dossier


# ---------------------------------------------------------------- public lookup
_NOT_FOUND_DETAIL = ("Không tìm thấy hồ sơ với mã biên nhận và 4 số cuối điện thoại này. Vui lòng kiểm tra lại. "
                     "/ No dossier matches this receipt code and these digits.")


@bp.get("/lookup")
def lookup():
    count_lookup()
    code = request.args.get("receipt_code", "").strip()
    last4 = request.args.get("phone_last4", "").strip()
    errors = lookup_errors(code, last4)
    if errors:
        raise ValidationFailed(errors)
    dossier = find_for_lookup(code, last4)
    if dossier is None:
        raise Problem(404, "not_found", "Không tìm thấy hồ sơ", _NOT_FOUND_DETAIL)
    return views.public_status(dossier)


def lookup_errors(code: str, last4: str) -> list[dict]:
    errors = []
    if not code:
        errors.append(field_error("receipt_code", "Nhập mã biên nhận hồ sơ."))
    if not domain.PHONE_LAST4.match(last4):
        errors.append(field_error("phone_last4", "Nhập 4 chữ số cuối của số điện thoại đã đăng ký."))
    return errors


def find_for_lookup(code: str, last4: str) -> dict | None:
    """The dossier with this receipt code and phone digits, or None. One answer for a
    wrong code and for wrong digits, so that the lookup tells a stranger nothing about
    which receipt codes exist."""
    dossier = store.find_by_receipt_code(ctx().db, code)
    expected = (dossier or {}).get("phone_last4") or "----"
    if dossier is None or not hmac.compare_digest(expected.encode(), last4.encode()):
        return None
    return dossier


def count_lookup() -> None:
    """A fixed one-minute window per client address, counted in the database so that every
    API process shares it."""
    now = ctx().clock.now()
    seconds = LOOKUP_WINDOW.total_seconds()
    window_start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, timezone.utc)
    # Keyed by a hash of the address: no raw IP addresses in the database.
    client_key = hashlib.sha256((request.remote_addr or "unknown").encode()).hexdigest()[:32]
    hits = store.count_lookup(ctx().db, client_key, window_start, LOOKUP_WINDOW)
    if hits > LOOKUPS_PER_WINDOW:
        retry_after = max(1, int((window_start + LOOKUP_WINDOW - now).total_seconds() + 0.999))
        raise Problem(429, "rate_limited", "Tra cứu quá nhiều lần",
                      f"Bạn đã tra cứu quá {LOOKUPS_PER_WINDOW} lần trong một phút, vui lòng thử lại sau "
                      f"{retry_after} giây. / Too many lookups, retry later.",
                      headers={"Retry-After": str(retry_after)})


# ---------------------------------------------------------------- officers' actions
@bp.post("/dossiers/<dossier_id>/actions")
def act(dossier_id: str):
    c = ctx()
    principal = current_principal()
    dossier = _dossier_or_404(dossier_id)
    if not principal.is_staff_of(dossier["ward_id"]):
        raise forbidden("Chỉ cán bộ của phường tiếp nhận mới xử lý được hồ sơ này. / Staff of this ward only.")
    action, note = _action_request(json_body())
    try:
        payments.check_action(action, dossier.get("payment_status"), dossier.get("fee", 0))
    except payments.PaymentRequired as exc:
        raise Problem(409, "payment_required", "Hồ sơ chưa nộp lệ phí", exc.message,
                      current_status=dossier["status"], payment=views.payment_state(dossier),
                      allowed_actions=views.actions_for(dossier)) from exc
    today, now = c.clock.today(), c.clock.now()
    requested_on = dossier.get("supplement_requested_on")
    try:
        outcome = domain.decide(dossier["status"], action, date.fromisoformat(dossier["due_date"]),
                                date.fromisoformat(requested_on) if requested_on else None, today, calendar_today())
        result_pdf = None
        if outcome.to_status == domain.RESULT_READY:
            procedure = store.get_procedure(c.db, dossier["procedure_code"], active_only=False)
            result_pdf = issuing.issue(c.result_keys, c.wards, dossier, procedure, now, c.settings.timezone, note)
        updated = store.record_outcome(c.db, dossier, outcome, principal.subject, note, now, today, result_pdf)
    except domain.InvalidTransition as exc:
        raise _invalid_transition(exc.message, dossier["status"]) from exc
    except store.StaleDossier as exc:
        current = store.get_dossier(c.db, dossier_id)
        raise _invalid_transition("Hồ sơ vừa được cán bộ khác xử lý, vui lòng tải lại. / Changed meanwhile.",
                                  current["status"]) from exc
    if outcome.to_status == domain.RETURNED:
        metrics.DOSSIERS_RETURNED.labels(dossier["ward_id"], "true" if outcome.returned_on_time else "false").inc()
    log.info("dossier action", extra={"dossier_id": dossier_id, "action": action,
                                      "from_status": outcome.from_status, "to_status": outcome.to_status})
    return {"status": updated["status"], "status_label": domain.STATUS_LABELS[updated["status"]],
            "due_date": updated["due_date"], "allowed_actions": views.actions_for(updated)}


@bp.post("/dossiers/<dossier_id>/assign")
def assign(dossier_id: str):
    """Hand the current step to an officer of the ward (the officer themself when
    `officer_id` is left out): the person responsible for the step, R6."""
    c = ctx()
    principal = current_principal()
    dossier = _dossier_or_404(dossier_id)
    if not principal.is_staff_of(dossier["ward_id"]):
        raise forbidden("Chỉ cán bộ của phường tiếp nhận mới phân công được hồ sơ này. / Staff of this ward only.")
    body = json_body()
    officer_id, note = body.get("officer_id", principal.subject), body.get("note")
    errors = []
    if not domain.is_officer_id(officer_id):
        errors.append(field_error("officer_id", "Mã cán bộ không hợp lệ."))
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
        errors.append(field_error("note", f"Ghi chú là chữ, tối đa {MAX_NOTE_LENGTH} ký tự."))
    if errors:
        raise ValidationFailed(errors)
    try:
        domain.check_assignable(dossier["status"])
        updated = store.assign(c.db, dossier, officer_id, principal.subject, (note or "").strip() or None, c.clock.now())
    except domain.NotAssignable as exc:
        raise Problem(409, "not_assignable", "Hồ sơ đã kết thúc",
                      f"Hồ sơ ở trạng thái «{domain.STATUS_LABELS[exc.status]}» không còn bước nào để phân công.",
                      current_status=exc.status) from exc
    except store.StaleDossier as exc:
        raise _invalid_transition("Hồ sơ vừa chuyển bước, vui lòng tải lại. / Changed meanwhile.",
                                  store.get_dossier(c.db, dossier_id)["status"]) from exc
    log.info("dossier assigned", extra={"dossier_id": dossier_id, "step": updated["status"]})
    return {"status": updated["status"], "assignee_id": updated["assignee_id"],
            "assignments": views.assignments(updated)}


def _action_request(body: dict) -> tuple[str, str | None]:
    action, note = body.get("action"), body.get("note")
    errors = []
    if action not in domain.TRANSITIONS:
        errors.append(field_error("action", "Thao tác không hợp lệ; chọn một trong: " + ", ".join(domain.TRANSITIONS) + "."))
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
        errors.append(field_error("note", f"Ghi chú là chữ, tối đa {MAX_NOTE_LENGTH} ký tự."))
    if errors:
        raise ValidationFailed(errors)
    return action, (note.strip() or None) if note else None


def _invalid_transition(detail: str, status: str) -> Problem:
    return Problem(409, "invalid_transition", "Thao tác không hợp lệ với trạng thái hiện tại",
                   detail, current_status=status, allowed_actions=domain.allowed_actions(status))


# ---------------------------------------------------------------- signed results
@bp.get("/dossiers/<dossier_id>/result")
def get_result(dossier_id: str):
    principal = current_principal()
    dossier = _dossier_or_404(dossier_id)
    if not may_read(principal, dossier):
        raise forbidden("Chỉ người nộp và cán bộ của phường tải được kết quả này. / Owner or ward staff only.")
    return result_response(dossier)


def result_response(dossier: dict) -> Response:
    """The signed result PDF as a download; 409 result_not_ready before approval."""
    pdf = store.read_result(ctx().db, dossier)
    if pdf is None:
        raise Problem(409, "result_not_ready", "Hồ sơ chưa có kết quả",
                      f"Hồ sơ đang ở trạng thái «{domain.STATUS_LABELS[dossier['status']]}»; kết quả có khi hồ sơ "
                      "được phê duyệt. / The result exists once the dossier is approved.",
                      current_status=dossier["status"])
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="ket-qua-{dossier["receipt_code"]}.pdf"',
        "Cache-Control": "private, no-store",
    })


@bp.post("/results/verify")
def verify_result():
    if request.content_length is not None and request.content_length > MAX_VERIFY_BYTES:
        raise Problem(413, "payload_too_large", "Tệp quá lớn",
                      f"Tệp kết quả tối đa {MAX_VERIFY_BYTES // (1024 * 1024)} MB. / File too large.")
    if request.mimetype not in ("application/pdf", "application/octet-stream"):
        raise Problem(415, "unsupported_media_type", "Sai định dạng",
                      "Gửi nội dung tệp PDF với Content-Type: application/pdf. / Send the PDF as application/pdf.")
    pdf = request.get_data(cache=False)
    if not pdf:
        raise ValidationFailed([field_error("body", "Chưa có tệp PDF để kiểm tra.")])
    verification = results.verify(pdf, ctx().result_keys.authority)
    answer = verification.to_dict()
    # Whether this very file is one the platform issued (not only validly signed by it).
    answer["issued_here"] = verification.valid and store.is_issued_result(ctx().db, pdf)
    log.info("result verified", extra={"valid": verification.valid})
    return answer


# ---------------------------------------------------------------- attachments
_ATTACHMENT_STATUS = {"file_too_large": 413, "unsupported_file_type": 415, "dossier_closed": 409}
_ATTACHMENT_TITLES = {
    "file_too_large": "Tệp quá lớn", "unsupported_file_type": "Định dạng tệp không được nhận",
    "dossier_closed": "Hồ sơ đã kết thúc", "too_many_attachments": "Đã đủ số tệp đính kèm",
    "empty_file": "Tệp rỗng", "unknown_document": "Giấy tờ không thuộc thủ tục",
}


def _attachment_problem(exc: attachments.AttachmentRefused) -> Problem:
    status = _ATTACHMENT_STATUS.get(exc.code, 422)
    field = "document" if exc.code == "unknown_document" else "file"
    extra = {"errors": [field_error(field, exc.message)]} if status == 422 else {}
    if exc.code == "unsupported_file_type":
        extra["allowed_types"] = list(attachments.ALLOWED_TYPES)
    if exc.code == "file_too_large":
        extra["max_bytes"] = attachments.MAX_FILE_BYTES
    return Problem(status, exc.code, _ATTACHMENT_TITLES[exc.code], exc.message, **extra)


def _owner_or_staff(dossier: dict, detail: str):
    principal = current_principal()
    if not may_read(principal, dossier):
        raise forbidden(detail)
    return principal


@bp.post("/dossiers/<dossier_id>/attachments")
def add_attachment(dossier_id: str):
    c = ctx()
    dossier = _dossier_or_404(dossier_id)
    principal = _owner_or_staff(dossier, "Chỉ người nộp và cán bộ của phường đính kèm được giấy tờ. / Owner or ward staff only.")
    if (request.content_length or 0) > attachments.MAX_FILE_BYTES + attachments.MULTIPART_OVERHEAD_BYTES:
        raise _attachment_problem(attachments.AttachmentRefused(
            "file_too_large", f"Mỗi tệp tối đa {attachments.MAX_FILE_BYTES // (1024 * 1024)} MB."))
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", "Sai định dạng",
                      "Gửi tệp dạng multipart/form-data, trường «file» (và «document» nếu muốn nêu giấy tờ nào).")
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed([field_error("file", "Chọn tệp cần đính kèm (trường «file»).")])
    try:
        entry = attach_file(c, principal, dossier, upload, request.form.get("document"))
    except attachments.AttachmentRefused as exc:
        raise _attachment_problem(exc) from exc
    return views.attachment(entry), 201


def attach_file(c: ServiceContext, principal, dossier: dict, upload, document: str | None) -> dict:
    """Check one uploaded file and store it on `dossier` (the API and the portal both
    attach through here); the stored entry, or AttachmentRefused saying why not."""
    attachments.check_open(dossier["status"])
    attachments.check_room(len(dossier.get("attachments", [])))
    content = upload.stream.read(attachments.MAX_FILE_BYTES + 1)
    media_type = attachments.check_content(content)
    procedure = store.get_procedure(c.db, dossier["procedure_code"], active_only=False)
    document = attachments.match_document(document, procedure.required_documents if procedure else ())
    entry = {
        "attachment_id": str(uuid.uuid4()), "filename": attachments.safe_filename(upload.filename, media_type),
        "content_type": media_type, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
        "document": document, "uploaded_at": c.clock.now(), "uploaded_by_role": principal.role,
        "uploaded_by": principal.subject,
    }
    updated = store.add_attachment(c.db, dossier, content, entry,
                                   tuple(s for s in domain.STATUS_LABELS if s not in attachments.CLOSED_STATUSES),
                                   attachments.MAX_FILES_PER_DOSSIER)
    if updated is None:  # finished or filled up meanwhile
        current = _dossier_or_404(dossier["_id"])
        attachments.check_open(current["status"])
        attachments.check_room(len(current.get("attachments", [])))
        raise Problem(409, "conflict", "Hồ sơ vừa thay đổi", "Vui lòng thử lại. / Changed meanwhile, retry.")
    # The file's name and content stay out of the log: a name often carries a person's.
    log.info("attachment added", extra={"dossier_id": dossier["_id"], "attachment_id": entry["attachment_id"],
                                        "content_type": media_type, "size": entry["size"]})
    return entry


@bp.get("/dossiers/<dossier_id>/attachments")
def list_attachments(dossier_id: str):
    dossier = _dossier_or_404(dossier_id)
    _owner_or_staff(dossier, "Chỉ người nộp và cán bộ của phường xem được giấy tờ này. / Owner or ward staff only.")
    return [views.attachment(a) for a in dossier.get("attachments", [])]


@bp.get("/dossiers/<dossier_id>/attachments/<attachment_id>")
def download_attachment(dossier_id: str, attachment_id: str):
    dossier = _dossier_or_404(dossier_id)
    _owner_or_staff(dossier, "Chỉ người nộp và cán bộ của phường tải được giấy tờ này. / Owner or ward staff only.")
    # Found through the dossier: an attachment id is good only with its own dossier's.
    entry = next((a for a in dossier.get("attachments", []) if a["attachment_id"] == attachment_id), None)
    stored = store.open_attachment(ctx().db, attachment_id) if entry else None
    if stored is None:
        raise not_found("Hồ sơ không có tệp đính kèm này. / No such attachment.")
    response = send_file(stored, mimetype=entry["content_type"], as_attachment=True, download_name=entry["filename"],
                         conditional=False, etag=False, max_age=None)
    response.content_length = stored.length
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- level-4 fees
@bp.post("/dossiers/<dossier_id>/payments")
def pay(dossier_id: str):
    principal = current_principal()
    body = json_body() if request.content_length else {}
    c = ctx()
    dossier = _dossier_or_404(dossier_id)
    return idempotent(c.db, f"payments:{dossier_id}",
                      lambda: paying.pay(c, principal, dossier, body, request.url_root))


@bp.get("/dossiers/<dossier_id>/payments")
def list_payments(dossier_id: str):
    dossier = _dossier_or_404(dossier_id)
    _owner_or_staff(dossier, "Chỉ người nộp và cán bộ của phường xem được lệ phí hồ sơ này. / Owner or ward staff only.")
    return {"payment": views.payment_state(dossier),
            "attempts": [views.payment_attempt(p) for p in store.payments_of(ctx().db, dossier_id)]}


@bp.post("/payments/callback")
def payment_callback():
    """The provider's notice. No bearer token: the HMAC signature authenticates it."""
    if (request.content_length or 0) > 16 * 1024:
        raise Problem(413, "payload_too_large", "Dữ liệu quá lớn", "Thông báo thanh toán quá lớn.")
    return paying.settle(ctx(), request.get_data(cache=False), request.headers.get("X-Payment-Signature"))


def _local_attempt(payment_id: str) -> dict:
    if not isinstance(ctx().payments.provider, LocalPaymentProvider):
        raise not_found("Không có trang thanh toán này. / No such checkout.")
    attempt = store.get_payment(ctx().db, payment_id)
    if attempt is None or attempt.get("provider") != LocalPaymentProvider.name:
        raise not_found("Không có giao dịch thanh toán này. / No such checkout.")
    return attempt


@local_pay.get("/<payment_id>")
def local_checkout(payment_id: str):
    attempt = _local_attempt(payment_id)
    return render_template("local_checkout.html", attempt=attempt, amount=payments.format_vnd(attempt["amount"]),
                           outcome=None)


@local_pay.post("/<payment_id>")
def local_checkout_answer(payment_id: str):
    attempt = _local_attempt(payment_id)
    paid = request.form.get("answer") == "pay"
    if attempt["status"] == payments.PENDING:
        paying.finish_local_checkout(ctx(), attempt, paid, ctx().clock.now())
        attempt = store.get_payment(ctx().db, payment_id)
    return render_template("local_checkout.html", attempt=attempt, amount=payments.format_vnd(attempt["amount"]),
                           outcome=attempt["status"])


# ---------------------------------------------------------------- a ward's numbers
@bp.get("/wards/<ward_id>/stats")
def ward_stats(ward_id: str):
    principal = current_principal()
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên xem được số liệu này.")
    today = ctx().clock.today()
    return {"ward_id": ward_id, "as_of": today.isoformat(), **store.ward_stats(ctx().db, ward_id, today)}
