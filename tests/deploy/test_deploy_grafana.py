"""Grafana: the provisioned data source and dashboards. Every query parses (promql-parser and
the real promtool), names only metrics the platform exposes, and the dashboards show what the
monitoring centre asked for."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
CHART_DASHBOARDS = REPO / "deploy" / "helm" / "motcua" / "files" / "dashboards"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d",
                     "$ward_id": "dn-hai-chau", "$service": ".*", "$province": ".*"}
WARD_INFO_JOIN = "* on(ward_id) group_left(name, province) motcua_ward_info"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict):
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return {path.stem: load(path) for path in DASHBOARDS}


def test_the_three_dashboards_exist_with_stable_unique_ids(dashboards):
    assert set(dashboards) == {"ward-network", "ward-detail", "platform-health"}
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and all(uid.startswith("motcua-") for uid in uids)
    for dashboard in dashboards.values():
        assert "motcua" in dashboard["tags"]
        assert dashboard["timezone"] == "Asia/Ho_Chi_Minh"


def test_every_panel_reads_the_chosen_prometheus(dashboards):
    for name, dashboard in dashboards.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(set(refs)) == len(refs), (name, panel["title"])
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_panels_fit_the_grid_without_overlapping(dashboards):
    for name, dashboard in dashboards.items():
        taken = set()
        for panel in panels(dashboard):
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & taken, (name, panel["title"])
            taken |= cells
        ids = [p["id"] for p in panels(dashboard)]
        assert len(set(ids)) == len(ids)


def test_every_query_names_only_exposed_metrics_and_labels(dashboards, promql_problems):
    for name, dashboard in dashboards.items():
        for title, expr in queries(dashboard):
            assert promql_problems(expr) == [], (name, title, expr)


def test_promtool_parses_every_query(dashboards, tmp_path):
    """Prometheus' own parser, through `promtool check rules` on the queries as recording rules."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: install the Debian package `prometheus` (.ci/run does)")
    rules = []
    for name, dashboard in dashboards.items():
        for i, (_title, expr) in enumerate(queries(dashboard)):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            rules.append({"record": f"dashboard:{name.replace('-', '_')}:{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def metrics_in(dashboard: dict) -> str:
    return "\n".join(expr for _title, expr in queries(dashboard))


def test_the_ward_network_shows_every_ward_worst_first(dashboards):
    network = dashboards["ward-network"]
    (table,) = [p for p in panels(network) if p["type"] == "table"]
    columns = "\n".join(t["expr"] for t in table["targets"])
    for metric in ("motcua_queue_waiting_tickets", "motcua_queue_wait_seconds_bucket",
                   "ward_id:motcua_dossiers_returned_total:on_time_ratio_30d", "ward_id:motcua_ratings_total:satisfied_ratio_30d",
                   "ward_id:motcua_dossiers_submitted_total:online_ratio_30d", "ward_id:motcua_citizens_registered_total:increase_30d",
                   'ward_id_status:motcua_ward_notifications_total:sms_increase_1d{status="delivered"}',
                   "motcua_dossiers_overdue", "rabbitmq_shovel_dynamic"):
        assert metric in columns, metric
    # One row per ward, named: every column joined with the ward's name and province.
    assert all(t["expr"].endswith(WARD_INFO_JOIN + '{province=~"$province"}') for t in table["targets"])
    assert table["options"]["sortBy"][0]["desc"] is True
    assert table["transformations"][0]["id"] == "merge"
    assert 'status="failed"' in metrics_in(network)  # SMS failures (platform-wide and per ward)
    # From a ward's row to its own view.
    links = [link for o in table["fieldConfig"]["overrides"] for prop in o["properties"] if prop["id"] == "links"
             for link in prop["value"]]
    assert any("/d/motcua-ward-detail/" in link["url"] and "var-ward_id=${__data.fields.ward_id}" in link["url"]
               for link in links)
    assert any(link.get("url", "").startswith("/d/motcua-ward-detail/") for link in network["links"])


def test_every_ward_panel_names_its_wards(dashboards):
    """Any query that keeps ward_id is joined with motcua_ward_info (name, province)."""
    for name in ("ward-network", "ward-detail"):
        for title, expr in queries(dashboards[name]):
            city_total = expr.startswith(("count(", "sum(")) and "ward_id" not in expr.split("(", 1)[0]
            if ("by (ward_id" in expr or "ward_id:" in expr or 'ward_id="$ward_id"' in expr) and not city_total:
                assert WARD_INFO_JOIN in expr, (name, title)


def test_province_and_ward_are_chosen_by_name(dashboards):
    for name in ("ward-network", "ward-detail"):
        variables = {v["name"]: v for v in dashboards[name]["templating"]["list"]}
        assert variables["province"]["definition"] == "label_values(motcua_ward_info, province)"
    ward = {v["name"]: v for v in dashboards["ward-detail"]["templating"]["list"]}["ward_id"]
    assert ward["definition"] == 'query_result(motcua_ward_info{province=~"$province"})'
    # The menu shows the ward's name; the value is its ward_id.
    pattern = re.compile(ward["regex"].strip("/").replace("(?<", "(?P<"))
    line = 'motcua_ward_info{instance="identity-api:8080", job="motcua-api", name="Phường Hải Châu", ' \
           'official_code="20194", province="Thành phố Đà Nẵng", ward_id="dn-hai-chau"} 1 1700000000000'
    match = pattern.search(line)
    assert match and (match["text"], match["value"]) == ("Phường Hải Châu", "dn-hai-chau")


def test_the_ward_detail_follows_its_ward_variable(dashboards):
    detail = dashboards["ward-detail"]
    for title, expr in queries(detail):
        assert 'ward_id="$ward_id"' in expr, title
    assert any(link.get("url", "").startswith("/d/motcua-ward-network/") for link in detail["links"])
    assert "motcua_ward_notifications_total" in metrics_in(detail)  # the ward's own SMS


def test_a_typo_in_a_metric_name_is_caught(promql_problems):
    """The static check fails on a misspelt metric or recording rule, and on a missing label."""
    assert promql_problems('sum by (ward_id) (motcua_queue_waiting_tikets)') != []
    assert promql_problems('ward_id:motcua_dossiers_returned_total:ontime_ratio_30d') != []
    assert promql_problems('motcua_ward_info{provinse="x"}') != []
    assert promql_problems('ward_id:motcua_dossiers_returned_total:on_time_ratio_30d * on(ward_id) '
                           'group_left(name, province) motcua_ward_info{province=~".*"}') == []


def test_platform_health_shows_red_outbox_lag_and_dead_letters(dashboards):
    health = metrics_in(dashboards["platform-health"])
    for needle in ("motcua_http_requests_total", 'status=~"5.."', "motcua_http_request_seconds_bucket",
                   "motcua_outbox_pending", "motcua_events_published_total", "motcua_events_consumed_total",
                   "rabbitmq_detailed_queue_messages_ready", '.+\\\\.dead"', 'up{job=~"motcua-(api|worker|relay)"}'):
        assert needle in health, needle


def test_provisioning_points_grafana_at_the_stack(dashboards):
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text(encoding="utf-8"))
    (source,) = datasources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == ("prometheus", "http://prometheus:9090", True)
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "motcua.yaml").read_text(encoding="utf-8"))
    (provider,) = providers["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in compose["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in compose["volumes"]


def test_the_chart_ships_the_same_dashboards():
    shipped = {p.name: p.read_bytes() for p in CHART_DASHBOARDS.glob("*.json")}
    assert shipped == {p.name: p.read_bytes() for p in DASHBOARDS}, (
        "deploy/helm/motcua/files/dashboards differs: cp deploy/grafana/dashboards/*.json deploy/helm/motcua/files/dashboards/")
