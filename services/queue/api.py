"""The queue's HTTP API, /queue/api/v1 (CONTRACT.md "queue"), and create_app. Routes only
translate HTTP into a use-case call (counters.py, tickets.py, board.py, kiosks.py) and its
answer back; the board's live stream is the one piece of transport kept here."""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from flask import Blueprint, Flask, Response, jsonify, request, url_for

from motcua_common.auth import TokenVerifier
from motcua_common.clock import SystemClock
from motcua_common.http import Problem, create_service_app, current_principal, idempotent, json_body
from motcua_common.metrics import OutboxPendingCollector
from motcua_common.outbox import pending_count

from . import board as hall
from . import activity, counter_sessions, counters, domain, heartbeats, kiosks, tickets, wards
from .board import (
    BOARD_STREAM_HEARTBEAT_SECONDS,
    BOARD_STREAM_LIFETIME_SECONDS,
    BOARD_STREAM_POLL_SECONDS,
    MAX_BOARD_STREAMS,
    WaitingTicketsCollector,
)
from .callers import deps as _deps
from .callers import device_sender, ticket_issuer
from .deps import as_clock, build_deps
from .heartbeats import DeviceHealthCollector
from .admin import admin
from .pages import pages

OPENAPI = Path(__file__).with_name("openapi.yaml")

__all__ = ["api", "create_app", "MAX_BOARD_STREAMS"]

api = Blueprint("queue_api", __name__, url_prefix="/queue/api/v1")


def create_app(settings, verifier: TokenVerifier | None = None,
               clock: SystemClock | Callable[[], datetime] | None = None) -> Flask:
    """The queue API and pages. `clock` (a motcua_common.clock.FixedClock in tests, or a
    function returning an aware UTC datetime) moves the day forward; it defaults to the
    real time in the configured zone."""
    overrides = {}
    if verifier is not None:
        overrides["verifier"] = verifier
    if clock is not None:
        overrides["clock"] = as_clock(clock, settings.timezone)
    deps = build_deps(settings, **overrides)
    collectors = [WaitingTicketsCollector(deps), OutboxPendingCollector("queue", lambda: pending_count(deps.db)),
                  DeviceHealthCollector(deps)]
    return create_service_app(deps, [api, pages, admin], OPENAPI, extra_collectors=collectors)


# ---------------------------------------------------------------- reference data
@api.get("/wards/<ward_id>/services")
def list_services(ward_id: str):
    return jsonify(counters.list_services(_deps(), None, ward_id))


@api.get("/wards/<ward_id>/counters")
def list_counters(ward_id: str):
    return jsonify(counters.list_counters(_deps(), None, ward_id))


# An unknown ward is 404 before anyone is asked to log in; then the ward admin's rights.
@api.put("/wards/<ward_id>/services/<code>")
def put_service(ward_id: str, code: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return counters.put_service(deps, current_principal(), ward_id, code, json_body())


@api.delete("/wards/<ward_id>/services/<code>")
def delete_service(ward_id: str, code: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    counters.delete_service(deps, current_principal(), ward_id, code)
    return Response(status=204)


@api.put("/wards/<ward_id>/counters/<counter_id>")
def put_counter(ward_id: str, counter_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return counters.put_counter(deps, current_principal(), ward_id, counter_id, json_body())


@api.delete("/wards/<ward_id>/counters/<counter_id>")
def delete_counter(ward_id: str, counter_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    counters.delete_counter(deps, current_principal(), ward_id, counter_id)
    return Response(status=204)


@api.get("/wards/<ward_id>/opening-hours")
def get_opening_hours(ward_id: str):
    return wards.opening_hours(_deps(), None, ward_id)


@api.put("/wards/<ward_id>/opening-hours")
def put_opening_hours(ward_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return wards.set_opening_hours(deps, current_principal(), ward_id, json_body())


# ---------------------------------------------------------------- tickets
@api.post("/wards/<ward_id>/tickets")
def issue_ticket(ward_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    principal = tickets.authorize_issue(deps, ticket_issuer(), ward_id)
    order = tickets.read_order(deps, principal, ward_id, json_body())
    return idempotent(deps.db, f"tickets:{ward_id}", lambda: (tickets.issue(deps, principal, order), 201))


@api.post("/wards/<ward_id>/counters/<counter_id>/session")
def claim_counter(ward_id: str, counter_id: str):
    """The officer takes the counter (the counter page on sign-in, and every minute after to
    say they are still there); 409 counter_taken while another officer holds it."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return counter_sessions.claim(deps, current_principal(), ward_id, counter_id)


@api.delete("/wards/<ward_id>/counters/<counter_id>/session")
def release_counter(ward_id: str, counter_id: str):
    """The holder ends the session, or the ward's admin frees the counter."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    counter_sessions.release(deps, current_principal(), ward_id, counter_id)
    return Response(status=204)


@api.post("/wards/<ward_id>/counters/<counter_id>/call-next")
def call_next(ward_id: str, counter_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)  # an unknown ward is 404 before anyone is asked to log in
    called = tickets.call_next(deps, current_principal(), ward_id, counter_id)
    if called is None:
        return Response(status=204)  # nobody waits for this counter
    return called


@api.post("/tickets/<ticket_id>/actions")
def ticket_action(ticket_id: str):
    principal = current_principal()
    tickets.authorize_action(principal)  # a kiosk is refused before its body is read
    return tickets.act(_deps(), principal, ticket_id, json_body())


@api.get("/wards/<ward_id>/counters/<counter_id>/current")
def current_ticket(ward_id: str, counter_id: str):
    """The ticket the counter has called and not closed yet (the console after a reload)."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    ticket = tickets.current_at_counter(deps, current_principal(), ward_id, counter_id)
    if ticket is None:
        return Response(status=204)
    return ticket


@api.get("/tickets/<ticket_id>")
def ticket_progress(ticket_id: str):
    """Where a ticket stands, for whoever holds its id (the QR code on the slip)."""
    progress = tickets.progress(_deps(), None, ticket_id)
    if progress is None:
        raise Problem(404, "ticket_not_found", "Không tìm thấy số thứ tự", "Không có số thứ tự này. / Unknown ticket.")
    return progress


# ---------------------------------------------------------------- the board
@api.get("/wards/<ward_id>/board")
def board(ward_id: str):
    return hall.show(_deps(), None, ward_id)


@api.get("/wards/<ward_id>/board/stream")
def board_stream(ward_id: str):
    """The board as Server-Sent Events: an `event: board` with the board's JSON at once and
    whenever it changes (a call, a recall, a ticket issued or closed). The database is read
    twice a second; the stream ends after BOARD_STREAM_LIFETIME_SECONDS and the browser's
    EventSource reconnects by itself after `retry` milliseconds."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    if not deps.board_streams.acquire(blocking=False):
        raise Problem(503, "too_many_streams", "Quá nhiều màn hình đang kết nối",
                      "Máy chủ đang phục vụ tối đa số bảng hiển thị; trang sẽ tự thử lại. / Too many streams, retry.",
                      headers={"Retry-After": "5"})

    def events():
        try:
            yield "retry: 1000\n\n"
            last, last_sent = None, time.monotonic()
            deadline = time.monotonic() + BOARD_STREAM_LIFETIME_SECONDS
            while time.monotonic() < deadline:
                current = json.dumps(hall.snapshot(deps, None, ward_id), ensure_ascii=False, sort_keys=True)
                if current != last:
                    yield f"event: board\ndata: {current}\n\n"
                    last, last_sent = current, time.monotonic()
                elif time.monotonic() - last_sent > BOARD_STREAM_HEARTBEAT_SECONDS:
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream
                    last_sent = time.monotonic()
                time.sleep(BOARD_STREAM_POLL_SECONDS)
        finally:
            deps.board_streams.release()

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ---------------------------------------------------------------- kiosk pairing
@api.post("/wards/<ward_id>/kiosk-pairings")
def create_kiosk_pairing(ward_id: str):
    """A one-time pairing link: opened on the kiosk, it leaves the device credential there."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    code, expires_at = kiosks.create_pairing(deps, current_principal(), ward_id)
    link = url_for("queue_pages.pair_kiosk", ward_id=ward_id, code=code, _external=True)
    return {"pairing_url": link, "expires_at": domain.iso_utc(expires_at)}, 201


@api.get("/wards/<ward_id>/kiosks")
def list_kiosks(ward_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return jsonify(kiosks.list_devices(deps, current_principal(), ward_id))


@api.delete("/wards/<ward_id>/kiosks/<device_id>")
def revoke_kiosk(ward_id: str, device_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    kiosks.revoke(deps, current_principal(), ward_id, device_id)
    return Response(status=204)


# ---------------------------------------------------------------- device health
@api.post("/wards/<ward_id>/devices/heartbeat")
def device_heartbeat(ward_id: str):
    """A kiosk, board, counter console or rating screen says it is still there (heartbeats.py)."""
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    body = json_body()
    return heartbeats.receive(deps, device_sender(), ward_id, body, request.remote_addr or "unknown")


@api.get("/wards/<ward_id>/devices")
def list_devices(ward_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return jsonify(heartbeats.list_devices(deps, current_principal(), ward_id))


# ---------------------------------------------------------------- every office's day (activity.py)
@api.get("/activity")
def city_activity():
    """Every ward's tickets issued, called and served on a day, the edge offices' included."""
    return activity.city_day(_deps(), current_principal(), request.args.get("date"))


@api.get("/wards/<ward_id>/activity")
def ward_activity(ward_id: str):
    deps = _deps()
    counters.require_ward(deps, None, ward_id)
    return activity.ward_day(deps, current_principal(), ward_id, request.args.get("date"))
