"""Callbacks at a time the caller picks: half-hour slots wholly inside the IVR's open hours
and the customer's own calling window, on the center's day and its next day with a slot,
each with a capacity per queue (an IVR setting) so that a popular half-hour is never
overbooked.

A scheduled callback is due at its slot's start, ranked among the work due then by that
time (its place in line), retried within its slot and expired at the slot's end. Plain
Python over `callback.domain.hours`; the moment is always passed in.
"""
from datetime import datetime, timedelta, timezone

from callback.domain import hours as h

SLOT = timedelta(minutes=30)
# A slot starts at least this long after the choice: sooner is what a plain callback is for.
LEAD = timedelta(minutes=15)
# Slots read out at most, one key each: more is too long to listen to and remember.
OFFERED = 4
# Center days looked at: the current one and the next ones, up to the second with a slot.
DAYS_WITH_SLOTS = 2
LOOKAHEAD_DAYS = 14
MAX_CAPACITY = 100


def _next_boundary(hours, moment):
    """The first :00 or :30 of the IVR's wall clock at or after `moment` (zones whose offset
    is not whole hours keep their own half-hours)."""
    local = moment.astimezone(hours.tz)
    floor = local.replace(minute=0 if local.minute < 30 else 30, second=0, microsecond=0)
    start = floor.astimezone(timezone.utc)
    return start if start >= moment else start + SLOT


def slot_starts(hours, customer_clock, now):
    """The starts of the slots a caller may choose at `now`, in order: each starts LEAD or
    more from now and lies wholly inside the open hours and the customer's window; they
    cover the center's first DAYS_WITH_SLOTS days (from today) that have one."""
    starts, days = [], []
    first = _next_boundary(hours, now + LEAD)
    horizon = now + timedelta(days=LOOKAHEAD_DAYS)
    for opening, closing in h.intervals(hours, first, LOOKAHEAD_DAYS):
        start = _next_boundary(hours, max(opening, first))
        end = min(closing or horizon, horizon)
        while start + SLOT <= end:
            if customer_clock.is_open(start) and customer_clock.is_open(start + SLOT - timedelta(seconds=1)):
                day = h.local_date(hours, start)
                if day not in days:
                    if len(days) == DAYS_WITH_SLOTS:
                        return starts
                    days.append(day)
                starts.append(start)
            start += SLOT
    return starts


def with_room(starts, booked, capacity, count=OFFERED):
    """The first `count` of `starts` with room left (`booked`: {start: callbacks booked})."""
    return [start for start in starts if booked.get(start, 0) < capacity][:count]


def window(start):
    """The (earliest, latest) moments a callback booked for the slot at `start` is made in."""
    return start, start + SLOT


def is_slot(hours, start, end):
    """True when `start`-`end` is one of the IVR's half-hours (starting on its :00 or :30)."""
    return end - start == SLOT and _next_boundary(hours, start) == start


def books_slot(start, end):
    """True when a callback's window counts against its slot's capacity: a window exactly
    one half-hour long (the only windows that are slots; longer API windows book none)."""
    return start is not None and end is not None and end - start == SLOT


def marker(start):
    """A slot's start as a URL carries it (whole seconds since the epoch)."""
    return str(int(start.timestamp()))


def from_marker(text):
    """The slot start a marker names, or None for anything else."""
    if not text or not text.isdigit() or len(text) > 12:
        return None
    return datetime.fromtimestamp(int(text), timezone.utc)


def spoken(hours, now, start):
    """'today at 2:30 PM', as a caller at `now` hears the slot at `start`."""
    return h.spoken_moment(hours, now, start)
