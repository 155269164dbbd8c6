"""The center's own clock in the portal: every time shown in the time zone of the IVR it
belongs to (a callback's, a queue's), "today" the center's day, and whether each IVR is open."""
from flask import Blueprint, current_app, g

from callback.domain import hours as h

bp = Blueprint("center_clock", __name__)
UTC = "UTC"


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def _zones():
    """IVR name -> time zone, read once per request from the cached directory."""
    if "ivr_zones" not in g:
        g.ivr_zones = {ivr.name: ivr.settings.hours.zone for ivr in services().directory.ivrs()}
    return g.ivr_zones


@bp.app_template_global("zone_of")
def zone_of(ivr_name):
    """The time zone of an IVR by name (UTC for one no longer known)."""
    return _zones().get(ivr_name, UTC)


def _local(moment, zone):
    return moment.astimezone(h.zone_info(zone or UTC))


@bp.app_template_filter("when")
def when(moment, zone=None):
    """A moment for people, in a center's zone: '2026-01-05 10:00:00 EST'."""
    return _local(moment, zone).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "—"


@bp.app_template_filter("short_when")
def short_when(moment, zone=None, seconds=False):
    """A compact time for table cells, in a center's zone: 'Jan 05 10:00' (the title says the zone)."""
    return _local(moment, zone).strftime("%b %d %H:%M:%S" if seconds else "%b %d %H:%M") if moment else "—"


@bp.app_template_filter("clock")
def clock(moment, zone=None):
    """A time of day in a center's zone: '17:00'."""
    return _local(moment, zone).strftime("%H:%M") if moment else "—"


def open_status(hours, now):
    """'Open until 17:00', 'Open around the clock', 'Closed until Mon 09:00', 'Closed'."""
    if hours.always_open:
        return "Open around the clock"
    if h.is_open(hours, now):
        closing = h.closing_time(hours, now)
        return f"Open until {_open_day(hours, now, closing)}" if closing else "Open"
    opening = h.next_opening(hours, now)
    return f"Closed until {_open_day(hours, now, opening)}" if opening else "Closed"


def _open_day(hours, now, moment):
    local = _local(moment, hours.zone)
    same_day = local.date() == h.local_date(hours, now)
    return local.strftime("%H:%M") if same_day else local.strftime("%a %b %d %H:%M")


@bp.app_template_global("open_status")
def open_status_now(ivr):
    """Whether an IVR takes calls now, in words, by its own clock."""
    return open_status(ivr.settings.hours, services().clock.now())
