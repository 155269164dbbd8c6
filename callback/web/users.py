"""The Users page (admins only): invite, edit, disable and enable users, set a new password;
and `flask create-user`, for the first admin.

A disable or a new password moves the user's generation, which every session of theirs
carries in its tag (auth.user_tag): those sessions end at their next request. A role change
applies at the next request too, since each request reads the user's record.
"""
import secrets
import sys

import click
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.security import generate_password_hash

from callback.domain import audit
from callback.domain import users as u
from callback.storage import Conflict, LastAdmin, StorageError, UnknownAgent, UserTaken
from callback.web.auth import current_admin, storage_unavailable
from callback.web.trail import record

# cli_group=None: `flask create-user`, not `flask users create-user`.
bp = Blueprint("users", __name__, url_prefix="/admin/users", cli_group=None)
bp.register_error_handler(StorageError, storage_unavailable)

LAST_ADMIN = "{name} is the last enabled admin: make another user an admin first."
CHANGED = "Someone else changed this user meanwhile. Reload and try again."


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def generated_password():
    """A password for an admin to hand over (about 120 random bits, URL-safe characters)."""
    return secrets.token_urlsafe(15)


def new_user(raw, password):
    """Check and store a new user: (the user, {}) or (None, {field: error})."""
    svc = services()
    errors = {}
    try:
        username = u.check_username(raw.get("username"), reserved=[svc.config.ADMIN_USERNAME])
    except ValueError as exc:
        username, errors["username"] = None, str(exc)
    known = {a.agent_id for a in svc.storage.list_agents()}
    fields, profile_errors = u.check_profile(raw, known_agents=known)
    errors.update(profile_errors)
    try:
        u.check_password(password)
    except ValueError as exc:
        errors["password"] = str(exc)
    if errors:
        return None, errors
    user = u.User(username, fields["display_name"], fields["role"], generate_password_hash(password),
                  fields["agent_id"])
    try:
        created = svc.storage.create_user(user, svc.clock.now())
    except UserTaken:
        return None, {"username": "a user of that name exists"}
    except UnknownAgent:
        return None, {"agent_id": "no agent has that id"}
    record(audit.USER, "created", created.username, None, audit_fields(created))
    return created, {}


def audit_fields(user):
    """What the audit trail keeps of a user: never their password hash, only that it changed."""
    if user is None:
        return None
    return {"display_name": user.display_name, "role": user.role, "agent_id": user.agent_id,
            "disabled": user.disabled, "password_hash": user.password_hash}


def _user_or_404(username):
    user = services().storage.get_user(username)
    if user is None:
        abort(404)
    return user


def _agents():
    return sorted(services().storage.list_agents(), key=lambda a: a.name.lower())


def _shown_once(user, password, what):
    """The page showing a generated password, once: never cached, never in a flash (the
    session cookie is signed, not encrypted)."""
    response = current_app.make_response(render_template("user_password_shown.html", user=user,
                                                         password=password, what=what))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("", endpoint="list", strict_slashes=False)
def user_list():
    """Every user with their role, linked agent and whether they may sign in."""
    agents = {a.agent_id: a.name for a in services().storage.list_agents()}
    return render_template("users.html", users=services().storage.list_users(), agents=agents,
                           me=current_admin(), bootstrap=services().config.ADMIN_USERNAME)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Invite a user: their name, role, linked agent and first password (set, or generated and
    shown once)."""
    form, errors = {"role": u.SUPERVISOR}, {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in ("username", "display_name", "role", "agent_id")}
        typed = request.form.get("password", "")
        password = typed or generated_password()
        user, errors = new_user(form, password)
        if user is not None:
            if not typed:
                return _shown_once(user, password, "created")
            flash(f"User {user.username} created.", "ok")
            return redirect(url_for("users.list"))
    return render_template("user_form.html", form=form, errors=errors, agents=_agents(), roles=u.ROLES,
                           labels=u.ROLE_LABELS, creating=True), 400 if errors else 200


@bp.route("/<username>/edit", methods=["GET", "POST"])
def edit(username):
    """Change a user's display name, role or linked agent (applies at their next request)."""
    svc = services()
    user = _user_or_404(username)
    form = {"username": user.username, "display_name": user.display_name, "role": user.role,
            "agent_id": user.agent_id or ""}
    errors = {}
    if request.method == "POST":
        form.update({k: request.form.get(k, "") for k in ("display_name", "role", "agent_id")})
        fields, errors = u.check_profile(form, known_agents={a.agent_id for a in svc.storage.list_agents()})
        if not errors:
            changed = user.evolve(**fields)
            try:
                svc.storage.save_user(user, changed, svc.clock.now())
            except LastAdmin:
                errors = {"role": LAST_ADMIN.format(name=user.username)}
            except UnknownAgent:
                errors = {"agent_id": "no agent has that id"}
            except Conflict:
                errors = {"_": CHANGED}
            else:
                record(audit.USER, "changed", user.username, audit_fields(user), audit_fields(changed))
                flash(f"User {user.username} saved.", "ok")
                return redirect(url_for("users.list"))
    return render_template("user_form.html", form=form, errors=errors, agents=_agents(), roles=u.ROLES,
                           labels=u.ROLE_LABELS, creating=False), 400 if errors else 200


def _set_access(username, disabled):
    svc = services()
    user = _user_or_404(username)
    if user.disabled == disabled:
        return redirect(url_for("users.list"))
    # A disable moves the generation: every session of theirs ends, and stays ended on enable.
    changed = user.evolve(disabled=disabled, generation=user.generation + (1 if disabled else 0))
    try:
        svc.storage.save_user(user, changed, svc.clock.now())
    except LastAdmin:
        flash(LAST_ADMIN.format(name=user.username), "error")
    except Conflict:
        flash(CHANGED, "error")
    else:
        record(audit.USER, "disabled" if disabled else "enabled", user.username, audit_fields(user),
               audit_fields(changed))
        flash(f"User {user.username} {'disabled: signed out everywhere' if disabled else 'enabled'}.", "ok")
    return redirect(url_for("users.list"))


@bp.post("/<username>/disable")
def disable(username):
    """Stop a user signing in, and end their sessions at once."""
    return _set_access(username, True)


@bp.post("/<username>/enable")
def enable(username):
    """Let a disabled user sign in again."""
    return _set_access(username, False)


@bp.route("/<username>/password", methods=["GET", "POST"])
def password(username):
    """Set a user's password (typed, or generated and shown once); their sessions end."""
    svc = services()
    user = _user_or_404(username)
    errors = {}
    if request.method == "POST":
        typed = request.form.get("password", "")
        chosen = typed or generated_password()
        try:
            u.check_password(chosen)
        except ValueError as exc:
            errors = {"password": str(exc)}
        else:
            changed = user.evolve(password_hash=generate_password_hash(chosen),
                                  generation=user.generation + 1)
            try:
                svc.storage.save_user(user, changed, svc.clock.now())
            except Conflict:
                errors = {"_": CHANGED}
            else:
                record(audit.USER, "password set", user.username, audit_fields(user), audit_fields(changed))
                if not typed:
                    return _shown_once(user, chosen, "given a new password")
                flash(f"New password set for {user.username}: signed out everywhere.", "ok")
                return redirect(url_for("users.list"))
    return render_template("user_password.html", user=user, errors=errors), 400 if errors else 200


@bp.cli.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(u.ROLES), default=u.ADMIN, show_default=True)
@click.option("--display-name", default="", help="the name the portal shows")
@click.option("--agent", "agent_id", default="", help="the agent record an agent signs in as")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def create_user_command(username, role, display_name, agent_id, password_stdin):
    """Create a portal user (the first admin, say); the password is asked for, never echoed."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user, errors = new_user({"username": username, "role": role, "display_name": display_name,
                             "agent_id": agent_id}, password)
    if user is None:
        raise click.ClickException("; ".join(f"{field}: {why}" for field, why in errors.items()))
    click.echo(f"created {user.role} {user.username}")
