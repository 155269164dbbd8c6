"""Dispatch order and retry/expiry decisions: plain Python, the clock passed in."""
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def decide_after_failed_attempt(*, failed_attempts, max_retries, retry_minutes, expires_at, now):
    """Retry after Retry Time, or expire after Max Retries or past Expiration Time."""
    if failed_attempts >= max_retries:
        return RetryDecision(True, None, "max-retries")
    next_due = now + timedelta(minutes=retry_minutes)
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
