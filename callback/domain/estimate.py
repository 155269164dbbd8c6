"""The wait a caller hears: estimated from how fast work recently left their queue's line.

Plain Python over small aggregates (departures per queue per five-minute bucket, kept by
atomic ADDs as agents take work), the clock passed in. The rule prefers silence to a wrong
number: no estimate without enough recent history, when no agent has taken work from the
queue recently, or when no agent of the queue is signed in now; whole minutes, capped.
"""
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

BUCKET = timedelta(minutes=5)
# How far back the departure rate looks: long enough to smooth single calls, short enough
# to follow a shift change.
WINDOW = timedelta(minutes=30)
# No departure for this long: agents are away (lunch, a meeting) and history says nothing.
RECENT = timedelta(minutes=10)
# Fewer departures than this in the window is too little history to divide by.
MIN_DEPARTURES = 4
CAP_MINUTES = 60
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Departures:
    """How many pieces of work agents took from a queue's line during one bucket."""

    start: datetime
    count: int


@dataclass(frozen=True)
class Estimate:
    """A wait worth telling a caller: whole minutes, or more than the cap."""

    minutes: int
    over_cap: bool = False


def bucket_start(moment):
    """The start of the bucket a moment falls in."""
    return moment - ((moment - _EPOCH) % BUCKET)


def history_since(now):
    """The first bucket the estimate reads: the directory loads buckets from here on."""
    return bucket_start(now - WINDOW)


def estimate_wait(departures, ahead, now, agents_on_duty=None):
    """Estimated wait of a caller with `ahead` pieces of work before them, or None.

    Rate = departures in the buckets since `history_since(now)` over the time they span;
    the caller's wait is the time for `ahead + 1` departures at that rate. `agents_on_duty`
    (signed in for the queue now; None when unknown): with none, history says nothing.
    """
    if ahead is None or ahead < 0 or agents_on_duty == 0:
        return None
    first = history_since(now)
    recent = [d for d in departures if first <= d.start <= now and d.count > 0]
    total = sum(d.count for d in recent)
    if total < MIN_DEPARTURES:
        return None
    if max(d.start for d in recent) < bucket_start(now - RECENT):
        return None
    span_minutes = (now - first).total_seconds() / 60
    minutes = (ahead + 1) * span_minutes / total
    if minutes > CAP_MINUTES:
        return Estimate(CAP_MINUTES, over_cap=True)
    return Estimate(max(1, math.floor(minutes + 0.5)))


def spoken_wait(estimate):
    """'about 12 minutes', 'about 1 minute', 'more than an hour'."""
    if estimate.over_cap:
        return f"more than {CAP_MINUTES} minutes"
    unit = "minute" if estimate.minutes == 1 else "minutes"
    return f"about {estimate.minutes} {unit}"
