"""The admin portal's API tokens page: every token with its role and last use; a new token,
shown once on the page that creates it (never through a redirect: a flashed message travels
in the session cookie); revoking one, which holds from the API's next request."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from callback.domain import api_tokens as t
from callback.domain import audit
from callback.domain.users import normalise_username
from callback.storage import Conflict, NotFound, StorageError, TokenNameTaken
from callback.web.auth import current_admin, login_required, storage_unavailable
from callback.web.trail import record

bp = Blueprint("tokens", __name__, url_prefix="/admin")
bp.register_error_handler(StorageError, storage_unavailable)
NO_SECRET = "API_TOKEN_SECRET is not set: no token can be made until it is (see the README)."


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def _create(svc, fields):
    """(the stored token, the token itself) of a checked request; TokenNameTaken."""
    token = t.new_token()
    digest = t.key_hash(svc.config.API_TOKEN_SECRET, token)
    record = t.ApiToken(t.token_id(digest), fields["name"], fields["owner"], fields["owner_kind"],
                        fields["role"], svc.clock.now(), current_admin())
    return svc.storage.create_api_token(record, digest), token


def _owner_exists(svc, fields):
    """A person's token names a user who may sign in: a named user, or the environment's account."""
    if fields["owner_kind"] != t.USER:
        return True
    owner = normalise_username(fields["owner"])
    return owner == normalise_username(svc.config.ADMIN_USERNAME) or svc.storage.get_user(owner) is not None


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def api_tokens():
    """Every API token; a new one (shown once)."""
    svc = services()
    values = {"name": "", "owner": current_admin(), "owner_kind": t.USER, "role": t.SUPERVISOR}
    errors, created, status = {}, None, 200
    if request.method == "POST":
        fields, errors = t.check_new_token(request.form)
        values = {**values, **{k: v for k, v in fields.items() if isinstance(v, str)}}
        if not svc.config.API_TOKEN_SECRET:
            errors = {**errors, "_": NO_SECRET}
        elif not errors and not _owner_exists(svc, fields):
            errors = {"owner": "no user has that name"}
        if not errors:
            try:
                created = _create(svc, fields)
            except TokenNameTaken:
                errors = {"name": "another token, live or revoked, has this name"}
            else:
                stored = created[0]
                record(audit.TOKEN, "created", stored.name, None,
                       {"owner": stored.owner, "owner_kind": stored.owner_kind, "role": stored.role})
                values = {**values, "name": ""}
        status = 400 if errors else 201
    response = current_app.make_response((render_template(
        "api_tokens.html", tokens=svc.storage.list_api_tokens(), values=values, errors=errors,
        created=created, roles=t.ROLE_LABELS, no_secret=not svc.config.API_TOKEN_SECRET), status))
    # The page may show a token: no cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tokens/<token_id>/revoke")
@login_required
def revoke_token(token_id):
    """Revoke a token: the API refuses it from the next request on."""
    svc = services()
    try:
        token = svc.storage.revoke_api_token(token_id, svc.clock.now(), current_admin())
    except NotFound:
        abort(404)
    except Conflict:
        flash("That token was revoked already.", "error")
    else:
        record(audit.TOKEN, "revoked", token.name, {"revoked": False}, {"revoked": True})
        flash(f"Token {token.name} revoked: the API refuses it from now on.", "ok")
    return redirect(url_for("tokens.api_tokens"))
