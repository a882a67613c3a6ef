"""A real Prometheus scrapes a running `motcua up --demo` after a ward's day (the platform
fixture of test_ward_day.py): every dashboard query and alert expression runs, and every
`motcua_*` metric the dashboards name is really exposed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from motcua_platform.embedded import free_port
from motcua_testing.fixtures import wait_for


REPO = Path(__file__).resolve().parents[2]
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$ward_id": "dn-hai-chau", "$service": ".*"}
SERVICES = ("identity", "dossier", "queue", "notify", "rating")

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian package prometheus not installed")]


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                for target in inner.get("targets", []):
                    expr = target["expr"]
                    for name, value in VARIABLES.items():
                        expr = expr.replace(name, value)
                    found.append((f"{path.stem}: {inner.get('title')}", expr))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "motcua-alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.fixture(scope="module")
def prometheus(platform, tmp_path_factory):
    # The targets file motcua up writes: every API, worker and relay.
    targets = Path(platform["data_dir"]) / "prometheus-targets.json"
    expected = len(json.loads(targets.read_text()))
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "motcua", "file_sd_configs": [{"files": [str(targets)]}]}]}
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def all_up():
        try:
            result = requests.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=2).json()["data"]["result"]
        except (requests.RequestException, KeyError, ValueError):
            return False
        return len(result) == expected and all(r["value"][1] == "1" for r in result)

    wait_for(all_up, timeout=60, message="Prometheus to scrape every service")
    time.sleep(3)
    yield url
    proc.terminate()
    proc.wait(20)


def test_every_dashboard_query_and_alert_runs_on_real_data(prometheus):
    failures = []
    for where, expr in dashboard_queries() + alert_expressions():
        body = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        if body.get("status") != "success":
            failures.append(f"{where}: {body.get('error')}")
    assert not failures, "\n".join(failures)


def test_every_platform_metric_the_dashboards_name_is_exposed(prometheus):
    names = set(requests.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
    wanted = set()
    for _, expr in dashboard_queries():
        wanted |= set(re.findall(r"\b(motcua_[a-z0-9_]+?)(?:_bucket|_count|_sum)?\b", expr))
    exposed = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in names}
    missing = sorted(w for w in wanted if w not in exposed and w not in names)
    assert not missing, f"dashboards name metrics the running platform does not expose: {missing}"
