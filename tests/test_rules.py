"""Dispatch order and retry/expiry decisions: pure functions, a fake clock."""
from datetime import datetime, timedelta, timezone

import pytest

from callback.domain.rules import (
    CALL,
    CALLBACK,
    WorkCandidate,
    choose_next_work,
    decide_after_failed_attempt,
    decide_after_uncounted_attempt,
    rank_work,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def call(key, priority, minute, queue="Sales"):
    return WorkCandidate(CALL, key, queue, priority, at(minute))


def callback(key, priority, minute, queue="Sales"):
    return WorkCandidate(CALLBACK, key, queue, priority, at(minute))


def test_nothing_to_do():
    assert choose_next_work([]) is None


def test_higher_priority_wins_whatever_the_place():
    assert choose_next_work([call("old", 5, 0), call("vip", 10, 30)]).key == "vip"


def test_equal_priority_callback_keeps_its_place_among_holding_callers():
    work = [call("c2", 10, 5), callback("cb", 10, 2), call("c1", 10, 8)]
    assert [w.key for w in rank_work(work)] == ["cb", "c2", "c1"]


def test_lower_priority_callback_waits_until_no_caller_of_its_queue_holds():
    work = [callback("cb", 1, 0), call("late", 10, 50)]
    assert choose_next_work(work).key == "late"
    assert choose_next_work([callback("cb", 1, 0)]).key == "cb"


def test_a_perfect_tie_goes_to_the_caller_on_the_line():
    assert choose_next_work([callback("cb", 10, 1), call("c", 10, 1)]).kind == CALL


def test_order_is_deterministic_whatever_the_input_order():
    work = [call("a", 1, 3), callback("b", 2, 9), call("c", 2, 9), callback("d", 2, 1)]
    expected = [w.key for w in rank_work(work)]
    assert expected == ["d", "c", "b", "a"]
    assert [w.key for w in rank_work(reversed(work))] == expected


@pytest.mark.parametrize("failed, expire", [(1, False), (2, False), (3, True), (4, True)])
def test_max_retries(failed, expire):
    decision = decide_after_failed_attempt(failed_attempts=failed, max_retries=3, retry_minutes=5,
                                           expires_at=at(120), now=at(10))
    assert decision.expire is expire
    if not expire:
        assert decision.due_at == at(15)
    else:
        assert decision.reason == "max-retries"


def test_expiration_time_ends_retries_even_with_retries_left():
    decision = decide_after_failed_attempt(failed_attempts=1, max_retries=3, retry_minutes=5,
                                           expires_at=at(12), now=at(10))
    assert decision.expire and decision.reason == "expiration-time"


def test_uncounted_attempt_is_due_again_unless_expired():
    assert decide_after_uncounted_attempt(expires_at=at(5), now=at(1), due_at=at(1)).due_at == at(1)
    assert decide_after_uncounted_attempt(expires_at=at(5), now=at(5), due_at=at(5)).expire
