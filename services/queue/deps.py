"""What the queue's use cases need, built once per process: the shared pieces
(motcua_common.deps.ServiceDeps: settings, database, token verifier, clock) and the
queue's own — its store, the reference-data cache, the kiosk device keys, the bound on
open board streams and the limit on anonymous device heartbeats. `build_deps` is what create_app, the worker and the tests call; a
keyword overrides any piece (a FixedClock, another database, no device keys)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from pymongo.database import Database

from motcua_common.auth import TokenVerifier
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.deps import ServiceDeps, open_database
from motcua_common.ratelimit import FixedWindowLimiter

from .board import MAX_BOARD_STREAMS
from .cache import ReferenceCache
from .devices import DeviceKeys
from .heartbeats import ANONYMOUS_HEARTBEATS_PER_MINUTE
from .store import QueueStore

SERVICE = "queue"


@dataclass(frozen=True, kw_only=True)
class Deps(ServiceDeps):
    store: QueueStore
    cache: ReferenceCache
    devices: DeviceKeys | None          # None in the worker: it never reads a kiosk's cookie
    board_streams: threading.BoundedSemaphore
    heartbeat_limiter: FixedWindowLimiter   # anonymous device heartbeats, per client address and ward

    @property
    def mongo_client(self):
        """The database's client (tests close it; tests/chaos reads it by this name)."""
        return self.db.client


class CallableClock(SystemClock):
    """create_app's `clock` was once a function returning an aware UTC datetime, and some
    callers (tests/chaos) still pass one: that function, behind the one clock's interface."""

    def __init__(self, now: Callable[[], datetime], tz_name: str):
        super().__init__(tz_name)
        self._now = now

    def now(self) -> datetime:
        return self._now()


def as_clock(clock, tz_name: str) -> SystemClock:
    return clock if isinstance(clock, SystemClock) else CallableClock(clock, tz_name)


def heartbeat_limiter(db: Database) -> FixedWindowLimiter:
    """The anonymous heartbeats' limit (heartbeats.py), shared by every API process."""
    return FixedWindowLimiter(db, "heartbeats", ANONYMOUS_HEARTBEATS_PER_MINUTE, timedelta(minutes=1))


def build_deps(settings: Settings, **overrides) -> Deps:
    """The queue's dependencies; only the pieces not given in `overrides` are made."""
    db = overrides.pop("db") if "db" in overrides else open_database(settings, SERVICE)
    makers = {
        "verifier": lambda: TokenVerifier.from_url(settings.jwks_url),
        # The ward's day (ticket numbers restart at local midnight) in the configured zone.
        "clock": lambda: SystemClock(settings.timezone),
        "store": lambda: QueueStore(db),
        "cache": ReferenceCache,
        "devices": lambda: DeviceKeys.load_or_create(settings.data_dir),
        "board_streams": lambda: threading.BoundedSemaphore(MAX_BOARD_STREAMS),
        "heartbeat_limiter": lambda: heartbeat_limiter(db),
    }
    unknown = set(overrides) - set(makers)
    if unknown:
        raise TypeError(f"build_deps: unknown dependencies {sorted(unknown)}")
    parts = {name: overrides[name] if name in overrides else make() for name, make in makers.items()}
    return Deps(service=SERVICE, settings=settings, db=db, **parts)
