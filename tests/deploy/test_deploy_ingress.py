"""The public Ingress routes every route the services really serve to the public, and never
/<svc>/metrics: each service's Flask app is built (no database is reached) and its URL map
held against the rendered Ingress paths, with Kubernetes' Prefix semantics."""
from __future__ import annotations

import importlib
import re

import pytest

SERVICES = ("identity", "dossier", "queue", "notify", "rating")
# Internal by design: Prometheus scrapes /<svc>/metrics inside the cluster; the kubelet probes.
INTERNAL = ("metrics", "healthz", "readyz")


def prefix_matches(prefix: str, path: str) -> bool:
    """networking.k8s.io/v1 pathType Prefix: element-wise, `/queue/api` matches /queue/api and
    /queue/api/v1/..., never /queue/apix."""
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def routed(ingress: dict, path: str) -> list[str]:
    return [p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
            if (p["pathType"] == "Exact" and p["path"] == path)
            or (p["pathType"] in ("Prefix", "ImplementationSpecific") and prefix_matches(p["path"], path))]


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory) -> dict[str, set[str]]:
    """Each service's URL rules, from its app built with unreachable backing services."""
    from motcua_common.config import Settings

    routes = {}
    for service in SERVICES:
        module = importlib.import_module(f"motcua_{service}.api")
        settings = Settings.from_env({
            "MONGO_URL": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=50&connectTimeoutMS=50",
            "AMQP_URL": "amqp://127.0.0.1:9/", "MOTCUA_DATA_DIR": str(tmp_path_factory.mktemp(service)),
            "IDENTITY_URL": "http://127.0.0.1:9"})
        app = module.create_app(settings)
        routes[service] = {rule.rule for rule in app.url_map.iter_rules()}
    return routes


def concrete(rule: str) -> str:
    """A path the rule matches: each <converter:name> replaced by a plain segment."""
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "x", rule)


@pytest.fixture(scope="module", params=["central", "edge"])
def ingress(request, render):
    if request.param == "central":
        release = render("values-central.yaml")
    else:
        release = render("values-edge.yaml", values={"ward": {"id": "dn-hai-chau"},
                                                     "identityUrl": "https://motcua.danang.example"})
    (ingress,) = release.of_kind("Ingress")
    return request.param, ingress


def test_no_rule_routes_metrics_health_or_readiness(ingress):
    _profile, ingress = ingress
    for service in SERVICES:
        for internal in INTERNAL:
            for path in (f"/{service}/{internal}", f"/{service}/{internal}/"):
                assert routed(ingress, path) == [], path


def test_every_public_route_of_each_service_is_routed_to_its_api(ingress, app_routes):
    profile, ingress = ingress
    enabled = SERVICES if profile == "central" else ("queue", "rating")
    for service in enabled:
        rules = app_routes[service]
        assert f"/{service}/metrics" in rules  # the app does serve it: the Ingress must not
        for rule in rules:
            if not rule.startswith(f"/{service}/") or rule.split("/")[2] in INTERNAL:
                continue  # Flask's own /static (unused: each blueprint serves /<svc>/static) and the internal ones
            assert routed(ingress, concrete(rule)) == [f"motcua-{service}-api"], (profile, rule)


def test_the_brief_pages_are_routed(ingress):
    profile, ingress = ingress
    pages = {"queue": ["/queue/kiosk", "/queue/board", "/queue/counter", "/queue/ticket", "/queue/admin", "/queue/static/x.css"],
             "rating": ["/rating/rate", "/rating/api/v1/ratings"],
             "identity": ["/identity/register", "/identity/login", "/identity/logout", "/identity/password",
                          "/identity/admin", "/identity/.well-known/jwks.json"],
             "dossier": ["/dossier/portal", "/dossier/desk", "/dossier/admin", "/dossier/verify", "/dossier/minh-bach",
                         "/dossier/pay"]}
    for service, paths in pages.items():
        if profile == "edge" and service not in ("queue", "rating"):
            continue
        for path in paths:
            assert routed(ingress, path) == [f"motcua-{service}-api"], path


def test_the_prefix_semantics_checker_itself():
    assert prefix_matches("/queue/api", "/queue/api/v1/tickets/1")
    assert prefix_matches("/queue/api", "/queue/api")
    assert not prefix_matches("/queue/api", "/queue/apix")
    assert prefix_matches("/queue", "/queue/metrics")  # why the old whole-prefix rule exposed metrics


def test_a_metrics_path_cannot_be_made_public(helm, chart):
    values = {"ingress": {"enabled": True, "publicPaths": {"queue": ["/queue/api", "/queue/metrics"]}}}
    with pytest.raises(helm.HelmValuesError):
        chart.render(values=values, name="motcua", namespace="motcua")
