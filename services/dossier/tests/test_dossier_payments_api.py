"""Level-4 fees: a dossier of a level-4 procedure with a fee is paid before processing —
online through the payment provider (whose HMAC-signed notice settles the attempt) or in
cash at the counter; forged, stale and replayed notices are refused; paying twice changes
nothing."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_dossier import payment_provider, payments
from motcua_dossier.api import create_app
from motcua_dossier.payment_provider import PaymentSetup

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
CALLBACK = "/dossier/api/v1/payments/callback"


def dossier_url(dossier_id, tail=""):
    return f"/dossier/api/v1/dossiers/{dossier_id}{tail}"


def act(client, dossier_id, action, headers):
    return client.post(dossier_url(dossier_id, "/actions"), json={"action": action}, headers=headers)


def notice(payment_id, amount=15000, status="paid", issued_at=None, notice_id=None) -> bytes:
    return json.dumps({
        "notice_id": notice_id or str(uuid.uuid4()), "payment_id": payment_id, "status": status, "amount": amount,
        "currency": "VND", "provider_ref": "LOCAL-TEST", "issued_at": (issued_at or datetime(2026, 3, 10, 2, 0, 30,
                                                                                             tzinfo=timezone.utc)).isoformat(),
    }).encode()


def post_notice(client, body: bytes, secret: bytes | None = None, signature: str | None = None):
    headers = {"Content-Type": "application/json"}
    if signature is None and secret is not None:
        signature = payments.sign(secret, body)
    if signature is not None:
        headers["X-Payment-Signature"] = signature
    return client.post(CALLBACK, data=body, headers=headers)


@pytest.fixture
def unpaid(submit):
    dossier = submit()  # HT-XNHN: level 4, 15.000 đồng
    assert dossier.status_code == 201
    return dossier.json["dossier_id"]


@pytest.fixture
def checkout(client, unpaid, citizen):
    opened = client.post(dossier_url(unpaid, "/payments"), json={}, headers=citizen)
    assert opened.status_code == 201, opened.json
    return opened.json


def test_a_level_4_fee_holds_processing_until_the_citizen_pays_online(client, unpaid, citizen, officer, token):
    dossier = client.get(dossier_url(unpaid), headers=officer).json
    assert dossier["payment_status"] == "unpaid" and dossier["fee"] == 15000
    assert dossier["payment"] == {"status": "unpaid", "status_label": "Chưa nộp phí", "amount": 15000,
                                  "currency": "VND", "method": None, "paid_at": None}
    assert act(client, unpaid, "receive", officer).status_code == 200
    held = act(client, unpaid, "start_processing", officer)
    assert held.status_code == 409 and held.json["code"] == "payment_required"
    assert "15.000 đồng" in held.json["detail"] and "start_processing" not in held.json["allowed_actions"]
    assert "start_processing" not in client.get(dossier_url(unpaid), headers=officer).json["allowed_actions"]
    stats_before = client.get(f"/dossier/api/v1/wards/{WARD}/stats", headers=token("monitor")).json

    # the citizen opens a checkout; a second click hands out the same one
    opened = client.post(dossier_url(unpaid, "/payments"), headers=citizen)
    assert opened.status_code == 201
    attempt = opened.json
    assert attempt["status"] == "pending" and attempt["amount"] == 15000 and attempt["provider"] == "local"
    assert attempt["payment_url"] == f"http://localhost/dossier/pay/local/{attempt['payment_id']}"
    again = client.post(dossier_url(unpaid, "/payments"), json={"method": "online"}, headers=citizen)
    assert again.status_code == 200 and again.json["payment_id"] == attempt["payment_id"]

    # the local provider's page: the amount, then "Thanh toán"
    page = client.get(f"/dossier/pay/local/{attempt['payment_id']}")
    assert page.status_code == 200 and "15.000 đồng" in page.get_data(as_text=True)
    # No inline style (the pages' CSP refuses it): the stylesheet it links is served.
    assert "<style" not in page.get_data(as_text=True)
    assert client.get("/dossier/portal/static/checkout.css").status_code == 200
    paid_page = client.post(f"/dossier/pay/local/{attempt['payment_id']}", data={"answer": "pay"})
    assert paid_page.status_code == 200 and "Đã thanh toán" in paid_page.get_data(as_text=True)

    dossier = client.get(dossier_url(unpaid), headers=citizen).json
    assert dossier["payment_status"] == "paid" and dossier["payment"]["method"] == "online"
    assert dossier["payment"]["paid_at"] == "2026-03-10T02:00:00Z"
    listed = client.get(dossier_url(unpaid, "/payments"), headers=citizen).json
    assert [a["status"] for a in listed["attempts"]] == ["paid"] and listed["payment"]["status"] == "paid"
    assert act(client, unpaid, "start_processing", officer).status_code == 200
    stats_after = client.get(f"/dossier/api/v1/wards/{WARD}/stats", headers=token("monitor")).json
    assert stats_after == stats_before  # a fee is not a number of the ward's report


def test_procedures_without_a_level_4_fee_need_no_payment(client, submit, officer, citizen, forms):
    free = submit("HT-KS", form=forms["birth"]).json["dossier_id"]  # level 4, no fee
    assert client.get(dossier_url(free), headers=citizen).json["payment"]["status"] == "not_required"
    refused = client.post(dossier_url(free, "/payments"), headers=citizen)
    assert refused.status_code == 409 and refused.json["code"] == "payment_not_required"
    for action in ("receive", "start_processing"):
        assert act(client, free, action, officer).status_code == 200


def test_an_officer_records_the_fee_taken_in_cash_at_the_counter(client, unpaid, officer, citizen, token):
    assert client.post(dossier_url(unpaid, "/payments"), json={"method": "counter"},
                       headers=citizen).status_code == 403  # a citizen cannot say the cash was paid
    assert client.post(dossier_url(unpaid, "/payments"), json={"method": "counter"},
                       headers=token("officer", OTHER_WARD)).status_code == 403
    assert client.post(dossier_url(unpaid, "/payments"), json={"method": "cheque"},
                       headers=officer).status_code == 422
    taken = client.post(dossier_url(unpaid, "/payments"), json={"method": "counter"}, headers=officer)
    assert taken.status_code == 201 and taken.json["status"] == "paid" and taken.json["method"] == "counter"
    twice = client.post(dossier_url(unpaid, "/payments"), json={"method": "counter"}, headers=officer)
    assert twice.status_code == 409 and twice.json["code"] == "already_paid"
    online_after = client.post(dossier_url(unpaid, "/payments"), headers=citizen)
    assert online_after.status_code == 409 and online_after.json["code"] == "already_paid"


def test_who_may_pay_and_see_the_fee(client, unpaid, token):
    stranger = token("citizen", None, subject="cit-binh")
    for headers in (stranger, token("officer", OTHER_WARD), token("monitor")):
        assert client.post(dossier_url(unpaid, "/payments"), headers=headers).status_code == 403
        assert client.get(dossier_url(unpaid, "/payments"), headers=headers).status_code == 403
    assert client.post(dossier_url(unpaid, "/payments")).status_code == 401
    # staff may open the checkout too, to hand the link (or its QR) to the citizen
    assert client.post(dossier_url(unpaid, "/payments"), headers=token("officer", WARD)).status_code == 201


def test_forged_and_tampered_notices_are_refused(client, checkout, payment_secret, officer):
    body = notice(checkout["payment_id"])
    unsigned = post_notice(client, body)
    assert unsigned.status_code == 401 and unsigned.json["code"] == "invalid_signature"
    forged = post_notice(client, body, secret=b"guessed-secret-guessed-secret-guessed!!")
    assert forged.status_code == 401 and forged.json["code"] == "invalid_signature"
    # signed for 15.000 but a byte changed on the way (here: the amount, to 1.000)
    signature = payments.sign(payment_secret, body)
    tampered = post_notice(client, body.replace(b'"amount": 15000', b'"amount": 1000'), signature=signature)
    assert tampered.status_code == 401
    assert post_notice(client, body, signature=signature.upper()).status_code == 401
    assert client.get(dossier_url(checkout["dossier_id"]), headers=officer).json["payment_status"] == "unpaid"


def test_a_notice_for_another_amount_or_payment_changes_nothing(client, checkout, payment_secret, officer):
    wrong_amount = post_notice(client, notice(checkout["payment_id"], amount=1000), payment_secret)
    assert wrong_amount.status_code == 422 and wrong_amount.json["code"] == "amount_mismatch"
    unknown = post_notice(client, notice(str(uuid.uuid4())), payment_secret)
    assert unknown.status_code == 404
    garbled = post_notice(client, b'{"payment_id": 1}', payment_secret)
    assert garbled.status_code == 422 and garbled.json["code"] == "invalid_notice"
    assert client.get(dossier_url(checkout["dossier_id"]), headers=officer).json["payment_status"] == "unpaid"


def test_replayed_and_stale_notices_are_refused(client, checkout, payment_secret, officer, clock):
    body = notice(checkout["payment_id"])
    first = post_notice(client, body, payment_secret)
    assert first.status_code == 200 and first.json == {"payment_id": checkout["payment_id"], "status": "paid",
                                                       "dossier_paid": True}
    replayed = post_notice(client, body, payment_secret)
    assert replayed.status_code == 409 and replayed.json["code"] == "notice_replayed"

    old = notice(checkout["payment_id"], issued_at=clock.now() - timedelta(minutes=6))
    stale = post_notice(client, old, payment_secret)
    assert stale.status_code == 401 and stale.json["code"] == "stale_notice"
    early = notice(checkout["payment_id"], issued_at=clock.now() + timedelta(minutes=6))
    assert post_notice(client, early, payment_secret).json["code"] == "stale_notice"


def test_a_second_paid_notice_changes_nothing(client, checkout, payment_secret, officer, dossier_db):
    assert post_notice(client, notice(checkout["payment_id"]), payment_secret).json["dossier_paid"] is True
    paid = dossier_db.dossiers.find_one({"_id": checkout["dossier_id"]})
    again = post_notice(client, notice(checkout["payment_id"]), payment_secret)  # a fresh notice id
    assert again.status_code == 200 and again.json == {"payment_id": checkout["payment_id"], "status": "paid",
                                                       "dossier_paid": False}
    failed_late = post_notice(client, notice(checkout["payment_id"], status="failed"), payment_secret)
    assert failed_late.status_code == 200 and failed_late.json["status"] == "paid"
    assert dossier_db.dossiers.find_one({"_id": checkout["dossier_id"]}) == paid


def test_a_cancelled_checkout_leaves_the_fee_unpaid_and_a_new_one_can_be_opened(client, checkout, citizen):
    cancelled = client.post(f"/dossier/pay/local/{checkout['payment_id']}", data={"answer": "cancel"})
    assert cancelled.status_code == 200 and "Đã hủy" in cancelled.get_data(as_text=True)
    assert client.get(dossier_url(checkout["dossier_id"]), headers=citizen).json["payment_status"] == "unpaid"
    reopened = client.post(dossier_url(checkout["dossier_id"], "/payments"), headers=citizen)
    assert reopened.status_code == 201 and reopened.json["payment_id"] != checkout["payment_id"]


def test_two_checkouts_both_paid_charge_the_dossier_once_and_flag_a_refund(client, checkout, citizen, clock,
                                                                           payment_secret, dossier_db):
    clock.moment += timedelta(minutes=16)  # the first checkout expired unanswered; the citizen opens another
    second = client.post(dossier_url(checkout["dossier_id"], "/payments"), headers=citizen).json
    assert second["payment_id"] != checkout["payment_id"]
    late = datetime.fromisoformat(second["created_at"].replace("Z", "+00:00")) + timedelta(seconds=20)
    assert post_notice(client, notice(second["payment_id"], issued_at=late), payment_secret).json["dossier_paid"]
    paid = dossier_db.dossiers.find_one({"_id": checkout["dossier_id"]})
    # then the provider reports the first one paid as well
    first = post_notice(client, notice(checkout["payment_id"], issued_at=late), payment_secret)
    assert first.status_code == 200 and first.json["dossier_paid"] is False
    assert dossier_db.dossiers.find_one({"_id": checkout["dossier_id"]}) == paid
    assert dossier_db.payments.find_one({"_id": checkout["payment_id"]})["refund_due"] is True


def test_with_online_payment_off_the_fee_is_taken_at_the_counter(settings, verifier, citizens, wards, clock, dossier_db,
                                                                 payment_secret, citizen, officer):
    client = create_app(settings, verifier=verifier, citizens=citizens, wards=wards, clock=clock,
                        payment_setup=PaymentSetup(None, payment_secret)).test_client()
    dossier_id = client.post("/dossier/api/v1/dossiers", headers=citizen, json={
        "procedure_code": "HT-XNHN", "ward_id": WARD, "form": {
            "ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "1990-05-04", "tinh_trang_hon_nhan": "Chưa kết hôn",
            "muc_dich_su_dung": "Đăng ký kết hôn"}}).json["dossier_id"]
    off = client.post(dossier_url(dossier_id, "/payments"), headers=citizen)
    assert off.status_code == 409 and off.json["code"] == "online_payment_unavailable"
    assert "tại Bộ phận một cửa" in off.json["detail"]
    assert client.post(dossier_url(dossier_id, "/payments"), json={"method": "counter"},
                       headers=officer).status_code == 201
    assert client.get("/dossier/pay/local/anything").status_code == 404


def test_the_callback_secret_is_made_once_and_shared(tmp_path):
    made = payment_provider.from_env(tmp_path, env={})
    assert len(made.callback_secret) == 64 and (tmp_path / "keys" / "payment-callback.secret").stat().st_mode & 0o077 == 0
    assert payment_provider.from_env(tmp_path, env={}).callback_secret == made.callback_secret
    configured = payment_provider.from_env(tmp_path, env={"PAYMENT_CALLBACK_SECRET": "s" * 40, "PAYMENT_PROVIDER": "none"})
    assert configured.callback_secret == b"s" * 40 and configured.provider is None
    with pytest.raises(ValueError):
        payment_provider.from_env(tmp_path, env={"PAYMENT_CALLBACK_SECRET": "short"})
    with pytest.raises(ValueError):
        payment_provider.from_env(tmp_path, env={"PAYMENT_PROVIDER": "vnpay"})


def test_signatures_are_checked_over_the_exact_bytes():
    secret = b"k" * 32
    body = notice("p-1")
    assert payments.signature_matches(secret, body, payments.sign(secret, body))
    assert not payments.signature_matches(secret, body + b" ", payments.sign(secret, body))
    assert not payments.signature_matches(secret, body, None)
    now = datetime(2026, 3, 10, 2, 0, 30, tzinfo=timezone.utc)
    read = payments.read_notice(secret, body, payments.sign(secret, body), now)
    assert read.payment_id == "p-1" and read.amount == 15000 and read.status == "paid"
    assert payments.check_action("receive", "unpaid", 15000) is None
    with pytest.raises(payments.PaymentRequired):
        payments.check_action("start_processing", "unpaid", 15000)
    assert payments.initial_status(4, 15000) == "unpaid"
    assert payments.initial_status(3, 1_000_000) == "not_required" and payments.initial_status(4, 0) == "not_required"
