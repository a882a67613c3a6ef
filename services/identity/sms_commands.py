"""The SMS command grammar of the short code (seed 000), pure and forgiving:

  DK <CCCD> <họ tên> <dd/mm/yyyy>     register (reply: a temporary password, valid 72 h)
  MK <mật khẩu cũ> <mật khẩu mới>      change the password
  TT <mã hồ sơ>                        a dossier's status

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


@dataclass(frozen=True)
class ChangePassword:
    old_password: str
    new_password: str


@dataclass(frozen=True)
class Status:
    receipt_code: str


@dataclass(frozen=True)
class NotUnderstood:
    reply: str          # what to text back


HELP = ("Cu phap: DK <so CCCD> <ho ten> <ngay/thang/nam sinh> de dang ky; "
        "MK <mat khau cu> <mat khau moi> de doi mat khau; TT <ma ho so> de tra cuu ho so.")

_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


def parse(text: str) -> Register | ChangePassword | Status | NotUnderstood:
    words = unicodedata.normalize("NFC", text or "").split()
    if not words:
        return NotUnderstood("Tin nhan trong. " + HELP)
    keyword = unaccent(words[0]).upper()
    rest = words[1:]
    if keyword == "DK":
        return _register(rest)
    if keyword == "MK":
        if len(rest) != 2:
            return NotUnderstood("Sai cu phap doi mat khau. Soan: MK <mat khau cu> <mat khau moi> "
                                 "(mat khau khong chua dau cach).")
        return ChangePassword(rest[0], rest[1])
    if keyword == "TT":
        if len(rest) != 1:
            return NotUnderstood("Sai cu phap tra cuu. Soan: TT <ma ho so>, vi du TT HC-261121-7KQ2M.")
        return Status(rest[0].upper())
    return NotUnderstood(f"Khong hieu lenh '{unaccent(words[0])[:10]}'. " + HELP)


def _register(rest: list[str]) -> Register | NotUnderstood:
    usage = "Soan: DK <so CCCD 12 so> <ho ten> <ngay/thang/nam sinh>, vi du DK 048090001234 Nguyen Van An 01/05/1990."
    if len(rest) < 3:
        return NotUnderstood("Thieu thong tin dang ky. " + usage)
    national_id, *name_words, birth = rest
    if not re.fullmatch(r"\d{12}", national_id):
        return NotUnderstood("So CCCD phai gom 12 chu so. " + usage)
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
    return Register(national_id, full_name, born)
