"""An agent's day: one small entry per piece of work an agent ended (a callback's or a
voicemail's attempt, a holding caller's offer), written with the change that ends it, and
the counts the agent's own page shows.

An entry holds the customer's number masked as the logs mask it (last two digits): the log
is a day view kept a few days, and erasing a number never needs to look at it.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from callback.domain.numbers import mask

# The kinds of work, as the agent's page names them.
CALLBACK = "callback"
VOICEMAIL = "voicemail"
HOLDING = "holding"
KINDS = (CALLBACK, VOICEMAIL, HOLDING)

# How a holding caller's offer ended for the agent.
TAKEN = "taken"
CALLER_GONE = "caller-gone"
DECLINED = "declined"
MISSED = "missed"
RETURNED = "returned"  # the agent hung up or left before the caller reached them

# A day view, not a report: DynamoDB drops an entry this long after its work ended.
LIFETIME = timedelta(days=3)

# The day's counts, each from the outcomes that make it.
CONNECTED = "connected"
NOT_REACHED = "not_reached"
HOLDING_TAKEN = "holding_taken"
DECLINED_OR_MISSED = "declined_or_missed"
COUNTS = (CONNECTED, NOT_REACHED, HOLDING_TAKEN, DECLINED_OR_MISSED)
COUNT_LABELS = {
    CONNECTED: "Callbacks connected",
    NOT_REACHED: "No answer, busy or machine",
    HOLDING_TAKEN: "Holding callers taken",
    DECLINED_OR_MISSED: "Declined or missed",
}
_CALLBACK_COUNTS = {
    "completed": CONNECTED, "connected": CONNECTED,
    "no-answer": NOT_REACHED, "busy": NOT_REACHED, "machine": NOT_REACHED, "failed": NOT_REACHED,
    "hung-up-early": NOT_REACHED,
    "agent-declined": DECLINED_OR_MISSED, "agent-no-answer": DECLINED_OR_MISSED,
}
_HOLDING_COUNTS = {TAKEN: HOLDING_TAKEN, DECLINED: DECLINED_OR_MISSED, MISSED: DECLINED_OR_MISSED}

OFFER_OUTCOME_LABELS = {
    TAKEN: "Taken",
    CALLER_GONE: "Caller hung up first",
    DECLINED: "Declined",
    MISSED: "Missed",
    RETURNED: "Caller back in line",
}


@dataclass(frozen=True)
class WorkDone:
    """One piece of work an agent ended: what, for which queue and (masked) number, how it
    ended, when, and for how long they talked when that is known."""

    agent_id: str
    kind: str
    work_id: str  # the attempt's or offer's id: one entry per piece of work
    ivr_name: str
    queue_name: str
    number: str  # masked
    outcome: str
    started_at: datetime | None
    ended_at: datetime
    talk_seconds: int | None = None

    @property
    def count(self):
        """Which of the day's counts this entry adds to, or None."""
        table = _HOLDING_COUNTS if self.kind == HOLDING else _CALLBACK_COUNTS
        return table.get(self.outcome)


def for_attempt(cb, outcome, now):
    """The entry of a callback's current attempt ending with `outcome` at `now`; None when
    no agent had it."""
    attempt = cb.attempt(cb.attempt_id)
    agent_id = (attempt.agent_id if attempt else None) or cb.agent_id
    if not agent_id:
        return None
    connected_at = attempt.connected_at if attempt else None
    talk = int((now - connected_at).total_seconds()) if connected_at and now >= connected_at else None
    return WorkDone(agent_id, VOICEMAIL if cb.kind == VOICEMAIL else CALLBACK, cb.attempt_id or "-",
                    cb.ivr_name, cb.queue_name, mask(cb.number), outcome,
                    attempt.started_at if attempt else None, now, talk)


def for_offer(call, outcome, now):
    """The entry of a holding caller's offer ending with `outcome` at `now`; None when no
    agent had it."""
    if not call.agent_id:
        return None
    return WorkDone(call.agent_id, HOLDING, call.offer_id or "-", call.ivr_name, call.queue_name,
                    mask(call.caller), outcome, call.offered_at, now)


def day_counts(entries):
    """{count name: n} over a day's entries, every count present."""
    counts = dict.fromkeys(COUNTS, 0)
    for entry in entries:
        if entry.count:
            counts[entry.count] += 1
    return counts
