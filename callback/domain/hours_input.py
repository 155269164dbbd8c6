"""Open hours as admins type them (portal form and JSON API alike), as the API shows them and
as storage keeps them: parsed, checked, and written back as text. Plain Python.

One text form serves all three: a day's periods are '09:00-17:00, 18:00-20:00' (blank or
'closed': closed all day; '24h': open all day), a holiday is '2026-12-25 Christmas Day', a
closure '2026-08-03 to 2026-08-07 Summer shutdown'.
"""
import re
from datetime import date

from callback.domain.hours import (
    ALL_DAY,
    DAY_NAMES,
    DAYS,
    Closure,
    OpenHours,
    clock_text,
    known_zones,
)

MAX_PERIODS = 6
MAX_DATES = 60
MAX_NOTE = 80
MAX_CLOSURE_DAYS = 366
FIELDS = ("time_zone", "weekly", "holidays", "closures", "closed_callbacks")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NOTE = re.compile(r"[^\W_][\w &'.,()!/-]*")
ALL_DAY_WORDS = ("24h", "24 h", "all day", "open all day")
CLOSED_WORDS = ("", "closed", "-")

# name: (label, help) as the portal shows them.
LABELS = {
    "time_zone": ("Time Zone", "The IANA time zone the hours are in (America/New_York, America/Chicago, "
                               "America/Denver, America/Los_Angeles, America/Phoenix, Pacific/Honolulu …). "
                               "The portal shows this IVR's times in it."),
    "weekly": ("Weekly Hours", "Per day, the times the center takes calls, in 24-hour form: 09:00-17:00, "
                               "or 09:00-12:00, 13:00-17:00; blank or 'closed' for a closed day, '24h' for "
                               "all day. A period that runs past midnight is written as two: 22:00-24:00, "
                               "then 00:00-02:00 the next day."),
    "holidays": ("Holidays", "One a line: the date, then its name (2026-12-25 Christmas Day)."),
    "closures": ("Closures", "One a line: first and last day, then why (2026-08-03 to 2026-08-07 "
                             "Summer shutdown)."),
    "closed_callbacks": ("Callbacks While Closed", "A caller who calls while the center is closed hears "
                                                   "the hours and may ask to be called back when it opens. "
                                                   "Off: they hear the hours and goodbye."),
}


def _minute(text):
    match = _CLOCK.fullmatch(text.strip())
    if not match:
        raise ValueError(f"'{text.strip()[:20]}' is not a time like 09:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ValueError(f"'{text.strip()}' is not a time of day")
    return hour * 60 + minute


def parse_periods(text):
    """A day's open periods from '09:00-12:00, 13:00-17:00'; ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError("must be text such as 09:00-17:00")
    words = " ".join(text.split()).lower()
    if words in CLOSED_WORDS:
        return ()
    if words in ALL_DAY_WORDS:
        return ALL_DAY
    periods = []
    for part in words.split(","):
        opening, dash, closing = part.partition("-")
        if not dash:
            raise ValueError(f"'{part.strip()[:20]}' is not a period like 09:00-17:00")
        periods.append((_minute(opening), _minute(closing)))
    periods.sort()
    if len(periods) > MAX_PERIODS:
        raise ValueError(f"at most {MAX_PERIODS} periods a day")
    for opening, closing in periods:
        if closing <= opening:
            raise ValueError(f"{clock_text(opening)}-{clock_text(closing)} closes before it opens "
                             "(write a period past midnight as two: 22:00-24:00 and 00:00-02:00)")
    for (_a, first_closing), (second_opening, _b) in zip(periods, periods[1:]):
        if second_opening < first_closing:
            raise ValueError("periods overlap")
    return tuple(periods)


def format_periods(periods):
    """'09:00-12:00, 13:00-17:00'; '' for a closed day, '24h' for all day."""
    if periods == ALL_DAY:
        return "24h"
    return ", ".join(f"{clock_text(a)}-{clock_text(b)}" for a, b in periods)


def _date(text):
    text = text.strip()
    if not _DATE.fullmatch(text):
        raise ValueError(f"'{text[:20]}' is not a date like 2026-12-25")
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text} is not a date") from exc
    if not 2000 <= day.year <= 2100:
        raise ValueError(f"{text} is out of range")
    return day


def _note(text):
    if not isinstance(text, str):
        raise ValueError("a name must be text")
    text = " ".join(text.split())
    if len(text) > MAX_NOTE:
        raise ValueError(f"a name may be at most {MAX_NOTE} characters")
    if text and not _NOTE.fullmatch(text):
        raise ValueError("a name may hold letters, digits, spaces and & ' . , ( ) ! / - only")
    return text


def _lines(value):
    """The entries of a holidays or closures field: its non-blank text lines, or a JSON list
    of at most MAX_DATES."""
    items = [line for line in value.splitlines() if line.strip()] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("must be a list")
    if len(items) > MAX_DATES:
        raise ValueError(f"at most {MAX_DATES}")
    return items


def parse_holidays(value):
    """Holidays from text lines ('2026-12-25 Christmas Day') or JSON ({"date", "name"})."""
    items = _lines(value)
    out = []
    for item in items:
        if isinstance(item, dict) and set(item) <= {"date", "name"} and isinstance(item.get("date"), str):
            day, name = _date(item["date"]), _note(item.get("name") or "")
        elif isinstance(item, str):
            first, _, rest = item.strip().partition(" ")
            day, name = _date(first), _note(rest)
        else:
            raise ValueError('each holiday is {"date": "2026-12-25", "name": "…"}')
        out.append(Closure(day, day, name))
    return tuple(sorted(set(out), key=lambda c: (c.first, c.note)))


def parse_closures(value):
    """Closures from text lines ('2026-08-03 to 2026-08-07 why') or JSON ({"from", "to", "note"})."""
    items = _lines(value)
    out = []
    for item in items:
        if isinstance(item, dict) and set(item) <= {"from", "to", "note"} and all(
                isinstance(item.get(k), str) for k in ("from", "to")):
            first, last, note = _date(item["from"]), _date(item["to"]), _note(item.get("note") or "")
        elif isinstance(item, str):
            match = re.fullmatch(r"\s*(\S+)\s+(?:to\s+)?(\S+)\s*(.*)", item)
            if not match:
                raise ValueError(f"'{item.strip()[:30]}' is not like 2026-08-03 to 2026-08-07 why")
            first, last, note = _date(match.group(1)), _date(match.group(2)), _note(match.group(3))
        else:
            raise ValueError('each closure is {"from": "2026-08-03", "to": "2026-08-07", "note": "…"}')
        if last < first:
            raise ValueError(f"{last} is before {first}")
        if (last - first).days >= MAX_CLOSURE_DAYS:
            raise ValueError(f"a closure may last at most {MAX_CLOSURE_DAYS} days")
        out.append(Closure(first, last, note))
    return tuple(sorted(set(out), key=lambda c: (c.first, c.last, c.note)))


def parse_zone(value):
    """An IANA time zone key this machine knows."""
    if not isinstance(value, str) or value.strip() not in known_zones():
        raise ValueError("must be an IANA time zone such as America/New_York")
    return value.strip()


def holiday_lines(hours):
    """The holidays as the form shows them, one a line."""
    return "\n".join(f"{c.first.isoformat()} {c.note}".strip() for c in hours.holidays)


def closure_lines(hours):
    """The closures as the form shows them, one a line."""
    return "\n".join(f"{c.first.isoformat()} to {c.last.isoformat()} {c.note}".strip()
                     for c in hours.closures)


def hours_json(hours):
    """Open hours as the API shows (and takes) them."""
    return {
        "time_zone": hours.zone,
        "weekly": {day: format_periods(periods) for day, periods in zip(DAYS, hours.weekly)},
        "holidays": [{"date": c.first.isoformat(), "name": c.note} for c in hours.holidays],
        "closures": [{"from": c.first.isoformat(), "to": c.last.isoformat(), "note": c.note}
                     for c in hours.closures],
        "closed_callbacks": hours.closed_callbacks,
    }


def validate_hours(raw, current=None, *, json=False):
    """Parse and check open hours; returns (hours, errors) and hours only if no error.

    Absent fields keep their current value (and an absent day in `weekly` its periods).
    Error keys: 'time_zone', 'weekly.<day>', 'holidays', 'closures', 'closed_callbacks'.
    """
    current = current or OpenHours()
    if not isinstance(raw, dict):
        return None, {"_": "hours must be an object"}
    errors = {name: "unknown field" for name in sorted(set(raw) - set(FIELDS))}
    values = {"zone": current.zone, "weekly": list(current.weekly), "holidays": current.holidays,
              "closures": current.closures, "closed_callbacks": current.closed_callbacks}
    if "time_zone" in raw:
        try:
            values["zone"] = parse_zone(raw["time_zone"])
        except ValueError as exc:
            errors["time_zone"] = str(exc)
    weekly = raw.get("weekly", {})
    if not isinstance(weekly, dict):
        errors["weekly"] = "must be an object of days (mon … sun)"
        weekly = {}
    for day in sorted(set(weekly) - set(DAYS)):
        errors[f"weekly.{day}"] = "not a day (mon, tue, wed, thu, fri, sat, sun)"
    for index, day in enumerate(DAYS):
        if day in weekly:
            try:
                values["weekly"][index] = parse_periods(weekly[day])
            except ValueError as exc:
                errors[f"weekly.{day}"] = f"{DAY_NAMES[index]}: {exc}"
    for name, parse in (("holidays", parse_holidays), ("closures", parse_closures)):
        if name in raw:
            try:
                values[name] = parse(raw[name])
            except ValueError as exc:
                errors[name] = str(exc)
    if "closed_callbacks" in raw:
        value = raw["closed_callbacks"]
        if isinstance(value, bool):
            values["closed_callbacks"] = value
        elif not json and isinstance(value, str):
            values["closed_callbacks"] = value.strip().lower() in ("on", "true", "1", "yes")
        else:
            errors["closed_callbacks"] = "must be true or false"
    if errors:
        return None, errors
    return OpenHours(values["zone"], tuple(values["weekly"]), values["holidays"], values["closures"],
                     values["closed_callbacks"]), {}


# -- as storage keeps them -------------------------------------------------------------------

def hours_record(hours):
    """Open hours as plain strings and lists, for storage."""
    return {
        "time_zone": hours.zone,
        "weekly_hours": [format_periods(periods) or "closed" for periods in hours.weekly],
        "holidays": [f"{c.first.isoformat()} {c.note}".strip() for c in hours.holidays],
        "closures": [f"{c.first.isoformat()} {c.last.isoformat()} {c.note}".strip() for c in hours.closures],
        "closed_callbacks": hours.closed_callbacks,
    }


def hours_from_record(time_zone, weekly_hours, holidays, closures, closed_callbacks):
    """Open hours from what storage keeps; absent parts (an IVR saved before hours existed)
    take the defaults: open around the clock."""
    default = OpenHours()
    weekly = tuple(parse_periods(text) for text in weekly_hours) if weekly_hours else default.weekly
    return OpenHours(
        zone=time_zone or default.zone,
        weekly=weekly if len(weekly) == 7 else default.weekly,
        holidays=parse_holidays(list(holidays or [])),
        closures=parse_closures(list(closures or [])),
        closed_callbacks=default.closed_callbacks if closed_callbacks is None else bool(closed_callbacks),
    )

