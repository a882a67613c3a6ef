"""Shared fixtures of the deployment tests: the repository's paths and the chart rendered by
real Helm (helm-python-sdk, no cluster), memoised per set of values."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "motcua"

def deep_merge(base: dict, override: dict) -> dict:
    """Helm's rule for several -f files: maps merge key by key, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_file(name: str) -> dict:
    return yaml.safe_load((CHART / name).read_text(encoding="utf-8")) or {}


@dataclass
class Release:
    """One rendering of the chart: its manifests by kind and name, and NOTES.txt."""

    manifests: list[dict]
    notes: str
    values: dict = field(repr=False)

    def of_kind(self, kind: str) -> list[dict]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert found, f"no {kind} named {name}; have {[m['metadata']['name'] for m in self.of_kind(kind)]}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {m["metadata"]["name"] for m in self.of_kind(kind)}


@pytest.fixture(scope="session")
def helm():
    helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is a test dependency (pip install -e '.[test]')")
    return helm_python


@pytest.fixture(scope="session")
def chart(helm):
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart):
    """render(*values_files, **overrides as one dict under `values=`) -> Release."""
    cache: dict[str, Release] = {}

    def _render(*files: str, values: dict | None = None, release: str = "motcua") -> Release:
        merged: dict = {}
        for name in files:
            merged = deep_merge(merged, values_file(name))
        merged = deep_merge(merged, values or {})
        key = json.dumps([release, merged], sort_keys=True)
        if key not in cache:
            rendered = chart.render(values=merged, name=release, namespace="motcua", is_install=True)
            manifests, notes = [], ""
            for path, text in sorted(rendered.items()):
                if path.endswith("NOTES.txt"):
                    notes = text
                    continue
                manifests += [doc for doc in yaml.safe_load_all(text) if doc]
            cache[key] = Release(manifests, notes, merged)
        return cache[key]

    return _render


# --- the metrics the platform really exposes, and a checker of PromQL against them --------

# Labels Prometheus adds to every series of a target (deploy/prometheus/prometheus.yml and the
# chart's ServiceMonitors): the job and the instance; motcua_service on the platform's own
# processes; ward_id on an edge office's broker (the platform's metrics carry their own).
TARGET_LABELS = {"job", "instance", "motcua_service", "ward_id"}


def target_labels(metric: str) -> set[str]:
    if ":" in metric:
        return set()  # a recording rule's series keeps only the labels it aggregates by
    if metric.startswith("motcua_"):
        return {"job", "instance", "motcua_service"}
    if metric.startswith("rabbitmq_"):
        return {"job", "instance", "ward_id"}
    return TARGET_LABELS

# Exposed by the broker's plugins (rabbitmq_prometheus: /metrics/detailed with the
# queue_coarse_metrics family; rabbitmq_shovel_prometheus), which this machine's broker does
# not run: the names and labels come from those plugins' collectors.
BROKER_METRICS = {
    "rabbitmq_detailed_queue_messages": {"vhost", "queue"},
    "rabbitmq_detailed_queue_messages_ready": {"vhost", "queue"},
    "rabbitmq_shovel_dynamic": {"status"},
}

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d",
                     "$ward_id": "dn-hai-chau", "$service": ".*", "$province": ".*"}

# identity's /identity/metrics: one series per open ward, value 1 (CONTRACT.md "Metrics"; its
# labels are motcua_common.metrics.WARD_INFO_LABELS, exported by identity at scrape time).
WARD_INFO = "motcua_ward_info"
RECORDING_RULES = REPO / "deploy" / "prometheus" / "rules" / "motcua-records.yml"


def recorded_series() -> dict[str, set[str]]:
    """The recording rules' series (deploy/prometheus/rules/motcua-records.yml) with the labels
    their `by` keeps (level:metric:operations: the level names them, `_` separated)."""
    rules = yaml.safe_load(RECORDING_RULES.read_text(encoding="utf-8"))
    return {rule["record"]: _level_labels(rule["record"]) for group in rules["groups"] for rule in group["rules"]}


def _level_labels(record: str) -> set[str]:
    level = record.split(":")[0]  # ward_id, ward_id_status
    return {"ward_id"} | ({level.removeprefix("ward_id_")} if level != "ward_id" else set())


@pytest.fixture(scope="session")
def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the services expose (libs/motcua_common/metrics.py), with its labels."""
    from prometheus_client.metrics import MetricWrapperBase

    from motcua_common import metrics

    exposed: dict[str, set[str]] = {"up": set()}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames)
        if value._type == "counter":
            exposed[f"{value._name}_total"] = labels
        elif value._type == "histogram":
            exposed[f"{value._name}_bucket"] = labels | {"le"}
            exposed[f"{value._name}_count"] = labels
            exposed[f"{value._name}_sum"] = labels
        else:
            exposed[value._name] = labels
    for family in metrics.OutboxPendingCollector("dossier", lambda: 0).collect():
        exposed[family.name] = {label for sample in family.samples for label in sample.labels}
    exposed.update(BROKER_METRICS)
    exposed[WARD_INFO] = set(metrics.WARD_INFO_LABELS)
    # The queue's device health, computed at scrape time (motcua_queue.heartbeats.DeviceHealthCollector).
    from motcua_queue.heartbeats import METRIC_LABELS as DEVICE_METRICS

    exposed.update({name: set(labels) for name, labels in DEVICE_METRICS.items()})
    # identity's registration coverage, from a count cached a minute (motcua_identity.api.CoverageCollector).
    from motcua_identity.api import COVERAGE_METRICS

    exposed.update({name: set(labels) for name, labels in COVERAGE_METRICS.items()})
    exposed.update(recorded_series())
    return exposed


@pytest.fixture(scope="session")
def label_values_in_code() -> str:
    """The platform's Python source, where every label value a query matches must appear."""
    sources = list((REPO / "libs" / "motcua_common").glob("*.py")) + list((REPO / "services").glob("*/*.py"))
    return "\n".join(path.read_text(encoding="utf-8") for path in sources)


@pytest.fixture(scope="session")
def promql_problems(exposed_metrics, label_values_in_code):
    """promql_problems(expr) -> [problem]: the query parses, names only exposed metrics, and
    matches and groups by labels those metrics have."""
    promql_parser = pytest.importorskip("promql_parser", reason="promql-parser is a test dependency")

    def selectors(node):
        found = []
        promql_parser.walk(node, pre_visit=lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None)
        return found

    def _check(expr: str) -> list[str]:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        try:
            tree = promql_parser.parse(expr)
        except Exception as exc:  # the parser's own error type is not exported
            return [f"does not parse: {exc}"]
        problems = []
        for selector in selectors(tree):
            name = selector.name
            if name not in exposed_metrics:
                problems.append(f"{name} is not exposed")
                continue
            allowed = exposed_metrics[name] | target_labels(name)
            for matcher in selector.matchers.matchers:
                if matcher.name not in allowed:
                    problems.append(f"{name} has no label {matcher.name}")
                elif (matcher.op == promql_parser.MatchOp.Equal and name.startswith("motcua_")
                      and matcher.name not in target_labels(name)
                      and f'"{matcher.value}"' not in label_values_in_code):
                    problems.append(f'{name}{{{matcher.name}="{matcher.value}"}}: no such value in the code')

        def check_grouping(node):
            if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None \
                    and node.modifier.type == promql_parser.AggModifierType.By:
                inner = set().union(*(exposed_metrics.get(s.name, set()) | target_labels(s.name)
                                      for s in selectors(node.expr)))
                for label in node.modifier.labels:
                    if label not in inner:
                        problems.append(f"groups by {label}, which none of its metrics has")

        promql_parser.walk(tree, pre_visit=check_grouping)
        return problems

    return _check
