"""The bounds of the queues between the centre and the offices say the same thing everywhere:
the code's defaults (motcua_common.topology.QueueBounds), the edge broker's policy in the chart,
and the alerts, which warn at half of each bound."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from motcua_common.topology import QueueBounds

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "motcua-alerts.yml"
EDGE = {"ward": {"id": "dn-hai-chau"}, "identityUrl": "https://motcua.danang.example"}


def threshold(alert: str) -> int:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    [rule] = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    return int(re.search(r">\s*(\d+)\s*$", rule["expr"].strip()).group(1))


def test_the_edge_brokers_policy_bounds_the_uplink_as_the_code_does(render):
    template = render("values-edge.yaml", values=EDGE).get("ConfigMap", "motcua-broker")["data"]
    [policy] = json.loads(template["definitions.json.template"])["policies"]
    bounds = QueueBounds()
    assert re.match(policy["pattern"], "motcua.uplink.queue.events") and not re.match(policy["pattern"], "queue.events")
    assert policy["definition"] == {"max-length": bounds.uplink_max_length,
                                    "max-length-bytes": bounds.uplink_max_bytes, "overflow": "reject-publish"}
    assert bounds.uplink_arguments()["x-overflow"] == bounds.downlink_arguments()["x-overflow"] == "reject-publish"


def test_the_alerts_warn_at_half_of_each_bound():
    bounds = QueueBounds()
    assert threshold("MotcuaWardUplinkFilling") == bounds.uplink_max_length // 2
    assert threshold("MotcuaWardDownlinkFilling") == bounds.downlink_max_length // 2


def test_the_bounds_come_from_the_environment():
    bounds = QueueBounds.from_env({"MOTCUA_DOWNLINK_MAX_LENGTH": "50", "MOTCUA_UPLINK_MAX_BYTES": "4096"})
    assert bounds.downlink_arguments()["x-max-length"] == 50
    assert bounds.uplink_arguments()["x-max-length-bytes"] == 4096
    assert bounds.downlink_max_bytes == QueueBounds().downlink_max_bytes
