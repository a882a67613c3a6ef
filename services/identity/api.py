"""identity's HTTP API (CONTRACT.md "identity"): routes that turn a request into a use case
call (accounts, officers, wards, sms_inbound) and its answer or refusal (problems.py) back
into HTTP. `create_app` builds the dependencies once (deps.build_deps) and hands them to
the shared app factory; the routes find them with `request_context()`."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, jsonify, request

from motcua_common.auth import STAFF_ROLES, TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    ValidationFailed, authenticated, create_service_app, current_principal, field_error, idempotent, json_body,
    request_context,
)
from motcua_common.rpc import RpcUnavailable

from . import accounts, domain, officers, sms_inbound, wards
from .deps import (  # noqa: F401  (the limits are part of the API's contract; tests read them here)
    LOGINS_PER_CLIENT, LOGINS_PER_USERNAME, SMS_PER_PHONE, Deps, build_deps, key_ring,
)
from .errors import IdentityError
from .kannel_inbound import check_gateway, kannel
from .problems import problem_of, reply_channel_unavailable

log = logging.getLogger(__name__)
OPENAPI = Path(__file__).with_name("openapi.yaml")

api = Blueprint("identity_api", __name__, url_prefix="/identity")


@api.errorhandler(IdentityError)
def _refused(error: IdentityError):
    return problem_of(error).to_response()


def _deps() -> Deps:
    return request_context()


def _client() -> str:
    return request.remote_addr or ""  # the real client behind trusted proxies (MOTCUA_TRUSTED_PROXIES)


@api.get("/.well-known/jwks.json")
def jwks():
    response = jsonify(_deps().signing_key.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# ---------------------------------------------------------------- wards
@api.get("/api/v1/wards", endpoint="wards")
def list_wards():
    return jsonify(wards.public_list(_deps()))


@api.post("/api/v1/wards")
@authenticated("admin")
def create_ward():
    body = json_body()
    if "official_code" in body:
        # From the official list: name, province and kind come from the reference data.
        extra = sorted(set(body) - {"official_code", "ward_id", "target_population"})
        if extra:
            raise ValidationFailed([field_error(name, "Khi mở theo mã đơn vị hành chính, tên và tỉnh lấy từ danh mục: "
                                                      "bỏ trường này. / Not accepted with official_code.")
                                    for name in extra])
        ward = wards.open_ward(_deps(), current_principal(), body["official_code"], ward_id=body.get("ward_id"),
                               target_population=body.get("target_population"))
        return jsonify(ward), 201
    return jsonify(wards.create_ward(_deps(), current_principal(), body)), 201


@api.get("/api/v1/administrative-units")
def administrative_units():
    """The official communes, wards and special zones (anyone)."""
    return jsonify(wards.administrative_units(_deps(), request.args.get("province_code"), request.args.get("q")))


@api.get("/api/v1/wards/<ward_id>/officers")
@authenticated("admin", "ward_admin")
def ward_officers(ward_id: str):
    return jsonify(officers.list_officers(_deps(), current_principal(), ward_id))


@api.put("/api/v1/wards/<ward_id>/population")
@authenticated("admin")
def set_population(ward_id: str):
    body = json_body()
    return jsonify(wards.set_population(_deps(), current_principal(), ward_id, body.get("target_population")))


@api.get("/api/v1/wards/<ward_id>/coverage")
@authenticated()
def coverage(ward_id: str):
    return jsonify(wards.coverage(_deps(), current_principal(), ward_id))


# ---------------------------------------------------------------- citizens
@api.post("/api/v1/citizens")
def register():
    deps, principal = _deps(), current_principal(optional=True)
    body = json_body()
    accounts.check_registrar(principal)
    client = _client()
    return idempotent(deps.db, "citizens", lambda: accounts.register_citizen(deps, principal, body, client))


@api.get("/api/v1/me/export")
@authenticated("citizen")
def export_own_data():
    """The signed-in citizen's data as identity holds it (Decree 13/2023)."""
    response = jsonify(accounts.export_own_data(_deps(), current_principal()))
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = 'attachment; filename="motcua-du-lieu-ca-nhan.json"'
    return response


@api.post("/api/v1/citizens/<citizen_id>/phone-verification")
def verify_phone(citizen_id: str):
    """A web registration's phone proven by the code sent there: the account is active."""
    body = json_body()
    return jsonify(accounts.verify_phone(_deps(), citizen_id, body.get("code"), _client()))


@api.post("/api/v1/citizens/<citizen_id>/phone-verification/code")
def resend_phone_code(citizen_id: str):
    """Another code for a web registration still waiting for its phone's proof."""
    return jsonify(accounts.resend_phone_code(_deps(), citizen_id, _client())), 202


@api.post("/api/v1/citizens/by-national-id/release")
@authenticated(*STAFF_ROLES)
def release_national_id():
    """At the counter, the card checked: the account that took this CCCD is deactivated and
    the CCCD freed for its real owner."""
    return jsonify(accounts.release_national_id(_deps(), current_principal(), json_body(), _client()))


@api.patch("/api/v1/citizens/<citizen_id>")
@authenticated(*STAFF_ROLES)
def correct_citizen(citizen_id: str):
    """At the counter, the CCCD checked: the citizen's ward or phone corrected."""
    return jsonify(accounts.correct_citizen(_deps(), current_principal(), citizen_id, json_body(), _client()))


@api.put("/api/v1/citizens/by-national-id")
@authenticated(*STAFF_ROLES)
def correct_citizen_by_national_id():
    """The same, found by the national id in the body (never in a URL)."""
    return jsonify(accounts.correct_citizen_by_national_id(_deps(), current_principal(), json_body(), _client()))


@api.post("/api/v1/citizens/<citizen_id>/temporary-password")
@authenticated(*STAFF_ROLES)
def reissue_temporary_password(citizen_id: str):
    """At the counter, for a citizen who lost or never got their password."""
    return jsonify(accounts.reissue_temporary_password(_deps(), current_principal(), citizen_id, _client()))


# ---------------------------------------------------------------- sessions and passwords
@api.post("/api/v1/sessions")
def login():
    body = json_body()
    return jsonify(accounts.sign_in(_deps(), body.get("username"), body.get("password"), _client()))


@api.put("/api/v1/me/password")
@authenticated(allow_password_change=True)
def change_password():
    principal = current_principal(allow_password_change=True)
    body = json_body()
    accounts.change_own_password(_deps(), principal, body.get("current_password"), body.get("new_password"), _client())
    return "", 204


# ---------------------------------------------------------------- officers
@api.post("/api/v1/officers")
@authenticated("admin", "ward_admin")
def create_officer():
    officer_id = officers.create_officer(_deps(), current_principal(), json_body(), _client())
    return jsonify({"officer_id": officer_id}), 201


@api.patch("/api/v1/officers/<officer_id>")
@authenticated("admin", "ward_admin")
def update_officer(officer_id: str):
    return jsonify(officers.update_officer(_deps(), current_principal(), officer_id, json_body(), _client()))


@api.post("/api/v1/officers/<officer_id>/password-reset")
@authenticated("admin", "ward_admin")
def reset_officer_password(officer_id: str):
    """A temporary password, in this answer only (never stored in clear, never sent)."""
    response = jsonify(officers.reset_password(_deps(), current_principal(), officer_id, _client()))
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- SMS short code
@api.post("/api/v1/sms/inbound", endpoint="sms_inbound")
def receive_sms():
    deps = _deps()
    check_gateway(deps, request.headers.get("X-Gateway-Token", ""))
    body = json_body()
    phone = domain.normalise_phone(body.get("from"))
    text = body.get("text")
    errors = []
    if phone is None:
        errors.append(field_error("from", "Số điện thoại gửi đến không hợp lệ. / Invalid sender number."))
    if not isinstance(text, str) or len(text) > 640:
        errors.append(field_error("text", "Nội dung tin nhắn phải là chuỗi tối đa 640 ký tự."))
    if errors:
        raise ValidationFailed(errors)
    try:
        outcome = sms_inbound.receive(deps, phone, text, body.get("id"))
    except RpcUnavailable:
        # 503 makes the gateway retry; a retried DK re-issues the password (sms_inbound).
        raise reply_channel_unavailable("Không gửi được tin trả lời, cổng tin nhắn sẽ gửi lại. / Reply channel unavailable.")
    if isinstance(outcome, sms_inbound.RateLimited):
        # Answered 200 so the gateway does not resend.
        return jsonify({"outcome": "rate_limited", "retry_after": outcome.retry_after})
    return jsonify({"command": outcome.command, "outcome": outcome.result})


# ---------------------------------------------------------------- the app
def create_app(settings: Settings | None = None, verifier: TokenVerifier | None = None, **overrides):
    """identity's Flask app. `overrides` are handed to build_deps: tests replace the clock,
    the signing key, send_reply (notify) and dossier_status (dossier) there."""
    deps = build_deps(settings or Settings.from_env(), verifier=verifier, **overrides)
    from .admin_pages import admin  # the platform's wards, a ward's officers
    from .pages import pages  # registration, sign-in, password change, sign-out
    return create_service_app(deps, [api, kannel, pages, admin], OPENAPI,
                              extra_collectors=[CoverageCollector(deps), WardInfoCollector(deps)])


class _CachedRows:
    """Rows read from the database at most once every CACHE_SECONDS, whatever the scrape rate
    (Prometheus every 15–30 s, several of them, each identity API process scraped alike): a
    scrape reads the database only when the rows are older than that. A read that fails
    keeps the last rows (a scrape never fails for it)."""

    CACHE_SECONDS = 30.0

    def __init__(self, deps: Deps, clock=None):
        import threading
        import time

        self.deps = deps
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._rows: list = []

    def read(self) -> list:
        raise NotImplementedError

    def rows(self) -> list:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.CACHE_SECONDS:
                try:
                    self._rows = self.read()
                except Exception:
                    log.warning("%s not refreshed: the database did not answer", type(self).__name__)
                    if self._read_at is None:
                        return []
                self._read_at = now
            return self._rows


# The coverage series and their labels (the dashboards' checks read them here).
COVERAGE_METRICS = {"motcua_citizens_registered_18_60": ("ward_id",), "motcua_ward_population": ("ward_id",),
                    "motcua_registration_coverage_ratio": ("ward_id",)}


class CoverageCollector(_CachedRows):
    """R3 for the monitoring centre, per ward: registered citizens aged 18–60 (the numerator),
    the ward's target population (the denominator, motcua_ward_population; wards whose
    population is not set have none) and their ratio. One aggregation over the citizens at
    most every CACHE_SECONDS, never one per scrape: at a city's millions of accounts the count
    is the costly part."""

    CACHE_SECONDS = 60.0

    def read(self) -> list[tuple[str, int, int]]:
        return wards.coverage_by_ward(self.deps)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        registered = GaugeMetricFamily("motcua_citizens_registered_18_60", "Registered citizens aged 18-60", labels=["ward_id"])
        population = GaugeMetricFamily("motcua_ward_population",
                                       "The ward's target population (set by the administrator)", labels=["ward_id"])
        ratio = GaugeMetricFamily("motcua_registration_coverage_ratio",
                                  "Registered citizens aged 18-60 / target population", labels=["ward_id"])
        for ward_id, count, target in self.rows():
            registered.add_metric([ward_id], count)
            if target:
                population.add_metric([ward_id], target)
                ratio.add_metric([ward_id], count / target)
        yield registered
        yield population
        yield ratio


class WardInfoCollector(_CachedRows):
    """motcua_ward_info{ward_id, official_code, name, province} 1 for every open ward, so
    dashboards name and group wards by province. The wards are read at most once every
    CACHE_SECONDS (one query), whatever the scrape rate."""

    def read(self) -> list[dict]:
        return wards.ward_info(self.deps)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from motcua_common.metrics import WARD_INFO_LABELS

        info = GaugeMetricFamily("motcua_ward_info", "Every open ward, value 1, with its official code, name and province",
                                 labels=list(WARD_INFO_LABELS))
        for row in self.rows():
            info.add_metric([row[label] for label in WARD_INFO_LABELS], 1)
        yield info
