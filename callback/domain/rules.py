"""Dispatch order and retry/expiry decisions: plain Python, the clock passed in."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from callback.domain.hours import open_time_later

CALL = "call"
CALLBACK = "callback"


@dataclass(frozen=True)
class WorkCandidate:
    """A piece of work an agent could take: a caller holding or a callback due."""

    kind: str
    key: str
    queue: str
    priority: int
    place_in_line: datetime


def dispatch_order(candidate):
    """Sort key: highest priority, then earliest place in line.

    On a perfect tie a holding caller goes before a callback (a person is on the line
    paying attention), then the key keeps the order deterministic.
    """
    return (-candidate.priority, candidate.place_in_line, candidate.kind != CALL, candidate.key)


def rank_work(candidates):
    """All candidates, best first."""
    return sorted(candidates, key=dispatch_order)


def choose_next_work(candidates):
    """The candidate an available agent should get next, or None."""
    ranked = rank_work(candidates)
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class RetryDecision:
    """What becomes of a callback after an attempt failed."""

    expire: bool
    due_at: datetime | None
    reason: str
    status: str = "expired"  # the final status when `expire`


def decide_after_failed_attempt(*, failed_attempts, max_retries, retry_minutes, expires_at, now, hours=None):
    """Retry after Retry Time (open time of `hours`, when given: a try failed at 16:58 with
    five minutes to wait comes at 09:03 the next open day), or expire after Max Retries or
    past Expiration Time."""
    if failed_attempts >= max_retries:
        return RetryDecision(True, None, "max-retries")
    retry = timedelta(minutes=retry_minutes)
    next_due = open_time_later(hours, now, retry) if hours is not None else now + retry
    if now >= expires_at or next_due >= expires_at:
        # The next try would fall after the expiration time: it would never happen.
        return RetryDecision(True, None, "expiration-time")
    return RetryDecision(False, next_due, "retry")


def is_expired(expires_at, now):
    """True once a callback's expiration time has come."""
    return now >= expires_at


def is_due(due_at, now):
    """True once a callback may be dialed."""
    return due_at <= now


def decide_after_uncounted_attempt(*, expires_at, now, due_at):
    """An attempt that was not the customer's to fail (agent absent, dial error): the
    callback is due again at `due_at` unless it has expired meanwhile."""
    if now >= expires_at:
        return RetryDecision(True, None, "expiration-time")
    return RetryDecision(False, max(due_at, now), "not-counted")


# A callback is offered at most this many times in a row without a counted attempt: the
# last of them counts, so no callback circles forever between agents who cannot take it.
UNCOUNTED_IN_A_ROW = 5
# Transient dial errors back off (30 s, 1 min, 2 min …) and the third in a row counts.
TRANSIENT_ERRORS_IN_A_ROW = 3
TRANSIENT_BACKOFF = timedelta(seconds=30)
TRANSIENT = "dial-error"


def trailing(history, predicate):
    """How many of the latest attempts in a row satisfy `predicate`."""
    count = 0
    for attempt in reversed(history):
        if not predicate(attempt):
            break
        count += 1
    return count


@dataclass(frozen=True)
class Settlement:
    """Whether a closed attempt counts against the customer, and how long until the next."""

    counted: bool
    delay: timedelta


# Twilio refused the call for a reason of the account (geographic permissions, a missing
# customer profile, a trial account): not the customer's to fail, never counted, and
# tried again only after this pause, while an admin fixes the account.
ACCOUNT_HELD = "account-refused"
ACCOUNT_HOLD = timedelta(minutes=10)
# Not dialed because the IVR had closed by then, or the customer's own calling window had:
# never counted, no strike towards UNCOUNTED_IN_A_ROW; due again when the hours open.
CLOSED = "closed"
OUTSIDE_HOURS = "outside-hours"
WAITS_FOR_HOURS = (CLOSED, OUTSIDE_HOURS)


def settle_attempt(counted, outcome, earlier):
    """Bounds on attempts that are not the customer's to fail.

    `counted` is True (the customer did not take the call), False (not theirs to fail) or
    None (a transient dial error); `earlier` are the callback's closed attempts, oldest
    first.
    """
    if counted:
        return Settlement(True, timedelta(0))
    if outcome == ACCOUNT_HELD:
        return Settlement(False, ACCOUNT_HOLD)
    if outcome in WAITS_FOR_HOURS:
        return Settlement(False, timedelta(0))
    if counted is None:
        errors = trailing(earlier, lambda a: a.outcome == TRANSIENT)
        return Settlement(errors + 1 >= TRANSIENT_ERRORS_IN_A_ROW, TRANSIENT_BACKOFF * 2 ** errors)
    strikes_free = (ACCOUNT_HELD, *WAITS_FOR_HOURS)
    uncounted = trailing(earlier, lambda a: not a.counted and a.outcome not in strikes_free)
    return Settlement(uncounted + 1 >= UNCOUNTED_IN_A_ROW, timedelta(0))


def within_hours(decision, opens_at, expires_at):
    """A retry moved to the customer's next calling window (`opens_at`, None: it never
    opens); expired when that comes at or after the expiration time."""
    if decision.expire:
        return decision
    if opens_at is None or opens_at >= expires_at:
        return RetryDecision(True, None, "expiration-time")
    return RetryDecision(False, max(decision.due_at, opens_at), decision.reason)


def number_refused():
    """A number Twilio refuses for good: the callback ends at once."""
    return RetryDecision(True, None, "number-refused", status="failed")


# An agent who misses this many offered calls in a row is set away.
MISSES_IN_A_ROW = 2


@dataclass(frozen=True)
class AgentAfter:
    """An agent's presence once their part of an attempt is over."""

    status: str
    away_reason: str | None
    misses: int


def agent_after(why, misses_before):
    """Free, or away with the reason the portal shows: declined at once, missed twice."""
    if why == "declined":
        return AgentAfter("offline", "did not accept an offered call", misses_before + 1)
    if why == "refused":
        return AgentAfter("offline", "Twilio cannot call this agent's phone number", misses_before)
    if why == "missed":
        misses = misses_before + 1
        if misses >= MISSES_IN_A_ROW:
            return AgentAfter("offline", f"missed {misses} offered calls in a row", misses)
        return AgentAfter("available", None, misses)
    return AgentAfter("available", None, 0)
