"""Wallboard figures: what the line looks like now, and hourly counters summed for today
and the last 24 hours. Plain Python over what storage returns; no Flask, Twilio or PynamoDB.

Counters live in hourly buckets per queue, one small item each, updated with atomic ADDs in
the same DynamoDB transaction as the state change they count (see storage/counters.py), so a
retried Lambda or a duplicate status callback counts nothing twice. Time from request to
connected is kept as a fixed histogram, so its median and 90th percentile come from counters.
"""
from datetime import datetime, timedelta, timezone

from callback.domain import hours as open_hours
from callback.domain import records as m

# Transitions counted once each, per queue and hour.
REQUESTED = "requested"  # a holding caller chose a callback (it was stored)
COMPLETED = "completed"
EXPIRED = "expired"
CANCELED = "canceled"
NUMBER_REFUSED = "number_refused"  # the callback ended: Twilio refuses to call the number
ALREADY_PENDING = "already_pending"  # a request not stored: the number already had one pending
JOINED = "joined"  # a caller was recorded holding in the queue (counted in the hour they joined)
ANSWERED = "answered"  # a holding caller joined an agent's conference
ABANDONED = "abandoned"  # hung up while holding
CONNECTED = "connected"
FIRST_ATTEMPT_CONNECTED = "first_attempt_connected"
TEXTS_SENT = "texts_sent"  # Twilio took a text to a customer (callback.domain.texts)
TEXTS_FAILED = "texts_failed"  # a text Twilio refused, or reported failed or undelivered
EVENTS = (REQUESTED, COMPLETED, EXPIRED, CANCELED, NUMBER_REFUSED, ALREADY_PENDING, JOINED, ANSWERED,
          ABANDONED, CONNECTED, FIRST_ATTEMPT_CONNECTED, TEXTS_SENT, TEXTS_FAILED)
ENDINGS = {m.COMPLETED: COMPLETED, m.EXPIRED: EXPIRED, m.CANCELED: CANCELED}

# Upper bounds (seconds) of the time-to-connected histogram; the last bucket is open-ended.
WAIT_BOUNDS = (60, 120, 300, 600, 900, 1800, 3600, 7200)
WAIT_BUCKETS = tuple(f"wait_{i}" for i in range(len(WAIT_BOUNDS) + 1))
COUNTERS = EVENTS + WAIT_BUCKETS

HOURS = 24


def ending(status, reason):
    """The counter a callback's final status moves; None for one the wallboard does not count
    (a failure other than Twilio refusing the number: none today)."""
    if status == m.FAILED:
        return NUMBER_REFUSED if reason == "number-refused" else None
    return ENDINGS.get(status)


def hour_of(moment):
    """The UTC hour a moment falls in, as a timezone-aware datetime."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hour_key(moment):
    """The sort key of a moment's hourly bucket: '2026-01-05T15'."""
    return hour_of(moment).strftime("%Y-%m-%dT%H")


def hour_from_key(key):
    """The hour a bucket's sort key names."""
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)


def wait_bucket(seconds):
    """The histogram counter a time from request to connected falls in."""
    for i, bound in enumerate(WAIT_BOUNDS):
        if seconds <= bound:
            return WAIT_BUCKETS[i]
    return WAIT_BUCKETS[-1]


def today_since(hours, now):
    """The first hourly bucket of the center's day: the UTC hour its local midnight falls in
    (exact for zones a whole number of hours from UTC; in the others, such as India's or
    Newfoundland's, "today" starts up to half an hour early)."""
    return hour_of(open_hours.day_start(hours, now))


def first_hour_needed(now, hours=None):
    """The earliest hour any figure needs: the last 24 hours and all of the center's day."""
    today = today_since(hours, now) if hours is not None else \
        now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(hour_of(now) - timedelta(hours=HOURS - 1), today)


def percentile(histogram, fraction):
    """The histogram bound under which `fraction` of the counted waits fall, in seconds;
    None when nothing was counted, and None for waits beyond the last bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    running = 0
    for i, count in enumerate(histogram):
        running += count
        if running >= rank:
            return WAIT_BOUNDS[i] if i < len(WAIT_BOUNDS) else None
    return None


def totals(buckets):
    """Counters summed over some hourly buckets, with the rates and percentiles they give."""
    sums = {name: sum(b.get(name, 0) for b in buckets) for name in COUNTERS}
    histogram = [sums.pop(name) for name in WAIT_BUCKETS]
    figures = {name: sums[name] for name in EVENTS}
    figures["first_attempt_success_rate"] = (
        round(sums[FIRST_ATTEMPT_CONNECTED] / sums[CONNECTED], 3) if sums[CONNECTED] else None)
    figures["time_to_connect"] = {
        "median_seconds_at_most": percentile(histogram, 0.5),
        "p90_seconds_at_most": percentile(histogram, 0.9),
        "histogram": [{"at_most_seconds": bound, "count": count}
                      for bound, count in zip(WAIT_BOUNDS + (None,), histogram)],
    }
    return figures


def agent_figures(agents, queue_name):
    """Agents of a queue: available, on a call (ringing or talking), away."""
    mine = [a for a in agents if queue_name in a.queues]
    return {"available": sum(a.status == m.AVAILABLE for a in mine),
            "on_call": sum(a.status in (m.RESERVED, m.BUSY) for a in mine),
            "away": sum(a.status == m.OFFLINE for a in mine)}


def _age(now, since):
    return max(0, int((now - since).total_seconds())) if since else None


def _booked_today(storage, queue_name, settings, today):
    """The queue's time slots booked on the center's day starting at `today` (none where
    callers cannot choose a time): start, its local time, booked and capacity."""
    if settings.slot_capacity <= 0:
        return []
    booked = storage.booked_slots(queue_name, today, today + timedelta(days=1) - timedelta(seconds=1))
    return [{"start": start.isoformat(), "local": start.astimezone(settings.hours.tz).strftime("%H:%M"),
             "booked": count, "capacity": settings.slot_capacity}
            for start, count in sorted(booked.items()) if count > 0]


def collect(storage, ivrs, now, ivr_name=None, queue_name=None):
    """Every figure of the wallboard, per queue and per IVR, as plain JSON-ready data.

    Reads per refresh: one Query for agents, one for callbacks being dialed, and per queue
    four index reads (how many hold, the longest holding, how many callbacks are pending,
    the oldest) plus one Query of at most 25 hourly buckets - whatever the history size -
    and, where callers may choose a time, one Query of the day's booked slots."""
    day_ago = hour_of(now) - timedelta(hours=HOURS - 1)
    agents = storage.list_agents()
    dialing = storage.open_callbacks(m.DIALING)
    queues, by_ivr = [], {}
    for ivr in ivrs:
        if ivr_name and ivr.name != ivr_name:
            continue
        # "Today" is the center's day, and hours are labelled by its clock.
        hours = ivr.settings.hours
        since, today = first_hour_needed(now, hours), today_since(hours, now)
        center = {"zone": hours.zone, "open": open_hours.is_open(hours, now),
                  "today_since": today.isoformat()}
        for queue in ivr.queues:
            if queue_name and queue.name != queue_name:
                continue
            oldest_waiting = storage.waiting_in_queue(queue.name, limit=1)
            oldest_pending = storage.oldest_pending(queue.name)
            buckets = storage.hourly_counts(queue.name, since, now)
            day_hours = [hour_of(now) - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
            by_hour = {b["hour"]: b for b in buckets}
            last_day = [b for b in buckets if b["hour"] >= day_ago]
            todays = [b for b in buckets if b["hour"] >= today]
            queues.append({
                "name": queue.name, "ivr": ivr.name, "center": center,
                "now": {
                    "holding": storage.count_waiting(queue.name),
                    "longest_hold_seconds": _age(now, oldest_waiting[0].joined_at if oldest_waiting else None),
                    "pending_callbacks": storage.count_pending(queue.name),
                    "oldest_pending_seconds": _age(now, oldest_pending.place_in_line if oldest_pending else None),
                    "agents": agent_figures(agents, queue.name),
                    "dialing": sum(cb.queue_name == queue.name for cb in dialing),
                },
                "today": totals(todays),
                "last_24h": totals(last_day),
                "hours": [{"hour": h.isoformat(), "local_hour": h.astimezone(hours.tz).strftime("%H:%M"),
                           **{e: by_hour.get(h, {}).get(e, 0) for e in EVENTS}} for h in day_hours],
                "booked_slots": _booked_today(storage, queue.name, ivr.settings, today),
            })
            by_ivr.setdefault(ivr.name, {"today": [], "last_24h": [], "center": center})
            by_ivr[ivr.name]["today"] += todays
            by_ivr[ivr.name]["last_24h"] += last_day
    return {
        "generated_at": now.isoformat(),
        "queues": queues,
        "ivrs": [{"name": name, "center": b["center"], "today": totals(b["today"]),
                  "last_24h": totals(b["last_24h"])} for name, b in by_ivr.items()],
    }
