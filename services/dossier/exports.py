"""The ward's dossiers and numbers as files the leader opens in Excel: CSV (UTF-8 with a
byte order mark, so Excel shows Vietnamese right; comma-separated, CRLF) and XLSX
(openpyxl, real dates and percentages). No citizen's name, national id or phone: only
what numbers.py hands out.

Each function answers (bytes, file name); the API and the page send it as an attachment.
A cell that begins like a formula (=, +, -, @) is written as text, so that a procedure
name typed by an administrator can never run in the leader's spreadsheet."""
from __future__ import annotations

import csv
import io
import re
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Font

from motcua_common.auth import Principal

from . import domain, numbers
from .deps import Deps

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": CSV_TYPE, "xlsx": XLSX_TYPE}
BOM = "\ufeff"

DOSSIER_COLUMNS = (
    ("receipt_code", "Mã hồ sơ"), ("procedure_code", "Mã thủ tục"), ("procedure_name", "Tên thủ tục"),
    ("channel", "Kênh nộp"), ("status", "Trạng thái"), ("received_on", "Ngày tiếp nhận"),
    ("due_date", "Hạn trả"), ("returned_on", "Ngày trả kết quả"), ("on_time", "Trả đúng hạn"),
    ("overdue", "Đang quá hạn"),
)
PROCEDURE_COLUMNS = (
    ("procedure_code", "Mã thủ tục"), ("procedure_name", "Tên thủ tục"), ("submitted", "Tiếp nhận"),
    ("online", "Trực tuyến"), ("counter", "Tại Bộ phận một cửa"), ("online_share", "Tỷ lệ trực tuyến"),
    ("returned", "Đã trả kết quả"), ("returned_on_time", "Trả đúng hạn"), ("on_time_rate", "Tỷ lệ đúng hạn"),
    ("overdue", "Đang quá hạn"),
)
OVERDUE_COLUMNS = (
    ("receipt_code", "Mã hồ sơ"), ("procedure_name", "Tên thủ tục"), ("status_label", "Trạng thái"),
    ("received_on", "Ngày tiếp nhận"), ("due_date", "Hạn trả"), ("days_late", "Số ngày quá hạn"),
)
RATES = {"online_share", "on_time_rate"}
DATES = {"received_on", "due_date", "returned_on"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


# ---------------------------------------------------------------- use cases
def dossiers_file(deps: Deps, principal: Principal, ward_id: str, fmt: str, from_text: str | None,
                  to_text: str | None) -> tuple[bytes, str]:
    """The ward's dossiers received in the range, one row each."""
    numbers.check_watcher(principal, ward_id)
    asked = numbers.period(deps, from_text, to_text)
    rows = numbers.ward_dossiers(deps, principal, ward_id, asked)
    name = file_name("ho-so", ward_id, asked, fmt)
    header = [label for _, label in DOSSIER_COLUMNS]
    if fmt == "csv":
        return _csv([header, *([_text(key, row[key]) for key, _ in DOSSIER_COLUMNS] for row in rows)]), name
    book = Workbook()
    sheet = book.active
    sheet.title = "Hồ sơ"
    _table(sheet, DOSSIER_COLUMNS, rows)
    return _xlsx(book), name


def stats_file(deps: Deps, principal: Principal, ward_id: str, fmt: str, from_text: str | None,
               to_text: str | None) -> tuple[bytes, str]:
    """The ward's numbers over the range: the totals, then per procedure, then the overdue list."""
    stats = numbers.ward_numbers(deps, principal, ward_id, from_text, to_text)
    asked = numbers.Period(date.fromisoformat(stats["from"]) if stats["from"] else None,
                           date.fromisoformat(stats["to"]))
    name = file_name("so-lieu", ward_id, asked, fmt)
    summary = summary_rows(stats)
    procedures = [{**row, "procedure_name": stats["procedure_names"][row["procedure_code"]]}
                  for row in stats["by_procedure"]]
    if fmt == "csv":
        lines = [["Chỉ tiêu", "Giá trị"], *([label, _text(key, value)] for key, label, value in summary), [],
                 [label for _, label in PROCEDURE_COLUMNS],
                 *([_text(key, row[key]) for key, _ in PROCEDURE_COLUMNS] for row in procedures), [],
                 ["Hồ sơ đang quá hạn"], [label for _, label in OVERDUE_COLUMNS],
                 *([_text(key, row[key]) for key, _ in OVERDUE_COLUMNS] for row in stats["overdue_dossiers"])]
        return _csv(lines), name
    book = Workbook()
    sheet = book.active
    sheet.title = "Tổng hợp"
    sheet.append(["Chỉ tiêu", "Giá trị"])
    sheet["A1"].font = sheet["B1"].font = Font(bold=True)
    for row_number, (key, label, value) in enumerate(summary, start=2):
        sheet.append([label, _cell_value(key, value)])
        _format_cell(sheet.cell(row=row_number, column=2), key)
    sheet.column_dimensions["A"].width = 36
    sheet.column_dimensions["B"].width = 18
    _table(book.create_sheet("Theo thủ tục"), PROCEDURE_COLUMNS, procedures)
    _table(book.create_sheet("Quá hạn"), OVERDUE_COLUMNS, stats["overdue_dossiers"])
    return _xlsx(book), name


def summary_rows(stats: dict) -> list[tuple[str, str, object]]:
    """(key, label, value) of the totals, as the page, the CSV and the XLSX show them."""
    return [
        ("ward_id", "Phường", stats["ward_id"]),
        ("from", "Từ ngày", stats["from"] or "(từ hồ sơ đầu tiên)"),
        ("to", "Đến ngày", stats["to"]),
        ("as_of", "Số liệu tính đến ngày", stats["as_of"]),
        ("submitted", "Hồ sơ tiếp nhận", stats["submitted"]),
        ("online", "Nộp trực tuyến", stats["online"]),
        ("counter", "Nộp tại Bộ phận một cửa", stats["counter"]),
        ("online_share", "Tỷ lệ nộp trực tuyến", stats["online_share"]),
        ("returned", "Đã trả kết quả", stats["returned"]),
        ("returned_on_time", "Trả đúng hạn", stats["returned_on_time"]),
        ("on_time_rate", "Tỷ lệ trả đúng hạn", stats["on_time_rate"]),
        ("overdue", "Đang quá hạn", stats["overdue"]),
    ]


def file_name(kind: str, ward_id: str, asked: numbers.Period, fmt: str) -> str:
    ward = _SAFE_NAME.sub("-", ward_id)[:60] or "phuong"
    since = asked.first_day.isoformat() if asked.first_day else "dau-ky"
    return f"{kind}-{ward}-{since}-den-{asked.last_day.isoformat()}.{fmt}"


# ---------------------------------------------------------------- cells
def _text(key: str, value) -> str:
    """A value as CSV text: dates YYYY-MM-DD (Excel reads them as dates in any locale),
    rates as percentages with a decimal comma, yes/no in Vietnamese."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if key in RATES:
        return f"{value * 100:.1f}".replace(".", ",") + "%"
    if key == "channel":
        return numbers.CHANNEL_LABELS.get(value, value)
    if key == "status":
        return domain.STATUS_LABELS.get(value, value)
    if isinstance(value, str):
        return _defused(value)
    return str(value)


def _cell_value(key: str, value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if key in DATES or key in ("from", "to", "as_of"):
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            return _defused(str(value))
    if key == "channel":
        return numbers.CHANNEL_LABELS.get(value, value)
    if key == "status":
        return domain.STATUS_LABELS.get(value, value)
    if isinstance(value, str):
        return _defused(value)
    return value


def _format_cell(cell, key: str) -> None:
    if key in RATES and cell.value is not None:
        cell.number_format = "0.0%"
    elif key in DATES or key in ("from", "to", "as_of"):
        cell.number_format = "DD/MM/YYYY"


def _defused(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _table(sheet, columns, rows) -> None:
    sheet.append([label for _, label in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    # Formats set per cell as the row is written (sheet.max_row is recounted on every
    # call: asking it per row made a ward's year of dossiers take a minute).
    formatted = [(index, key) for index, (key, _) in enumerate(columns, start=1) if key in RATES or key in DATES]
    for row_number, row in enumerate(rows, start=2):
        sheet.append([_cell_value(key, row[key]) for key, _ in columns])
        for index, key in formatted:
            _format_cell(sheet.cell(row=row_number, column=index), key)
    for index, (key, label) in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = \
            48 if key == "procedure_name" else max(14, len(label) + 2)
    sheet.freeze_panes = "A2"


def _csv(lines) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(lines)
    return (BOM + out.getvalue()).encode("utf-8")


def _xlsx(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
