"""Bringing wards in at once, for the ops engineer opening a whole province:

    motcua wards open --province 19          every commune and ward of Thái Nguyên
    motcua wards import wards.csv            official_code,ward_id,target_population

Both call identity's own use case (`motcua_identity.wards.open_ward`), exactly as the
administrator's page and `POST /identity/api/v1/wards` do: the ward is written with its
WardOpened event in identity's outbox, and the relay of a running platform carries it to
queue, rating and dossier. Safe to run twice: a ward already open is counted, not opened
again. The official list is the `vietnam-provinces` package (the 34 provinces and 3,321
communes, wards and special zones since 1 July 2025)."""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tally:
    opened: list[str] = field(default_factory=list)
    already_open: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)   # "line 4: 99999: no such official code"

    def summary(self) -> str:
        return (f"{len(self.opened)} opened, {len(self.already_open)} already open"
                + (f", {len(self.refused)} refused" if self.refused else ""))


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line every tenth of the
    way when the output is a log file."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.stream, self.width = max(total, 1), stream or sys.stderr, width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_tenth = -1

    def step(self, done: int, label: str) -> None:
        fraction = done / self.total
        filled = int(self.width * fraction)
        bar = f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total} {label}"
        if self.tty:
            self.stream.write("\r" + bar[:110].ljust(110))
            if done == self.total:
                self.stream.write("\n")
        elif int(fraction * 10) > self._last_tenth or done == self.total:
            self._last_tenth = int(fraction * 10)
            self.stream.write(bar + "\n")
        self.stream.flush()


def province_units(province_code: str) -> list[str]:
    """The official codes of a province's communes, wards and special zones, in code order."""
    from vietnam_provinces import Province, Ward

    try:
        number = int(province_code)
        Province.from_code(number)
    except (ValueError, TypeError):
        raise SystemExit(f"motcua: error: {province_code!r} is not a province code (two digits, e.g. 19 for Thái Nguyên)")
    return sorted(f"{int(w.code):05d}" for w in Ward.iter_all() if int(w.province_code) == number)


@dataclass(frozen=True)
class Row:
    line: int
    official_code: str
    ward_id: str | None
    target_population: int | None


def read_csv(path: Path) -> tuple[list[Row], list[str]]:
    """Rows of official_code,ward_id,target_population (a header line; ward_id and
    target_population may be empty), and the lines that cannot be read."""
    rows, problems = [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "official_code" not in [h.strip() for h in reader.fieldnames]:
            raise SystemExit(f"motcua: error: {path}: the first line must name the columns: "
                             "official_code,ward_id,target_population")
        for number, record in enumerate(reader, start=2):
            record = {(k or "").strip(): (v or "").strip() for k, v in record.items()}
            code = record.get("official_code", "")
            if code.isdigit() and len(code) < 5:
                code = code.zfill(5)  # a spreadsheet drops leading zeros: 4 -> 00004
            population = record.get("target_population") or ""
            if population and not (population.isascii() and population.isdigit()):
                problems.append(f"line {number}: target_population {population!r} is not a whole number")
                continue
            rows.append(Row(number, code, record.get("ward_id") or None, int(population) if population else None))
    return rows, problems


def open_many(settings, rows: list[Row], progress: Progress | None = None) -> Tally:
    from motcua_identity import errors as identity_errors
    from motcua_identity import wards as identity_wards
    from motcua_identity.deps import build_deps

    deps = build_deps(settings)
    tally = Tally()
    try:
        for done, row in enumerate(rows, start=1):
            try:
                ward = identity_wards.open_ward(deps, None, row.official_code, ward_id=row.ward_id,
                                                target_population=row.target_population)
                tally.opened.append(f"{ward['official_code']} {ward['ward_id']} {ward['name']}")
                label = ward["name"]
            except identity_errors.WardExists:
                tally.already_open.append(row.official_code)
                label = f"{row.official_code} already open"
            except identity_errors.IdentityError as exc:
                tally.refused.append(f"line {row.line}: {row.official_code}: {_reason(exc)}")
                label = f"{row.official_code} refused"
            if progress:
                progress.step(done, label)
    finally:
        deps.db.client.close()
    return tally


def _reason(error) -> str:
    errors = getattr(error, "errors", None)
    if errors:
        return "; ".join(f"{e['field']}: {e['message']}" if isinstance(e, dict)
                         else f"{getattr(e, 'field', '?')}: {getattr(e, 'message', e)}" for e in errors)
    return getattr(error, "detail", None) or type(error).__name__
