"""`motcua simulate`: ward days played against a running platform, through its public HTTP API.

Each ward opens 07:30–11:30 and 13:30–17:00. Citizens arrive by a Poisson process whose
rate peaks mid-morning and mid-afternoon; they take a ticket at the kiosk, an officer at
one of the ward's counters calls them, serves them for an exponentially distributed time,
sometimes submits a dossier on their behalf, and most rate the service at the screen
beside the counter. Other citizens submit dossiers online from home, which an officer then
receives. The whole day is compressed into `--minutes` of wall time.

Nothing here is checked by the platform's own word alone: the summary counts what the
citizen would notice — an error answer, a ticket served but never ratable (TicketServed
lost on its way to rating), a dossier whose SMS never reached the gateway (when the
simulator itself is the gateway, `--sms-sink-port`). The exit status is 1 when there was
an error or a lost event."""
from __future__ import annotations

import heapq
import json
import math
import random
import sys
import threading
import time
import traceback
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from motcua_common import demo

OPEN_PERIODS = [(7.5, 11.5), (13.5, 17.0)]  # the ward's office hours, local time
PEAKS = [(9.0, 0.8, 1.6), (14.5, 0.8, 1.0)]  # (hour, spread in hours, extra height) over a base of 1
OPEN_HOURS = sum(end - start for start, end in OPEN_PERIODS)
CITIZENS_PER_WARD = 4
TICKET_SERVICE_WEIGHTS = {"A": 5, "B": 4, "C": 3, "D": 1, "E": 1, "F": 2}
MEAN_SERVICE_MINUTES = 6.0
P_COUNTER_DOSSIER = 0.3
P_RATING = 0.7
SCORES = (("very_satisfied", 6), ("satisfied", 3), ("unsatisfied", 1))


# ---------------------------------------------------------------- the shape of a day
def intensity(hour: float) -> float:
    """Relative arrival rate at a local hour: 0 when closed, peaks mid-morning and mid-afternoon."""
    if not any(start <= hour < end for start, end in OPEN_PERIODS):
        return 0.0
    return 1.0 + sum(height * math.exp(-((hour - at) / spread) ** 2 / 2) for at, spread, height in PEAKS)


MAX_INTENSITY = max(intensity(7.5 + i / 100) for i in range(int(OPEN_HOURS * 100) + 300))


def arrival_hours(rng: random.Random, per_day: float) -> list[float]:
    """Arrival times (local hours) of a non-homogeneous Poisson process with `per_day`
    expected arrivals, by thinning (Lewis & Shedler)."""
    span = OPEN_PERIODS[-1][1] - OPEN_PERIODS[0][0]
    mean_intensity = sum(intensity(OPEN_PERIODS[0][0] + span * i / 1000) for i in range(1000)) / 1000
    peak_rate = per_day / span * MAX_INTENSITY / mean_intensity  # arrivals per hour at the peak
    hour, found = OPEN_PERIODS[0][0], []
    while True:
        hour += rng.expovariate(peak_rate)
        if hour >= OPEN_PERIODS[-1][1]:
            return found
        if rng.random() < intensity(hour) / MAX_INTENSITY:
            found.append(hour)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------- an SMS gateway that records
class RecordingGateway:
    """The outbound SMS HTTP gateway of CONTRACT.md, accepting everything and recording when
    each message arrived. Point the platform's SMS_GATEWAY_URL at `url`. Tests may make it
    fail the next requests: `fail_next = [503, 429]` answers those statuses first."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.messages: list[dict] = []
        self.fail_next: list[int] = []   # statuses to answer before accepting again
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with gateway._lock:
                    status = gateway.fail_next.pop(0) if gateway.fail_next else 202
                    gateway.messages.append({"at": time.time(), "body": body, "status": status,
                                             "idempotency_key": self.headers.get("Idempotency-Key")})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}' if status < 300 else b'{"error": "try later"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accepted(self) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m["status"] < 300]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def first_arrival(self, text_part: str) -> float | None:
        with self._lock:
            return min((m["at"] for m in self.messages if m["status"] < 300 and text_part in m["body"].get("text", "")),
                       default=None)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- what happened
@dataclass
class Outcomes:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (when the request was sent, monotonic clock; seconds it took): the morning peak's figures
    sent: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lost: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, seconds: float) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            self.sent[operation].append((time.monotonic() - seconds, seconds))

    def error(self, operation: str, detail: str) -> None:
        with self.lock:
            self.errors[operation] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{operation}: {detail}")

    def lose(self, what: str) -> None:
        with self.lock:
            self.lost[what] += 1

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n


class Api:
    """The platform's HTTP API, timed per operation; an unexpected answer counts as an error."""

    def __init__(self, base_url: str, outcomes: Outcomes):
        self.base = base_url.rstrip("/")
        self.outcomes = outcomes
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, operation: str, method: str, path: str, expect=(200, 201), **kwargs) -> requests.Response | None:
        started = time.perf_counter()
        try:
            try:
                response = self.session.request(method, self.base + path, timeout=(5, 30), **kwargs)
            except requests.ConnectionError as exc:
                if not _closed_without_answer(exc):
                    raise
                # A kept-alive connection the server closed as this request went out: a browser
                # sends the request again once on a new connection, and so does this citizen.
                self.session.close()
                response = self.session.request(method, self.base + path, timeout=(5, 30), **kwargs)
        except requests.RequestException as exc:
            self.outcomes.error(operation, exc.__class__.__name__)
            return None
        self.outcomes.record(operation, time.perf_counter() - started)
        if response.status_code not in expect:
            problem = response.json() if "json" in response.headers.get("Content-Type", "") else {}
            fields = ",".join(e.get("field", "?") for e in problem.get("errors") or [])
            self.outcomes.error(operation, f"{response.status_code} {problem.get('code') or response.text[:120]} {fields}")
            return None
        return response


def _closed_without_answer(exc: requests.ConnectionError) -> bool:
    """The connection was closed or reset before any answer: the request was not handled
    (a connection refused, a timeout or a broken answer are not this)."""
    text = repr(exc)
    return "RemoteDisconnected" in text or "ConnectionResetError" in text or "BadStatusLine" in text


# ---------------------------------------------------------------- the wards
@dataclass
class Ward:
    ward_id: str
    province_code: str
    officer: dict  # Authorization header
    counters: list[dict]
    service_codes: list[str]
    citizens: list[dict] = field(default_factory=list)  # {national_id, headers}
    # Expected kiosk tickets and online dossiers in its day (None: the simulation's rate)
    tickets_per_day: float | None = None
    online_per_day: float | None = None


# A ward's day grows with the people it serves: this many kiosk tickets and online dossiers
# a day per 10,000 residents (a merged ward of 30,000 then has the demo's day, 120 and 30).
TICKETS_PER_10K = 40.0
ONLINE_PER_10K = 10.0
SERVED_PER_COUNTER_DAY = 45  # what a counter serves in a day with room for the peaks


def ward_size(official_code: str, kind: str) -> int:
    """The residents a commune or ward serves, for the simulation: the official lists carry no
    population, so an urban ward (phường) is drawn between 15,000 and 48,000 and a commune (xã)
    between 10,000 and 32,000 (3.2 million for Hà Nội's 126: those who come to a one-stop
    shop, not every resident), the draw fixed by the official code so that every run plays
    the same province."""
    base = 30_000 if kind.lower().startswith("phường") else 20_000
    return int(base * random.Random(f"size-{official_code}").uniform(0.5, 1.6))


def counters_for(tickets_per_day: float) -> list[tuple[str, str, list[str]]]:
    """The counters a ward of this size opens (2 to 8), their services spread so that every
    queue service is served by at least two counters where there are two."""
    from motcua_queue.bootstrap import DEMO_SERVICES

    codes = [code for code, _name, _prefix in DEMO_SERVICES]
    count = max(2, min(8, math.ceil(tickets_per_day / SERVED_PER_COUNTER_DAY)))
    made = []
    for i in range(count):
        served = sorted({codes[(i * 2 + k) % len(codes)] for k in range(4 if count <= 3 else 3)})
        made.append((f"quay-{i + 1}", f"Quầy {i + 1}", served))
    return made


def _national_id(rng: random.Random, province_code: str) -> tuple[str, str]:
    """A well-formed CCCD and a date of birth it agrees with (4th digit: gender and century)."""
    year = rng.randint(1966, 2006)
    century_gender = (0 if year < 2000 else 2) + rng.randint(0, 1)
    national_id = f"{province_code}{century_gender}{year % 100:02d}{rng.randint(0, 999_999):06d}"
    return national_id, f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _login(api: Api, username: str, password: str, attempts: int = 4) -> dict | None:
    """Sign in; a 429 (the platform allows 120 logins a minute from one address, and every
    simulated citizen comes from this one) is waited out as its Retry-After says."""
    for _ in range(attempts):
        response = api.call("login", "POST", "/identity/api/v1/sessions", expect=(200, 429),
                            json={"username": username, "password": password})
        if response is None:
            return None
        if response.status_code == 200:
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
        wait = min(float(response.headers.get("Retry-After") or 5), 70.0)
        print(f"motcua simulate: logins from this address are limited; waiting {wait:.0f} s", file=sys.stderr)
        time.sleep(wait)
    api.outcomes.error("login", "429 rate_limited (still, after waiting)")
    return None


def _register_citizens(api: Api, ward: Ward, rng: random.Random, how_many: int) -> None:
    while len(ward.citizens) < how_many:
        (national_id, born), password = _national_id(rng, ward.province_code), f"mc-{uuid.uuid4().hex[:12]}"
        # At the counter (the ward's officer, the card checked): active at once. A web
        # registration waits for the code texted to its phone (MOTCUA_WEB_PHONE_PROOF).
        response = api.call("register_citizen", "POST", "/identity/api/v1/citizens", expect=(201, 409, 429), json={
            "national_id": national_id, "full_name": "Công dân mô phỏng", "date_of_birth": born,
            "phone": f"09{rng.randint(0, 99_999_999):08d}", "ward_id": ward.ward_id, "password": password},
            headers=ward.officer)
        if response is None:
            return
        if response.status_code == 429:
            raise SystemExit("motcua simulate: the platform limits self-registrations per address; start it with "
                             "MOTCUA_REGISTRATIONS_PER_CLIENT_HOUR raised (every simulated citizen registers from here)")
        if response.status_code == 409:
            continue  # that id is taken already (an earlier run): draw another
        headers = _login(api, national_id, password)
        if headers:
            ward.citizens.append({"national_id": national_id, "headers": headers})


def _hanoi_units(skip: set[str]) -> list[str]:
    """Hà Nội's communes and wards by official code (vietnam-provinces), less those given."""
    return [code for code, _name in province_units(1) if code not in skip]


def province_units(province_code: int) -> list[tuple[str, str]]:
    """A province's communes and wards: (official code, name), by code (vietnam-provinces)."""
    from vietnam_provinces import Ward as Unit

    return sorted((f"{int(u.code):05d}", u.name) for u in Unit.iter_all() if int(u.province_code) == province_code)


def _provision_ward(api: Api, admin: dict, index: int, official_code: str, population: int = 10000,
                    counters: list | None = None) -> str:
    """A simulation ward beyond the demo ones, set up as a ward's admin would through the
    platform's own calls: opened by its official code (WardOpened tells queue, rating and
    dossier), its officer, then — once the queue has heard of it — its queue services and
    counters (the demo's six and three), open at all hours (the day is simulated), and
    every online procedure switched on. Safe to run again (409s are expected then)."""
    ward_id = f"sim-{index:04d}"
    api.call("open_ward", "POST", "/identity/api/v1/wards", headers=admin, expect=(201, 409),
             json={"official_code": official_code, "ward_id": ward_id, "target_population": population})
    api.call("create_officer", "POST", "/identity/api/v1/officers", headers=admin, expect=(201, 409), json={
        "username": f"canbo.{ward_id}", "full_name": "Cán bộ mô phỏng", "ward_id": ward_id,
        "role": "officer", "password": demo.DEMO_STAFF_PASSWORD})
    from motcua_queue.bootstrap import DEMO_COUNTERS, DEMO_SERVICES

    deadline = time.monotonic() + 60
    while True:
        known = api.call("ward_known", "GET", f"/queue/api/v1/wards/{ward_id}/opening-hours", expect=(200, 404))
        if known is not None and known.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"motcua simulate: the queue never heard that {ward_id} opened (WardOpened)")
        time.sleep(0.2)
    queue = f"/queue/api/v1/wards/{ward_id}"
    api.call("set_hours", "PUT", f"{queue}/opening-hours", headers=admin, json=always_open_body())
    for code, name, prefix in DEMO_SERVICES:
        api.call("put_service", "PUT", f"{queue}/services/{code}", headers=admin, json={"name": name, "prefix": prefix})
    for counter_id, name, codes in counters or DEMO_COUNTERS:
        api.call("put_counter", "PUT", f"{queue}/counters/{counter_id}", headers=admin,
                 json={"name": name, "service_codes": codes})
    procedures = api.call("list_procedures", "GET", "/dossier/api/v1/procedures")
    for procedure in procedures.json() if procedures is not None else []:
        if procedure["level"] >= 3:
            api.call("offer_online", "PUT", f"/dossier/api/v1/wards/{ward_id}/procedures/{procedure['code']}",
                     headers=admin, expect=(200, 404), json={"online": True})
    return ward_id


def always_open_body() -> dict:
    """The ward's opening hours as its admin sends them, open at all hours (the simulated day
    runs at any time of the real one); weekly hours are required even then."""
    from motcua_queue.hours import always_open_hours

    return always_open_hours()


def prepare_province(api: Api, province_code: int, rng: random.Random, admin_password: str | None,
                     citizens_per_ward: int = 2, parallel: int = 6) -> list[Ward]:
    """Every commune and ward of a province opened by its official code (those the demo opened
    already are used as they are), each with counters for its size, its officer and citizens."""
    if not admin_password:
        raise SystemExit("motcua simulate: --province needs --admin-password (MOTCUA_ADMIN_PASSWORD of the platform)")
    admin = _login(api, "admin", admin_password)
    if admin is None:
        raise SystemExit("motcua simulate: the admin could not log in")
    officers = {ward: username for username, _name, ward, role in demo.DEMO_STAFF if role == "officer"}
    opened = {w["official_code"]: w for w in demo.WARDS if w["ward_id"] in officers}
    units = province_units(province_code)
    sizes = {code: ward_size(code, name) for code, name in units}
    plans, index = [], 0
    for code, name in units:
        tickets = TICKETS_PER_10K * sizes[code] / 10_000
        if code in opened:
            ward_id = opened[code]["ward_id"]
            plans.append((ward_id, officers[ward_id], None, code, tickets))
        else:
            index += 1
            plans.append((f"sim-{index:04d}", f"canbo.sim-{index:04d}", index, code, tickets))
    print(f"motcua simulate: opening {len(units)} communes and wards of province {province_code:02d} "
          f"({sum(sizes.values()):,} residents)", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda plan: plan[2] is None or _provision_ward(
            api, admin, plan[2], plan[3], sizes[plan[3]], counters_for(plan[4])), plans))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        wards = list(pool.map(lambda plan: _ward_ready(api, plan[0], plan[1], f"{province_code:03d}", rng,
                                                        citizens_per_ward, plan[4]), plans))
    return wards


def _ward_ready(api: Api, ward_id: str, officer_name: str, province_code: str, rng: random.Random,
                citizens: int, tickets_per_day: float | None = None) -> Ward:
    officer = _login(api, officer_name, demo.DEMO_STAFF_PASSWORD)
    services = api.call("list_services", "GET", f"/queue/api/v1/wards/{ward_id}/services")
    counters = api.call("list_counters", "GET", f"/queue/api/v1/wards/{ward_id}/counters")
    if not (officer and services and counters):
        raise SystemExit(f"motcua simulate: ward {ward_id} is not usable (officer, services or counters)")
    ward = Ward(ward_id, province_code, officer, counters.json(), [s["code"] for s in services.json()],
                tickets_per_day=tickets_per_day,
                online_per_day=None if tickets_per_day is None else tickets_per_day * ONLINE_PER_10K / TICKETS_PER_10K)
    _register_citizens(api, ward, random.Random(rng.random()), citizens)
    return ward


def prepare_wards(api: Api, count: int, rng: random.Random, admin_password: str | None) -> list[Ward]:
    officers = {ward: username for username, _name, ward, role in demo.DEMO_STAFF if role == "officer"}
    ward_ids = [w["ward_id"] for w in demo.WARDS if w["ward_id"] in officers][:count]
    province = {w["ward_id"]: w["province_code"] for w in demo.WARDS}
    if len(ward_ids) < count:
        if not admin_password:
            raise SystemExit(f"motcua simulate: {count} wards asked, the demo has {len(ward_ids)}; give "
                             "--admin-password (MOTCUA_ADMIN_PASSWORD of the platform) to create the others")
        admin = _login(api, "admin", admin_password)
        if admin is None:
            raise SystemExit("motcua simulate: the admin could not log in")
        units = _hanoi_units({w["official_code"] for w in demo.WARDS})
        for index in range(1, count - len(ward_ids) + 1):
            ward_id = _provision_ward(api, admin, index, units[index - 1])
            ward_ids.append(ward_id)
            officers[ward_id], province[ward_id] = f"canbo.{ward_id}", "001"
    wards = []
    for ward_id in ward_ids:
        officer = _login(api, officers[ward_id], demo.DEMO_STAFF_PASSWORD)
        services = api.call("list_services", "GET", f"/queue/api/v1/wards/{ward_id}/services")
        counters = api.call("list_counters", "GET", f"/queue/api/v1/wards/{ward_id}/counters")
        if not (officer and services and counters):
            raise SystemExit(f"motcua simulate: ward {ward_id} is not usable (officer, services or counters)")
        ward = Ward(ward_id, province[ward_id], officer, counters.json(), [s["code"] for s in services.json()])
        _register_citizens(api, ward, rng, CITIZENS_PER_WARD)
        wards.append(ward)
    return wards


def fill_form(procedure: dict) -> dict:
    """Plausible answers for a procedure's form."""
    answers = {}
    for item in procedure.get("form") or []:
        kind = item.get("type", "text")
        if kind == "date":
            answers[item["name"]] = "2026-03-02"
        elif kind == "number":
            answers[item["name"]] = 1
        elif item.get("options"):
            answers[item["name"]] = item["options"][0]
        else:
            answers[item["name"]] = "Nguyễn Văn Bình"
    return answers


# ---------------------------------------------------------------- the day
class Day:
    def __init__(self, api: Api, wards: list[Ward], procedures: list[dict], minutes: float, tickets_per_ward: float,
                 online_per_ward: float, rng: random.Random, gateway: RecordingGateway | None, concurrency: int):
        self.api, self.wards, self.rng, self.gateway = api, wards, rng, gateway
        self.outcomes = api.outcomes
        self.seconds_per_hour = minutes * 60 / OPEN_HOURS  # wall seconds per office hour
        self.online_procedures = [p for p in procedures if p["level"] >= 3]
        self.counter_procedures = procedures
        self.tickets_per_ward, self.online_per_ward = tickets_per_ward, online_per_ward
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="citizen")
        self.dossiers: list[tuple[str, float]] = []  # receipt code, submitted at (epoch)
        self.in_flight = 0  # tasks handed to the pool and not finished
        self.served = 0
        self.lock = threading.Lock()
        self.day_over = threading.Event()
        self.closing_deadline = math.inf  # set at the end of the day: counters stop trying after it

    def _wall(self, hour: float) -> float:
        """Wall seconds since the start of the day for a local hour, lunch compressed away."""
        open_before = sum(max(0.0, min(hour, end) - start) for start, end in OPEN_PERIODS)
        return open_before * self.seconds_per_hour

    # citizens ----------------------------------------------------------
    def take_ticket(self, ward: Ward) -> None:
        codes = [c for c in ward.service_codes if c in TICKET_SERVICE_WEIGHTS] or ward.service_codes
        code = self.rng.choices(codes, [TICKET_SERVICE_WEIGHTS.get(c, 1) for c in codes])[0]
        priority = "priority" if self.rng.random() < 0.08 else "normal"
        if self.api.call("issue_ticket", "POST", f"/queue/api/v1/wards/{ward.ward_id}/tickets",
                         json={"service_code": code, "priority": priority}, headers={"Idempotency-Key": str(uuid.uuid4())}):
            self.outcomes.count("tickets issued")

    def submit_online(self, ward: Ward) -> None:
        citizen = self.rng.choice(ward.citizens)
        procedure = self.rng.choice(self.online_procedures)
        response = self.api.call("submit_dossier_online", "POST", "/dossier/api/v1/dossiers", headers=citizen["headers"],
                                 json={"procedure_code": procedure["code"], "ward_id": ward.ward_id, "form": fill_form(procedure)})
        if response:
            self._submitted(response.json())
            # An officer receives it later in the (compressed) day: the 'received' SMS goes out.
            self.later(self.rng.uniform(0.2, 1.0) * self.seconds_per_hour, self.receive, ward, response.json()["dossier_id"])

    def receive(self, ward: Ward, dossier_id: str) -> None:
        self.api.call("receive_dossier", "POST", f"/dossier/api/v1/dossiers/{dossier_id}/actions", headers=ward.officer,
                      json={"action": "receive", "note": "Đã tiếp nhận đủ hồ sơ"})

    def _submitted(self, dossier: dict) -> None:
        self.outcomes.count("dossiers submitted")
        with self.lock:
            self.dossiers.append((dossier["receipt_code"], time.time()))

    def rate(self, ticket_id: str, deadline: float, score: str | None = None) -> None:
        """The citizen at the rating screen: ratable as soon as TicketServed reached rating.
        Not yet (404): tried again a quarter of a second later, by the clock rather than
        by a pool thread waiting (a waiting thread would hold back other citizens' arrivals)."""
        score = score or self.rng.choices([s for s, _ in SCORES], [w for _, w in SCORES])[0]
        response = self.api.call("rate", "POST", "/rating/api/v1/ratings", expect=(201, 404),
                                 json={"ticket_id": ticket_id, "score": score})
        if response is None or response.status_code == 201:
            if response is not None:
                self.outcomes.count("ratings given")
            return
        if time.time() > deadline:
            self.outcomes.lose("served ticket never ratable")
            return
        self.later(0.25, self.rate, ticket_id, deadline, score)

    # officers at the counters --------------------------------------------
    def counter(self, ward: Ward, counter: dict) -> None:
        path = f"/queue/api/v1/wards/{ward.ward_id}/counters/{counter['counter_id']}/call-next"
        idle_sleep = max(0.05, min(1.0, self.seconds_per_hour / 60))
        while True:
            called = self.api.call("call_next", "POST", path, expect=(200, 204), headers=ward.officer)
            if called is None or called.status_code == 204:
                if self.day_over.is_set() and (called is not None or time.monotonic() > self.closing_deadline):
                    return  # nobody waits and nobody comes any more (or the platform stopped answering)
                time.sleep(idle_sleep)
                continue
            ticket = called.json()
            service_minutes = self.rng.expovariate(1 / MEAN_SERVICE_MINUTES)
            time.sleep(service_minutes / 60 * self.seconds_per_hour)
            served = self.api.call("serve_ticket", "POST", f"/queue/api/v1/tickets/{ticket['ticket_id']}/actions",
                                   headers=ward.officer, json={"action": "serve"})
            if served is None:
                continue
            self.outcomes.count("tickets served")
            if self.rng.random() < P_COUNTER_DOSSIER:
                self.submit_at_counter(ward)
            if self.rng.random() < P_RATING:
                self.later(0.0, self.rate, ticket["ticket_id"], time.time() + 60)

    def submit_at_counter(self, ward: Ward) -> None:
        procedure = self.rng.choice(self.counter_procedures)
        citizen = self.rng.choice(ward.citizens)
        response = self.api.call("submit_dossier_counter", "POST", "/dossier/api/v1/dossiers", headers=ward.officer, json={
            "procedure_code": procedure["code"], "ward_id": ward.ward_id, "form": fill_form(procedure),
            "citizen_national_id": citizen["national_id"]})
        if response:
            self._submitted(response.json())

    # the clock ---------------------------------------------------------
    def later(self, seconds: float, fn, *args) -> None:
        with self.lock:
            heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.tiebreak), fn, args))

    def play(self, progress=None) -> None:
        self.timers: list = []
        self.tiebreak = iter(range(10**12))
        self.start = time.monotonic()
        for ward in self.wards:
            for hour in arrival_hours(self.rng, ward.tickets_per_day or self.tickets_per_ward):
                self.later(self._wall(hour), self.take_ticket, ward)
            for hour in arrival_hours(self.rng, ward.online_per_day or self.online_per_ward):
                self.later(self._wall(hour), self.submit_online, ward)
        counters = [threading.Thread(target=self.counter, args=(w, c), daemon=True, name=f"{w.ward_id}/{c['counter_id']}")
                    for w in self.wards for c in w.counters]
        for thread in counters:
            thread.start()
        end_of_day = self.start + self._wall(OPEN_PERIODS[-1][1])
        last_progress = 0.0
        while True:
            now = time.monotonic()
            with self.lock:
                due = []
                while self.timers and self.timers[0][0] <= now:
                    due.append(heapq.heappop(self.timers))
                remaining = len(self.timers)
            for _at, _n, fn, args in due:
                self._hand_to_pool(fn, args)
            if now >= end_of_day and not self.day_over.is_set():
                self.closing_deadline = now + self.closing_grace()
                self.day_over.set()
            if self.day_over.is_set():
                with self.lock:
                    busy = self.in_flight
                if not remaining and not busy and not any(thread.is_alive() for thread in counters):
                    break  # every counter closed, every citizen done
                if now > self.closing_deadline + 100:  # (a request's 30 s, a rating's 60 s, with room)
                    self.outcomes.error("end_of_day", f"{remaining} citizen actions still scheduled, {busy} running, "
                                                      "when the simulation had to stop")
                    break
            if progress and now - last_progress >= 1:
                progress(self, min(1.0, (now - self.start) / max(end_of_day - self.start, 1e-9)))
                last_progress = now
            time.sleep(0.005)
        # The counters served whoever still waited, then closed (or, past their deadline,
        # stopped trying); one still busy now is reported with where it is.
        stuck = [thread for thread in counters if thread.is_alive()]
        if stuck:
            frames = sys._current_frames()
            for thread in stuck:
                self.outcomes.error("counter_closing", f"{thread.name} still busy after closing")
                where = "".join(traceback.format_stack(frames.get(thread.ident))[-4:]) if thread.ident in frames else "?"
                print(f"\nmotcua simulate: counter {thread.name} still busy after closing:\n{where}", file=sys.stderr)
        self.pool.shutdown(wait=True)

    def _hand_to_pool(self, fn, args) -> None:
        def run() -> None:
            try:
                fn(*args)
            finally:
                with self.lock:
                    self.in_flight -= 1

        with self.lock:
            self.in_flight += 1
        self.pool.submit(run)

    def closing_grace(self) -> float:
        """How long after closing time the counters keep serving those who still wait."""
        return max(60.0, self.seconds_per_hour * 2)

    def local_clock(self, fraction: float) -> str:
        hour = OPEN_PERIODS[0][0]
        budget = fraction * OPEN_HOURS
        for start, end in OPEN_PERIODS:
            hour = start + min(budget, end - start)
            budget -= end - start
            if budget <= 0:
                break
        return f"{int(hour):02d}:{int(hour % 1 * 60):02d}"

    def check_sms(self, quiet_seconds: float, most_seconds: float = 900) -> list[float]:
        """Every dossier's 'submitted' SMS at the gateway; the delays from submission.

        A platform behind its load is still sending when the day ends: an SMS counts as lost
        only if none of the missing ones has arrived for `quiet_seconds` (the pipeline has
        stopped moving), or after `most_seconds` in all — late is not lost."""
        delays, pending = [], list(self.dossiers)
        started = last_progress = time.time()
        while pending:
            still = []
            for code, submitted_at in pending:
                arrived = self.gateway.first_arrival(code)
                if arrived is None:
                    still.append((code, submitted_at))
                else:
                    delays.append(max(0.0, arrived - submitted_at))
            if len(still) < len(pending):
                last_progress = time.time()
            pending = still
            now = time.time()
            if pending and (now - last_progress > quiet_seconds or now - started > most_seconds):
                for _ in pending:
                    self.outcomes.lose("dossier without SMS at the gateway")
                break
            if pending:
                time.sleep(0.2)
        return delays


MORNING_PEAK = (8.5, 9.5)  # local hours around the morning's busiest (PEAKS)
PEAK_OPERATIONS = ("issue_ticket", "call_next", "serve_ticket")


def morning_peak(day: Day) -> dict:
    """p50/p99 of a ticket, a call and a serve sent between 08:30 and 09:30 of the day."""
    start, end = (day.start + day._wall(hour) for hour in MORNING_PEAK)
    figures = {}
    for name in PEAK_OPERATIONS:
        values = [seconds for sent, seconds in day.outcomes.sent.get(name, []) if start <= sent < end]
        figures[name] = {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
                         "p99_ms": round(percentile(values, 99) * 1000, 1)}
    return figures


def summarise(day: Day, elapsed: float, sms_delays: list[float] | None) -> dict:
    outcomes = day.outcomes
    operations = {
        name: {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
               "p95_ms": round(percentile(values, 95) * 1000, 1), "p99_ms": round(percentile(values, 99) * 1000, 1)}
        for name, values in sorted(outcomes.latencies.items())
    }
    requests_made = sum(len(v) for v in outcomes.latencies.values())
    summary = {
        "wards": len(day.wards), "wall_seconds": round(elapsed, 1), "requests": requests_made,
        "requests_per_second": round(requests_made / elapsed, 1) if elapsed else 0.0,
        "counts": dict(outcomes.counts), "operations": operations,
        "errors": dict(outcomes.errors), "error_samples": outcomes.error_samples,
        "lost_events": dict(outcomes.lost),
        "morning_peak": morning_peak(day),
        "counters": sum(len(w.counters) for w in day.wards),
        "speed": round(3600 / day.seconds_per_hour, 1),  # times real time
    }
    if sms_delays is not None:
        summary["dossier_to_sms"] = {"count": len(sms_delays), "p50_ms": round(percentile(sms_delays, 50) * 1000, 1),
                                     "p99_ms": round(percentile(sms_delays, 99) * 1000, 1)}
    return summary


def print_summary(summary: dict, out=sys.stdout) -> None:
    print(f"\n{summary['wards']} phường, {summary.get('counters', '?')} quầy, {summary.get('speed', '?')}× real time, "
          f"{summary['wall_seconds']} s: {summary['requests']} requests ({summary['requests_per_second']}/s)", file=out)
    for what, n in sorted(summary["counts"].items()):
        print(f"  {what:<24} {n}", file=out)
    print(f"  {'operation':<24} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}", file=out)
    for name, op in summary["operations"].items():
        print(f"  {name:<24} {op['count']:>6} {op['p50_ms']:>8} {op['p95_ms']:>8} {op['p99_ms']:>8}", file=out)
    if summary.get("morning_peak"):
        print("  morning peak (08:30–09:30): " + "; ".join(
            f"{name} p50 {op['p50_ms']} ms p99 {op['p99_ms']} ms ({op['count']})"
            for name, op in summary["morning_peak"].items()), file=out)
    if "dossier_to_sms" in summary:
        sms = summary["dossier_to_sms"]
        print(f"  dossier → SMS at gateway {sms['count']:>6} {sms['p50_ms']:>8} {'':>8} {sms['p99_ms']:>8}", file=out)
    print(f"  errors: {sum(summary['errors'].values())} {summary['errors'] or ''}", file=out)
    for sample in summary["error_samples"]:
        print(f"    {sample}", file=out)
    print(f"  lost events: {sum(summary['lost_events'].values())} {summary['lost_events'] or ''}", file=out)


def simulate(base_url: str, wards: int, minutes: float, tickets_per_ward: float = 120, online_per_ward: float = 30,
             seed: int | None = None, admin_password: str | None = None,
             gateway: RecordingGateway | None = None, concurrency: int = 64, quiet: bool = False,
             province: int | None = None) -> dict:
    """Play a day against the platform at `base_url`: `wards` wards (the demo's, then new
    ones), or with `province` every commune and ward of that province by official code,
    each with counters and a day for its size."""
    rng = random.Random(seed)
    api = Api(base_url, Outcomes())
    if province is not None:
        chosen = prepare_province(api, province, rng, admin_password)
    else:
        chosen = prepare_wards(api, wards, rng, admin_password)
    procedures = api.call("list_procedures", "GET", "/dossier/api/v1/procedures").json()
    api.outcomes.latencies.clear()  # the summary is about the day, not the set-up
    day = Day(api, chosen, procedures, minutes, tickets_per_ward, online_per_ward, rng, gateway, concurrency)

    def progress(d: Day, fraction: float) -> None:
        c = d.outcomes.counts
        bar = "█" * int(fraction * 20) + "░" * (20 - int(fraction * 20))
        print(f"\r{bar} {fraction:4.0%} {d.local_clock(fraction)} · vé {c['tickets issued']} · đã phục vụ "
              f"{c['tickets served']} · hồ sơ {c['dossiers submitted']} · đánh giá {c['ratings given']} · "
              f"lỗi {sum(d.outcomes.errors.values())}", end="", file=sys.stderr, flush=True)

    started = time.monotonic()
    day.play(None if quiet else progress)
    elapsed = time.monotonic() - started
    sms_delays = day.check_sms(60) if gateway is not None else None
    if not quiet:
        print(file=sys.stderr)
    return summarise(day, elapsed, sms_delays)


def main(args) -> int:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: where every thread is, on stderr
    gateway = RecordingGateway(args.sms_sink_port).__enter__() if args.sms_sink_port is not None else None
    try:
        # --speed 10: the office day (OPEN_HOURS, lunch left out) in a tenth of its time.
        minutes = OPEN_HOURS * 60 / args.speed if getattr(args, "speed", None) else args.minutes
        summary = simulate(args.base_url, args.wards, minutes, args.rate, args.online_rate, args.seed,
                           args.admin_password, gateway, args.concurrency,
                           province=int(args.province) if getattr(args, "province", None) else None)
    finally:
        if gateway is not None:
            gateway.__exit__(None, None, None)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print_summary(summary)
    return 1 if summary["errors"] or summary["lost_events"] else 0
