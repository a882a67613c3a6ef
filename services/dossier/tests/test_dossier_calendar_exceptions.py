"""Administrators' calendar exceptions: extra days off and working Saturdays, in the due
date of /calendar/due-date and of new dossiers; properties of the calendar with them."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings as hsettings, strategies as st

from motcua_dossier import domain
from motcua_dossier.working_days import DAY_OFF, WORKING_DAY, CalendarException, WorkingCalendar

BASE = WorkingCalendar()
URL = "/dossier/api/v1/calendar"


def test_an_extra_day_off_and_a_working_saturday():
    calendar = BASE.with_exceptions([
        CalendarException(date(2026, 3, 12), DAY_OFF, "Nghỉ do bão"),
        CalendarException(date(2026, 3, 14), WORKING_DAY, "Làm bù"),
    ])
    assert calendar.day_off_reason(date(2026, 3, 12)) == "Nghỉ do bão"
    assert calendar.is_working_day(date(2026, 3, 14))  # a Saturday
    due = calendar.due_date(date(2026, 3, 10), 3)  # Tue: Wed, (Thu off), Fri, Sat worked
    assert due.due_date == date(2026, 3, 14)
    assert [(s.day, s.reason) for s in due.skipped] == [(date(2026, 3, 12), "Nghỉ do bão")]
    assert BASE.is_working_day(date(2026, 3, 12)) and not BASE.is_working_day(date(2026, 3, 14))


days = st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
exception_sets = st.lists(
    st.builds(lambda d, off: CalendarException(d, DAY_OFF if off else WORKING_DAY, "ngoại lệ"), days, st.booleans()),
    max_size=12, unique_by=lambda e: e.day,
)


@hsettings(max_examples=150, deadline=None)
@given(exception_sets, days, st.integers(0, 30))
def test_never_due_on_a_day_off_whatever_the_exceptions(exceptions, received_on, n):
    calendar = BASE.with_exceptions(exceptions)
    due = calendar.due_date(received_on, n)
    assert calendar.is_working_day(due.due_date)
    for e in exceptions:
        assert calendar.is_working_day(e.day) == (e.kind == WORKING_DAY)
    if n > 0:
        assert calendar.working_days_between(received_on, due.due_date) == n


@hsettings(max_examples=150, deadline=None)
@given(exception_sets, days, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
def test_pausing_is_additive(exceptions, received_on, n, first_wait, second_wait):
    """Two supplement waits move the due date as far as one wait of both lengths (a due
    date is a working day, so adding 0 working days keeps it)."""
    calendar = BASE.with_exceptions(exceptions)
    due = calendar.due_date(received_on, n).due_date
    twice = calendar.add_working_days(calendar.add_working_days(due, first_wait), second_wait)
    assert twice == calendar.add_working_days(due, first_wait + second_wait)


@hsettings(max_examples=100, deadline=None)
@given(exception_sets, days, st.integers(1, 15))
def test_a_supplement_wait_moves_the_due_date_by_the_working_days_waited(exceptions, asked_on, waited_days):
    calendar = BASE.with_exceptions(exceptions)
    due = calendar.add_working_days(asked_on, 5)
    brought_on = asked_on + timedelta(days=waited_days)
    asked = domain.decide("received", "request_supplement", due, None, asked_on, calendar)
    back = domain.decide("supplement_requested", "receive", asked.due_date, asked.supplement_requested_on,
                         brought_on, calendar)
    waited = calendar.working_days_between(asked_on, brought_on)
    assert calendar.working_days_between(due, back.due_date) == waited
    assert back.due_date >= due


# ---------------------------------------------------------------- through HTTP
def test_an_admin_declares_a_day_off_and_due_dates_follow(client, token, submit):
    admin = token("admin", subject="admin-1")
    before = client.get(f"{URL}/due-date?from=2026-03-10&working_days=2").json
    assert before["due_date"] == "2026-03-12"
    saved = client.put(f"{URL}/exceptions/2026-03-11", json={"kind": "day_off", "reason": "Nghỉ do bão số 3"},
                       headers=admin)
    assert saved.status_code == 200
    after = client.get(f"{URL}/due-date?from=2026-03-10&working_days=2").json
    assert after["due_date"] == "2026-03-13"
    assert {"date": "2026-03-11", "reason": "Nghỉ do bão số 3"} in after["skipped"]
    assert submit().json["due_date"] == "2026-03-13"  # HT-XNHN, 2 ward days, received Tue 10/3
    listed = client.get(f"{URL}/exceptions?year=2026").json
    assert listed == [{"date": "2026-03-11", "kind": "day_off", "reason": "Nghỉ do bão số 3"}]
    assert client.delete(f"{URL}/exceptions/2026-03-11", headers=admin).status_code == 204
    assert client.get(f"{URL}/due-date?from=2026-03-10&working_days=2").json["due_date"] == "2026-03-12"
    assert client.delete(f"{URL}/exceptions/2026-03-11", headers=admin).status_code == 404


def test_a_working_saturday_counts(client, token):
    admin = token("admin")
    assert client.put(f"{URL}/exceptions/2026-03-14", json={"kind": "working_day", "reason": "Làm bù ngày 30/4"},
                      headers=admin).status_code == 200
    assert client.get(f"{URL}/due-date?from=2026-03-13&working_days=1").json["due_date"] == "2026-03-14"


def test_exceptions_are_validated_and_admin_only(client, token):
    admin = token("admin")
    pointless = client.put(f"{URL}/exceptions/2026-03-14", json={"kind": "day_off", "reason": "x"}, headers=admin)
    assert pointless.status_code == 422 and "Thứ Bảy" in pointless.json["errors"][0]["message"]
    already = client.put(f"{URL}/exceptions/2026-03-11", json={"kind": "working_day", "reason": "x"}, headers=admin)
    assert already.status_code == 422
    bad = client.put(f"{URL}/exceptions/2026-03-11", json={"kind": "holiday", "reason": ""}, headers=admin)
    assert {e["field"] for e in bad.json["errors"]} == {"kind", "reason"}
    assert client.put(f"{URL}/exceptions/11-03-2026", json={"kind": "day_off", "reason": "x"},
                      headers=admin).status_code == 422
    for who in (token("ward_admin", "dn-hai-chau"), token("officer", "dn-hai-chau"), token("monitor")):
        assert client.put(f"{URL}/exceptions/2026-03-11", json={"kind": "day_off", "reason": "x"},
                          headers=who).status_code == 403
