"""What each change of a callback writes, as data: plain Python, the clock passed in.

A function per kind of change (an attempt moving on, ending, completing; the sweep looking
later; a pending callback expiring or canceled) reads the callback as it was read and
returns a `CallbackChange`: the callback fields to set and to remove, the fields of the
current attempt's history entry, the wallboard counters that move with it, whether the
number's pending slot is freed, and the condition the write needs. Storage commits a
change in one conditional write (`Storage.commit`), so a change computed from a stale read
loses (Conflict) instead of landing, and its counters move only with it.

A holding caller's offer to an agent changes their waiting-call record the same way: an
`OfferChange` (advance, back in line, out of the line) committed by `Storage.commit_offer`,
always on the condition that the offer is still as read (its id, phase and agent CallSid).
"""
from dataclasses import dataclass, field
from datetime import datetime

from callback.domain import attempts as a
from callback.domain import records as m
from callback.domain import stats, worklog


@dataclass(frozen=True)
class AsRead:
    """Condition: the callback's attempt, status, phase, both CallSids and the verdict heard
    are still what the read said."""


@dataclass(frozen=True)
class StillPending:
    """Condition: the callback is still pending (and, with `expired_by`, its expiration time
    is at or before that moment; with `due_at`, it is still due then)."""

    expired_by: datetime | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class AttemptChange:
    """Fields set on one attempt's history entry; the attempt must still be on the callback."""

    attempt_id: str | None
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackChange:
    """One write to a callback, computed from the callback as read."""

    set: dict  # callback field -> new value
    remove: tuple = ()  # callback fields removed
    attempt: AttemptChange | None = None  # the current attempt's history entry, when concerned
    counts: dict = field(default_factory=dict)  # stats counter -> increment, in the same write
    counted_at: datetime | None = None  # the moment whose hourly bucket the counters move in
    releases_guard: bool = False  # a final status: the number's pending slot is freed
    condition: AsRead | StillPending = AsRead()
    worked: worklog.WorkDone | None = None  # the agent's work ended: their log's entry, same write

    def status(self, before):
        """The callback's status once this change is written (`before`: as read)."""
        return self.set.get("status", before)


def _learned(cb, agent_call_sid, customer_call_sid):
    """CallSids of the attempt's calls not known yet, as callback fields (the same go on the
    attempt's history entry)."""
    learned = {}
    if agent_call_sid and agent_call_sid != cb.agent_call_sid:
        learned["agent_call_sid"] = agent_call_sid
    if customer_call_sid and customer_call_sid != cb.customer_call_sid:
        learned["customer_call_sid"] = customer_call_sid
    return learned


def _ending(cb, *, status, reason, now, set_=None, remove=(), attempt=None, condition=AsRead(), worked=None):
    """A final status: the callback leaves every work index, frees its number's pending slot
    and moves the counter of its ending (if the wallboard counts it)."""
    counter = stats.ending(status, reason)
    return CallbackChange(
        set={**(set_ or {}), "status": status, "ended_reason": reason, "ended_at": now},
        remove=(*remove, "pending_queue", "sweep_status", "sweep_at"),
        attempt=attempt, counts={counter: 1} if counter else {}, counted_at=now,
        releases_guard=True, condition=condition, worked=worked)


def advance(cb, *, phase, sweep_at, now=None, agent_call_sid=None, customer_call_sid=None, connected=False,
            detection=None, answered_by=None):
    """The current attempt moves to another open phase (and learns its CallSids, the detection
    its customer's call is placed with, the verdict heard); the first move to connected, at
    `now`, is counted for the wallboard (and how long it took)."""
    status = m.CONNECTED if connected else cb.status
    learned = _learned(cb, agent_call_sid, customer_call_sid)
    noted = {name: value for name, value in (("detection", detection), ("answered_by", answered_by)) if value}
    attempt, counts = dict(learned), {}
    if connected and cb.status != m.CONNECTED:
        attempt["outcome"] = "connected"
        attempt["connected_at"] = now
        counts = {stats.CONNECTED: 1, stats.wait_bucket((now - cb.requested_at).total_seconds()): 1}
        if cb.attempts == 0:
            counts[stats.FIRST_ATTEMPT_CONNECTED] = 1
    return CallbackChange(
        set={"phase": phase, "status": status, "sweep_status": status, "sweep_at": sweep_at, **learned,
             **noted},
        attempt=AttemptChange(cb.attempt_id, attempt), counts=counts, counted_at=now if counts else None)


def end_attempt(cb, *, outcome, counted, now, decision, agent_call_sid=None, customer_call_sid=None,
                error_code=None):
    """The current attempt is over: back to pending at `decision.due_at`, or ended with
    `decision.status` (a rules.RetryDecision)."""
    learned = _learned(cb, agent_call_sid, customer_call_sid)
    attempt = {"outcome": outcome, "ended_at": now, "counted": counted, **learned}
    if error_code is not None:
        attempt["error_code"] = error_code
    closing = {"attempts": cb.attempts + (1 if counted else 0), **learned}
    worked = worklog.for_attempt(cb, outcome, now)
    if decision.expire:
        return _ending(cb, status=decision.status, reason=decision.reason, now=now, set_=closing,
                       attempt=AttemptChange(cb.attempt_id, attempt), worked=worked)
    due = decision.due_at
    return CallbackChange(
        set={**closing, "status": m.PENDING, "due_at": due, "pending_queue": cb.queue_name,
             "sweep_status": m.PENDING, "sweep_at": min(due, cb.expires_at)},
        remove=("phase",), attempt=AttemptChange(cb.attempt_id, attempt), worked=worked)


def complete(cb, now):
    """The conversation ended: the callback is done."""
    return _ending(cb, status=m.COMPLETED, reason="completed", now=now, remove=("phase",),
                   attempt=AttemptChange(cb.attempt_id, {"outcome": "completed", "ended_at": now}),
                   worked=worklog.for_attempt(cb, "completed", now))


def postpone_sweep(cb, sweep_at):
    """The sweep looks at this attempt again later (nothing about it has changed)."""
    return CallbackChange(set={"sweep_at": sweep_at})


def verdict_unread(cb, sweep_at):
    """Twilio's record of the customer's call did not say who answered: read once more, later."""
    return CallbackChange(set={"verdict_reads": cb.verdict_reads + 1, "sweep_at": sweep_at})


def wait_for_hours(cb, opens_at):
    """A due callback whose customer's calling window is closed waits for it to open (its
    place in line unchanged); one whose window never opens waits for its expiration."""
    due = min(opens_at or cb.expires_at, cb.expires_at)
    return CallbackChange(set={"due_at": due}, condition=StillPending(due_at=cb.due_at))


def expire(cb, now, reason="expiration-time"):
    """A pending callback whose expiration time has come ends."""
    return _ending(cb, status=m.EXPIRED, reason=reason, now=now, condition=StillPending(expired_by=now))


def postpone_expiry(cb, expires_at):
    """A pending callback lives on to `expires_at`: less open time has passed since its
    request than its IVR's Expiration Time (its hours changed: a holiday added, say)."""
    return CallbackChange(set={"expires_at": expires_at, "sweep_at": min(cb.due_at, expires_at)},
                          condition=StillPending(expired_by=cb.expires_at))


def refuse_number(cb, now):
    """A pending callback whose number its IVR does not call (any more) ends, never dialed."""
    return _ending(cb, status=m.FAILED, reason="number-not-allowed", now=now, condition=StillPending())


def cancel(cb, now):
    """An admin cancels a pending callback."""
    return _ending(cb, status=m.CANCELED, reason="canceled by admin", now=now, condition=StillPending())


def cancel_by_text(cb, now):
    """The customer cancels a pending callback by replying the cancel word (or CANCEL)."""
    return _ending(cb, status=m.CANCELED, reason="canceled by text", now=now, condition=StillPending())


# -- a holding caller's offer ----------------------------------------------------------------

@dataclass(frozen=True)
class OfferChange:
    """One write to a holding caller's record in an offer, computed from the record as read."""

    set: dict = field(default_factory=dict)  # waiting-call field -> new value
    remove: tuple = ()  # waiting-call fields removed
    leaves_line: bool = False  # the record is deleted: the caller is out of the line
    counts: dict = field(default_factory=dict)  # stats counter -> increment, with the deletion
    counted_at: datetime | None = None
    worked: worklog.WorkDone | None = None  # the offer ended: the agent's log entry, same write


def advance_offer(call, *, phase, agent_call_sid=None):
    """The offer moves to another open phase (and learns the agent's CallSid)."""
    learned = {"agent_call_sid": agent_call_sid} if agent_call_sid and agent_call_sid != call.agent_call_sid else {}
    return OfferChange(set={"phase": phase, **learned})


def back_in_line(call, worked=None):
    """The offer is over before the caller reached the agent: waiting again, same place."""
    return OfferChange(set={"status": m.WAITING, "waiting_queue": call.queue_name},
                       remove=("agent_id", "agent_call_sid", "offer_id", "phase", "offered_at"),
                       worked=worked)


def leave_line(call, answered_at=None, worked=None):
    """The caller is out of the line: hung up on the way, or, with `answered_at`, joined the
    agent (counted answered once, with the deletion)."""
    if answered_at is None:
        return OfferChange(leaves_line=True, worked=worked)
    return OfferChange(leaves_line=True, counts={stats.ANSWERED: 1}, counted_at=answered_at, worked=worked)


# Why the agent let a holding caller go (ReleaseAgent's why), as their log says it.
_NOT_TAKEN = {a.DECLINED: worklog.DECLINED, a.MISSED: worklog.MISSED}


def offer_ending(call, effects, now):
    """The change a step's effects make when they end an offer (the caller back in line, or
    out of it: with the agent, or hung up), with the agent's log entry; None when they do not."""
    for effect in effects:
        if isinstance(effect, a.BackInLine):
            why = next((e.why for e in effects if isinstance(e, a.ReleaseAgent)), None)
            return back_in_line(call, worklog.for_offer(call, _NOT_TAKEN.get(why, worklog.RETURNED), now))
        if isinstance(effect, a.LeaveLine):
            served = effect.why == "served"
            outcome = worklog.TAKEN if served else worklog.CALLER_GONE
            return leave_line(call, answered_at=now if served else None,
                              worked=worklog.for_offer(call, outcome, now))
    return None
