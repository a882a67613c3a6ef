"""Flask plumbing shared by the five APIs: the app factory (health, readiness, metrics,
OpenAPI), RFC 9457 problem details with a stable `code`, bearer authentication, JSON body
checks and Idempotency-Key handling."""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Callable, Iterable

import yaml
from flask import Blueprint, Flask, Response, g, jsonify, request
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from werkzeug.exceptions import HTTPException

from . import metrics, tracing
from .auth import AuthError, Principal, TokenVerifier
from .config import Settings
from .deps import ServiceDeps
from .mongo import ping
from .outbox import IDEMPOTENCY, current_idempotency_record

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 * 1024 * 1024


# ---------------------------------------------------------------- problem details
# Defined without Flask in problems.py, so that use cases can refuse without importing
# the web layer; re-exported here for the routes.
from .problems import (  # noqa: E402,F401
    PROBLEM_JSON, Problem, ValidationFailed, field_error, forbidden, not_found, require_gateway_token,
)


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return exc.to_response()

    @app.errorhandler(AuthError)
    def _auth(exc: AuthError):
        headers = {"WWW-Authenticate": 'Bearer realm="motcua"'} if exc.status == 401 else {}
        return Problem(exc.status, exc.code, "Chưa xác thực" if exc.status == 401 else "Không thể xác thực",
                       exc.detail, headers=headers).to_response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = _HTTP_CODES.get(exc.code or 500, "http_error")
        return Problem(exc.code or 500, code, exc.name, exc.description).to_response()

    @app.errorhandler(PyMongoError)
    def _db(exc: PyMongoError):
        log.error("database error: %s", exc.__class__.__name__)
        return Problem(503, "service_unavailable", "Dịch vụ tạm thời gián đoạn",
                       "Cơ sở dữ liệu tạm thời không truy cập được, vui lòng thử lại. / Database unavailable, retry.",
                       headers={"Retry-After": "5"}).to_response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Problem(500, "internal_error", "Lỗi hệ thống",
                       "Đã có lỗi, vui lòng thử lại sau. / Something went wrong.").to_response()


# ---------------------------------------------------------------- request bodies
def json_body() -> dict:
    """The request's JSON object, or a 415/400 problem."""
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise Problem(413, "payload_too_large", "Dữ liệu quá lớn", "Nội dung gửi lên quá lớn. / Body too large.")
    if not request.is_json:
        raise Problem(415, "unsupported_media_type", "Sai định dạng",
                      "Hãy gửi JSON (Content-Type: application/json). / Send application/json.")
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except RecursionError as exc:  # thousands of nested arrays: refuse, never a 500
        raise Problem(400, "invalid_json", "JSON không hợp lệ",
                      "JSON lồng nhau quá sâu. / JSON nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid_json", "JSON không hợp lệ", f"Không đọc được JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Problem(400, "invalid_json", "JSON không hợp lệ", "Nội dung phải là một đối tượng JSON. / Body must be a JSON object.")
    return body


# ---------------------------------------------------------------- authentication
def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return None


def current_principal(optional: bool = False, allow_password_change: bool = False) -> Principal | None:
    """The caller, from the bearer token (cached on `g`)."""
    if "principal" not in g:
        token = _bearer_token()
        if token is None:
            if optional:
                return None
            raise AuthError("unauthorized", "Cần đăng nhập. / Authentication required.")
        context = request_context()
        verifier: TokenVerifier = context.verifier
        principal = verifier.verify(token)
        revocations = getattr(context, "revocations", None)
        if revocations is not None and revocations.is_revoked(principal.subject, principal.issued_at):
            raise AuthError("token_revoked", "Phiên đăng nhập đã bị chấm dứt, vui lòng đăng nhập lại. "
                                             "/ This session was ended; sign in again.")
        g.principal = principal
    principal: Principal = g.principal
    if principal.must_change_password and not allow_password_change:
        raise Problem(403, "password_change_required", "Cần đổi mật khẩu",
                      "Bạn cần đổi mật khẩu tạm thời trước khi tiếp tục (PUT /identity/api/v1/me/password). "
                      "/ Change your temporary password first.")
    return principal


def authenticated(*roles: str, allow_password_change: bool = False):
    """Route decorator: a valid token, and one of `roles` when given."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal(allow_password_change=allow_password_change)
            if roles and principal.role not in roles:
                raise forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorate


# ---------------------------------------------------------------- idempotency
_IN_PROGRESS_STALE = timedelta(seconds=60)


def ensure_idempotency_index(db: Database) -> None:
    db[IDEMPOTENCY].create_index("created_at", expireAfterSeconds=24 * 3600)


def idempotent(db: Database, scope: str, handler: Callable[[], tuple[dict, int]]) -> Response:
    """Answer `handler()` once per Idempotency-Key (and caller, and scope).

    The same key with the same body replays the first answer and creates nothing new;
    with another body it is refused (422 idempotency_key_reused)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        body, status = handler()
        return _json(body, status)
    if not 1 <= len(key) <= 200:
        raise Problem(400, "invalid_idempotency_key", "Idempotency-Key không hợp lệ",
                      "Idempotency-Key phải dài 1–200 ký tự. / Idempotency-Key must be 1-200 characters.")
    principal = g.get("principal")
    owner = principal.subject if principal else "anonymous"
    record_id = f"{scope}:{owner}:{key}"
    fingerprint = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    now = datetime.now(timezone.utc)
    try:
        db[IDEMPOTENCY].insert_one({"_id": record_id, "fingerprint": fingerprint, "state": "in_progress", "created_at": now})
    except DuplicateKeyError:
        existing = db[IDEMPOTENCY].find_one({"_id": record_id})
        if existing is None:
            return idempotent(db, scope, handler)
        if existing["fingerprint"] != fingerprint:
            raise Problem(422, "idempotency_key_reused", "Idempotency-Key đã dùng",
                          "Khóa này đã được dùng cho một yêu cầu khác. / This key was used with another body.")
        if existing["state"] == "done":
            response = _json(existing["body"], existing["status"])
            response.headers["Idempotent-Replayed"] = "true"
            return response
        if existing["state"] == "committed":
            # The first request's change committed but its answer was lost (a crash right
            # after the commit). Repeating it would make a second ticket or dossier.
            raise Problem(409, "idempotency_outcome_lost", "Yêu cầu trước đã được ghi nhận",
                          "Yêu cầu trước với khóa này đã được thực hiện nhưng câu trả lời bị mất; không tạo thêm. "
                          "/ The first request with this key took effect; its answer was lost. Nothing new was created.")
        created = existing["created_at"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        if now - created < _IN_PROGRESS_STALE:
            raise Problem(409, "idempotency_in_progress", "Yêu cầu đang được xử lý",
                          "Yêu cầu cùng khóa đang được xử lý, vui lòng thử lại sau giây lát. / Retry shortly.",
                          headers={"Retry-After": "2"})
        taken = db[IDEMPOTENCY].update_one({"_id": record_id, "state": "in_progress", "created_at": existing["created_at"]},
                                           {"$set": {"created_at": now}})
        if taken.modified_count == 0:
            return idempotent(db, scope, handler)  # someone else took it over or finished: look again
    marker = current_idempotency_record.set((db.name, record_id))
    try:
        body, status = handler()
    except Exception:
        # Only a claim whose change never committed may be released for a retry.
        db[IDEMPOTENCY].delete_one({"_id": record_id, "state": "in_progress"})
        raise
    finally:
        current_idempotency_record.reset(marker)
    if 200 <= status < 300:
        db[IDEMPOTENCY].update_one({"_id": record_id}, {"$set": {"state": "done", "status": status, "body": body}})
    else:
        db[IDEMPOTENCY].delete_one({"_id": record_id, "state": "in_progress"})
    return _json(body, status)


def _json(body, status: int) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status, mimetype="application/json")


# ---------------------------------------------------------------- security headers
# Pages load scripts and styles from their own origin only; the few inline scripts carry
# the response's nonce (`<script nonce="{{ csp_nonce() }}">`). Nothing is ever framed:
# a kiosk or counter console inside someone else's frame is a clickjacking target.
_PAGE_POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                "frame-ancestors 'none'")
# JSON, problem details, metrics, event streams: nothing in them may run or be framed.
_API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # Follow and pairing links carry ids and one-time codes: never leak them to another site.
    "Referrer-Policy": "no-referrer",
}


def csp_nonce() -> str:
    """This response's script nonce (one per request, from the OS's random source)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _register_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            # Reached over TLS (directly or through the trusted proxies): browsers keep to
            # HTTPS for this host from now on, so a session cookie never travels in clear.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "application/pdf":
            # A browser's PDF viewer runs inside the document: forbid only framing.
            policy = "frame-ancestors 'none'"
        elif response.mimetype == "text/html":
            policy = _PAGE_POLICY.format(nonce=csp_nonce())
        else:
            policy = _API_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        return response


# ---------------------------------------------------------------- the app factory
def request_context() -> ServiceDeps:
    """The service's deps (its own Deps, a ServiceDeps), as create_service_app was given them."""
    from flask import current_app

    return current_app.extensions["motcua"]


class BrokerProbe:
    """Is the broker reachable? Cached a few seconds so /readyz stays cheap."""

    def __init__(self, amqp_url: str, ttl: float = 5.0):
        self.amqp_url, self.ttl = amqp_url, ttl
        self._checked_at, self._ok = 0.0, False

    def __call__(self) -> bool:
        if time.monotonic() - self._checked_at < self.ttl:
            return self._ok
        import pika

        try:
            params = pika.URLParameters(self.amqp_url)
            params.socket_timeout = 2
            params.connection_attempts = 1
            pika.BlockingConnection(params).close()
            self._ok = True
        except Exception:
            self._ok = False
        self._checked_at = time.monotonic()
        return self._ok


def create_service_app(ctx: ServiceDeps, blueprints: Iterable[Blueprint], openapi_file: Path,
                       extra_collectors=()) -> Flask:
    service = ctx.service
    # root_path given explicitly: editable installs map packages through an import hook
    # that Flask cannot always trace back to a folder. Templates live beside openapi.yaml.
    root = Path(openapi_file).resolve().parent
    app = Flask(f"motcua_{service}", root_path=str(root), instance_path=str(root / "instance"))
    app.config["MAX_CONTENT_LENGTH"] = 12 * 1024 * 1024  # attachments are bounded again per route
    app.json.ensure_ascii = False
    app.extensions["motcua"] = ctx
    if ctx.settings.trusted_proxies:
        # Behind an ingress the client address is in X-Forwarded-For; trust exactly as many
        # hops as we run, so that per-client rate limits cannot be dodged by a forged header.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = ctx.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    broker_ok = BrokerProbe(ctx.settings.amqp_url)
    _register_error_handlers(app)
    _register_security_headers(app)
    metrics.instrument_flask(app, service)
    tracing.instrument_flask(app, service)

    ops = Blueprint(f"{service}_ops", __name__, url_prefix=f"/{service}")

    @ops.get("/healthz")
    def healthz():
        return {"status": "ok", "service": service}

    @ops.get("/readyz")
    def readyz():
        checks = {"database": ping(ctx.db), "broker": broker_ok()}
        if all(checks.values()):
            return {"status": "ready", "service": service, "checks": checks}
        raise Problem(503, "not_ready", "Chưa sẵn sàng", "Một thành phần phụ thuộc chưa sẵn sàng.", checks=checks)

    @ops.get("/metrics")
    def metrics_endpoint():
        output, content_type = metrics.render(extra_collectors)
        return Response(output, mimetype=content_type.split(";")[0], content_type=content_type)

    spec = yaml.safe_load(Path(openapi_file).read_text(encoding="utf-8"))

    @ops.get("/api/v1/openapi.json")
    def openapi():
        return jsonify(spec)

    app.register_blueprint(ops)
    for bp in blueprints:
        app.register_blueprint(bp)
    return app
