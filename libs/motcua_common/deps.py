"""What every service's use cases, pages and API need, typed: a service's own `deps.py`
extends `ServiceDeps` with what it alone uses (its store, keys, gateways) and builds it in
`build_deps(settings, **overrides)`, which the API, the worker, the CLI and the tests all
call. Frozen: dependencies are chosen once, at start, never swapped mid-request."""
from __future__ import annotations

from dataclasses import dataclass, field

from pymongo.database import Database

from .auth import TokenVerifier
from .clock import SystemClock
from .config import Settings
from .mongo import connect, service_database


@dataclass(frozen=True)
class ServiceDeps:
    service: str
    settings: Settings
    db: Database
    verifier: TokenVerifier
    clock: SystemClock = field(default_factory=SystemClock)


def open_database(settings: Settings, service: str) -> Database:
    """The service's own database on the configured server (one client per process)."""
    return service_database(connect(settings), settings, service)
