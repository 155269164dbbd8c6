"""The JSON API's open hours of an IVR: `GET|PUT /api/ivrs/<name>/hours`, on the API's own
blueprint (its bearer token and JSON errors)."""
from dataclasses import replace

from flask import jsonify

from callback.domain import audit
from callback.domain.hours_input import hours_json, validate_hours
from callback.storage import Conflict
from callback.web.api import ApiError, _ivr, bp, json_body, services, token_required
from callback.web.trail import record


@bp.get("/ivrs/<name>/hours")
@token_required
def get_hours(name):
    """One IVR's open hours, time zone, holidays and closures."""
    return jsonify(hours=hours_json(_ivr(name).settings.hours))


@bp.put("/ivrs/<name>/hours")
@token_required
def put_hours(name):
    """Change open hours; fields (and days) left out keep their value, invalid input saves nothing."""
    svc = services()
    ivr = _ivr(name)
    hours, errors = validate_hours(json_body(), ivr.settings.hours, json=True)
    if errors:
        raise ApiError(400, "invalid hours", errors)
    try:
        saved = svc.storage.save_ivr(ivr.evolve(settings=replace(ivr.settings, hours=hours)))
    except Conflict as exc:
        raise ApiError(409, "the IVR changed meanwhile; read it again") from exc
    svc.directory.invalidate()
    record(audit.HOURS, "changed", ivr.name, hours_json(ivr.settings.hours), hours_json(saved.settings.hours))
    return jsonify(hours=hours_json(saved.settings.hours))
