"""The SMS command grammar of the short code (seed 000), pure and forgiving:

  DK <CCCD> <họ tên> <dd/mm/yyyy> [phường]
                                      register (reply: a temporary password, valid 72 h);
                                      an optional last part names the ward: its official
                                      code (05518) or its name (Song Cong)
  MK <mật khẩu cũ> <mật khẩu mới>      change the password
  TT <mã hồ sơ>                        a dossier's status
  1 | 2 | 3, or DG 1 | DG 2 | DG 3     rate the dossier whose result-ready SMS this answers:
                                      1 rất hài lòng, 2 hài lòng, 3 không hài lòng

Citizens type on phone keypads: any case, with or without diacritics (Đk, dk, ĐK), extra
spaces, and dates written with '/', '-' or '.' and one-digit days or months. A message
that is not understood gets a reply explaining the right form — never silence."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from motcua_common.names import unaccent  # noqa: F401  (the shared rule; tests import it from here)


@dataclass(frozen=True)
class Register:
    national_id: str
    full_name: str
    date_of_birth: date
    ward: str | None = None     # what followed the date: an official code or a ward's name


@dataclass(frozen=True)
class ChangePassword:
    old_password: str
    new_password: str


@dataclass(frozen=True)
class Status:
    receipt_code: str


@dataclass(frozen=True)
class Rate:
    score: str          # very_satisfied | satisfied | unsatisfied


SCORES = {"1": "very_satisfied", "2": "satisfied", "3": "unsatisfied"}
# How the reply names a score (unaccented, like every reply).
SCORE_WORDS = {"very_satisfied": "Rat hai long", "satisfied": "Hai long", "unsatisfied": "Khong hai long"}
_RATE = re.compile(r"^(?:DG)?([123])[.!]*$")


@dataclass(frozen=True)
class NotUnderstood:
    reply: str          # what to text back


HELP = ("Cu phap: DK <so CCCD> <ho ten> <ngay/thang/nam sinh> de dang ky; "
        "MK <mat khau cu> <mat khau moi> de doi mat khau; TT <ma ho so> de tra cuu ho so; "
        "DG 1/2/3 de danh gia ho so da co ket qua.")
NON_ASCII = ("So chi gom cac chu so 0-9 thong thuong (khong dung chu so toan do rong hay chu so cua chu viet khac). ")

MAX_WARD_WORDS = 5
_DATE = re.compile(r"^([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4})$")


def _non_ascii_digits(text: str) -> bool:
    return any(ch.isdigit() and not ch.isascii() for ch in text)


def parse(text: str) -> Register | ChangePassword | Status | Rate | NotUnderstood:
    words = unicodedata.normalize("NFC", text or "").split()
    if not words:
        return NotUnderstood("Tin nhan trong. " + HELP)
    # A rating answers the result-ready SMS: "1", "dg 2", "ĐG3", "Dg 1." (any case, spaces, diacritics).
    rating = _RATE.match(unaccent("".join(words)).upper())
    if rating:
        return Rate(SCORES[rating.group(1)])
    keyword = unaccent(words[0]).upper()
    if keyword == "DG":
        return NotUnderstood("Sai cu phap danh gia. Soan: DG 1 (rat hai long), DG 2 (hai long) hoac "
                             "DG 3 (khong hai long).")
    rest = words[1:]
    if keyword == "DK":
        return _register(rest)
    if keyword == "MK":
        if len(rest) != 2:
            return NotUnderstood("Sai cu phap doi mat khau. Soan: MK <mat khau cu> <mat khau moi> "
                                 "(mat khau khong chua dau cach).")
        return ChangePassword(rest[0], rest[1])
    if keyword == "TT":
        if len(rest) == 1 and _non_ascii_digits(rest[0]):
            return NotUnderstood("Ma ho so " + NON_ASCII + "Soan: TT <ma ho so>.")
        if len(rest) != 1:
            return NotUnderstood("Sai cu phap tra cuu. Soan: TT <ma ho so>, vi du TT HC-261121-7KQ2M.")
        return Status(rest[0].upper())
    return NotUnderstood(f"Khong hieu lenh '{unaccent(words[0])[:10]}'. " + HELP)


def _register(rest: list[str]) -> Register | NotUnderstood:
    usage = ("Soan: DK <so CCCD 12 so> <ho ten> <ngay/thang/nam sinh> [ma phuong], "
             "vi du DK 048090001234 Nguyen Van An 01/05/1990 05518.")
    if len(rest) < 3:
        return NotUnderstood("Thieu thong tin dang ky. " + usage)
    national_id, *name_words, birth = rest
    if _non_ascii_digits(national_id) or _non_ascii_digits(birth):
        return NotUnderstood(NON_ASCII + usage)
    if not re.fullmatch(r"[0-9]{12}", national_id):
        return NotUnderstood("So CCCD phai gom 12 chu so. " + usage)
    # The ward, when given, follows the date: the last word shaped like a date ends the
    # name (a name never holds a date), at most MAX_WARD_WORDS words after it.
    ward = None
    dated = [i for i, word in enumerate(rest[1:], start=1) if _DATE.match(word)]
    if dated and dated[-1] < len(rest) - 1 and len(rest) - 1 - dated[-1] <= MAX_WARD_WORDS:
        at = dated[-1]
        ward = " ".join(rest[at + 1:])
        name_words, birth = rest[1:at], rest[at]
    match = _DATE.match(birth)
    if not match:
        return NotUnderstood("Ngay sinh chua dung dang ngay/thang/nam. " + usage)
    day, month, year = (int(g) for g in match.groups())
    try:
        born = date(year, month, day)
    except ValueError:
        return NotUnderstood(f"Ngay sinh {birth} khong ton tai. " + usage)
    if not name_words:
        return NotUnderstood("Thieu ho ten. " + usage)
    # Names typed without diacritics are kept as typed, in title case ("nguyen van an" -> "Nguyen Van An").
    full_name = " ".join(w[:1].upper() + w[1:].lower() for w in name_words)
    return Register(national_id, full_name, born, ward)
