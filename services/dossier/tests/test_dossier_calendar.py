"""The working-day calendar: weekends, public holidays (Tết), receipt on a day off."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from motcua_dossier.working_days import WorkingCalendar

calendar = WorkingCalendar()


def skipped(due):
    return [(s.day.isoformat(), s.reason) for s in due.skipped]


def test_weekend_is_skipped_with_its_vietnamese_name():
    due = calendar.due_date(date(2026, 3, 12), 2)  # Thursday
    assert due.due_date == date(2026, 3, 16)  # Friday, then Monday
    assert skipped(due) == [("2026-03-14", "Thứ Bảy"), ("2026-03-15", "Chủ nhật")]


def test_tet_2026_is_skipped():
    due = calendar.due_date(date(2026, 2, 13), 3)  # the Friday before Tết Bính Ngọ
    assert due.due_date == date(2026, 2, 25)
    reasons = dict(skipped(due))
    assert reasons["2026-02-16"] == "Giao thừa Tết Nguyên Đán"
    assert reasons["2026-02-17"] == "Tết Nguyên Đán"
    assert reasons["2026-02-20"] == "Mùng bốn Tết Nguyên Đán"
    assert reasons["2026-02-21"] == "Thứ Bảy"
    assert len(due.skipped) == 9


def test_tet_2027_is_skipped_and_a_holiday_on_a_weekend_is_named_as_the_holiday():
    due = calendar.due_date(date(2027, 2, 3), 1)  # Wednesday before Tết Đinh Mùi
    assert due.due_date == date(2027, 2, 11)
    reasons = dict(skipped(due))
    assert list(reasons) == [f"2027-02-{d:02d}" for d in range(4, 11)]
    assert reasons["2027-02-06"] == "Tết Nguyên Đán"  # a Saturday, but Tết says more
    assert all(reason for reason in reasons.values())


def test_received_on_saturday_starts_counting_on_monday():
    saturday, friday = date(2026, 3, 14), date(2026, 3, 13)
    assert calendar.due_date(saturday, 1).due_date == date(2026, 3, 16)
    assert calendar.due_date(saturday, 3).due_date == date(2026, 3, 18)
    # The same as a dossier received on the Friday: Saturday adds nothing.
    assert calendar.due_date(saturday, 3).due_date == calendar.due_date(friday, 3).due_date


def test_zero_days_means_within_the_day_or_the_next_working_day():
    assert calendar.due_date(date(2026, 3, 10), 0).due_date == date(2026, 3, 10)
    sunday = calendar.due_date(date(2026, 3, 15), 0)
    assert sunday.due_date == date(2026, 3, 16) and sunday.skipped == ()


def test_the_government_swap_days_are_followed():
    # Monday 31/08/2026 is a day off given for Saturday 22/08/2026, which is worked.
    assert calendar.is_working_day(date(2026, 8, 22))
    assert not calendar.is_working_day(date(2026, 8, 31))
    assert calendar.due_date(date(2026, 8, 21), 1).due_date == date(2026, 8, 22)


def test_working_days_between():
    assert calendar.working_days_between(date(2026, 3, 13), date(2026, 3, 16)) == 1  # Fri -> Mon
    assert calendar.working_days_between(date(2026, 3, 10), date(2026, 3, 10)) == 0
    assert calendar.working_days_between(date(2026, 3, 16), date(2026, 3, 10)) == 0


@pytest.mark.parametrize("days", [-1, 366])
def test_out_of_range_is_refused(days):
    with pytest.raises(ValueError):
        calendar.due_date(date(2026, 3, 10), days)


@hsettings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)), st.integers(0, 40))
def test_due_date_is_the_nth_working_day_after_receipt(received_on, n):
    due = calendar.due_date(received_on, n)
    assert calendar.is_working_day(due.due_date)
    if n == 0 and calendar.is_working_day(received_on):
        assert due.due_date == received_on
    else:
        assert calendar.working_days_between(received_on, due.due_date) == max(n, 1)
    span = {received_on + timedelta(days=i) for i in range(1, (due.due_date - received_on).days + 1)}
    assert {s.day for s in due.skipped} == {d for d in span if not calendar.is_working_day(d)}
