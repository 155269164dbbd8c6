"""The attempt state machine, walked pair by pair: every state × event, including those
that must change nothing. Plain Python: no Flask, Twilio or DynamoDB."""
import itertools

import pytest

from callback import attempts as a
from callback import labels

AGENT_SID = "CA" + "a" * 32
CUSTOMER_SID = "CA" + "b" * 32
OTHER_SID = "CA" + "9" * 32

# Every pair that does something. Any pair not here must change nothing.
EXPECTED = {
    (a.AGENT_RINGING, a.AGENT_PLACED): a.AGENT_RINGING,
    (a.AGENT_RINGING, a.AGENT_ANSWERED): a.AGENT_DECIDING,
    (a.AGENT_RINGING, a.AGENT_ACCEPTED): a.CUSTOMER_RINGING,
    (a.AGENT_RINGING, a.AGENT_DECLINED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_SILENT): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_MISSED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_HUNG_UP): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_NOT_PLACED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_REFUSED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_PLACED): a.AGENT_DECIDING,
    (a.AGENT_DECIDING, a.AGENT_ACCEPTED): a.CUSTOMER_RINGING,
    (a.AGENT_DECIDING, a.AGENT_DECLINED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_SILENT): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_MISSED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_HUNG_UP): a.ENDED,
    **{(s, e): a.ENDED for s in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED)
       for e in (a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED, a.CONFERENCE_ENDED,
                 a.CUSTOMER_UNANSWERED, a.CUSTOMER_HUNG_UP, a.CUSTOMER_LEFT)},
    (a.CUSTOMER_RINGING, a.AGENT_PLACED): a.CUSTOMER_RINGING,
    (a.CUSTOMER_RINGING, a.CUSTOMER_PLACED): a.CUSTOMER_RINGING,
    (a.CUSTOMER_RINGING, a.CUSTOMER_HUMAN): a.CUSTOMER_ANSWERED,
    (a.CUSTOMER_RINGING, a.CUSTOMER_MACHINE): a.ENDED,
    (a.CUSTOMER_RINGING, a.CUSTOMER_JOINED): a.CONNECTED,
    (a.CUSTOMER_RINGING, a.DIAL_REFUSED): a.ENDED,
    (a.CUSTOMER_RINGING, a.DIAL_FAILED): a.ENDED,
    (a.CUSTOMER_ANSWERED, a.CUSTOMER_PLACED): a.CUSTOMER_ANSWERED,
    (a.CUSTOMER_ANSWERED, a.CUSTOMER_JOINED): a.CONNECTED,
    (a.CONNECTED, a.CUSTOMER_PLACED): a.CONNECTED,
    **{(a.CONNECTED, e): a.ENDED for e in (a.CONFERENCE_ENDED, a.CUSTOMER_LEFT, a.CUSTOMER_HUNG_UP,
                                           a.CUSTOMER_UNANSWERED, a.AGENT_LEFT, a.AGENT_HUNG_UP,
                                           a.AGENT_MISSED)},
    (a.ENDED, a.AGENT_HUNG_UP): a.ENDED,
    (a.ENDED, a.AGENT_MISSED): a.ENDED,
    (a.ENDED, a.AGENT_NOT_PLACED): a.ENDED,
}


def attempt(state, agent_sid=AGENT_SID, customer_sid=CUSTOMER_SID):
    return a.Attempt("CB1", "A1", state, agent_sid, customer_sid)


def event(kind, sid=None, attempt_id="A1", status="no-answer"):
    if sid is None:
        sid = {a.AGENT: AGENT_SID, a.CUSTOMER: CUSTOMER_SID}.get(a.LEG_OF[kind])
    return a.Event(kind, "CB1", attempt_id, sid, status)


def kinds(step):
    return [type(e) for e in step.effects]


@pytest.mark.parametrize("state, kind", list(itertools.product(a.STATES, a.EVENTS)))
def test_every_state_and_event(state, kind):
    step = a.apply(attempt(state), event(kind))
    if (state, kind) not in EXPECTED:
        assert step.ignored and step.state == state and step.effects == ()
        return
    assert not step.ignored and step.state == EXPECTED[(state, kind)]
    effects = kinds(step)
    # Only an accepted callback dials the customer.
    assert (a.DialCustomer in effects) == (kind == a.AGENT_ACCEPTED)
    # Only what the customer did (or Twilio's transient dial error, after a few) may count.
    for effect in step.effects:
        if isinstance(effect, a.EndAttempt) and effect.counted:
            assert kind in (a.CUSTOMER_MACHINE, a.CUSTOMER_UNANSWERED, a.CUSTOMER_HUNG_UP,
                            a.CUSTOMER_LEFT)
    # The agent's own call ending always frees them; nothing else leaves them booked forever.
    if kind in (a.AGENT_HUNG_UP, a.AGENT_MISSED):
        assert a.ReleaseAgent in effects
    # An attempt that ends while the customer may be on the line hangs them up (or they
    # are the one who hung up, or Twilio never placed the call).
    if state in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED) and step.state == a.ENDED and kind.startswith(
            ("agent", "conference")):
        assert a.HangUp(a.CUSTOMER) in step.effects
        assert a.EndAttempt("agent-hung-up", False) in step.effects
    # Once ended, only the agent's release is left.
    if state == a.ENDED:
        assert effects == [a.ReleaseAgent]


def test_the_table_names_only_known_states_and_events():
    for (state, kind), (following, effects) in a.TABLE.items():
        assert state in a.STATES and kind in a.EVENTS and following in a.STATES
        assert isinstance(effects, tuple)
    assert set(a.TABLE) == set(EXPECTED)


@pytest.mark.parametrize("state", a.STATES)
@pytest.mark.parametrize("kind", a.EVENTS)
def test_an_event_of_another_attempt_changes_nothing(state, kind):
    step = a.apply(attempt(state), event(kind, attempt_id="A0"))
    assert step.ignored == "another attempt" and step.effects == () and step.state == state


@pytest.mark.parametrize("kind", [k for k in a.EVENTS if a.LEG_OF[k] in (a.AGENT, a.CUSTOMER)])
@pytest.mark.parametrize("state", a.STATES)
def test_an_event_of_another_call_changes_nothing(state, kind):
    """A late status of an earlier call (a retry's leg, a duplicate) cannot touch this one."""
    step = a.apply(attempt(state), event(kind, sid=OTHER_SID))
    assert step.ignored and step.effects == () and step.state == state


def test_an_unknown_leg_is_learned_from_its_first_event():
    """A dial request that timed out leaves the leg unknown: its status callback settles it."""
    step = a.apply(attempt(a.CUSTOMER_RINGING, customer_sid=None),
                   event(a.CUSTOMER_UNANSWERED, sid=OTHER_SID, status="busy"))
    assert step.customer_call_sid == OTHER_SID and step.state == a.ENDED
    assert a.EndAttempt("busy", True) in step.effects


def test_agent_leaving_before_the_customer_joined_counts_nothing_and_hangs_up_the_customer():
    step = a.apply(attempt(a.CUSTOMER_ANSWERED), event(a.AGENT_LEFT))
    assert step.effects == (a.HangUp(a.CUSTOMER), a.EndAttempt("agent-hung-up", False),
                            a.ReleaseAgent(a.AVAILABLE))


def test_connected_only_when_the_customer_joins():
    assert a.apply(attempt(a.CUSTOMER_RINGING), event(a.CUSTOMER_HUMAN)).state == a.CUSTOMER_ANSWERED
    assert a.apply(attempt(a.CUSTOMER_ANSWERED), event(a.CUSTOMER_JOINED)).effects == (a.Connect(),)


@pytest.mark.parametrize("answered_by, expected", [
    ("human", a.CUSTOMER_HUMAN), ("unknown", a.CUSTOMER_HUMAN), ("", a.CUSTOMER_HUMAN),
    (None, a.CUSTOMER_HUMAN), ("machine_start", a.CUSTOMER_MACHINE),
    ("machine_end_beep", a.CUSTOMER_MACHINE), ("machine_end_silence", a.CUSTOMER_MACHINE),
    ("machine_end_other", a.CUSTOMER_MACHINE), ("fax", a.CUSTOMER_MACHINE),
])
def test_answered_by_policy(answered_by, expected):
    assert a.customer_answered(answered_by) == expected


@pytest.mark.parametrize("digits, expected", [("1", a.AGENT_ACCEPTED), ("2", a.AGENT_DECLINED),
                                              ("", a.AGENT_DECLINED), ("11", a.AGENT_DECLINED),
                                              ("*", a.AGENT_DECLINED)])
def test_only_1_accepts(digits, expected):
    assert a.agent_pressed(digits) == expected


def test_conference_participants_are_told_apart_by_call_sid():
    view = attempt(a.CUSTOMER_RINGING, customer_sid=None)
    assert a.conference_event("participant-join", AGENT_SID, view) is None
    assert a.conference_event("participant-leave", AGENT_SID, view) == a.AGENT_LEFT
    assert a.conference_event("participant-join", OTHER_SID, view) == a.CUSTOMER_JOINED
    assert a.conference_event("participant-leave", OTHER_SID, view) == a.CUSTOMER_LEFT
    assert a.conference_event("conference-end", None, view) == a.CONFERENCE_ENDED
    assert a.conference_event("conference-start", None, view) is None


def test_every_outcome_the_table_writes_has_a_label():
    outcomes = {e.outcome for _, effects in a.TABLE.values() for e in effects
                if isinstance(e, a.EndAttempt)}
    outcomes |= {"busy", "no-answer", "failed", "canceled", "completed", "connected", "number-refused"}
    outcomes.discard("{status}")
    assert outcomes <= set(labels.OUTCOME_LABELS)


def test_the_readme_prints_the_table_as_it_is():
    import os

    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
        assert a.table_markdown() in f.read()
