"""Pure rules of identity: national ids (CCCD), phone numbers, names, dates of birth,
the password policy, age bands. No framework imports: tested in microseconds."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from motcua_common.names import normalise_display_name
from motcua_common.phones import normalise_phone  # noqa: F401  (part of identity's rules)

# The 63 provincial codes that open a CCCD number (Circular 07/2016/TT-BCA, Annex I).
# People keep their number after the 2025 merger of provinces, so the old codes stay valid.
PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

# The 4th digit encodes gender and century: even = male, odd = female.
_CENTURY_BY_DIGIT = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200, 8: 1800, 9: 1800}


# Identifiers (CCCD, phone numbers, codes) are ASCII digits only. `str.isdigit()` and the
# regex `\d` also accept fullwidth ("０４８…"), Arabic-Indic ("٠٤٨…") and other scripts'
# digits: a number typed that way would be stored as another string than the card's.
NON_ASCII_DIGITS = ("Chỉ dùng chữ số 0–9 thông thường (bàn phím tiếng Việt/tiếng Anh), không dùng chữ số "
                    "toàn độ rộng hay chữ số của chữ viết khác. / ASCII digits 0-9 only.")


def is_ascii_digits(value: object, length: int | None = None) -> bool:
    """Only the ASCII digits 0-9 (and exactly `length` of them when given)."""
    return (isinstance(value, str) and value.isascii() and value.isdigit()
            and (length is None or len(value) == length))


def has_non_ascii_digits(value: object) -> bool:
    """Holds a digit that is not 0-9 (fullwidth, Arabic-Indic, ...)."""
    return isinstance(value, str) and any(ch.isdigit() and not ch.isascii() for ch in value)


def phone_errors(value: object) -> list[FieldError]:
    """The 422 for a phone number that is not one, with the clear reason when it holds
    non-ASCII digits (normalise_phone refuses them too)."""
    if has_non_ascii_digits(value):
        return [FieldError("phone", NON_ASCII_DIGITS)]
    if normalise_phone(value) is None:
        return [FieldError("phone", "Số điện thoại di động Việt Nam không hợp lệ (vd. 0905 123 456). / Invalid phone.")]
    return []


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


def check_national_id(value: object, date_of_birth: date | None) -> list[FieldError]:
    """CCCD: 12 digits; province code; gender/century digit and birth year matching the DOB."""
    field = "national_id"
    if isinstance(value, str) and has_non_ascii_digits(value):
        return [FieldError(field, NON_ASCII_DIGITS)]
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{12}", value):
        return [FieldError(field, "Số CCCD phải gồm đúng 12 chữ số. / The national id must be 12 digits.")]
    if value[:3] not in PROVINCE_CODES:
        return [FieldError(field, f"Mã tỉnh {value[:3]} trong số CCCD không tồn tại. / Unknown province code.")]
    if date_of_birth is not None:
        century = _CENTURY_BY_DIGIT[int(value[3])]
        year = century + int(value[4:6])
        if year != date_of_birth.year:
            return [FieldError(field, "Số CCCD không khớp với năm sinh (chữ số thứ 4–6). "
                                      "/ The national id does not match the year of birth.")]
    return []


def parse_date(value: object) -> date | None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def check_date_of_birth(value: object, today: date) -> tuple[date | None, list[FieldError]]:
    parsed = parse_date(value)
    if parsed is None:
        return None, [FieldError("date_of_birth", "Ngày sinh phải có dạng YYYY-MM-DD. / Use YYYY-MM-DD.")]
    if parsed > today:
        return None, [FieldError("date_of_birth", "Ngày sinh không thể ở tương lai. / Date of birth is in the future.")]
    if today.year - parsed.year > 130:
        return None, [FieldError("date_of_birth", "Ngày sinh không hợp lệ. / Implausible date of birth.")]
    return parsed, []


def normalise_name(value: object) -> str | None:
    """A person's name: the shared rule for names people read (motcua_common.names: NFC,
    spaces collapsed, no hidden characters), 2-100 characters, letters (any script's),
    spaces, ' and - only."""
    name = normalise_display_name(value)
    if name is None or not 2 <= len(name) <= 100:
        return None
    if not all(ch.isalpha() or ch in " '-" for ch in name):
        return None
    return name


MIN_PASSWORD_LENGTH = 8


def check_password(password: object, *, forbidden: tuple[str, ...] = ()) -> list[FieldError]:
    """A policy a citizen can meet on a phone keypad: 8+ characters, not one repeated
    character, not a simple run, not their national id or phone number."""
    field = "password"
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return [FieldError(field, f"Mật khẩu cần ít nhất {MIN_PASSWORD_LENGTH} ký tự. / At least {MIN_PASSWORD_LENGTH} characters.")]
    if len(password) > 128:
        return [FieldError(field, "Mật khẩu quá dài (tối đa 128 ký tự). / At most 128 characters.")]
    if len(set(password)) == 1 or password in "0123456789012345678901234567890" or password in "abcdefghijklmnopqrstuvwxyz":
        return [FieldError(field, "Mật khẩu quá dễ đoán. / Too easy to guess.")]
    for value in forbidden:
        if value and value.lstrip("+") in password:
            return [FieldError(field, "Mật khẩu không được chứa số CCCD hay số điện thoại. / Must not contain your id or phone.")]
    return []


def age_on(date_of_birth: date, today: date) -> int:
    return today.year - date_of_birth.year - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))


def age_band(date_of_birth: date, today: date) -> str:
    age = age_on(date_of_birth, today)
    if age < 18:
        return "under-18"
    if age <= 60:
        return "18-60"
    return "60+"


def birth_date_range_for_ages(today: date, youngest: int, oldest: int) -> tuple[date, date]:
    """Dates of birth of people aged youngest..oldest (inclusive) on `today`."""
    def years_ago(n: int) -> date:
        try:
            return today.replace(year=today.year - n)
        except ValueError:  # 29 February
            return today.replace(year=today.year - n, day=28)

    earliest = years_ago(oldest + 1)
    from datetime import timedelta

    return earliest + timedelta(days=1), years_ago(youngest)


# Lockout after repeated failures (CONTRACT: 423 `locked`). Counted per account *and*
# client address: a stranger who types an officer's guessable username five times locks
# only their own address out of it, never the counter PC. An unknown username counts and
# locks the same way, so that the answers do not tell which usernames exist.
MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 15

# Web registration proves the phone with a one-time code by SMS before the account is
# active (SMS registration and the counter are proof by themselves).
PHONE_CODE_DIGITS = 6
PHONE_CODE_MINUTES = 10
PHONE_CODE_TRIES = 5
# (and at most deps.PHONE_CODES_PER_PHONE_HOUR codes to one phone, PHONE_CODES_PER_CLIENT_HOUR
# asked for from one address, in an hour)


def new_phone_code() -> str:
    import secrets

    return f"{secrets.randbelow(10 ** PHONE_CODE_DIGITS):0{PHONE_CODE_DIGITS}d}"


# Temporary passwords: typed from an SMS on a phone keypad, so lowercase letters and digits
# only, without the look-alikes 0/o, 1/l/i. 8 of 31 symbols: about 8.5e11 possibilities,
# behind the lockout.
TEMPORARY_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_PASSWORD_LENGTH = 8
TEMPORARY_PASSWORD_HOURS = 72


def new_temporary_password() -> str:
    import secrets

    return "".join(secrets.choice(TEMPORARY_PASSWORD_ALPHABET) for _ in range(TEMPORARY_PASSWORD_LENGTH))


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}******{phone[-3:]}" if phone and len(phone) > 6 else "***"
