"""The queue's HTTP API, /queue/api/v1 (CONTRACT.md "queue"). Routes only translate HTTP
into calls on the store and the domain, and their answers back."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from flask import Blueprint, Flask, Response, g, jsonify, request, url_for
from prometheus_client.core import GaugeMetricFamily

from motcua_common.auth import Principal, TokenVerifier
from motcua_common.http import (
    Problem,
    ServiceContext,
    ValidationFailed,
    create_service_app,
    current_principal,
    field_error,
    forbidden,
    idempotent,
    json_body,
    request_context,
)
from motcua_common.metrics import OutboxPendingCollector
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import pending_count

from . import domain
from .devices import COOKIE_NAME, PAIRING_CODE_TTL_SECONDS, DeviceKeys, new_pairing_code
from .store import CallContention, QueueStore, TicketChanged

OPENAPI = Path(__file__).with_name("openapi.yaml")
STAFF_ROLES = ("officer", "ward_admin", "admin")

# The board's live stream holds one server thread per open board for its lifetime. Bounded
# both ways so that boards never starve the API of threads (16 per process in `motcua up`):
# a stream ends after a while (the browser reconnects by itself), and past MAX_BOARD_STREAMS
# per process a new one is refused with Retry-After (the page then polls the board).
BOARD_STREAM_LIFETIME_SECONDS = 90
BOARD_STREAM_POLL_SECONDS = 0.5
BOARD_STREAM_HEARTBEAT_SECONDS = 15
MAX_BOARD_STREAMS = 6

api = Blueprint("queue_api", __name__, url_prefix="/queue/api/v1")


def create_app(settings, verifier: TokenVerifier | None = None, clock: Callable | None = None) -> Flask:
    """The queue API. `clock` (a function returning an aware UTC datetime) lets tests
    move the day forward; it defaults to the real time."""
    client = connect(settings)
    db = service_database(client, settings, "queue")
    store = QueueStore(db, settings.timezone)
    clock = clock or domain.utc_now
    ctx = ServiceContext("queue", settings, db, verifier or TokenVerifier.from_url(settings.jwks_url),
                         store=store, clock=clock, mongo_client=client,
                         devices=DeviceKeys.load_or_create(settings.data_dir),
                         board_streams=threading.BoundedSemaphore(MAX_BOARD_STREAMS))
    collectors = [WaitingTicketsCollector(store, clock), OutboxPendingCollector("queue", lambda: pending_count(db))]
    from .pages import pages  # the kiosk, board, counter console and ticket pages

    return create_service_app(ctx, [api, pages], OPENAPI, extra_collectors=collectors)


class WaitingTicketsCollector:
    """motcua_queue_waiting_tickets{ward_id, service_code} (metrics.QUEUE_WAITING), counted
    from the database when Prometheus scrapes, so every API process reports the truth."""

    def __init__(self, store: QueueStore, clock: Callable):
        self.store, self.clock = store, clock

    def collect(self):
        family = GaugeMetricFamily("motcua_queue_waiting_tickets", "Tickets waiting",
                                   labels=["ward_id", "service_code"])
        try:
            counts = self.store.waiting_counts(self.clock())
        except Exception:  # the database is down: /readyz says so; the scrape still answers
            counts = {}
        for (ward_id, service_code), count in sorted(counts.items()):
            family.add_metric([ward_id, service_code], float(count))
        yield family


# ---------------------------------------------------------------- helpers
def _store() -> QueueStore:
    return request_context().store


def _now():
    return request_context().clock()


def _known_ward(ward_id: str) -> None:
    if not _store().ward_exists(ward_id):
        raise Problem(404, "ward_not_found", "Không tìm thấy phường",
                      f"Phường '{ward_id}' chưa dùng hệ thống xếp hàng. / Unknown ward.")


def _staff_of(ward_id: str) -> Principal:
    principal = current_principal()
    if not principal.is_staff_of(ward_id):
        raise forbidden("Chỉ cán bộ của phường mới thực hiện được thao tác này. / Only the ward's staff may do this.")
    return principal


def paired_kiosk() -> Principal | None:
    """The kiosk device whose credential is in the request's cookie (devices.py), while its
    device record is active; as a Principal with role "kiosk" so that rules read alike."""
    device = request_context().devices.read(request.cookies.get(COOKIE_NAME))
    if device is None or not _store().device_active(device.device_id, device.ward_id):
        return None
    return Principal(subject=f"kiosk:{device.device_id}", role="kiosk", ward_id=device.ward_id)


def _ticket_issuer(ward_id: str) -> Principal | None:
    """A kiosk paired to the ward (a bearer token with role kiosk, or the device cookie that
    pairing leaves), or the ward's staff. With --demo a kiosk works unpaired: a request
    without credentials is then accepted (a credential that is sent must still fit)."""
    if request.headers.get("Authorization") is None:
        kiosk = paired_kiosk()
        if kiosk is not None:
            g.principal = kiosk  # Idempotency-Key records are kept per device
    principal = current_principal(optional=request_context().settings.demo)
    if principal is None:
        return None
    if (principal.role == "kiosk" and principal.ward_id == ward_id) or principal.is_staff_of(ward_id):
        return principal
    raise forbidden("Chỉ máy lấy số hoặc cán bộ của phường mới cấp được số thứ tự. / "
                    "Only the ward's kiosks and staff issue tickets.")


def _ticket_request(ward_id: str, body: dict) -> tuple[dict, str]:
    errors = []
    code, service = body.get("service_code"), None
    if not isinstance(code, str) or not code:
        errors.append(field_error("service_code", "Hãy chọn dịch vụ. / service_code is required."))
    else:
        service = _store().service(ward_id, code)
        if service is None:
            errors.append(field_error("service_code", f"Phường không có dịch vụ '{code}'. / Unknown service."))
    priority = body.get("priority", domain.NORMAL)
    if priority not in domain.PRIORITIES:
        errors.append(field_error("priority", "Ưu tiên phải là 'normal' hoặc 'priority'. / "
                                              "priority must be normal or priority."))
    if errors:
        raise ValidationFailed(errors)
    return service, priority


def _action_request(body: dict) -> tuple[str, str | None]:
    action, counter_id = body.get("action"), body.get("counter_id")
    errors = []
    if action not in domain.ACTIONS:
        errors.append(field_error("action", "Thao tác phải là serve, skip, recall hoặc transfer. / Unknown action."))
    if action == domain.TRANSFER and (not isinstance(counter_id, str) or not counter_id):
        errors.append(field_error("counter_id", "Hãy chọn quầy nhận chuyển. / counter_id is required to transfer."))
    if errors:
        raise ValidationFailed(errors)
    return action, counter_id


def _invalid_transition(status: str, action: str, detail: str) -> Problem:
    return Problem(409, "invalid_transition", "Không thể thực hiện thao tác", detail,
                   ticket_status=status, action=action, allowed_actions=domain.allowed_actions(status))


# ---------------------------------------------------------------- routes
@api.get("/wards/<ward_id>/services")
def list_services(ward_id: str):
    _known_ward(ward_id)
    return jsonify(_store().services(ward_id))


@api.get("/wards/<ward_id>/counters")
def list_counters(ward_id: str):
    _known_ward(ward_id)
    return jsonify(_store().counters(ward_id))


@api.post("/wards/<ward_id>/tickets")
def issue_ticket(ward_id: str):
    _known_ward(ward_id)
    _ticket_issuer(ward_id)
    service, priority = _ticket_request(ward_id, json_body())

    def issue() -> tuple[dict, int]:
        ticket = _store().issue_ticket(ward_id, service, priority, _now())
        return {
            "ticket_id": ticket["_id"],
            "number": ticket["number"],
            "service_code": ticket["service_code"],
            "service_name": service["name"],
            "priority": ticket["priority"],
            "ward_id": ward_id,
            "issued_at": domain.iso_utc(ticket["issued_at"]),
            "waiting_ahead": ticket["waiting_ahead"],
            "estimated_wait_minutes": ticket["estimated_wait_minutes"],
        }, 201

    return idempotent(request_context().db, f"tickets:{ward_id}", issue)


@api.post("/wards/<ward_id>/counters/<counter_id>/call-next")
def call_next(ward_id: str, counter_id: str):
    _known_ward(ward_id)
    _staff_of(ward_id)
    counter = _store().counter(ward_id, counter_id)
    if counter is None:
        raise Problem(404, "counter_not_found", "Không tìm thấy quầy",
                      f"Phường không có quầy '{counter_id}'. / Unknown counter.")
    try:
        called = _store().call_next(ward_id, counter, _now())
    except CallContention:
        raise Problem(503, "queue_busy", "Hàng đợi đang bận", "Vui lòng bấm gọi lại. / Busy, retry.",
                      headers={"Retry-After": "1"}) from None
    if called is None:
        return Response(status=204)  # nobody waits for this counter
    return {
        "ticket_id": called["_id"],
        "number": called["number"],
        "counter_id": counter_id,
        "service_code": called["service_code"],
        "priority": called["priority"],
        "called_at": domain.iso_utc(called["called_at"]),
    }


@api.post("/tickets/<ticket_id>/actions")
def ticket_action(ticket_id: str):
    principal = current_principal()
    if principal.role not in STAFF_ROLES:
        raise forbidden("Chỉ cán bộ mới xử lý được số thứ tự. / Only staff act on tickets.")
    action, target_counter = _action_request(json_body())
    store = _store()
    ticket = store.ticket(ticket_id)
    if ticket is None:
        raise Problem(404, "ticket_not_found", "Không tìm thấy số thứ tự", "Không có số thứ tự này. / Unknown ticket.")
    _staff_of(ticket["ward_id"])
    if action == domain.TRANSFER and store.counter(ticket["ward_id"], target_counter) is None:
        raise ValidationFailed([field_error("counter_id", f"Phường không có quầy '{target_counter}'. / Unknown counter.")])
    try:
        updated = store.apply_action(ticket, action, _now(), principal.subject, target_counter)
    except domain.InvalidTransition as exc:
        raise _invalid_transition(exc.status, action,
                                  f"Số {ticket['number']} đang ở trạng thái '{exc.status}', không thể '{action}'. / "
                                  f"Cannot {action} a {exc.status} ticket.") from None
    except TicketChanged:
        raise _invalid_transition(ticket["status"], action,
                                  f"Số {ticket['number']} vừa được xử lý ở nơi khác, hãy tải lại. / "
                                  "The ticket changed meanwhile; reload it.") from None
    answer = {"ticket_id": updated["_id"], "number": updated["number"], "status": updated["status"]}
    if updated.get("counter_id"):
        answer["counter_id"] = updated["counter_id"]
    if updated.get("transferred_to"):
        answer["transferred_to"] = updated["transferred_to"]
    return answer


@api.get("/wards/<ward_id>/board")
def board(ward_id: str):
    _known_ward(ward_id)
    return _store().board(ward_id, _now())


@api.get("/wards/<ward_id>/board/stream")
def board_stream(ward_id: str):
    """The board as Server-Sent Events: an `event: board` with the board's JSON at once and
    whenever it changes (a call, a recall, a ticket issued or closed). The database is read
    twice a second; the stream ends after BOARD_STREAM_LIFETIME_SECONDS and the browser's
    EventSource reconnects by itself after `retry` milliseconds."""
    _known_ward(ward_id)
    ctx = request_context()
    if not ctx.board_streams.acquire(blocking=False):
        raise Problem(503, "too_many_streams", "Quá nhiều màn hình đang kết nối",
                      "Máy chủ đang phục vụ tối đa số bảng hiển thị; trang sẽ tự thử lại. / Too many streams, retry.",
                      headers={"Retry-After": "5"})
    store, clock = ctx.store, ctx.clock

    def events():
        try:
            yield "retry: 1000\n\n"
            last, last_sent = None, time.monotonic()
            deadline = time.monotonic() + BOARD_STREAM_LIFETIME_SECONDS
            while time.monotonic() < deadline:
                current = json.dumps(store.board(ward_id, clock()), ensure_ascii=False, sort_keys=True)
                if current != last:
                    yield f"event: board\ndata: {current}\n\n"
                    last, last_sent = current, time.monotonic()
                elif time.monotonic() - last_sent > BOARD_STREAM_HEARTBEAT_SECONDS:
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream
                    last_sent = time.monotonic()
                time.sleep(BOARD_STREAM_POLL_SECONDS)
        finally:
            ctx.board_streams.release()

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@api.get("/wards/<ward_id>/counters/<counter_id>/current")
def current_ticket(ward_id: str, counter_id: str):
    """The ticket the counter has called and not closed yet (the console after a reload)."""
    _known_ward(ward_id)
    _staff_of(ward_id)
    if _store().counter(ward_id, counter_id) is None:
        raise Problem(404, "counter_not_found", "Không tìm thấy quầy",
                      f"Phường không có quầy '{counter_id}'. / Unknown counter.")
    ticket = _store().current_at_counter(ward_id, counter_id, _now())
    if ticket is None:
        return Response(status=204)
    return {"ticket_id": ticket["_id"], "number": ticket["number"], "counter_id": counter_id,
            "service_code": ticket["service_code"], "priority": ticket["priority"], "status": ticket["status"],
            "called_at": domain.iso_utc(ticket["called_at"])}


@api.get("/tickets/<ticket_id>")
def ticket_progress(ticket_id: str):
    """Where a ticket stands, for whoever holds its id (the QR code on the slip): no
    personal data is kept on a ticket."""
    progress = ticket_progress_of(ticket_id)
    if progress is None:
        raise Problem(404, "ticket_not_found", "Không tìm thấy số thứ tự", "Không có số thứ tự này. / Unknown ticket.")
    return progress


def ticket_progress_of(ticket_id: str) -> dict | None:
    store = _store()
    ticket = store.ticket(ticket_id)
    if ticket is None:
        return None
    service = store.service(ticket["ward_id"], ticket["service_code"]) or {"name": ticket["service_code"]}
    progress = {
        "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ticket["ward_id"],
        "service_code": ticket["service_code"], "service_name": service["name"], "priority": ticket["priority"],
        "status": ticket["status"], "issued_at": domain.iso_utc(ticket["issued_at"]),
        "counter_id": ticket.get("counter_id"), "counter_name": None,
        "waiting_ahead": None, "estimated_wait_minutes": None,
    }
    if ticket.get("counter_id"):
        counter = store.counter(ticket["ward_id"], ticket["counter_id"])
        progress["counter_name"] = counter["name"] if counter else ticket["counter_id"]
    if ticket["status"] == domain.WAITING and ticket["day"] == store.day_of(_now()):
        ahead = store.count_ahead(ticket)
        progress["waiting_ahead"] = ahead
        progress["estimated_wait_minutes"] = domain.estimate_wait_minutes(
            ahead, store.recent_service_seconds(ticket["ward_id"], ticket["service_code"]),
            store.counters_serving(ticket["ward_id"], ticket["service_code"]))
    return progress


# ---------------------------------------------------------------- kiosk pairing
def _ward_admin_of(ward_id: str) -> Principal:
    principal = current_principal()
    if not (principal.role == "admin" or (principal.role == "ward_admin" and principal.ward_id == ward_id)):
        raise forbidden("Chỉ trưởng bộ phận một cửa của phường mới ghép nối được máy lấy số. / "
                        "Only the ward's admin pairs kiosks.")
    return principal


@api.post("/wards/<ward_id>/kiosk-pairings")
def create_kiosk_pairing(ward_id: str):
    """A one-time pairing link, valid PAIRING_CODE_TTL_SECONDS: opened on the kiosk, it
    leaves the device credential there."""
    _known_ward(ward_id)
    principal = _ward_admin_of(ward_id)
    now = domain.to_millis(_now())
    expires_at = now + timedelta(seconds=PAIRING_CODE_TTL_SECONDS)
    code = new_pairing_code()
    _store().create_pairing(ward_id, code, principal.subject, now, expires_at)
    link = url_for("queue_pages.pair_kiosk", ward_id=ward_id, code=code, _external=True)
    return {"pairing_url": link, "expires_at": domain.iso_utc(expires_at)}, 201


@api.get("/wards/<ward_id>/kiosks")
def list_kiosks(ward_id: str):
    _known_ward(ward_id)
    _ward_admin_of(ward_id)
    return jsonify(_store().kiosk_devices(ward_id))


@api.delete("/wards/<ward_id>/kiosks/<device_id>")
def revoke_kiosk(ward_id: str, device_id: str):
    """A lost or replaced kiosk stops issuing at once; its cookie is worth nothing after."""
    _known_ward(ward_id)
    _ward_admin_of(ward_id)
    if not _store().revoke_device(ward_id, device_id, _now()):
        raise Problem(404, "kiosk_not_found", "Không tìm thấy máy lấy số", "Không có máy này. / Unknown kiosk.")
    return Response(status=204)
