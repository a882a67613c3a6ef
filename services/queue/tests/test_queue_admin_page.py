"""The ward admin's page (/queue/admin/{ward}) against the SecantusDB server: sign-in through
the platform's web session cookie, who may see it, each form posted with its CSRF token
and the page after it (saved message, errors beside the fields), kiosk pairing and
revoking."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_common.web_session import CSRF_COOKIE, SESSION_COOKIE
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare

WARD = "dn-hai-chau"
PAGE = f"/queue/admin/{WARD}"
BASE = "/queue/api/v1"


@pytest.fixture
def app(settings, verifier):
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=FixedClock(datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)))
    yield app
    app.extensions["motcua"].db.client.close()


def signed_in(app, token, role="ward_admin", ward=WARD):
    client = app.test_client()
    jwt = token(role, ward, subject=f"{role}-{ward}")["Authorization"].split(" ", 1)[1]
    client.set_cookie(SESSION_COOKIE, jwt, path="/")
    return client


def csrf(client, page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    cookie = client.get_cookie(CSRF_COOKIE, path="/")
    assert cookie is not None and cookie.value == token and cookie.http_only
    return token


def open_page(client):
    response = client.get(PAGE)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    page = response.get_data(as_text=True)
    return page, csrf(client, page)


def test_without_a_session_the_page_sends_to_sign_in(app):
    response = app.test_client().get(PAGE)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/identity/login?next={PAGE}"


@pytest.mark.parametrize("role,ward", [("officer", WARD), ("leader", WARD), ("ward_admin", "hn-ba-dinh"),
                                       ("citizen", WARD), ("monitor", None)])
def test_others_get_a_clear_403_page(app, token, role, ward):
    response = signed_in(app, token, role, ward).get(PAGE)
    assert response.status_code == 403 and response.content_type.startswith("text/html")
    assert "chỉ dành cho trưởng bộ phận một cửa" in response.get_data(as_text=True)


def test_a_ward_admin_at_another_wards_page_is_shown_the_way_to_their_own(app, token):
    page = signed_in(app, token, "ward_admin", "hn-ba-dinh").get(PAGE).get_data(as_text=True)
    assert 'href="/queue/admin/hn-ba-dinh"' in page
    officer = signed_in(app, token, "officer", WARD).get(PAGE).get_data(as_text=True)
    assert "data-own-page" not in officer   # an officer has no queue admin page to go back to


def test_the_forms_answer_at_their_own_section(app, token):
    page, _ = open_page(signed_in(app, token))
    assert f'action="{PAGE}/opening-hours#hours"' in page and f'action="{PAGE}/kiosk-pairings#kiosks"' in page
    assert f'action="{PAGE}/services#services"' in page and f'action="{PAGE}/counters#counters"' in page
    # times are typed the 24-hour way, whatever the office PC's locale
    assert 'type="time"' not in page and 'name="mon_2_closes"' in page


def test_an_unknown_ward_is_a_404_page(app, token):
    response = signed_in(app, token, "admin", None).get("/queue/admin/no-such-ward")
    assert response.status_code == 404 and "chưa dùng hệ thống xếp hàng" in response.get_data(as_text=True)


def test_the_page_shows_services_counters_hours_and_kiosks(app, token):
    for role, ward in (("ward_admin", WARD), ("admin", None)):
        page, _ = open_page(signed_in(app, token, role, ward))
        assert "Hộ tịch" in page and "Quầy 2" in page
        assert 'name="always_open" checked' in page          # the demo wards are open at all hours
        assert 'name="mon_1_opens" value="07:30"' in page
        assert "Tạo liên kết ghép nối máy mới" in page
        assert "Quốc khánh" in page or "Tết" in page          # the coming public holidays
        assert "<script" not in page.split("</main>")[0]      # no script needed


def test_a_post_without_the_csrf_token_is_refused(app, token, service_db):
    client = signed_in(app, token)
    open_page(client)
    response = client.post(f"{PAGE}/services", data={"code": "G", "name": "Khác", "prefix": "G"})
    assert response.status_code == 400 and "Phiên làm việc đã hết hạn" in response.get_data(as_text=True)
    assert service_db("queue").services.count_documents({"ward_id": WARD, "code": "G"}) == 0


def test_adding_and_editing_a_service_and_a_counter(app, token):
    client = signed_in(app, token)
    _, token_ = open_page(client)
    added = client.post(f"{PAGE}/services", data={"csrf_token": token_, "code": "g", "name": " Tư pháp ", "prefix": "g"})
    assert added.status_code == 303 and added.headers["Location"].endswith(f"{PAGE}?saved=service#services")
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Đã lưu dịch vụ." in page
    assert {"code": "G", "name": "Tư pháp", "prefix": "G"} in client.get(f"{BASE}/wards/{WARD}/services").get_json()

    edited = client.post(f"{PAGE}/services", data={"csrf_token": token_, "editing": "G", "name": "Tư pháp – Hộ tịch",
                                                   "prefix": "T"})
    assert edited.status_code == 303
    counter = client.post(f"{PAGE}/counters", data={"csrf_token": token_, "counter_id": "quay-4", "name": "Quầy 4",
                                                    "service_codes": ["G", "A"]})
    assert counter.status_code == 303 and "saved=counter" in counter.headers["Location"]
    counters = {c["counter_id"]: c for c in client.get(f"{BASE}/wards/{WARD}/counters").get_json()}
    assert counters["quay-4"] == {"counter_id": "quay-4", "name": "Quầy 4", "service_codes": ["G", "A"]}

    # A counter's services, unticked and ticked again.
    assert client.post(f"{PAGE}/counters", data={"csrf_token": token_, "editing": "quay-4", "name": "Quầy 4",
                                                 "service_codes": ["A"]}).status_code == 303
    assert client.get(f"{BASE}/wards/{WARD}/counters").get_json()[-1]["service_codes"] == ["A"]
    deleted = client.post(f"{PAGE}/counters/quay-4/delete", data={"csrf_token": token_})
    assert deleted.status_code == 303 and "saved=counter_deleted" in deleted.headers["Location"]


def test_errors_are_shown_beside_their_fields(app, token, service_db):
    client = signed_in(app, token)
    _, token_ = open_page(client)
    response = client.post(f"{PAGE}/services", data={"csrf_token": token_, "code": "G", "name": "", "prefix": "A"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Hãy nhập tên dịch vụ." in page
    assert "đã dùng cho dịch vụ" in page                     # prefix A belongs to Hộ tịch
    assert 'name="code" value="G"' in page                  # what was typed stays
    no_service = client.post(f"{PAGE}/counters", data={"csrf_token": token_, "counter_id": "quay-9", "name": "Quầy 9"})
    assert no_service.status_code == 422 and "Hãy chọn ít nhất một dịch vụ." in no_service.get_data(as_text=True)
    assert service_db("queue").counters.count_documents({"ward_id": WARD, "counter_id": "quay-9"}) == 0


def test_opening_hours_from_the_form(app, token):
    client = signed_in(app, token)
    _, token_ = open_page(client)
    form = {"csrf_token": token_, "mon_1_opens": "07:00", "mon_1_closes": "11:00", "mon_2_opens": "13:00",
            "mon_2_closes": "17:30", "sat_1_opens": "07:30", "sat_1_closes": "11:30",
            "closed_days": "24/12/2026\n2027-01-02"}
    saved = client.post(f"{PAGE}/opening-hours", data=form)
    assert saved.status_code == 303 and "saved=hours" in saved.headers["Location"]
    assert "Đã lưu giờ làm việc." in client.get(saved.headers["Location"]).get_data(as_text=True)
    hours = client.get(f"{BASE}/wards/{WARD}/opening-hours").get_json()
    assert hours["always_open"] is False
    assert hours["weekly"]["mon"] == [{"opens": "07:00", "closes": "11:00"}, {"opens": "13:00", "closes": "17:30"}]
    assert hours["weekly"]["sat"] == [{"opens": "07:30", "closes": "11:30"}] and hours["weekly"]["tue"] == []
    assert hours["closed_days"] == ["2026-12-24", "2027-01-02"]

    bad = client.post(f"{PAGE}/opening-hours", data={"csrf_token": token_, "mon_1_opens": "11:00",
                                                      "mon_1_closes": "07:00", "closed_days": "không phải ngày"})
    assert bad.status_code == 422 and "không phải một ngày" in bad.get_data(as_text=True)
    bad = client.post(f"{PAGE}/opening-hours", data={"csrf_token": token_, "mon_1_opens": "11:00", "mon_1_closes": "07:00"})
    assert bad.status_code == 422 and "Giờ đóng cửa phải sau giờ mở cửa." in bad.get_data(as_text=True)
    assert client.get(f"{BASE}/wards/{WARD}/opening-hours").get_json()["weekly"]["mon"][0]["opens"] == "07:00"

    assert client.post(f"{PAGE}/opening-hours", data={"csrf_token": token_, "always_open": "on"}).status_code == 303
    assert client.get(f"{BASE}/wards/{WARD}/opening-hours").get_json()["always_open"] is True


def test_pairing_a_kiosk_and_revoking_it(app, token):
    client = signed_in(app, token)
    _, token_ = open_page(client)
    answer = client.post(f"{PAGE}/kiosk-pairings", data={"csrf_token": token_})
    assert answer.status_code == 200
    link = re.search(r'<p class="pairing-url"><code>([^<]+)</code>', answer.get_data(as_text=True)).group(1)
    kiosk = app.test_client()
    assert kiosk.get(link.split("localhost", 1)[1]).status_code == 303
    page, _ = open_page(client)
    device_id = re.search(r'/kiosks/([0-9a-f-]{36})/revoke', page).group(1)
    revoked = client.post(f"{PAGE}/kiosks/{device_id}/revoke", data={"csrf_token": token_})
    assert revoked.status_code == 303 and "saved=kiosk_revoked" in revoked.headers["Location"]
    assert "Đã thu hồi" in client.get(revoked.headers["Location"]).get_data(as_text=True)


def test_a_revoked_session_is_signed_out(app, token, service_db):
    from motcua_common import revocations

    client = signed_in(app, token)
    open_page(client)
    revocations.record(service_db("queue"), f"ward_admin-{WARD}", datetime.now(timezone.utc), "deactivated")
    app.extensions["motcua"].revocations._cache.clear()
    assert client.get(PAGE).status_code == 303
