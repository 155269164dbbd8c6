"""Admin login: one account from the environment, throttled in DynamoDB."""
import functools
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   session, url_for)
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

bp = Blueprint("auth", __name__)

MAX_FAILURES = 5
LOCK_WINDOW = timedelta(minutes=15)


@functools.lru_cache(maxsize=1)
def _dummy_hash():
    """Checked when the username is wrong too, so a wrong name costs as much as a wrong
    password. Made on first use: hashing costs ~150 ms a Lambda cold start need not pay."""
    return generate_password_hash("not-the-password")


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


def login_required(view):
    """Send anonymous visitors to the login page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not session.get("admin"):
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target):
    """Where a fresh login goes: an admin page this app routes, rebuilt from its endpoint
    by url_for (never the text as given), else the IVRs page."""
    fallback = url_for("admin.ivrs")
    if not isinstance(target, str) or not target.startswith("/"):
        return fallback
    # urlsplit drops tabs and newlines as browsers do, so "/\t/evil.com" shows its host here.
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    try:
        endpoint, values = current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return fallback
    if not endpoint.startswith("admin."):
        return fallback
    return url_for(endpoint, **values)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; check the password; lock after repeated failures."""
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    svc = services()
    config = svc.config
    username = request.form.get("username", "")[:64].strip()
    password = request.form.get("password", "")[:256]
    now = svc.clock.now()
    if svc.storage.login_failures(username or "-", now) >= MAX_FAILURES:
        flash("Too many failed attempts. Try again in 15 minutes.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 429
    expected_hash = config.ADMIN_PASSWORD_HASH if username == config.ADMIN_USERNAME else ""
    valid = check_password_hash(expected_hash or _dummy_hash(), password) and bool(expected_hash)
    if not valid:
        svc.storage.record_login_failure(username or "-", now, LOCK_WINDOW)
        flash("Wrong username or password.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 401
    svc.storage.clear_login_failures(username)
    session.clear()
    session["admin"] = username
    session.permanent = True
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """End the admin session."""
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
def home():
    """The portal starts at the IVRs page."""
    if not session.get("admin"):
        return redirect(url_for("auth.login"))
    return redirect(url_for("admin.ivrs"))


def forbid_anonymous():
    """For JSON-ish admin endpoints: 401 instead of a redirect."""
    if not session.get("admin"):
        abort(401)
