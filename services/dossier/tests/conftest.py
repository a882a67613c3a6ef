"""Fixtures of the dossier tests: a prepared database, the API with a fixed clock, and a
stand-in for identity's citizen and ward directories (identity is another service, outside the test)."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from motcua_common import clock as clock_module, demo, rpc
from motcua_dossier import bootstrap
from motcua_dossier.api import create_app
from motcua_dossier.payment_provider import LocalPaymentProvider, PaymentSetup

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WARD = "dn-hai-chau"
OTHER_WARD = "dn-lien-chieu"


class FixedClock(clock_module.FixedClock):
    """A clock standing still at a chosen moment; `on(day)` moves it to 09:00 that day.
    `moment` is where it stands (tests move it by hand as well)."""

    def __init__(self, day: date):
        super().__init__(datetime.combine(day, time(9, 0), VN))
        self.on(day)

    def on(self, day: date, at: time = time(9, 0)) -> "FixedClock":
        self.moment = datetime.combine(day, at, VN).astimezone(timezone.utc)
        return self

    @property
    def moment(self) -> datetime:
        return self.at

    @moment.setter
    def moment(self, value: datetime) -> None:
        self.at = value


class FakeCitizens:
    """Identity's answers, as CitizenDirectory gives them."""

    def __init__(self):
        self.people: list[dict] = []
        self.unavailable = False
        self.calls: list[tuple] = []

    def register(self, citizen_id: str, national_id: str, phone: str, ward_id: str = WARD) -> dict:
        person = {"citizen_id": citizen_id, "national_id": national_id, "phone": phone, "ward_id": ward_id}
        self.people.append(person)
        return person

    def _answer(self):
        if self.unavailable:
            raise rpc.RpcUnavailable("identity is not running")

    def contact(self, citizen_id: str):
        self.calls.append(("citizen_contact", citizen_id))
        self._answer()
        for p in self.people:
            if p["citizen_id"] == citizen_id:
                return {"citizen_id": p["citizen_id"], "phone": p["phone"], "phone_last4": p["phone"][-4:],
                        "ward_id": p["ward_id"]}
        return None

    def find_by_national_id(self, national_id: str):
        self.calls.append(("find_citizen", national_id))
        self._answer()
        for p in self.people:
            if p["national_id"] == national_id:
                return {"citizen_id": p["citizen_id"], "phone_last4": p["phone"][-4:], "ward_id": p["ward_id"]}
        return None


class FakeWards:
    """Identity's answers about wards, as WardDirectory gives them: the demo wards to begin with."""

    def __init__(self):
        self.known = {w["ward_id"]: {"ward_id": w["ward_id"], "name": w["name"], "province": w["province"]}
                      for w in demo.WARDS}
        self.unavailable = False
        self.calls: list[str] = []

    def ward(self, ward_id: str):
        self.calls.append(ward_id)
        if self.unavailable:
            raise rpc.RpcUnavailable("identity is not running")
        return self.known.get(ward_id)


class FakeOfficers:
    """Identity's answer to "is X an active officer of ward W?" (officer_in_ward), as
    OfficerDirectory gives it."""

    def __init__(self):
        self.active: set[tuple[str, str]] = {("off-hc-1", WARD), ("off-hc-2", WARD), ("lead-hc", WARD),
                                              ("off-lc-1", OTHER_WARD)}
        self.unavailable = False
        self.calls: list[tuple[str, str]] = []

    def in_ward(self, officer_id: str, ward_id: str) -> bool:
        self.calls.append((officer_id, ward_id))
        if self.unavailable:
            raise rpc.RpcUnavailable("identity is not running")
        return (officer_id, ward_id) in self.active


@pytest.fixture
def clock():
    return FixedClock(date(2026, 3, 10))  # a Tuesday


@pytest.fixture
def citizens():
    directory = FakeCitizens()
    directory.register("cit-lan", "048190000123", "0905123456")
    directory.register("cit-binh", "048185000777", "0912000999")
    return directory


@pytest.fixture
def wards():
    return FakeWards()


@pytest.fixture
def officers():
    return FakeOfficers()


@pytest.fixture
def dossier_db(settings, service_db):
    # The demo wards take every level 3-4 procedure online (a ward opened without the demo
    # takes none until its administrator switches them on: test_dossier_offerings.py).
    bootstrap.prepare(settings, demo=True)
    return service_db("dossier")


@pytest.fixture
def payment_secret() -> bytes:
    """The secret the provider and the platform share (PAYMENT_CALLBACK_SECRET)."""
    return b"test-payment-callback-secret-0123456789"


@pytest.fixture
def payment_setup(payment_secret):
    return PaymentSetup(LocalPaymentProvider(payment_secret), payment_secret)


@pytest.fixture
def app(settings, verifier, citizens, wards, officers, clock, dossier_db, payment_setup):
    return create_app(settings, verifier=verifier, citizens=citizens, wards=wards, officers=officers, clock=clock,
                      payment_setup=payment_setup)


@pytest.fixture
def deps(app):
    """The app's dependencies (deps.Deps), for calling the use cases directly."""
    return app.extensions["motcua"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def citizen(token):
    return token("citizen", None, subject="cit-lan")


@pytest.fixture
def officer(token):
    return token("officer", WARD, subject="off-hc-1")


@pytest.fixture
def leader(token):
    """The ward's leader (chủ tịch or phó chủ tịch), who alone approves and signs results."""
    return token("leader", WARD, subject="lead-hc-chutich")


# Forms of the test submissions (test modules get them through the `forms` fixture: a
# conftest cannot be imported by name when every service has one).
BIRTH_FORM = {
    "ho_ten": "Nguyễn Minh An", "ngay_sinh": "2026-03-01", "gioi_tinh": "Nam", "noi_sinh": "Bệnh viện Đà Nẵng",
    "ho_ten_me": "Nguyễn Thị Lan", "quan_he_nguoi_di_dang_ky": "Mẹ",
}
CHAIN_FORM = {
    **BIRTH_FORM, "dia_chi_thuong_tru": "12 Lê Duẩn, Hải Châu, Đà Nẵng", "ho_ten_chu_ho": "Nguyễn Văn Hùng",
    "quan_he_voi_chu_ho": "Cháu", "noi_dang_ky_kcb": "Trạm y tế phường Hải Châu",
}
MARRIAGE_STATUS_FORM = {
    "ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "1990-05-04", "tinh_trang_hon_nhan": "Chưa kết hôn",
    "muc_dich_su_dung": "Đăng ký kết hôn",
}


@pytest.fixture
def forms() -> dict:
    return {"birth": dict(BIRTH_FORM), "chain": dict(CHAIN_FORM), "marriage_status": dict(MARRIAGE_STATUS_FORM)}


@pytest.fixture
def pay_at_counter(client, officer):
    """pay_at_counter(dossier_id): an officer records the level-4 fee taken in cash."""

    def do(dossier_id: str):
        response = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/payments", json={"method": "counter"},
                               headers=officer)
        assert response.status_code == 201, response.json
        return response

    return do


@pytest.fixture
def submit(client, citizen):
    """submit(procedure_code="HT-XNHN", form=..., headers=citizen, **more) -> response."""

    def do(procedure_code: str = "HT-XNHN", form: dict | None = None, headers: dict | None = None, **more):
        body = {"procedure_code": procedure_code, "ward_id": WARD,
                "form": MARRIAGE_STATUS_FORM if form is None else form, **more}
        return client.post("/dossier/api/v1/dossiers", json=body, headers=headers or citizen)

    return do
