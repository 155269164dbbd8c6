"""The attempt state machine, walked pair by pair: every state × event, including those
that must change nothing. Plain Python: no Flask, Twilio or DynamoDB."""
import itertools

import pytest

from callback.domain import attempts as a
from callback.domain import detection, labels, offers
from callback.domain import twilio_words as words

AGENT_SID = "CA" + "a" * 32
CUSTOMER_SID = "CA" + "b" * 32
OTHER_SID = "CA" + "9" * 32

# Every pair that does something. Any pair not here must change nothing.
EXPECTED = {
    (a.AGENT_RINGING, a.AGENT_PLACED): a.AGENT_RINGING,
    (a.AGENT_RINGING, a.AGENT_ANSWERED): a.AGENT_DECIDING,
    (a.AGENT_RINGING, a.AGENT_ACCEPTED): a.AGENT_JOINING,
    (a.AGENT_RINGING, a.AGENT_DECLINED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_SILENT): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_MISSED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_HUNG_UP): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_NOT_PLACED): a.ENDED,
    (a.AGENT_RINGING, a.AGENT_REFUSED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_PLACED): a.AGENT_DECIDING,
    (a.AGENT_DECIDING, a.AGENT_ACCEPTED): a.AGENT_JOINING,
    (a.AGENT_DECIDING, a.AGENT_DECLINED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_SILENT): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_MISSED): a.ENDED,
    (a.AGENT_DECIDING, a.AGENT_HUNG_UP): a.ENDED,
    (a.AGENT_JOINING, a.AGENT_PLACED): a.AGENT_JOINING,
    (a.AGENT_JOINING, a.AGENT_JOINED): a.CUSTOMER_RINGING,
    **{(a.AGENT_JOINING, e): a.ENDED for e in (a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED,
                                               a.CONFERENCE_ENDED, a.AGENT_SILENT)},
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
    (a.CUSTOMER_RINGING, a.CUSTOMER_ON_LINE): a.ENDED,
    (a.CUSTOMER_RINGING, a.DIAL_HELD): a.ENDED,
    (a.CUSTOMER_RINGING, a.CENTER_CLOSED): a.ENDED,
    (a.CUSTOMER_RINGING, a.OUTSIDE_HOURS): a.ENDED,
    (a.CUSTOMER_ANSWERED, a.CUSTOMER_PLACED): a.CUSTOMER_ANSWERED,
    (a.CUSTOMER_ANSWERED, a.CUSTOMER_JOINED): a.CONNECTED,
    (a.CONNECTED, a.CUSTOMER_PLACED): a.CONNECTED,
    **{(a.CONNECTED, e): a.ENDED for e in (a.CONFERENCE_ENDED, a.CUSTOMER_LEFT, a.CUSTOMER_HUNG_UP,
                                           a.CUSTOMER_UNANSWERED, a.AGENT_LEFT, a.AGENT_HUNG_UP,
                                           a.AGENT_MISSED)},
    # A late machine verdict warns the agent; after it only the conference's end (who ended
    # it) or a leg's final status closes the attempt, never a participant's leave.
    (a.CONNECTED, a.CUSTOMER_MACHINE): a.MACHINE_HEARD,
    # A person's verdict after the join is noted: the end of the talk need not wait for it.
    (a.CONNECTED, a.CUSTOMER_HUMAN): a.CONNECTED,
    **{(a.MACHINE_HEARD, e): a.ENDED for e in (a.CONFERENCE_ENDED, a.CUSTOMER_HUNG_UP, a.CUSTOMER_UNANSWERED,
                                               a.AGENT_HUNG_UP, a.AGENT_MISSED, a.AGENT_ENDED_MACHINE)},
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
    # The customer is dialed only once the agent is in the conference.
    assert (a.DialCustomer in effects) == ((state, kind) == (a.AGENT_JOINING, a.AGENT_JOINED))
    # Connected only from a state the agent's join led to: never before they are in.
    if a.Connect in effects:
        assert state in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED)
    # Accepted but not in the conference: the customer was never dialed, nothing counts.
    if state == a.AGENT_JOINING and step.state == a.ENDED:
        assert a.EndAttempt("agent-hung-up", False) in step.effects and a.ReleaseAgent in effects
        assert a.HangUp(a.CUSTOMER) not in step.effects
    # Only what the customer did (or Twilio's transient dial error, after a few; or the agent
    # ending a line they were warned is a machine) may count.
    for effect in step.effects:
        if isinstance(effect, a.EndAttempt) and effect.counted:
            assert kind in (a.CUSTOMER_MACHINE, a.CUSTOMER_UNANSWERED, a.CUSTOMER_HUNG_UP,
                            a.CUSTOMER_LEFT) or (state, kind) == (a.MACHINE_HEARD, a.AGENT_ENDED_MACHINE)
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
    # Left the conference, not (yet) their call: freed when Twilio says it ended.
    assert step.effects == (a.HangUp(a.CUSTOMER), a.EndAttempt("agent-hung-up", False),
                            a.ReleaseAgent(a.AVAILABLE, call_over=False))


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
    assert detection.answered_by_event(answered_by) == expected


@pytest.mark.parametrize("digits, expected", [("1", a.AGENT_ACCEPTED), ("2", a.AGENT_DECLINED),
                                              ("", a.AGENT_DECLINED), ("11", a.AGENT_DECLINED),
                                              ("*", a.AGENT_DECLINED)])
def test_only_1_accepts(digits, expected):
    assert words.agent_pressed(digits) == expected


def test_conference_participants_are_told_apart_by_call_sid():
    view = attempt(a.CUSTOMER_RINGING, customer_sid=None)
    assert words.conference_event("participant-join", AGENT_SID, view) == a.AGENT_JOINED
    assert words.conference_event("participant-leave", AGENT_SID, view) == a.AGENT_LEFT
    assert words.conference_event("participant-join", OTHER_SID, view) == a.CUSTOMER_JOINED
    assert words.conference_event("participant-leave", OTHER_SID, view) == a.CUSTOMER_LEFT
    assert words.conference_event("conference-end", None, view) == a.CONFERENCE_ENDED
    assert words.conference_event("conference-start", None, view) is None


# A holding caller's offer: every pair that does something, the rest change nothing.
CALLER_SID = "CA" + "c" * 32
NOT_TAKEN = {
    (a.AGENT_RINGING, a.AGENT_DECLINED): a.DECLINED,
    (a.AGENT_RINGING, a.AGENT_MISSED): a.MISSED,
    (a.AGENT_RINGING, a.AGENT_HUNG_UP): a.AVAILABLE,
    (a.AGENT_RINGING, a.AGENT_NOT_PLACED): a.AVAILABLE,
    (a.AGENT_RINGING, a.AGENT_REFUSED): a.REFUSED,
    (a.AGENT_RINGING, a.AGENT_SILENT): a.DECLINED,
    (a.AGENT_DECIDING, a.AGENT_DECLINED): a.DECLINED,
    (a.AGENT_DECIDING, a.AGENT_MISSED): a.DECLINED,
    (a.AGENT_DECIDING, a.AGENT_HUNG_UP): a.AVAILABLE,
    (a.AGENT_DECIDING, a.AGENT_SILENT): a.DECLINED,
    **{(a.AGENT_JOINING, e): a.AVAILABLE for e in (a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED,
                                                     a.CONFERENCE_ENDED, a.AGENT_SILENT)},
    **{(offers.CALLER_JOINING, e): a.AVAILABLE for e in (a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED,
                                                      a.CONFERENCE_ENDED, a.CALLER_NOT_MOVED)},
}
OFFER_EXPECTED = {
    **{pair: a.ENDED for pair in NOT_TAKEN},
    (a.AGENT_RINGING, a.AGENT_PLACED): a.AGENT_RINGING,
    (a.AGENT_RINGING, a.AGENT_ANSWERED): a.AGENT_DECIDING,
    (a.AGENT_RINGING, a.AGENT_ACCEPTED): a.AGENT_JOINING,
    (a.AGENT_DECIDING, a.AGENT_PLACED): a.AGENT_DECIDING,
    (a.AGENT_DECIDING, a.AGENT_ACCEPTED): a.AGENT_JOINING,
    (a.AGENT_JOINING, a.AGENT_PLACED): a.AGENT_JOINING,
    (a.AGENT_JOINING, a.AGENT_JOINED): offers.CALLER_JOINING,
    (offers.CALLER_JOINING, a.AGENT_PLACED): offers.CALLER_JOINING,
    (offers.CALLER_JOINING, a.CUSTOMER_JOINED): a.ENDED,
    (offers.CALLER_JOINING, a.CUSTOMER_LEFT): a.ENDED,
    (offers.CALLER_JOINING, a.CALLER_GONE): a.ENDED,
    # A caller who hangs up before the agent took them leaves through the offer.
    (a.AGENT_RINGING, a.CALLER_GONE): a.ENDED,
    (a.AGENT_DECIDING, a.CALLER_GONE): a.ENDED,
    (a.AGENT_JOINING, a.CALLER_GONE): a.ENDED,
    (a.ENDED, a.AGENT_HUNG_UP): a.ENDED,
    (a.ENDED, a.AGENT_MISSED): a.ENDED,
    (a.ENDED, a.AGENT_NOT_PLACED): a.ENDED,
}


def offer(state, agent_sid=AGENT_SID):
    return a.Attempt(CALLER_SID, "O1", state, agent_sid, CALLER_SID)


def offer_event(kind, sid=None, offer_id="O1", status="no-answer"):
    if sid is None:
        sid = AGENT_SID if a.LEG_OF[kind] == a.AGENT else CALLER_SID
    return a.Event(kind, CALLER_SID, offer_id, sid, status)


@pytest.mark.parametrize("state, kind", list(itertools.product(offers.OFFER_STATES, a.EVENTS)))
def test_every_offer_state_and_event(state, kind):
    step = a.apply(offer(state), offer_event(kind), offers.OFFER_TABLE)
    if (state, kind) not in OFFER_EXPECTED:
        assert step.ignored and step.state == state and step.effects == ()
        return
    assert not step.ignored and step.state == OFFER_EXPECTED[(state, kind)]
    effects = kinds(step)
    # The caller is moved only once the agent is in the conference; nothing of a callback
    # happens to a holding caller.
    assert (a.MoveCaller in effects) == ((state, kind) == (a.AGENT_JOINING, a.AGENT_JOINED))
    assert not {a.DialCustomer, a.EndAttempt, a.RefuseNumber, a.Connect, a.Complete} & set(effects)
    # Not taken: back in line with their place, the agent released for the reason.
    if (state, kind) in NOT_TAKEN:
        assert a.BackInLine() in step.effects
        assert a.ReleaseAgent(NOT_TAKEN[(state, kind)], kind in a.AGENT_CALL_OVER) in step.effects
    else:
        assert a.BackInLine not in effects
    # Out of the line only once with the agent, or gone.
    if a.LeaveLine in effects:
        assert kind in (a.CUSTOMER_JOINED, a.CUSTOMER_LEFT, a.CALLER_GONE)
    # An offer that ends leaves no caller in limbo: back in line or out of it, once.
    if state != a.ENDED and step.state == a.ENDED:
        assert effects.count(a.BackInLine) + effects.count(a.LeaveLine) == 1
    if kind in (a.AGENT_HUNG_UP, a.AGENT_MISSED):
        assert a.ReleaseAgent in effects
    if state == a.ENDED:
        assert effects == [a.ReleaseAgent]


def test_the_offer_table_names_only_its_states_and_known_events():
    for (state, kind), (following, effects) in offers.OFFER_TABLE.items():
        assert state in offers.OFFER_STATES and kind in a.EVENTS and following in offers.OFFER_STATES
    assert set(offers.OFFER_TABLE) == set(OFFER_EXPECTED)


@pytest.mark.parametrize("state", offers.OFFER_STATES)
@pytest.mark.parametrize("kind", a.EVENTS)
def test_an_event_of_another_offer_or_call_changes_nothing(state, kind):
    """A late or repeated event of an earlier offer of the same caller, or of another agent
    call, cannot touch this offer."""
    step = a.apply(offer(state), offer_event(kind, offer_id="O0"), offers.OFFER_TABLE)
    assert step.ignored == "another attempt" and step.effects == () and step.state == state
    if a.LEG_OF[kind] != a.CONFERENCE:
        step = a.apply(offer(state), offer_event(kind, sid=OTHER_SID), offers.OFFER_TABLE)
        assert step.ignored and step.effects == () and step.state == state


def test_an_offer_participant_is_the_caller_only_by_their_own_call_sid():
    view = offer(offers.CALLER_JOINING, agent_sid=None)
    assert words.conference_event("participant-join", CALLER_SID, view) == a.CUSTOMER_JOINED
    assert words.conference_event("participant-leave", CALLER_SID, view) == a.CUSTOMER_LEFT
    assert words.conference_event("participant-leave", OTHER_SID, view) == a.AGENT_LEFT
    assert words.conference_event("participant-join", OTHER_SID, view) == a.AGENT_JOINED


def test_a_customer_joining_before_the_agent_is_in_changes_nothing():
    """Defence in depth: only the agent's join leads to dialing, so a customer's join
    before it (a stray or forged participant) cannot make the attempt connected."""
    for state in (a.AGENT_RINGING, a.AGENT_DECIDING, a.AGENT_JOINING):
        assert a.apply(attempt(state), event(a.CUSTOMER_JOINED)).ignored
        assert a.apply(offer(state), offer_event(a.CUSTOMER_JOINED), offers.OFFER_TABLE).ignored


def test_every_outcome_the_table_writes_has_a_label():
    outcomes = {e.outcome for _, effects in a.TABLE.values() for e in effects
                if isinstance(e, a.EndAttempt)}
    outcomes |= {"busy", "no-answer", "failed", "canceled", "completed", "connected", "number-refused"}
    outcomes.discard("{status}")
    assert outcomes <= set(labels.OUTCOME_LABELS)


def test_the_readme_prints_the_table_as_it_is():
    import os

    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
        readme = f.read()
    assert labels.table_markdown() in readme and labels.table_markdown(offers.OFFER_TABLE) in readme
    assert labels.table_markdown(detection.UNHEARD_TABLE) in readme


@pytest.mark.parametrize("table", [a.TABLE, offers.OFFER_TABLE], ids=["callback", "offer"])
def test_an_agent_is_freed_now_only_by_the_end_of_their_own_call(table):
    """A phone is busy until Twilio says its call ended: every release but those on the
    agent's own final status (or a call never placed) waits for that end."""
    for (state, kind) in table:
        view = offer(state) if table is offers.OFFER_TABLE else attempt(state)
        made = offer_event(kind) if table is offers.OFFER_TABLE else event(kind)
        for effect in a.apply(view, made, table).effects:
            if isinstance(effect, a.ReleaseAgent):
                assert effect.call_over == (kind in a.AGENT_CALL_OVER), (state, kind)
