"""What the rating use cases need, built once per process. Rating needs nothing beyond
the shared pieces (motcua_common.deps.ServiceDeps: settings, its database, the token
verifier, the clock) — its store is a module of plain functions of the database — but it
has its own Deps type so that the API, the worker and the tests all build it one way:
`build_deps(settings, **overrides)`."""
from __future__ import annotations

from dataclasses import dataclass

from motcua_common.auth import TokenVerifier
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.deps import ServiceDeps, open_database

SERVICE = "rating"


@dataclass(frozen=True)
class Deps(ServiceDeps):
    pass


def build_deps(settings: Settings, **overrides) -> Deps:
    """The rating dependencies; only the pieces not given in `overrides` are made."""
    db = overrides.pop("db") if "db" in overrides else open_database(settings, SERVICE)
    makers = {
        "verifier": lambda: TokenVerifier.from_url(settings.jwks_url),
        # Reporting periods are local days in the configured zone.
        "clock": lambda: SystemClock(settings.timezone),
    }
    unknown = set(overrides) - set(makers)
    if unknown:
        raise TypeError(f"build_deps: unknown dependencies {sorted(unknown)}")
    parts = {name: overrides[name] if name in overrides else make() for name, make in makers.items()}
    return Deps(service=SERVICE, settings=settings, db=db, **parts)
