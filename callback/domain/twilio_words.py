"""Twilio's words read as events of the attempt machine (`attempts.py`): a leg's final
status, the agent's key, a conference's status callback. Plain Python."""
from callback.domain.attempts import (
    AGENT_ACCEPTED,
    AGENT_DECLINED,
    AGENT_HUNG_UP,
    AGENT_JOINED,
    AGENT_LEFT,
    AGENT_MISSED,
    CONFERENCE_ENDED,
    CUSTOMER_HUNG_UP,
    CUSTOMER_JOINED,
    CUSTOMER_LEFT,
    CUSTOMER_UNANSWERED,
)


def agent_call_ended(call_status):
    """The event a final status of the agent's leg stands for."""
    return AGENT_HUNG_UP if call_status == "completed" else AGENT_MISSED


def customer_call_ended(call_status):
    """The event a final status of the customer's leg stands for."""
    return CUSTOMER_HUNG_UP if call_status == "completed" else CUSTOMER_UNANSWERED


def agent_pressed(digits):
    """Only 1 accepts; any other key, or silence, declines."""
    return AGENT_ACCEPTED if digits == "1" else AGENT_DECLINED


def conference_event(status_event, call_sid, attempt):
    """A conference status callback as an event of this attempt (or offer), or None.

    A participant is the agent when their CallSid is the agent leg's, or when the other
    leg's CallSid is known and theirs is not it (a holding caller's always is: the agent's
    may not be, when ringing them timed out); anyone else joining is the customer (whose
    CallSid we may not know yet, when the dial request timed out).
    """
    if status_event == "conference-end":
        return CONFERENCE_ENDED
    if status_event not in ("participant-join", "participant-leave") or not call_sid:
        return None
    joined = status_event == "participant-join"
    other = attempt.customer_call_sid
    if call_sid == attempt.agent_call_sid or (other and call_sid != other and not attempt.agent_call_sid):
        return AGENT_JOINED if joined else AGENT_LEFT
    return CUSTOMER_JOINED if joined else CUSTOMER_LEFT
