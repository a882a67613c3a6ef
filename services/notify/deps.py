"""What notify's use cases need, chosen once at start: the shared ServiceDeps (service,
settings, database, token verifier, clock) and what notify alone uses — the sending
options, the broadcast throttle, the receipts' validity period, and, in the worker only,
the SMS gateways and the mail server.

`build_deps(settings, **overrides)` is the one place they are made: create_app, the
worker and the tests all call it (tests override the database, the clock, the gateway)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from motcua_common.auth import TokenVerifier
from motcua_common.config import Settings
from motcua_common.deps import ServiceDeps, open_database

from .mail import mail_gateway_for
from .routing import GatewayPool, pool_from_env
from .sender import SendOptions

SERVICE = "notify"


@dataclass(frozen=True)
class Deps(ServiceDeps):
    # The sending knobs (sender.py). The API sends nothing: it only needs `unaccented`.
    options: SendOptions = field(default_factory=SendOptions)
    # NOTIFY_BROADCAST_PER_SECOND: a broadcast's messages fall due this many a second [5].
    broadcast_per_second: float = 5.0
    # SMS_VALIDITY_SECONDS: a sent SMS with no receipt after this long is `expired` [86400].
    validity_seconds: float = 86400.0
    # KANNEL_REPORTS_VIA_PROXY: whether Kannel's delivery reports may come through a proxy
    # (a request carrying X-Forwarded-For or Forwarded) [false: Kannel calls notify directly
    # on the internal network, and a report through the public ingress is refused].
    kannel_reports_via_proxy: bool = False
    # The worker's SMS gateways (routing.py) and mail server (mail.py); None in the API.
    gateway: GatewayPool | None = None
    mail: object | None = None


def build_deps(settings: Settings | None = None, outbound: bool = False, env: dict | None = None,
               **overrides) -> Deps:
    """notify's dependencies. `outbound`: also the gateways and the sending options from
    the environment (the worker); the API and the tests leave it off. Any field may be
    given in `overrides`, and is then not made here (no database client for a given db)."""
    settings = settings or Settings.from_env()
    env = os.environ if env is None else env
    made: dict = {"service": SERVICE, "settings": settings}
    # Each process reads the knobs it uses, and only those: a bad value in the other's
    # stops neither from starting.
    if outbound:
        made["validity_seconds"] = float(env.get("SMS_VALIDITY_SECONDS", "86400"))
    else:
        made["broadcast_per_second"] = float(env.get("NOTIFY_BROADCAST_PER_SECOND", "5"))
        made["kannel_reports_via_proxy"] = (env.get("KANNEL_REPORTS_VIA_PROXY") or "").strip().lower() in (
            "1", "true", "yes", "on")
    if "options" not in overrides:
        made["options"] = (SendOptions.from_env(settings, env) if outbound
                           else SendOptions(unaccented=settings.sms_unaccented))
    options = overrides.get("options", made.get("options"))
    if outbound and "gateway" not in overrides:
        made["gateway"] = pool_from_env(settings.sms_gateway_url, env, options.gateway_timeout_seconds)
    if outbound and "mail" not in overrides:
        made["mail"] = mail_gateway_for(env.get("SMTP_URL"), env.get("SMTP_FROM", "motcua@localhost"),
                                        options.gateway_timeout_seconds)
    if "db" not in overrides:
        made["db"] = open_database(settings, SERVICE)
    if "verifier" not in overrides:
        made["verifier"] = TokenVerifier.from_url(settings.jwks_url)
    return Deps(**{**made, **overrides})
