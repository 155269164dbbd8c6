"""The wait a caller hears: estimated from how fast work recently left their queue's line.

Plain Python over small aggregates (departures per queue per five-minute bucket, kept by
atomic ADDs as agents take work), the clock passed in. The rule prefers silence to a wrong
number: no estimate without enough recent history, when no agent has taken work from the
queue recently, or when no agent of the queue is signed in now; whole minutes, capped.
"""
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from callback.domain.customer_clock import spoken_clock

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


# The range a caller hears. With n departures to wait for at a steady rate, the wait is a
# sum of n exponential gaps (a Gamma distribution), so a single number (its mean) is
# passed about half the time. The range runs from its 10th to its 95th percentile
# (Wilson-Hilferty's approximation, within a few percent from n = 1): `make bench` measures
# how often the first attempt comes within the range's end (bench/RESULTS.md, "The promise
# kept").
LOW_Z = -1.2816
HIGH_Z = 1.645
# A range no wider than this is said as one number.
NARROW_MINUTES = 1


@dataclass(frozen=True)
class Estimate:
    """A wait worth telling a caller: whole minutes (the mean), or more than the cap, with
    the range a caller hears (`low` to `high` minutes; None: just the mean)."""

    minutes: int
    over_cap: bool = False
    low: int | None = field(default=None, compare=False)
    high: int | None = field(default=None, compare=False)

    @property
    def promised(self):
        """The minutes within which the caller is told to expect the call (None: no promise)."""
        if self.over_cap:
            return None
        return self.high if self.high is not None else self.minutes


def gamma_quantile(n, mean, z):
    """The quantile at standard-normal score `z` of a sum of `n` exponential gaps of total
    mean `mean` (Wilson-Hilferty)."""
    return mean * max(0.0, 1 - 1 / (9 * n) + z / (3 * math.sqrt(n))) ** 3


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
    low = max(1, math.floor(gamma_quantile(ahead + 1, minutes, LOW_Z)))
    high = max(low, math.ceil(gamma_quantile(ahead + 1, minutes, HIGH_Z)))
    return Estimate(max(1, math.floor(minutes + 0.5)), low=low, high=high)


def spoken_wait(estimate):
    """'about 12 minutes', '8 to 15 minutes', '40 minutes to more than an hour', 'more
    than 60 minutes'."""
    if estimate.over_cap:
        return f"more than {CAP_MINUTES} minutes"
    if estimate.low is None or estimate.high - estimate.low <= NARROW_MINUTES:
        minutes = estimate.minutes if estimate.high is None else estimate.high
        return f"about {minutes} {'minute' if minutes == 1 else 'minutes'}"
    if estimate.high > CAP_MINUTES:
        return f"{estimate.low} minutes to more than an hour"
    return f"{estimate.low} to {estimate.high} minutes"


@dataclass(frozen=True)
class ExpectedCall:
    """What a caller hears after storing about when the call comes: the estimate (None: no
    figure worth telling), the customer's opening time when their calling window is closed
    now ("8 a.m."), or its closing time when the estimate may run past it ("8 p.m.")."""

    estimate: Estimate | None = None
    opens: str | None = None
    closes: str | None = None


def expected_call(estimate, clock, now):
    """The promise after storing, honouring the customer's calling window (`clock`, a
    customer_clock.CustomerClock): a callback that waits for it is promised for its opening."""
    if not clock.is_open(now):
        return ExpectedCall(opens=spoken_clock(clock.start)) if clock.next_opening(now) else ExpectedCall()
    if estimate is None or estimate.promised is None:
        return ExpectedCall(estimate)
    latest = now + timedelta(minutes=estimate.promised)
    return ExpectedCall(estimate, closes=None if clock.is_open(latest) else spoken_clock(clock.end))
