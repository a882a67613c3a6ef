"""Pure units of the shared library: envelopes, tokens, problem details."""
import time
import uuid

import jwt
import pytest

from motcua_common.auth import CLOCK_LEEWAY_SECONDS, AuthError, SigningKey, TokenVerifier
from motcua_common.events import InvalidEvent, new_event, parse_envelope


def test_envelope_round_trip_and_contract_fields():
    env = new_event("RatingGiven", "w1", {"rating_id": "r", "ward_id": "w1", "subject_type": "ticket",
                                         "subject_id": "t", "officer_id": "o", "counter_id": "c", "score": "satisfied"})
    assert set(env) == {"event_id", "type", "version", "source", "ward_id", "occurred_at", "traceparent", "payload"}
    assert env["source"] == "rating" and env["occurred_at"].endswith("Z")
    uuid.UUID(env["event_id"])
    event = parse_envelope(env)
    assert event.payload["score"] == "satisfied" and event.type == "RatingGiven"


@pytest.mark.parametrize("body", [
    None, [], "text", {"type": "RatingGiven", "payload": {}},
    {"event_id": "not-a-uuid", "type": "RatingGiven", "payload": {}},
    {"event_id": str(uuid.uuid4()), "type": "Nope", "payload": {}},
    {"event_id": str(uuid.uuid4()), "type": "TicketServed", "payload": {"wait_seconds": "long"}},
    {"event_id": str(uuid.uuid4()), "type": "TicketServed", "payload": "x"},
])
def test_malformed_envelopes_are_refused(body):
    with pytest.raises(InvalidEvent):
        parse_envelope(body)


def test_new_fields_from_a_newer_publisher_are_tolerated():
    env = new_event("TicketIssued", "w", {"ticket_id": "t"})
    env["payload"]["added_later"] = 1
    env["added_later"] = True
    assert parse_envelope(env).payload["ticket_id"] == "t"


def test_tokens_verify_and_fail_clearly(tmp_path):
    key = SigningKey.load_or_create(tmp_path / "k.pem")
    assert SigningKey.load_or_create(tmp_path / "k.pem").kid == key.kid  # reloaded, not regenerated
    verifier = TokenVerifier(key.jwks)
    principal = verifier.verify(key.issue("o1", "officer", "w1", 60))
    assert (principal.subject, principal.role, principal.ward_id) == ("o1", "officer", "w1")
    assert principal.is_staff_of("w1") and not principal.is_staff_of("w2")

    with pytest.raises(AuthError) as expired:
        verifier.verify(key.issue("o1", "officer", "w1", -(CLOCK_LEEWAY_SECONDS + 10)))
    assert expired.value.code == "token_expired"
    other = SigningKey.load_or_create(tmp_path / "other.pem")
    with pytest.raises(AuthError):
        verifier.verify(other.issue("o1", "admin", None, 60))
    forged = jwt.encode({"sub": "x", "role": "admin", "exp": time.time() + 60}, "secret", algorithm="HS256",
                        headers={"kid": key.kid})
    with pytest.raises(AuthError):
        verifier.verify(forged)


def _token_from_a_clock(key: SigningKey, offset: int, ttl: int = 60) -> str:
    """A token identity signed while its clock read `offset` seconds from ours."""
    now = int(time.time()) + offset
    claims = {"iss": "motcua-identity", "aud": "motcua", "sub": "o1", "role": "officer", "ward_id": "w1",
              "mcp": False, "iat": now, "nbf": now, "exp": now + ttl}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def test_a_clock_a_few_seconds_apart_still_verifies_fresh_tokens(tmp_path):
    """A ward office whose clock runs behind the centre's sees tokens "issued in the
    future"; within the leeway they are good, beyond it they are not."""
    key = SigningKey.load_or_create(tmp_path / "k.pem")
    verifier = TokenVerifier(key.jwks)
    assert verifier.verify(_token_from_a_clock(key, +8)).subject == "o1"
    assert verifier.verify(_token_from_a_clock(key, -70, ttl=60)).subject == "o1"  # expired 10 s ago there
    with pytest.raises(AuthError):
        verifier.verify(_token_from_a_clock(key, +CLOCK_LEEWAY_SECONDS + 30))


def test_a_key_dropped_from_the_jwks_stops_being_trusted(tmp_path):
    """Without waiting for a token with an unknown kid: the key set is fetched again once
    it is older than max_age, and a key no longer published is refused from then on."""
    old, new = SigningKey.load_or_create(tmp_path / "old.pem"), SigningKey.load_or_create(tmp_path / "new.pem")
    published = {"keys": [old.public_jwk, new.public_jwk]}
    verifier = TokenVerifier(lambda: published, refetch_interval=0, max_age=0)
    token = old.issue("o1", "officer", "w1", 600)
    assert verifier.verify(token).subject == "o1"
    published = {"keys": [new.public_jwk]}
    with pytest.raises(AuthError) as refused:
        verifier.verify(token)
    assert refused.value.code == "invalid_token"
    assert verifier.verify(new.issue("o1", "officer", "w1", 600)).subject == "o1"


def test_verifier_keeps_cached_keys_when_identity_is_unreachable(tmp_path):
    key = SigningKey.load_or_create(tmp_path / "k.pem")
    calls = {"n": 0}

    def source():
        calls["n"] += 1
        if calls["n"] > 1:
            raise ConnectionError("identity down")
        return key.jwks()

    verifier = TokenVerifier(source, refetch_interval=0)
    token = key.issue("c1", "citizen", "w1", 60)
    assert verifier.verify(token).subject == "c1"
    assert verifier.verify(token).subject == "c1"


def test_log_lines_mask_national_ids_and_phone_numbers(capsys):
    import logging

    from motcua_common.logs import configure_logging, mask_personal_numbers

    assert mask_personal_numbers("id 048090001234 phone +84935111222 or 0935111222, code 2026") == \
        "id 048*******34 phone +84*******22 or 093*****22, code 2026"
    configure_logging("identity", "api")
    logging.getLogger("motcua.test").error("cannot register 048090001234 from 0935 111 222 / 0935111222")
    line = capsys.readouterr().err
    assert "048090001234" not in line and "0935111222" not in line and '"service": "identity"' in line


def test_the_relay_hears_when_the_broker_blocks_it():
    """The relay's connection extends aiormq's private handlers of connection.blocked and
    connection.unblocked (aiormq has no public hook): an aiormq that renames them must fail
    here, not silently bring back reconnect-and-duplicate during a resource alarm."""
    import aiormq

    from motcua_common.relay import _BrokerConnection

    for name in ("_Connection__handle_connection_blocked", "_Connection__handle_connection_unblocked"):
        assert callable(getattr(aiormq.Connection, name, None)), f"aiormq.Connection has no {name}"
        assert name in vars(_BrokerConnection)


def test_the_front_door_links_only_to_services_this_machine_runs():
    import re

    from werkzeug.test import Client

    from motcua_platform.apiserver import landing_page

    def prefixes(services):
        body = Client(landing_page(["dn-hai-chau"], services)).get("/").get_data(as_text=True)
        return set(re.findall(r"href=['\"]/([a-z]+)", body))

    assert prefixes(("identity", "dossier", "queue", "notify", "rating")) == {
        "identity", "dossier", "queue", "notify", "rating"}
    assert prefixes(("queue", "rating")) == {"queue", "rating"}  # a ward's office: no portal, no dead links
    whole = Client(landing_page([], ("identity", "dossier"))).get("/").get_data(as_text=True)
    assert "/dossier/portal" in whole and "/identity/register" in whole


def test_a_slow_request_is_logged_by_its_route_never_its_path(monkeypatch, caplog):
    import logging

    from flask import Flask

    from motcua_common import metrics

    app = Flask("slow")
    metrics.instrument_flask(app, "queue")

    @app.get("/tickets/<ticket_id>")
    def ticket(ticket_id):
        return {"ticket_id": ticket_id}

    monkeypatch.setattr(metrics, "SLOW_REQUEST_SECONDS", 60.0)
    with caplog.at_level(logging.WARNING, logger="motcua_common.metrics"):
        app.test_client().get("/tickets/t-048090001234")
    assert not [r for r in caplog.records if "slow request" in r.getMessage()]
    monkeypatch.setattr(metrics, "SLOW_REQUEST_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="motcua_common.metrics"):
        app.test_client().get("/tickets/t-048090001234")
    slow = [r.getMessage() for r in caplog.records if "slow request" in r.getMessage()]
    assert len(slow) == 1 and "GET /tickets/<ticket_id> answered 200" in slow[0]
    assert "048090001234" not in slow[0]


def test_old_keys_verify_while_one_thread_fetches_new_ones(tmp_path):
    """A refresh of keys that are merely old blocks no other request: the fetch (identity's
    API, maybe busy) is one thread's; the others verify with the keys they have."""
    import threading
    import time

    key = SigningKey.load_or_create(tmp_path / "k.pem")
    fetching, release = threading.Event(), threading.Event()
    calls = {"n": 0}

    def source():
        calls["n"] += 1
        if calls["n"] > 1:
            fetching.set()
            release.wait(10)
        return {"keys": [key.public_jwk]}

    verifier = TokenVerifier(source, refetch_interval=0, max_age=3600)
    token = key.issue("o1", "officer", "w1", 600)
    assert verifier.verify(token).subject == "o1"
    verifier._fetched_at -= 7200  # the keys are now old
    slow = threading.Thread(target=verifier.verify, args=(token,))
    slow.start()
    try:
        assert fetching.wait(10)
        started = time.monotonic()
        assert verifier.verify(token).subject == "o1"
        assert time.monotonic() - started < 1, "a request waited for another thread's fetch"
    finally:
        release.set()
        slow.join(10)
