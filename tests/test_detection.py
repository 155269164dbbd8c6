"""Asynchronous answering-machine detection as the state machine sees it: each verdict at
each moment of the customer's leg, and verdicts that come late, twice or never. Plain
Python: no Flask, Twilio or DynamoDB."""
import pytest

from callback.domain import attempts as a
from callback.domain import detection

AGENT_SID = "CA" + "a" * 32
CUSTOMER_SID = "CA" + "b" * 32
OTHER_SID = "CA" + "9" * 32


def attempt(state):
    return a.Attempt("CB1", "A1", state, AGENT_SID, CUSTOMER_SID)


def verdict(answered_by, sid=CUSTOMER_SID, attempt_id="A1"):
    return a.Event(detection.answered_by_event(answered_by), "CB1", attempt_id, sid)


def walk(state, *events):
    """The states an attempt passes through, and every effect on the way."""
    view, effects = attempt(state), []
    for event in events:
        step = a.apply(view, event)
        if not step.ignored:
            effects += step.effects
            view = a.Attempt("CB1", "A1", step.state, step.agent_call_sid, step.customer_call_sid)
    return view.state, effects


def conference_end(view, ending):
    return a.Event(detection.conference_end_event(view, ending), "CB1", "A1", ending)


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "machine_end_silence",
                                         "machine_end_other", "fax"])
def test_a_machine_before_the_join_ends_the_leg_and_counts_as_machine(answered_by):
    state, effects = walk(a.CUSTOMER_RINGING, verdict(answered_by))
    assert state == a.ENDED
    assert a.HangUp(a.CUSTOMER) in effects and a.EndAttempt("machine", True) in effects


@pytest.mark.parametrize("answered_by", ["human", "unknown", "", None])
def test_a_person_or_unknown_goes_on_to_the_agent(answered_by):
    state, effects = walk(a.CUSTOMER_RINGING, verdict(answered_by),
                          a.Event(a.CUSTOMER_JOINED, "CB1", "A1", CUSTOMER_SID))
    assert state == a.CONNECTED and effects == [a.NoteVerdict(), a.Connect()]


def test_a_machine_after_the_join_never_cuts_the_call_but_warns_the_agent():
    state, effects = walk(a.CONNECTED, verdict("machine_start"))
    assert state == a.MACHINE_HEARD and effects == [a.WarnAgent()]
    assert not any(isinstance(e, (a.HangUp, a.EndAttempt, a.Complete)) for e in effects)


def test_the_agent_ending_the_conference_after_the_warning_counts_a_machine():
    warned = attempt(a.MACHINE_HEARD)
    # The agent's star (their leg has endConferenceOnExit) is how the conference ends.
    leaves = [a.Event(a.AGENT_LEFT, "CB1", "A1", AGENT_SID),
              a.Event(a.CUSTOMER_LEFT, "CB1", "A1", CUSTOMER_SID)]
    state, effects = walk(a.MACHINE_HEARD, *leaves, conference_end(warned, AGENT_SID))
    assert state == a.ENDED
    assert effects == [a.HangUp(a.CUSTOMER), a.EndAttempt("machine", True)]


def test_the_customer_ending_it_after_the_warning_is_a_completed_call():
    warned = attempt(a.MACHINE_HEARD)
    state, effects = walk(a.MACHINE_HEARD, a.Event(a.CUSTOMER_LEFT, "CB1", "A1", CUSTOMER_SID),
                          conference_end(warned, CUSTOMER_SID))
    assert state == a.ENDED and effects == [a.Complete()]


def test_without_a_warning_whoever_ends_the_conference_completes_it():
    assert detection.conference_end_event(attempt(a.CONNECTED), AGENT_SID) == a.CONFERENCE_ENDED
    assert detection.conference_end_event(attempt(a.MACHINE_HEARD), None) == a.CONFERENCE_ENDED
    assert detection.conference_end_event(None, AGENT_SID) == a.CONFERENCE_ENDED


def test_a_final_status_before_the_conference_end_completes_the_call_the_safe_way():
    # Nobody who may have talked to the agent is called again on a guess.
    hung_up = a.Event(a.CUSTOMER_HUNG_UP, "CB1", "A1", CUSTOMER_SID, "completed")
    state, effects = walk(a.MACHINE_HEARD, hung_up)
    assert state == a.ENDED and a.Complete() in effects


@pytest.mark.parametrize("state", [a.CUSTOMER_RINGING, a.CONNECTED])
def test_a_repeated_verdict_changes_nothing_more(state):
    once = walk(state, verdict("machine_start"))
    assert walk(state, verdict("machine_start"), verdict("machine_start")) == once
    # A person's verdict is noted again, the same one (nothing to write).
    human_state, human_effects = walk(state, verdict("human"))
    twice_state, twice_effects = walk(state, verdict("human"), verdict("human"))
    assert twice_state == human_state and set(twice_effects) == set(human_effects)


@pytest.mark.parametrize("answered_by", ["machine_start", "human", "fax", "unknown"])
def test_a_late_verdict_for_an_ended_attempt_changes_nothing(answered_by):
    step = a.apply(attempt(a.ENDED), verdict(answered_by))
    assert step.ignored and step.effects == ()


@pytest.mark.parametrize("event", [verdict("machine_start", sid=OTHER_SID),
                                   verdict("machine_start", attempt_id="A0")])
def test_a_verdict_for_another_call_or_attempt_changes_nothing(event):
    for state in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED, a.CONNECTED):
        step = a.apply(attempt(state), event)
        assert step.ignored and step.state == state and step.effects == ()


def test_without_a_verdict_awaited_the_end_of_the_talk_completes_it_as_ever():
    # Synchronous or off (the verdict came with the answer, or none is asked for), or a
    # person's verdict already noted.
    state, effects = walk(a.CUSTOMER_RINGING, a.Event(a.CUSTOMER_JOINED, "CB1", "A1", CUSTOMER_SID),
                          a.Event(a.CONFERENCE_ENDED, "CB1", "A1"))
    assert state == a.ENDED and a.Complete() in effects


# -- a verdict that never came ----------------------------------------------------------

def event(kind, sid=None, status="completed"):
    if sid is None:
        sid = {a.AGENT: AGENT_SID, a.CUSTOMER: CUSTOMER_SID}.get(a.LEG_OF[kind])
    return a.Event(kind, "CB1", "A1", sid, status)


def awaited(state=a.CONNECTED):
    return a.Attempt("CB1", "A1", state, AGENT_SID, CUSTOMER_SID, verdict_awaited=True)


def walk_awaited(*events, state=a.CONNECTED):
    """As `walk`, through the table an asynchronous attempt without a verdict goes by; a
    noted verdict ends the wait, as the record does."""
    view, effects = awaited(state), []
    for made in events:
        step = a.apply(view, made, detection.table_for(view))
        if not step.ignored:
            effects += step.effects
            view = a.Attempt("CB1", "A1", step.state, step.agent_call_sid, step.customer_call_sid,
                             verdict_awaited=view.verdict_awaited and a.NoteVerdict() not in step.effects)
    return view.state, effects


TALK_OVER = (a.CONFERENCE_ENDED, a.CUSTOMER_LEFT, a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED)
CUSTOMER_GONE = (a.CUSTOMER_HUNG_UP, a.CUSTOMER_UNANSWERED)
# What an attempt awaiting its verdict does, beyond the common table. Any other pair of
# these two states is the common table's (connected) or changes nothing (awaiting).
AWAITED = {
    **{(a.CONNECTED, e): (a.AWAITING_VERDICT, (a.HangUp(a.CUSTOMER),)) for e in TALK_OVER},
    **{(s, e): (a.AWAITING_VERDICT, (a.ReadVerdict(),)) for s in (a.CONNECTED, a.AWAITING_VERDICT)
       for e in CUSTOMER_GONE},
    (a.AWAITING_VERDICT, a.AGENT_HUNG_UP): (a.AWAITING_VERDICT, (a.ReleaseAgent(a.AVAILABLE, True),)),
    (a.AWAITING_VERDICT, a.AGENT_MISSED): (a.AWAITING_VERDICT, (a.ReleaseAgent(a.AVAILABLE, True),)),
    (a.AWAITING_VERDICT, a.CUSTOMER_MACHINE): (a.ENDED, (a.EndAttempt("machine", True),)),
    (a.AWAITING_VERDICT, a.CUSTOMER_HUMAN): (a.ENDED, (a.Complete(),)),
}


@pytest.mark.parametrize("state, kind", [(s, e) for s in (a.CONNECTED, a.AWAITING_VERDICT) for e in a.EVENTS])
def test_every_pair_of_an_attempt_awaiting_its_verdict(state, kind):
    step = a.apply(awaited(state), event(kind), detection.table_for(awaited(state)))
    if (state, kind) in AWAITED:
        following, effects = AWAITED[(state, kind)]
        if kind in (a.AGENT_HUNG_UP, a.AGENT_MISSED) and state == a.CONNECTED:
            effects += (a.ReleaseAgent(a.AVAILABLE, True),)  # the agent's end frees them
        assert not step.ignored and (step.state, step.effects) == (following, effects)
    elif state == a.CONNECTED:
        assert step == a.apply(attempt(a.CONNECTED), event(kind))  # as without the wait
    else:
        assert step.ignored and step.state == a.AWAITING_VERDICT and step.effects == ()


@pytest.mark.parametrize("ending", TALK_OVER)
def test_a_lost_verdict_and_a_machine_on_record_counts_a_machine(ending):
    state, effects = walk_awaited(event(ending), event(a.CUSTOMER_HUNG_UP), verdict("machine_start"))
    assert state == a.ENDED
    assert effects[0] == a.HangUp(a.CUSTOMER) and a.ReadVerdict() in effects
    assert a.EndAttempt("machine", True) in effects and a.Complete() not in effects


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_a_lost_verdict_and_a_person_on_record_completes(answered_by):
    state, effects = walk_awaited(event(a.CUSTOMER_HUNG_UP), verdict(answered_by))
    assert state == a.ENDED and effects == [a.ReadVerdict(), a.Complete()]


def test_the_agent_is_freed_while_the_verdict_is_awaited():
    state, effects = walk_awaited(event(a.CONFERENCE_ENDED), event(a.AGENT_HUNG_UP))
    assert state == a.AWAITING_VERDICT and a.ReleaseAgent(a.AVAILABLE, True) in effects


def test_a_person_noted_after_the_join_needs_no_read():
    state, effects = walk_awaited(verdict("human"), event(a.CONFERENCE_ENDED))
    assert state == a.ENDED and effects == [a.NoteVerdict(), a.Complete()]


@pytest.mark.parametrize("answered_by", ["machine_start", "human"])
def test_a_verdict_after_the_settle_or_twice_changes_nothing(answered_by):
    settled = walk_awaited(event(a.CUSTOMER_HUNG_UP), verdict(answered_by))
    assert walk_awaited(event(a.CUSTOMER_HUNG_UP), verdict(answered_by), verdict(answered_by),
                        verdict("machine_end_beep" if answered_by == "human" else "human")) == settled


@pytest.mark.parametrize("status, answered_by, expected", [
    ("completed", "machine_start", a.CUSTOMER_MACHINE), ("completed", "machine_end_beep", a.CUSTOMER_MACHINE),
    ("completed", "fax", a.CUSTOMER_MACHINE), ("completed", "human", a.CUSTOMER_HUMAN),
    ("completed", "unknown", a.CUSTOMER_HUMAN), ("no-answer", "machine_start", a.CUSTOMER_MACHINE),
    # Twilio keeps AnsweredBy on the call once it is complete: before, or without it, no answer.
    ("in-progress", "machine_start", None), ("completed", None, None), ("completed", " ", None),
])
def test_twilios_record_of_the_call_as_a_verdict(status, answered_by, expected):
    assert detection.recorded_verdict(status, answered_by) == expected


def test_a_human_verdict_then_a_machine_one_before_the_join_keeps_the_person():
    # Twilio gives one verdict per call; a contradicting one is not acted on once answered.
    state, _ = walk(a.CUSTOMER_RINGING, verdict("human"), verdict("machine_start"))
    assert state == a.CUSTOMER_ANSWERED


def test_the_greeting_names_the_company_and_the_agent():
    assert detection.greeting("Acme", "Alice") == ("Hello, this is Acme returning your call, connecting you "
                                                   "with Alice.")
    assert detection.greeting("Acme").endswith("connecting you with an agent.")
    assert detection.greeting("Acme", "Alice", message=True) == (
        "Hello, this is Acme calling back about your message, connecting you with Alice.")
