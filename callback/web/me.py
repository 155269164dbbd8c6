"""A signed-in user's own page (/me): where an agent lands. A user linked to an agent goes
on to that agent's page (agent_page); anyone else sees who they are. Any named user changes
their own password at /me/password."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from callback.domain import audit
from callback.domain import users as u
from callback.storage import Conflict, NotFound, StorageError
from callback.web.auth import (
    LOCK_WINDOW,
    MAX_ATTEMPTS,
    client_address,
    current_user,
    session_key,
    storage_unavailable,
    throttle_key,
)
from callback.web.trail import record

bp = Blueprint("me", __name__)
bp.register_error_handler(StorageError, storage_unavailable)


@bp.get("/me")
def page():
    """The linked agent's own page; else the user's name and role (and a link that is gone)."""
    user = current_user()
    agent = None
    if user.agent_id:
        try:
            agent = current_app.extensions["callback"].storage.get_agent(user.agent_id)
        except NotFound:
            agent = None
    if agent is not None:
        return redirect(url_for("agent_page.today", agent_id=agent.agent_id))
    return render_template("me.html", user=user, agent=agent)


@bp.route("/me/password", methods=["GET", "POST"])
def password():
    """A named user changes their own password: the current one first (throttled as a login
    is), then the new one twice. Every session of theirs ends, this one too: they sign in again."""
    svc = current_app.extensions["callback"]
    user = svc.storage.get_user(current_user().username)
    if user is None:
        # The environment's account: its password is the deployment's ADMIN_PASSWORD_HASH.
        return render_template("my_password.html", bootstrap=True, errors={}), 200
    errors = {}
    if request.method == "POST":
        now = svc.clock.now()
        throttle = throttle_key(user.username, client_address())
        if not svc.storage.take_login_attempt(throttle, now, LOCK_WINDOW, MAX_ATTEMPTS):
            errors = {"current": "Too many wrong passwords. Try again in 15 minutes."}
            return render_template("my_password.html", bootstrap=False, errors=errors), 429
        new = request.form.get("new", "")[:512]
        if not check_password_hash(user.password_hash, request.form.get("current", "")[:256]):
            errors["current"] = "That is not your current password."
        else:
            svc.storage.clear_login_attempts(throttle)
            try:
                u.check_password(new)
            except ValueError as exc:
                errors["new"] = str(exc)
            else:
                if new != request.form.get("again", ""):
                    errors["again"] = "The two new passwords differ."
        if not errors:
            changed = user.evolve(password_hash=generate_password_hash(new), generation=user.generation + 1)
            try:
                svc.storage.save_user(user, changed, now)
            except Conflict:
                errors = {"_": "Your account changed meanwhile. Reload and try again."}
            else:
                record(audit.USER, "password changed by its user", user.username,
                       {"password_hash": user.password_hash}, {"password_hash": changed.password_hash})
                sid = session.get("sid")
                if isinstance(sid, str) and sid:
                    svc.storage.end_session(session_key(sid))
                session.clear()
                flash("Password changed: sign in with the new one.", "ok")
                return redirect(url_for("auth.login"))
    return render_template("my_password.html", bootstrap=False, errors=errors), 400 if errors else 200
