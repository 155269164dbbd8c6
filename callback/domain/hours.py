"""Open hours of an IVR in its own time zone, and the rules over them: open at a moment, the
next opening, the end of the open period under way, open time between two instants.

Plain Python with the standard library's `zoneinfo` (the system's zone files, or the pinned
`tzdata` package where a system has none): no Flask, Twilio or storage. Every moment in and
out is a timezone-aware datetime; the schedule is read as wall-clock times of the IVR's zone
on each local date, so a day of 23 or 25 hours (a DST change) is open exactly as its clocks
say. A wall time that does not exist that day (02:30 when clocks jump to 03:00) counts as
the moment it would be by the offset before the change (03:30); one that happens twice
(01:30 when clocks fall back) as its first occurrence.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_ZONE = "America/New_York"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MINUTES_PER_DAY = 24 * 60
ALL_DAY = ((0, MINUTES_PER_DAY),)
# How far ahead the rules look for an opening (a closure can last months) and for the end
# of the period under way (an IVR open around the clock for two weeks is not "closing").
OPENING_HORIZON_DAYS = 400
CLOSING_HORIZON_DAYS = 14


@dataclass(frozen=True)
class Closure:
    """Closed on the dates from `first` to `last`, both included (a holiday is one day)."""

    first: date
    last: date
    note: str = ""

    def covers(self, day):
        """True when the IVR is closed on that local date for this reason."""
        return self.first <= day <= self.last


@dataclass(frozen=True)
class OpenHours:
    """When an IVR takes calls: a weekly schedule in its time zone, holidays and closures.

    `weekly` holds seven tuples (Monday first) of (opening, closing) minutes after local
    midnight, closing 1440 meaning midnight; a period that runs past midnight is written as
    two (22:00-24:00, then 00:00-02:00 the next day) and read as one. The default, open
    around the clock with no holidays, is how an IVR behaved before it had hours.
    """

    zone: str = DEFAULT_ZONE
    weekly: tuple = (ALL_DAY,) * 7
    holidays: tuple = ()
    closures: tuple = ()
    # Closed: the caller may ask to be called back at the next opening (else: goodbye).
    closed_callbacks: bool = True

    @property
    def tz(self):
        """The IVR's time zone."""
        return zone_info(self.zone)

    @property
    def always_open(self):
        """Open around the clock, every day, with no holiday or closure."""
        return not self.holidays and not self.closures and all(p == ALL_DAY for p in self.weekly)

    def closed_for(self, day):
        """The holiday or closure that closes a local date, or None."""
        return next((c for c in self.holidays + self.closures if c.covers(day)), None)

    def periods_on(self, day):
        """(opening, closing) minutes of a local date: none on a holiday or closure."""
        return () if self.closed_for(day) else self.weekly[day.weekday()]


@lru_cache(maxsize=64)
def zone_info(key):
    """The ZoneInfo of an IANA key (cached: the hold loop asks on every request)."""
    return ZoneInfo(key)


@lru_cache(maxsize=1)
def known_zones():
    """Every IANA zone key this machine's zone data has (system files or `tzdata`)."""
    return frozenset(available_timezones())


def local_date(hours, moment):
    """The date at the IVR, at a moment: the center's day."""
    return moment.astimezone(hours.tz).date()


def day_start(hours, moment):
    """The moment the center's day of `moment` began (local midnight), in UTC."""
    return wall_time(hours, local_date(hours, moment), 0)


def wall_time(hours, day, minute):
    """The moment a local wall-clock time happens (minute 1440 is the next midnight), UTC."""
    day = day + timedelta(days=minute // MINUTES_PER_DAY)
    minute %= MINUTES_PER_DAY
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=hours.tz)
    return local.astimezone(timezone.utc)


def intervals(hours, start, days):
    """The open periods (opening, closing) that end after `start`, in order, as UTC moments,
    looking `days` local dates ahead; periods that touch are one. The last one yielded may
    be cut at the horizon: its closing is then None (not closing within it)."""
    first = local_date(hours, start) - timedelta(days=1)
    pending = None
    for offset in range(days + 1):
        day = first + timedelta(days=offset)
        for opening, closing in hours.periods_on(day):
            span = (wall_time(hours, day, opening), wall_time(hours, day, closing))
            if span[1] <= span[0]:
                continue  # a period lost in a DST change
            if pending is not None and span[0] <= pending[1]:
                pending = (pending[0], max(pending[1], span[1]))
                continue
            if pending is not None and pending[1] > start:
                yield pending
            pending = span
    if pending is not None and pending[1] > start:
        horizon = wall_time(hours, first + timedelta(days=days + 1), 0)
        yield (pending[0], None if pending[1] >= horizon else pending[1])


def current_period(hours, moment):
    """(opening, closing) of the open period under way at `moment`, or None when closed;
    closing is None when it does not end within CLOSING_HORIZON_DAYS."""
    if hours.always_open:
        return (moment, None)
    for opening, closing in intervals(hours, moment, CLOSING_HORIZON_DAYS):
        return (opening, closing) if opening <= moment else None
    return None


def is_open(hours, moment):
    """True when the IVR takes calls at `moment`."""
    return current_period(hours, moment) is not None


def closing_time(hours, moment):
    """When the open period under way ends; None when closed at `moment`, or not closing
    within CLOSING_HORIZON_DAYS."""
    period = current_period(hours, moment)
    return period[1] if period else None


def next_opening(hours, moment):
    """The first moment at or after `moment` at which the IVR is open (`moment` itself when
    open); None when it never opens within OPENING_HORIZON_DAYS."""
    if hours.always_open:
        return moment
    for opening, _closing in intervals(hours, moment, OPENING_HORIZON_DAYS):
        return max(opening, moment)
    return None


def next_opening_after_close(hours, moment):
    """The opening that follows the period under way (or the next one, when closed)."""
    closing = closing_time(hours, moment) if is_open(hours, moment) else moment
    return next_opening(hours, closing) if closing is not None else None


def open_between(hours, start, end):
    """How much open time passes from `start` to `end` (zero when end is not after start)."""
    if end <= start:
        return timedelta(0)
    if hours.always_open:
        return end - start
    total = timedelta(0)
    days = (end - start).days + 2
    for opening, closing in intervals(hours, start, days):
        if opening >= end:
            break
        total += min(closing or end, end) - max(opening, start)
    return total


def add_open_time(hours, start, amount):
    """The moment at which `amount` of open time has passed since `start` (Expiration Time
    and Retry Time count open time only); None when the IVR does not stay open long enough
    within OPENING_HORIZON_DAYS."""
    if hours.always_open:
        return start + amount
    left = amount
    for opening, closing in intervals(hours, start, OPENING_HORIZON_DAYS):
        opening = max(opening, start)
        if closing is None or closing - opening >= left:
            return opening + left
        left -= closing - opening
    return None


# A callback asked for while the queue's wait is unknown (too little history) is taken as
# one that can still be made unless the center closes within this.
CLOSING_MARGIN = timedelta(minutes=10)


def callback_time(hours, now, wait=None):
    """When a callback asked for at `now` can be made: `now` while the IVR is open and the
    wait (a timedelta; None when unknown) ends before it closes, else the next opening after
    that close (or after `now`, when closed); None when it never opens again in the horizon."""
    if not is_open(hours, now):
        return next_opening(hours, now)
    closing = closing_time(hours, now)
    if closing is None or now + (wait if wait is not None else CLOSING_MARGIN) < closing:
        return now
    return next_opening(hours, closing)


def open_time_later(hours, start, amount):
    """`add_open_time`, or plain elapsed time when the IVR never stays open that long."""
    return add_open_time(hours, start, amount) or start + amount


# -- in words, for callers and admins ---------------------------------------------------

def clock_text(minute):
    """'09:00', '17:30'; 1440 is '24:00'."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def spoken_clock(minute):
    """'9 AM', '5:30 PM', 'noon', 'midnight': how a time of day is said."""
    minute %= MINUTES_PER_DAY
    if minute == 0:
        return "midnight"
    if minute == 12 * 60:
        return "noon"
    hour, rest = divmod(minute, 60)
    suffix = "AM" if hour < 12 else "PM"
    hour = hour % 12 or 12
    return f"{hour} {suffix}" if rest == 0 else f"{hour}:{rest:02d} {suffix}"


def _day_runs(hours):
    """Consecutive weekdays with the same periods: [(first, last, periods)], Monday first."""
    runs = []
    for index, periods in enumerate(hours.weekly):
        if runs and runs[-1][2] == periods:
            runs[-1] = (runs[-1][0], index, periods)
        else:
            runs.append((index, index, periods))
    return runs


def _days_text(first, last):
    if first == last:
        return DAY_NAMES[first]
    joiner = " and " if last == first + 1 else " to "
    return DAY_NAMES[first] + joiner + DAY_NAMES[last]


def week_lines(hours):
    """The weekly schedule as (days, hours) lines for the portal: ('Monday to Friday',
    '09:00-17:00'), ('Saturday and Sunday', 'closed')."""
    lines = []
    for first, last, periods in _day_runs(hours):
        text = ", ".join(f"{clock_text(a)}-{clock_text(b)}" for a, b in periods) if periods else "closed"
        lines.append((_days_text(first, last), "open all day" if periods == ALL_DAY else text))
    return lines


def spoken_week(hours):
    """'We are open Monday to Friday, 9 AM to 5 PM, and Saturday, 10 AM to 2 PM.'"""
    parts = []
    for first, last, periods in _day_runs(hours):
        if not periods:
            continue
        if periods == ALL_DAY:
            said = "all day"
        else:
            said = " and ".join(f"{spoken_clock(a)} to {spoken_clock(b)}" for a, b in periods)
        parts.append(f"{_days_text(first, last)}, {said}")
    if not parts:
        return ""
    return "We are open " + (", and ".join(parts)) + "."


def spoken_moment(hours, now, moment):
    """When `moment` is, as said to someone at the IVR at `now`: 'today at 9 AM',
    'tomorrow at 9 AM', 'on Monday at 9 AM', 'on January 5 at 9 AM'."""
    local = moment.astimezone(hours.tz)
    today = local_date(hours, now)
    at = spoken_clock(local.hour * 60 + local.minute)
    days = (local.date() - today).days
    if days <= 0:
        return f"today at {at}"
    if days == 1:
        return f"tomorrow at {at}"
    if days < 7:
        return f"on {DAY_NAMES[local.weekday()]} at {at}"
    return f"on {local.strftime('%B')} {local.day} at {at}"
