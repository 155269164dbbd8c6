"""The admin portal's page for an IVR's open hours: time zone, weekly schedule, holidays and
closures, checked like the API's (an invalid form saves nothing)."""
from dataclasses import replace

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from callback.domain import audit
from callback.domain import hours as h
from callback.domain.hours_input import (
    LABELS,
    closure_lines,
    format_periods,
    holiday_lines,
    hours_json,
    validate_hours,
)
from callback.storage import Conflict, NotFound, StorageError
from callback.web.auth import login_required, storage_unavailable
from callback.web.trail import record

bp = Blueprint("hours", __name__, url_prefix="/admin")
bp.register_error_handler(StorageError, storage_unavailable)


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def _form_values(hours):
    return {"time_zone": hours.zone, "holidays": holiday_lines(hours), "closures": closure_lines(hours),
            "closed_callbacks": hours.closed_callbacks,
            **{f"weekly.{day}": format_periods(periods) for day, periods in zip(h.DAYS, hours.weekly)}}


@bp.route("/ivrs/<name>/hours", methods=["GET", "POST"])
@login_required
def ivr_hours(name):
    """An IVR's open hours; invalid input saves nothing."""
    svc = services()
    try:
        ivr = svc.storage.get_ivr(name)
    except NotFound:
        abort(404)
    hours, errors, status = ivr.settings.hours, {}, 200
    values = _form_values(hours)
    if request.method == "POST":
        form = request.form
        raw = {"time_zone": form.get("time_zone", ""), "holidays": form.get("holidays", ""),
               "closures": form.get("closures", ""), "closed_callbacks": bool(form.get("closed_callbacks")),
               "weekly": {day: form.get(f"weekly.{day}", "") for day in h.DAYS}}
        hours, errors = validate_hours(raw, ivr.settings.hours)
        if not errors:
            try:
                svc.storage.save_ivr(ivr.evolve(settings=replace(ivr.settings, hours=hours)))
            except Conflict:
                errors = {"_": "Someone else changed this IVR meanwhile. Reload and try again."}
            else:
                svc.directory.invalidate()
                record(audit.HOURS, "changed", ivr.name, hours_json(ivr.settings.hours), hours_json(hours))
                flash(f"Open hours of {ivr.name} saved.", "ok")
                return redirect(url_for("hours.ivr_hours", name=ivr.name))
        values = {**{k: form.get(k, "") for k in values},
                  "closed_callbacks": bool(form.get("closed_callbacks"))}
        hours, status = ivr.settings.hours, 400
    now = svc.clock.now()
    return render_template("ivr_hours.html", ivr=ivr, hours=hours, values=values, errors=errors,
                           labels=LABELS, days=list(zip(h.DAYS, h.DAY_NAMES)), week=h.week_lines(hours),
                           now=now, zones=sorted(h.known_zones())), status
