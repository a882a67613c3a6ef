"""The citizen's session in the web pages (`/identity/register`, `/identity/login`,
`/dossier/portal`): the same signed access token the API takes as a bearer, kept in a
cookie so that plain HTML forms work without JavaScript.

Why a cookie and not local storage: the pages must work without scripts, and an HttpOnly
cookie is out of reach of any script that might get onto a page. Every service is under
the same origin (one ingress, one prefix per service), so a cookie on "/" reaches them all.

Cross-site request forgery: the session cookie is SameSite=Lax (a form posted from another
site does not carry it), and every form also carries a token that must equal the
`motcua_csrf` cookie (double submit); `check_csrf()` refuses a POST without it."""
from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, urlsplit

from flask import Request, Response, g, request

from .auth import Principal, TokenVerifier

SESSION_COOKIE = "motcua_session"
CSRF_COOKIE = "motcua_csrf"
# Behind TLS the cookies carry the __Host- prefix: the browser then keeps them only if they
# came over HTTPS, for this host alone (no Domain), on "/" — a neighbouring subdomain or a
# plain-HTTP answer cannot plant or replace them.
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
SECURE_CSRF_COOKIE = "__Host-" + CSRF_COOKIE
CSRF_FIELD = "csrf_token"


class CsrfRefused(Exception):
    """A form post without the token of this browser's CSRF cookie."""


def _secure(req: Request) -> bool:
    return req.is_secure  # behind the ingress: X-Forwarded-Proto through the trusted proxies


def _session_name() -> str:
    return SECURE_SESSION_COOKIE if _secure(request) else SESSION_COOKIE


def _csrf_name() -> str:
    return SECURE_CSRF_COOKIE if _secure(request) else CSRF_COOKIE


def set_session(response: Response, token: str, max_age_seconds: int) -> None:
    """Keep `token` (an access token from identity) as the browser's session."""
    response.set_cookie(_session_name(), token, max_age=max_age_seconds, path="/", httponly=True,
                        secure=_secure(request), samesite="Lax")


def clear_session(response: Response) -> None:
    response.delete_cookie(_session_name(), path="/", httponly=True, secure=_secure(request), samesite="Lax")


def session_principal(verifier: TokenVerifier) -> Principal | None:
    """The signed-in citizen (or officer) of this request, or None: no cookie, or a token
    that is expired, forged or signed with a retired key."""
    token = request.cookies.get(SECURE_SESSION_COOKIE) or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = verifier.verify(token)
    except Exception:  # any refusal means "not signed in": the page offers to sign in again
        return None
    # A session ended early (an officer deactivated, a citizen's phone corrected) is not a
    # session any more, on pages as in the API.
    from flask import current_app

    revocations = getattr(current_app.extensions.get("motcua"), "revocations", None)
    if revocations is not None and revocations.is_revoked(principal.subject, principal.issued_at):
        return None
    return principal


def signed_in() -> Principal | None:
    """This request's signed-in account (session_principal, once per request), for the
    service's pages: the service's own token verifier."""
    if "session_principal" not in g:
        from flask import current_app

        g.session_principal = session_principal(current_app.extensions["motcua"].verifier)
    return g.session_principal


def login_here() -> str:
    """identity's sign-in page, coming back to this very page afterwards."""
    return "/identity/login?next=" + quote(request.full_path.rstrip("?"), safe="/")


def csrf_token() -> str:
    """The token to put in this page's forms (`<input type="hidden" name="csrf_token">`);
    `issue_csrf_cookie` must then set the cookie on the response."""
    if "csrf_token" not in g:
        g.csrf_token = request.cookies.get(_csrf_name()) or secrets.token_urlsafe(32)
    return g.csrf_token


def issue_csrf_cookie(response: Response) -> Response:
    """After-request hook for page blueprints: the cookie behind csrf_token()."""
    if "csrf_token" in g and request.cookies.get(_csrf_name()) != g.csrf_token:
        response.set_cookie(_csrf_name(), g.csrf_token, path="/", httponly=True, secure=_secure(request),
                            samesite="Strict")
    return response


def check_csrf() -> None:
    """Refuse a form post whose token does not match this browser's cookie."""
    cookie = request.cookies.get(_csrf_name(), "")
    sent = request.form.get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfRefused()


def local_path(target: str | None, default: str) -> str:
    """`next=` after signing in: only a path on this site (never `//host` or a URL), so the
    sign-in page cannot be used to send a citizen to someone else's site."""
    if not target or "\\" in target:
        return default
    # Browsers drop tabs and line breaks from URLs ("/\t/evil.example" is "//evil.example"
    # to them), and a line break in a Location header breaks the answer: any control
    # character or space makes the target unsafe, as does anything that is not a path.
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return default
    parsed = urlsplit(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target
