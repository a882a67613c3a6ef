"""The authorization matrix: every endpoint of every service's OpenAPI document, asked by
every role (and nobody) of the endpoint's own ward and of another ward.

The endpoints come from the documents themselves and must all appear in EXPECTED: a new
endpoint without a row here fails the test, so nobody can forget to decide who may call it.

Reading a row: a rule says which (role, own ward?) may pass authorization. Allowed callers
must not get 401/403 (their request may still be refused as invalid: the bodies here are
minimal). Refused callers: nobody → 401; a role the endpoint never serves → 401/403; staff
of another ward → never a 2xx (403, or 404/422 where the endpoint checks the body or looks
the ward up first and so reveals nothing). Endpoints about one record (a dossier, a ticket,
a broadcast) are asked about a record that does not exist: there the ward check cannot be
reached, so only the role check is asserted and 404 counts as refused; the per-ward checks
on real records are in each service's own tests."""
from __future__ import annotations

import pytest
import yaml

WARD, OTHER = "dn-hai-chau", "dn-lien-chieu"
ROLES = ("anonymous", "citizen", "officer", "ward_admin", "leader", "monitor", "admin", "kiosk")
WARD_STAFF = ("officer", "ward_admin", "leader")
MISSING_ID = "00000000-0000-4000-8000-000000000000"


# ---------------------------------------------------------------- rules: (role, own ward?) -> allowed
def anyone(role, own):
    return True


def nobody_with_a_bearer(role, own):
    """Gateways and providers authenticate with a shared secret, never with a user token."""
    return False


def any_login(role, own):
    return role != "anonymous"


def admin(role, own):
    return role == "admin"


def ward_staff(role, own):
    return role == "admin" or (role in WARD_STAFF and own)


def ward_admin(role, own):
    return role == "admin" or (role == "ward_admin" and own)


def ward_watchers(role, own):
    return role == "monitor" or ward_staff(role, own)


def ward_staff_or_monitor_anywhere(role, own):
    return role in ("monitor", "admin") or (role in WARD_STAFF and own)


def ticket_issuers(role, own):
    return role == "admin" or (role in WARD_STAFF + ("kiosk",) and own)


def citizen_or_ward_staff(role, own):
    return role == "citizen" or ward_staff(role, own)


def ward_admin_or_admin_any_ward(role, own):
    return role == "admin" or (role == "ward_admin" and own)


def staff_roles(role, own):
    """Endpoints about one record: the role check only (see the module docstring)."""
    return role in WARD_STAFF + ("admin",)


def record_owner_or_staff(role, own):
    return role in ("citizen",) + WARD_STAFF + ("admin",)


def notify_staff(role, own):
    return role in WARD_STAFF + ("admin", "monitor") and (own or role in ("admin", "monitor"))


def ward_admins_anywhere(role, own):
    """About one officer: a ward's admin (their own ward's officers: the record decides) or the admin."""
    return role in ("ward_admin", "admin")


def monitor_or_admin(role, own):
    return role in ("monitor", "admin")


def web_or_counter(role, own):
    """Citizens register themselves on the web (no token) or at a counter (staff)."""
    return role in ("anonymous",) + WARD_STAFF + ("admin",)


# Problem codes that mean "not you": anything else is the endpoint itself answering.
REFUSALS = {"unauthorized", "invalid_token", "token_expired", "forbidden", "password_change_required"}
RESOURCE = {"dossier_id", "ticket_id", "broadcast_id", "citizen_id", "officer_id"}

EXPECTED = {
    # identity
    "GET /identity/.well-known/jwks.json": anyone,
    "GET /identity/api/v1/wards": anyone,
    "POST /identity/api/v1/wards": admin,
    "POST /identity/api/v1/citizens": web_or_counter,
    "POST /identity/api/v1/citizens/{citizen_id}/temporary-password": staff_roles,
    "POST /identity/api/v1/sms/inbound": nobody_with_a_bearer,
    "PUT /identity/api/v1/wards/{ward_id}/population": admin,
    "POST /identity/api/v1/sessions": anyone,
    "PUT /identity/api/v1/me/password": any_login,
    "GET /identity/api/v1/me/export": lambda role, own: role == "citizen",
    "POST /identity/api/v1/officers": ward_admin_or_admin_any_ward,
    "GET /identity/api/v1/wards/{ward_id}/coverage": ward_watchers,
    "GET /identity/api/v1/administrative-units": anyone,
    "GET /identity/api/v1/wards/{ward_id}/officers": ward_admin,
    "PATCH /identity/api/v1/officers/{officer_id}": ward_admins_anywhere,
    "POST /identity/api/v1/officers/{officer_id}/password-reset": ward_admins_anywhere,
    "PATCH /identity/api/v1/citizens/{citizen_id}": staff_roles,
    "PUT /identity/api/v1/citizens/by-national-id": lambda role, own: role in WARD_STAFF + ("admin",),
    "POST /identity/api/v1/citizens/by-national-id/release": lambda role, own: role in WARD_STAFF + ("admin",),
    "POST /identity/api/v1/citizens/{citizen_id}/phone-verification": anyone,        # the code is the proof
    "POST /identity/api/v1/citizens/{citizen_id}/phone-verification/code": anyone,
    "GET /identity/healthz": anyone,
    "GET /identity/readyz": anyone,
    "GET /identity/metrics": anyone,
    # dossier
    "POST /dossier/api/v1/procedures": admin,
    "GET /dossier/api/v1/procedures": anyone,
    "GET /dossier/api/v1/procedures/{code}": anyone,
    "PUT /dossier/api/v1/procedures/{code}": admin,
    "DELETE /dossier/api/v1/procedures/{code}": admin,
    "GET /dossier/api/v1/procedures/{code}/revisions": admin,
    "GET /dossier/api/v1/catalog": anyone,
    "GET /dossier/api/v1/calendar/due-date": anyone,
    "GET /dossier/api/v1/calendar/exceptions": anyone,
    "PUT /dossier/api/v1/calendar/exceptions/{day}": admin,
    "DELETE /dossier/api/v1/calendar/exceptions/{day}": admin,
    "POST /dossier/api/v1/dossiers": citizen_or_ward_staff,
    "GET /dossier/api/v1/dossiers": citizen_or_ward_staff,
    "GET /dossier/api/v1/dossiers/{dossier_id}": record_owner_or_staff,
    "POST /dossier/api/v1/dossiers/{dossier_id}/actions": staff_roles,
    "POST /dossier/api/v1/dossiers/{dossier_id}/assign": staff_roles,
    "GET /dossier/api/v1/dossiers/{dossier_id}/result": record_owner_or_staff,
    "POST /dossier/api/v1/dossiers/{dossier_id}/attachments": record_owner_or_staff,
    "GET /dossier/api/v1/dossiers/{dossier_id}/attachments": record_owner_or_staff,
    "GET /dossier/api/v1/dossiers/{dossier_id}/attachments/{attachment_id}": record_owner_or_staff,
    "POST /dossier/api/v1/dossiers/{dossier_id}/payments": record_owner_or_staff,
    "GET /dossier/api/v1/dossiers/{dossier_id}/payments": record_owner_or_staff,
    "POST /dossier/api/v1/payments/callback": nobody_with_a_bearer,
    "POST /dossier/api/v1/results/verify": anyone,
    "GET /dossier/api/v1/lookup": anyone,
    "GET /dossier/api/v1/wards/{ward_id}/stats": ward_watchers,
    "GET /dossier/api/v1/wards/{ward_id}/procedures": anyone,
    "GET /dossier/api/v1/public/scorecards": anyone,
    "GET /dossier/api/v1/wards/{ward_id}/exports/{kind}.{fmt}": ward_watchers,
    "PUT /dossier/api/v1/wards/{ward_id}/procedures/{code}": ward_admin,
    # queue
    "GET /queue/api/v1/wards/{ward_id}/services": anyone,
    "GET /queue/api/v1/wards/{ward_id}/counters": anyone,
    "PUT /queue/api/v1/wards/{ward_id}/services/{code}": ward_admin,
    "DELETE /queue/api/v1/wards/{ward_id}/services/{code}": ward_admin,
    "PUT /queue/api/v1/wards/{ward_id}/counters/{counter_id}": ward_admin,
    "DELETE /queue/api/v1/wards/{ward_id}/counters/{counter_id}": ward_admin,
    "GET /queue/api/v1/wards/{ward_id}/opening-hours": anyone,
    "PUT /queue/api/v1/wards/{ward_id}/opening-hours": ward_admin,
    "GET /queue/api/v1/wards/{ward_id}/devices": ward_watchers,
    "GET /queue/api/v1/activity": monitor_or_admin,
    "GET /queue/api/v1/wards/{ward_id}/activity": ward_watchers,
    # Boards and rating screens are public pages: their heartbeat is anonymous (limited per
    # address and ward, capped per ward); a kiosk's or a counter's carries its credential.
    "POST /queue/api/v1/wards/{ward_id}/devices/heartbeat": anyone,
    "POST /queue/api/v1/wards/{ward_id}/tickets": ticket_issuers,
    "POST /queue/api/v1/wards/{ward_id}/counters/{counter_id}/call-next": ward_staff,
    "POST /queue/api/v1/wards/{ward_id}/counters/{counter_id}/session": ward_staff,
    "DELETE /queue/api/v1/wards/{ward_id}/counters/{counter_id}/session": ward_staff,
    "POST /queue/api/v1/tickets/{ticket_id}/actions": staff_roles,
    "GET /queue/api/v1/wards/{ward_id}/board": anyone,
    "GET /queue/api/v1/wards/{ward_id}/board/stream": anyone,
    "GET /queue/api/v1/wards/{ward_id}/counters/{counter_id}/current": ward_staff,
    "GET /queue/api/v1/tickets/{ticket_id}": anyone,  # the ticket id is the capability
    "POST /queue/api/v1/wards/{ward_id}/kiosk-pairings": ward_admin,
    "GET /queue/api/v1/wards/{ward_id}/kiosks": ward_admin,
    "DELETE /queue/api/v1/wards/{ward_id}/kiosks/{device_id}": ward_admin,
    # notify
    "GET /notify/api/v1/notifications": notify_staff,
    "POST /notify/api/v1/groups": ward_admin,
    "GET /notify/api/v1/groups": ward_staff,
    "POST /notify/api/v1/broadcasts": ward_admin,
    "GET /notify/api/v1/broadcasts/{broadcast_id}": staff_roles,
    "GET /notify/api/v1/kannel/dlr": nobody_with_a_bearer,
    "POST /notify/api/v1/receipts": nobody_with_a_bearer,
    "GET /notify/healthz": anyone,
    "GET /notify/readyz": anyone,
    "GET /notify/metrics": anyone,
    "GET /notify/api/v1/openapi.json": anyone,
    # rating
    "POST /rating/api/v1/ratings": anyone,  # holding a ticket id or receipt code
    "GET /rating/api/v1/reasons": anyone,
    "GET /rating/api/v1/wards/{ward_id}/stats": ward_watchers,
    "GET /rating/api/v1/rankings": monitor_or_admin,
    "GET /rating/api/v1/wards/{ward_id}/rankings": ward_watchers,
    # Only the paired rating screen beside the counter (its device cookie), never a bearer.
    "GET /rating/api/v1/wards/{ward_id}/counters/{counter_id}/latest": nobody_with_a_bearer,
    "POST /rating/api/v1/wards/{ward_id}/counters/{counter_id}/screen-pairings": ward_admin,
    "GET /rating/api/v1/wards/{ward_id}/screens": ward_admin,
    "DELETE /rating/api/v1/wards/{ward_id}/screens/{device_id}": ward_admin,
}


def documented_operations(apps) -> list[tuple[str, str, str]]:
    """(service, METHOD, full path) for every operation of every service's document. Paths are
    relative to the document's server (/<svc>/api/v1); a path outside it (/<svc>/healthz)
    names its own server, on the path item or the operation, as OpenAPI allows."""
    found = []
    for service, app in apps.items():
        spec = app.test_client().get(f"/{service}/api/v1/openapi.json").get_json()
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if method in ("get", "put", "post", "delete", "patch"):
                    servers = operation.get("servers") or item.get("servers") or spec.get("servers") or [{"url": "/"}]
                    found.append((service, method.upper(), servers[0]["url"].rstrip("/") + path))
    return found


def test_every_documented_endpoint_has_a_row_and_every_row_an_endpoint(apps):
    documented = {f"{m} {p}" for _, m, p in documented_operations(apps)}
    assert documented - set(EXPECTED) == set(), "endpoints nobody decided on: add them to EXPECTED"
    assert set(EXPECTED) - documented == set(), "rows for endpoints that no longer exist"


def _fill(path: str, ward: str, counters: dict) -> str:
    values = {"ward_id": ward, "counter_id": counters[ward], "code": "HT-XNHN", "day": "2031-01-02",
              "device_id": MISSING_ID, "kind": "dossiers", "fmt": "csv"}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + MISSING_ID + path[end + 1:]
    return path


def test_the_matrix(apps, clients, as_role):
    counters = {w: clients["queue"].get(f"/queue/api/v1/wards/{w}/counters").get_json()[0]["counter_id"]
                for w in (WARD, OTHER)}
    surprises = []
    for service, method, template in documented_operations(apps):
        rule = EXPECTED[f"{method} {template}"]
        about_a_record = any("{" + name + "}" in template for name in RESOURCE)
        # The caller's ward is always WARD; the request names WARD (own) or OTHER.
        for ward in (WARD, OTHER):
            path = _fill(template, ward, counters)
            for role in ROLES:
                if about_a_record and ward == OTHER:
                    continue
                headers = as_role(role, WARD)
                kwargs = {"headers": headers, "query_string": {"ward_id": ward}}
                if method in ("POST", "PUT"):
                    kwargs["json"] = {"ward_id": ward}
                if template.endswith("/board/stream"):
                    kwargs["buffered"] = False
                response = clients[service].open(path, method=method, **kwargs)
                status = response.status_code
                body = response.get_json(silent=True) if response.is_json else None
                code = body.get("code") if isinstance(body, dict) else None
                response.close()
                own = ward == WARD
                allowed = rule(role, own)
                if allowed:
                    # Let in: refused, if at all, for what was asked, not for who asked.
                    ok = status not in (401, 403) or code not in REFUSALS
                elif role == "anonymous":
                    ok = status == 401 or (about_a_record and status == 404)
                elif about_a_record:
                    ok = status in (401, 403, 404)
                elif not rule(role, True) and not rule(role, False):
                    ok = status in (401, 403)
                else:  # staff of another ward
                    ok = status in (403, 404, 422)
                assert status < 500, f"{method} {path} as {role}: {status}"
                if not ok:
                    surprises.append(f"{method} {template} as {role} ({'own' if own else 'other'} ward): "
                                     f"{status}, expected {'allowed' if allowed else 'refused'}")
    assert not surprises, "\n".join(surprises)


@pytest.mark.parametrize("service", ["identity", "dossier", "queue", "notify", "rating"])
def test_the_documents_are_the_served_ones(service, clients):
    """The matrix reads the served documents; they are the files in the repository."""
    from pathlib import Path


    served = clients[service].get(f"/{service}/api/v1/openapi.json").get_json()
    root = Path(__file__).resolve().parents[2]  # the repository (the platform may be installed elsewhere)
    assert served == yaml.safe_load((root / "services" / service / "openapi.yaml").read_text(encoding="utf-8"))
