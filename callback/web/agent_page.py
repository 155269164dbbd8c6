"""An agent's own page, made for a phone's browser: available or away (with why), the work
being offered to them now, and their day. It refreshes itself from its JSON twin, as the
dashboard does.

Whose page a request may see is decided in one place, `whose_page`: an agent sees only
their own (`/me` brings them there); supervisors and admins may open any agent's.
"""
from datetime import timezone

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from callback.domain import agent_day, audit
from callback.domain import hours as h
from callback.domain import records as m
from callback.domain.users import SUPERVISOR, at_least
from callback.storage import Conflict, NotFound, StorageError
from callback.web.auth import current_user, login_required, storage_unavailable
from callback.web.headers import CONTENT_SECURITY_POLICY
from callback.web.trail import record

bp = Blueprint("agent_page", __name__, url_prefix="/agents")
bp.register_error_handler(StorageError, storage_unavailable)
REFRESH_SECONDS = 15
# The page's one script is our own static file, as on the dashboard.
PAGE_CSP = CONTENT_SECURITY_POLICY.replace("script-src 'none'", "script-src 'self'")
AWAY = "away"


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def whose_page(agent_id):
    """The agent whose page this request may see, or 404: an agent's own only; any agent's
    for a supervisor or an admin (404, not 403: an agent learns no other agent's id)."""
    user = current_user()
    if user is None or (not at_least(user.role, SUPERVISOR) and user.agent_id != agent_id):
        abort(404)
    try:
        return services().storage.get_agent(agent_id)
    except NotFound:
        abort(404)


def _center(agent):
    """The settings' hours of the IVR the agent's first queue belongs to: its zone is the
    agent's clock and its midnight starts their day (UTC when none is known)."""
    for ivr in services().directory.ivrs():
        if any(queue.name in agent.queues for queue in ivr.queues):
            return ivr
    return None


def _content(agent):
    """Everything the page shows, as plain data (agent_day), read for this moment."""
    svc = services()
    now = svc.clock.now()
    ivr = _center(agent)
    tz = ivr.settings.hours.tz if ivr else timezone.utc
    since = h.day_start(ivr.settings.hours, now) if ivr else now.replace(hour=0, minute=0, second=0,
                                                                          microsecond=0)
    return {"agent": agent_day.presence(agent, tz), "work": _work(agent, now, tz),
            "day": agent_day.day(svc.storage.work_since(agent.agent_id, since), tz),
            "zone": ivr.settings.hours.zone if ivr else "UTC", "generated_at": now.isoformat(),
            "clock": now.astimezone(tz).strftime("%H:%M:%S")}


def _work(agent, now, tz):
    """The work the agent is rung for or on now (None when they have none)."""
    storage = services().storage
    if agent.status not in (m.RESERVED, m.BUSY) or not agent.work_key:
        return None
    if agent.work_kind == "call":
        return agent_day.holding_work(storage.get_waiting_call(agent.work_key), now, tz)
    try:
        cb = storage.get_callback(agent.work_key)
    except NotFound:
        return None
    ivr = services().directory.ivr(cb.ivr_name)
    return agent_day.callback_work(agent, cb, ivr.settings.max_retries if ivr else 1, tz)


def _rendered(agent):
    content = _content(agent)
    return content, render_template("_agent_today.html", page=content)


@bp.get("/<agent_id>/today")
@login_required
def today(agent_id):
    """An agent's page: presence, the work offered now, the day; refreshing itself."""
    agent = whose_page(agent_id)
    content, board = _rendered(agent)
    response = make_response(render_template(
        "agent_page.html", page=content, board=board, refresh_seconds=REFRESH_SECONDS,
        reasons=agent_day.AWAY_REASONS, other=agent_day.OTHER, max_length=agent_day.REASON_MAX_LENGTH))
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@bp.get("/<agent_id>/today.json")
@login_required
def today_data(agent_id):
    """The page's content and its re-rendered board, for the page's refresh script."""
    content, board = _rendered(whose_page(agent_id))
    response = jsonify(**content, html=board)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<agent_id>/today/presence")
@login_required
def presence(agent_id):
    """Available, or away with a reason: the same change as the admin's status button."""
    agent = whose_page(agent_id)
    choice = request.form.get("status")
    reason = None
    if choice == AWAY:
        reason, error = agent_day.away_reason(request.form.get("reason"), request.form.get("other"))
        if error:
            flash(error, "error")
            return redirect(url_for("agent_page.today", agent_id=agent.agent_id), 303)
    elif choice != m.AVAILABLE:
        abort(400)
    status = m.OFFLINE if choice == AWAY else m.AVAILABLE
    try:
        services().dispatcher.set_presence(agent.agent_id, status, away_reason=reason)
    except Conflict:
        flash("You are on a call: your status changes when it ends.", "error")
    else:
        if current_user().agent_id != agent.agent_id:
            # Presence set by someone else (a supervisor) is audited; an agent's own is not.
            record(audit.PRESENCE, "changed", agent.agent_id,
                   {"status": agent.status, "away_reason": agent.away_reason},
                   {"status": status, "away_reason": reason})
        flash("You are available: calls can come now." if status == m.AVAILABLE
              else f"You are away ({reason}).", "ok")
    return redirect(url_for("agent_page.today", agent_id=agent.agent_id), 303)
