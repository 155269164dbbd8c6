"""Answering-machine detection on the customer's leg, per IVR: asynchronous (the default),
synchronous, or off; and what a verdict means for an attempt.

Asynchronous: the customer hears a greeting from the first second (TwiML inline on the
create, no webhook between the answer and the first word), then joins the agent; Twilio
posts its verdict (`AnsweredBy`) to a webhook of its own, usually 2-4 s after the answer.
A machine or fax before the join ends the leg, the attempt counting as `machine`
(`attempts.CUSTOMER_MACHINE`, as under synchronous detection). A verdict after the join
never cuts the call: a person who answers with a long hello is often judged a machine.
The agent hears a notice and may end the conference with star; only a conference the
agent ended after such a verdict counts as `machine` (`attempts.MACHINE_HEARD`).

A verdict Twilio never delivers (a lost callback) would leave a voicemail talking to the
agent as a person. So a conversation whose verdict never came does not complete when it
ends: it waits (`attempts.AWAITING_VERDICT`) for Twilio's record of the customer's call,
which keeps `answered_by` once the call is complete (`UNHEARD_TABLE`). A machine or fax
there counts the try as `machine`; a person or `unknown` completes it; a verdict that
arrives meanwhile settles it the same way, and one after it changes nothing.

Synchronous: the callee hears silence until Twilio decides, then the answer webhook runs
(today's behaviour). Off: no detection; every answer is a person.

Plain Python: no Flask, Twilio or DynamoDB here.
"""
from callback.domain import attempts as a

ASYNC, SYNC, OFF = "async", "sync", "off"
MODES = (ASYNC, SYNC, OFF)
DEFAULT_MODE = ASYNC
MACHINE_ANSWERS = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
                   "fax")


def answered_by_event(answered_by):
    """Policy per AnsweredBy, synchronous or not: a machine or fax is CUSTOMER_MACHINE (it
    fails a try not yet with the agent, and only warns the agent of one that is); a person,
    `unknown` (no verdict: often a person who said little) or no detection at all is
    CUSTOMER_HUMAN."""
    return a.CUSTOMER_MACHINE if (answered_by or "").strip() in MACHINE_ANSWERS else a.CUSTOMER_HUMAN


# What may end a warned conversation, in any order: the conference's end, or either leg's
# final status. Each asks who ended the conference (the agent: `machine`), not who came first.
ENDINGS = (a.CONFERENCE_ENDED, a.CUSTOMER_HUNG_UP, a.CUSTOMER_UNANSWERED, a.AGENT_HUNG_UP, a.AGENT_MISSED)


def conference_end_event(attempt, ending_call_sid, kind=a.CONFERENCE_ENDED):
    """The event `kind` (the conference's end, or a leg's final status) stands for: the
    agent having ended the conference after a late machine verdict (`ending_call_sid`, as
    Twilio names who ended it, is their leg's) ends the attempt as `machine`; any other end
    is the conversation's end."""
    if (attempt is not None and attempt.state == a.MACHINE_HEARD and ending_call_sid
            and ending_call_sid == attempt.agent_call_sid and kind in ENDINGS):
        return a.AGENT_ENDED_MACHINE
    return kind


def recorded_verdict(call_status, answered_by):
    """The verdict event Twilio's record of the customer's call stands for (`call_status`,
    `answered_by` as a GET of the call says), or None while it cannot say: Twilio promises
    AnsweredBy on the call once it is complete, not before."""
    if call_status not in a.FINAL_CALL_STATUSES or not (answered_by or "").strip():
        return None
    return answered_by_event(answered_by)


# The sweep reads Twilio's record of a call whose verdict is awaited this many times, each
# pause twice the last; then the customer counts as a person (completed: nobody who talked
# with an agent is called again on a guess).
VERDICT_READS = 4

# Asynchronous detection, no verdict recorded: the conversation's end waits for the verdict.
# The customer's call is hung up first (Twilio keeps AnsweredBy once it is complete); its
# final status is the moment to read it. The agent is freed as ever.
_TALK_OVER = (a.CONFERENCE_ENDED, a.CUSTOMER_LEFT, a.AGENT_LEFT, a.AGENT_HUNG_UP, a.AGENT_MISSED)
_CUSTOMER_GONE = (a.CUSTOMER_HUNG_UP, a.CUSTOMER_UNANSWERED)
UNHEARD_TABLE = {
    **{(a.CONNECTED, e): (a.AWAITING_VERDICT, (a.HangUp(a.CUSTOMER),)) for e in _TALK_OVER},
    **{(s, e): (a.AWAITING_VERDICT, (a.ReadVerdict(),)) for s in (a.CONNECTED, a.AWAITING_VERDICT)
       for e in _CUSTOMER_GONE},
    (a.AWAITING_VERDICT, a.AGENT_HUNG_UP): (a.AWAITING_VERDICT, ()),
    (a.AWAITING_VERDICT, a.AGENT_MISSED): (a.AWAITING_VERDICT, ()),
    (a.AWAITING_VERDICT, a.CUSTOMER_MACHINE): (a.ENDED, (a.EndAttempt("machine", True),)),
    (a.AWAITING_VERDICT, a.CUSTOMER_HUMAN): (a.ENDED, (a.Complete(),)),
}
a.agent_end_frees_them(UNHEARD_TABLE)
VERDICT_TABLE = {**a.TABLE, **UNHEARD_TABLE}


def table_for(attempt):
    """The table an attempt's events go through: with a verdict awaited (asynchronous
    detection, none recorded) the end of the conversation waits for it."""
    return VERDICT_TABLE if attempt.verdict_awaited or attempt.state == a.AWAITING_VERDICT else a.TABLE


def greeting(company, agent_name=None, message=False):
    """What the customer hears on answering, before joining the agent (`message`: they left
    a voicemail, and are called back about it)."""
    who = f"with {agent_name}" if agent_name else "with an agent"
    why = "calling back about your message" if message else "returning your call"
    return f"Hello, this is {company} {why}, connecting you {who}."


MACHINE_NOTICE = ("The customer's line may be an answering machine. Press star to end the call; "
                  "the callback will be tried again.")
