"""Forgetting a number on request (an admin page and an API route): its callbacks, their
attempts and Twilio's records of their calls go (`callback.work.erasure`)."""
from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from callback.domain import audit
from callback.domain.numbers import is_e164
from callback.storage import Conflict
from callback.web.api import ApiError, _api_error, json_body, services, token_required
from callback.web.auth import login_required
from callback.web.trail import record

bp = Blueprint("privacy", __name__)
# The API route, on a blueprint of its own: bearer-token requests carry no CSRF token.
api_bp = Blueprint("privacy_api", __name__)
api_bp.register_error_handler(ApiError, _api_error)  # the API's one JSON error shape
INVALID = "a number in E.164 form, like +14155550100"


def _forget(number):
    # Erasure is work (it cancels, deletes and calls Twilio): the dispatcher carries it out;
    # a call in progress is its Conflict (NumberBusy), said as is. The trail records that a
    # number was forgotten, and what went, never which number.
    erased = services().dispatcher.forget_number(number)
    record(audit.ERASURE, "erased", "a number", detail=audit.erasure_detail(erased))
    return erased


@api_bp.post("/api/numbers/forget")
@token_required
def api_forget():
    """Erase a number: {"number": "+1…"}; 409 while a call to it is in progress."""
    body = json_body()
    number = body.get("number") if isinstance(body, dict) else None
    if not isinstance(number, str) or not is_e164(number.strip()):
        raise ApiError(400, "invalid number", {"number": INVALID})
    try:
        erased = _forget(number.strip())
    except Conflict as exc:
        raise ApiError(409, str(exc)) from exc
    return jsonify(callbacks_removed=erased.callbacks, callbacks_canceled=erased.canceled,
                   texts_removed=erased.texts,
                   twilio_records_deleted=erased.twilio_records, twilio_records_left=erased.twilio_failures)


@bp.route("/admin/privacy", methods=["GET", "POST"])
@login_required
def admin_forget():
    """Erase a number, after the admin confirms what it does."""
    error, number = None, request.form.get("number", "").strip()
    if request.method == "POST":
        if not is_e164(number):
            error = INVALID
        elif request.form.get("confirm") != "yes":
            error = "tick the box to confirm: this cannot be undone"
        else:
            try:
                erased = _forget(number)
            except Conflict as exc:
                error = str(exc)
            else:
                kept = f"; {erased.twilio_failures} Twilio kept (see the logs)" if erased.twilio_failures else ""
                flash(f"Forgotten: {erased.callbacks} callbacks ({erased.canceled} cancelled first), "
                      f"{erased.texts} texts, {erased.twilio_records} call and message records at "
                      f"Twilio{kept}.", "ok")
                return redirect(url_for("privacy.admin_forget"))
    return render_template("privacy.html", error=error, number=number), 400 if error else 200
