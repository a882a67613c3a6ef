"""The ward's numbers for its leader: GET /wards/{ward_id}/stats over a range of days
(422 for a bad date or from after to), the page /dossier/desk/{ward_id}/so-lieu, and the
CSV (UTF-8 with BOM) and XLSX exports of the ward's dossiers and of its numbers — with
nothing about the citizens in them."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from motcua_common.web_session import SESSION_COOKIE

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
API = "/dossier/api/v1"
COUNTER_CITIZEN_NATIONAL_ID = "048185000777"


def run(client, dossier_id, headers, *actions):
    for action in actions:
        response = client.post(f"{API}/dossiers/{dossier_id}/actions", json={"action": action}, headers=headers)
        assert response.status_code == 200, response.json


@pytest.fixture
def history(client, submit, officer, leader, clock, pay_at_counter, dossier_db):
    """10/3: A online and B at the counter; A returned on time on 11/3; 16/3: C online.
    Today is 17/3: B, due 12/3 and untouched, is 5 days late."""
    a = submit().json
    b = submit(headers=officer, citizen_national_id=COUNTER_CITIZEN_NATIONAL_ID).json
    clock.on(date(2026, 3, 11))
    pay_at_counter(a["dossier_id"])
    run(client, a["dossier_id"], officer, "receive", "start_processing")
    run(client, a["dossier_id"], leader, "approve")
    run(client, a["dossier_id"], officer, "return")
    clock.on(date(2026, 3, 16))
    c = submit().json
    clock.on(date(2026, 3, 17))
    return {"a": a, "b": b, "c": c}


def stats(client, headers, **query):
    return client.get(f"{API}/wards/{WARD}/stats", query_string=query, headers=headers)


def test_the_numbers_over_all_time_and_over_a_range(client, history, token):
    monitor = token("monitor")
    everything = stats(client, monitor).json
    assert {k: everything[k] for k in ("from", "to", "as_of", "submitted", "online", "counter", "returned",
                                       "returned_on_time", "overdue", "on_time_rate")} == {
        "from": None, "to": "2026-03-17", "as_of": "2026-03-17", "submitted": 3, "online": 2, "counter": 1,
        "returned": 1, "returned_on_time": 1, "overdue": 1, "on_time_rate": 1.0}
    assert everything["online_share"] == round(2 / 3, 4)
    [late] = everything["overdue_dossiers"]
    assert late["receipt_code"] == history["b"]["receipt_code"] and late["due_date"] == "2026-03-12"
    assert late["days_late"] == 5 and late["status"] == "submitted"
    [marriage] = everything["by_procedure"]
    assert marriage["procedure_code"] == "HT-XNHN" and marriage["online_share"] == round(2 / 3, 4)
    assert everything["procedure_names"]["HT-XNHN"] == "Cấp Giấy xác nhận tình trạng hôn nhân"

    first_day = stats(client, monitor, **{"from": "2026-03-10", "to": "2026-03-10"}).json
    assert (first_day["submitted"], first_day["online"], first_day["counter"]) == (2, 1, 1)
    assert first_day["returned"] == 0 and first_day["on_time_rate"] is None  # A came back on the 11th
    assert first_day["overdue"] == 1

    returned_day = stats(client, monitor, **{"from": "2026-03-11", "to": "2026-03-11"}).json
    assert (returned_day["submitted"], returned_day["returned"], returned_day["returned_on_time"]) == (0, 1, 1)

    lately = stats(client, monitor, **{"from": "2026-03-16"}).json
    assert (lately["from"], lately["to"], lately["submitted"], lately["overdue"]) == ("2026-03-16", "2026-03-17", 1, 0)
    assert lately["overdue_dossiers"] == []


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-13-01"}, "from"),
    ({"to": "10/03/2026"}, "to"),
    ({"from": "2026-03-10T00:00"}, "from"),
    ({"from": "2026-03-17", "to": "2026-03-10"}, "from"),
])
def test_bad_dates_are_refused_with_422(client, token, query, field):
    response = stats(client, token("monitor"), **query)
    assert response.status_code == 422 and response.json["code"] == "validation_failed"
    assert [e["field"] for e in response.json["errors"]] == [field]
    export = client.get(f"{API}/wards/{WARD}/exports/dossiers.csv", query_string=query, headers=token("monitor"))
    assert export.status_code == 422


def test_who_reads_the_numbers_and_the_exports(client, token, officer, leader):
    for url in (f"{API}/wards/{WARD}/stats", f"{API}/wards/{WARD}/exports/dossiers.csv",
                f"{API}/wards/{WARD}/exports/stats.xlsx"):
        answers = {who: client.get(url, headers=headers).status_code for who, headers in {
            "officer": officer, "leader": leader, "ward_admin": token("ward_admin", WARD), "monitor": token("monitor"),
            "admin": token("admin"), "other ward": token("officer", OTHER_WARD), "citizen": token("citizen"),
            "nobody": {}}.items()}
        assert answers == {"officer": 200, "leader": 200, "ward_admin": 200, "monitor": 200, "admin": 200,
                           "other ward": 403, "citizen": 403, "nobody": 401}, url
    assert client.get(f"{API}/wards/{WARD}/exports/dossiers.pdf", headers=leader).status_code == 404
    assert client.get(f"{API}/wards/{WARD}/exports/citizens.csv", headers=leader).status_code == 404


def _csv_rows(response) -> list[list[str]]:
    raw = response.data
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))


def test_the_dossiers_export_as_csv(client, history, leader, citizens):
    response = client.get(f"{API}/wards/{WARD}/exports/dossiers.csv", headers=leader)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="ho-so-{WARD}-dau-ky-den-2026-03-17.csv"'
    header, *rows = _csv_rows(response)
    assert header == ["Mã hồ sơ", "Mã thủ tục", "Tên thủ tục", "Kênh nộp", "Trạng thái", "Ngày tiếp nhận", "Hạn trả",
                      "Ngày trả kết quả", "Trả đúng hạn", "Đang quá hạn"]
    by_code = {row[0]: row for row in rows}
    assert set(by_code) == {history[k]["receipt_code"] for k in "abc"}
    a = by_code[history["a"]["receipt_code"]]
    assert a[1:] == ["HT-XNHN", "Cấp Giấy xác nhận tình trạng hôn nhân", "Trực tuyến", "Đã trả kết quả",
                     "2026-03-10", "2026-03-12", "2026-03-11", "Có", "Không"]
    b = by_code[history["b"]["receipt_code"]]
    assert b[3] == "Tại Bộ phận một cửa" and b[7:] == ["", "", "Có"]
    text = response.data.decode("utf-8")
    for person in citizens.people:  # no national id, no phone
        assert person["national_id"] not in text and person["phone"] not in text and person["phone"][-4:] not in text

    ranged = client.get(f"{API}/wards/{WARD}/exports/dossiers.csv?from=2026-03-16&to=2026-03-17", headers=leader)
    assert ranged.headers["Content-Disposition"] == \
        f'attachment; filename="ho-so-{WARD}-2026-03-16-den-2026-03-17.csv"'
    assert [row[0] for row in _csv_rows(ranged)[1:]] == [history["c"]["receipt_code"]]


def test_the_dossiers_export_as_xlsx(client, history, leader):
    response = client.get(f"{API}/wards/{WARD}/exports/dossiers.xlsx", headers=leader)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(response.data))
    sheet = book["Hồ sơ"]
    header, *rows = list(sheet.values)
    assert header[0] == "Mã hồ sơ" and len(rows) == 3
    a = next(row for row in rows if row[0] == history["a"]["receipt_code"])
    assert a[5] == datetime(2026, 3, 10) and a[7] == datetime(2026, 3, 11) and a[8] == "Có"
    assert sheet.cell(row=2, column=6).number_format == "DD/MM/YYYY"


def test_the_numbers_export_as_csv_and_xlsx(client, history, token):
    monitor = token("monitor")
    response = client.get(f"{API}/wards/{WARD}/exports/stats.csv?from=2026-03-10", headers=monitor)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="so-lieu-{WARD}-2026-03-10-den-2026-03-17.csv"'
    rows = _csv_rows(response)
    summary = {row[0]: row[1] for row in rows[1:rows.index([])]}
    assert summary["Hồ sơ tiếp nhận"] == "3" and summary["Nộp trực tuyến"] == "2"
    assert summary["Tỷ lệ nộp trực tuyến"] == "66,7%" and summary["Tỷ lệ trả đúng hạn"] == "100,0%"
    assert summary["Đang quá hạn"] == "1" and summary["Từ ngày"] == "2026-03-10"
    assert ["Hồ sơ đang quá hạn"] in rows
    assert any(row and row[0] == history["b"]["receipt_code"] for row in rows)

    book = load_workbook(io.BytesIO(client.get(f"{API}/wards/{WARD}/exports/stats.xlsx", headers=monitor).data))
    assert book.sheetnames == ["Tổng hợp", "Theo thủ tục", "Quá hạn"]
    totals = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(min_row=2, values_only=True)}
    assert totals["Hồ sơ tiếp nhận"] == 3 and totals["Tỷ lệ nộp trực tuyến"] == round(2 / 3, 4)
    [procedure] = list(book["Theo thủ tục"].iter_rows(min_row=2, values_only=True))
    assert procedure[:3] == ("HT-XNHN", "Cấp Giấy xác nhận tình trạng hôn nhân", 3)
    [late] = list(book["Quá hạn"].iter_rows(min_row=2, values_only=True))
    assert late[0] == history["b"]["receipt_code"] and late[-1] == 5


def test_a_formula_in_a_procedure_name_stays_text(client, history, leader, dossier_db):
    dossier_db.dossiers.update_many({}, {"$set": {"procedure_name": "=HYPERLINK(\"http://x\")"}})
    rows = _csv_rows(client.get(f"{API}/wards/{WARD}/exports/dossiers.csv", headers=leader))
    assert all(row[2] == "'=HYPERLINK(\"http://x\")" for row in rows[1:])


# ---------------------------------------------------------------- the leader's page
@pytest.fixture
def browser(client, signing_key):
    def sign_in(subject: str, role: str, ward_id: str | None):
        client.set_cookie(SESSION_COOKIE, signing_key.issue(subject, role, ward_id, 600))
        return client

    return sign_in


def test_the_leader_reads_the_numbers_on_the_page(client, history, browser):
    url = f"/dossier/desk/{WARD}/so-lieu"
    anonymous = client.get(url)
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/identity/login?next=")

    browser("off-lc-1", "officer", OTHER_WARD)
    assert client.get(url).status_code == 403
    browser("mon-1", "monitor", None)
    assert client.get(url).status_code == 200

    browser("lead-hc", "leader", WARD)
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Số liệu giải quyết thủ tục hành chính" in html
    assert 'data-submitted>3<' in html and 'data-online>2<' in html and 'data-counter>1<' in html
    assert 'data-on-time-rate>100,0%<' in html and "66,7%" in html
    assert f'data-receipt-code="{history["b"]["receipt_code"]}"' in html
    assert f"/dossier/desk/{WARD}/so-lieu/ho-so.xlsx" in html and f"/queue/board/{WARD}" in html
    for secret in (COUNTER_CITIZEN_NATIONAL_ID, "0905123456", "0912000999"):
        assert secret not in html

    ranged = client.get(url + "?from=2026-03-16&to=")
    assert 'data-submitted>1<' in ranged.get_data(as_text=True)

    wrong = client.get(url + "?from=2026-03-17&to=2026-03-01")
    assert wrong.status_code == 422 and "data-error" in wrong.get_data(as_text=True)

    download = client.get(f"/dossier/desk/{WARD}/so-lieu/ho-so.csv?from=2026-03-10")
    assert download.status_code == 200 and download.data.startswith(b"\xef\xbb\xbf")
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert client.get(f"/dossier/desk/{WARD}/so-lieu/tong-hop.xlsx").status_code == 200
    assert client.get(f"/dossier/desk/{WARD}/so-lieu/mat-khau.csv").status_code == 404


def test_an_impossible_ward_id_is_404_never_a_file_named_after_it(client, token):
    """Found by schemathesis: an admin's export for a ward id full of control characters
    reached the spreadsheet writer (500)."""
    admin = token("admin", None)
    for path in ("/dossier/api/v1/wards/%5D%C2%AA%09x/exports/stats.xlsx", "/dossier/api/v1/wards/%00/stats"):
        answer = client.get(path, headers=admin)
        assert answer.status_code == 404 and answer.json["code"] == "ward_not_found", answer.json
