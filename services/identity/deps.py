"""What identity's use cases need, typed and chosen once: the shared `ServiceDeps`
(service, settings, db, verifier, clock) and what only identity uses — the token key ring,
the login, registration and inbound-SMS rate limits, and the two calls that leave the
service (SMS replies through notify, status questions to dossier).

`build_deps(settings, **overrides)` is the one place these are made: the API
(`create_app`), the worker, the CLI (`motcua rotate-keys` through `key_ring`) and the
tests call it. Anything given as an override is used as is and its real counterpart is
never built (no key file, no RPC client)."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

from pymongo.database import Database

from motcua_common.auth import SigningKey, TokenVerifier
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.deps import ServiceDeps, open_database
from motcua_common.ratelimit import FixedWindowLimiter
from motcua_common.rpc import call

from .keys import KeyRing

SERVICE = "identity"
# Inbound SMS per phone: enough for DK, a retry and MK; an SMS costs the city money.
SMS_PER_PHONE = 8
SMS_WINDOW = timedelta(minutes=10)
# Logins, counted before any password is checked: the lockout stops guessing one known
# account; these stop spraying many usernames from one address and keep a stranger from
# spending the server's argon2 time. A ward office behind one NAT address stays far below.
LOGINS_PER_USERNAME = 10
LOGINS_PER_CLIENT = 120
LOGIN_WINDOW = timedelta(minutes=1)
# One-time codes proving a web registration's phone (domain.PHONE_CODES_PER_*).
PHONE_CODES_PER_PHONE_HOUR = 5
PHONE_CODES_PER_CLIENT_HOUR = 20
# The limiters' names in the database (bootstrap makes their indexes).
LIMITERS = ("sms_inbound", "login_username", "login_client", "phone_code_phone", "phone_code_client")

# send_reply(to, template, variables, ward_id, key): an SMS through notify.
SendReply = Callable[[str, str, dict, "str | None", str], object]
# dossier_status(receipt_code, phone_last4) -> {"status", "due_date", "ward_id", "citizen_id"} | None
DossierStatus = Callable[[str, str], "dict | None"]
# latest_ratable(citizen_id) -> {"dossier_id", "receipt_code", "ward_id"} | None, asked of dossier
LatestRatable = Callable[[str], "dict | None"]
# rate_dossier(receipt_code, score) -> {"outcome": rated|already_rated|not_ratable, ...}, asked of rating
RateDossier = Callable[[str, str], dict]


def web_phone_proof(env: dict | None = None) -> bool:
    """MOTCUA_WEB_PHONE_PROOF (default true): a web registration is active only once the
    code sent to its phone is entered. `false` only for a platform without SMS."""
    value = (env if env is not None else os.environ).get("MOTCUA_WEB_PHONE_PROOF", "true")
    return value.strip().lower() not in ("false", "0", "no", "off")


@dataclass(frozen=True, kw_only=True)
class Deps(ServiceDeps):
    signing_key: KeyRing | LazyKeyRing | SigningKey  # signs sessions; its public keys are the JWKS
    send_reply: SendReply                       # SMS replies and temporary passwords, via notify
    dossier_status: DossierStatus               # TT: a dossier's status, asked of dossier
    login_by_username: FixedWindowLimiter       # sign-in attempts per username
    login_by_client: FixedWindowLimiter         # sign-in attempts per client address
    registrations_by_client: FixedWindowLimiter  # self-registrations per client address
    sms_limiter: FixedWindowLimiter             # inbound SMS per phone
    latest_ratable: LatestRatable               # rating by SMS: the citizen's dossier to rate, asked of dossier
    rate_dossier: RateDossier                   # rating by SMS: the rating itself, asked of rating
    phone_codes_by_phone: FixedWindowLimiter    # one-time codes sent per phone
    phone_codes_by_client: FixedWindowLimiter   # one-time codes asked for per client address
    web_phone_proof: bool = True                # web registrations wait for the phone's code


class CallableClock(SystemClock):
    """A clock given as a function returning an aware UTC datetime (older callers)."""

    def __init__(self, now: Callable, tz_name: str):
        super().__init__(tz_name)
        self._now = now

    def now(self):
        return self._now()


class LazyKeyRing:
    """The key ring, opened on first use: a process that never signs (the worker) never
    reads or makes a key file."""

    def __init__(self, settings: Settings, clock: SystemClock):
        self._settings, self._clock = settings, clock
        self._ring: KeyRing | None = None
        self._lock = threading.Lock()

    @property
    def ring(self) -> KeyRing:
        with self._lock:
            if self._ring is None:
                self._ring = key_ring(self._settings, self._clock)
            return self._ring

    def issue(self, *args, **kwargs) -> str:
        return self.ring.issue(*args, **kwargs)

    def jwks(self) -> dict:
        return self.ring.jwks()


def key_ring(settings: Settings, clock: SystemClock | None = None) -> KeyRing:
    """identity's signing keys under the data directory (`motcua rotate-keys` rotates them)."""
    clock = clock or SystemClock(settings.timezone)
    return KeyRing(Path(settings.data_dir) / "keys", settings.token_ttl_seconds, clock=lambda: clock.now().timestamp())


def _send_reply(settings: Settings) -> SendReply:
    def send_reply(to, template, variables, ward_id, key):
        return call(settings, "notify", "send_sms_reply", to, template, variables, ward_id, key, timeout=10)

    return send_reply


def _dossier_status(settings: Settings) -> DossierStatus:
    def dossier_status(receipt_code, phone_last4):
        return call(settings, "dossier", "status_for_sms", receipt_code, phone_last4, timeout=10)

    return dossier_status


def _latest_ratable(settings: Settings) -> LatestRatable:
    def latest_ratable(citizen_id):
        return call(settings, "dossier", "latest_ratable", citizen_id, timeout=10)

    return latest_ratable


def _rate_dossier(settings: Settings) -> RateDossier:
    def rate_dossier(receipt_code, score):
        return call(settings, "rating", "rate_dossier_by_sms", receipt_code, score, timeout=10)

    return rate_dossier


def build_deps(settings: Settings | None = None, **overrides) -> Deps:
    """identity's dependencies; `overrides` (any field of Deps) replace the real ones —
    tests pass stand-ins for notify and dossier, a fixed clock, a signing key. A clock
    may also be given as a plain function returning now (UTC)."""
    settings = settings or Settings.from_env()
    unknown = set(overrides) - set(Deps.__dataclass_fields__)
    if unknown:
        raise TypeError(f"build_deps: no such dependency: {', '.join(sorted(unknown))}")
    given = {name: value for name, value in overrides.items() if value is not None}
    clock = given.pop("clock", None) or SystemClock(settings.timezone)
    if not isinstance(clock, SystemClock) and callable(clock):
        clock = CallableClock(clock, settings.timezone)
    db: Database | None = given.pop("db", None)
    if db is None:  # a Database has no truth value
        db = open_database(settings, SERVICE)
    signing_key = given.pop("signing_key", None) or LazyKeyRing(settings, clock)
    makers = {
        "verifier": lambda: TokenVerifier(signing_key.jwks),
        "send_reply": lambda: _send_reply(settings),
        "dossier_status": lambda: _dossier_status(settings),
        "login_by_username": lambda: FixedWindowLimiter(db, "login_username", LOGINS_PER_USERNAME, LOGIN_WINDOW),
        "login_by_client": lambda: FixedWindowLimiter(db, "login_client", LOGINS_PER_CLIENT, LOGIN_WINDOW),
        "registrations_by_client": lambda: FixedWindowLimiter(db, "register_client", settings.registrations_per_client_hour,
                                                              timedelta(hours=1)),
        "sms_limiter": lambda: FixedWindowLimiter(db, "sms_inbound", SMS_PER_PHONE, SMS_WINDOW),
        "latest_ratable": lambda: _latest_ratable(settings),
        "rate_dossier": lambda: _rate_dossier(settings),
        "phone_codes_by_phone": lambda: FixedWindowLimiter(db, "phone_code_phone", PHONE_CODES_PER_PHONE_HOUR,
                                                           timedelta(hours=1)),
        "phone_codes_by_client": lambda: FixedWindowLimiter(db, "phone_code_client", PHONE_CODES_PER_CLIENT_HOUR,
                                                            timedelta(hours=1)),
        "web_phone_proof": lambda: web_phone_proof(),
    }
    chosen = {name: given[name] if name in given else make() for name, make in makers.items()}
    return Deps(service=SERVICE, settings=settings, db=db, clock=clock, signing_key=signing_key, **chosen)
