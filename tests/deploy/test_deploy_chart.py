"""The Helm chart, rendered by real Helm for both profiles and several value combinations:
lint, Kubernetes schemas, the workload hygiene of every pod, and what each profile promises."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "motcua"
# What an operator passes on the command line with the edge profile (values-edge.yaml
# leaves both empty on purpose: the chart refuses to guess them).
EDGE_REQUIRED = {"ward": {"id": "dn-hai-chau"}, "identityUrl": "https://motcua.danang.example"}
SERVICES = ("identity", "dossier", "queue", "notify", "rating")
ROLES = ("api", "worker", "relay")
OPERATOR_GROUPS = ("monitoring.coreos.com/", "rabbitmq.com/", "mongodbcommunity.mongodb.com/")
KUBERNETES_VERSION = "1.30.0"  # the oldest minor we promise (Chart.yaml: kubeVersion >=1.27)

# Value combinations beyond the two profiles: each is rendered, validated and checked.
COMBINATIONS = {
    "defaults": ((), {}),
    "central": (("values-central.yaml",), {}),
    "edge": (("values-edge.yaml",), EDGE_REQUIRED),
    "central, several gunicorn processes, digest-pinned image, private registry": (
        ("values-central.yaml",),
        {"api": {"gunicorn": {"workers": 3}},
         "image": {"digest": "sha256:" + "a" * 64},
         "global": {"imageRegistry": "registry.danang.example", "imagePullSecrets": ["city-registry"]}},
    ),
    "no network policies, autoscaling, disruption budgets or service accounts": (
        (), {"networkPolicy": {"enabled": False}, "serviceAccount": {"create": False},
             "api": {"autoscaling": {"enabled": False}, "pdb": {"create": False}},
             "worker": {"pdb": {"create": False}}, "relay": {"pdb": {"create": False}}},
    ),
    "external broker and database narrowed to ipBlocks, own Secret names": (
        (), {"networkPolicy": {"externalBroker": {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [5671]},
                               "externalDatabase": {"to": [{"ipBlock": {"cidr": "10.30.0.0/24"}}], "ports": [27017]},
                               "smsGateway": {"to": [{"ipBlock": {"cidr": "203.0.113.10/32"}}], "ports": [443]}},
             "services": {"dossier": {"existingSecret": "dossier-credentials"}}},
    ),
    "edge without persistence or uplink, monitoring on": (
        ("values-edge.yaml",),
        {**EDGE_REQUIRED, "localBroker": {"persistence": {"enabled": False}, "uplink": {"enabled": False}},
         "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                     "grafanaDashboards": {"enabled": True}}},
    ),
    "central with Kannel, tracing to a collector": (
        ("values-central.yaml",),
        {"kannel": {"enabled": True, "smsc": {"host": "smsc.telco.example", "port": 2776},
                    "existingSecret": "kannel-credentials"},
         "tracing": {"otlpEndpoint": "http://otel-collector.monitoring:4318", "sampleRatio": 0.25},
         "networkPolicy": {"smsc": {"to": [{"ipBlock": {"cidr": "203.0.113.20/32"}}]},
                           "otelCollector": {"to": [{"namespaceSelector": {"matchLabels": {
                               "kubernetes.io/metadata.name": "monitoring"}}}]}}},
    ),
    "Kannel without persistence, no network policies": (
        (), {"kannel": {"enabled": True, "smsc": {"host": "10.9.0.5"}, "persistence": {"enabled": False}},
             "networkPolicy": {"enabled": False}},
    ),
    "central with the backup, a TLS broker, the operators' settings": (
        ("values-central.yaml",),
        {"backup": {"enabled": True, "keepDays": 30, "persistence": {"storageClass": "replicated"}},
         "rabbitmq": {"tls": {"secretName": "rabbitmq-tls", "caSecretName": "city-ca"}, "service": {"type": "LoadBalancer"},
                      "terminationGracePeriodSeconds": 3600, "tolerations": [{"key": "broker", "operator": "Exists"}]},
         "mongodb": {"tls": {"enabled": True, "certificateKeySecretName": "mongodb-tls", "caConfigMapName": "city-ca"},
                     "memberConfig": [{"votes": 1, "priority": "2"}, {"votes": 1, "priority": "1"}, {"votes": 1, "priority": "1"}]},
         "config": {"trustedProxies": 2}},
    ),
    "external broker and database, backup with its own Secret, no tests": (
        (), {"backup": {"enabled": True, "existingSecret": "backup-mongo", "persistence": {"existingClaim": "nfs-backups"}},
             "tests": {"enabled": False}},
    ),
    "only dossier and notify, per-service overrides": (
        (), {"services": {"identity": {"enabled": False}, "queue": {"enabled": False}, "rating": {"enabled": False},
                          "notify": {"worker": {"replicaCount": 4, "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}}},
             "identityUrl": "https://motcua.danang.example"},
    ),
}


@pytest.fixture(scope="module")
def central(render):
    return render("values-central.yaml")


@pytest.fixture(scope="module")
def edge(render):
    return render("values-edge.yaml", values=EDGE_REQUIRED)


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def release(request, render):
    files, values = COMBINATIONS[request.param]
    return render(*files, values=values)


def pod_specs(release):
    """(workload, pod spec) for every Deployment and StatefulSet."""
    for workload in release.of_kind("Deployment") + release.of_kind("StatefulSet"):
        yield workload, workload["spec"]["template"]["spec"]


def every_pod_spec(release):
    """(object, pod spec) for every pod the chart makes: workloads, the backup CronJob, `helm test` Pods."""
    yield from pod_specs(release)
    for job in release.of_kind("CronJob"):
        yield job, job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    for pod in release.of_kind("Pod"):
        yield pod, pod["spec"]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


# --- Helm and Kubernetes themselves ------------------------------------------------------

def test_helm_lint_finds_no_error(helm, release):
    report = helm.lint(str(CHART), release.values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_every_manifest_is_valid_against_the_kubernetes_schemas(release):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = 0
    for manifest in release.manifests:
        if manifest["apiVersion"].startswith(OPERATOR_GROUPS):
            continue  # custom resources: the Prometheus Operator's field by field below, the
            # RabbitMQ and MongoDB operators' against their CRD schemas (test_deploy_operators.py)
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked > 10


def test_values_outside_the_schema_are_refused(helm, chart):
    for bad, where in (
        ({"config": {"queueType": "lazy"}}, "queueType"),
        ({"api": {"replicaCount": 0}}, "replicaCount"),
        ({"containerSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"ward": {"id": "Hải Châu"}}, "ward"),
        ({"localBroker": {"uplink": {"exchanges": ["amq.topic"]}}}, "exchanges"),
        ({"replicas": 3}, "additional properties"),
    ):
        with pytest.raises(helm.HelmValuesError, match=where):
            chart.render(values=bad, name="motcua", namespace="motcua")


def test_edge_profile_refuses_to_guess_its_ward_or_the_central_address(helm, chart):
    edge = yaml.safe_load((CHART / "values-edge.yaml").read_text(encoding="utf-8"))
    with pytest.raises(helm.HelmRenderError, match="ward.id is required"):
        chart.render(values={**edge, "identityUrl": EDGE_REQUIRED["identityUrl"]}, name="w")
    with pytest.raises(helm.HelmRenderError, match="identityUrl is required"):
        chart.render(values={**edge, "ward": EDGE_REQUIRED["ward"]}, name="w")


# --- workload hygiene, on every pod of every combination ------------------------------------

def test_every_container_runs_unprivileged_on_a_read_only_root(release):
    for workload, spec in every_pod_spec(release):
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(spec):
            sc = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where


def test_every_container_has_requests_and_limits(release):
    for workload, spec in every_pod_spec(release):
        for container in containers(spec):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), (workload["metadata"]["name"], container["name"], kind)


def test_every_long_running_container_has_startup_liveness_and_readiness_probes(release):
    for workload, spec in pod_specs(release):
        for container in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, (workload["metadata"]["name"], probe)


def test_api_probes_ask_healthz_for_liveness_and_readyz_for_readiness(release):
    for workload, spec in pod_specs(release):
        labels = workload["metadata"]["labels"]
        if labels.get("app.kubernetes.io/component") != "api":
            continue
        service = labels["motcua.vn/service"]
        api = spec["containers"][0]
        assert api["startupProbe"]["httpGet"]["path"] == f"/{service}/healthz"
        assert api["livenessProbe"]["httpGet"]["path"] == f"/{service}/healthz"
        assert api["readinessProbe"]["httpGet"]["path"] == f"/{service}/readyz"


def test_writable_paths_are_volumes(release):
    for workload, spec in every_pod_spec(release):
        volumes = {v["name"] for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for container in containers(spec):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            where = (workload["metadata"]["name"], container["name"])
            assert "/tmp" in mounts or container["name"] == "uplink-definitions", where
            assert set(mounts.values()) <= volumes | claims


def test_every_object_carries_the_standard_labels(release):
    chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["version"]
    for manifest in release.manifests:
        labels = manifest["metadata"]["labels"]
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == "motcua", where
        assert labels["app.kubernetes.io/instance"] == "motcua", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["app.kubernetes.io/part-of"] == "motcua", where
        assert labels["helm.sh/chart"] == f"motcua-{chart_version}", where


def test_selectors_match_their_pods_and_no_two_workloads_share_pods(release):
    selectors = []
    for workload, _spec in pod_specs(release):
        selector = workload["spec"]["selector"]["matchLabels"]
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), workload["metadata"]["name"]
        selectors.append(selector)
    for i, a in enumerate(selectors):
        for b in selectors[i + 1:]:
            assert not (a.items() <= b.items() or b.items() <= a.items()), (a, b)


def test_no_secret_value_is_rendered(release):
    """Credentials reach the pods only by reference to Secrets the operator creates."""
    assert release.of_kind("Secret") == []
    for workload, spec in every_pod_spec(release):
        for container in containers(spec):
            for env in container.get("env", []):
                name = env["name"]
                if any(word in name for word in ("URL", "PASSWORD", "TOKEN", "PASS", "URI", "USER")) \
                        and name not in ("IDENTITY_URL", "JWKS_URL"):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], (workload["metadata"]["name"], name)
    credentials_in_url = re.compile(r"[a-z+]+://[^/\\s\"@]*:[^/\\s\"@]*@")
    for config_map in release.of_kind("ConfigMap"):
        for key, text in config_map["data"].items():
            assert not credentials_in_url.search(text), (config_map["metadata"]["name"], key)


# --- what the profiles promise ----------------------------------------------------------

def test_central_runs_every_service_in_every_role(central):
    deployments = central.names("Deployment")
    assert deployments == {f"motcua-{s}-{r}" for s in SERVICES for r in ROLES}
    for service in SERVICES:
        api = central.get("Deployment", f"motcua-{service}-api")
        args = api["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:3] == ["api", "--service", service]
        init = api["spec"]["template"]["spec"]["initContainers"][0]
        assert init["args"] == ["prepare", "--service", service]
        for role in ("worker", "relay"):
            container = central.get("Deployment", f"motcua-{service}-{role}")["spec"]["template"]["spec"]["containers"][0]
            assert container["args"] == [role, "--service", service]
            assert {"name": "METRICS_PORT", "value": "9100"} in container["env"]


def test_relays_are_single_and_never_overlap(central):
    for service in SERVICES:
        relay = central.get("Deployment", f"motcua-{service}-relay")
        assert relay["spec"]["replicas"] == 1
        assert relay["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(h["spec"]["scaleTargetRef"]["name"].endswith(("-relay", "-worker"))
                   for h in central.of_kind("HorizontalPodAutoscaler"))


def test_central_autoscales_the_apis_and_leaves_replicas_to_the_autoscaler(central):
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in central.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {f"motcua-{s}-api" for s in SERVICES}
    for name, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= 2
        assert "replicas" not in central.get("Deployment", name)["spec"]


def test_disruption_budgets_keep_an_api_and_never_block_a_drain_on_singletons(central):
    for pdb in central.of_kind("PodDisruptionBudget"):
        role = pdb["metadata"]["labels"]["app.kubernetes.io/component"]
        if role == "api":
            assert pdb["spec"]["minAvailable"] == 1
        else:
            assert pdb["spec"]["maxUnavailable"] == 1


def test_ingress_routes_each_services_public_paths_to_it_without_rewriting(central):
    """Public paths only (test_deploy_ingress.py checks them against the services' routes)."""
    (ingress,) = central.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    backends = {}
    for path in rule["http"]["paths"]:
        service = path["path"].split("/")[1]
        assert path["backend"]["service"]["name"] == f"motcua-{service}-api", path
        assert path["pathType"] == "Prefix"
        backends.setdefault(service, set()).add(path["path"])
    assert set(backends) == set(SERVICES)
    assert all(f"/{s}/api" in backends[s] for s in SERVICES)
    assert not any("rewrite" in key for key in ingress["metadata"].get("annotations", {}))
    assert ingress["spec"]["tls"][0]["secretName"]


def test_identity_reads_its_signing_key_from_its_secret(central):
    spec = central.get("Deployment", "motcua-identity-api")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "jwt-signing-key"]
    assert volume["secret"] == {"secretName": "motcua-identity", "defaultMode": 0o400,
                                "items": [{"key": "jwt-signing.pem", "path": "jwt-signing.pem"}]}
    for container in containers(spec):
        assert {"name": "JWT_PRIVATE_KEY_FILE", "value": "/etc/motcua/jwt/jwt-signing.pem"} in container["env"]
    config = central.get("ConfigMap", "motcua")["data"]
    assert config["IDENTITY_URL"] == "http://motcua-identity-api:80"


def test_each_service_reads_its_own_secret(render):
    release = render(values={"services": {"dossier": {"existingSecret": "dossier-credentials"}}})
    for service in SERVICES:
        secret = "dossier-credentials" if service == "dossier" else f"motcua-{service}"
        for role in ROLES:
            spec = release.get("Deployment", f"motcua-{service}-{role}")["spec"]["template"]["spec"]
            refs = {e["valueFrom"]["secretKeyRef"]["name"] for c in containers(spec) for e in c["env"]
                    if "valueFrom" in e}
            assert refs == {secret}


def test_online_fees_are_off_unless_a_real_provider_is_chosen(render, central):
    """The local payment provider takes no money: a cluster never runs it by default."""
    for role in ROLES:
        spec = central.get("Deployment", f"motcua-dossier-{role}")["spec"]["template"]["spec"]
        for container in containers(spec):
            assert {"name": "PAYMENT_PROVIDER", "value": "none"} in container["env"]
            (secret,) = [e for e in container["env"] if e["name"] == "PAYMENT_CALLBACK_SECRET"]
            assert secret["valueFrom"]["secretKeyRef"]["key"] == "payment-callback-secret"
    spec = central.get("Deployment", "motcua-queue-api")["spec"]["template"]["spec"]
    assert not [e for c in containers(spec) for e in c["env"] if e["name"].startswith("PAYMENT_")]


def test_network_policies_isolate_each_service(central):
    policies = {p["metadata"]["name"]: p for p in central.of_kind("NetworkPolicy")}
    assert set(policies) == {f"motcua-{s}-{r}" for s in SERVICES for r in ROLES}
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        egress_to = [peer for rule in spec["egress"] for peer in rule.get("to", [])]
        selectors = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in egress_to]
        # The operators' pods: RabbitmqCluster's (name of the cluster, part-of rabbitmq) and
        # MongoDBCommunity's (app=<resource>-svc).
        assert {"app.kubernetes.io/name": "motcua-rabbitmq", "app.kubernetes.io/part-of": "rabbitmq"} in selectors, name
        assert {"app": "motcua-mongodb-svc"} in selectors, name
        # Each rule names its peers (central runs the broker and the database in the release), but
        # notify's worker: the SMS gateway lives outside the cluster (networkPolicy.smsGateway narrows it).
        open_rules = [rule for rule in spec["egress"] if not rule.get("to")]
        if name == "motcua-notify-worker":
            assert open_rules == [{"ports": [{"port": 443, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]}]
        else:
            assert open_rules == [], name
    dossier_api = policies["motcua-dossier-api"]["spec"]
    identity_peer = {"motcua.vn/service": "identity", "app.kubernetes.io/component": "api"}
    assert any(identity_peer.items() <= peer.get("podSelector", {}).get("matchLabels", {}).items()
               for rule in dossier_api["egress"] for peer in rule.get("to", []))
    worker_ingress = policies["motcua-dossier-worker"]["spec"]["ingress"]
    assert [rule["ports"] for rule in worker_ingress] == [[{"port": "metrics", "protocol": "TCP"}]]


def test_monitoring_objects_follow_their_flags(render, central):
    defaults = render()
    assert defaults.of_kind("ServiceMonitor") == defaults.of_kind("PrometheusRule") == []
    monitors = {m["metadata"]["name"]: m for m in central.of_kind("ServiceMonitor")}
    # The platform's processes, and the operator's RabbitMQ nodes (node totals and per-queue depths).
    assert set(monitors) == {f"motcua-{s}-{r}" for s in SERVICES for r in ROLES} | {"motcua-rabbitmq"}
    broker = {e["path"]: e for e in monitors["motcua-rabbitmq"]["spec"]["endpoints"]}
    assert broker["/metrics/detailed"]["params"]["family"] == ["queue_coarse_metrics", "queue_consumer_count"]
    assert {"targetLabel": "job", "replacement": "rabbitmq-queues"} in broker["/metrics/detailed"]["relabelings"]
    api = monitors["motcua-queue-api"]["spec"]["endpoints"][0]
    assert (api["port"], api["path"]) == ("http", "/queue/metrics")
    assert {"targetLabel": "job", "replacement": "motcua-api"} in api["relabelings"]
    worker = monitors["motcua-queue-worker"]["spec"]["endpoints"][0]
    assert (worker["port"], worker["path"]) == ("metrics", "/metrics")
    (rule,) = central.of_kind("PrometheusRule")
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}
    records = {r["record"] for group in rule["spec"]["groups"] for r in group["rules"] if "record" in r}
    assert "ward_id:motcua_dossiers_returned_total:on_time_ratio_30d" in records  # the recording rules ship too
    assert {"MotcuaOutboxBacklogGrowing", "MotcuaWardLinkDown", "MotcuaServiceNotReady"} <= alerts
    dashboards = [c for c in central.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == 3
    for config_map in dashboards:
        (body,) = config_map["data"].values()
        assert json.loads(body)["uid"].startswith("motcua-")


def test_several_gunicorn_processes_share_metrics_through_a_multiprocess_directory(render):
    release = render("values-central.yaml", values={"api": {"gunicorn": {"workers": 3}}})
    spec = release.get("Deployment", "motcua-rating-api")["spec"]["template"]["spec"]
    api = spec["containers"][0]
    assert api["args"][api["args"].index("--workers") + 1] == "3"
    assert {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/var/run/prometheus-multiproc"} in api["env"]
    assert {"name": "prometheus-multiproc", "emptyDir": {}} in spec["volumes"]


def test_switched_off_objects_are_not_rendered(render):
    files, values = COMBINATIONS["no network policies, autoscaling, disruption budgets or service accounts"]
    release = render(*files, values=values)
    for kind in ("NetworkPolicy", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount"):
        assert release.of_kind(kind) == [], kind
    for workload, spec in pod_specs(release):
        assert spec["serviceAccountName"] == "default"
        if workload["metadata"]["labels"]["app.kubernetes.io/component"] == "api":
            assert workload["spec"]["replicas"] == 2


def test_image_reference_honours_registry_and_digest(render):
    release = render(values={"image": {"digest": "sha256:" + "b" * 64},
                             "global": {"imageRegistry": "registry.danang.example", "imagePullSecrets": ["city"]}})
    spec = release.get("Deployment", "motcua-queue-relay")["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.danang.example/motcua/motcua@sha256:" + "b" * 64
    assert spec["imagePullSecrets"] == [{"name": "city"}]
    assert render().get("Deployment", "motcua-queue-relay")["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "motcua/motcua:0.1.0"


# --- the edge office ---------------------------------------------------------------------

def test_edge_runs_queue_and_rating_with_a_local_broker(edge):
    assert edge.names("Deployment") == {f"motcua-{s}-{r}" for s in ("queue", "rating") for r in ROLES}
    (broker,) = edge.of_kind("StatefulSet")
    assert broker["metadata"]["name"] == "motcua-broker" and broker["spec"]["replicas"] == 1
    assert edge.get("ConfigMap", "motcua")["data"]["IDENTITY_URL"] == EDGE_REQUIRED["identityUrl"]
    for manifest in edge.manifests:
        assert manifest["metadata"]["labels"]["motcua.vn/ward-id"] == "dn-hai-chau"
    paths = {p["path"] for p in edge.of_kind("Ingress")[0]["spec"]["rules"][0]["http"]["paths"]}
    assert {p.split("/")[1] for p in paths} == {"queue", "rating"} and {"/queue/kiosk", "/rating/rate"} <= paths
    assert edge.of_kind("HorizontalPodAutoscaler") == edge.of_kind("PodDisruptionBudget") == []


def test_edge_services_reach_the_local_broker_and_the_central_identity(edge):
    policy = edge.get("NetworkPolicy", "motcua-queue-api")["spec"]
    broker_rules = [rule for rule in policy["egress"] for peer in rule.get("to", [])
                    if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "broker"]
    assert broker_rules and broker_rules[0]["ports"] == [{"port": 5672, "protocol": "TCP"}]
    assert {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]} in policy["egress"]


def test_edge_broker_loads_the_uplink_definitions_at_start(edge):
    broker = edge.get("StatefulSet", "motcua-broker")
    spec = broker["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert init["command"] == ["/bin/sh", "/opt/motcua/template/render-definitions.sh"]
    assert init["env"] == [{"name": "MOTCUA_UPSTREAM_URI", "valueFrom": {"secretKeyRef": {
        "name": "motcua-broker", "key": "upstream-uri"}}}]
    rabbitmq = spec["containers"][0]
    mounts = {m["mountPath"]: m for m in rabbitmq["volumeMounts"]}
    assert mounts["/opt/motcua/definitions"]["readOnly"] is True
    definitions = [v for v in spec["volumes"] if v["name"] == "definitions"][0]
    assert definitions["emptyDir"]["medium"] == "Memory"  # the rendered address never touches a disk
    config = edge.get("ConfigMap", "motcua-broker")["data"]
    assert "definitions.local.path = /opt/motcua/definitions/definitions.json" in config["rabbitmq.conf"]
    assert "rabbitmq_shovel_prometheus" in config["enabled_plugins"]
    assert broker["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "4Gi"


def test_edge_broker_metrics_carry_the_ward(edge):
    monitor = edge.get("ServiceMonitor", "motcua-broker")
    for endpoint in monitor["spec"]["endpoints"]:
        assert {"targetLabel": "ward_id", "replacement": "dn-hai-chau"} in endpoint["relabelings"]
    detailed = [e for e in monitor["spec"]["endpoints"] if e["path"] == "/metrics/detailed"][0]
    assert "queue_coarse_metrics" in detailed["params"]["family"]

