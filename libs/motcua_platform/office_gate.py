"""Officers sign in at their ward office, with the WAN link to the centre up or down
(CONTRACT.md "Ward offices").

The office (`motcua up --profile edge`) runs no identity. Its own address answers
`POST /identity/api/v1/sessions` and `GET /identity/.well-known/jwks.json` here:

* Link up: the sign-in goes to the centre's identity and its answer comes back unchanged
  (the centre's limits, lockout and audit apply). When the centre says yes to an officer of
  this ward, the office keeps what it needs to say yes again without it: the account id,
  role and an argon2 hash of that password (never the password) — credentials of the
  office's own officers, delivered by the centre at their sign-in. When the centre says no
  (a changed password, a deactivated account), the office forgets that officer.
* Link down (unreachable, timing out, or answering 5xx): the office checks the password
  against what it kept and signs an office token with its own key, valid for a working day
  (OFFICE_TOKEN_HOURS), so counters keep working through an outage of a day. An officer who
  never signed in here while the link was up cannot sign in until it returns (503
  `centre_unreachable`, said plainly).
* The office's services verify tokens against the office's JWKS: the centre's keys (kept
  on disk) and the office key. The centre never trusts the office key.

What the office cannot know while cut off: an officer deactivated, re-roled or given a new
password at the centre during the outage still signs in at the office with the old
password until the link returns. Then SessionsRevoked arrives (downlink) and every token
issued before it reached the office — office tokens included — is refused, and the kept
credential is dropped at the next sign-in."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Response, request

from motcua_common.auth import WARD_STAFF_ROLES, SigningKey
from motcua_common.jwks_cache import read_cached
from motcua_common.mongo import connect, service_database
from motcua_common.revocations import COLLECTION as REVOKED

log = logging.getLogger(__name__)

OFFICE_TOKEN_HOURS = 12
CENTRE_TIMEOUT_SECONDS = 4.0
CREDENTIALS = "office_credentials"
FAILED_LIMIT = 5            # wrong passwords in a row, offline, before a pause
PAUSE_SECONDS = 15 * 60


def _problem(status: int, code: str, title: str, detail: str) -> Response:
    body = {"type": f"https://motcua.gov.vn/problems/{code}", "title": title, "status": status, "code": code,
            "detail": detail, "instance": request.path}
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json")


class OfficeGate:
    def __init__(self, settings, ward_id: str, central: str, jwks_cache: Path, hasher: PasswordHasher | None = None):
        self.ward_id, self.central = ward_id, central.rstrip("/")
        self.jwks_cache = Path(jwks_cache)
        self.key = SigningKey.load_or_create(Path(settings.data_dir) / "keys" / "office-signing.pem",
                                             honour_environment=False)
        client = connect(settings)
        self.db = service_database(client, settings, "office")
        self.revocations = service_database(client, settings, "queue")[REVOKED]
        self.hasher = hasher or PasswordHasher()
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the keys the office trusts
    def jwks(self) -> dict:
        """The centre's keys (fetched now when the link works, else the copy on disk) and
        the office key."""
        from motcua_common.jwks_cache import on_disk

        def fetch() -> dict:
            answer = requests.get(f"{self.central}/identity/.well-known/jwks.json", timeout=CENTRE_TIMEOUT_SECONDS)
            answer.raise_for_status()
            return answer.json()

        try:
            central = on_disk(fetch, self.jwks_cache)()
        except Exception:
            central = read_cached(self.jwks_cache) or {"keys": []}
        return {"keys": [k for k in central["keys"] if k.get("kid") != self.key.kid] + [self.key.public_jwk]}

    # ------------------------------------------------------------ signing in
    def sign_in(self, body: dict) -> tuple[dict, int]:
        username = str(body.get("username") or "").strip().lower()
        password = body.get("password")
        if not username or not isinstance(password, str) or not password:
            return {"code": "validation_failed"}, 422
        try:
            answer = requests.post(f"{self.central}/identity/api/v1/sessions", json=body,
                                   timeout=CENTRE_TIMEOUT_SECONDS)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code < 500:
            self._learn(username, password, answer)
            try:
                return answer.json(), answer.status_code
            except ValueError:
                return {"code": "bad_gateway"}, 502
        log.warning("the centre is unreachable: signing in at the office", extra={"ward_id": self.ward_id})
        return self._sign_in_here(username, password)

    def _learn(self, username: str, password: str, answer) -> None:
        if answer.status_code == 401:
            self.db[CREDENTIALS].delete_one({"_id": username})
            return
        if answer.status_code != 200:
            return
        data = answer.json()
        if data.get("role") not in WARD_STAFF_ROLES or data.get("ward_id") != self.ward_id:
            return  # citizens and other wards' staff are the centre's business only
        import jwt

        subject = jwt.decode(data["access_token"], options={"verify_signature": False}).get("sub")
        self.db[CREDENTIALS].replace_one({"_id": username}, {
            "_id": username, "subject": subject, "role": data["role"], "ward_id": data["ward_id"],
            "must_change_password": bool(data.get("must_change_password")),
            "password_hash": self.hasher.hash(password), "learned_at": datetime.now(timezone.utc),
        }, upsert=True)

    def _paused(self, username: str) -> bool:
        with self._lock:
            count, since = self._failures.get(username, (0, 0.0))
            if count >= FAILED_LIMIT and time.monotonic() - since < PAUSE_SECONDS:
                return True
            if count >= FAILED_LIMIT:
                self._failures.pop(username, None)
            return False

    def _failed(self, username: str) -> None:
        with self._lock:
            count, _ = self._failures.get(username, (0, 0.0))
            self._failures[username] = (count + 1, time.monotonic())

    def _sign_in_here(self, username: str, password: str) -> tuple[dict, int]:
        if self._paused(username):
            return {"code": "locked"}, 423
        kept = self.db[CREDENTIALS].find_one({"_id": username})
        if kept is None:
            return {"code": "centre_unreachable"}, 503
        try:
            self.hasher.verify(kept["password_hash"], password)
        except (VerificationError, InvalidHashError):
            self._failed(username)
            return {"code": "invalid_credentials"}, 401
        revoked = self.revocations.find_one({"_id": kept["subject"]})
        learned_at = kept["learned_at"].replace(tzinfo=kept["learned_at"].tzinfo or timezone.utc)
        if revoked and revoked["revoked_before"].replace(tzinfo=timezone.utc) >= learned_at:
            self.db[CREDENTIALS].delete_one({"_id": username})
            return {"code": "invalid_credentials"}, 401
        with self._lock:
            self._failures.pop(username, None)
        ttl = OFFICE_TOKEN_HOURS * 3600
        token = self.key.issue(kept["subject"], kept["role"], kept["ward_id"], ttl,
                               must_change_password=kept["must_change_password"], username=username)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                "must_change_password": kept["must_change_password"], "role": kept["role"],
                "ward_id": kept["ward_id"], "issued_by": "office"}, 200


_REFUSALS = {
    422: ("validation_failed", "Dữ liệu không hợp lệ", "Nhập tên đăng nhập và mật khẩu. / Username and password required."),
    401: ("invalid_credentials", "Sai tên đăng nhập hoặc mật khẩu",
          "Tên đăng nhập hoặc mật khẩu không đúng. / Wrong username or password."),
    423: ("locked", "Tạm khóa đăng nhập",
          "Nhập sai mật khẩu nhiều lần; thử lại sau 15 phút. / Too many wrong passwords; try again in 15 minutes."),
    503: ("centre_unreachable", "Chưa kết nối được trung tâm",
          "Văn phòng đang mất kết nối với trung tâm và chưa có thông tin đăng nhập của tài khoản này "
          "(cán bộ cần đăng nhập tại đây một lần khi có kết nối). / The office is cut off from the centre "
          "and has not seen this account sign in here yet."),
    502: ("bad_gateway", "Trung tâm trả lời không hợp lệ", "The centre's answer could not be read."),
}

CATALOG_PATH = "/dossier/api/v1/procedures"
LOOKUP_PATH = "/dossier/api/v1/lookup"


class CentreLookups:
    """The kiosk's procedure and dossier lookups at an office, which runs no dossier service:
    answered by the centre when the link is up; the catalog from the copy kept at the office
    (refreshed by every answer) when it is down; a dossier lookup said plainly impossible
    then (the dossiers live at the centre)."""

    def __init__(self, central: str, catalog_cache: Path):
        self.central, self.catalog_cache = central.rstrip("/"), Path(catalog_cache)

    def catalog(self) -> tuple[object, int, dict]:
        try:
            answer = requests.get(self.central + CATALOG_PATH, timeout=CENTRE_TIMEOUT_SECONDS)
            if answer.status_code == 200:
                from motcua_common.jwks_cache import write_cached

                procedures = answer.json()
                write_cached(self.catalog_cache, {"procedures": procedures,
                                                  "kept_at": datetime.now(timezone.utc).isoformat()})
                return procedures, 200, {}
        except (requests.RequestException, ValueError):
            pass
        try:
            kept = json.loads(self.catalog_cache.read_text(encoding="utf-8"))
            return kept["procedures"], 200, {"X-Motcua-Kept-At": kept["kept_at"]}
        except (OSError, ValueError, KeyError):
            return {"code": "centre_unreachable", "detail": "Văn phòng chưa có danh mục thủ tục và đang mất kết nối "
                    "với trung tâm; xin hỏi cán bộ tại quầy. / The office has no catalog yet and is cut off."}, 503, {}

    def lookup(self, query: str) -> tuple[object, int, dict]:
        try:
            answer = requests.get(f"{self.central}{LOOKUP_PATH}?{query}", timeout=CENTRE_TIMEOUT_SECONDS)
            headers = {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"}
            return answer.json(), answer.status_code, headers
        except (requests.RequestException, ValueError):
            return {"code": "centre_unreachable", "detail": "Văn phòng đang mất kết nối với trung tâm nên chưa tra cứu "
                    "được hồ sơ. Xin thử lại sau hoặc hỏi cán bộ tại quầy. / The office is cut off from the centre."}, 503, {}


def gate_app(gate: OfficeGate, lookups: CentreLookups | None = None) -> Flask:
    app = Flask("motcua_office_gate")
    app.json.ensure_ascii = False

    def _answer(body, status: int, headers: dict) -> Response:
        if status >= 400 and isinstance(body, dict) and body.get("code") == "centre_unreachable":
            return _problem(status, "centre_unreachable", "Chưa kết nối được trung tâm", body["detail"])
        response = Response(json.dumps(body, ensure_ascii=False), status=status,
                            mimetype="application/problem+json" if status >= 400 else "application/json")
        response.headers.update(headers)
        return response

    if lookups is not None:
        @app.get(CATALOG_PATH)
        def catalog():
            return _answer(*lookups.catalog())

        @app.get(LOOKUP_PATH)
        def lookup():
            return _answer(*lookups.lookup(request.query_string.decode("ascii", "replace")))

    @app.post("/identity/api/v1/sessions")
    def sessions():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            body = {}
        answer, status = gate.sign_in(body)
        if status in _REFUSALS and set(answer) == {"code"}:
            code, title, detail = _REFUSALS[status]
            return _problem(status, code, title, detail)
        return Response(json.dumps(answer, ensure_ascii=False), status=status,
                        mimetype="application/problem+json" if status >= 400 else "application/json")

    @app.get("/identity/.well-known/jwks.json")
    def jwks():
        return gate.jwks()

    return app


class OfficeRouter:
    """WSGI: the office gate's paths (and the desk's intake pages, office_desk.py), everything
    else to the office's services."""

    PATHS = ("/identity/api/v1/sessions", "/identity/.well-known/jwks.json", CATALOG_PATH, LOOKUP_PATH)
    PREFIXES = ("/dossier/desk/",)

    def __init__(self, gate_wsgi, services_wsgi):
        self.gate_wsgi, self.services_wsgi = gate_wsgi, services_wsgi

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in self.PATHS or path.startswith(self.PREFIXES):
            return self.gate_wsgi(environ, start_response)
        return self.services_wsgi(environ, start_response)
