"""The five OpenAPI documents follow one convention, so that a reader (a person on /api-docs,
a client generator, the security matrix, schemathesis) finds the same shape in each:

- servers: [{url: /<svc>/api/v1}], every path relative to it; a path outside the API
  (/<svc>/healthz, /identity/.well-known/jwks.json) names its own server /<svc> on its path item;
- every operation has an operationId (camelCase, unique in its document) and tags, each
  tag declared at the top with a description;
- components/schemas/Problem is the same schema in all five (RFC 9457 + code + errors)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("identity", "dossier", "queue", "notify", "rating")
METHODS = ("get", "put", "post", "delete", "patch")
CAMEL = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")


def _doc(service: str) -> dict:
    return yaml.safe_load((ROOT / "services" / service / "openapi.yaml").read_text(encoding="utf-8"))


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, item, method, item[method]


@pytest.mark.parametrize("service", SERVICES)
def test_one_servers_convention(service):
    doc = _doc(service)
    assert doc["openapi"].startswith("3.1")
    assert [s["url"] for s in doc["servers"]] == [f"/{service}/api/v1"]
    for path, item in doc["paths"].items():
        assert path.startswith("/") and not path.startswith(f"/{service}/"), (
            f"{path}: paths are relative to the server /{service}/api/v1")
        if "servers" in item:
            assert item["servers"] == [{"url": f"/{service}"}], f"{path}: a path outside the API names /{service}"
            assert not path.startswith("/api/v1/")


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_a_unique_camel_case_operation_id_and_declared_tags(service):
    doc = _doc(service)
    declared = {t["name"]: t for t in doc.get("tags", [])}
    assert all(t.get("description") for t in declared.values()), "describe every tag (the /api-docs headings)"
    seen: dict[str, str] = {}
    used = set()
    for path, _, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        op_id = op.get("operationId")
        assert op_id, f"{where}: no operationId"
        assert CAMEL.match(op_id), f"{where}: operationId {op_id!r} is not camelCase"
        assert op_id not in seen, f"{where}: operationId {op_id!r} also on {seen[op_id]}"
        seen[op_id] = where
        assert op.get("tags"), f"{where}: no tags"
        assert set(op["tags"]) <= set(declared), f"{where}: tags {op['tags']} not declared at the top"
        assert op.get("summary"), f"{where}: no summary"
        assert op.get("responses"), f"{where}: no responses"
        used |= set(op["tags"])
    assert set(declared) == used, f"tags declared but never used: {set(declared) - used}"


def test_one_problem_schema_everywhere():
    problems = {service: _doc(service)["components"]["schemas"]["Problem"] for service in SERVICES}
    first = problems["identity"]
    assert first["required"] == ["type", "title", "status", "code"]
    assert set(first["properties"]) == {"type", "title", "status", "code", "detail", "instance", "errors"}
    assert set(first["properties"]["errors"]["items"]["properties"]) == {"field", "message"}
    for service, problem in problems.items():
        assert problem == first, f"{service}: components/schemas/Problem differs from identity's"


def test_the_problem_schema_is_what_the_platform_answers():
    """motcua_common.problems.Problem: the body every refusal has."""
    from motcua_common.problems import Problem

    body = Problem(422, "validation_failed", "Dữ liệu không hợp lệ", "x", errors=[{"field": "a", "message": "b"}]).body()
    schema = _doc("queue")["components"]["schemas"]["Problem"]
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
