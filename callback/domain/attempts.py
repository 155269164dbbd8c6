"""The lifecycle of one callback attempt, and of one offer of a holding caller, as data.

Events reach an attempt from outside in any order: Twilio's status callbacks, the agent's
key press, conference participant events, the dial request's own result, and the sweep's
reading of a call it has not heard about. `TABLE` maps (state, event) to the next state
and the effects to carry out; `apply` is the one function that reads it, and the one
place that ignores an event not meant for the attempt as it stands. The dispatcher
carries out the effects, each write conditional on the state it was computed from.

A holding caller offered to an agent is the same machine over `offers.OFFER_TABLE`, with
the same events, effects and `apply`.

Plain Python: no Flask, Twilio or DynamoDB here.
"""
from dataclasses import dataclass

# -- states -----------------------------------------------------------------------------
AGENT_RINGING = "agent-ringing"          # the agent's phone rings (or may: leg unknown)
AGENT_DECIDING = "agent-deciding"        # the agent answered, hears the whisper; 1 accepts
AGENT_JOINING = "agent-joining"          # accepted: the agent is on the way into the conference
CUSTOMER_RINGING = "customer-ringing"    # accepted: the customer rings, the agent hears ringing
CUSTOMER_ANSWERED = "customer-answered"  # a person answered and is on the way in
CONNECTED = "connected"                  # both are in the conference
MACHINE_HEARD = "connected-machine"      # both in, and a late verdict says machine (detection.py)
AWAITING_VERDICT = "verdict-awaited"     # talked without a verdict: Twilio's record says (detection.py)
ENDED = "ended"                          # closed; only the agent's own call may still end
STATES = (AGENT_RINGING, AGENT_DECIDING, AGENT_JOINING, CUSTOMER_RINGING, CUSTOMER_ANSWERED, CONNECTED,
          MACHINE_HEARD, AWAITING_VERDICT, ENDED)
OPEN_STATES = STATES[:-1]

# -- legs -------------------------------------------------------------------------------
AGENT = "agent"
CUSTOMER = "customer"
CONFERENCE = "conference"

# -- events -----------------------------------------------------------------------------
AGENT_PLACED = "agent-placed"            # Twilio accepted the call to the agent: its CallSid
AGENT_ANSWERED = "agent-answered"        # the agent's phone picked up (person or machine)
AGENT_ACCEPTED = "agent-accepted"        # pressed 1 during the whisper
AGENT_DECLINED = "agent-declined"        # another key, silence, or a machine
AGENT_SILENT = "agent-silent"            # Twilio says on the line, long past the whisper
                                         # (or past accepting, and not in the conference)
AGENT_JOINED = "agent-joined"            # participant-join with the agent's CallSid
AGENT_LEFT = "agent-left"                # left the conference
AGENT_MISSED = "agent-missed"            # final status busy / no-answer / failed / canceled
AGENT_HUNG_UP = "agent-hung-up"          # final status completed
AGENT_NOT_PLACED = "agent-not-placed"    # dial error, or Twilio holds no such call
AGENT_REFUSED = "agent-refused"          # Twilio refuses the agent's number for good
AGENT_ENDED_MACHINE = "agent-ended-machine"  # the agent ended the conference on a machine verdict
CUSTOMER_PLACED = "customer-placed"      # Twilio accepted the call to the customer: its CallSid
CUSTOMER_HUMAN = "customer-human"        # answered; AnsweredBy human or unknown
CUSTOMER_MACHINE = "customer-machine"    # answered by a machine or a fax
CUSTOMER_JOINED = "customer-joined"      # participant-join with the customer's CallSid
CUSTOMER_LEFT = "customer-left"          # participant-leave with the customer's CallSid
CUSTOMER_UNANSWERED = "customer-unanswered"  # final status busy / no-answer / failed / canceled
CUSTOMER_HUNG_UP = "customer-hung-up"    # final status completed
DIAL_REFUSED = "dial-refused"            # the customer's number is refused for good
DIAL_FAILED = "dial-failed"              # the customer's leg was not placed (transient)
DIAL_UNKNOWN = "dial-unknown"            # the dial request timed out: maybe placed
CUSTOMER_ON_LINE = "customer-on-line"    # not dialed: the customer called in and holds
DIAL_HELD = "dial-held"                  # Twilio refuses for a reason of the account
CENTER_CLOSED = "center-closed"          # not dialed: the IVR closed before the customer's call
OUTSIDE_HOURS = "outside-hours"          # not dialed: the customer's window closed meanwhile
CONFERENCE_ENDED = "conference-ended"
CALLER_GONE = "caller-gone"              # the holding caller's call is over (hung up on the way)
CALLER_NOT_MOVED = "caller-not-moved"    # the holding caller never reached the room; they hold again
EVENTS = (AGENT_PLACED, AGENT_ANSWERED, AGENT_ACCEPTED, AGENT_DECLINED, AGENT_SILENT, AGENT_JOINED,
          AGENT_LEFT, AGENT_MISSED, AGENT_HUNG_UP, AGENT_NOT_PLACED, AGENT_REFUSED, AGENT_ENDED_MACHINE,
          CUSTOMER_PLACED, CUSTOMER_HUMAN, CUSTOMER_MACHINE, CUSTOMER_JOINED, CUSTOMER_LEFT,
          CUSTOMER_UNANSWERED, CUSTOMER_HUNG_UP, DIAL_REFUSED, DIAL_FAILED, DIAL_UNKNOWN, CUSTOMER_ON_LINE,
          DIAL_HELD, CENTER_CLOSED, OUTSIDE_HOURS, CONFERENCE_ENDED, CALLER_GONE, CALLER_NOT_MOVED)

# The leg whose CallSid an event must carry (conference events name their participant);
# a holding caller is their offer's customer leg.
LEG_OF = {event: (AGENT if event.startswith("agent") else CUSTOMER) for event in EVENTS}
LEG_OF[CONFERENCE_ENDED] = CONFERENCE

# Events that say the agent's own call is over (or never rang): only these free the agent.
AGENT_CALL_OVER = frozenset({AGENT_HUNG_UP, AGENT_MISSED, AGENT_NOT_PLACED, AGENT_REFUSED})

FINAL_CALL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")


# -- effects ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DialCustomer:
    """Place the customer's call into the conference (after the state write won)."""


@dataclass(frozen=True)
class HangUp:
    """End one leg's call (ignored when it is already over)."""

    leg: str


@dataclass(frozen=True)
class TellAgent:
    """Redirect the agent's call to a spoken notice, then it hangs up."""

    notice: str


@dataclass(frozen=True)
class WarnAgent:
    """Tell the agent in the conference that the customer's line may be a machine."""


@dataclass(frozen=True)
class NoteVerdict:
    """Record the verdict (AnsweredBy) on the attempt: a person's, so it is not read again."""


@dataclass(frozen=True)
class ReadVerdict:
    """Read who answered from Twilio's record of the customer's call (the verdict never came)."""


@dataclass(frozen=True)
class EndAttempt:
    """Close the attempt and put the callback back in line, retry later, or end it.

    counted: True when the customer did not take the call (uses a retry); False when it
    was not theirs to fail; None for a transient dial error, counted only after a few.
    """

    outcome: str
    counted: bool | None


@dataclass(frozen=True)
class RefuseNumber:
    """End the callback now: Twilio refuses its number for good."""


@dataclass(frozen=True)
class Connect:
    """Agent and customer are both in the conference."""


@dataclass(frozen=True)
class Complete:
    """The conversation is over: the callback is done."""


@dataclass(frozen=True)
class ReleaseAgent:
    """Free the agent of this attempt; `why` is available, missed or declined.

    `call_over` (set by `apply`): the event is the end of the agent's own call, so they are
    free now. Otherwise they are still on the line (a notice, the decline): the release
    waits for their call to end, since a phone is busy until Twilio says its call ended."""

    why: str
    call_over: bool = False


@dataclass(frozen=True)
class MoveCaller:
    """Redirect the holding caller out of the queue into the agent's conference (after the
    state write won), the agent now busy on them."""


@dataclass(frozen=True)
class BackInLine:
    """The holding caller was not taken: waiting again, with the place they had."""


@dataclass(frozen=True)
class LeaveLine:
    """The holding caller is out of the line for good: `why` is served or hung-up."""

    why: str


AVAILABLE, MISSED, DECLINED, REFUSED = "available", "missed", "declined", "refused"


def _when_agent_goes(outcome):
    """The agent's leg ended before the customer was with them: nothing counts."""
    return (ENDED, (HangUp(CUSTOMER), EndAttempt(outcome, False), ReleaseAgent(AVAILABLE)))


_AGENT_GONE_EARLY = {
    AGENT_LEFT: _when_agent_goes("agent-hung-up"),
    AGENT_HUNG_UP: _when_agent_goes("agent-hung-up"),
    AGENT_MISSED: _when_agent_goes("agent-hung-up"),
    CONFERENCE_ENDED: _when_agent_goes("agent-hung-up"),
}

# Accepted, but gone before they were in the conference: nobody was dialed, nothing counts.
_GONE_BEFORE_JOINING = (ENDED, (EndAttempt("agent-hung-up", False), ReleaseAgent(AVAILABLE)))
_AGENT_NOT_IN = {
    AGENT_LEFT: _GONE_BEFORE_JOINING,
    AGENT_HUNG_UP: _GONE_BEFORE_JOINING,
    AGENT_MISSED: _GONE_BEFORE_JOINING,
    CONFERENCE_ENDED: _GONE_BEFORE_JOINING,
    # On the line but not in the conference long past accepting: something is wrong with
    # the call; it is ended rather than kept waiting.
    AGENT_SILENT: (ENDED, (HangUp(AGENT),) + _GONE_BEFORE_JOINING[1]),
}

_CUSTOMER_NOT_REACHED = {
    CUSTOMER_MACHINE: (ENDED, (HangUp(CUSTOMER), EndAttempt("machine", True), TellAgent("result"))),
    CUSTOMER_UNANSWERED: (ENDED, (EndAttempt("{status}", True), TellAgent("result"))),
    CUSTOMER_HUNG_UP: (ENDED, (EndAttempt("hung-up-early", True), TellAgent("result"))),
    CUSTOMER_LEFT: (ENDED, (HangUp(CUSTOMER), EndAttempt("hung-up-early", True), TellAgent("result"))),
}

# Both legs leave the conference when it ends (each has endConferenceOnExit).
_FINISHED = (ENDED, (Complete(),))

# (state, event) -> (next state, effects). A pair not listed changes nothing.
TABLE = {
    (AGENT_RINGING, AGENT_PLACED): (AGENT_RINGING, ()),
    (AGENT_RINGING, AGENT_ANSWERED): (AGENT_DECIDING, ()),
    # The answer's own write may have failed: a key press proves the agent answered.
    (AGENT_RINGING, AGENT_ACCEPTED): (AGENT_JOINING, ()),
    (AGENT_RINGING, AGENT_DECLINED): (ENDED, (EndAttempt("agent-declined", False),
                                              ReleaseAgent(DECLINED))),
    (AGENT_RINGING, AGENT_MISSED): (ENDED, (EndAttempt("agent-no-answer", False),
                                            ReleaseAgent(MISSED))),
    (AGENT_RINGING, AGENT_HUNG_UP): (ENDED, (EndAttempt("agent-hung-up", False),
                                             ReleaseAgent(AVAILABLE))),
    (AGENT_RINGING, AGENT_NOT_PLACED): (ENDED, (EndAttempt("dial-error", None),
                                                ReleaseAgent(AVAILABLE))),
    (AGENT_RINGING, AGENT_REFUSED): (ENDED, (EndAttempt("agent-phone-refused", False),
                                             ReleaseAgent(REFUSED))),
    (AGENT_RINGING, AGENT_SILENT): (ENDED, (HangUp(AGENT), EndAttempt("agent-declined", False),
                                            ReleaseAgent(DECLINED))),

    (AGENT_DECIDING, AGENT_PLACED): (AGENT_DECIDING, ()),
    (AGENT_DECIDING, AGENT_SILENT): (ENDED, (HangUp(AGENT), EndAttempt("agent-declined", False),
                                             ReleaseAgent(DECLINED))),

    (AGENT_DECIDING, AGENT_ACCEPTED): (AGENT_JOINING, ()),
    (AGENT_DECIDING, AGENT_DECLINED): (ENDED, (EndAttempt("agent-declined", False),
                                               ReleaseAgent(DECLINED))),
    (AGENT_DECIDING, AGENT_MISSED): (ENDED, (EndAttempt("agent-declined", False),
                                             ReleaseAgent(DECLINED))),
    (AGENT_DECIDING, AGENT_HUNG_UP): (ENDED, (EndAttempt("agent-hung-up", False),
                                              ReleaseAgent(AVAILABLE))),

    # The customer is dialed only once the agent is in the conference, so that the
    # customer joining means both are there. A customer's join before then is not theirs
    # to make (not listed: it changes nothing).
    (AGENT_JOINING, AGENT_PLACED): (AGENT_JOINING, ()),
    (AGENT_JOINING, AGENT_JOINED): (CUSTOMER_RINGING, (DialCustomer(),)),
    **{(AGENT_JOINING, e): t for e, t in _AGENT_NOT_IN.items()},

    **{(CUSTOMER_RINGING, e): t for e, t in _AGENT_GONE_EARLY.items()},
    **{(CUSTOMER_RINGING, e): t for e, t in _CUSTOMER_NOT_REACHED.items()},
    (CUSTOMER_RINGING, AGENT_PLACED): (CUSTOMER_RINGING, ()),
    (CUSTOMER_RINGING, CUSTOMER_PLACED): (CUSTOMER_RINGING, ()),
    (CUSTOMER_RINGING, CUSTOMER_HUMAN): (CUSTOMER_ANSWERED, (NoteVerdict(),)),
    # The answer webhook's write may have failed: joining proves they answered.
    (CUSTOMER_RINGING, CUSTOMER_JOINED): (CONNECTED, (Connect(),)),
    (CUSTOMER_RINGING, DIAL_REFUSED): (ENDED, (RefuseNumber(), TellAgent("refused"))),
    (CUSTOMER_RINGING, DIAL_FAILED): (ENDED, (EndAttempt("dial-error", None), TellAgent("dial-error"))),
    # The customer called in and holds in a queue: their phone is busy with us, so they are
    # not dialed; the callback keeps its place and waits until their call ends.
    (CUSTOMER_RINGING, CUSTOMER_ON_LINE): (ENDED, (EndAttempt("customer-on-line", False),
                                                   TellAgent("customer-on-line"))),
    # Twilio refuses the call for the account's sake (21215, 21216, 21219): held, never
    # counted, never failed; an admin is told.
    (CUSTOMER_RINGING, DIAL_HELD): (ENDED, (EndAttempt("account-refused", False), TellAgent("account"))),
    # Hours (the IVR's, then the customer's own) are checked again at the moment of dialing:
    # closed by then, the customer is not dialed and the callback waits, its place kept.
    (CUSTOMER_RINGING, CENTER_CLOSED): (ENDED, (EndAttempt("closed", False), TellAgent("closed"))),
    (CUSTOMER_RINGING, OUTSIDE_HOURS): (ENDED, (EndAttempt(OUTSIDE_HOURS, False), TellAgent(OUTSIDE_HOURS))),

    **{(CUSTOMER_ANSWERED, e): t for e, t in _AGENT_GONE_EARLY.items()},
    **{(CUSTOMER_ANSWERED, e): t for e, t in _CUSTOMER_NOT_REACHED.items() if e != CUSTOMER_MACHINE},
    (CUSTOMER_ANSWERED, CUSTOMER_JOINED): (CONNECTED, (Connect(),)),
    (CUSTOMER_ANSWERED, CUSTOMER_PLACED): (CUSTOMER_ANSWERED, ()),

    (CONNECTED, CUSTOMER_PLACED): (CONNECTED, ()),
    (CONNECTED, CONFERENCE_ENDED): _FINISHED,
    (CONNECTED, CUSTOMER_LEFT): _FINISHED,
    (CONNECTED, CUSTOMER_HUNG_UP): _FINISHED,
    (CONNECTED, CUSTOMER_UNANSWERED): _FINISHED,
    (CONNECTED, AGENT_LEFT): _FINISHED,
    (CONNECTED, AGENT_HUNG_UP): (ENDED, (Complete(), ReleaseAgent(AVAILABLE))),
    (CONNECTED, AGENT_MISSED): (ENDED, (Complete(), ReleaseAgent(AVAILABLE))),
    (CONNECTED, CUSTOMER_MACHINE): (MACHINE_HEARD, (WarnAgent(),)),
    (CONNECTED, CUSTOMER_HUMAN): (CONNECTED, (NoteVerdict(),)),

    # After the attempt closed, the agent's own call still has to end to free them.
    (ENDED, AGENT_HUNG_UP): (ENDED, (ReleaseAgent(AVAILABLE),)),
    (ENDED, AGENT_MISSED): (ENDED, (ReleaseAgent(MISSED),)),
    (ENDED, AGENT_NOT_PLACED): (ENDED, (ReleaseAgent(AVAILABLE),)),
}


# Warned: as connected, but leaves wait for the end, which says who ended it (detection.py).
TABLE.update({(MACHINE_HEARD, e): t for (s, e), t in list(TABLE.items())
              if s == CONNECTED and t[0] == ENDED and e not in (AGENT_LEFT, CUSTOMER_LEFT)})
TABLE[(MACHINE_HEARD, AGENT_ENDED_MACHINE)] = (ENDED, (HangUp(CUSTOMER), EndAttempt("machine", True)))


def agent_end_frees_them(table):
    """The agent's final status always frees them, whatever else it does: add the release
    to every pair of `table` on that status that lacks one."""
    for (state, event), (following, effects) in list(table.items()):
        if event in (AGENT_HUNG_UP, AGENT_MISSED) and not any(isinstance(e, ReleaseAgent) for e in effects):
            table[(state, event)] = (following, effects + (ReleaseAgent(AVAILABLE),))


agent_end_frees_them(TABLE)


# -- applying it ------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """An attempt as the machine sees it: which one, where it stands, its legs' CallSids."""

    callback_id: str
    attempt_id: str
    state: str
    agent_call_sid: str | None = None
    customer_call_sid: str | None = None
    # Asynchronous detection, and no verdict recorded yet (detection.table_for).
    verdict_awaited: bool = False


@dataclass(frozen=True)
class Event:
    """Something that happened to one leg of one attempt."""

    kind: str
    callback_id: str
    attempt_id: str
    call_sid: str | None = None
    call_status: str | None = None
    error_code: int | None = None
    answered_by: str | None = None


@dataclass(frozen=True)
class Step:
    """What an event does: the next state, the effects, the CallSids it teaches us."""

    state: str
    effects: tuple = ()
    ignored: str | None = None
    agent_call_sid: str | None = None
    customer_call_sid: str | None = None
    answered_by: str | None = None

    @property
    def changed(self):
        """True when there is something to write or do."""
        return self.ignored is None


def _mismatch(attempt, event):
    """Why an event is not for this attempt as it stands, or None when it is."""
    if (event.callback_id, event.attempt_id) != (attempt.callback_id, attempt.attempt_id):
        return "another attempt"
    leg = LEG_OF[event.kind]
    known = {AGENT: attempt.agent_call_sid, CUSTOMER: attempt.customer_call_sid}.get(leg)
    if known and event.call_sid and event.call_sid != known:
        return f"another {leg} call"
    return None


def apply(attempt, event, table=TABLE):
    """The one step an event makes: ignored unless it matches the attempt and its leg.
    `table` is TABLE for a callback attempt, offers.OFFER_TABLE for a holding caller's offer."""
    why = _mismatch(attempt, event)
    if why is None and (attempt.state, event.kind) not in table:
        why = f"nothing to do in {attempt.state}"
    if why is not None:
        return Step(attempt.state, ignored=why, agent_call_sid=attempt.agent_call_sid,
                    customer_call_sid=attempt.customer_call_sid)
    state, effects = table[(attempt.state, event.kind)]
    effects = tuple(EndAttempt(e.outcome.format(status=event.call_status or "failed"), e.counted)
                    if isinstance(e, EndAttempt)
                    else ReleaseAgent(e.why, event.kind in AGENT_CALL_OVER) if isinstance(e, ReleaseAgent)
                    else e for e in effects)
    leg = LEG_OF[event.kind]
    agent_sid, customer_sid = attempt.agent_call_sid, attempt.customer_call_sid
    if leg == AGENT and event.call_sid:
        agent_sid = agent_sid or event.call_sid
    if leg == CUSTOMER and event.call_sid:
        customer_sid = customer_sid or event.call_sid
    return Step(state, effects, agent_call_sid=agent_sid, customer_call_sid=customer_sid,
                answered_by=event.answered_by)
