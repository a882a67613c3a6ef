"""The backing services from their operators: the chart's RabbitmqCluster, MongoDBCommunity and
PerconaServerMongoDB validated against those operators' CRD schemas (tests/deploy/crds/README.md:
the two MongoDB ones are the operators' own files, RabbitMQ's a hand-written subset), what each profile asks of them, the services wired to them, and the backing
services left outside (external Secrets). Also the `helm test` pods and the backup CronJob."""
from __future__ import annotations

import copy
import functools
import gzip
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

CRDS = Path(__file__).resolve().parent / "crds"
SERVICES = ("identity", "dossier", "queue", "notify", "rating")
EDGE_REQUIRED = {"ward": {"id": "dn-hai-chau"}, "identityUrl": "https://motcua.danang.example"}


def strict(schema):
    """The CRD's schema as JSON Schema, refusing unknown fields where the API server would
    prune them (every object schema with properties and no x-kubernetes-preserve-unknown-fields)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node \
                    and not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_crd(path: Path) -> dict:
    if path.name.endswith(".json.gz"):
        return json.loads(gzip.decompress(path.read_bytes()))
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def crd_validator(kind: str):
    for path in sorted(CRDS.glob("*.yaml")) + sorted(CRDS.glob("*.json.gz")):
        crd = load_crd(path)
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = crd["spec"]["versions"]
            schema = strict(version["schema"]["openAPIV3Schema"])
            jsonschema.Draft7Validator.check_schema(schema)
            return jsonschema.Draft7Validator(schema)
    raise AssertionError(f"no CRD for {kind} in {CRDS}")


def problems(kind: str, manifest: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(kind).iter_errors(manifest)]


RENDERINGS = {
    "central": (("values-central.yaml",), {}),
    "edge": (("values-edge.yaml",), EDGE_REQUIRED),
    "central, TLS, member settings, backup": (
        ("values-central.yaml",),
        {"backup": {"enabled": True},
         "rabbitmq": {"tls": {"secretName": "rabbitmq-tls", "caSecretName": "city-ca", "disableNonTLSListeners": True},
                      "service": {"type": "LoadBalancer", "annotations": {"lb.example/internal": "true"}},
                      "terminationGracePeriodSeconds": 3600, "persistence": {"storageClassName": "fast"}},
         "mongodb": {"tls": {"enabled": True, "certificateKeySecretName": "mongodb-tls", "caConfigMapName": "city-ca"},
                     "memberConfig": [{"votes": 1, "priority": "2"}] * 3,
                     "persistence": {"storageClassName": "fast"}}},
    ),
    "standby site": (("values-central.yaml", "values-standby.yaml"), {"identityUrl": "https://motcua.danang.example"}),
    "central with the standby's members": (("values-central.yaml", "values-central-standby-members.yaml"), {}),
    "standby promoted": (("values-central.yaml", "values-standby.yaml", "values-standby-promoted.yaml"),
                         {"identityUrl": "https://motcua.danang.example"}),
}
MONGODB_KINDS = ("MongoDBCommunity", "PerconaServerMongoDB")


@pytest.fixture(scope="module", params=list(RENDERINGS), ids=list(RENDERINGS))
def release(request, render):
    files, values = RENDERINGS[request.param]
    return render(*files, values=values)


@pytest.fixture(scope="module")
def central(render):
    return render("values-central.yaml")


def test_the_custom_resources_are_valid_against_the_operators_schemas(release):
    checked = 0
    for manifest in release.of_kind("RabbitmqCluster") + release.of_kind("MongoDBCommunity") \
            + release.of_kind("PerconaServerMongoDB"):
        assert problems(manifest["kind"], manifest) == [], manifest["metadata"]["name"]
        if manifest["kind"] == "PerconaServerMongoDB":
            assert percona_operator_refusals(manifest) == []
        checked += 1
    assert checked >= 1
    # Exactly one replica set per release, from one operator.
    assert sum(len(release.of_kind(kind)) for kind in MONGODB_KINDS) == 1


@pytest.mark.parametrize("kind, path, value, complaint", [
    ("RabbitmqCluster", ("spec", "rabbitmq", "additionalPlugin"), ["rabbitmq_shovel"], "Additional"),
    ("RabbitmqCluster", ("spec", "rabbitmq", "additionalPlugins"), ["rabbitmq-shovel"], "does not match"),
    ("RabbitmqCluster", ("spec", "service", "type"), "External", "is not one of"),
    ("RabbitmqCluster", ("spec", "replicas"), -1, "minimum"),
    ("MongoDBCommunity", ("spec", "type"), "Sharded", "is not one of"),
    ("MongoDBCommunity", ("spec", "security", "authentication", "modes"), ["LDAP"], "is not one of"),
    ("MongoDBCommunity", ("spec", "members"), "three", "is not of type"),
    ("MongoDBCommunity", ("spec", "statefulset"), {"spec": {}}, "Additional"),
])
def test_the_schemas_refuse_what_the_operators_would_refuse(central, kind, path, value, complaint):
    """The validation above can fail: a typo or a wrong value in the chart's resource is caught."""
    (manifest,) = copy.deepcopy(central.of_kind(kind))
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = problems(kind, manifest)
    assert found and any(complaint in p for p in found), found


def test_central_broker_is_a_three_node_cluster_with_the_plugins_the_edges_and_the_standby_need(central):
    (cluster,) = central.of_kind("RabbitmqCluster")
    spec = cluster["spec"]
    assert cluster["metadata"]["name"] == "motcua-rabbitmq" and spec["replicas"] == 3
    assert spec["image"].startswith("rabbitmq:4.") and "bitnami" not in spec["image"]
    assert {"rabbitmq_shovel", "rabbitmq_shovel_prometheus", "rabbitmq_federation",
            "rabbitmq_federation_management"} <= set(spec["rabbitmq"]["additionalPlugins"])
    assert "default_queue_type = quorum" in spec["rabbitmq"]["additionalConfig"]
    (pdb,) = [p for p in central.of_kind("PodDisruptionBudget") if p["metadata"]["name"] == "motcua-rabbitmq"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {
        "app.kubernetes.io/name": "motcua-rabbitmq", "app.kubernetes.io/part-of": "rabbitmq"}}}


def test_central_database_is_a_three_member_replica_set_with_a_user_per_service(central):
    (mdb,) = central.of_kind("MongoDBCommunity")
    spec = mdb["spec"]
    assert (spec["type"], spec["members"]) == ("ReplicaSet", 3)
    assert spec["security"]["authentication"]["modes"] == ["SCRAM"]
    users = {u["name"]: u for u in spec["users"]}
    assert set(users) == set(SERVICES)  # no backup user unless backup.enabled
    for name, user in users.items():
        # Each service owns its own database and nothing else.
        assert user["roles"] == [{"name": "readWrite", "db": f"motcua_{name}"}]
        assert user["passwordSecretRef"] == {"name": "motcua-mongodb-users", "key": name}
        assert user["connectionStringSecretName"] == f"motcua-mongodb-admin-{name}"
    images = yaml.safe_dump(central.manifests)
    assert "bitnami" not in images


def test_services_read_their_database_url_from_the_operators_secret(central, render):
    for service in SERVICES:
        for role in ("api", "worker", "relay"):
            spec = central.get("Deployment", f"motcua-{service}-{role}")["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                (url,) = [e for e in container["env"] if e["name"] == "MONGO_URL"]
                assert url["valueFrom"]["secretKeyRef"] == {"name": f"motcua-mongodb-admin-{service}",
                                                            "key": "connectionString.standard"}
                (amqp,) = [e for e in container["env"] if e["name"] == "AMQP_URL"]
                assert amqp["valueFrom"]["secretKeyRef"] == {"name": f"motcua-{service}", "key": "amqp-url"}
    # Asked not to, they read the service's own Secret, as with an external database.
    release = render("values-central.yaml", values={"mongodb": {"useOperatorConnectionStrings": False}})
    container = release.get("Deployment", "motcua-queue-api")["spec"]["template"]["spec"]["containers"][0]
    (url,) = [e for e in container["env"] if e["name"] == "MONGO_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "motcua-queue", "key": "mongo-url"}


def test_external_backing_services_come_from_the_services_secrets(render):
    release = render()  # the defaults: broker and database outside the release
    assert release.of_kind("RabbitmqCluster") == release.of_kind("MongoDBCommunity") == []
    for service in SERVICES:
        container = release.get("Deployment", f"motcua-{service}-worker")["spec"]["template"]["spec"]["containers"][0]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] in ("MONGO_URL", "AMQP_URL")}
        assert refs == {"MONGO_URL": {"name": f"motcua-{service}", "key": "mongo-url"},
                        "AMQP_URL": {"name": f"motcua-{service}", "key": "amqp-url"}}


def test_the_edge_office_has_a_one_member_replica_set_for_its_two_services(render):
    release = render("values-edge.yaml", values=EDGE_REQUIRED)
    (mdb,) = release.of_kind("MongoDBCommunity")
    assert mdb["spec"]["members"] == 1
    assert [u["name"] for u in mdb["spec"]["users"]] == ["queue", "rating"]
    assert release.of_kind("RabbitmqCluster") == []  # its own broker node (localBroker)
    assert "motcua-mongodb" not in release.names("PodDisruptionBudget")  # a single member is never kept through a drain


def test_the_standby_site_waits_with_its_backing_services_only(render):
    release = render("values-central.yaml", "values-standby.yaml", values={"identityUrl": "https://motcua.danang.example"})
    assert release.of_kind("Deployment") == release.of_kind("Ingress") == release.of_kind("Pod") == []
    (cluster,) = release.of_kind("RabbitmqCluster")
    assert "rabbitmq_federation" in cluster["spec"]["rabbitmq"]["additionalPlugins"]
    assert release.of_kind("MongoDBCommunity") == []
    (psmdb,) = release.of_kind("PerconaServerMongoDB")
    (replset,) = psmdb["spec"]["replsets"]
    assert replset["size"] == 3
    # Its members wait for the centre's operator to add them to the central replica set.
    assert psmdb["spec"]["unmanaged"] is True and "users" not in psmdb["spec"]
    # With a centre on the Community operator, an empty replica set for a restore instead.
    empty = render("values-central.yaml", "values-standby.yaml",
                   values={"identityUrl": "https://motcua.danang.example",
                           "mongodb": {"operator": "community", "percona": {"unmanaged": False}}})
    (mdb,) = empty.of_kind("MongoDBCommunity")
    assert mdb["spec"]["members"] == 3
    assert [u["name"] for u in mdb["spec"]["users"]] == list(SERVICES)  # ready for the services to come
    assert problems("MongoDBCommunity", mdb) == []


def percona_operator_refusals(cr: dict) -> list[str]:
    """What the Percona operator refuses beyond its CRD's schema, when it sets a resource's
    defaults (pkg/apis/psmdb/v1/psmdb_defaults.go, v1.22.0): SmartUpdate on an unmanaged cluster;
    an external member's votes outside 0..1, priority outside 0..1000, or a priority without a vote."""
    found = []
    spec = cr["spec"]
    if spec.get("unmanaged") and spec.get("updateStrategy", "SmartUpdate") == "SmartUpdate":
        found.append("SmartUpdate is not allowed on unmanaged clusters")
    for replset in spec["replsets"]:
        for node in replset.get("externalNodes", []):
            if not 0 <= node["votes"] <= 1:
                found.append(f"invalid votes for {node['host']}")
            if not 0 <= node["priority"] <= 1000:
                found.append(f"invalid priority for {node['host']}")
            if node["votes"] == 0 and node["priority"] != 0:
                found.append(f"non-voting member {node['host']} must have priority 0")
    return found


@pytest.fixture(scope="module")
def with_standby(render):
    return render("values-central.yaml", "values-central-standby-members.yaml")


@pytest.fixture(scope="module")
def standby(render):
    return render("values-central.yaml", "values-standby.yaml", values={"identityUrl": "https://motcua.danang.example"})


def test_the_centre_holds_the_standby_sites_members_without_vote_or_priority(with_standby, standby):
    assert with_standby.of_kind("MongoDBCommunity") == []
    (centre,) = with_standby.of_kind("PerconaServerMongoDB")
    (wait,) = standby.of_kind("PerconaServerMongoDB")
    (replset,) = centre["spec"]["replsets"]
    assert replset["size"] == 3 and centre["spec"]["unmanaged"] is False
    assert centre["spec"]["updateStrategy"] == "SmartUpdate"
    external = replset["externalNodes"]
    assert len(external) == 3 and len({n["host"] for n in external}) == 3
    assert all(n["votes"] == 0 and n["priority"] == 0 and n["port"] == 27017 for n in external)
    assert all(n["host"].startswith("motcua-mongodb-rs0-") for n in external)  # the standby's exposed members
    # Members of one replica set across two clusters: each member exposed, named by that address.
    for cr in (centre, wait):
        (rs,) = cr["spec"]["replsets"]
        assert rs["expose"]["enabled"] is True and cr["spec"]["clusterServiceDNSMode"] == "External"
    # The same replica set, resource name and shared Secrets at both sites.
    (wait_rs,) = wait["spec"]["replsets"]
    assert (wait["metadata"]["name"], wait_rs["name"], wait_rs["size"]) == (centre["metadata"]["name"], "rs0", 3)
    assert wait["spec"]["secrets"] == centre["spec"]["secrets"] == {
        "users": "motcua-mongodb-system-users", "ssl": "motcua-mongodb-ssl", "sslInternal": "motcua-mongodb-ssl-internal"}
    # The standby's operator makes its members but leaves the replica set and users to the centre.
    assert wait["spec"]["unmanaged"] is True and wait["spec"]["updateStrategy"] == "OnDelete"
    assert "users" not in wait["spec"] and "externalNodes" not in wait_rs
    users = {u["name"]: u for u in centre["spec"]["users"]}
    assert set(users) == set(SERVICES)
    for name, user in users.items():
        assert user["roles"] == [{"name": "readWrite", "db": f"motcua_{name}"}]
        assert user["passwordSecretRef"] == {"name": "motcua-mongodb-users", "key": name}
    assert centre["spec"]["backup"]["enabled"] is False  # the platform's own backups
    # This operator writes no connection strings: the services read their own Secrets' mongo-url,
    # and their NetworkPolicies reach the Percona pods.
    api = with_standby.get("Deployment", "motcua-queue-api")["spec"]["template"]["spec"]["containers"][0]
    (url,) = [e for e in api["env"] if e["name"] == "MONGO_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "motcua-queue", "key": "mongo-url"}
    egress = with_standby.get("NetworkPolicy", "motcua-queue-api")["spec"]["egress"]
    selectors = [peer["podSelector"]["matchLabels"] for rule in egress for peer in rule.get("to", []) if "podSelector" in peer]
    assert {"app.kubernetes.io/instance": "motcua-mongodb", "app.kubernetes.io/name": "percona-server-mongodb",
            "app.kubernetes.io/component": "mongod"} in selectors


def test_a_promoted_standby_runs_the_platform_on_its_own_replica_set(render):
    release = render("values-central.yaml", "values-standby.yaml", "values-standby-promoted.yaml",
                     values={"identityUrl": "https://motcua.danang.example"})
    (cr,) = release.of_kind("PerconaServerMongoDB")
    assert cr["spec"]["unmanaged"] is False and cr["spec"]["updateStrategy"] == "SmartUpdate"
    assert "externalNodes" not in cr["spec"]["replsets"][0]
    assert {u["name"] for u in cr["spec"]["users"]} == set(SERVICES) | {"backup"}
    assert {f"motcua-{s}-{r}" for s in SERVICES for r in ("api", "worker", "relay")} <= release.names("Deployment")
    assert release.of_kind("Ingress") and release.of_kind("CronJob")
    (job,) = release.of_kind("CronJob")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    (url,) = [e for e in container["env"] if e["name"] == "MONGO_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "motcua-backup", "key": "mongo-url"}


@pytest.mark.parametrize("path, value, complaint", [
    (("spec", "replsets", 0, "externalNodes", 0), {"host": "b.example", "priority": 0}, "'votes' is a required property"),
    (("spec", "replsets", 0, "externalNodes", 0, "votes"), "0", "is not of type"),
    (("spec", "replsets", 0, "exposed"), {"enabled": True}, "Additional"),
    (("spec", "replsets", 0, "size"), "three", "is not of type"),
    (("spec", "unmanage"), True, "Additional"),
])
def test_the_percona_schema_refuses_what_its_operator_would_refuse(with_standby, path, value, complaint):
    (manifest,) = copy.deepcopy(with_standby.of_kind("PerconaServerMongoDB"))
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = problems("PerconaServerMongoDB", manifest)
    assert found and any(complaint in p for p in found), found


def test_the_operators_own_checks_are_kept(with_standby, render):
    (cr,) = copy.deepcopy(with_standby.of_kind("PerconaServerMongoDB"))
    cr["spec"]["replsets"][0]["externalNodes"][0]["priority"] = 1
    cr["spec"]["unmanaged"] = True
    assert len(percona_operator_refusals(cr)) == 2
    # The chart refuses a standby member given a priority without a vote (schema and template alike).
    bad = {"mongodb": {"percona": {"externalNodes": [{"host": "b.example", "votes": 0, "priority": 1}]}}}
    with pytest.raises(Exception, match="priority"):
        render("values-central.yaml", "values-central-standby-members.yaml", values=bad)


# --- helm test --------------------------------------------------------------------------------

def test_helm_test_asks_every_enabled_api_for_readyz(central, render):
    pods = {p["metadata"]["labels"]["motcua.vn/service"]: p for p in central.of_kind("Pod")}
    assert set(pods) == set(SERVICES)
    policies = {p["metadata"]["name"]: p for p in central.of_kind("NetworkPolicy")}
    for service, pod in pods.items():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        (container,) = pod["spec"]["containers"]
        assert container["command"][:2] == ["python", "-c"]
        assert container["command"][-1] == f"http://motcua-{service}-api:80/{service}/readyz"
        assert "status == 200" in container["command"][2]
        compile(container["command"][2], "readyz", "exec")  # the script is valid Python
        # The API's NetworkPolicy lets the test pod in (the release's pods are allowed).
        allowed = [peer["podSelector"]["matchLabels"] for rule in policies[f"motcua-{service}-api"]["spec"]["ingress"]
                   for peer in rule["from"] if "podSelector" in peer and "namespaceSelector" not in peer]
        assert any(sel.items() <= pod["metadata"]["labels"].items() for sel in allowed), service
    edge = render("values-edge.yaml", values=EDGE_REQUIRED)
    assert {p["metadata"]["labels"]["motcua.vn/service"] for p in edge.of_kind("Pod")} == {"queue", "rating"}
    assert render(values={"tests": {"enabled": False}}).of_kind("Pod") == []


# --- the backup CronJob -------------------------------------------------------------------------

def test_backup_is_off_by_default(central):
    assert central.of_kind("CronJob") == []
    assert "backup" not in {u["name"] for u in central.of_kind("MongoDBCommunity")[0]["spec"]["users"]}


def test_backup_writes_a_whole_folder_per_run_into_its_claim(render, tmp_path):
    release = render("values-central.yaml", values={"backup": {"enabled": True}})
    (job,) = release.of_kind("CronJob")
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] == "Asia/Ho_Chi_Minh"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    script = container["command"][2]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert 'motcua backup "/backup/.incomplete-$stamp"' in script
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claim in release.names("PersistentVolumeClaim")
    assert release.get("PersistentVolumeClaim", claim)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (url,) = [e for e in container["env"] if e["name"] == "MONGO_URL"]
    assert url["valueFrom"]["secretKeyRef"]["name"] == "motcua-mongodb-admin-backup"
    users = {u["name"]: u for u in release.of_kind("MongoDBCommunity")[0]["spec"]["users"]}
    assert users["backup"]["roles"] == [{"name": "backup", "db": "admin"}]
    policy = release.get("NetworkPolicy", "motcua-backup")["spec"]
    assert policy["ingress"] == [] and len(policy["egress"]) == 2  # DNS and the database
    # The script itself, run by a real shell with a stand-in `motcua` and an old backup to prune.
    sh = __import__("shutil").which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    import os
    import subprocess
    backup_root = tmp_path / "backup"
    (backup_root / "2020-01-01T000000Z").mkdir(parents=True)
    os.utime(backup_root / "2020-01-01T000000Z", (0, 0))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "motcua").write_text('#!/bin/sh\nmkdir -p "$2" && echo "{}" > "$2/manifest.json"\n')
    (bin_dir / "motcua").chmod(0o755)
    result = subprocess.run([sh, "-c", script.replace("/backup", str(backup_root))], capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "KEEP_DAYS": "14"}, timeout=20)
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in backup_root.iterdir())
    assert len(kept) == 1 and not kept[0].startswith(".incomplete") and (backup_root / kept[0] / "manifest.json").exists()


def test_a_failed_backup_is_never_taken_for_a_whole_one(render, tmp_path):
    import os
    import shutil
    import subprocess
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    release = render("values-central.yaml", values={"backup": {"enabled": True}})
    script = release.of_kind("CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    backup_root = tmp_path / "backup"
    backup_root.mkdir()
    (backup_root / "2020-01-01T000000Z").mkdir()
    os.utime(backup_root / "2020-01-01T000000Z", (0, 0))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "motcua").write_text('#!/bin/sh\nmkdir -p "$2"; echo "database unreachable" >&2; exit 1\n')
    (bin_dir / "motcua").chmod(0o755)
    result = subprocess.run([sh, "-c", script.replace("/backup", str(backup_root))], capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "KEEP_DAYS": "14"}, timeout=20)
    assert result.returncode != 0
    names = {p.name for p in backup_root.iterdir()}
    # The old backup is not pruned after a failure, and the partial one keeps its prefix.
    assert "2020-01-01T000000Z" in names and all(n.startswith(".incomplete") for n in names - {"2020-01-01T000000Z"})


def test_trusted_proxies_follow_the_ingress(render, central):
    assert central.get("ConfigMap", "motcua")["data"]["MOTCUA_TRUSTED_PROXIES"] == "1"
    assert render().get("ConfigMap", "motcua")["data"]["MOTCUA_TRUSTED_PROXIES"] == "0"  # no Ingress
    two = render("values-central.yaml", values={"config": {"trustedProxies": 2}})
    assert two.get("ConfigMap", "motcua")["data"]["MOTCUA_TRUSTED_PROXIES"] == "2"
    none = render("values-central.yaml", values={"config": {"trustedProxies": 0}})
    assert none.get("ConfigMap", "motcua")["data"]["MOTCUA_TRUSTED_PROXIES"] == "0"
