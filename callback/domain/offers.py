"""The lifecycle of one offer of a holding caller to an agent, as data.

It is the attempt's machine (`attempts.py`: the same events, effects and `apply`) over its
own table: the agent's leg is the same, the caller's call (its CallSid is the caller's
own) is the other leg, and instead of dialing a customer the accepted offer moves the
caller out of the queue into the agent's conference. Whatever happens before the caller
is in, they go back in line with their place.

Plain Python: no Flask, Twilio or DynamoDB here.
"""
from callback.domain.attempts import (
    AGENT,
    AGENT_ACCEPTED,
    AGENT_ANSWERED,
    AGENT_DECIDING,
    AGENT_DECLINED,
    AGENT_HUNG_UP,
    AGENT_JOINED,
    AGENT_JOINING,
    AGENT_LEFT,
    AGENT_MISSED,
    AGENT_NOT_PLACED,
    AGENT_PLACED,
    AGENT_REFUSED,
    AGENT_RINGING,
    AGENT_SILENT,
    AVAILABLE,
    CALLER_GONE,
    CALLER_NOT_MOVED,
    CONFERENCE_ENDED,
    CUSTOMER_JOINED,
    CUSTOMER_LEFT,
    DECLINED,
    ENDED,
    MISSED,
    REFUSED,
    BackInLine,
    HangUp,
    LeaveLine,
    MoveCaller,
    ReleaseAgent,
    TellAgent,
    agent_end_frees_them,
)

# The agent's states, then the caller on the way to them.
CALLER_JOINING = "caller-joining"        # the agent is in: the caller is moved into the conference
OFFER_STATES = (AGENT_RINGING, AGENT_DECIDING, AGENT_JOINING, CALLER_JOINING, ENDED)


def _not_taken(why, *first):
    """The agent did not take the holding caller: back in line, the agent released."""
    return (ENDED, first + (BackInLine(), ReleaseAgent(why)))


# (state, event) -> (next state, effects) of a holding caller's offer. Not listed: nothing.
OFFER_TABLE = {
    (AGENT_RINGING, AGENT_PLACED): (AGENT_RINGING, ()),
    (AGENT_RINGING, AGENT_ANSWERED): (AGENT_DECIDING, ()),
    (AGENT_RINGING, AGENT_ACCEPTED): (AGENT_JOINING, ()),
    (AGENT_RINGING, AGENT_DECLINED): _not_taken(DECLINED),
    (AGENT_RINGING, AGENT_MISSED): _not_taken(MISSED),
    (AGENT_RINGING, AGENT_HUNG_UP): _not_taken(AVAILABLE),
    (AGENT_RINGING, AGENT_NOT_PLACED): _not_taken(AVAILABLE),
    (AGENT_RINGING, AGENT_REFUSED): _not_taken(REFUSED),
    (AGENT_RINGING, AGENT_SILENT): _not_taken(DECLINED, HangUp(AGENT)),
    # The caller hung up before the agent took them: the agent's ringing stops, or they are
    # told; the caller's record leaves the line through this step, never behind it.
    (AGENT_RINGING, CALLER_GONE): (ENDED, (LeaveLine("hung-up"), HangUp(AGENT), ReleaseAgent(AVAILABLE))),

    (AGENT_DECIDING, AGENT_PLACED): (AGENT_DECIDING, ()),
    (AGENT_DECIDING, AGENT_ACCEPTED): (AGENT_JOINING, ()),
    (AGENT_DECIDING, AGENT_DECLINED): _not_taken(DECLINED),
    (AGENT_DECIDING, AGENT_MISSED): _not_taken(DECLINED),
    (AGENT_DECIDING, AGENT_HUNG_UP): _not_taken(AVAILABLE),
    (AGENT_DECIDING, AGENT_SILENT): _not_taken(DECLINED, HangUp(AGENT)),
    (AGENT_DECIDING, CALLER_GONE): (ENDED, (LeaveLine("hung-up"), TellAgent("caller-gone"),
                                            ReleaseAgent(AVAILABLE))),

    # The caller is moved only once the agent is in the conference; gone before that, or
    # before the caller joined, the caller goes back in line with their place.
    (AGENT_JOINING, AGENT_PLACED): (AGENT_JOINING, ()),
    (AGENT_JOINING, AGENT_JOINED): (CALLER_JOINING, (MoveCaller(),)),
    (AGENT_JOINING, AGENT_LEFT): _not_taken(AVAILABLE),
    (AGENT_JOINING, AGENT_HUNG_UP): _not_taken(AVAILABLE),
    (AGENT_JOINING, AGENT_MISSED): _not_taken(AVAILABLE),
    (AGENT_JOINING, CONFERENCE_ENDED): _not_taken(AVAILABLE),
    (AGENT_JOINING, AGENT_SILENT): _not_taken(AVAILABLE, HangUp(AGENT)),
    (AGENT_JOINING, CALLER_GONE): (ENDED, (LeaveLine("hung-up"), TellAgent("caller-gone"),
                                           ReleaseAgent(AVAILABLE))),

    (CALLER_JOINING, AGENT_PLACED): (CALLER_JOINING, ()),
    (CALLER_JOINING, AGENT_LEFT): _not_taken(AVAILABLE),
    (CALLER_JOINING, AGENT_HUNG_UP): _not_taken(AVAILABLE),
    (CALLER_JOINING, AGENT_MISSED): _not_taken(AVAILABLE),
    (CALLER_JOINING, CONFERENCE_ENDED): _not_taken(AVAILABLE),
    (CALLER_JOINING, CUSTOMER_JOINED): (ENDED, (LeaveLine("served"),)),
    # Their join was lost: leaving proves they were with the agent.
    (CALLER_JOINING, CUSTOMER_LEFT): (ENDED, (LeaveLine("served"),)),
    (CALLER_JOINING, CALLER_GONE): (ENDED, (LeaveLine("hung-up"), TellAgent("caller-gone"),
                                            ReleaseAgent(AVAILABLE))),
    # Not moved, or moved but never in the room (their join failed and put them back in
    # the queue): they keep their place, and the agent hears why nobody comes.
    (CALLER_JOINING, CALLER_NOT_MOVED): (ENDED, (BackInLine(), TellAgent("caller-back-in-line"),
                                                 ReleaseAgent(AVAILABLE))),

    # Over (the caller served, gone or back in line): the agent's own call still has to end.
    (ENDED, AGENT_HUNG_UP): (ENDED, (ReleaseAgent(AVAILABLE),)),
    (ENDED, AGENT_MISSED): (ENDED, (ReleaseAgent(MISSED),)),
    (ENDED, AGENT_NOT_PLACED): (ENDED, (ReleaseAgent(AVAILABLE),)),
}

agent_end_frees_them(OFFER_TABLE)
