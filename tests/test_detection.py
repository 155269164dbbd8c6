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
    assert state == a.CONNECTED and effects == [a.Connect()]


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
    human = walk(state, verdict("human"))
    assert walk(state, verdict("human"), verdict("human")) == human


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


def test_a_lost_verdict_leaves_a_person_connected_and_the_call_ends_as_ever():
    state, effects = walk(a.CUSTOMER_RINGING, a.Event(a.CUSTOMER_JOINED, "CB1", "A1", CUSTOMER_SID),
                          a.Event(a.CONFERENCE_ENDED, "CB1", "A1"))
    assert state == a.ENDED and a.Complete() in effects


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
