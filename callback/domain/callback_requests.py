"""A callback asked for from outside a call (a CRM or a website, through the API): the
request checked by the IVR's own rules, and when any callback is due and expires (the
voice path's rules too). Plain Python; the moment is always passed in.

A request names a queue and an E.164 number, optionally a name, a reason and a window
(earliest, latest). Without a window it is due at once (or when the customer's calling
window opens) and expires after the IVR's Expiration Time of open time, like a caller's.
A window must lie wholly inside the IVR's open hours and the customer's calling window,
within the next LOOKAHEAD_DAYS: the callback is due at its earliest moment, ranked there
(its place in line), retried inside it and expired at its latest. A window of exactly one
of the IVR's half-hours is that slot, booked against its capacity like a caller's choice;
a longer window books no slot (it promises no half-hour).
"""
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from callback.domain import dialing, slots
from callback.domain import hours as h
from callback.domain.numbers import is_e164

FIELDS = ("queue", "number", "name", "reason", "window")
MAX_NAME = 100
MAX_REASON = 300
# A client's clock may run a little behind ours: an earliest moment this far back is now.
CLOCK_SKEW = timedelta(minutes=5)
MAX_AHEAD = timedelta(days=slots.LOOKAHEAD_DAYS)
NUMBER_FORMAT = "a number in E.164 form, like +14155550100"
WHY_NOT = {
    dialing.NOT_NANP: "only numbers of the +1 plan are called back",
    dialing.NOT_VALID: "that number does not exist in the numbering plan",
    dialing.PREMIUM: "that number charges the caller (premium rate): it is never dialed",
    dialing.OUTSIDE_REGIONS: "this IVR does not call that region (see its allowed regions)",
    dialing.TOLL_FREE: "this IVR does not call toll-free numbers",
    dialing.PERSONAL: "this IVR does not call 5XX personal numbers",
}


@dataclass(frozen=True)
class CallbackRequest:
    """A checked request: where, whom, and when it may be made."""

    ivr: object
    queue: object
    number: str
    name: str | None
    reason: str | None
    window: tuple | None  # (earliest, latest), aware UTC datetimes


def clean_text(value):
    """`value` without control or format characters, each run of white space one space."""
    kept = "".join(" " if c.isspace() else c for c in value
                   if c.isspace() or not unicodedata.category(c).startswith("C"))
    return " ".join(kept.split())


def _text(raw, field, limit, errors):
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        errors[field] = "must be a string"
        return None
    cleaned = clean_text(value)
    if len(cleaned) > limit:
        errors[field] = f"at most {limit} characters"
    return cleaned or None


def _moment(value):
    """An ISO 8601 moment with its UTC offset, as an aware datetime; None otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _inside_customer_window(clock, start, end):
    """True when the customer's calling window is open from `start` to `end` in every zone."""
    if not clock.is_open(start):
        return False
    for zone in clock.zones:
        local = clock.local_time(start, zone)
        # Open at the start, so that local day's window holds it: it must hold the end too.
        if end > datetime.combine(local.date(), clock.end, tzinfo=local.tzinfo):
            return False
    return True


def check_window(raw, settings, number, now, errors):
    """The (earliest, latest) of a request's window, or None; problems go to `errors`."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"earliest", "latest"}:
        errors["window"] = "must be an object {earliest, latest}"
        return None
    earliest, latest = _moment(raw.get("earliest")), _moment(raw.get("latest"))
    for field, value in (("earliest", earliest), ("latest", latest)):
        if value is None:
            errors[f"window.{field}"] = "an ISO 8601 moment with its UTC offset (2026-05-04T14:00:00-04:00)"
    if earliest is None or latest is None:
        return None
    earliest, latest = earliest.astimezone(now.tzinfo), latest.astimezone(now.tzinfo)
    if earliest < now - CLOCK_SKEW:
        errors["window.earliest"] = "is in the past"
    elif latest - earliest < slots.SLOT:
        errors["window.latest"] = "must be at least 30 minutes after earliest"
    elif latest > now + MAX_AHEAD:
        errors["window.latest"] = f"must be within {slots.LOOKAHEAD_DAYS} days"
    elif slots.books_slot(earliest, latest) and not slots.is_slot(settings.hours, earliest, latest):
        errors["window"] = "a half-hour window must be one of the IVR's half-hours (on :00 or :30)"
    else:
        period = h.current_period(settings.hours, earliest)
        if period is None or (period[1] is not None and period[1] < latest):
            errors["window"] = "must lie wholly inside the IVR's open hours (GET /api/ivrs/{name}/hours)"
        elif number and not _inside_customer_window(settings.customer_clock(number), earliest, latest):
            errors["window"] = "must lie wholly inside the customer's calling window, in their local time"
    return None if errors else (earliest, latest)


def check_request(raw, ivrs, now):
    """(CallbackRequest, {}) for a valid request body, else (None, {field: message})."""
    errors = {field: "unknown field" for field in raw if field not in FIELDS}
    queue_name = raw.get("queue")
    ivr = queue = None
    if not isinstance(queue_name, str) or not queue_name.strip():
        errors["queue"] = "is required"
    else:
        ivr = next((i for i in ivrs if i.queue(queue_name.strip())), None)
        queue = ivr.queue(queue_name.strip()) if ivr else None
        if ivr is None:
            errors["queue"] = "no such queue"
    number = raw.get("number")
    number = number.strip() if isinstance(number, str) else None
    if not number or not is_e164(number):
        errors["number"] = NUMBER_FORMAT
        number = None
    elif ivr is not None:
        why = dialing.why_not_callable(number, ivr.settings.dial_rules)
        if why is not None:
            errors["number"] = WHY_NOT.get(why, why)
            number = None
    name = _text(raw, "name", MAX_NAME, errors)
    reason = _text(raw, "reason", MAX_REASON, errors)
    window = check_window(raw.get("window"), ivr.settings, number, now, errors) if ivr else None
    if errors:
        return None, errors
    return CallbackRequest(ivr, queue, number, name, reason, window), {}


def timing(request, now):
    """(place in line, due, expires) of a checked request made at `now`: a window's callback
    is ranked and due at its earliest moment (or now, when that is a moment ago) and expires
    at its latest; any other is ranked by the request's time."""
    if request.window is None:
        return (now, *plain_timing(request.ivr.settings, request.number, now))
    earliest, latest = request.window
    return earliest, max(earliest, now), latest


def plain_timing(settings, number, now):
    """(due, expires) of a callback asked for at `now` without a time: outside the customer's
    calling window it waits for the window; Expiration Time counts open time only, from
    the moment they may first be called (a request just before closing lives on after the
    next opening)."""
    due = settings.customer_clock(number).next_opening(now) or now
    return due, h.open_time_later(settings.hours, due, timedelta(minutes=settings.expiration_minutes))
