"""Wards rating learns of (WardOpened, and the demo's wards through the same use case),
named in statistics and rankings."""
from __future__ import annotations

from datetime import datetime, timezone

from motcua_common.auth import Principal
from motcua_common.clock import FixedClock
from motcua_common.events import new_event, parse_envelope
from motcua_rating import ratings, wards
from motcua_rating.bootstrap import prepare
from motcua_rating.deps import build_deps

OPENED = {"ward_id": "tn-phu-binh", "official_code": "05473", "name": "Phường Phú Bình",
          "province": "Tỉnh Thái Nguyên", "province_code": "019", "kind": "phường", "target_population": 7000}
MONITOR = Principal(subject="giamsat", role="monitor", ward_id=None)


def deps_of(settings, service_db):
    prepare(settings)
    return build_deps(settings, db=service_db("rating"), verifier=None,
                      clock=FixedClock(datetime(2026, 12, 7, 2, tzinfo=timezone.utc)))


def test_ward_opened_is_recorded_once(settings, service_db):
    deps = deps_of(settings, service_db)
    event = parse_envelope(new_event("WardOpened", "tn-phu-binh", OPENED))
    assert [wards.on_ward_opened(deps, None, event) for _ in range(2)] == ["processed", "duplicate"]
    [ward] = service_db("rating").wards.find()
    assert (ward["_id"], ward["name"], ward["province"], ward["target_population"]) == (
        "tn-phu-binh", "Phường Phú Bình", "Tỉnh Thái Nguyên", 7000)


def test_stats_and_rankings_name_the_ward(settings, service_db):
    deps = deps_of(settings, service_db)
    wards.record_ward_opened(deps, None, OPENED)
    stats = ratings.ward_stats(deps, MONITOR, "tn-phu-binh", None, None)
    assert (stats["ward_name"], stats["province"]) == ("Phường Phú Bình", "Tỉnh Thái Nguyên")
    unknown = ratings.ward_stats(deps, MONITOR, "no-such-ward", None, None)
    assert unknown["ward_name"] is None
    assert ratings.ward_officer_rankings(deps, MONITOR, "tn-phu-binh", None)["ward_name"] == "Phường Phú Bình"


def test_the_demo_wards_are_named(settings, service_db):
    prepare(settings, demo=True)
    prepare(settings, demo=True)
    names = {w["_id"]: w["name"] for w in service_db("rating").wards.find()}
    assert names["dn-hai-chau"] == "Phường Hải Châu" and len(names) == 4


def test_rankings_name_the_wards(settings, service_db):
    deps = deps_of(settings, service_db)
    wards.record_ward_opened(deps, None, OPENED)
    service_db("rating").ratings.insert_one({
        "_id": "r1", "ward_id": "tn-phu-binh", "officer_id": "o1", "counter_id": "quay-1", "score": "satisfied",
        "subject_type": "ticket", "subject_id": "t1", "rated_at": datetime(2026, 8, 1, 3, tzinfo=timezone.utc)})
    body = ratings.rankings(deps, MONITOR, "2026-H2")
    assert [(w["ward_id"], w["ward_name"], w["province"]) for w in body["wards"]] == [
        ("tn-phu-binh", "Phường Phú Bình", "Tỉnh Thái Nguyên")]
    assert body["officers"][0]["ward_name"] == "Phường Phú Bình"
