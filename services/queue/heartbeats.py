"""Use cases of device health: the kiosks, display boards, counter consoles and rating
screens of a ward's office say "still here" every HEARTBEAT_SECONDS from their page's
JavaScript (static/heartbeat.js), and the monitoring centre sees each one's last contact —
GET /wards/{w}/devices, the "Thiết bị" section of the ward admin's page, and the metrics
motcua_device_last_seen_timestamp_seconds / motcua_device_printer_ok (DeviceHealthCollector)
that the MotcuaDeviceSilent alert reads.

Who may send a heartbeat:
- a kiosk: the paired kiosk itself (its device cookie, or a kiosk token of the ward); with
  --demo an unpaired kiosk page is taken like a board (below);
- a counter console: an officer of the ward (their token), for a counter of the ward;
- a board or a rating screen: anyone, since those pages are public. Such a device names
  itself by a random id its page keeps in localStorage; the heartbeats are limited per
  client address and ward, and a ward holds at most MAX_ANONYMOUS_DEVICES_PER_WARD such
  records: a stranger cannot fill the database nor the monitoring centre's graphs.

An anonymous device counts (listed, exported, alerted on) only once it has sent
ESTABLISHED_BEATS heartbeats — a screen left on the board for a quarter of an hour, not a
phone that glanced at it — and is forgotten after a while without a word (TRANSIENT_FORGET
before that, ESTABLISHED_FORGET after). Ticket issue, call-next and serve never read or
write any of this: heartbeats have their own collection (store.DEVICE_HEARTBEATS)."""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Mapping

from prometheus_client.core import GaugeMetricFamily

from motcua_common.auth import AuthError, Principal
from motcua_common.problems import Problem, ValidationFailed, field_error, forbidden

from . import counters, domain, hours

if TYPE_CHECKING:
    from .deps import Deps

log = logging.getLogger(__name__)

KIOSK, BOARD, COUNTER, RATING_SCREEN = "kiosk", "board", "counter", "rating_screen"
KINDS = (KIOSK, BOARD, COUNTER, RATING_SCREEN)
ANONYMOUS_KINDS = (BOARD, RATING_SCREEN)
PRINTER_STATES = ("ok", "error", "unknown")

HEARTBEAT_SECONDS = 60
# Silent: not heard for this long (ten missed heartbeats). The alert uses the same 600 s.
SILENT_AFTER_SECONDS = 600
MAX_ANONYMOUS_DEVICES_PER_WARD = 8
ANONYMOUS_HEARTBEATS_PER_MINUTE = 20      # per client address and ward (an office is one NAT address)
ESTABLISHED_BEATS = 15
TRANSIENT_FORGET = timedelta(hours=2)
ESTABLISHED_FORGET = timedelta(days=14)
# A page's clock may be a little ahead of the server's; a page loaded further ahead, or
# more than a year ago, is a wrong clock or a forged body.
PAGE_CLOCK_SKEW = timedelta(minutes=5)
PAGE_MAX_AGE = timedelta(days=366)
MAX_MISSED_BEATS = 1_000_000

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
APP_VERSION = re.compile(r"^[0-9A-Za-z._+-]{1,32}$")

KIND_NAMES = {KIOSK: "Máy lấy số", BOARD: "Bảng gọi số", COUNTER: "Màn hình quầy", RATING_SCREEN: "Màn hình đánh giá"}
_KIND_ORDER = {kind: index for index, kind in enumerate((KIOSK, BOARD, RATING_SCREEN, COUNTER))}


# ---------------------------------------------------------------- reading a heartbeat (pure)
@dataclass(frozen=True)
class Heartbeat:
    kind: str
    device_id: str | None = None
    counter_id: str | None = None
    printer: str | None = None
    page_loaded_at: datetime | None = None
    app_version: str | None = None
    online: bool | None = None
    missed_beats: int | None = None


def _instant(text) -> datetime | None:
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_heartbeat(body: Mapping, now: datetime) -> Heartbeat:
    """A heartbeat's body, or ValidationFailed naming every field that is wrong. Fields not
    named here are ignored (a newer page may say more)."""
    errors: list[dict] = []
    kind = body.get("kind")
    if kind not in KINDS:
        errors.append(field_error("kind", f"Loại thiết bị phải là một trong {', '.join(KINDS)}. / kind is required."))
        kind = None
    device_id = body.get("device_id")
    if device_id is not None and (not isinstance(device_id, str) or not CLIENT_ID.match(device_id)):
        errors.append(field_error("device_id", "Mã thiết bị gồm 16–64 chữ, số, '-' hoặc '_'. / "
                                               "device_id: 16-64 of [A-Za-z0-9_-]."))
    elif kind in ANONYMOUS_KINDS and device_id is None:
        errors.append(field_error("device_id", "Bảng gọi số và màn hình đánh giá phải gửi mã thiết bị ngẫu nhiên "
                                               "của mình. / device_id is required for this kind."))
    counter_id = body.get("counter_id")
    if counter_id is not None and (not isinstance(counter_id, str) or not counters.COUNTER_ID.match(counter_id)):
        errors.append(field_error("counter_id", "Mã quầy không hợp lệ. / Invalid counter_id."))
    elif kind == COUNTER and counter_id is None:
        errors.append(field_error("counter_id", "Màn hình quầy phải cho biết quầy của mình. / "
                                                "counter_id is required for a counter."))
    if kind in (KIOSK, BOARD) and counter_id is not None:
        errors.append(field_error("counter_id", "Chỉ màn hình quầy và màn hình đánh giá thuộc về một quầy. / "
                                                "Only counters and rating screens have a counter_id."))
    printer = body.get("printer")
    if printer is not None:
        if printer not in PRINTER_STATES:
            errors.append(field_error("printer", "Trạng thái máy in phải là ok, error hoặc unknown. / "
                                                 "printer: ok|error|unknown."))
        elif kind is not None and kind != KIOSK:
            errors.append(field_error("printer", "Chỉ máy lấy số có máy in. / Only kiosks have a printer."))
    page_loaded_at = None
    if body.get("page_loaded_at") is not None:
        page_loaded_at = _instant(body["page_loaded_at"])
        if page_loaded_at is None:
            errors.append(field_error("page_loaded_at", "Thời điểm phải viết theo ISO 8601 có múi giờ. / "
                                                        "page_loaded_at: ISO 8601 with a zone."))
        elif not now - PAGE_MAX_AGE <= page_loaded_at <= now + PAGE_CLOCK_SKEW:
            errors.append(field_error("page_loaded_at", "Thời điểm tải trang không hợp lý (đồng hồ của máy sai?). / "
                                                        "page_loaded_at is in the future or too old."))
            page_loaded_at = None
    app_version = body.get("app_version")
    if app_version is not None and (not isinstance(app_version, str) or not APP_VERSION.match(app_version)):
        errors.append(field_error("app_version", "Phiên bản tối đa 32 ký tự chữ, số, '.', '-', '+', '_'. / "
                                                 "Invalid app_version."))
    online = body.get("online")
    if online is not None and not isinstance(online, bool):
        errors.append(field_error("online", "Phải là true hoặc false. / Must be a boolean."))
    missed = body.get("missed_beats")
    if missed is not None and (isinstance(missed, bool) or not isinstance(missed, int)
                               or not 0 <= missed <= MAX_MISSED_BEATS):
        errors.append(field_error("missed_beats", f"Số nguyên từ 0 đến {MAX_MISSED_BEATS}. / "
                                                  "missed_beats: an integer, 0 or more."))
    if errors:
        raise ValidationFailed(errors)
    return Heartbeat(kind=kind, device_id=device_id, counter_id=counter_id, printer=printer,
                     page_loaded_at=page_loaded_at, app_version=app_version, online=online, missed_beats=missed)


def silent(last_seen_at: datetime | None, now: datetime) -> bool:
    """Not heard for more than SILENT_AFTER_SECONDS (or never heard)."""
    if last_seen_at is None:
        return True
    if last_seen_at.tzinfo is None:
        last_seen_at = last_seen_at.replace(tzinfo=timezone.utc)
    return (now - last_seen_at).total_seconds() > SILENT_AFTER_SECONDS


def forget_after(beats: int) -> timedelta:
    """How long an anonymous device's record outlives its last heartbeat."""
    return ESTABLISHED_FORGET if beats >= ESTABLISHED_BEATS else TRANSIENT_FORGET


def established(record: Mapping) -> bool:
    """A device that counts: any device with a credential, an anonymous one after a while."""
    return not record.get("anonymous") or record.get("beats", 0) >= ESTABLISHED_BEATS


def record_id(ward_id: str, kind: str, device_id: str) -> str:
    return f"{ward_id}|{kind}|{device_id}"


# ---------------------------------------------------------------- receiving a heartbeat
def _too_many_heartbeats(retry_after: int) -> Problem:
    return Problem(429, "rate_limited", "Quá nhiều tín hiệu",
                   "Địa chỉ này gửi quá nhiều tín hiệu hoạt động cho phường; xin thử lại sau. / Too many heartbeats.",
                   headers={"Retry-After": str(retry_after)})


def _sender(deps: "Deps", principal: Principal | None, ward_id: str, beat: Heartbeat) -> tuple[str, bool]:
    """(device_id, anonymous) of the device the caller may speak for; 401/403/422 otherwise."""
    if beat.kind == KIOSK:
        if principal is not None and principal.role == "kiosk":
            if principal.ward_id != ward_id:
                raise forbidden("Máy lấy số này được ghép nối với phường khác. / This kiosk belongs to another ward.")
            return principal.subject.removeprefix("kiosk:"), False
        if principal is None and deps.settings.demo and beat.device_id:
            return beat.device_id, True   # --demo: kiosk pages work unpaired, and report like a board
        if principal is None:
            raise AuthError("unauthorized", "Máy lấy số chưa được ghép nối. / A kiosk reports with its device "
                                            "credential.")
        raise forbidden("Chỉ máy lấy số đã ghép nối mới báo tín hiệu của máy lấy số. / Only a paired kiosk.")
    if beat.kind == COUNTER:
        if principal is None:
            raise AuthError("unauthorized", "Cần đăng nhập. / Authentication required.")
        if not principal.is_staff_of(ward_id):
            raise forbidden("Chỉ cán bộ của phường mới báo tín hiệu của màn hình quầy. / Ward staff only.")
        if counters.counter(deps, ward_id, beat.counter_id) is None:
            raise ValidationFailed([field_error("counter_id", "Phường không có quầy này. / Unknown counter.")])
        return beat.counter_id, False
    # a board or a rating screen: public pages
    if beat.counter_id is not None and counters.counter(deps, ward_id, beat.counter_id) is None:
        raise ValidationFailed([field_error("counter_id", "Phường không có quầy này. / Unknown counter.")])
    return beat.device_id, True


def receive(deps: "Deps", principal: Principal | None, ward_id: str, body: Mapping, client_address: str) -> dict:
    """POST /wards/{w}/devices/heartbeat: record that the device is alive, with what its page
    knows (printer, uptime, version, missed heartbeats)."""
    counters.require_ward(deps, principal, ward_id)
    now = domain.to_millis(deps.clock.now())
    beat = read_heartbeat(body, now)
    device_id, anonymous = _sender(deps, principal, ward_id, beat)
    if anonymous:
        verdict = deps.heartbeat_limiter.hit(f"{client_address}|{ward_id}", now)
        if not verdict.allowed:
            raise _too_many_heartbeats(verdict.retry_after_seconds)
    key = record_id(ward_id, beat.kind, device_id)
    fields: dict = {"last_seen_at": now}
    for name in ("counter_id", "printer", "page_loaded_at", "app_version", "online", "missed_beats"):
        value = getattr(beat, name)
        if value is not None:
            fields[name] = value
    if beat.printer is not None:
        fields["printer_reported_at"] = now
    if anonymous:
        existing = deps.store.heartbeat_record(key)
        if existing is None and deps.store.anonymous_device_count(ward_id, now) >= MAX_ANONYMOUS_DEVICES_PER_WARD:
            raise Problem(409, "device_limit_reached", "Đã đủ số thiết bị",
                          f"Phường đã có {MAX_ANONYMOUS_DEVICES_PER_WARD} bảng gọi số và màn hình đánh giá tự khai "
                          "báo; trưởng bộ phận một cửa có thể xóa thiết bị cũ trên trang quản trị. / "
                          "Too many self-declared devices in this ward.")
        fields["forget_at"] = now + forget_after((existing or {}).get("beats", 0) + 1)
    on_insert = {"ward_id": ward_id, "kind": beat.kind, "device_id": device_id, "anonymous": anonymous,
                 "first_seen_at": now}
    deps.store.record_heartbeat(key, fields, on_insert)
    return {"kind": beat.kind, "device_id": device_id, "last_seen_at": domain.iso_utc(now),
            "interval_seconds": HEARTBEAT_SECONDS}


# ---------------------------------------------------------------- what the centre sees
def _row(record: Mapping, now: datetime, counter_names: Mapping) -> dict:
    kind, device_id = record["kind"], record["device_id"]
    last_seen = record.get("last_seen_at")
    if last_seen is not None and last_seen.tzinfo is None:
        last_seen = last_seen.replace(tzinfo=timezone.utc)
    counter_id = record.get("counter_id")
    if kind == COUNTER:
        name = counter_names.get(device_id, device_id)
    elif kind == KIOSK:
        name = f"{KIND_NAMES[KIOSK]} {device_id[:8]}"
    else:
        name = f"{KIND_NAMES[kind]} {device_id[:6]}"
        if counter_id in counter_names:
            name += f" — {counter_names[counter_id]}"
    loaded = record.get("page_loaded_at")
    if loaded is not None and loaded.tzinfo is None:
        loaded = loaded.replace(tzinfo=timezone.utc)
    return {
        "kind": kind, "device_id": device_id, "name": name, "counter_id": counter_id,
        "last_seen_at": domain.iso_utc(last_seen) if last_seen else None,
        "printer": record.get("printer") or "unknown" if kind == KIOSK else None,
        "silent": silent(last_seen, now),
        "anonymous": bool(record.get("anonymous")),
        "app_version": record.get("app_version"),
        "uptime_seconds": int((last_seen - loaded).total_seconds()) if loaded and last_seen else None,
        "online": record.get("online"),
        "missed_beats": record.get("missed_beats"),
    }


def _watched(records, kiosk_devices, counter_list) -> tuple[list[dict], dict]:
    """The records that count (established, of an active kiosk, of a counter that still
    exists), with an entry for each active paired kiosk never heard from."""
    revoked = {d["_id"] for d in kiosk_devices if d.get("status") != "active"}
    counter_names = {c["counter_id"]: c["name"] for c in counter_list}
    kept = [r for r in records if established(r)
            and not (r["kind"] == KIOSK and r["device_id"] in revoked)
            and not (r["kind"] == COUNTER and r["device_id"] not in counter_names)]
    heard = {r["device_id"] for r in kept if r["kind"] == KIOSK}
    kept += [{"kind": KIOSK, "device_id": d["_id"], "anonymous": False} for d in kiosk_devices
             if d.get("status") == "active" and d["_id"] not in heard]
    return kept, counter_names


def list_devices(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    """GET /wards/{w}/devices (the ward's staff, the monitoring centre, admins): every device
    that counts, with its last contact and whether it has gone silent."""
    counters.require_ward(deps, principal, ward_id)
    if principal is None:
        raise AuthError("unauthorized", "Cần đăng nhập. / Authentication required.")
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị hệ thống. / "
                        "Ward staff, the monitoring centre and admins only.")
    now = deps.clock.now()
    kept, counter_names = _watched(deps.store.heartbeat_records(ward_id), deps.store.kiosk_devices(ward_id),
                                   deps.store.counters(ward_id))
    rows = [_row(r, now, counter_names) for r in kept]
    return sorted(rows, key=lambda r: (_KIND_ORDER[r["kind"]], r["name"], r["device_id"]))


def forget(deps: "Deps", principal: Principal | None, ward_id: str, kind: str, device_id: str) -> None:
    """The ward admin removes a board or rating screen that is gone for good (or was never
    theirs); it frees its place among the ward's self-declared devices."""
    counters.require_ward(deps, principal, ward_id)
    counters.require_ward_admin(principal, ward_id)
    if kind not in KINDS or not deps.store.forget_heartbeat_record(record_id(ward_id, kind, device_id)):
        raise Problem(404, "device_not_found", "Không tìm thấy thiết bị", "Không có thiết bị này. / Unknown device.")


# ---------------------------------------------------------------- the metrics
MAX_EXPORTED_DEVICES = 5000
METRIC_LABELS = {
    "motcua_device_last_seen_timestamp_seconds": ("ward_id", "kind", "device_id"),
    "motcua_device_printer_ok": ("ward_id", "device_id"),
    "motcua_queue_office_open": ("ward_id",),
}


@dataclass(frozen=True)
class HealthSnapshot:
    last_seen: list[tuple[str, str, str, float]]   # ward_id, kind, device_id, unix seconds
    printers: list[tuple[str, str, float]]          # ward_id, device_id, 1 ok / 0 error
    office_open: list[tuple[str, float]]            # ward_id, 1 open / 0 closed


def health_snapshot(deps: "Deps", principal: Principal | None = None) -> HealthSnapshot:
    """Every ward's devices that count and have been heard from, newest first and at most
    MAX_EXPORTED_DEVICES, and whether each ward's desk is open now (its own opening hours,
    lunch break, holidays and closed days): what the alert needs to stay quiet when the
    office is closed."""
    now = deps.clock.now()
    by_ward: dict[str, list[dict]] = {}
    for record in deps.store.all_heartbeat_records(MAX_EXPORTED_DEVICES):
        by_ward.setdefault(record["ward_id"], []).append(record)
    kiosk_devices = deps.store.all_kiosk_devices()
    counter_list = deps.store.all_counters()
    last_seen, printers = [], []
    for ward_id, records in sorted(by_ward.items()):
        kept, _ = _watched(records, [d for d in kiosk_devices if d["ward_id"] == ward_id],
                              [c for c in counter_list if c["ward_id"] == ward_id])
        for record in kept:
            seen = record.get("last_seen_at")
            if seen is None:
                continue
            if seen.tzinfo is None:
                seen = seen.replace(tzinfo=timezone.utc)
            last_seen.append((ward_id, record["kind"], record["device_id"], seen.timestamp()))
            if record["kind"] == KIOSK and record.get("printer") in ("ok", "error"):
                printers.append((ward_id, record["device_id"], 1.0 if record["printer"] == "ok" else 0.0))
    local = deps.clock.local(now)
    office_open = [(ward["_id"], 1.0 if hours.status_at(hours.effective(ward.get("opening_hours")), local).open
                    else 0.0) for ward in deps.store.all_wards_hours()]
    return HealthSnapshot(sorted(last_seen), sorted(printers), sorted(office_open))


class DeviceHealthCollector:
    """motcua_device_last_seen_timestamp_seconds{ward_id, kind, device_id},
    motcua_device_printer_ok{ward_id, device_id} and motcua_queue_office_open{ward_id},
    read from the database at scrape time at most once every CACHE_SECONDS (a few queries,
    whatever the scrape rate and however many Prometheus servers scrape)."""

    CACHE_SECONDS = 30.0

    def __init__(self, deps: "Deps", monotonic=time.monotonic):
        self.deps = deps
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._snapshot = HealthSnapshot([], [], [])

    def snapshot(self) -> HealthSnapshot:
        with self._lock:
            now = self._monotonic()
            if self._read_at is None or now - self._read_at >= self.CACHE_SECONDS:
                try:
                    self._snapshot = health_snapshot(self.deps)
                except Exception:  # the database is down: /readyz says so; the scrape still answers
                    log.warning("device health not refreshed: the database did not answer")
                    if self._read_at is None:
                        return self._snapshot
                self._read_at = now
            return self._snapshot

    def collect(self):
        snapshot = self.snapshot()
        seen = GaugeMetricFamily("motcua_device_last_seen_timestamp_seconds",
                                 "When a kiosk, board, counter console or rating screen last reported (unix seconds)",
                                 labels=list(METRIC_LABELS["motcua_device_last_seen_timestamp_seconds"]))
        for ward_id, kind, device_id, seconds in snapshot.last_seen:
            seen.add_metric([ward_id, kind, device_id], seconds)
        printer = GaugeMetricFamily("motcua_device_printer_ok",
                                    "1 when the kiosk's last slip went to its printer, 0 when printing failed",
                                    labels=list(METRIC_LABELS["motcua_device_printer_ok"]))
        for ward_id, device_id, value in snapshot.printers:
            printer.add_metric([ward_id, device_id], value)
        office = GaugeMetricFamily("motcua_queue_office_open",
                                   "1 while the ward's one-stop desk is open by its own opening hours",
                                   labels=list(METRIC_LABELS["motcua_queue_office_open"]))
        for ward_id, value in snapshot.office_open:
            office.add_metric([ward_id], value)
        yield seen
        yield printer
        yield office
