"""What each change of a callback, or of a holding caller's offer, writes
(callback.domain.transitions): pure functions over the record as read, no DynamoDB.
Storage.commit and commit_offer write these; tests/test_stats.py and the dispatch tests
check the writes themselves."""
from datetime import datetime, timedelta, timezone

import pytest

from callback.domain import records as m
from callback.domain import stats
from callback.domain import transitions as t
from callback.domain.rules import RetryDecision, number_refused

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ENDING_REMOVES = {"pending_queue", "sweep_status", "sweep_at"}


def dialing(*, attempts=0, status=m.DIALING, agent_call_sid="CA-agent", customer_call_sid=None,
            requested_minutes_ago=10):
    attempt = m.Attempt("att1", T0, "alice", agent_call_sid=agent_call_sid, customer_call_sid=customer_call_sid)
    return m.Callback("CB1", "+12125551234", "Main Line", "Sales", T0 - timedelta(minutes=requested_minutes_ago),
                      T0 - timedelta(minutes=12), 10, T0, T0 + timedelta(hours=2), status=status,
                      attempts=attempts, attempt_id="att1", phase="agent-ringing", agent_id="alice",
                      agent_call_sid=agent_call_sid, customer_call_sid=customer_call_sid, history=(attempt,))


def pending():
    return m.Callback("CB2", "+12125551234", "Main Line", "Sales", T0, T0, 10, T0, T0 + timedelta(hours=2))


def test_advancing_sets_the_phase_and_the_sweep_time_as_read():
    change = t.advance(dialing(), phase="agent-deciding", sweep_at=T0 + timedelta(seconds=40), now=T0)
    assert change.set == {"phase": "agent-deciding", "status": m.DIALING, "sweep_status": m.DIALING,
                          "sweep_at": T0 + timedelta(seconds=40)}
    assert change.attempt == t.AttemptChange("att1", {})
    assert (change.remove, change.counts, change.releases_guard) == ((), {}, False)
    assert change.condition == t.AsRead()
    assert change.status(m.DIALING) == m.DIALING


@pytest.mark.parametrize("agent_sid, customer_sid, learned", [
    (None, None, {}),
    ("CA-agent", None, {}),  # already known
    ("CA-other", None, {"agent_call_sid": "CA-other"}),
    (None, "CA-customer", {"customer_call_sid": "CA-customer"}),
    ("CA-other", "CA-customer", {"agent_call_sid": "CA-other", "customer_call_sid": "CA-customer"}),
])
def test_call_sids_learned_go_on_the_callback_and_its_attempt(agent_sid, customer_sid, learned):
    change = t.advance(dialing(), phase="customer-ringing", sweep_at=T0, now=T0, agent_call_sid=agent_sid,
                       customer_call_sid=customer_sid)
    assert {k: v for k, v in change.set.items() if k.endswith("call_sid")} == learned
    assert change.attempt.fields == learned


@pytest.mark.parametrize("attempts, waited_minutes, expected", [
    (0, 0.5, {stats.CONNECTED: 1, "wait_0": 1, stats.FIRST_ATTEMPT_CONNECTED: 1}),
    (0, 10, {stats.CONNECTED: 1, "wait_3": 1, stats.FIRST_ATTEMPT_CONNECTED: 1}),
    (2, 200, {stats.CONNECTED: 1, "wait_8": 1}),
])
def test_the_first_move_to_connected_is_counted_with_its_wait(attempts, waited_minutes, expected):
    cb = dialing(attempts=attempts, requested_minutes_ago=waited_minutes)
    change = t.advance(cb, phase="connected", sweep_at=T0 + timedelta(hours=4), now=T0, connected=True)
    assert change.set["status"] == change.set["sweep_status"] == m.CONNECTED
    # The moment they were connected: a completed attempt's talk time counts from it.
    assert change.attempt.fields == {"outcome": "connected", "connected_at": T0}
    assert change.counts == expected and change.counted_at == T0
    assert not change.releases_guard


def test_a_connected_callback_moving_on_counts_nothing_again():
    change = t.advance(dialing(status=m.CONNECTED), phase="connected", sweep_at=T0, now=T0, connected=True)
    assert change.counts == {} and "outcome" not in change.attempt.fields


@pytest.mark.parametrize("counted, attempts_after", [(True, 2), (False, 1)])
def test_an_attempt_ending_with_a_retry_goes_back_to_pending(counted, attempts_after):
    cb = dialing(attempts=1)
    due = T0 + timedelta(minutes=5)
    change = t.end_attempt(cb, outcome="no-answer", counted=counted, now=T0,
                           decision=RetryDecision(False, due, "retry"), customer_call_sid="CA-customer",
                           error_code=None)
    assert change.set == {"attempts": attempts_after, "customer_call_sid": "CA-customer", "status": m.PENDING,
                          "due_at": due, "pending_queue": "Sales", "sweep_status": m.PENDING, "sweep_at": due}
    assert change.remove == ("phase",)
    assert change.attempt == t.AttemptChange("att1", {"outcome": "no-answer", "ended_at": T0, "counted": counted,
                                                      "customer_call_sid": "CA-customer"})
    assert (change.counts, change.releases_guard, change.condition) == ({}, False, t.AsRead())
    assert change.status(cb.status) == m.PENDING


def test_a_retry_due_after_the_expiration_is_swept_at_the_expiration():
    cb = dialing()
    change = t.end_attempt(cb, outcome="busy", counted=True, now=T0,
                           decision=RetryDecision(False, cb.expires_at + timedelta(minutes=1), "retry"))
    assert change.set["sweep_at"] == cb.expires_at


@pytest.mark.parametrize("decision, status, counter", [
    (RetryDecision(True, None, "max-retries"), m.EXPIRED, {stats.EXPIRED: 1}),
    (RetryDecision(True, None, "expiration-time"), m.EXPIRED, {stats.EXPIRED: 1}),
    (number_refused(), m.FAILED, {stats.NUMBER_REFUSED: 1}),
    (RetryDecision(True, None, "something-else", status=m.FAILED), m.FAILED, {}),
])
def test_an_attempt_ending_the_callback_frees_its_number(decision, status, counter):
    change = t.end_attempt(dialing(), outcome="number-refused", counted=False, now=T0, decision=decision,
                           error_code=21217)
    assert change.set == {"attempts": 0, "status": status, "ended_reason": decision.reason, "ended_at": T0}
    assert set(change.remove) == ENDING_REMOVES  # the phase stays, as it was
    assert change.attempt.fields == {"outcome": "number-refused", "ended_at": T0, "counted": False,
                                     "error_code": 21217}
    assert change.releases_guard and change.counts == counter and change.counted_at == T0
    assert change.condition == t.AsRead()


def test_completing_ends_the_attempt_and_the_callback():
    change = t.complete(dialing(status=m.CONNECTED), T0)
    assert change.set == {"status": m.COMPLETED, "ended_reason": "completed", "ended_at": T0}
    assert set(change.remove) == ENDING_REMOVES | {"phase"}
    assert change.attempt == t.AttemptChange("att1", {"outcome": "completed", "ended_at": T0})
    assert change.counts == {stats.COMPLETED: 1} and change.releases_guard
    assert change.condition == t.AsRead()


def test_postponing_the_sweep_changes_only_its_time():
    change = t.postpone_sweep(dialing(), T0 + timedelta(minutes=1))
    assert change == t.CallbackChange(set={"sweep_at": T0 + timedelta(minutes=1)})
    assert change.attempt is None and change.condition == t.AsRead()


@pytest.mark.parametrize("make, status, reason, condition, counter", [
    (lambda cb: t.expire(cb, T0), m.EXPIRED, "expiration-time", t.StillPending(expired_by=T0), stats.EXPIRED),
    (lambda cb: t.expire(cb, T0, reason="queue-removed"), m.EXPIRED, "queue-removed",
     t.StillPending(expired_by=T0), stats.EXPIRED),
    (lambda cb: t.cancel(cb, T0), m.CANCELED, "canceled by admin", t.StillPending(), stats.CANCELED),
])
def test_a_pending_callback_ends_on_its_own_condition_not_as_read(make, status, reason, condition, counter):
    change = make(pending())
    assert change.set == {"status": status, "ended_reason": reason, "ended_at": T0}
    assert set(change.remove) == ENDING_REMOVES
    assert change.attempt is None  # no attempt is open: nothing to find in the history
    assert change.condition == condition
    assert change.counts == {counter: 1} and change.releases_guard and change.counted_at == T0


def holding_in_offer(agent_call_sid=None):
    return m.WaitingCall("CA-caller", "Main Line", "Sales", "+12125551234", T0, status=m.CONNECTING,
                         agent_id="alice", agent_call_sid=agent_call_sid, offer_id="offer1",
                         phase="agent-ringing")


@pytest.mark.parametrize("known, reported, learned", [
    (None, None, {}), (None, "CA-agent", {"agent_call_sid": "CA-agent"}),
    ("CA-agent", "CA-agent", {}), ("CA-agent", None, {}),
])
def test_an_offer_advancing_sets_its_phase_and_learns_the_agent_call(known, reported, learned):
    change = t.advance_offer(holding_in_offer(known), phase="agent-deciding", agent_call_sid=reported)
    assert change == t.OfferChange(set={"phase": "agent-deciding", **learned})


def test_an_offer_over_before_the_caller_joined_puts_them_back_in_line_with_their_place():
    change = t.back_in_line(holding_in_offer("CA-agent"))
    assert change.set == {"status": m.WAITING, "waiting_queue": "Sales"}
    assert set(change.remove) == {"agent_id", "agent_call_sid", "offer_id", "phase", "offered_at"}
    assert "joined_at" not in change.set and not change.leaves_line and not change.counts


@pytest.mark.parametrize("answered_at, counts", [(None, {}), (T0, {stats.ANSWERED: 1})])
def test_a_caller_out_of_the_line_is_counted_answered_only_when_they_joined_the_agent(answered_at, counts):
    change = t.leave_line(holding_in_offer("CA-agent"), answered_at=answered_at)
    assert change.leaves_line and (change.set, change.remove) == ({}, ())
    assert (change.counts, change.counted_at) == (counts, answered_at)
