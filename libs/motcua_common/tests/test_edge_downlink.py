"""The centre's events for a ward's office, on the real broker: the relay's ward header
routes each dossier event the office consumes to that ward's queue only, and in the office
what arrives reaches the same consumer queues as at the centre. (The shovel between the
two, across a WAN that drops, is exercised in tests/chaos/test_chaos_downlink.py.)"""
from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pika
import pytest

from motcua_common import topology
from motcua_testing.chaos import drain
from motcua_platform.edge import Downlink, declare_downlink_entry, declare_downlink_queue, shovel_definitions
from motcua_common.events import new_event
from motcua_common.outbox import commit
from motcua_common.relay import Relay
from motcua_testing.fixtures import create_vhost, delete_vhost


def submitted(ward: str) -> dict:
    return new_event("DossierSubmitted", ward, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": f"DL-{uuid.uuid4().hex[:6]}", "procedure_code": "KS01",
        "ward_id": ward, "channel": "online", "due_date": "2026-12-01"})


def status_changed(ward: str) -> dict:
    return new_event("DossierStatusChanged", ward, {
        "dossier_id": str(uuid.uuid4()), "ward_id": ward, "from_status": "received", "to_status": "processing",
        "receipt_code": "DL-1", "procedure_code": "KS01"})


def overdue(ward: str) -> dict:
    return new_event("DossierOverdue", ward, {
        "dossier_id": str(uuid.uuid4()), "ward_id": ward, "receipt_code": "DL-2", "procedure_code": "KS01",
        "status": "processing", "due_date": "2026-11-20"})


def publish_for_ward(amqp_url: str, ward: str) -> None:
    """A DossierSubmitted on the downlink exchange, with the ward header, as the relay sends it."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(topology.DOWNLINK_EXCHANGE, "DossierSubmitted", b"{}",
                          pika.BasicProperties(headers={"ward_id": ward}, delivery_mode=2))
    connection.close()


def test_the_events_an_office_needs_are_those_its_services_consume_from_the_centre():
    # Appointments and dossier ratings from dossier; the ward itself and ended sessions
    # (an officer deactivated at the centre is refused at the office too) from identity.
    assert topology.downlink_event_types() == ("DossierResultReady", "DossierStatusChanged", "DossierSubmitted",
                                               "SessionsRevoked", "WardOpened")


def test_the_shovel_pulls_from_the_wards_queue_at_the_centre_into_the_office():
    value = next(p["value"] for p in shovel_definitions("/", "amqp://up:pw@centre:5672/%2F", ward_id="dn-hai-chau")
                 ["parameters"] if p["name"] == Downlink.shovel)
    assert value["src-uri"] == "amqp://up:pw@centre:5672/%2F"
    assert value["src-queue"] == "motcua.downlink.dn-hai-chau"
    assert value["dest-uri"] == "amqp://" and value["dest-exchange"] == "motcua.downlink.in"
    assert value["ack-mode"] == "on-confirm"
    assert {p["name"] for p in shovel_definitions("/", "amqp://c/")["parameters"]} == {
        "motcua-uplink-queue.events", "motcua-uplink-rating.events", "motcua-uplink-motcua.office-filings"}, \
        "no ward, no downlink (the uplinks: events, and the dossiers taken at the office)"


def test_a_wards_queue_at_the_centre_gets_its_own_wards_dossier_events_only(broker_settings, service_db):
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    topology.declare(connection.channel(), broker_settings)
    for ward in ("dn-hai-chau", "dn-thanh-khe"):
        declare_downlink_queue(connection, Downlink(ward))
    declare_downlink_queue(connection, Downlink("dn-hai-chau"))  # again, as at every start: unchanged
    connection.close()
    db = service_db("dossier")
    mine = [submitted("dn-hai-chau"), status_changed("dn-hai-chau")]
    theirs = [submitted("dn-thanh-khe")]
    commit(db, lambda session: None, [mine[0], theirs[0], overdue("dn-hai-chau"), mine[1]])
    relay = Relay(db, broker_settings, "dossier")
    try:
        assert relay.publish_pending() == 4
    finally:
        relay.close()
    got = [body for _headers, body in drain(broker_settings.amqp_url, "motcua.downlink.dn-hai-chau")]
    assert [json.loads(b)["event_id"] for b in got] == [e["event_id"] for e in mine], "in order, overdue not carried"
    other = [json.loads(b)["event_id"] for _h, b in drain(broker_settings.amqp_url, "motcua.downlink.dn-thanh-khe")]
    assert other == [theirs[0]["event_id"]]
    # The centre's own consumers still get every event, as before.
    queue_sub = topology.subscription("queue", "DossierSubmitted").queue
    assert len(drain(broker_settings.amqp_url, queue_sub)) == 2


def test_a_plain_queue_left_by_the_shovel_is_kept_and_bound(broker_settings):
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    topology.declare(connection.channel(), broker_settings)
    connection.channel().queue_declare("motcua.downlink.dn-son-tra", durable=True)  # what a shovel declares
    declare_downlink_queue(connection, Downlink("dn-son-tra"))
    connection.close()
    publish_for_ward(broker_settings.amqp_url, "dn-son-tra")
    assert len(drain(broker_settings.amqp_url, "motcua.downlink.dn-son-tra")) == 1


@pytest.fixture
def office_url():
    name = f"motcua-office-{uuid.uuid4().hex[:8]}"
    url = create_vhost(name)
    yield url
    delete_vhost(name)


def test_in_the_office_what_comes_down_reaches_the_offices_consumers(settings, office_url):
    office = replace(settings, amqp_url=office_url)
    connection = pika.BlockingConnection(pika.URLParameters(office_url))
    topology.declare(connection.channel(), office)
    declare_downlink_entry(connection.channel(), Downlink("dn-hai-chau"))
    channel = connection.channel()
    channel.confirm_delivery()
    for event_type in ("DossierSubmitted", "DossierResultReady"):
        channel.basic_publish("motcua.downlink.in", event_type, b"{}", pika.BasicProperties(delivery_mode=2))
    connection.close()
    assert len(drain(office_url, topology.subscription("queue", "DossierSubmitted").queue)) == 1
    assert len(drain(office_url, topology.subscription("rating", "DossierResultReady").queue)) == 1


def test_the_centres_operators_declare_offices_queues_with_the_topology_command(broker_settings):
    import subprocess
    import sys

    from motcua_testing.fixtures import settings_env

    env = settings_env(broker_settings)
    result = subprocess.run([sys.executable, "-m", "motcua_platform.cli", "topology", "--ward", "dn-hai-chau",
                             "--ward", "dn-son-tra"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "declared motcua.downlink.dn-son-tra" in result.stdout
    publish_for_ward(broker_settings.amqp_url, "dn-son-tra")
    assert len(drain(broker_settings.amqp_url, "motcua.downlink.dn-son-tra")) == 1
    assert drain(broker_settings.amqp_url, "motcua.downlink.dn-hai-chau") == []
    bad = subprocess.run([sys.executable, "-m", "motcua_platform.cli", "topology", "--ward", "Bad Ward!"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not a ward id" in bad.stderr
