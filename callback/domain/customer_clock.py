"""The customer's own clock: a callback is dialed only inside a calling window in the
customer's local time (per IVR, 08:00-20:00 by default), and otherwise waits for it.

The zone comes from the number (libphonenumber's time-zone data, through `phonenumbers`).
A geographic number has one zone, or a few neighbouring ones (Alaska's 907 is Adak and
Anchorage), and the window must hold in each. Toll-free, 5XX and some mobile ranges come
back with every zone of the +1 plan (42, Guam to Pago Pago), where "hold in each" would
leave half an hour a day, and an unknown number with `Etc/Unknown`: for those the zones of
the number's own region are used when it keeps one clock (Jamaica, Guam ...), else the
IVR's zone. A ported mobile can be anywhere: the area code is a guess, one more reason for
a courteous window. Plain Python over `zoneinfo`; the moment is always passed in.
"""
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

from callback.domain.hours import DEFAULT_ZONE

DEFAULT_START = "08:00"
DEFAULT_END = "20:00"
# The IVR's zone stands in for a number that does not tell its own.
DEFAULT_TIME_ZONE = DEFAULT_ZONE
# A window shorter than this could be empty for a number whose zones are an hour apart.
MIN_WINDOW = timedelta(hours=2)
UNKNOWN_ZONE = "Etc/Unknown"
# More zones than this for one number is not a place: the plan's or a region's catch-all.
MAX_ZONES = 3
# The +1 regions whose numbers all keep one clock (tests/test_customer_clock.py derives this
# from the package's own data, so an upgrade that changes it fails there). The US and Canada
# span many zones: their catch-all numbers take the IVR's zone.
REGION_ZONES = {
    "AG": ("America/Antigua",), "AI": ("America/Anguilla",), "AS": ("Pacific/Pago_Pago",),
    "BB": ("America/Barbados",), "BM": ("Atlantic/Bermuda",), "BS": ("America/Nassau",),
    "DM": ("America/Dominica",), "DO": ("America/Santo_Domingo",), "GD": ("America/Grenada",),
    "GU": ("Pacific/Guam",), "JM": ("America/Jamaica",), "KN": ("America/St_Kitts",),
    "KY": ("America/Cayman",), "LC": ("America/St_Lucia",), "MP": ("Pacific/Saipan",),
    "MS": ("America/Montserrat",), "PR": ("America/Puerto_Rico",), "SX": ("America/Lower_Princes",),
    "TC": ("America/Grand_Turk",), "TT": ("America/Port_of_Spain",), "VC": ("America/St_Vincent",),
    "VG": ("America/Tortola",), "VI": ("America/St_Thomas",),
}
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_clock_time(value):
    """'08:00' -> time(8, 0); ValueError unless it is HH:MM on a 24-hour clock."""
    if not isinstance(value, str):
        raise ValueError("must be a time such as 08:00")
    match = _CLOCK_TIME.fullmatch(value.strip())
    if not match:
        raise ValueError("must be a time on a 24-hour clock, such as 08:00 or 20:30")
    return time(int(match.group(1)), int(match.group(2)))


def check_window(start, end):
    """None when `start`-`end` (HH:MM texts) is a usable window, else why not."""
    begin, finish = parse_clock_time(start), parse_clock_time(end)
    length = datetime.combine(datetime.min, finish) - datetime.combine(datetime.min, begin)
    if length < MIN_WINDOW:
        return f"must end at least {MIN_WINDOW.seconds // 3600} hours after the start ({start})"
    return None


def zones_for_number(e164, fallback_zone=DEFAULT_TIME_ZONE):
    """The zones a number's window must hold in: its own, its region's, or `fallback_zone`."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return (fallback_zone,)
    zones = tuple(number_zones.time_zones_for_number(number))
    if zones and UNKNOWN_ZONE not in zones and len(zones) <= MAX_ZONES:
        return zones
    return REGION_ZONES.get(phonenumbers.region_code_for_number(number), (fallback_zone,))


@lru_cache(maxsize=64)
def _zone(name):
    return ZoneInfo(name)


@dataclass(frozen=True)
class CustomerClock:
    """A customer's calling window: the same local hours in each of their zones."""

    zones: tuple
    start: time
    end: time

    def _open_in(self, zone, moment):
        local = moment.astimezone(_zone(zone)).time()
        return self.start <= local < self.end

    def closed_zone(self, moment):
        """The first zone whose window is closed at `moment`, or None when open in all."""
        return next((z for z in self.zones if not self._open_in(z, moment)), None)

    def is_open(self, moment):
        """True when `moment` falls inside the window in every zone."""
        return self.closed_zone(moment) is None

    def next_opening(self, moment):
        """`moment` when the window is open, else the first moment after it that is; None
        when it never opens (zones too far apart for the window)."""
        if self.is_open(moment):
            return moment
        candidates = set()
        for zone in self.zones:
            day = moment.astimezone(_zone(zone)).date()
            for offset in range(-1, 3):
                local = datetime.combine(day + timedelta(days=offset), self.start, tzinfo=_zone(zone))
                # A start that does not exist that day (a DST gap) is still a moment: check it.
                candidates.add(local.astimezone(timezone.utc))
        return next((c for c in sorted(candidates) if c > moment and self.is_open(c)), None)

    def local_time(self, moment, zone=None):
        """The customer's wall clock at `moment`, in `zone` (default: their first)."""
        return moment.astimezone(_zone(zone or self.zones[0]))


def customer_clock(e164, *, time_zone=DEFAULT_TIME_ZONE, start=DEFAULT_START, end=DEFAULT_END):
    """The calling window of the customer at `e164`, for an IVR in `time_zone`."""
    return CustomerClock(zones_for_number(e164, time_zone), parse_clock_time(start), parse_clock_time(end))


def spoken_clock(moment):
    """'8 a.m.', '8:30 p.m.', 'noon' for what a caller hears."""
    if moment.hour == 12 and moment.minute == 0:
        return "noon"
    hour = moment.hour % 12 or 12
    suffix = "a.m." if moment.hour < 12 else "p.m."
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def waiting_reason(clock, moment):
    """Why a due callback waits, for the admin: "outside the customer's hours (their time
    07:12)"; None while the window is open."""
    zone = clock.closed_zone(moment)
    if zone is None:
        return None
    return f"outside the customer's hours (their time {clock.local_time(moment, zone):%H:%M})"
