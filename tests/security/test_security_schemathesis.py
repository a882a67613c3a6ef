"""schemathesis against every service's own OpenAPI document, in process.

Each operation gets valid and invalid requests (schemathesis' positive and negative
generation) from every role of the platform, own ward and another; the answers must
never be a 5xx and must be what the document says: a documented status code, the
documented content type and a body that matches the documented schema."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

SERVICES = ("identity", "dossier", "queue", "notify", "rating")
ROLES = ("anonymous", "citizen", "officer", "ward_admin", "monitor", "admin", "kiosk")
WARDS = ("dn-hai-chau", "dn-lien-chieu")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so that the five services take well under three minutes together.
EXAMPLES_PER_MODE = 15
# An event stream (queue's GET /wards/{ward_id}/board/stream) is read until it has sent this
# many events or the request timeout (10 s) has passed, the time being looked at only when a
# chunk arrives. The board sends its event at once and then only a heartbeat every 15 s,
# so with schemathesis' default of 20 events every accepted stream (a generated ward that
# exists, the document's example among them) held its call ~15 s: up to four of them made
# queue's run take 10-68 s, and fewer examples would not have bounded it. The first event
# is the one the document describes; the stream is closed after it.
STREAM_EVENTS = 1


@schemathesis.serializer("application/pdf")
def _pdf(ctx, value):
    """POST /results/verify takes the PDF's bytes; schemathesis makes them up."""
    return value if isinstance(value, bytes) else str(value).encode()


# Answers the shared plumbing (motcua_common.http.json_body, idempotent) gives on any JSON
# route before the route's own code runs; documented once in docs/services.md "Errors"
# rather than on every operation.
PLATFORM_WIDE = {(400, "invalid_json"), (400, "invalid_idempotency_key"), (413, "payload_too_large"),
                 (415, "unsupported_media_type")}


def _failure_lines(exc: BaseException, response) -> list[str]:
    lines = [str(e).strip().splitlines()[0] for e in getattr(exc, "exceptions", [exc])]
    try:
        code = response.json().get("code")
    except Exception:  # not a problem document
        code = None
    if (response.status_code, code) in PLATFORM_WIDE:
        lines = [line for line in lines if line != "Undocumented status code"]
    return lines


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented_and_never_5xx(service, apps, as_role):
    schema = schemathesis.openapi.from_wsgi(f"/{service}/api/v1/openapi.json", apps[service])
    schema.config.max_stream_events = STREAM_EVENTS
    failures: dict[tuple, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4, f"{service}: the OpenAPI document lists almost nothing"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(ROLES),
                   ward=st.sampled_from(WARDS))
            def probe(case, role, ward):
                # The operation's own base (a path item outside /<svc>/api/v1, e.g. /<svc>/healthz,
                # names its server): schemathesis' WSGI transport otherwise joins every path to
                # the document's server.
                response = case.call(base_url=operation.base_url,
                                     headers={**(case.headers or {}), **as_role(role, ward)})
                try:
                    case.validate_response(response, checks=CHECKS)
                except BaseException as exc:  # schemathesis' FailureGroup is an exception group
                    for line in _failure_lines(exc, response):
                        key = (operation.label, response.status_code, line)
                        failures.setdefault(key, f"{operation.label} as {role}/{ward} ({mode.value}) -> "
                                                 f"{response.status_code}: {line}\n    {response.text[:300]}")

            try:
                probe()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
    assert not failures, "\n".join(failures.values())
