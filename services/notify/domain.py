"""Pure rules of notify: SMS encoding and segments, the Vietnamese templates, which events
text whom, the retry policy, phone numbers, groups and broadcasts.

No Flask, nameko or pymongo here: everything is tested in microseconds."""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

from motcua_common import names
from motcua_common.names import normalise_display_name, unsafe_characters
from motcua_common.phones import normalise_phone  # noqa: F401  (used by the sender and groups)

CHANNEL_SMS, CHANNEL_EMAIL = "sms", "email"

# A notification's life: pending -> sending (claimed by one sender, under a lease)
# -> sent | failed, or back to pending to wait for its next attempt.
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# After `sent`, the gateway's delivery receipt (POST /receipts) settles what happened:
# on the phone, refused by the network, or never delivered within its validity period.
# A message with no receipt by the end of that period is counted `expired`.
DELIVERED, UNDELIVERABLE, EXPIRED = "delivered", "undeliverable", "expired"
RECEIPT_STATUSES = (DELIVERED, UNDELIVERABLE, EXPIRED)
STATUSES = (PENDING, SENDING, SENT, FAILED, *RECEIPT_STATUSES)

# Why a notification failed; stable codes, carried by NotificationFailed.
NO_CONTACT = "no_contact"                    # identity knows no phone for the citizen
TEMPLATE_ERROR = "template_error"            # a variable was missing: a bug, never half a message
GATEWAY_REJECTED = "gateway_rejected"        # the gateway refused it for good (4xx)
GATEWAY_UNAVAILABLE = "gateway_unavailable"  # the gateway kept failing for the whole retry window
IDENTITY_UNAVAILABLE = "identity_unavailable"  # identity did not answer for the whole retry window
DOSSIER_UNAVAILABLE = "dossier_unavailable"    # dossier did not answer (a step's note, the result's kind)
INTERNAL_ERROR = "internal_error"            # sending itself kept breaking (logged with its trace)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


# ================================================================ SMS encoding
# GSM 03.38 (3GPP TS 23.038) default alphabet, in code order 0x00-0x7F, without 0x1B
# (the escape to the extension table, not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + a septet, so it costs two.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7, UCS2 = "gsm7", "ucs2"
# Units a segment holds: alone, or as one part of a concatenated message (the user data
# header takes 7 septets / 3 UTF-16 code units of every part).
SEGMENT_UNITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsBody:
    text: str
    encoding: str   # gsm7 | ucs2
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _units(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def count_segments(text: str, encoding: str) -> int:
    """How many SMS `text` takes in `encoding`.

    A character is never split between two parts: an extension character's escape pair
    (GSM-7) and a surrogate pair (UCS-2) move whole to the next part, which is why a long
    text can need one part more than a plain division says."""
    single, part = SEGMENT_UNITS[encoding]
    units = [_units(ch, encoding) for ch in text]
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


def split_parts(text: str, encoding: str) -> list[str]:
    """The parts a concatenated SMS is sent in (what an SMPP gateway submits one by one),
    cut the way count_segments counts: never through a character."""
    single, part = SEGMENT_UNITS[encoding]
    units = [_units(ch, encoding) for ch in text]
    if sum(units) <= single:
        return [text]
    parts, current, used = [], [], 0
    for ch, size in zip(text, units):
        if used + size > part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    parts.append("".join(current))
    return parts


# Punctuation a keyboard or a word processor slips in, with a GSM-7 form.
_PUNCTUATION = str.maketrans({
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'",
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ",
})


def unaccent(text: str) -> str:
    """Vietnamese without diacritics: "Hồ sơ đã được tiếp nhận" -> "Ho so da duoc tiep nhan";
    the shared rule (motcua_common.names), plus typographic punctuation made GSM-7."""
    return names.unaccent(text).translate(_PUNCTUATION)


def encode_sms(text: str, unaccented: bool = False) -> SmsBody:
    """The text as it goes out, its encoding and its true number of segments.

    With `unaccented` Vietnamese loses its diacritics so that it fits GSM-7 (160 a
    segment instead of 70). Whatever still is not GSM-7 (an emoji in a broadcast) makes
    the message UCS-2: a message is never garbled to save a segment."""
    text = unicodedata.normalize("NFC", text)  # decomposed input would double UCS-2 units
    if unaccented:
        text = unaccent(text)
    encoding = GSM7 if is_gsm7(text) else UCS2
    return SmsBody(text=text, encoding=encoding, segments=count_segments(text, encoding))


# ================================================================ templates
class TemplateError(Exception):
    """Rendering asked for a variable that is missing: a programming error."""


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    dates: tuple[str, ...] = ()   # variables given as YYYY-MM-DD, shown as dd/mm/yyyy

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text) if name)


# Short on purpose: each fits in two UCS-2 segments (134 units) with the longest receipt
# code dossier makes (19 characters). "TT <mã hồ sơ>" is the SMS command that answers a
# dossier's status. The procedure goes by its code: its name lives in dossier's catalog.
TEMPLATES = {
    t.name: t
    for t in (
        Template(
            "dossier_submitted",
            "Hồ sơ {receipt_code} (thủ tục {procedure_code}) đã nộp thành công, "
            "hẹn trả {due_date}. Tra cứu: nhắn TT {receipt_code}",
            dates=("due_date",),
        ),
        # Linked dossiers (liên thông) submitted together: one SMS names every receipt
        # code of the chain; the due date is the chain's latest.
        Template(
            "dossier_chain_submitted",
            "Hồ sơ liên thông {receipt_codes} đã nộp thành công, hẹn trả chậm nhất "
            "{due_date}. Tra cứu: nhắn TT mã hồ sơ",
            dates=("due_date",),
        ),
        Template(
            "dossier_received",
            "Hồ sơ {receipt_code} đã được Bộ phận Một cửa tiếp nhận và đang xử lý. "
            "Tra cứu: nhắn TT {receipt_code}",
        ),
        # How the result is had: on paper at the office, or (level 4) the signed e-result
        # on the portal as well. Which one is asked of dossier when the SMS goes out.
        Template(
            "dossier_result_ready",
            "Hồ sơ {receipt_code} đã có kết quả. Mời ông/bà đến Bộ phận Một cửa "
            "phường nhận, báo mã {receipt_code}",
        ),
        Template(
            "dossier_result_ready_online",
            "Hồ sơ {receipt_code} đã có kết quả: tải bản điện tử tại Cổng dịch vụ công "
            "(Hồ sơ của tôi) hoặc nhận tại Bộ phận Một cửa phường",
        ),
        # The officer's own words (at most 500 characters), asked of dossier when the SMS
        # goes out; the procedure by a short name (dossier cuts it at a word).
        Template(
            "dossier_supplement_requested",
            "Hồ sơ {receipt_code} ({procedure}) cần bổ sung: {note}. Bổ sung trên Cổng "
            "dịch vụ công hoặc tại Bộ phận Một cửa phường",
        ),
        Template(
            "dossier_rejected",
            "Hồ sơ {receipt_code} ({procedure}) không được giải quyết. Lý do: {note}. "
            "Cần hỏi thêm, xin liên hệ Bộ phận Một cửa phường",
        ),
        # A ward admin's own words to a group, sent as written.
        Template("broadcast", "{text}"),
        # Replies to a citizen's SMS command, asked for by identity (send_sms_reply).
        # The temporary password says how to change it in the same breath: citizens who
        # never learn how end up with an account they cannot use (seed 000).
        Template(
            "temporary_password",
            "Mật khẩu tạm thời: {password}, dùng {valid_hours} giờ. Để đổi, nhắn "
            "MK {password} <mật khẩu mới> tới số này hoặc vào Cổng dịch vụ công.",
        ),
        Template(
            "password_changed",
            "Mật khẩu tài khoản Một Cửa của ông/bà vừa được đổi. Nếu không phải ông/bà "
            "đổi, xin báo ngay Bộ phận Một cửa phường.",
        ),
        # A ready-made answer from identity: a dossier's status, the command help.
        Template("reply", "{text}"),
    )
}

# What identity may ask notify to text to a phone, over RPC (never through an event).
REPLY_TEMPLATES = ("temporary_password", "password_changed", "reply")
# Texts that carry a credential: never logged, never in an event, and erased from the
# store (variables and text) as soon as the message is sent or has finally failed.
SECRET_TEMPLATES = frozenset({"temporary_password"})
MAX_REPLY_SEGMENTS = 5


# Templates whose text needs dossier's answer at send time (the step's note, whether the
# result is also online): dossier's `for_sms(dossier_id, event_id)`.
DETAIL_TEMPLATES = frozenset({"dossier_result_ready", "dossier_supplement_requested", "dossier_rejected"})
NOTE_TEMPLATES = frozenset({"dossier_supplement_requested", "dossier_rejected"})


def needs_details(template_name: str, params: dict) -> bool:
    return template_name in DETAIL_TEMPLATES and bool(params.get("dossier_id"))


def with_details(template_name: str, params: dict, details: dict | None) -> tuple[str, dict]:
    """The template to render and its variables, given dossier's answer (None: dossier does
    not know the dossier, or was not asked). A result with an online copy (level 4) says
    so; a note template without its note is left without it (render refuses it: never a
    message with a hole in it)."""
    details = details or {}
    if template_name == "dossier_result_ready":
        return ("dossier_result_ready_online" if details.get("e_result") else template_name), params
    if template_name in NOTE_TEMPLATES:
        note = details.get("note")
        note = " ".join(note.split()).rstrip(".") if isinstance(note, str) else None
        procedure = details.get("procedure") or params.get("procedure_code")
        return template_name, {**params, "note": note, "procedure": procedure}
    return template_name, params


def is_secret(template_name: str) -> bool:
    return template_name in SECRET_TEMPLATES


def format_date(value: str) -> str:
    """2026-12-01 -> 01/12/2026, the way dates are written in Vietnam."""
    return date.fromisoformat(value).strftime("%d/%m/%Y")


def render(template_name: str, params: dict) -> str:
    """The template filled in, or TemplateError: never a message with a hole in it."""
    template = TEMPLATES.get(template_name)
    if template is None:
        raise TemplateError(f"unknown template {template_name!r}")
    values = {}
    for name in template.variables:
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)   # e.g. valid_hours=72
        if isinstance(value, list):   # e.g. a chain's receipt codes, in the order they came
            complete = value and all(isinstance(v, str) and v.strip() for v in value)
            value = ", ".join(value) if complete else None
        if not isinstance(value, str) or not value.strip():
            raise TemplateError(f"{template_name}: variable {name!r} is missing")
        if name in template.dates:
            try:
                value = format_date(value)
            except ValueError as exc:
                raise TemplateError(f"{template_name}: {name!r} is not a date") from exc
        values[name] = value
    return template.text.format_map(values)


# ---------------------------------------------------------------- "a phone is enough": identity's replies
# (one block: the DK reply names the ward the account was placed in when identity says it
# — `ward_name`, unaccented —, and the one-time code that proves a web registration's
# phone, a credential like the temporary password: never logged, erased once sent).
TEMPLATES["temporary_password_ward"] = Template(
    "temporary_password_ward",
    "Mật khẩu tạm thời: {password}, dùng {valid_hours} giờ, tài khoản tại {ward_name}. Để đổi, nhắn "
    "MK {password} <mật khẩu mới> tới số này hoặc vào Cổng dịch vụ công.",
)
TEMPLATES["phone_code"] = Template(
    "phone_code",
    "Mã xác nhận đăng ký tài khoản Một Cửa: {code}, dùng trong {minutes} phút. Không đưa mã này cho ai.",
)
REPLY_TEMPLATES = REPLY_TEMPLATES + ("phone_code",)
SECRET_TEMPLATES = SECRET_TEMPLATES | {"temporary_password_ward", "phone_code"}
_render_template = render


def render(template_name: str, params: dict) -> str:  # noqa: F811  (the DK reply's ward, when named)
    ward_name = params.get("ward_name") if isinstance(params, dict) else None
    if template_name == "temporary_password" and isinstance(ward_name, str) and ward_name.strip():
        template_name = "temporary_password_ward"
    return _render_template(template_name, params)


# ================================================================ who gets texted, and when
@dataclass(frozen=True)
class Intent:
    """One SMS an event asks for: a template, its variables and the citizen to text."""

    template: str
    citizen_id: str
    params: dict = field(default_factory=dict)
    # Set for a dossier submitted in a chain: the chain's events gather into one SMS.
    chain_id: str = ""


def _pick(payload: dict, *names: str) -> dict:
    return {name: payload.get(name, "") for name in names}


# A step the citizen must hear of in the officer's words.
STEP_TEMPLATES = {"supplement_requested": "dossier_supplement_requested", "rejected": "dossier_rejected"}


def intents_for(event_type: str, payload: dict) -> list[Intent]:
    """The SMS an event asks for (DESIGN.md R11).

    Nobody is texted without an account (empty citizen_id). A citizen registering on the
    web or at the counter gets no SMS; the temporary password of an SMS registration
    comes to notify as a command, not as this event."""
    citizen_id = payload.get("citizen_id") or ""
    if not citizen_id:
        return []
    if event_type == "DossierSubmitted" and payload.get("chain_id"):
        # One SMS per (chain, citizen), not one per linked dossier: store.gather_chain.
        return [Intent("dossier_chain_submitted", citizen_id,
                       {"receipt_codes": [payload.get("receipt_code", "")], "due_date": payload.get("due_date", "")},
                       chain_id=payload["chain_id"])]
    if event_type == "DossierSubmitted":
        params = _pick(payload, "receipt_code", "procedure_code", "due_date")
        return [Intent("dossier_submitted", citizen_id, params)]
    if event_type == "DossierStatusChanged" and payload.get("to_status") == "received":
        return [Intent("dossier_received", citizen_id, _pick(payload, "receipt_code", "procedure_code"))]
    if event_type == "DossierStatusChanged" and payload.get("to_status") in STEP_TEMPLATES:
        # The officer's note is not in the event: the sender asks dossier for it (for_sms).
        return [Intent(STEP_TEMPLATES[payload["to_status"]], citizen_id,
                       _pick(payload, "receipt_code", "procedure_code", "dossier_id"))]
    if event_type == "DossierResultReady":
        return [Intent("dossier_result_ready", citizen_id,
                       _pick(payload, "receipt_code", "procedure_code", "dossier_id"))]
    return []


# ================================================================ replies to SMS commands
MAX_KEY_LENGTH = 200


class ReplyRefused(ValueError):
    """identity asked for a reply notify cannot send. The message names the fields only:
    it must never carry a variable's value (the temporary password)."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclass(frozen=True)
class Reply:
    to: str               # E.164
    template: str
    params: dict
    ward_id: str | None
    key: str


def check_reply(to: object, template: object, variables: object, ward_id: object, key: object,
                unaccented: bool = False) -> Reply:
    """A reply identity asked for, checked whole (it renders, and not too long), or ReplyRefused."""
    errors: list[FieldError] = []
    phone = normalise_phone(to)
    if phone is None:
        errors.append(FieldError("to", "not a Vietnamese mobile number"))
    if template not in REPLY_TEMPLATES:
        errors.append(FieldError("template", f"one of {', '.join(REPLY_TEMPLATES)}"))
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        errors.append(FieldError("variables", "an object"))
    if ward_id is not None and (not isinstance(ward_id, str) or not ward_id.strip()):
        errors.append(FieldError("ward_id", "a ward id or null"))
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        errors.append(FieldError("key", f"a non-empty idempotency key of at most {MAX_KEY_LENGTH} characters"))
    if template in REPLY_TEMPLATES and isinstance(variables, dict):
        try:
            body = encode_sms(render(template, variables), unaccented)
        except TemplateError as exc:
            errors.append(FieldError("variables", str(exc)))   # names the variable, not its value
        else:
            if body.segments > MAX_REPLY_SEGMENTS:
                errors.append(FieldError("variables", f"the text takes {body.segments} SMS, at most "
                                                      f"{MAX_REPLY_SEGMENTS}"))
    if errors:
        raise ReplyRefused(errors)
    params = {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in variables.items()}
    return Reply(to=phone, template=template, params=params, ward_id=ward_id, key=key)


# ================================================================ retries
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, for at least `window_seconds` after the first try
    (CONTRACT.md: at least 10 minutes), then the notification fails."""

    window_seconds: float = 600.0
    base_seconds: float = 5.0
    max_seconds: float = 120.0


def backoff_seconds(policy: RetryPolicy, attempts: int, rand: Callable[[], float]) -> float:
    """Wait before the next try after `attempts` failed ones: base·2^(n-1), capped, then
    "equal jitter" (between half and all of it) so that a gateway coming back is not hit
    by every waiting message in the same second."""
    delay = min(policy.max_seconds, policy.base_seconds * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rand() / 2)


def next_attempt_at(policy: RetryPolicy, first_attempt_at: datetime, now: datetime, attempts: int,
                    rand: Callable[[], float], retry_after: float | None = None) -> datetime | None:
    """When to try again after a transient failure, or None: the window is spent, give up.

    The last try is made right at the end of the window, so a message is retried for the
    whole window and not a backoff step less."""
    deadline = first_attempt_at + timedelta(seconds=policy.window_seconds)
    if now >= deadline:
        return None
    delay = backoff_seconds(policy, attempts, rand)
    if retry_after is not None:
        delay = max(delay, retry_after)  # the gateway asked us to slow down (429 Retry-After)
    return min(now + timedelta(seconds=delay), deadline)


# ================================================================ phone numbers
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(value: object) -> str | None:
    """An email address as given (trimmed, domain lower-cased), or None."""
    if not isinstance(value, str) or len(value.strip()) > 254 or not _EMAIL.fullmatch(value.strip()):
        return None
    local, _, host = value.strip().rpartition("@")
    return f"{local}@{host.lower()}"


def mask_email(address: str | None) -> str | None:
    """nguyen.van.a@example.vn -> n***@example.vn"""
    if not address:
        return None
    local, _, host = address.rpartition("@")
    return f"{local[:1]}***@{host}"


def mask_phone(phone: str | None) -> str | None:
    """+84901234567 -> +84******567: officers see which message is which, not the number."""
    if not phone:
        return None
    prefix = "+84" if phone.startswith("+84") else ""
    rest = phone[len(prefix):]
    return prefix + "*" * max(len(rest) - 3, 0) + rest[-3:]


# ================================================================ groups and broadcasts
MAX_GROUP_NAME = 100
MAX_GROUP_MEMBERS = 1000
MAX_BROADCAST_SEGMENTS = 5
_PHONE_HINT = "Số di động không hợp lệ (ví dụ 0901234567 hoặc +84901234567). / Invalid mobile number."


@dataclass(frozen=True)
class Group:
    name: str
    ward_id: str
    members: tuple[str, ...]   # E.164 phones or email addresses, without duplicates, in the order given


def check_group(body: dict) -> tuple[Group | None, list[FieldError]]:
    """A group of phones to broadcast to (e.g. the heads of the residential groups)."""
    errors: list[FieldError] = []
    raw_name = body.get("name")
    # The rule for every name people read (identity's for a person's too): the name shows in
    # lists and on screens, where a right-to-left override or a NUL would disguise it.
    name = normalise_display_name(raw_name)
    if not isinstance(raw_name, str) or not raw_name.strip():
        errors.append(FieldError("name", "Tên nhóm là bắt buộc. / Required."))
    elif name is None:
        errors.append(FieldError("name", "Tên nhóm có ký tự điều khiển hoặc ký tự ẩn (như ký tự đảo chiều văn bản). "
                                         "/ The name has control or invisible characters."))
    elif len(name) > MAX_GROUP_NAME:
        errors.append(FieldError("name", f"Tên nhóm tối đa {MAX_GROUP_NAME} ký tự. / Too long."))
    ward_id = body.get("ward_id")
    if not isinstance(ward_id, str) or not ward_id.strip():
        errors.append(FieldError("ward_id", "Mã phường là bắt buộc. / Required."))
    members = body.get("members")
    phones: list[str] = []
    if not isinstance(members, list) or not members:
        errors.append(FieldError("members", "Cần ít nhất một số điện thoại. / At least one phone number."))
    elif len(members) > MAX_GROUP_MEMBERS:
        errors.append(FieldError("members", f"Tối đa {MAX_GROUP_MEMBERS} số một nhóm. / Too many members."))
    else:
        for index, raw in enumerate(members):
            # A member is a mobile number (SMS) or, for those who prefer it, an email address.
            if isinstance(raw, str) and "@" in raw:
                member = normalise_email(raw)
                hint = "Địa chỉ email không hợp lệ. / Invalid email address."
            else:
                member, hint = normalise_phone(raw), _PHONE_HINT
            if member is None:
                errors.append(FieldError(f"members[{index}]", hint))
            elif member not in phones:
                phones.append(member)
    if errors:
        return None, errors
    return Group(name=name, ward_id=ward_id.strip(), members=tuple(phones)), []


def check_broadcast_text(text: object, unaccented: bool) -> tuple[SmsBody | None, list[FieldError]]:
    """A broadcast's text, bounded in segments as it will really be sent."""
    if not isinstance(text, str) or not text.strip():
        return None, [FieldError("text", "Nội dung tin nhắn là bắt buộc. / Required.")]
    # A line break is the one invisible character a message may carry; the others (direction
    # overrides, zero-width, controls) would make a phone show other words than the screen did.
    hidden = [ch for ch in unsafe_characters(text.strip()) if ch != "\n"]
    if hidden:
        return None, [FieldError(
            "text", "Tin nhắn có ký tự ẩn hoặc ký tự điều khiển (" + ", ".join(f"U+{ord(ch):04X}" for ch in hidden[:5])
            + "). Xin gõ lại nội dung. / Hidden or control characters.")]
    body = encode_sms(text.strip(), unaccented)
    if body.segments > MAX_BROADCAST_SEGMENTS:
        return None, [FieldError(
            "text",
            f"Tin nhắn dài {body.segments} phần, tối đa {MAX_BROADCAST_SEGMENTS} "
            f"(mỗi phần 67 ký tự có dấu hoặc 153 ký tự không dấu). / Too long.",
        )]
    return body, []


# ---------------------------------------------------------------- the leader's overdue digest (digest.py)
# One message a ward and working day to each of its leaders: how many dossiers went
# overdue since the last digest, and the first receipt codes (the rest counted).
TEMPLATES["overdue_digest"] = Template(
    "overdue_digest",
    "Một Cửa {ward_id}: {count} hồ sơ quá hạn mới ngày {day}: {receipt_codes}. "
    "Chi tiết tại trang Số liệu của phường.",
    dates=("day",),
)
