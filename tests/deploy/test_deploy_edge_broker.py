"""The edge office's uplink: the definitions the chart renders for its broker, run through the
real init script (POSIX sh), agree with the platform's topology and keep the central
broker's address out of the ConfigMap."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from motcua_common import topology
from motcua_platform import edge
from motcua_common.events import EVENT_TYPES, exchange_for

SCRIPT = Path(__file__).resolve().parents[2] / "deploy/helm/motcua/files/edge-broker/render-definitions.sh"
EDGE_REQUIRED = {"ward": {"id": "dn-hai-chau"}, "identityUrl": "https://motcua.danang.example"}
# A password with every character a shell or sed would trip on, percent-encoded where a URI must.
UPSTREAM = "amqps://uplink-dn-hai-chau:p%40ss&w|rd$1*~!@central.danang.example:5671/%2F?heartbeat=15"


@pytest.fixture(scope="module")
def broker_config(render):
    release = render("values-edge.yaml", values=EDGE_REQUIRED)
    return release.get("ConfigMap", "motcua-broker")["data"]


def run_script(tmp_path: Path, template: str, uri: str | None):
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell on this machine")
    (tmp_path / "definitions.json.template").write_text(template, encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "TEMPLATE": str(tmp_path / "definitions.json.template"),
           "DEFINITIONS": str(tmp_path / "definitions.json")}
    if uri is not None:
        env["MOTCUA_UPSTREAM_URI"] = uri
    return subprocess.run([sh, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=10)


def uplinks(template: dict) -> list[dict]:
    return [s for s in template["parameters"] if s["name"].startswith("motcua-uplink-")]


def downlink(template: dict) -> dict:
    return next(s for s in template["parameters"] if s["name"] == "motcua-downlink")


def test_the_configmap_names_no_address_only_a_placeholder(broker_config):
    template = json.loads(broker_config["definitions.json.template"])
    assert len(uplinks(template)) == 2
    for shovel in uplinks(template):
        assert shovel["value"]["dest-uri"] == "__MOTCUA_UPSTREAM_URI__"
        assert shovel["value"]["src-uri"] == "amqp://"  # the local node, no credentials
    # The downlink pulls from the centre into the local node.
    assert downlink(template)["value"]["src-uri"] == "__MOTCUA_UPSTREAM_URI__"
    assert downlink(template)["value"]["dest-uri"] == "amqp://"
    assert broker_config["render-definitions.sh"].strip() == SCRIPT.read_text(encoding="utf-8").strip()


def test_the_init_script_writes_the_address_from_the_secret(tmp_path, broker_config):
    result = run_script(tmp_path, broker_config["definitions.json.template"], UPSTREAM)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "definitions.json"
    assert written.stat().st_mode & 0o077 == 0  # readable by the broker's user only
    definitions = json.loads(written.read_text(encoding="utf-8"))
    assert [s["value"]["dest-uri"] for s in uplinks(definitions)] == [UPSTREAM, UPSTREAM]
    assert downlink(definitions)["value"]["src-uri"] == UPSTREAM
    assert "__MOTCUA_UPSTREAM_URI__" not in written.read_text(encoding="utf-8")


@pytest.mark.parametrize("uri, message", [
    (None, "upstream-uri is empty"),
    ("", "upstream-uri is empty"),
    ('amqps://a:b"c@central/%2F', "percent-encoded"),
    ("amqps://a:b\\c@central/%2F", "percent-encoded"),
])
def test_the_init_script_refuses_a_missing_or_malformed_address(tmp_path, broker_config, uri, message):
    result = run_script(tmp_path, broker_config["definitions.json.template"], uri)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "definitions.json").exists()


def test_each_exchange_goes_up_through_a_durable_queue_with_confirms(broker_config):
    template = json.loads(broker_config["definitions.json.template"])
    exchanges = {e["name"]: e for e in template["exchanges"]}
    assert set(exchanges) == {exchange_for("queue"), exchange_for("rating"), exchange_for("dossier"), exchange_for("identity"),
                              "motcua.downlink.in"}
    for exchange in exchanges.values():
        # Declared exactly as every motcua process declares it (topology.declare), or the
        # broker would refuse one of the two declarations.
        assert (exchange["type"], exchange["durable"], exchange["auto_delete"]) == ("topic", True, False)
    queues = {q["name"]: q for q in template["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in template["bindings"]}
    for shovel in uplinks(template):
        value = shovel["value"]
        queue = queues[value["src-queue"]]
        assert queue["durable"] and queue["arguments"] == {"x-queue-type": "quorum"}
        assert (value["dest-exchange"], value["src-queue"], "#") in bindings
        # Each event keeps its routing key (its type), so the centre's consumers get it.
        assert "dest-exchange-key" not in value
        assert value["ack-mode"] == "on-confirm" and value["src-delete-after"] == "never"
    # The uplink queues are the broker's own: no consumer queue of the platform is taken.
    assert not set(queues) & {s.queue for s in topology.SUBSCRIPTIONS}


def test_the_centres_events_for_this_ward_come_down_as_the_platform_routes_them(broker_config):
    template = json.loads(broker_config["definitions.json.template"])
    value = downlink(template)["value"]
    assert value["src-queue"] == edge.Downlink("dn-hai-chau").queue  # the ward's own queue at the centre
    assert value["dest-exchange"] == edge.Downlink("dn-hai-chau").exchange
    assert value["ack-mode"] == "on-confirm" and value["src-delete-after"] == "never"
    assert "dest-exchange-key" not in value
    routes = {(b["routing_key"], b["destination"]) for b in template["bindings"]
              if b["source"] == "motcua.downlink.in" and b["destination_type"] == "exchange"}
    # The same event types the edge profile brings down, each to its source's exchange.
    assert routes == {(t, exchange_for(EVENT_TYPES[t][0])) for t in topology.downlink_event_types()}


def test_without_the_downlink_the_office_only_sends(render):
    release = render("values-edge.yaml", values={**EDGE_REQUIRED, "localBroker": {"downlink": {"enabled": False}}})
    template = json.loads(release.get("ConfigMap", "motcua-broker")["data"]["definitions.json.template"])
    assert [s["name"] for s in template["parameters"]] == ["motcua-uplink-queue.events", "motcua-uplink-rating.events"]
