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
from .revocations import RevocationList


@dataclass(frozen=True)
class ServiceDeps:
    service: str
    settings: Settings
    db: Database
    verifier: TokenVerifier
    clock: SystemClock = field(default_factory=SystemClock)
    # Accounts whose earlier tokens every service refuses (revocations.py); made from `db`
    # unless given.
    revocations: RevocationList | None = None

    def __post_init__(self):
        if self.revocations is None and self.db is not None:
            object.__setattr__(self, "revocations", RevocationList(self.db))


def open_database(settings: Settings, service: str) -> Database:
    """The service's own database on the configured server (one client per process)."""
    return service_database(connect(settings), settings, service)


def deps_provider(build):
    """A nameko DependencyProvider class that hands every worker of a container the
    service's Deps, made once by `build(settings)` (the service's build_deps) and closed
    with the container. `class Worker: deps = deps_provider(build_deps)()`."""
    from nameko.extensions import DependencyProvider

    from .config import Settings

    class DepsProvider(DependencyProvider):
        def setup(self):
            settings = self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
            self.deps = build(settings)

        def stop(self):
            client = getattr(self.deps.db, "client", None)
            if client is not None:
                client.close()

        def get_dependency(self, worker_ctx):
            return self.deps

    return DepsProvider
