"""What dossier's officer desk asks identity (worker RPC): the ward's active staff for the
assignment select (`ward_officers`), who a newly registered citizen is, to hand them the
dossiers filed for them at the counter (`citizen_identity`), and the citizens' names of
the dossiers the desk lists (`citizen_names`) — the use cases the worker's methods call."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from motcua_common.auth import Principal
from motcua_common.clock import FixedClock
from motcua_identity import accounts, bootstrap, officers
from motcua_identity.deps import build_deps

WARD = "dn-hai-chau"


@pytest.fixture
def deps(settings):
    bootstrap.prepare(settings, demo=True)
    return build_deps(settings, clock=FixedClock(datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)),
                      send_reply=lambda *args: None, dossier_status=lambda *args: None)


def test_ward_officers_lists_the_active_staff_of_the_ward_only(deps):
    admin = Principal("admin-1", "admin", None)
    made = {}
    for username, name, role, ward in (("canbo.desk1", "Trần Thị Mai", "officer", WARD),
                                       ("lanhdao.desk1", "Phạm Quốc Bảo", "leader", WARD),
                                       ("canbo.desk2", "Lê Văn Hùng", "officer", WARD),
                                       ("canbo.khac", "Ngô Văn Khác", "officer", "dn-lien-chieu")):
        made[username] = officers.create_officer(deps, admin, {"username": username, "full_name": name,
                                                               "ward_id": ward, "role": role,
                                                               "password": "mat-khau-desk-2026"}, "10.0.0.1")
    officers.update_officer(deps, admin, made["canbo.desk2"], {"active": False}, "10.0.0.1")
    listed = officers.ward_officers(deps, WARD)
    ids = [o["officer_id"] for o in listed]
    assert made["canbo.desk1"] in ids and made["lanhdao.desk1"] in ids
    assert made["canbo.desk2"] not in ids and made["canbo.khac"] not in ids
    mai = next(o for o in listed if o["officer_id"] == made["canbo.desk1"])
    assert mai == {"officer_id": made["canbo.desk1"], "full_name": "Trần Thị Mai", "role": "officer"}
    assert all(set(o) == {"officer_id", "full_name", "role"} for o in listed)  # no password hash, no username
    for malformed in (None, "", 42, {"$ne": None}):
        assert officers.ward_officers(deps, malformed) == []


def test_citizen_identity_and_names(deps):
    answer, status = accounts.register_citizen(deps, None, {
        "national_id": "048090001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
        "phone": "0905 123 456", "ward_id": WARD, "password": "hoa-sen-2026"}, client="10.0.0.1")
    assert status == 201
    citizen_id = answer["citizen_id"]
    assert accounts.citizen_identity(deps, citizen_id) == {
        "citizen_id": citizen_id, "national_id": "048090001234", "full_name": "Nguyễn Văn An", "phone_last4": "3456"}
    for unknown in ("nobody", "", None, 42, {"$ne": None}):
        assert accounts.citizen_identity(deps, unknown) is None
    assert accounts.citizen_names(deps, [citizen_id, "nobody", 42, None]) == {citizen_id: "Nguyễn Văn An"}
    assert accounts.citizen_names(deps, "not a list") == {}
