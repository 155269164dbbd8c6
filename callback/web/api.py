"""JSON API for agent desktops, CRMs and admins: bearer tokens with roles (api_access), JSON
errors only."""
import functools

from flask import Blueprint, current_app, g, jsonify, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import HTTPException, InternalServerError

from callback.domain import audit, stats, transitions, voice_table
from callback.domain import records as m
from callback.domain.hours_input import hours_json
from callback.domain.settings import parse_int, validate_settings
from callback.domain.validation import check_agent, check_queue, phone_taken
from callback.storage import Conflict, NotFound, PhoneTaken, StorageError
from callback.web import api_access
from callback.web.api_body import (  # noqa: F401 (the API's modules import these from here)
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    ApiError,
    json_body,
    json_depth,
)
from callback.web.trail import record, record_ivr

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.errorhandler(ApiError)
def _api_error(exc):
    return jsonify(error=exc.message, fields=exc.fields, **exc.extra), exc.status


@bp.errorhandler(StorageError)
def _storage_error(exc):
    current_app.logger.exception("storage error in API")
    return jsonify(error="storage unavailable, try again", fields={}), 503


def _json_http_error(exc):
    """An HTTP error as the API's JSON, keeping headers such as a 405's Allow."""
    response = jsonify(error=exc.description or exc.name, fields={})
    response.status_code = exc.code
    allow = dict(exc.get_headers()).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


@bp.errorhandler(404)
@bp.errorhandler(405)
@bp.errorhandler(400)
@bp.errorhandler(413)
def _http_error(exc):
    return _json_http_error(exc)


@bp.errorhandler(InternalServerError)
def _server_error(exc):
    return jsonify(error="internal error; it has been logged", fields={}), 500


@bp.app_errorhandler(HTTPException)
def _unrouted_error(exc):
    """Requests under /api that matched no route (an unknown path, a %2F in a name, a
    method the route does not take) never reach this blueprint's handlers: they get the
    API's JSON too. Anything else keeps Flask's own answer."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return _json_http_error(exc)
    return exc


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def token_required(view):
    """Refuse a request without a live bearer token (401) or whose token's role may not use
    this route (403); note who is calling in `g.api_actor` (the audit trail reads it)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        svc = services()
        given = api_access.bearer(request.headers.get("Authorization", ""))
        caller = api_access.caller_of(given, svc.config, svc.storage, svc.clock.now()) if given else None
        if caller is None:
            raise ApiError(401, "missing, wrong or revoked bearer token")
        if not api_access.may(caller.role, request.endpoint):
            raise ApiError(403, f"a token with the {caller.role} role may not use this route")
        g.api_caller, g.api_actor = caller, caller.actor
        return view(*args, **kwargs)

    return wrapper


@bp.before_request
def _limit_body():
    # Flask refuses a longer body (declared or streamed) with 413 when it is read.
    request.max_content_length = MAX_BODY_BYTES


def agent_json(agent):
    """An agent as the API shows it."""
    return {
        "id": agent.agent_id, "name": agent.name, "phone": agent.phone,
        "queues": list(agent.queues), "status": agent.status,
        "status_changed_at": agent.status_changed_at.isoformat() if agent.status_changed_at else None,
        "away_reason": agent.away_reason,
    }


@bp.get("/agents")
@token_required
def list_agents():
    """Every agent with their status."""
    return jsonify(agents=[agent_json(a) for a in services().storage.list_agents()])


@bp.put("/agents/<agent_id>/status")
@token_required
def set_agent_status(agent_id):
    """An agent says they are available or offline; available triggers dispatch."""
    status = json_body().get("status")
    if status not in (m.AVAILABLE, m.OFFLINE):
        raise ApiError(400, "invalid status", {"status": "must be 'available' or 'offline'"})
    svc = services()
    try:
        before = svc.storage.get_agent(agent_id[:64]).status
        agent = svc.dispatcher.set_presence(agent_id[:64], status)
    except NotFound as exc:
        raise ApiError(404, "no such agent") from exc
    except Conflict as exc:
        try:
            current = svc.storage.get_agent(agent_id[:64])
        except NotFound:
            raise ApiError(404, "no such agent") from exc
        raise ApiError(409, f"agent is {current.status}; try again when the call ends",
                       {"status": current.status}) from exc
    record(audit.PRESENCE, "changed", agent.agent_id, {"status": before}, {"status": status})
    return jsonify(agent=agent_json(agent))


def ivr_json(ivr):
    """An IVR as the API shows it."""
    return {"name": ivr.name, "numbers": list(ivr.numbers), "greeting": ivr.greeting,
            "queues": [queue_json(q) for q in ivr.queues], "settings": ivr.settings.as_dict(),
            "hours": hours_json(ivr.settings.hours)}


def queue_json(queue, waiting=None, pending=None):
    """A queue as the API shows it."""
    data = {"name": queue.name, "ivr": queue.ivr_name, "priority": queue.priority,
            "callback_enabled": queue.callback_enabled, "max_size": queue.max_size}
    if waiting is not None:
        data.update(waiting=waiting, pending_callbacks=pending)
    return data


def callback_json(cb):
    """A callback as the API shows it (the number in full: the API is for admins)."""
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "id": cb.callback_id, "status": cb.status, "number": cb.number, "ivr": cb.ivr_name,
        "queue": cb.queue_name, "requested_at": iso(cb.requested_at),
        "place_in_line": iso(cb.place_in_line), "priority": cb.priority, "attempts": cb.attempts,
        "due_at": iso(cb.due_at), "expires_at": iso(cb.expires_at), "ended_reason": cb.ended_reason,
        "window": {"earliest": iso(cb.window_start), "latest": iso(cb.window_end)} if cb.window_start else None,
        "name": cb.name, "reason": cb.reason,
        "history": [{"attempt_id": a.attempt_id, "started_at": iso(a.started_at), "agent": a.agent_id,
                     "outcome": a.outcome, "counted": a.counted, "agent_call_sid": a.agent_call_sid,
                     "customer_call_sid": a.customer_call_sid, "error_code": a.error_code}
                    for a in cb.history],
        "blocked": services().dispatcher.blocked_reason(cb),
        "kind": cb.kind or "callback",  # a voicemail's audio is on the portal, never a Twilio URL
        "voicemail": {"seconds": cb.recording_seconds, "recording_status": cb.recording_status,
                      "transcription": cb.transcription} if cb.recording_sid else None,
    }


def _ivr(name):
    try:
        return services().storage.get_ivr(name)
    except NotFound as exc:
        raise ApiError(404, "no such IVR") from exc


@bp.get("/ivrs")
@token_required
def list_ivrs():
    """Every IVR, alphabetically, with queues and settings."""
    return jsonify(ivrs=[ivr_json(i) for i in services().storage.list_ivrs()])


@bp.get("/ivrs/<name>/settings")
@token_required
def get_settings(name):
    """One IVR's callback settings."""
    return jsonify(settings=_ivr(name).settings.as_dict())


@bp.put("/ivrs/<name>/settings")
@token_required
def put_settings(name):
    """Change callback settings; fields left out keep their value, invalid input saves nothing."""
    svc = services()
    ivr = _ivr(name)
    settings, errors = validate_settings(json_body(), ivr.settings, partial=True, json=True)
    if errors:
        raise ApiError(400, "invalid settings", errors)
    try:
        saved = svc.storage.save_ivr(ivr.evolve(settings=settings))
    except Conflict as exc:
        raise ApiError(409, "the IVR changed meanwhile; read it again") from exc
    svc.directory.invalidate()
    record(audit.SETTINGS, "changed", ivr.name, ivr.settings.as_dict(), saved.settings.as_dict())
    return jsonify(settings=saved.settings.as_dict())


@bp.get("/voices")
@token_required
def list_voices():
    """The voice and language pairs the settings accept: Twilio's voice table, as pinned."""
    return jsonify(source=voice_table.SOURCE, copied_on=voice_table.COPIED_ON,
                   voices=[{"voice": voice, "language": language, "type": kind, "gender": gender}
                           for language, voice, kind, gender in voice_table.ROWS])


@bp.get("/queues")
@token_required
def list_queues():
    """Every queue, with callers waiting and pending callbacks."""
    storage = services().storage
    return jsonify(queues=[queue_json(q, storage.count_waiting(q.name), storage.count_pending(q.name))
                           for i in storage.list_ivrs() for q in i.queues])


@bp.post("/queues")
@token_required
def create_queue():
    """Add a queue to an IVR: {"name", "ivr", "priority", "callback_enabled", "max_size"}; its
    Twilio queue is then created with that MaxSize (`twilio` in the answer says how it went)."""
    svc = services()
    body = json_body()
    ivr_name = body.get("ivr")
    if not isinstance(ivr_name, str):
        raise ApiError(400, "invalid queue", {"ivr": "is required"})
    ivr = _ivr(ivr_name)
    unknown = set(body) - {"name", "ivr", "priority", "callback_enabled", "max_size"}
    if unknown:
        raise ApiError(400, "invalid queue", {k: "unknown field" for k in unknown})
    # Invalid input is a 400 whatever else is wrong; only a valid queue can conflict (409).
    queue, errors = check_queue(body, ivr.name, taken_names=set(), json=True)
    if errors:
        raise ApiError(400, "invalid queue", errors)
    owner = next((i.name for i in svc.storage.list_ivrs() if i.queue(queue.name)), None)
    if owner:
        raise ApiError(409, "queue exists", {"name": f"queue {queue.name} already exists, in IVR {owner}"})
    try:
        saved = svc.storage.save_ivr(ivr.evolve(queues=ivr.queues + (queue,)))
    except Conflict as exc:
        raise ApiError(409, "the IVR changed meanwhile; try again") from exc
    svc.directory.invalidate()
    record_ivr(ivr, saved)
    [sized] = svc.telephony.size_queues([queue])
    return jsonify(queue=queue_json(queue), twilio={"max_size": sized.max_size, "outcome": sized.outcome,
                                                    "error": sized.error or None}), 201


@bp.post("/agents")
@token_required
def create_agent():
    """Add an agent (offline): {"id", "name", "phone", "queues"}."""
    svc = services()
    known = m.queue_names(svc.storage.list_ivrs())
    fields, errors = check_agent(json_body(), known_queues=known, creating=True)
    if errors:
        raise ApiError(400, "invalid agent", errors)
    try:
        agent = svc.storage.save_agent_profile(fields["id"], name=fields["name"], phone=fields["phone"],
                                               queues=fields["queues"], now=svc.clock.now(), create=True)
    except PhoneTaken as exc:
        raise ApiError(409, "another agent has this phone",
                       {"phone": phone_taken(fields["phone"], exc.name, exc.agent_id)}) from exc
    except Conflict as exc:
        raise ApiError(409, "an agent with this id exists", {"id": "taken"}) from exc
    record(audit.AGENT, "created", agent.agent_id, None, audit.agent_fields(agent))
    return jsonify(agent=agent_json(agent)), 201


@bp.get("/callbacks")
@token_required
def list_callbacks():
    """Callbacks newest first: ?status=&ivr=&limit=&after= (an opaque cursor)."""
    status = request.args.get("status") or None
    if status and status not in m.CALLBACK_STATUSES:
        raise ApiError(400, "invalid status", {"status": "one of " + ", ".join(m.CALLBACK_STATUSES)})
    try:
        limit = parse_int(request.args.get("limit", "50"), 1, 200)
    except ValueError as exc:
        raise ApiError(400, "invalid limit", {"limit": "1 to 200"}) from exc
    if not current_app.secret_key:
        # A cursor signed with a key of this container's own would fail on the next one.
        raise ApiError(503, "paging is unavailable: this deployment has no SECRET_KEY")
    cursor = URLSafeSerializer(current_app.secret_key, salt="api-callbacks")
    start = None
    if request.args.get("after"):
        try:
            start = cursor.loads(request.args["after"])
        except BadSignature as exc:
            raise ApiError(400, "invalid cursor", {"after": "use the value the API returned"}) from exc
    items, last = services().storage.list_callbacks(status=status, ivr_name=request.args.get("ivr") or None,
                                                    limit=limit, start_key=start)
    return jsonify(callbacks=[callback_json(c) for c in items],
                   after=cursor.dumps(last) if last else None)


@bp.post("/callbacks/<callback_id>/cancel")
@token_required
def cancel_callback(callback_id):
    """Cancel a pending callback (409 once it has moved on)."""
    svc = services()
    try:
        cb = svc.storage.get_callback(callback_id[:64])
        svc.storage.commit(cb, transitions.cancel(cb, svc.clock.now()))
        record(audit.CALLBACK, "canceled", cb.callback_id, *audit.cancellation(cb))
        cb = svc.storage.get_callback(cb.callback_id)
    except NotFound as exc:
        raise ApiError(404, "no such callback") from exc
    except Conflict as exc:
        raise ApiError(409, "only a pending callback can be canceled") from exc
    return jsonify(callback=callback_json(cb))


@bp.get("/callbacks/<callback_id>")
@token_required
def get_callback(callback_id):
    """One callback with its history."""
    try:
        return jsonify(callback=callback_json(services().storage.get_callback(callback_id[:64])))
    except NotFound as exc:
        raise ApiError(404, "no such callback") from exc


@bp.get("/stats")
@token_required
def get_stats():
    """Wallboard figures per queue and IVR: now, today and the last 24 hours (?ivr=&queue=)."""
    svc = services()
    ivr_name = request.args.get("ivr") or None
    queue_name = request.args.get("queue") or None
    ivrs = svc.storage.list_ivrs()
    if ivr_name and not any(i.name == ivr_name for i in ivrs):
        raise ApiError(404, "no such IVR", {"ivr": "unknown"})
    if queue_name and queue_name not in m.queue_names(ivrs):
        raise ApiError(404, "no such queue", {"queue": "unknown"})
    return jsonify(stats.collect(svc.storage, ivrs, svc.clock.now(), ivr_name=ivr_name,
                                 queue_name=queue_name))
