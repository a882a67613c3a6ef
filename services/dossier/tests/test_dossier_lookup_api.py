"""GET /lookup: anyone may track a dossier with its receipt code and the last 4 phone
digits; a wrong code and wrong digits look the same; lookups are rate-limited."""
from __future__ import annotations

URL = "/dossier/api/v1/lookup"


def lookup(client, code, digits, ip="203.0.113.7"):
    return client.get(URL, query_string={"receipt_code": code, "phone_last4": digits},
                      environ_base={"REMOTE_ADDR": ip})


def test_lookup_with_the_right_code_and_digits(client, submit):
    code = submit().json["receipt_code"]
    response = lookup(client, code, "3456")
    assert response.status_code == 200
    body = response.json
    assert body["receipt_code"] == code and body["procedure_code"] == "HT-XNHN"
    assert body["status"] == "submitted" and body["due_date"] == "2026-03-12"
    assert body["history"] == [{"status": "submitted", "at": "2026-03-10T02:00:00Z"}]
    assert "actor_id" not in str(body) and "citizen_id" not in body


def test_a_code_typed_loosely_still_finds_the_dossier(client, submit):
    code = submit().json["receipt_code"]
    assert lookup(client, code.lower().replace("-", " "), "3456").status_code == 200


def test_wrong_code_and_wrong_digits_get_the_same_answer(client, submit):
    code = submit().json["receipt_code"]
    wrong_digits = lookup(client, code, "0000")
    wrong_code = lookup(client, "DNHC-260310-ZZZZZ", "3456")
    assert wrong_digits.status_code == wrong_code.status_code == 404
    assert wrong_digits.json == wrong_code.json
    assert wrong_digits.json["code"] == "not_found"
    assert wrong_digits.get_data() == wrong_code.get_data()


def test_missing_parameters_are_named(client):
    response = client.get(URL, query_string={"receipt_code": "", "phone_last4": "12a4"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"receipt_code", "phone_last4"}


def test_lookups_are_limited_per_client_address(client, submit, clock):
    code = submit().json["receipt_code"]
    answers = [lookup(client, code, "0000").status_code for _ in range(20)]
    assert answers == [404] * 20
    limited = lookup(client, code, "3456")  # even the right digits, once over the limit
    assert limited.status_code == 429 and limited.json["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another address is counted on its own.
    assert lookup(client, code, "3456", ip="198.51.100.4").status_code == 200
    # The next minute starts a new window.
    clock.moment = clock.moment.replace(minute=clock.moment.minute + 1)
    assert lookup(client, code, "3456").status_code == 200


def test_the_limit_holds_across_api_processes(app, settings, verifier, citizens, wards, clock, submit):
    from motcua_dossier.api import create_app

    code = submit().json["receipt_code"]
    other_process = create_app(settings, verifier=verifier, citizens=citizens, wards=wards, clock=clock).test_client()
    for i in range(20):
        lookup(app.test_client() if i % 2 else other_process, code, "0000")
    assert lookup(other_process, code, "3456").status_code == 429
