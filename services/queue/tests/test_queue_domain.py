"""The queue's rules, in microseconds: numbering, call order, fairness, wait estimate and
the ticket state machine."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from motcua_queue import domain
from motcua_queue.domain import WaitingTicket

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 08:00 in Đà Nẵng
VN = "Asia/Ho_Chi_Minh"


def ticket(ticket_id: str, service: str = "A", priority: str = "normal", minutes: float = 0, sequence: int = 1,
           transferred_to: str | None = None) -> WaitingTicket:
    return WaitingTicket(ticket_id, service, priority, T0 + timedelta(minutes=minutes), sequence, transferred_to)


# ---------------------------------------------------------------- numbering
@pytest.mark.parametrize("prefix,sequence,number", [("A", 1, "A001"), ("B", 42, "B042"), ("D", 999, "D999"),
                                                    ("A", 1000, "A1000")])
def test_ticket_number_is_prefix_and_three_digits(prefix, sequence, number):
    assert domain.ticket_number(prefix, sequence) == number


def test_ticket_sequence_starts_at_one():
    with pytest.raises(ValueError):
        domain.ticket_number("A", 0)


@given(st.integers(min_value=1, max_value=100_000), st.integers(min_value=1, max_value=100_000))
def test_distinct_sequences_never_share_a_number(a, b):
    if a != b:
        assert domain.ticket_number("A", a) != domain.ticket_number("A", b)


def test_the_day_is_the_local_day_in_vietnam():
    # 16:59 UTC is 23:59 in Hà Nội; one minute later it is the next day there.
    assert domain.local_day(datetime(2026, 3, 2, 16, 59, tzinfo=timezone.utc), VN) == "2026-03-02"
    assert domain.local_day(datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc), VN) == "2026-03-03"


# ---------------------------------------------------------------- who is called next
def test_priority_tickets_are_called_before_normal_ones():
    waiting = [ticket("n1", minutes=0), ticket("n2", minutes=1, sequence=2),
               ticket("p1", priority="priority", minutes=5, sequence=3)]
    assert domain.choose_next(waiting, "quay-1", ["A"]).ticket_id == "p1"
    ordered = sorted(waiting, key=domain.call_order)
    assert [t.ticket_id for t in ordered] == ["p1", "n1", "n2"]


def test_among_equals_the_longest_waiting_goes_first():
    waiting = [ticket("later", minutes=3, sequence=2), ticket("earlier", minutes=1, sequence=1)]
    assert domain.choose_next(waiting, "quay-1", ["A"]).ticket_id == "earlier"


def test_same_millisecond_keeps_number_order():
    waiting = [ticket("second", sequence=2), ticket("first", sequence=1)]
    assert domain.choose_next(waiting, "quay-1", ["A"]).ticket_id == "first"


def test_a_counter_is_fair_across_its_services():
    # Service A is busy, but B's ticket has waited longer: it goes first.
    waiting = [ticket("a1", "A", minutes=5), ticket("a2", "A", minutes=6, sequence=2), ticket("b1", "B", minutes=2)]
    assert domain.choose_next(waiting, "quay-1", ["A", "B"]).ticket_id == "b1"


def test_a_counter_calls_only_its_services():
    waiting = [ticket("c1", "C", minutes=0), ticket("a1", "A", minutes=9)]
    assert domain.choose_next(waiting, "quay-1", ["A", "B"]).ticket_id == "a1"
    assert domain.choose_next([ticket("c1", "C")], "quay-1", ["A", "B"]) is None
    assert domain.choose_next([], "quay-1", ["A"]) is None


def test_a_transferred_ticket_waits_for_its_counter_only_and_keeps_its_place():
    moved = ticket("moved", "C", minutes=0, transferred_to="quay-3")
    fresh = ticket("fresh", "A", minutes=10)
    # quay-3 does not serve C, yet the ticket sent to it is called there, and first.
    assert domain.choose_next([moved, fresh], "quay-3", ["A", "D"]).ticket_id == "moved"
    # quay-2 serves C but the ticket was not sent there.
    assert domain.choose_next([moved], "quay-2", ["C"]) is None


# ---------------------------------------------------------------- wait estimate
def test_nobody_ahead_means_no_wait():
    assert domain.estimate_wait_minutes(0, [600, 600], 1) == 0


def test_without_history_each_person_ahead_counts_five_minutes():
    assert domain.estimate_wait_minutes(3, [], 1) == 15


def test_the_estimate_uses_the_mean_service_time_and_shares_it_among_counters():
    # mean 240 s, 4 people ahead, 2 counters: 480 s = 8 minutes
    assert domain.estimate_wait_minutes(4, [180, 300, 240], 2) == 8


def test_the_estimate_rounds_up_and_survives_a_service_no_counter_serves():
    assert domain.estimate_wait_minutes(1, [61], 1) == 2
    assert domain.estimate_wait_minutes(2, [], 0) == 10


# ---------------------------------------------------------------- state machine
@pytest.mark.parametrize("action,after", [("serve", "served"), ("skip", "skipped"), ("recall", "called"),
                                          ("transfer", "waiting")])
def test_a_called_ticket_can_be_closed_recalled_or_transferred(action, after):
    assert domain.next_status("called", action) == after


@pytest.mark.parametrize("status", ["waiting", "served", "skipped"])
@pytest.mark.parametrize("action", domain.ACTIONS)
def test_only_a_called_ticket_is_acted_on(status, action):
    with pytest.raises(domain.InvalidTransition) as info:
        domain.next_status(status, action)
    assert (info.value.status, info.value.action) == (status, action)


def test_allowed_actions_follow_the_state_machine():
    assert sorted(domain.allowed_actions("called")) == sorted(domain.ACTIONS)
    assert domain.allowed_actions("served") == []


def test_service_times_count_the_first_call_for_the_wait_and_the_last_for_the_counter():
    issued = T0
    first_call = T0 + timedelta(minutes=12)
    recalled = T0 + timedelta(minutes=14)
    served = T0 + timedelta(minutes=20, seconds=30)
    times = domain.service_times(issued, first_call, recalled, served)
    assert (times.wait_seconds, times.service_seconds) == (720, 390)


def test_iso_utc_is_the_contract_time_format():
    assert domain.iso_utc(datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=timezone.utc)) == "2026-03-02T08:00:00.123Z"


def test_waiting_ahead_at_issue_counts_the_same_or_more_urgent_rank_still_waiting():
    normal, priority = domain.PRIORITY_RANK["normal"], domain.PRIORITY_RANK["priority"]
    issued, called = {normal: 7, priority: 3}, {normal: 2, priority: 1}
    assert domain.waiting_ahead_at_issue(normal, issued, called) == (7 - 2) + (3 - 1) - 1
    assert domain.waiting_ahead_at_issue(priority, issued, called) == (3 - 1) - 1
    assert domain.waiting_ahead_at_issue(normal, {normal: 1}, {}) == 0        # the day's first ticket
    assert domain.waiting_ahead_at_issue(normal, {}, {normal: 1}) == 0        # never negative
