"""The rules of rating, in microseconds: requests, windows, tallies, periods, ranking."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from motcua_rating import domain
from motcua_rating.domain import InvalidInput, Period, RatingCount, Tally, Verdict

NOW = datetime(2026, 7, 15, 3, 0, tzinfo=timezone.utc)


def fields(exc_info) -> set[str]:
    return {f for f, _ in exc_info.value.errors}


# ---------------------------------------------------------------- requests
def test_a_ticket_rating_request():
    request = domain.read_rating_request({"ticket_id": " t-1 ", "score": "satisfied", "comment": "  Tốt  "})
    assert request == domain.RatingRequest("ticket", "t-1", "satisfied", "Tốt", ())


def test_a_dossier_rating_request_with_reasons():
    request = domain.read_rating_request(
        {"receipt_code": "HC-001", "score": "unsatisfied", "reasons": ["wait_time", "attitude", "wait_time"]})
    assert (request.subject_type, request.subject_id) == ("dossier", "HC-001")
    assert request.reasons == ("wait_time", "attitude")
    assert request.comment is None


@pytest.mark.parametrize("body,bad", [
    ({"ticket_id": "t", "score": "great"}, {"score"}),
    ({"ticket_id": "t"}, {"score"}),
    ({"ticket_id": "t", "receipt_code": "r", "score": "satisfied"}, {"receipt_code"}),
    ({"score": "satisfied"}, {"ticket_id"}),
    ({"ticket_id": "", "score": "satisfied"}, {"ticket_id"}),
    ({"ticket_id": 42, "score": "satisfied"}, {"ticket_id"}),
    ({"receipt_code": "r" * 101, "score": "satisfied"}, {"receipt_code"}),
    ({"ticket_id": "t", "score": "satisfied", "comment": "x" * 501}, {"comment"}),
    ({"ticket_id": "t", "score": "satisfied", "comment": 5}, {"comment"}),
    ({"ticket_id": "t", "score": "satisfied", "comment": "Tốt \u202eắm"}, {"comment"}),
    ({"ticket_id": "t", "score": "satisfied", "comment": "Tốt\x1b[2J"}, {"comment"}),
    ({"ticket_id": "t", "score": "satisfied", "reasons": ["rude"]}, {"reasons"}),
    ({"ticket_id": "t", "score": "satisfied", "reasons": "wait_time"}, {"reasons"}),
    ({"score": "bad", "comment": "x" * 501}, {"ticket_id", "score", "comment"}),
])
def test_invalid_rating_requests_name_every_bad_field(body, bad):
    with pytest.raises(InvalidInput) as exc_info:
        domain.read_rating_request(body)
    assert fields(exc_info) == bad


def test_a_comment_of_exactly_500_characters_is_accepted():
    assert len(domain.read_rating_request({"ticket_id": "t", "score": "satisfied", "comment": "ạ" * 500}).comment) == 500


def test_a_comment_on_two_lines_is_not_refused_as_hidden():
    assert domain.read_rating_request({"ticket_id": "t", "score": "satisfied", "comment": "Nhanh.\nCảm ơn"}).comment


# ---------------------------------------------------------------- opportunities and windows
def test_a_served_ticket_is_ratable_for_24_hours():
    opportunity = domain.ticket_served(
        {"ticket_id": "t1", "ward_id": "w", "counter_id": "c1", "officer_id": "o1", "service_code": "A", "number": "A001"},
        served_at=NOW)
    assert opportunity["ratable_until"] == NOW + timedelta(hours=24)
    assert domain.may_rate(opportunity, NOW + timedelta(hours=24)) == Verdict.RATABLE
    assert domain.may_rate(opportunity, NOW + timedelta(hours=24, seconds=1)) == Verdict.WINDOW_CLOSED


def test_a_dossier_is_ratable_only_after_its_return_and_for_7_days():
    ready = domain.dossier_result_ready({"dossier_id": "d1", "receipt_code": "R1", "ward_id": "w"})
    assert domain.may_rate(ready, NOW) == Verdict.NOT_YET
    returned = {**ready, **domain.dossier_returned({"actor_id": "o7"}, returned_at=NOW)}
    assert returned["officer_id"] == "o7"
    assert domain.may_rate(returned, NOW + timedelta(days=7)) == Verdict.RATABLE
    assert domain.may_rate(returned, NOW + timedelta(days=7, seconds=1)) == Verdict.WINDOW_CLOSED


def test_nothing_known_is_not_ratable():
    assert domain.may_rate(None, NOW) == Verdict.UNKNOWN


def test_an_event_without_its_subject_is_refused():
    with pytest.raises(ValueError):
        domain.ticket_served({"ticket_id": "", "ward_id": "w"}, NOW)
    with pytest.raises(ValueError):
        domain.dossier_result_ready({"dossier_id": "d", "receipt_code": "", "ward_id": "w"})


def test_instants_are_read_as_utc():
    assert domain.parse_instant("2026-07-15T10:00:00.000+07:00") == NOW
    assert domain.parse_instant("2026-07-15T03:00:00.000Z") == NOW
    with pytest.raises(ValueError):
        domain.parse_instant("2026-07-15T03:00:00")


def test_the_rating_event_names_a_dossier_by_its_id_not_its_receipt_code():
    opportunity = {**domain.dossier_result_ready({"dossier_id": "d1", "receipt_code": "R1", "ward_id": "w"}),
                   **domain.dossier_returned({"actor_id": "o7"}, NOW)}
    rating = domain.new_rating("r1", opportunity, domain.RatingRequest("dossier", "R1", "satisfied"), NOW)
    assert domain.rating_given(rating) == {
        "rating_id": "r1", "ward_id": "w", "subject_type": "dossier", "subject_id": "d1",
        "officer_id": "o7", "counter_id": "", "score": "satisfied",
    }


# ---------------------------------------------------------------- tallies
def test_satisfaction_index_is_the_share_of_the_two_good_scores():
    tally = Tally(very_satisfied=2, satisfied=1, unsatisfied=1)
    assert tally.satisfaction == Fraction(3, 4)
    assert tally.as_dict() == {"very_satisfied": 2, "satisfied": 1, "unsatisfied": 1, "total": 4,
                               "satisfaction_index": 0.75}
    assert Tally().as_dict()["satisfaction_index"] is None


def test_ward_stats_per_officer_and_counter():
    stats = domain.ward_stats([
        RatingCount("very_satisfied", 3, officer_id="o1", counter_id="c1"),
        RatingCount("unsatisfied", 1, officer_id="o1", counter_id="c2"),
        RatingCount("satisfied", 2, officer_id="o2", counter_id=""),   # a returned dossier
        RatingCount("unsatisfied", 1),                                  # nobody known
    ]).as_dict()
    assert (stats["total"], stats["satisfaction_index"]) == (7, round(5 / 7, 4))
    assert stats["by_officer"] == [
        {"officer_id": "o1", "very_satisfied": 3, "satisfied": 0, "unsatisfied": 1, "total": 4, "satisfaction_index": 0.75},
        {"officer_id": "o2", "very_satisfied": 0, "satisfied": 2, "unsatisfied": 0, "total": 2, "satisfaction_index": 1.0},
    ]
    assert [(c["counter_id"], c["total"]) for c in stats["by_counter"]] == [("c1", 3), ("c2", 1)]


# ---------------------------------------------------------------- periods
@pytest.mark.parametrize("day,name,first,last", [
    (date(2026, 1, 1), "2026-H1", date(2026, 1, 1), date(2026, 6, 30)),
    (date(2026, 6, 30), "2026-H1", date(2026, 1, 1), date(2026, 6, 30)),
    (date(2026, 7, 1), "2026-H2", date(2026, 7, 1), date(2026, 12, 31)),
    (date(2026, 12, 31), "2026-H2", date(2026, 7, 1), date(2026, 12, 31)),
])
def test_half_years(day, name, first, last):
    assert domain.half_year(day) == Period(first, last, name)
    assert domain.parse_half_year(name) == Period(first, last, name)


@pytest.mark.parametrize("text", ["2026-H3", "2026H1", "26-H1", "2026-h1", "", "2026-H1 "])
def test_bad_half_years(text):
    with pytest.raises(InvalidInput):
        domain.parse_half_year(text)


def test_a_period_covers_local_days():
    start, end = Period(date(2026, 7, 1), date(2026, 7, 31)).utc_bounds("Asia/Ho_Chi_Minh")
    assert start == datetime(2026, 6, 30, 17, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 7, 31, 17, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("from_,to,expected", [
    (None, None, Period(date(2026, 7, 1), date(2026, 12, 31), "2026-H2")),
    ("2026-03-05", None, Period(date(2026, 3, 5), date(2026, 6, 30))),
    (None, "2026-09-10", Period(date(2026, 7, 1), date(2026, 9, 10))),
    ("2026-07-15", "2026-07-15", Period(date(2026, 7, 15), date(2026, 7, 15))),
    ("2025-11-01", "2026-02-28", Period(date(2025, 11, 1), date(2026, 2, 28))),
])
def test_reporting_periods(from_, to, expected):
    assert domain.reporting_period(from_, to, today=date(2026, 8, 20)) == expected


@pytest.mark.parametrize("from_,to,bad", [
    ("2026-13-01", None, {"from"}),
    ("2026-7-1", None, {"from"}),
    (None, "yesterday", {"to"}),
    ("x", "y", {"from", "to"}),
    ("2026-08-02", "2026-08-01", {"from"}),
])
def test_bad_reporting_periods(from_, to, bad):
    with pytest.raises(InvalidInput) as exc_info:
        domain.reporting_period(from_, to, today=date(2026, 8, 20))
    assert fields(exc_info) == bad


# ---------------------------------------------------------------- ranking
def test_wards_rank_by_index_then_by_number_of_ratings_and_equals_share_a_rank():
    ranking = domain.rank_wards({
        "w-small-perfect": Tally(very_satisfied=2),
        "w-big-perfect": Tally(very_satisfied=5, satisfied=5),
        "w-half-a": Tally(satisfied=2, unsatisfied=2),
        "w-half-b": Tally(very_satisfied=1, satisfied=1, unsatisfied=2),
        "w-worst": Tally(unsatisfied=3),
        "w-nobody": Tally(),
    })
    assert [(r["rank"], r["ward_id"]) for r in ranking] == [
        (1, "w-big-perfect"), (2, "w-small-perfect"), (3, "w-half-a"), (3, "w-half-b"), (5, "w-worst"),
    ]
    assert ranking[0]["satisfaction_index"] == 1.0 and ranking[-1]["satisfaction_index"] == 0.0


def test_ward_tallies_from_counts():
    tallies = domain.ward_tallies([RatingCount("satisfied", 2, ward_id="a"), RatingCount("unsatisfied", 1, ward_id="a"),
                                   RatingCount("very_satisfied", 1, ward_id="b")])
    assert tallies == {"a": Tally(satisfied=2, unsatisfied=1), "b": Tally(very_satisfied=1)}


tallies = st.builds(Tally, st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=4), tallies, max_size=12))
def test_a_ranking_is_ordered_and_complete(wards):
    ranking = domain.rank_wards(wards)
    assert {r["ward_id"] for r in ranking} == {w for w, t in wards.items() if t.total}
    keys = [(wards[r["ward_id"]].satisfaction, wards[r["ward_id"]].total) for r in ranking]
    assert keys == sorted(keys, reverse=True)
    for position, (row, key) in enumerate(zip(ranking, keys), start=1):
        # a rank is the position of the first ward with the same index and total
        assert row["rank"] == keys.index(key) + 1 <= position
