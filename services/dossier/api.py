"""The dossier HTTP API (/dossier/api/v1): the catalog, the working-day calendar, submitting
and tracking dossiers, the officers' actions and a ward's numbers.

Routes translate HTTP into calls of the domain, the submission use case and the store,
and back; the rules live in domain.py, catalog.py, working_days.py and submission.py."""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from flask import Blueprint, request
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

from . import domain, store, submission, views
from .citizen_directory import CitizenDirectory
from .clock import SystemClock
from .working_days import MAX_WORKING_DAYS, WorkingCalendar

log = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.yaml"
LOOKUPS_PER_WINDOW = 20
LOOKUP_WINDOW = timedelta(minutes=1)
MAX_NOTE_LENGTH = 1000

bp = Blueprint("dossier", __name__, url_prefix="/dossier/api/v1")


def create_app(settings: Settings, verifier: TokenVerifier | None = None,
               citizens: CitizenDirectory | None = None, clock: SystemClock | None = None):
    """The dossier API. `citizens` (identity's directory) and `clock` default to the real
    ones; tests pass stand-ins."""
    db = service_database(connect(settings), settings, "dossier")
    ctx = ServiceContext(
        "dossier", settings, db, verifier or TokenVerifier.from_url(settings.jwks_url),
        citizens=citizens or CitizenDirectory(settings),
        clock=clock or SystemClock(settings.timezone),
        calendar=WorkingCalendar(),
    )
    collectors = [metrics.OutboxPendingCollector("dossier", lambda: pending_count(db)), OverdueCollector(db, ctx.clock)]
    return create_service_app(ctx, [bp], OPENAPI_FILE, extra_collectors=collectors)


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


@bp.get("/calendar/due-date")
def due_date():
    errors: list[dict] = []
    start = _date_arg("from", errors, default=ctx().clock.today())
    working_days = _int_arg("working_days", errors, 0, MAX_WORKING_DAYS)
    if errors:
        raise ValidationFailed(errors)
    due = ctx().calendar.due_date(start, working_days)
    return {
        "from": start.isoformat(), "working_days": working_days, "due_date": due.due_date.isoformat(),
        "skipped": [{"date": s.day.isoformat(), "reason": s.reason} for s in due.skipped],
    }


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
    limit = _int_arg("limit", errors, 1, 100) if "limit" in request.args else 50
    if errors:
        raise ValidationFailed(errors)
    return [views.summary(d) for d in store.find_dossiers(ctx().db, query, limit)]


@bp.get("/dossiers/<dossier_id>")
def get_dossier(dossier_id: str):
    principal = current_principal()
    dossier = _dossier_or_404(dossier_id)
    owner = principal.role == "citizen" and principal.subject == dossier["citizen_id"]
    staff = principal.is_staff_of(dossier["ward_id"])
    if not (owner or staff):
        raise forbidden("Chỉ người nộp và cán bộ của phường xem được hồ sơ này. / Owner or ward staff only.")
    chained = store.linked_dossiers(ctx().db, dossier["chain_id"], dossier["_id"]) if dossier.get("chain_id") else []
    return views.detail(dossier, chained, for_staff=staff)


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
    _count_lookup()
    code = request.args.get("receipt_code", "").strip()
    last4 = request.args.get("phone_last4", "").strip()
    errors = []
    if not code:
        errors.append(field_error("receipt_code", "Nhập mã biên nhận hồ sơ."))
    if not domain.PHONE_LAST4.match(last4):
        errors.append(field_error("phone_last4", "Nhập 4 chữ số cuối của số điện thoại đã đăng ký."))
    if errors:
        raise ValidationFailed(errors)
    dossier = store.find_by_receipt_code(ctx().db, code)
    # One answer for a wrong code and for wrong digits, so that the lookup tells a
    # stranger nothing about which receipt codes exist.
    expected = (dossier or {}).get("phone_last4") or "----"
    if dossier is None or not hmac.compare_digest(expected.encode(), last4.encode()):
        raise Problem(404, "not_found", "Không tìm thấy hồ sơ", _NOT_FOUND_DETAIL)
    return views.public_status(dossier)


def _count_lookup() -> None:
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
    today = c.clock.today()
    requested_on = dossier.get("supplement_requested_on")
    try:
        outcome = domain.decide(dossier["status"], action, date.fromisoformat(dossier["due_date"]),
                                date.fromisoformat(requested_on) if requested_on else None, today, c.calendar)
        updated = store.record_outcome(c.db, dossier, outcome, principal.subject, note, c.clock.now(), today)
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
            "due_date": updated["due_date"], "allowed_actions": domain.allowed_actions(updated["status"])}


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


# ---------------------------------------------------------------- a ward's numbers
@bp.get("/wards/<ward_id>/stats")
def ward_stats(ward_id: str):
    principal = current_principal()
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên xem được số liệu này.")
    today = ctx().clock.today()
    return {"ward_id": ward_id, "as_of": today.isoformat(), **store.ward_stats(ctx().db, ward_id, today)}
