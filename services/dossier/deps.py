"""What the dossier use cases need, typed and chosen once: the shared `ServiceDeps`
(service, settings, db, verifier, clock) and what only the dossier service uses — identity's
citizen and ward directories, the working-day calendar, the result signing keys, the
payment provider and the public lookup's rate limit.

`build_deps(settings, **overrides)` is the one place these are made: the API
(`create_app`), the worker and the tests call it, so a reader finds every dependency
here instead of in five factories. Anything given as an override is used as is and its
real counterpart is never built (no RPC client, no key file)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from pymongo.database import Database

from motcua_common.auth import TokenVerifier
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.deps import ServiceDeps, open_database
from motcua_common.ratelimit import FixedWindowLimiter

from . import payment_provider
from .citizen_directory import CitizenDirectory
from .officer_directory import OfficerDirectory
from .payment_provider import PaymentSetup
from .signing_keys import ResultKeys
from .ward_directory import WardDirectory
from .working_days import WorkingCalendar

SERVICE = "dossier"
# The public lookup by receipt code: per client address, a fixed one-minute window.
LOOKUPS_PER_WINDOW = 20
LOOKUP_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class Deps(ServiceDeps):
    citizens: CitizenDirectory        # identity's citizens, asked by RPC (submission)
    wards: WardDirectory              # the wards: this service's record (WardOpened), else identity by RPC
    officers: OfficerDirectory        # identity's officers: is X an active officer of ward W? (RPC)
    calendar: WorkingCalendar         # the national calendar; exceptions are read per request
    result_keys: ResultKeys           # the authority and the wards' keys that sign results
    payments: PaymentSetup            # the payment provider (None: fees at the counter) and its secret
    lookup_limiter: FixedWindowLimiter  # the public lookup's rate limit, shared by every API process
    # MOTCUA_PUBLIC_URL: the platform's public address (https://motcua.danang.gov.vn), printed
    # on results for anyone to check them. Unset (one machine): the address the approving
    # request came in on (verification.public_base).
    public_url: str | None = None


def lookup_limiter(db: Database) -> FixedWindowLimiter:
    return FixedWindowLimiter(db, "lookups", LOOKUPS_PER_WINDOW, LOOKUP_WINDOW)


def public_url_from_env(env=None) -> str | None:
    """MOTCUA_PUBLIC_URL without its trailing slash; None when unset. A value that is no
    http(s) address stops the service at start rather than printing it on results."""
    value = ((os.environ if env is None else env).get("MOTCUA_PUBLIC_URL") or "").strip().rstrip("/")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("MOTCUA_PUBLIC_URL must be an http(s) address such as https://motcua.example.vn")
    return value


def _recorded_ward(db: Database, ward_id: str) -> dict | None:
    from .store import get_ward  # store imports nothing of deps; kept local all the same

    return get_ward(db, ward_id)


def build_deps(settings: Settings, **overrides) -> Deps:
    """The dossier service's dependencies; `overrides` (any field of Deps) replace the
    real ones — tests pass stand-ins for identity, the clock, the keys, the provider."""
    unknown = set(overrides) - {f for f in Deps.__dataclass_fields__}
    if unknown:
        raise TypeError(f"build_deps: no such dependency: {', '.join(sorted(unknown))}")
    given = {name: value for name, value in overrides.items() if value is not None}
    db = given["db"] if "db" in given else open_database(settings, SERVICE)
    makers = {
        "verifier": lambda: TokenVerifier.from_url(settings.jwks_url),
        "clock": lambda: SystemClock(settings.timezone),
        "citizens": lambda: CitizenDirectory(settings),
        "wards": lambda: WardDirectory(settings, local=lambda ward_id: _recorded_ward(db, ward_id)),
        "officers": lambda: OfficerDirectory(settings),
        "calendar": WorkingCalendar,
        "result_keys": lambda: ResultKeys.from_settings(settings),
        "payments": lambda: payment_provider.from_env(settings.data_dir),
        "lookup_limiter": lambda: lookup_limiter(db),
        "public_url": public_url_from_env,
    }
    chosen = {name: given[name] if name in given else make() for name, make in makers.items()}
    return Deps(service=SERVICE, settings=settings, db=db, **chosen)
