"""The event catalogue (docs/asyncapi.yaml) is what the generator makes from the topology and
proto/, and a valid AsyncAPI 3.0 document."""
from __future__ import annotations

import json
import os
import subprocess

import yaml
from motcua_testing import asyncapi


def test_the_committed_catalogue_is_the_generated_one():
    assert asyncapi.TARGET.read_text(encoding="utf-8") == asyncapi.render(), (
        "docs/asyncapi.yaml is out of date: run PYTHONPATH=tests/support python -m motcua_testing.asyncapi"
    )


def test_the_catalogue_names_every_exchange_queue_and_event():
    from motcua_common import events, topology

    doc = yaml.safe_load(asyncapi.TARGET.read_text(encoding="utf-8"))
    channels = doc["channels"].values()
    addresses = {c["address"] for c in channels}
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in channels if c["bindings"]["amqp"]["is"] == "routingKey"}
    assert exchanges == {events.exchange_for(s) for s, _ in events.EVENT_TYPES.values()} | {topology.DOWNLINK_EXCHANGE}
    for sub in topology.SUBSCRIPTIONS:
        assert {sub.queue, sub.retry_queue, sub.dead_queue} <= addresses
        assert f"{sub.consumer}.receive.{sub.event_type}" in doc["operations"]
    assert set(events.EVENT_TYPES) <= addresses
    assert set(doc["components"]["messages"]) == set(events.EVENT_TYPES)
    for event_type in topology.downlink_event_types():
        assert f"{topology.DOWNLINK_EXCHANGE}.{event_type}" in doc["channels"]


def test_payload_schemas_follow_proto3_json():
    """Field names are the proto's; int64 is a string; a Timestamp an RFC 3339 string."""
    from motcua_common import events, events_pb2

    schemas = yaml.safe_load(asyncapi.TARGET.read_text(encoding="utf-8"))["components"]["schemas"]
    for event_type, (_, cls) in events.EVENT_TYPES.items():
        assert list(schemas[event_type]["properties"]) == [f.name for f in cls.DESCRIPTOR.fields]
    assert list(schemas["Envelope"]["properties"]) == [f.name for f in events_pb2.Envelope.DESCRIPTOR.fields]
    assert schemas["WardOpened"]["properties"]["target_population"]["type"] == "string"
    assert schemas["TicketServed"]["properties"]["wait_seconds"]["type"] == "integer"
    assert schemas["TicketCalled"]["properties"]["called_at"]["format"] == "date-time"
    # What the platform actually emits matches (int64 written as a string).
    envelope = events.new_event("WardOpened", "w", {"ward_id": "w", "target_population": 12000})
    assert envelope["payload"]["target_population"] == "12000"
    assert set(schemas["WardOpened"]["required"]) <= set(envelope["payload"])


def test_asyncapi_validate_accepts_the_catalogue(tmp_path):
    cli = asyncapi.require_node_tool("asyncapi", "@asyncapi/cli")
    # No usage metrics sent, no prompt: a config file that says so, in a temporary folder.
    metrics = tmp_path / "asyncapi-analytics.json"
    metrics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "tests"}))
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(metrics), "SUPPRESS_NO_CONFIG_WARNING": "1",
           "HOME": str(tmp_path)}
    result = subprocess.run([cli, "validate", str(asyncapi.TARGET), "--fail-severity", "warn"],
                            capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # And it does refuse a broken one (the check is not vacuous).
    broken = tmp_path / "broken.yaml"
    broken.write_text(asyncapi.TARGET.read_text(encoding="utf-8").replace("action: receive", "action: listen"),
                      encoding="utf-8")
    result = subprocess.run([cli, "validate", str(broken), "--fail-severity", "warn"],
                            capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert result.returncode != 0 and "action" in result.stdout + result.stderr
