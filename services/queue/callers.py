"""Who is calling, read from the HTTP request — shared by api.py and pages.py so that
neither imports the other: the service's deps, and the principal behind a bearer token or
a paired kiosk's device cookie. HTTP only; what a caller may do is decided by the use
cases."""
from __future__ import annotations

from flask import g, request

from motcua_common.auth import Principal
from motcua_common.http import current_principal, request_context

from . import kiosks
from .deps import Deps
from .devices import COOKIE_NAME


def deps() -> Deps:
    return request_context()


def kiosk_cookie() -> str | None:
    return request.cookies.get(COOKIE_NAME)


def paired_kiosk() -> Principal | None:
    """The kiosk device whose credential is in the request's cookie (devices.py)."""
    return kiosks.device_principal(deps(), None, kiosk_cookie())


def ticket_issuer() -> Principal | None:
    """A bearer token, or else the device cookie that pairing leaves; with --demo neither is
    needed (a credential that is sent must still be valid)."""
    if request.headers.get("Authorization") is None:
        kiosk = paired_kiosk()
        if kiosk is not None:
            g.principal = kiosk  # Idempotency-Key records are kept per device
    return current_principal(optional=deps().settings.demo)


def device_sender() -> Principal | None:
    """Who sends a device heartbeat: a bearer token (an officer's console, a kiosk token),
    else a paired kiosk's cookie, else nobody (a public board or rating screen)."""
    if request.headers.get("Authorization") is None:
        return paired_kiosk()
    return current_principal()
