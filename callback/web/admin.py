"""Admin pages: IVRs and their callback settings, queues, agents, callbacks."""
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
from itsdangerous import BadSignature, URLSafeSerializer

from callback.domain import audit, labels, stats, transitions
from callback.domain import records as m
from callback.domain.numbers import for_people, mask_for_list
from callback.domain.settings import (
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    INTEGER_FIELDS,
    OPTIONAL_FIELDS,
    REGION_CHOICES,
    REGIONS_FIELD,
    TEXT_FIELDS,
    priority_warnings,
    validate_settings,
)
from callback.domain.validation import check_agent, check_ivr, phone_taken
from callback.storage import Conflict, NotFound, PhoneTaken, StorageError
from callback.web.auth import current_user, home_for, login_required, storage_unavailable
from callback.web.headers import CONTENT_SECURITY_POLICY
from callback.web.queue_sizing import saved_with_queues_sized
from callback.web.trail import record, record_ivr

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 25
DASHBOARD_REFRESH_SECONDS = 15
DASHBOARD_CSP = CONTENT_SECURITY_POLICY.replace("script-src 'none'", "script-src 'self'")
BLANK_QUEUE_ROWS = 3
bp.register_error_handler(StorageError, storage_unavailable)


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


@bp.app_template_filter("masked")
def masked(number):
    """A number as lists show it: '(212) ***-1234', never in full."""
    return mask_for_list(number)


@bp.app_template_filter("phone")
def phone(number):
    """A number in full, as people write it (detail pages only)."""
    return for_people(number)


bp.add_app_template_filter(labels.status_label, "status_label")
bp.add_app_template_filter(labels.outcome_label, "outcome_label")
bp.add_app_template_filter(labels.ended_reason_label, "ended_reason_label")
bp.add_app_template_filter(labels.agent_status_label, "agent_status_label")
bp.add_app_template_filter(labels.figure_label, "figure_label")


@bp.app_template_filter("duration")
def duration(seconds):
    """Seconds for people: '45 s', '12 min', '2 h 05 min'; '—' for none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _ivr_or_404(name):
    try:
        return services().storage.get_ivr(name)
    except NotFound:
        abort(404)


@bp.get("/", strict_slashes=False)
def home():
    """The portal's front door, /admin or /admin/: the role's first page (or the login on the way)."""
    return redirect(home_for(current_user().role))


# -- IVRs --------------------------------------------------------------------------------

@bp.get("/ivrs")
@login_required
def ivrs():
    """IVRs in alphabetical order, each with a Settings link on its right."""
    items = sorted(services().storage.list_ivrs(), key=lambda i: i.name.lower())
    return render_template("ivrs.html", ivrs=items)


def _queue_rows(form):
    count = form.get("queue_rows", "0")
    count = min(int(count), 50) if count.isdigit() else 0
    rows = []
    for i in range(count):
        name = form.get(f"queue_name_{i}", "").strip()
        if name:
            rows.append({"name": name, "priority": form.get(f"queue_priority_{i}", "0"),
                         "callback_enabled": form.get(f"queue_callback_{i}", "") == "on",
                         "max_size": form.get(f"queue_max_size_{i}", "")})
    return rows


@bp.route("/ivrs/new", methods=["GET", "POST"])
@login_required
def ivr_new():
    """Create an IVR."""
    return _ivr_form(None)


@bp.route("/ivrs/<name>/edit", methods=["GET", "POST"])
@login_required
def ivr_edit(name):
    """Edit an IVR's numbers, greeting and queues."""
    return _ivr_form(_ivr_or_404(name))


def _ivr_form(current):
    svc = services()
    errors = {}
    if request.method == "POST":
        raw = {"name": current.name if current else request.form.get("name", ""),
               "numbers": request.form.get("numbers", ""),
               "greeting": request.form.get("greeting", ""),
               "queues": _queue_rows(request.form)}
        others = [i for i in svc.storage.list_ivrs() if not current or i.name != current.name]
        fields, errors = check_ivr(raw, other_ivrs=others, creating=current is None)
        if not errors:
            ivr = (current.evolve(numbers=fields["numbers"], greeting=fields["greeting"],
                                  queues=fields["queues"]) if current
                   else m.Ivr(fields["name"], fields["numbers"], fields["greeting"], fields["queues"]))
            try:
                svc.storage.save_ivr(ivr)
            except Conflict:
                errors = {"_": "Someone else changed this IVR meanwhile. Reload and try again."}
            else:
                svc.directory.invalidate()
                record_ivr(current, ivr)
                saved_with_queues_sized(ivr)
                return redirect(url_for("admin.ivrs"))
        form = {"name": raw["name"], "numbers": raw["numbers"], "greeting": raw["greeting"],
                "queues": raw["queues"]}
        status = 400
    else:
        form = {"name": current.name if current else "",
                "numbers": "\n".join(current.numbers) if current else "",
                "greeting": current.greeting if current else "",
                "queues": [{"name": q.name, "priority": q.priority, "callback_enabled": q.callback_enabled,
                            "max_size": q.max_size} for q in current.queues]
                if current else []}
        status = 200
    rows = form["queues"] + [dict(name="", priority=0, callback_enabled=True, max_size="")] * BLANK_QUEUE_ROWS
    return render_template("ivr_form.html", form=form, rows=rows, errors=errors,
                           creating=current is None), status


@bp.route("/ivrs/<name>/settings", methods=["GET", "POST"])
@login_required
def ivr_settings(name):
    """The IVR's callback settings; invalid input saves nothing."""
    svc = services()
    ivr = _ivr_or_404(name)
    errors, values, status = {}, ivr.settings.as_dict(), 200
    if request.method == "POST":
        # A field added after the first release that the form does not send keeps its value.
        raw = {k: request.form.get(k, "") for k in INTEGER_FIELDS
               if k in request.form or k not in OPTIONAL_FIELDS}
        raw.update({k: request.form[k] for k in (*TEXT_FIELDS, *CHOICE_FIELDS) if k in request.form})
        raw.update({k: request.form[k] for k in BOOLEAN_FIELDS if request.form.get(k)})
        if request.form.get("call_regions_field"):  # the form shows the boxes: none ticked is none
            raw["call_regions"] = request.form.getlist("call_regions")
        settings, errors = validate_settings(raw, ivr.settings, checkbox_form=True)
        if not errors:
            try:
                svc.storage.save_ivr(ivr.evolve(settings=settings))
            except Conflict:
                errors = {"_": "Someone else changed this IVR meanwhile. Reload and try again."}
            else:
                svc.directory.invalidate()
                record(audit.SETTINGS, "changed", ivr.name, ivr.settings.as_dict(), settings.as_dict())
                flash(f"Callback settings of {ivr.name} saved.", "ok")
                return redirect(url_for("admin.ivr_settings", name=ivr.name))
        values = {**values, **raw, **{k: bool(request.form.get(k)) for k in BOOLEAN_FIELDS}}
        status = 400
    warnings = priority_warnings(ivr.settings, ivr.queues)
    return render_template("ivr_settings.html", ivr=ivr, values=values, errors=errors,
                           integer_fields=INTEGER_FIELDS, boolean_fields=BOOLEAN_FIELDS,
                           text_fields=TEXT_FIELDS, choice_fields=CHOICE_FIELDS, regions=REGION_CHOICES,
                           regions_field=REGIONS_FIELD, warnings=warnings), status


# -- queues --------------------------------------------------------------------------------

@bp.get("/queues")
@login_required
def queues():
    """Every queue with its priority, callback option and what waits in it now."""
    storage = services().storage
    rows = []
    for ivr in sorted(storage.list_ivrs(), key=lambda i: i.name.lower()):
        for queue in ivr.queues:
            rows.append({"queue": queue, "ivr": ivr, "waiting": storage.count_waiting(queue.name),
                         "pending": storage.count_pending(queue.name)})
    return render_template("queues.html", rows=rows)


# -- dashboard -----------------------------------------------------------------------------

def _board():
    svc = services()
    figures = stats.collect(svc.storage, sorted(svc.storage.list_ivrs(), key=lambda i: i.name.lower()),
                            svc.clock.now())
    return figures, render_template("_dashboard_board.html", stats=figures, outcomes=DASHBOARD_OUTCOMES,
                                    alerts=svc.storage.active_alerts(svc.clock.now()))


# The outcome bar: how callbacks ended, and the requests not stored because one was pending.
DASHBOARD_OUTCOMES = (stats.COMPLETED, stats.EXPIRED, stats.CANCELED, stats.NUMBER_REFUSED,
                      stats.ALREADY_PENDING)


@bp.get("/dashboard")
@login_required
def dashboard():
    """The wallboard: the line now, today and the last 24 hours, refreshing itself."""
    figures, board = _board()
    response = make_response(render_template("dashboard.html", stats=figures, board=board,
                                             refresh_seconds=DASHBOARD_REFRESH_SECONDS))
    # The one page with a script: our own static file, never an inline one.
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


@bp.get("/dashboard.json")
@login_required
def dashboard_data():
    """The wallboard's figures and its re-rendered board, for the page's refresh script."""
    figures, board = _board()
    response = jsonify(stats=figures, html=board)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- agents --------------------------------------------------------------------------------

@bp.get("/agents")
@login_required
def agents():
    """Agents with their phones, queues and status."""
    items = sorted(services().storage.list_agents(), key=lambda a: a.name.lower())
    return render_template("agents.html", agents=items)


def _known_queues():
    return m.queue_names(services().storage.list_ivrs())


@bp.route("/agents/new", methods=["GET", "POST"])
@login_required
def agent_new():
    """Add an agent."""
    return _agent_form(None)


@bp.route("/agents/<agent_id>/edit", methods=["GET", "POST"])
@login_required
def agent_edit(agent_id):
    """Change an agent's name, phone or queues."""
    try:
        agent = services().storage.get_agent(agent_id)
    except NotFound:
        abort(404)
    return _agent_form(agent)


def _agent_form(agent):
    svc = services()
    known = sorted(_known_queues())
    errors, status = {}, 200
    if request.method == "POST":
        raw = {"id": request.form.get("id", ""), "name": request.form.get("name", ""),
               "phone": request.form.get("phone", ""), "queues": request.form.getlist("queues")}
        fields, errors = check_agent(raw, known_queues=set(known), creating=agent is None)
        if not errors:
            agent_id = agent.agent_id if agent else fields["id"]
            try:
                saved = svc.storage.save_agent_profile(agent_id, name=fields["name"], phone=fields["phone"],
                                                       queues=fields["queues"], now=svc.clock.now(),
                                                       create=agent is None)
            except PhoneTaken as exc:
                errors = {"phone": phone_taken(fields["phone"], exc.name)}
            except Conflict:
                errors = {"id": "an agent with this id exists"}
            else:
                record(audit.AGENT, "changed" if agent else "created", agent_id, audit.agent_fields(agent),
                       audit.agent_fields(saved))
                flash(f"Agent {fields['name']} saved.", "ok")
                return redirect(url_for("admin.agents"))
        form, status = raw, 400
    else:
        form = {"id": agent.agent_id if agent else "", "name": agent.name if agent else "",
                "phone": agent.phone if agent else "", "queues": list(agent.queues) if agent else []}
    return render_template("agent_form.html", form=form, errors=errors, known=known,
                           creating=agent is None), status


@bp.post("/agents/<agent_id>/status")
@login_required
def agent_status(agent_id):
    """Set an agent available or offline from the portal."""
    status = request.form.get("status")
    if status not in (m.AVAILABLE, m.OFFLINE):
        abort(400)
    try:
        before = services().storage.get_agent(agent_id).status
        services().dispatcher.set_presence(agent_id, status)
        record(audit.PRESENCE, "changed", agent_id, {"status": before}, {"status": status})
    except Conflict:
        flash("That agent is on a call; their status changes when the call ends.", "error")
    return redirect(url_for("admin.agents"))


# -- callbacks -------------------------------------------------------------------------

def _cursor_serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="callbacks-page")


@bp.get("/callbacks")
@login_required
def callbacks():
    """Callbacks newest first, filtered by status and IVR, a page at a time."""
    svc = services()
    status = request.args.get("status", "")
    ivr_name = request.args.get("ivr", "")
    if status and status not in m.CALLBACK_STATUSES:
        abort(400)
    start = None
    if request.args.get("after"):
        try:
            start = _cursor_serializer().loads(request.args["after"])
        except BadSignature:
            abort(400)
    items, last_key = svc.storage.list_callbacks(status=status or None, ivr_name=ivr_name or None,
                                                 limit=PAGE_SIZE, start_key=start)
    after = _cursor_serializer().dumps(last_key) if last_key else None
    return render_template("callbacks.html", callbacks=items, status=status, ivr=ivr_name,
                           statuses=m.CALLBACK_STATUSES, ivrs=svc.storage.list_ivrs(), after=after)


@bp.get("/callbacks/<callback_id>")
@login_required
def callback_detail(callback_id):
    """One callback: its number in full, and every attempt."""
    callback = _callback_or_404(callback_id)
    agents = {a.agent_id: a.name for a in services().storage.list_agents()}
    return render_template("callback_detail.html", cb=callback, agents=agents,
                           blocked=services().dispatcher.blocked_reason(callback))


def _callback_or_404(callback_id):
    try:
        return services().storage.get_callback(callback_id)
    except NotFound:
        abort(404)


@bp.route("/callbacks/<callback_id>/cancel", methods=["GET", "POST"])
@login_required
def callback_cancel(callback_id):
    """Cancel a pending callback, once the admin confirmed it (a form, no script needed)."""
    svc = services()
    callback = _callback_or_404(callback_id)
    if request.method == "GET" or request.form.get("confirm") != "yes":
        if callback.status != m.PENDING:
            flash("Only a pending callback can be canceled; this one has moved on.", "error")
            return redirect(url_for("admin.callback_detail", callback_id=callback_id))
        return render_template("callback_cancel.html", cb=callback)
    try:
        svc.storage.commit(callback, transitions.cancel(callback, svc.clock.now()))
        record(audit.CALLBACK, "canceled", callback_id, *audit.cancellation(callback))
        flash("Callback canceled: the caller will not be called back.", "ok")
    except Conflict:
        flash("Only a pending callback can be canceled; this one has moved on.", "error")
    return redirect(url_for("admin.callback_detail", callback_id=callback_id))
