"""JSON API for agent desktops, CRMs and admins: bearer token, JSON errors only."""
import functools
import hmac

from flask import Blueprint, current_app, jsonify, request

from . import models as m
from .storage import Conflict, NotFound, StorageError

bp = Blueprint("api", __name__, url_prefix="/api")


class ApiError(Exception):
    """An error answered as JSON {"error": …, "fields": {…}}."""

    def __init__(self, status, message, fields=None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields or {}


@bp.errorhandler(ApiError)
def _api_error(exc):
    return jsonify(error=exc.message, fields=exc.fields), exc.status


@bp.errorhandler(StorageError)
def _storage_error(exc):
    current_app.logger.exception("storage error in API")
    return jsonify(error="storage unavailable, try again", fields={}), 503


@bp.errorhandler(404)
@bp.errorhandler(405)
@bp.errorhandler(400)
@bp.errorhandler(413)
def _http_error(exc):
    return jsonify(error=exc.description if hasattr(exc, "description") else "error", fields={}), exc.code


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def token_required(view):
    """Refuse requests without the right `Authorization: Bearer <ADMIN_API_TOKEN>`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        expected = services().config.ADMIN_API_TOKEN
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "missing or wrong bearer token")
        return view(*args, **kwargs)

    return wrapper


def json_body():
    """The request's JSON object, or a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def agent_json(agent):
    """An agent as the API shows it."""
    return {
        "id": agent.agent_id, "name": agent.name, "phone": agent.phone,
        "queues": list(agent.queues), "status": agent.status,
        "status_changed_at": agent.status_changed_at.isoformat() if agent.status_changed_at else None,
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
        agent = svc.storage.set_agent_presence(agent_id[:64], status, svc.clock.now())
    except NotFound as exc:
        raise ApiError(404, "no such agent") from exc
    except Conflict as exc:
        try:
            current = svc.storage.get_agent(agent_id[:64])
        except NotFound:
            raise ApiError(404, "no such agent") from exc
        raise ApiError(409, f"agent is {current.status}; try again when the call ends",
                       {"status": current.status}) from exc
    if status == m.AVAILABLE:
        try:
            svc.dispatcher.dispatch(agent_id=agent.agent_id)
        except Exception:
            current_app.logger.exception("dispatch after agent %s became available failed", agent_id)
        agent = svc.storage.get_agent(agent.agent_id)
    return jsonify(agent=agent_json(agent))

