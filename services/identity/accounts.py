"""Accounts: registration (web, counter), sign-in under the login limits and the lockout,
sessions, the password change, temporary passwords, and the contact other services ask
for. Plain functions `(deps, principal, input...)` that the API, the pages, the SMS desk
and the worker all call; they raise errors.* and never speak HTTP. `client` is the
caller's address, for the per-address limits and the audit."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from pymongo.errors import DuplicateKeyError

from motcua_common import metrics
from motcua_common.auth import STAFF_ROLES, WARD_STAFF_ROLES, Principal
from motcua_common.names import unaccent
from motcua_common.rpc import RpcUnavailable

from . import domain, events, store
from .deps import Deps
from .errors import (
    CitizenNotFound, Invalid, InvalidCredentials, Locked, NationalIdTaken, NotAllowed, PasswordNotSent,
    PhoneAlreadyVerified, PhoneCodeExpired, PhoneCodeWrong, PhoneCodesExhausted, PhoneNotVerified,
    TemporaryPasswordExpired, TooManyLogins, TooManyPhoneCodes, TooManyRegistrations, WrongCurrentPassword,
)

log = logging.getLogger(__name__)


def audit(deps: Deps, action: str, *, by: Principal | str | None = None, **details) -> None:
    """A security event in identity's hash-chained audit log (motcua_common.audit), stamped
    by deps.clock. `by` is the officer acting (their Principal, so the role is kept too);
    without one, the account acting on itself (sign-in, own password, registration)."""
    actor_id, actor_role = (by.subject, by.role) if isinstance(by, Principal) else (by, details.pop("actor_role", None))
    store.audit(deps.db, action, at=deps.clock.now(), actor_id=actor_id, actor_role=actor_role, **details)


def forget_revocation_cache(deps: Deps, account_id: str) -> None:
    """Make this process read an account's revocation at its next request (identity
    refuses a revoked session at once; other processes within the list's few seconds)."""
    revocations = deps.revocations
    forget = getattr(revocations, "forget", None)
    if callable(forget):
        forget(account_id)
        return
    cache, lock = getattr(revocations, "_cache", None), getattr(revocations, "_lock", None)
    if isinstance(cache, dict) and lock is not None:
        with lock:
            cache.pop(account_id, None)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc)  # pymongo gives naive UTC datetimes back


# ---------------------------------------------------------------- registration
def _at_counter(principal: Principal | None) -> bool:
    return principal is not None and principal.role in WARD_STAFF_ROLES


def check_registrar(principal: Principal | None) -> None:
    """Who may register: anyone for themselves, ward staff and admins on a citizen's behalf."""
    if principal is not None and principal.role not in STAFF_ROLES:
        raise NotAllowed("Chỉ cán bộ một cửa đăng ký hộ công dân. / Only officers register on a citizen's behalf.")


def validate_registration(deps: Deps, body: dict, password_optional: bool = False) -> dict:
    """A registration's fields, checked and normalised; Invalid names every wrong field."""
    errors: list[domain.FieldError] = []
    dob, dob_errors = domain.check_date_of_birth(body.get("date_of_birth"), deps.clock.today())
    errors += dob_errors
    errors += domain.check_national_id(body.get("national_id"), dob)
    full_name = domain.normalise_name(body.get("full_name"))
    if full_name is None:
        errors.append(domain.FieldError("full_name", "Họ tên 2–100 ký tự, chỉ gồm chữ cái và khoảng trắng. / Invalid name."))
    phone = domain.normalise_phone(body.get("phone"))
    errors += domain.phone_errors(body.get("phone"))
    ward_id = body.get("ward_id")
    if not isinstance(ward_id, str) or store.get_ward(deps.db, ward_id) is None:
        errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
    password = body.get("password")
    if password is None:
        if not password_optional:
            errors.append(domain.FieldError("password", "Cần đặt mật khẩu. / A password is required."))
    else:
        errors += domain.check_password(password, forbidden=(str(body.get("national_id") or ""), phone or ""))
    if errors:
        raise Invalid(errors)
    return {"national_id": body["national_id"], "full_name": full_name, "date_of_birth": dob,
            "phone": phone, "ward_id": ward_id, "password": password}


def temporary_until(deps: Deps) -> datetime:
    """When a temporary password issued now expires."""
    return deps.clock.now() + timedelta(hours=domain.TEMPORARY_PASSWORD_HOURS)


def open_account(deps: Deps, *, national_id: str, full_name: str, date_of_birth, phone: str, ward_id: str,
                 password: str, channel: str, temporary: bool, today=None, pending_phone: bool = False) -> str:
    """The citizen's account and its CitizenRegistered event, atomically; DuplicateKeyError
    when the national id has an account (the unique index decides under any load).
    `today` (the day the age band is counted on) is the ward's date unless given."""
    citizen_id = store.new_id()
    event = events.citizen_registered(citizen_id, ward_id, channel, date_of_birth, today or deps.clock.today())
    store.insert_citizen(deps.db, citizen_id=citizen_id, national_id=national_id, full_name=full_name,
                         date_of_birth=date_of_birth, phone=phone, ward_id=ward_id, password=password,
                         channel=channel, now=deps.clock.now(),
                         temporary_until=temporary_until(deps) if temporary else None, events=[event],
                         pending_phone=pending_phone)
    return citizen_id


def register_citizen(deps: Deps, principal: Principal | None, body: dict, client: str) -> tuple[dict, int]:
    """One account per CCCD: validation, the account and its CitizenRegistered event
    (outbox), the audit. POST /citizens and the registration page both come here."""
    at_counter = _at_counter(principal)
    if not at_counter:
        verdict = deps.registrations_by_client.hit(client, deps.clock.now())
        if not verdict.allowed:
            audit(deps, "register", outcome="rate_limited", client=client)
            raise TooManyRegistrations(verdict.retry_after_seconds)
    fields = validate_registration(deps, body, password_optional=at_counter)
    ward_id = fields["ward_id"]
    if at_counter and not principal.is_staff_of(ward_id):
        raise NotAllowed("Cán bộ chỉ đăng ký cho công dân của phường mình. / Officers register for their own ward.")
    channel = "counter" if at_counter else "web"
    temporary = fields["password"] is None
    if temporary:
        # Left out at the counter: a temporary password goes to the citizen's phone.
        fields["password"] = domain.new_temporary_password()
    # On the web, nobody has seen the phone: the account waits for the code sent there.
    pending = channel == "web" and deps.web_phone_proof
    try:
        citizen_id = open_account(deps, channel=channel, temporary=temporary, pending_phone=pending, **fields)
    except DuplicateKeyError:
        audit(deps, "register", outcome="national_id_taken", client=client)
        raise NationalIdTaken()
    metrics.CITIZENS_REGISTERED.labels(ward_id, channel).inc()
    audit(deps, "register", account_id=citizen_id, client=client, channel=channel)
    answer = {"citizen_id": citizen_id, "status": "pending_phone" if pending else "active",
              "phone_verified": not pending}
    if pending:
        answer["phone_code_sent"] = _send_phone_code(deps, citizen_id, fields["phone"], ward_id, client)
        answer["phone_code_expires_in"] = domain.PHONE_CODE_MINUTES * 60
    if temporary:
        answer["temporary_password_sent"] = send_temporary_password(
            deps, fields["phone"], fields["password"], ward_id, f"register:{citizen_id}")
    return answer, 201


# ---------------------------------------------------------------- proving the phone (web registration)
def _send_phone_code(deps: Deps, citizen_id: str, phone: str, ward_id: str | None, client: str) -> bool:
    """A new 6-digit code to the account's phone, valid 10 minutes, 5 tries; False when it
    was not sent (over the per-phone or per-address limit, or notify unreachable)."""
    now = deps.clock.now()
    verdicts = [deps.phone_codes_by_phone.hit(phone, now), deps.phone_codes_by_client.hit(client, now)]
    if not all(v.allowed for v in verdicts):
        audit(deps, "phone_code", account_id=citizen_id, outcome="rate_limited", client=client)
        return False
    code = domain.new_phone_code()
    store.save_phone_code(deps.db, citizen_id, code, now, now + timedelta(minutes=domain.PHONE_CODE_MINUTES))
    try:
        # notify's `phone_code` template: a credential, never logged and erased once sent.
        deps.send_reply(phone, "phone_code", {"code": code, "minutes": domain.PHONE_CODE_MINUTES}, ward_id,
                        f"phone-code:{citizen_id}:{int(now.timestamp())}")
    except RpcUnavailable:
        log.warning("phone code not sent: notify unavailable")
        return False
    audit(deps, "phone_code", account_id=citizen_id, client=client)
    return True


def _pending_account(deps: Deps, citizen_id: object) -> dict:
    account = store.citizen(deps.db, citizen_id) if isinstance(citizen_id, str) else None
    if account is None or account.get("active") is False:
        raise CitizenNotFound()
    if account.get("status") != "pending_phone":
        raise PhoneAlreadyVerified()
    return account


def resend_phone_code(deps: Deps, citizen_id: object, client: str) -> dict:
    """Another code for a web registration still waiting (the first was lost or expired)."""
    account = _pending_account(deps, citizen_id)
    if not _send_phone_code(deps, account["_id"], account["phone"], account.get("ward_id"), client):
        raise TooManyPhoneCodes(3600)
    return {"citizen_id": account["_id"], "status": "pending_phone", "phone_code_sent": True,
            "phone_code_expires_in": domain.PHONE_CODE_MINUTES * 60}


def username_of(deps: Deps, citizen_id: object) -> str | None:
    """A citizen's username (their CCCD), for their own page right after they proved their
    phone: they sign in with it."""
    account = store.citizen(deps.db, citizen_id) if isinstance(citizen_id, str) else None
    return account.get("national_id") if account else None


def verify_phone(deps: Deps, citizen_id: object, code: object, client: str) -> dict:
    """POST /citizens/{id}/phone-verification {code}: the code sent to the phone activates
    the web account. Five tries per code; an expired or used-up code asks for a new one."""
    if isinstance(code, str):
        code = "".join(code.split())
    if domain.has_non_ascii_digits(code):
        raise Invalid([domain.FieldError("code", domain.NON_ASCII_DIGITS)])
    if not domain.is_ascii_digits(code, domain.PHONE_CODE_DIGITS):
        raise Invalid([domain.FieldError("code", f"Mã xác nhận gồm {domain.PHONE_CODE_DIGITS} chữ số. "
                                                 f"/ The code is {domain.PHONE_CODE_DIGITS} digits.")])
    account = _pending_account(deps, citizen_id)
    saved = store.phone_code(deps.db, account["_id"])
    if saved is None or _utc(saved["expires_at"]) <= deps.clock.now():
        audit(deps, "phone_verification", account_id=account["_id"], outcome="expired", client=client)
        raise PhoneCodeExpired()
    tries = store.count_code_try(deps.db, account["_id"])
    if tries > domain.PHONE_CODE_TRIES:
        raise PhoneCodesExhausted()
    import hmac

    if not hmac.compare_digest(saved["digest"], store.code_digest(account["_id"], code)):
        audit(deps, "phone_verification", account_id=account["_id"], outcome="wrong_code", client=client)
        left = domain.PHONE_CODE_TRIES - tries
        if left <= 0:
            store.drop_phone_code(deps.db, account["_id"])
            raise PhoneCodesExhausted()
        raise PhoneCodeWrong(left)
    store.drop_phone_code(deps.db, account["_id"])
    store.activate_citizen(deps.db, account["_id"], deps.clock.now())
    audit(deps, "phone_verification", account_id=account["_id"], client=client)
    return {"citizen_id": account["_id"], "status": "active", "phone_verified": True}


# ---------------------------------------------------------------- temporary passwords
def send_temporary_password(deps: Deps, phone: str, password: str, ward_id: str | None, key: str) -> bool:
    """Hand the password to notify as an SMS command; False when notify cannot be asked."""
    variables = {"password": password, "valid_hours": domain.TEMPORARY_PASSWORD_HOURS}
    ward = store.get_ward(deps.db, ward_id) if ward_id else None
    if ward is not None:
        variables["ward_name"] = unaccent(ward["name"])  # which ward the account is in
    try:
        deps.send_reply(phone, "temporary_password", variables, ward_id, key)
        return True
    except RpcUnavailable:
        log.warning("temporary password not sent: notify unavailable")
        return False


def reissue_temporary_password(deps: Deps, principal: Principal, citizen_id: str, client: str) -> dict:
    """At the counter, for a citizen who lost or never got their password."""
    account = store.citizen(deps.db, citizen_id)
    if account is None or not principal.is_staff_of(account.get("ward_id") or ""):
        raise CitizenNotFound()
    password = domain.new_temporary_password()
    store.set_temporary_password(deps.db, account, password, temporary_until(deps))
    audit(deps, "reissue_temporary_password", account_id=citizen_id, by=principal, client=client)
    sent = send_temporary_password(deps, account["phone"], password, account.get("ward_id"),
                                   f"reissue:{citizen_id}:{int(deps.clock.now().timestamp())}")
    if not sent:
        raise PasswordNotSent()
    return {"citizen_id": citizen_id, "temporary_password_sent": True}


# ---------------------------------------------------------------- lockout
# Failures are counted per (account, client address) — and per (unknown username, client
# address) — never per account alone: a stranger who guesses an officer's username
# ("canbo.<ward>") locks only their own address out of it, and the counter PC keeps
# working. An unknown username is answered exactly like a known one: 401 four times, then
# 423 from that address. An SMS command's "address" is the phone it came from.
FAILURES_KEPT = timedelta(hours=1)


def _subject(account: dict | None, username: str | None = None) -> str:
    return f"account:{account['_id']}" if account is not None else f"user:{(username or '').casefold()}"


def _locked_until(deps: Deps, subject: str, client: str) -> datetime | None:
    found = store.login_failure(deps.db, subject, client)
    until = (found or {}).get("locked_until")
    return until if until is not None and _utc(until) > deps.clock.now() else None


def refuse_if_locked(deps: Deps, account: dict | None, client: str, username: str | None = None) -> None:
    """Locked while the lockout of (account, client) lasts (too many wrong passwords)."""
    until = _locked_until(deps, _subject(account, username), client)
    if until is not None:
        raise locked(deps, until)


def is_locked(deps: Deps, account: dict, client: str) -> bool:
    return _locked_until(deps, _subject(account), client) is not None


def record_failed_login(deps: Deps, account: dict | None, client: str, username: str | None = None) -> datetime | None:
    """Count a failure of (account, client); lock that pair after too many. Returns the
    lock's end, if locked."""
    subject, now = _subject(account, username), deps.clock.now()
    if store.count_login_failure(deps.db, subject, client, now, FAILURES_KEPT) >= domain.MAX_FAILED_LOGINS:
        until = now + timedelta(minutes=domain.LOCKOUT_MINUTES)
        store.lock_login(deps.db, subject, client, until, FAILURES_KEPT)
        return until
    return None


def clear_failed_logins(deps: Deps, account: dict, client: str) -> None:
    store.clear_login_failures(deps.db, _subject(account), client)


def locked(deps: Deps, until: datetime) -> Locked:
    until = _utc(until)
    return Locked(until, deps.clock.local(until), max(1, int((until - deps.clock.now()).total_seconds())))


# ---------------------------------------------------------------- sessions
def _count_login(deps: Deps, username: str, client: str) -> None:
    now = deps.clock.now()
    verdicts = [deps.login_by_client.hit(client, now), deps.login_by_username.hit(username.casefold(), now)]
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        audit(deps, "login", outcome="rate_limited", client=client)
        raise TooManyLogins(max(v.retry_after_seconds for v in refused))


def sign_in(deps: Deps, username: object, password: object, client: str) -> dict:
    """Check a username (CCCD, phone or officer username) and password under the login
    limits and the lockout; answer the session. POST /sessions and the sign-in page."""
    given = {"username": username, "password": password}
    if not isinstance(username, str) or not username.strip() or not isinstance(password, str) or not password:
        raise Invalid([domain.FieldError(f, "Bắt buộc. / Required.") for f in ("username", "password")
                       if not isinstance(given[f], str) or not given[f]])
    username = username.strip()
    if domain.has_non_ascii_digits(username):
        raise Invalid([domain.FieldError("username", domain.NON_ASCII_DIGITS)])
    _count_login(deps, username, client)
    candidates = store.citizens_by_username(deps.db, username)
    if not candidates:
        officer = store.officer_by_username(deps.db, username)
        if officer is not None and officer.get("active", True) is False:
            # A deactivated officer gets exactly the answers an unknown username gets (the
            # same time spent, the same 401s, the same 423), so nobody learns it exists.
            audit(deps, "login", account_id=officer["_id"], outcome="inactive", client=client)
            officer = None
        candidates = [officer] if officer else []
    if not candidates:
        refuse_if_locked(deps, None, client, username)
        store.burn_verification_time(password)
        until = record_failed_login(deps, None, client, username)
        audit(deps, "login", outcome="unknown_user_locked" if until else "unknown_user", client=client)
        if until is not None:
            raise locked(deps, until)
        raise InvalidCredentials()
    for account in candidates:
        refuse_if_locked(deps, account, client)
    matching = [a for a in candidates if store.verify_password(a["password_hash"], password)]
    if len(matching) != 1:
        for account in candidates:
            until = record_failed_login(deps, account, client)
            audit(deps, "login", account_id=account["_id"], outcome="locked" if until else "failed", client=client)
            if until is not None and len(candidates) == 1:
                raise locked(deps, until)
        raise InvalidCredentials()
    account = matching[0]
    if account.get("status") == "pending_phone":
        # The right password, but the web registration's phone is not proven yet.
        audit(deps, "login", account_id=account["_id"], outcome="phone_not_verified", client=client)
        raise PhoneNotVerified(account["_id"])
    expires = account.get("password_expires_at")
    if account.get("must_change_password") and expires is not None and _utc(expires) < deps.clock.now():
        audit(deps, "login", account_id=account["_id"], outcome="temporary_password_expired", client=client)
        raise TemporaryPasswordExpired()
    store.record_successful_login(deps.db, account, deps.clock.now())
    clear_failed_logins(deps, account, client)
    audit(deps, "login", account_id=account["_id"], client=client)
    return issue_session(deps, account)


def issue_session(deps: Deps, account: dict) -> dict:
    """A signed access token for `account`, as POST /sessions answers it."""
    settings = deps.settings
    role = account.get("role", "citizen")
    must_change = bool(account.get("must_change_password"))
    token = deps.signing_key.issue(account["_id"], role, account.get("ward_id"), settings.token_ttl_seconds,
                                   must_change_password=must_change, username=account.get("username"),
                                   phone_last4=account["phone"][-4:] if role == "citizen" else None)
    return {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_seconds,
            "must_change_password": must_change, "role": role, "ward_id": account.get("ward_id")}


# ---------------------------------------------------------------- password change
def change_password(deps: Deps, account: dict, new_password: str, channel: str) -> None:
    """The new password and its PasswordChanged event, atomically (web and SMS)."""
    store.change_password(deps.db, account, new_password, deps.clock.now(),
                          [events.password_changed(account, channel)])


def change_own_password(deps: Deps, principal: Principal, current: object, new: object, client: str) -> dict:
    """PUT /me/password's rules, for the API and the change-password page; returns the
    account as it is after the change."""
    account_id = principal.subject
    account = store.find_account(deps.db, account_id)
    if account is None:
        raise InvalidCredentials()
    # The current password is a login's secret: a session (stolen, or a shared screen left
    # signed in) must not become a way to guess it, so the same lockout counts here.
    refuse_if_locked(deps, account, client)
    if not isinstance(current, str) or not store.verify_password(account["password_hash"], current):
        until = record_failed_login(deps, account, client)
        audit(deps, "password_change", account_id=account["_id"], outcome="locked" if until else "wrong_current",
              client=client)
        if until is not None:
            raise locked(deps, until)
        raise WrongCurrentPassword()
    errors = domain.check_password(new, forbidden=(account.get("national_id", ""), account.get("phone", "")))
    if not errors and new == current:
        errors = [domain.FieldError("new_password", "Mật khẩu mới phải khác mật khẩu cũ. / Must differ from the old one.")]
    if errors:
        raise Invalid([domain.FieldError("new_password", e.message) for e in errors])
    change_password(deps, account, new, channel="web")
    audit(deps, "password_change", account_id=account["_id"], client=client)
    return store.find_account(deps.db, account_id)


# ---------------------------------------------------------------- corrections at the counter
CORRECTABLE = ("ward_id", "phone")


def _citizen_changes(deps: Deps, principal: Principal, account: dict, body: dict) -> dict:
    """The ward and phone to set, checked: the citizen ends up in the officer's own ward
    (the platform admin: any open ward)."""
    errors: list[domain.FieldError] = []
    changes: dict = {}
    if not any(name in body for name in CORRECTABLE):
        errors.append(domain.FieldError("body", "Cần ít nhất một trong hai trường: ward_id, phone."))
    if "phone" in body:
        phone = domain.normalise_phone(body["phone"])
        if phone is None:
            errors += domain.phone_errors(body["phone"])
        elif phone != account.get("phone"):
            changes["phone"] = phone
    if "ward_id" in body:
        ward_id = body["ward_id"]
        if not isinstance(ward_id, str) or store.get_ward(deps.db, ward_id) is None:
            errors.append(domain.FieldError("ward_id", "Phường không tồn tại. / Unknown ward."))
        elif ward_id != account.get("ward_id"):
            changes["ward_id"] = ward_id
    if errors:
        raise Invalid(errors)
    return changes


def correct_citizen(deps: Deps, principal: Principal, citizen_id: object, body: dict, client: str) -> dict:
    """At the counter, the CCCD checked: a citizen's ward or phone corrected. The officer
    corrects the citizens of their own ward, and may bring a citizen registered elsewhere
    (an SMS registration in the default ward) into it. The citizen's earlier sessions end
    everywhere (SessionsRevoked, reason contact_changed), in the same write; audited."""
    if principal.role not in STAFF_ROLES:
        raise NotAllowed("Chỉ cán bộ một cửa sửa thông tin công dân. / Only officers correct citizens' records.")
    account = store.citizen(deps.db, citizen_id) if isinstance(citizen_id, str) else None
    if not isinstance(body, dict):
        raise Invalid([domain.FieldError("body", "Phải là một đối tượng JSON.")])
    unknown = [name for name in body if name not in CORRECTABLE + ("national_id",)]
    if unknown:
        raise Invalid([domain.FieldError(name, "Trường này không sửa được ở đây. / Not correctable here.")
                       for name in unknown])
    if account is None:
        raise CitizenNotFound()
    target_ward = body.get("ward_id") if "ward_id" in body else account.get("ward_id")
    if not principal.is_staff_of(account.get("ward_id") or "") and not principal.is_staff_of(
            target_ward if isinstance(target_ward, str) else ""):
        raise CitizenNotFound()   # neither of their ward nor moving into it: not theirs to see
    changes = _citizen_changes(deps, principal, account, body)
    if changes.get("ward_id") and not principal.is_staff_of(changes["ward_id"]):
        raise NotAllowed("Cán bộ chỉ chuyển công dân về phường mình. / Officers move citizens into their own ward.")
    if not principal.is_staff_of(changes.get("ward_id", account.get("ward_id")) or ""):
        raise CitizenNotFound()
    if changes:
        now = deps.clock.now()
        ward_id = changes.get("ward_id", account.get("ward_id"))
        revocation = {"account_id": account["_id"], "revoked_before": now, "reason": "contact_changed",
                      "ward_id": ward_id}
        store.update_citizen(deps.db, account["_id"], {**changes, "corrected_at": now, "corrected_by": principal.subject},
                             revocation, [events.sessions_revoked(account["_id"], ward_id, now, "contact_changed")])
        forget_revocation_cache(deps, account["_id"])
        audit(deps, "correct_citizen", account_id=account["_id"], by=principal, client=client,
              changed=sorted(changes), from_ward=account.get("ward_id"), ward_id=ward_id)
    updated = store.citizen(deps.db, account["_id"])
    return {"citizen_id": updated["_id"], "ward_id": updated["ward_id"], "phone_last4": updated["phone"][-4:],
            "sessions_revoked": bool(changes)}


def correct_citizen_by_national_id(deps: Deps, principal: Principal, body: dict, client: str) -> dict:
    """The same correction found by the national id on the card (kept out of URLs)."""
    if principal.role not in STAFF_ROLES:
        raise NotAllowed("Chỉ cán bộ một cửa sửa thông tin công dân. / Only officers correct citizens' records.")
    national_id = body.get("national_id") if isinstance(body, dict) else None
    if isinstance(national_id, str):
        national_id = "".join(national_id.split())
    problems = domain.check_national_id(national_id, None)
    if problems:
        raise Invalid(problems)
    found = store.citizen_by_national_id(deps.db, national_id)
    # A staff lookup of a person by CCCD: audited whatever follows (the account, never the CCCD).
    audit(deps, "find_citizen_by_national_id", by=principal, client=client, ward_id=principal.ward_id,
          subject_type="account", subject_id=found["_id"] if found else None,
          outcome="found" if found else "not_found", purpose="correct_citizen")
    if found is None:
        raise CitizenNotFound()
    return correct_citizen(deps, principal, found["_id"], body, client)


RELEASE_REASON_MAX = 500


def release_national_id(deps: Deps, principal: Principal, body: object, client: str) -> dict:
    """At the counter, the card checked: someone else registered this CCCD (a typo, or on
    purpose). The wrong account is deactivated, its sessions refused everywhere
    (SessionsRevoked, reason account_released) and the CCCD freed, so that its real owner
    registers; the CCCD is kept aside on the released account for the record. Audited
    (who, where, when; never the CCCD). Any ward's staff may do it: the real owner comes
    to their own ward's counter, wherever the wrong account was registered."""
    if principal.role not in STAFF_ROLES:
        raise NotAllowed("Chỉ cán bộ một cửa giải phóng số CCCD. / Only officers release a national id.")
    if not isinstance(body, dict):
        raise Invalid([domain.FieldError("body", "Phải là một đối tượng JSON.")])
    national_id, reason = body.get("national_id"), body.get("reason")
    if isinstance(national_id, str):
        national_id = "".join(national_id.split())
    errors = domain.check_national_id(national_id, None)
    if not isinstance(reason, str) or not 3 <= len(reason.strip()) <= RELEASE_REASON_MAX:
        errors.append(domain.FieldError("reason", f"Ghi lý do (3–{RELEASE_REASON_MAX} ký tự), ví dụ: đã đối chiếu thẻ "
                                                  "CCCD, người đăng ký không phải chủ thẻ. / A reason is required."))
    if errors:
        raise Invalid(errors)
    account = store.citizen_by_national_id(deps.db, national_id)
    if account is None:
        raise CitizenNotFound()
    now = deps.clock.now()
    ward_id = account.get("ward_id")
    changes = {"active": False, "status": "released", "national_id": f"released:{account['_id']}",
               "released_national_id": national_id, "released_at": now, "released_by": principal.subject,
               "released_reason": " ".join(reason.split())}
    revocation = {"account_id": account["_id"], "revoked_before": now, "reason": "account_released",
                  "ward_id": ward_id}
    store.release_citizen(deps.db, account, changes, revocation,
                          [events.sessions_revoked(account["_id"], ward_id, now, "account_released")])
    forget_revocation_cache(deps, account["_id"])
    audit(deps, "release_national_id", account_id=account["_id"], by=principal, client=client,
          ward_id=ward_id, by_ward=principal.ward_id)
    return {"citizen_id": account["_id"], "released": True, "sessions_revoked": True}


# ---------------------------------------------------------------- other services' questions
def citizen_contact(deps: Deps, citizen_id: str) -> dict | None:
    """The phone to text a citizen on, asked by notify at send time."""
    found = store.citizen_contact(deps.db, citizen_id)
    if found is None:
        return None
    return {"citizen_id": found["_id"], "phone": found["phone"], "phone_last4": found["phone"][-4:],
            "ward_id": found["ward_id"]}


def find_citizen(deps: Deps, national_id: object, asked_by: object = None) -> dict | None:
    """The account of a national id, asked by dossier when an officer submits at the counter.
    A staff lookup of a person by CCCD: audited (who asked when dossier names the officer in
    `asked_by` {officer_id, role, ward_id}, else the service; the account found, never the
    CCCD)."""
    if not isinstance(national_id, str) or domain.check_national_id(national_id, None):
        return None
    found = store.citizen_contact_by_national_id(deps.db, national_id)
    asker = asked_by if isinstance(asked_by, dict) else {}
    audit(deps, "find_citizen_by_national_id", by=str(asker.get("officer_id") or "service:dossier"),
          actor_role=asker.get("role") if isinstance(asker.get("role"), str) else None,
          ward_id=asker.get("ward_id") if isinstance(asker.get("ward_id"), str) else None,
          subject_type="account", subject_id=found["_id"] if found else None,
          outcome="found" if found else "not_found")
    if found is None:
        return None
    return {"citizen_id": found["_id"], "phone_last4": found["phone"][-4:], "ward_id": found["ward_id"]}


MAX_NAMES_ASKED = 200


def citizen_identity(deps: Deps, citizen_id: object) -> dict | None:
    """Who a newly registered citizen is, asked by dossier when CitizenRegistered arrives:
    their national id finds the dossiers an officer filed for them at the counter before
    they had an account (the event itself carries nothing personal)."""
    found = store.citizen(deps.db, citizen_id) if isinstance(citizen_id, str) and citizen_id else None
    if found is None:
        return None
    phone = found.get("phone") or ""
    return {"citizen_id": found["_id"], "national_id": found["national_id"], "full_name": found.get("full_name", ""),
            "phone_last4": phone[-4:] if len(phone) >= 4 else None}


def citizen_names(deps: Deps, citizen_ids: object) -> dict[str, str]:
    """{citizen_id: full name} of the citizens identity knows among `citizen_ids` (at most
    MAX_NAMES_ASKED): the officer's desk names the citizen of each dossier it lists."""
    if not isinstance(citizen_ids, list):
        return {}
    names = {}
    for citizen_id in citizen_ids[:MAX_NAMES_ASKED]:
        found = store.citizen(deps.db, citizen_id) if isinstance(citizen_id, str) and citizen_id else None
        if found is not None and found.get("full_name"):
            names[found["_id"]] = found["full_name"]
    return names


# ---------------------------------------------------------------- the citizen's own data (Decree 13/2023)
# What an account document holds that is never handed out, even to its owner: the password's
# hash and the sign-in counters are security machinery, not personal data about them.
EXPORT_WITHHELD = ("password_hash", "failed_logins", "locked_until")
EXPORT_VERSION = 1


def _exported(value):
    if isinstance(value, datetime):
        return _utc(value).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, dict):
        return {k: _exported(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exported(v) for v in value]
    return value


def _who(record: dict, account_id: str) -> str:
    """Who acted, without naming another person: the citizen, an officer's role, or the system."""
    if record.get("actor_id") == account_id:
        return "self"
    if record.get("actor_role"):
        return record["actor_role"]
    return "service" if str(record.get("actor_id") or "").startswith("service:") else "staff"


def export_own_data(deps: Deps, principal: Principal) -> dict:
    """GET /me/export: everything identity holds about the signed-in citizen (Decree
    13/2023, the data subject's right to their data): the account as stored (less the
    password's hash and the sign-in counters), the registration, sessions ended early, a
    pending phone code's dates (not the code), and the audit log's entries about the
    account — what was done, when, by whom as a role (never another person's id or data).
    Their dossiers are dossier's: listed at `dossiers.href`, not copied here."""
    if principal.role != "citizen":
        raise NotAllowed("Chỉ công dân tải dữ liệu của chính mình. / Citizens export their own data.")
    account = store.citizen(deps.db, principal.subject)
    if account is None:
        raise CitizenNotFound()
    account_id = account["_id"]
    shown = {k: v for k, v in account.items() if k not in EXPORT_WITHHELD and k != "_id"}
    for key in [k for k in shown if k.endswith("_by")]:  # corrected_by, released_by: an officer, not named
        shown[key] = "self" if shown[key] == account_id else "staff"
    ward = store.get_ward(deps.db, account.get("ward_id") or "")
    code = store.phone_code(deps.db, account_id)
    revoked = deps.db[revocations_collection()].find_one({"_id": account_id})
    entries = [{"at": r["at"], "action": r["action"], "outcome": r.get("outcome"), "by": _who(r, account_id),
                "ward_id": r.get("ward_id"), "details": r.get("details") or {}}
               for r in store.audit_entries_about(deps.db, account_id)]
    earlier = [{"at": r["at"], "action": r["action"], "outcome": r.get("outcome"),
                "by": "self" if r.get("by") in (None, account_id) else "staff"}
               for r in deps.db.audit.find({"account_id": account_id}).sort("at", 1)]
    export = {
        "export_version": EXPORT_VERSION,
        "exported_at": deps.clock.now(),
        "controller": "Một Cửa — identity",
        "account": {"citizen_id": account_id, **shown},
        "registration": {"channel": account.get("channel"), "registered_at": account.get("created_at"),
                         "ward_id": account.get("ward_id"), "ward_name": (ward or {}).get("name"),
                         "status": account.get("status", "active"), "phone_verified": account.get("phone_verified")},
        "consents": [],
        "consents_note": "Identity records no consents beyond the registration itself; it keeps the account to "
                         "serve the citizen's dossiers (Decree 13/2023, art. 17).",
        "phone_code": ({"sent_at": code.get("sent_at"), "expires_at": code.get("expires_at"), "tries": code.get("tries")}
                       if code else None),
        "sessions_revoked": ({"revoked_before": revoked.get("revoked_before"), "reason": revoked.get("reason")}
                             if revoked else None),
        "audit": earlier + entries,
        "dossiers": {"href": "/dossier/api/v1/dossiers",
                     "note": "Your dossiers are held by the dossier service: list them with the same token."},
        "not_included": ["password hash and sign-in failure counters (security machinery)",
                         "inbound SMS texts (kept 2 days to answer a gateway's resend, then deleted)"],
    }
    audit(deps, "export_own_data", account_id=account_id)
    return _exported(export)


def revocations_collection() -> str:
    from motcua_common.revocations import COLLECTION

    return COLLECTION
