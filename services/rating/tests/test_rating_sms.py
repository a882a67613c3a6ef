"""Rating by SMS (CONTRACT "A phone is enough"), the use case identity asks over RPC
(ratings.rate_by_sms), against the SecantusDB server: the same rule as POST /ratings with
the receipt code, channel sms, and a dossier whose result is ready may be rated from the
result-ready SMS on (30 days), not only after its return. Once."""
from __future__ import annotations

from datetime import timedelta

import pytest

from motcua_common.clock import FixedClock
from motcua_common.events import new_event, parse_envelope
from motcua_rating import opportunities, ratings
from motcua_rating.bootstrap import prepare
from motcua_rating.deps import build_deps

WARD = "dn-hai-chau"


@pytest.fixture
def deps(settings, service_db):
    from datetime import datetime, timezone

    prepare(settings, demo=False)
    return build_deps(settings, db=service_db("rating"), verifier=None,
                      clock=FixedClock(datetime.now(timezone.utc).replace(microsecond=0)))


def result_ready(deps, receipt_code: str, dossier_id: str = "d-1") -> None:
    event = new_event("DossierResultReady", WARD, {"dossier_id": dossier_id, "receipt_code": receipt_code,
                                                   "ward_id": WARD})
    assert opportunities.on_dossier_result_ready(deps, None, parse_envelope(event)) == "processed"


def test_an_answer_to_the_result_ready_sms_rates_the_dossier_once(deps):
    assert ratings.rate_by_sms(deps, "DNHC-1", "very_satisfied") == {"outcome": "not_ratable", "reason": "not_ratable"}
    result_ready(deps, "DNHC-1")
    rated = ratings.rate_by_sms(deps, "DNHC-1", "very_satisfied")
    assert rated["outcome"] == "rated"
    stored = deps.db.ratings.find_one({"_id": rated["rating_id"]})
    assert (stored["channel"], stored["score"], stored["ward_id"], stored["dossier_id"]) == (
        "sms", "very_satisfied", WARD, "d-1")
    assert ratings.rate_by_sms(deps, "DNHC-1", "unsatisfied") == {"outcome": "already_rated"}
    assert deps.db.ratings.count_documents({}) == 1


def test_the_web_still_waits_for_the_return(deps):
    from motcua_common.http import Problem

    result_ready(deps, "DNHC-2")
    with pytest.raises(Problem) as refused:
        ratings.rate(deps, None, {"receipt_code": "DNHC-2", "score": "satisfied"})
    assert refused.value.code == "not_ratable"


def test_an_old_result_is_no_longer_rated_by_sms(deps):
    result_ready(deps, "DNHC-3")
    deps.clock.advance(days=31)
    assert ratings.rate_by_sms(deps, "DNHC-3", "satisfied")["outcome"] == "not_ratable"
    for score in ("", "excellent", None, 1):
        assert ratings.rate_by_sms(deps, "DNHC-3", score) == {"outcome": "invalid"}
