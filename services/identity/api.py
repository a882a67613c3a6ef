"""identity's HTTP API (CONTRACT.md "identity")."""
from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from flask import Blueprint, jsonify, request
from pymongo.errors import DuplicateKeyError

from motcua_common import metrics
from motcua_common.auth import Principal, SigningKey, TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    Problem, ServiceContext, ValidationFailed, authenticated, create_service_app, current_principal,
    field_error, forbidden, idempotent, json_body,
)
from motcua_common.mongo import connect, service_database
from motcua_common.ratelimit import FixedWindowLimiter
from motcua_common.wards import is_ward_id
from motcua_common.rpc import RpcUnavailable, call

from . import domain, store
from .keys import KeyRing
from .sms_inbound import SmsDesk

log = logging.getLogger(__name__)
# Inbound SMS per phone: enough for DK, a retry and MK; an SMS costs the city money.
SMS_PER_PHONE = 8
SMS_WINDOW = timedelta(minutes=10)
# Logins, counted before any password is checked: the lockout stops guessing one known
# account; these stop spraying many usernames from one address and keep a stranger from
# spending the server's argon2 time. A ward office behind one NAT address stays far below.
LOGINS_PER_USERNAME = 10
LOGINS_PER_CLIENT = 120
LOGIN_WINDOW = timedelta(minutes=1)

OPENAPI = Path(__file__).with_name("openapi.yaml")


def key_ring(settings: Settings) -> KeyRing:
    return KeyRing(Path(settings.data_dir) / "keys", settings.token_ttl_seconds)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _client() -> str:
    return request.remote_addr or ""  # the real client behind trusted proxies (MOTCUA_TRUSTED_PROXIES)


def _errors(found: list[domain.FieldError]) -> list[dict]:
    return [field_error(e.field, e.message) for e in found]


def _invalid_credentials() -> Problem:
    return Problem(401, "invalid_credentials", "Sai thông tin đăng nhập",
                   "Tên đăng nhập hoặc mật khẩu không đúng. / Wrong username or password.")


def create_app(settings: Settings | None = None, verifier: TokenVerifier | None = None,
               signing_key: SigningKey | KeyRing | None = None, clock=_utcnow, send_reply=None, dossier_status=None):
    """clock, send_reply and dossier_status can be replaced in tests; by default replies go
    to notify and status questions to dossier, by nameko RPC."""
    settings = settings or Settings.from_env()

    def _today():
        return clock().astimezone(ZoneInfo(settings.timezone)).date()

    if send_reply is None:
        def send_reply(to, template, variables, ward_id, key):
            return call(settings, "notify", "send_sms_reply", to, template, variables, ward_id, key, timeout=10)
    if dossier_status is None:
        def dossier_status(receipt_code, phone_last4):
            return call(settings, "dossier", "status_for_sms", receipt_code, phone_last4, timeout=10)

    db = service_database(connect(settings), settings, "identity")
    signing_key = signing_key or key_ring(settings)
    verifier = verifier or TokenVerifier(signing_key.jwks)
    ctx = ServiceContext("identity", settings, db, verifier, signing_key=signing_key)
    api = Blueprint("identity_api", __name__, url_prefix="/identity")

    @api.get("/.well-known/jwks.json")
    def jwks():
        response = jsonify(signing_key.jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    # ------------------------------------------------------------ wards
    @api.get("/api/v1/wards")
    def wards():
        public = ("ward_id", "name", "province", "district", "target_population")
        return jsonify([{k: w[k] for k in public if k in w} for w in store.list_wards(db)])

    @api.post("/api/v1/wards")
    @authenticated("admin")
    def create_ward():
        body = json_body()
        errors = []
        ward_id = body.get("ward_id")
        if not is_ward_id(ward_id):
            errors.append(field_error("ward_id", "Mã phường: 2–63 chữ thường không dấu (a–z), số hoặc '-', "
                                                 "ví dụ dn-hai-chau."))
        for name in ("name", "province"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                errors.append(field_error(name, "Bắt buộc. / Required."))
        population = body.get("target_population", 0)
        if not isinstance(population, int) or isinstance(population, bool) or population < 0:
            errors.append(field_error("target_population", "Phải là số nguyên không âm."))
        if errors:
            raise ValidationFailed(errors)
        ward = {"ward_id": ward_id, "name": body["name"].strip(), "province": body["province"].strip(),
                "target_population": population}
        if isinstance(body.get("district"), str):
            ward["district"] = body["district"].strip()
        store.upsert_ward(db, ward)
        return jsonify(ward), 201

    @api.put("/api/v1/wards/<ward_id>/population")
    @authenticated("admin")
    def set_population(ward_id: str):
        body = json_body()
        population = body.get("target_population")
        if not isinstance(population, int) or isinstance(population, bool) or not 0 <= population <= 10_000_000:
            raise ValidationFailed([field_error("target_population", "Số nguyên từ 0 đến 10.000.000.")])
        if store.get_ward(db, ward_id) is None:
            raise Problem(404, "ward_not_found", "Không tìm thấy phường", f"Không có phường {ward_id}.")
        db.wards.update_one({"ward_id": ward_id}, {"$set": {"target_population": population}})
        store.audit(db, "set_population", by=current_principal().subject, ward_id=ward_id)
        return jsonify(store.get_ward(db, ward_id))

    # ------------------------------------------------------------ citizens
    @api.post("/api/v1/citizens")
    def register():
        principal = current_principal(optional=True)
        body = json_body()
        at_counter = principal is not None and principal.role in ("officer", "ward_admin")
        if principal is not None and not at_counter and principal.role != "admin":
            raise forbidden("Chỉ cán bộ một cửa đăng ký hộ công dân. / Only officers register on a citizen's behalf.")
        return idempotent(db, "citizens", lambda: register_citizen(body, principal))

    registrations_by_client = FixedWindowLimiter(db, "register_client", settings.registrations_per_client_hour,
                                                 timedelta(hours=1))

    def register_citizen(body: dict, principal: Principal | None) -> tuple[dict, int]:
        """One account per CCCD: validation, the account and its CitizenRegistered event
        (outbox), the audit. POST /citizens and the registration page both come here."""
        at_counter = principal is not None and principal.role in ("officer", "ward_admin")
        if not at_counter:
            verdict = registrations_by_client.hit(_client(), clock())
            if not verdict.allowed:
                store.audit(db, "register", outcome="rate_limited", client=_client())
                raise Problem(429, "rate_limited", "Đăng ký quá nhiều lần",
                              f"Có quá nhiều lượt đăng ký từ địa chỉ này, vui lòng thử lại sau {verdict.retry_after_seconds} "
                              "giây hoặc đăng ký tại bộ phận một cửa. / Too many registrations from this address, "
                              "retry later.", headers={"Retry-After": str(verdict.retry_after_seconds)})
        fields = validate_registration(body, password_optional=at_counter)
        ward_id = fields["ward_id"]
        if at_counter and not principal.is_staff_of(ward_id):
            raise forbidden("Cán bộ chỉ đăng ký cho công dân của phường mình. / Officers register for their own ward.")
        channel = "counter" if at_counter else "web"
        temporary = fields["password"] is None
        if temporary:
            # Left out at the counter: a temporary password goes to the citizen's phone.
            fields["password"] = domain.new_temporary_password()
        try:
            citizen_id = store.register_citizen(
                db, channel=channel, today=_today(),
                temporary_until=clock() + timedelta(hours=domain.TEMPORARY_PASSWORD_HOURS) if temporary else None,
                **fields)
        except DuplicateKeyError:
            store.audit(db, "register", outcome="national_id_taken", client=_client())
            raise Problem(409, "national_id_taken", "Số CCCD đã được đăng ký",
                          "Số CCCD này đã có tài khoản. Hãy đăng nhập hoặc đặt lại mật khẩu. "
                          "/ An account already exists for this national id.")
        metrics.CITIZENS_REGISTERED.labels(ward_id, channel).inc()
        store.audit(db, "register", account_id=citizen_id, client=_client(), channel=channel)
        answer = {"citizen_id": citizen_id}
        if temporary:
            answer["temporary_password_sent"] = _send_temporary_password(
                fields["phone"], fields["password"], ward_id, f"register:{citizen_id}")
        return answer, 201

    # ------------------------------------------------------------ sessions
    login_by_username = FixedWindowLimiter(db, "login_username", LOGINS_PER_USERNAME, LOGIN_WINDOW)
    login_by_client = FixedWindowLimiter(db, "login_client", LOGINS_PER_CLIENT, LOGIN_WINDOW)

    def _count_login(username: str) -> None:
        now = clock()
        verdicts = [login_by_client.hit(_client(), now), login_by_username.hit(username.casefold(), now)]
        refused = [v for v in verdicts if not v.allowed]
        if refused:
            retry_after = max(v.retry_after_seconds for v in refused)
            store.audit(db, "login", outcome="rate_limited", client=_client())
            raise Problem(429, "rate_limited", "Đăng nhập quá nhiều lần",
                          f"Bạn đã thử đăng nhập quá nhiều lần, vui lòng thử lại sau {retry_after} giây. "
                          "/ Too many login attempts, retry later.", headers={"Retry-After": str(retry_after)})

    @api.post("/api/v1/sessions")
    def login():
        body = json_body()
        return jsonify(sign_in(body.get("username"), body.get("password")))

    def sign_in(username: object, password: object) -> dict:
        """Check a username (CCCD, phone or officer username) and password under the login
        limits and the lockout; answer the session. POST /sessions and the sign-in page."""
        given = {"username": username, "password": password}
        if not isinstance(username, str) or not username.strip() or not isinstance(password, str) or not password:
            raise ValidationFailed([field_error(f, "Bắt buộc. / Required.") for f in ("username", "password")
                                    if not isinstance(given[f], str) or not given[f]])
        username = username.strip()
        _count_login(username)
        candidates = store.citizens_by_username(db, username)
        if not candidates:
            officer = store.officer_by_username(db, username)
            candidates = [officer] if officer else []
        now = clock()
        for account in candidates:
            refuse_if_locked(account, now)
        matching = [a for a in candidates if store.verify_password(a["password_hash"], password)]
        if not candidates:
            store.burn_verification_time(password)
        if len(matching) != 1:
            for account in candidates:
                until = store.record_failed_login(db, account)
                store.audit(db, "login", account_id=account["_id"], outcome="locked" if until else "failed", client=_client())
                if until is not None and len(candidates) == 1:
                    raise _locked(until, settings.timezone)
            if not candidates:
                store.audit(db, "login", outcome="unknown_user", client=_client())
            raise _invalid_credentials()
        account = matching[0]
        expires = account.get("password_expires_at")
        if account.get("must_change_password") and expires is not None and expires.replace(tzinfo=timezone.utc) < now:
            store.audit(db, "login", account_id=account["_id"], outcome="temporary_password_expired", client=_client())
            raise Problem(401, "temporary_password_expired", "Mật khẩu tạm đã hết hạn",
                          "Mật khẩu tạm thời đã quá 72 giờ. Bạn vẫn đổi được mật khẩu bằng tin nhắn từ số điện thoại "
                          "đã đăng ký: MK <mật khẩu tạm> <mật khẩu mới>; hoặc nhắn DK như lần đầu để nhận mật khẩu mới. "
                          "/ The temporary password has expired: change it by SMS (MK <old> <new>) or text DK again.")
        store.record_successful_login(db, account)
        store.audit(db, "login", account_id=account["_id"], client=_client())
        return issue_session(account)

    def refuse_if_locked(account: dict, now: datetime) -> None:
        """423 while the account's lockout lasts (too many wrong passwords)."""
        locked_until = account.get("locked_until")
        if locked_until is not None and locked_until.replace(tzinfo=timezone.utc) > now:
            raise _locked(locked_until, settings.timezone)

    def issue_session(account: dict) -> dict:
        """A signed access token for `account`, as POST /sessions answers it."""
        role = account.get("role", "citizen")
        must_change = bool(account.get("must_change_password"))
        token = signing_key.issue(account["_id"], role, account.get("ward_id"), settings.token_ttl_seconds,
                                  must_change_password=must_change, username=account.get("username"),
                                  phone_last4=account["phone"][-4:] if role == "citizen" else None)
        return {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_seconds,
                "must_change_password": must_change, "role": role, "ward_id": account.get("ward_id")}

    @api.put("/api/v1/me/password")
    @authenticated(allow_password_change=True)
    def change_password():
        principal = current_principal(allow_password_change=True)
        body = json_body()
        change_own_password(principal.subject, body.get("current_password"), body.get("new_password"))
        return "", 204

    def change_own_password(account_id: str, current: object, new: object) -> dict:
        """PUT /me/password's rules, for the API and the change-password page; returns the
        account as it is after the change."""
        account = store.find_account(db, account_id)
        if account is None:
            raise _invalid_credentials()
        # The current password is a login's secret: a session (stolen, or a shared screen left
        # signed in) must not become a way to guess it, so the same lockout counts here.
        refuse_if_locked(account, clock())
        if not isinstance(current, str) or not store.verify_password(account["password_hash"], current):
            until = store.record_failed_login(db, account)
            store.audit(db, "password_change", account_id=account["_id"], outcome="locked" if until else "wrong_current",
                        client=_client())
            if until is not None:
                raise _locked(until, settings.timezone)
            raise Problem(401, "invalid_credentials", "Sai mật khẩu hiện tại",
                          "Mật khẩu hiện tại không đúng. / The current password is wrong.")
        errors = domain.check_password(new, forbidden=(account.get("national_id", ""), account.get("phone", "")))
        if not errors and new == current:
            errors = [domain.FieldError("new_password", "Mật khẩu mới phải khác mật khẩu cũ. / Must differ from the old one.")]
        if errors:
            raise ValidationFailed([field_error("new_password", e.message) for e in errors])
        store.change_password(db, account, new, channel="web")
        store.audit(db, "password_change", account_id=account["_id"], client=_client())
        return store.find_account(db, account_id)

    # ------------------------------------------------------------ officers
    @api.post("/api/v1/officers")
    @authenticated("admin", "ward_admin")
    def create_officer():
        principal = current_principal()
        body = json_body()
        errors = []
        username = body.get("username")
        if not isinstance(username, str) or not 3 <= len(username) <= 40 or not all(c.isalnum() or c in "._-" for c in username) or username.isdigit():
            errors.append(field_error("username", "Tên đăng nhập 3–40 ký tự: chữ, số, '.', '_' hoặc '-' (không chỉ gồm số)."))
        full_name = domain.normalise_name(body.get("full_name"))
        if full_name is None:
            errors.append(field_error("full_name", "Họ tên không hợp lệ. / Invalid name."))
        role = body.get("role")
        if role not in ("officer", "ward_admin", "monitor"):
            errors.append(field_error("role", "Vai trò phải là officer, ward_admin hoặc monitor."))
        ward_id = body.get("ward_id")
        if role == "monitor":
            ward_id = None  # the monitoring centre watches every ward
        elif not isinstance(ward_id, str) or store.get_ward(db, ward_id) is None:
            errors.append(field_error("ward_id", "Phường không tồn tại. / Unknown ward."))
        errors += _errors(domain.check_password(body.get("password")))
        if errors:
            raise ValidationFailed(errors)
        if principal.role == "ward_admin" and (principal.ward_id != ward_id or role != "officer"):
            raise forbidden("Trưởng bộ phận chỉ tạo cán bộ cho phường mình. / Ward admins create officers of their ward.")
        try:
            officer_id = store.create_officer(db, username=username, full_name=full_name, ward_id=ward_id, role=role,
                                              password=body["password"], created_by=principal.subject)
        except DuplicateKeyError:
            raise Problem(409, "username_taken", "Tên đăng nhập đã tồn tại", "Hãy chọn tên đăng nhập khác.")
        store.audit(db, "create_officer", account_id=officer_id, client=_client(), by=principal.subject, role=role)
        return jsonify({"officer_id": officer_id}), 201

    # ------------------------------------------------------------ SMS short code
    sms_limiter = FixedWindowLimiter(db, "sms_inbound", SMS_PER_PHONE, SMS_WINDOW)
    desk = SmsDesk(db, send_reply, dossier_status, clock, settings.sms_registration_ward)

    @api.post("/api/v1/sms/inbound")
    def sms_inbound():
        expected = settings.sms_inbound_token
        if not expected:
            raise Problem(503, "sms_inbound_not_configured", "Chưa cấu hình tin nhắn đến",
                          "SMS_INBOUND_TOKEN is not set: inbound SMS are refused.")
        given = request.headers.get("X-Gateway-Token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            store.audit(db, "sms_inbound", outcome="bad_gateway_token", client=_client())
            raise Problem(401, "invalid_gateway_token", "Sai mã cổng tin nhắn", "X-Gateway-Token is missing or wrong.")
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
        verdict = sms_limiter.hit(phone, clock())
        if not verdict.allowed:
            # Answered 200 so the gateway does not resend, and no reply: a flood must not cost SMS.
            log.warning("inbound SMS over the per-phone limit", extra={"phone": domain.mask_phone(phone)})
            return jsonify({"outcome": "rate_limited", "retry_after": verdict.retry_after_seconds})
        # The gateway's message id makes a resent message idempotent; else its text and minute.
        message_key = str(body.get("id") or f"{text}|{int(clock().timestamp() // 60)}")
        try:
            outcome = desk.handle(phone, text, message_key)
        except RpcUnavailable:
            # 503 makes the gateway retry; a retried DK re-issues the password (see SmsDesk).
            raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                          "Không gửi được tin trả lời, cổng tin nhắn sẽ gửi lại. / Reply channel unavailable.",
                          headers={"Retry-After": "30"})
        return jsonify({"command": outcome.command, "outcome": outcome.result})

    # ------------------------------------------------------------ coverage (R3)
    @api.get("/api/v1/wards/<ward_id>/coverage")
    @authenticated()
    def coverage(ward_id: str):
        principal = current_principal()
        if not principal.can_watch(ward_id):
            raise forbidden()
        ward = store.get_ward(db, ward_id)
        if ward is None:
            raise Problem(404, "ward_not_found", "Không tìm thấy phường", f"Không có phường {ward_id}.")
        registered = store.count_registered_aged(db, ward_id, _today(), 18, 60)
        target = ward.get("target_population") or 0
        return jsonify({"ward_id": ward_id, "registered_18_60": registered, "target_population": target,
                        "ratio": round(registered / target, 4) if target else None})

    def _send_temporary_password(phone: str, password: str, ward_id: str, key: str) -> bool:
        try:
            send_reply(phone, "temporary_password", {"password": password,
                                                     "valid_hours": domain.TEMPORARY_PASSWORD_HOURS}, ward_id, key)
            return True
        except RpcUnavailable:
            log.warning("temporary password not sent: notify unavailable")
            return False

    @api.post("/api/v1/citizens/<citizen_id>/temporary-password")
    @authenticated("officer", "ward_admin", "admin")
    def reissue_temporary_password(citizen_id: str):
        """At the counter, for a citizen who lost or never got their password."""
        principal = current_principal()
        account = store.citizen(db, citizen_id)
        if account is None or not principal.is_staff_of(account.get("ward_id") or ""):
            raise Problem(404, "not_found", "Không tìm thấy", "Không có công dân này trong phường của bạn.")
        password = domain.new_temporary_password()
        store.set_temporary_password(db, account, password, clock() + timedelta(hours=domain.TEMPORARY_PASSWORD_HOURS))
        store.audit(db, "reissue_temporary_password", account_id=citizen_id, by=principal.subject, client=_client())
        sent = _send_temporary_password(account["phone"], password, account.get("ward_id"),
                                        f"reissue:{citizen_id}:{int(clock().timestamp())}")
        if not sent:
            raise Problem(503, "dependency_unavailable", "Chưa gửi được tin nhắn",
                          "Không gửi được mật khẩu tạm, vui lòng thử lại sau ít phút.", headers={"Retry-After": "30"})
        return jsonify({"citizen_id": citizen_id, "temporary_password_sent": True})

    def validate_registration(body: dict, password_optional: bool = False) -> dict:
        errors: list[domain.FieldError] = []
        dob, dob_errors = domain.check_date_of_birth(body.get("date_of_birth"), _today())
        errors += dob_errors
        errors += domain.check_national_id(body.get("national_id"), dob)
        full_name = domain.normalise_name(body.get("full_name"))
        if full_name is None:
            errors.append(domain.FieldError("full_name", "Họ tên 2–100 ký tự, chỉ gồm chữ cái và khoảng trắng. / Invalid name."))
        phone = domain.normalise_phone(body.get("phone"))
        if phone is None:
            errors.append(domain.FieldError("phone", "Số điện thoại di động Việt Nam không hợp lệ (vd. 0905 123 456). / Invalid phone."))
        ward_id = body.get("ward_id")
        if not isinstance(ward_id, str) or store.get_ward(db, ward_id) is None:
            errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
        password = body.get("password")
        if password is None:
            if not password_optional:
                errors.append(domain.FieldError("password", "Cần đặt mật khẩu. / A password is required."))
        else:
            errors += domain.check_password(password, forbidden=(str(body.get("national_id") or ""), phone or ""))
        if errors:
            raise ValidationFailed(_errors(errors))
        return {"national_id": body["national_id"], "full_name": full_name, "date_of_birth": dob,
                "phone": phone, "ward_id": ward_id, "password": password}

    from .kannel_inbound import kannel_blueprint  # the same SMS desk, as Kannel's get-url calls it
    kannel = kannel_blueprint(settings, db, desk, sms_limiter, clock)
    # The citizen's pages (pages.py) take the very rules the JSON API uses, never their own.
    ctx.accounts = SimpleNamespace(register_citizen=register_citizen, validate_registration=validate_registration,
                                   sign_in=sign_in, issue_session=issue_session, change_own_password=change_own_password)
    from .pages import pages  # registration, sign-in, password change, sign-out
    return create_service_app(ctx, [api, kannel, pages], OPENAPI, extra_collectors=[CoverageCollector(db, _today)])


class CoverageCollector:
    """R3 for the monitoring centre: registered citizens aged 18–60 per ward against the
    ward's target population, computed at scrape time with one aggregation."""

    def __init__(self, db, today):
        self.db, self.today = db, today

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        registered = GaugeMetricFamily("motcua_citizens_registered_18_60", "Registered citizens aged 18-60", labels=["ward_id"])
        ratio = GaugeMetricFamily("motcua_registration_coverage_ratio",
                                  "Registered citizens aged 18-60 / target population", labels=["ward_id"])
        counts = store.registered_aged_by_ward(self.db, self.today(), 18, 60)
        for ward in store.list_wards(self.db):
            count = counts.get(ward["ward_id"], 0)
            registered.add_metric([ward["ward_id"]], count)
            if ward.get("target_population"):
                ratio.add_metric([ward["ward_id"]], count / ward["target_population"])
        yield registered
        yield ratio


def _locked(until: datetime, timezone_name: str) -> Problem:
    until = until.replace(tzinfo=timezone.utc)
    local = until.astimezone(ZoneInfo(timezone_name))  # the platform's time zone, as the citizen's clock shows
    return Problem(423, "locked", "Tài khoản tạm khóa",
                   f"Đăng nhập sai quá nhiều lần. Tài khoản bị khóa đến {local:%H:%M ngày %d/%m/%Y}. "
                   "/ Too many failed logins; locked until the given time.",
                   locked_until=until.isoformat().replace("+00:00", "Z"),
                   headers={"Retry-After": str(max(1, int((until - store.now()).total_seconds())))})
