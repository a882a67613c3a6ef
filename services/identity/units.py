"""The administrative units in force since 1 July 2025 — 34 provinces and their 3,321
communes, wards and special zones, with their official codes — as the platform shows and
opens them. Pure: the `vietnam-provinces` package is the only source (never a typed list),
read once per process into a small index.

Codes are text with their leading zeros, as official documents print them: a unit's
official code has five digits (`"05518"` Phường Sông Công), a province's two (`"19"`
Thái Nguyên)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from motcua_common.names import fold

KINDS = ("phường", "xã", "đặc khu")


@dataclass(frozen=True)
class Unit:
    official_code: str     # five digits
    name: str              # "Phường Sông Công"
    kind: str              # phường | xã | đặc khu
    province_code: str     # two digits
    province: str          # "Tỉnh Thái Nguyên", "Thành phố Hà Nội"
    codename: str          # "phuong_song_cong" (unique only within a province)
    folded: str            # "phuong song cong": what a search without accents matches

    def public(self) -> dict:
        return {"official_code": self.official_code, "name": self.name, "kind": self.kind,
                "province_code": self.province_code, "province": self.province}

    @property
    def short_name(self) -> str:
        """The name without its kind: "Sông Công"."""
        for kind in sorted(KINDS, key=len, reverse=True):
            if self.name.lower().startswith(kind + " "):
                return self.name[len(kind) + 1:]
        return self.name


@dataclass(frozen=True)
class Province:
    province_code: str
    name: str              # full name with its division: "Tỉnh Thái Nguyên"
    folded: str


def _full_province_name(name: str, division: str) -> str:
    """The package names some provinces with their division ("Thành phố Hà Nội") and most
    without ("Thái Nguyên"): always the full name."""
    if name.lower().startswith(division.lower()) or name.lower().startswith(("tỉnh ", "thành phố ")):
        return name
    prefix = "Thành phố" if division.startswith("thành phố") else "Tỉnh"
    return f"{prefix} {name}"


@dataclass(frozen=True)
class _Index:
    units: tuple[Unit, ...]
    by_code: dict[str, Unit]
    provinces: tuple[Province, ...]
    province_by_code: dict[str, Province]


@lru_cache(maxsize=1)
def _index() -> _Index:
    from vietnam_provinces import Province as RefProvince, Ward as RefWard

    provinces: dict[int, Province] = {}
    units = []
    for ward in RefWard.iter_all():
        number = int(ward.province_code)
        if number not in provinces:
            ref = RefProvince.from_code(number)
            full = _full_province_name(ref.name, ref.division_type.value)
            provinces[number] = Province(f"{number:02d}", full, fold(full))
        province = provinces[number]
        units.append(Unit(official_code=f"{int(ward.code):05d}", name=ward.name, kind=ward.division_type.value,
                          province_code=province.province_code, province=province.name,
                          codename=ward.codename, folded=fold(ward.name)))
    units.sort(key=lambda u: (u.province_code, u.official_code))
    ordered = tuple(sorted(provinces.values(), key=lambda p: fold(p.name.removeprefix("Tỉnh ").removeprefix("Thành phố "))))
    return _Index(tuple(units), {u.official_code: u for u in units}, ordered,
                  {p.province_code: p for p in ordered})


def all_units() -> tuple[Unit, ...]:
    return _index().units


def provinces() -> tuple[Province, ...]:
    """The 34 provinces, in alphabetical order of their names without the division."""
    return _index().provinces


_DIGITS = re.compile(r"^[0-9]{1,5}$")


def official_code(value: object) -> str | None:
    """A unit's official code as typed — "05518", "5518" (a spreadsheet drops leading
    zeros) or 5518 — as five digits; None when it is not a code's shape."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _DIGITS.match(value.strip()):
        return None
    return value.strip().zfill(5)


def province_code(value: object) -> str | None:
    """A province's code as typed ("19", "019", "1" or 19) as two digits, when such a
    province exists; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,3}", value.strip()):
        return None
    code = f"{int(value):02d}"
    return code if code in _index().province_by_code else None


def unit(code: object) -> Unit | None:
    """The unit of an official code (any form official_code() reads), or None."""
    normal = official_code(code)
    return _index().by_code.get(normal) if normal else None


def province(code: str) -> Province | None:
    return _index().province_by_code.get(code)


def search(province_code: str | None = None, q: str | None = None) -> list[Unit]:
    """Units of a province (two digits; None: all) whose name, typed with or without
    accents, contains `q` ("song cong" finds Phường Sông Công); a `q` of digits matches
    official codes by their beginning."""
    found: list[Unit] = list(all_units())
    if province_code:
        found = [u for u in found if u.province_code == province_code]
    if q and q.strip():
        text = fold(q)
        if text.isdigit():
            found = [u for u in found if u.official_code.startswith(text) or u.official_code.startswith(text.zfill(5))]
        else:
            found = [u for u in found if text in u.folded]
    return found


def default_ward_id(found: Unit) -> str:
    """The ward id a unit gets when none is chosen: its codename ("phuong-song-cong")."""
    return found.codename.replace("_", "-")


def unique_ward_id(found: Unit) -> str:
    """The id when the codename is taken by another province's namesake ("xa-tan-thanh-…")."""
    return f"{default_ward_id(found)}-{found.official_code}"

