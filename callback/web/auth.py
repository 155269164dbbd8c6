"""Portal sign-in: the named users (callback.storage.users) and the bootstrap admin from
the environment (ADMIN_USERNAME / ADMIN_PASSWORD_HASH), throttled per account and client
address in DynamoDB, with sessions kept server-side so logout, a disable and a new password
really end them; every portal request checked against its endpoint's role (roles.py)."""
import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from callback.domain.records import AdminSession
from callback.domain.users import ADMIN, AGENT, SUPERVISOR, normalise_username
from callback.storage import Conflict, StorageError
from callback.web import roles

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

MAX_ATTEMPTS = 5
LOCK_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
# A session's idle deadline moves at most once a minute: one write a minute, not one a page.
TOUCH_EVERY = timedelta(minutes=1)
# DynamoDB throttling or unreachable passes within seconds, usually: a browser may try again then.
RETRY_AFTER_SECONDS = 30


@functools.lru_cache(maxsize=1)
def _dummy_hash():
    """Checked when the username is wrong too, so a wrong name costs as much as a wrong
    password. Made on first use: hashing costs ~150 ms a Lambda cold start need not pay."""
    return generate_password_hash("not-the-password")


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


@dataclass(frozen=True)
class CurrentUser:
    """Who is signed in, as the pages need it (never their password hash)."""

    username: str
    display_name: str
    role: str
    agent_id: str | None = None
    bootstrap: bool = False  # the environment's account, not a stored user

    @property
    def role_label(self):
        """The role in words."""
        return roles.ROLE_LABELS.get(self.role, self.role)


def client_address():
    """The address the request came from, as API Gateway saw it: its requestContext
    sourceIp, which Zappa's handler hands over in environ["lambda.event"]. Not REMOTE_ADDR
    there: Zappa builds it from X-Forwarded-For, which the client writes. Off Lambda (make
    run), the socket's peer."""
    event = request.environ.get("lambda.event")
    if isinstance(event, dict):
        context = event.get("requestContext") or {}
        source = (context.get("identity") or {}).get("sourceIp") or (context.get("http") or {}).get("sourceIp")
        return str(source or "unknown")[:64]
    return request.remote_addr or "unknown"


def throttle_key(username, address):
    """The login throttle of one account from one address (hashed: no addresses at rest)."""
    return hashlib.sha256(f"{username}\n{address}".encode()).hexdigest()


def session_key(session_id):
    """What the session store keeps of a session id: its SHA-256, so the table holds no
    usable cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _tag(text):
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:32]


def password_tag():
    """Names the current ADMIN_PASSWORD_HASH without storing it: a new password (or a new
    SECRET_KEY) makes every older session of the bootstrap admin stale."""
    return _tag(services().config.ADMIN_PASSWORD_HASH)


def user_tag(user):
    """Names a stored user's password and generation without storing either: a new password,
    a disable (each moves the generation) or a new SECRET_KEY make their older sessions stale."""
    return _tag(f"user\n{user.username}\n{user.generation}\n{user.password_hash}")


def bootstrap_name():
    """The environment's admin account's name, or None when it has no password (off)."""
    config = services().config
    return normalise_username(config.ADMIN_USERNAME) if config.ADMIN_PASSWORD_HASH else None


def _account(username):
    """(CurrentUser, session tag, password hash) of an account that may sign in, or None: the
    bootstrap admin answers for its name (no read); any other name is one read of the users."""
    if username and username == bootstrap_name():
        hashed = services().config.ADMIN_PASSWORD_HASH
        return CurrentUser(username, "Bootstrap admin", ADMIN, bootstrap=True), password_tag(), hashed
    user = services().storage.get_user(username) if username else None
    if user is None or user.disabled:
        return None
    return (CurrentUser(user.username, user.display_name or user.username, user.role, user.agent_id),
            user_tag(user), user.password_hash)


def session_is_live(record, now, *, username, tag, idle, lifetime=SESSION_LIFETIME):
    """A stored session still admits its holder: same account and password, used within
    `idle`, opened within `lifetime`."""
    return (record.username == username and hmac.compare_digest(record.password_tag, tag)
            and now < record.last_seen + idle and now < record.created_at + lifetime)


def _idle_timeout():
    return timedelta(minutes=services().config.ADMIN_SESSION_IDLE_MINUTES)


def _signed_in_user():
    session_id = session.get("sid")
    if not isinstance(session_id, str) or not session_id:
        return None
    svc = services()
    key, now = session_key(session_id), svc.clock.now()
    record = svc.storage.get_session(key)
    account = _account(record.username) if record is not None else None
    live = account is not None and session_is_live(record, now, username=account[0].username,
                                                   tag=account[1], idle=_idle_timeout())
    if live and now - record.last_seen >= TOUCH_EVERY:
        try:
            svc.storage.touch_session(key, now, now + _idle_timeout())
        except Conflict:
            live = False
    if not live:
        if record is not None:
            svc.storage.end_session(key)
        session.clear()
        return None
    return account[0]


# The portal's blueprints: each of their pages needs a signed-in user whose role may open it.
PORTAL_BLUEPRINTS = ("admin", "hours", "privacy", "voicemail_portal", "users", "me", "tokens",
                     "agent_page")


def refuse_without_secret_key():
    """Before any sign-in or admin page, and before CSRF: with no SECRET_KEY (on Lambda there
    is never a random one) there are no sessions to hand out, so the portal says so, 503."""
    if current_app.secret_key or request.blueprint not in ("auth", *PORTAL_BLUEPRINTS):
        return None
    return render_template("unavailable.html"), 503


def storage_unavailable(exc):
    """Any sign-in or admin page while DynamoDB fails (throttled, unreachable, too slow): a
    plain page in the portal's layout, 503 with Retry-After, never a bare 500. It fails
    closed: a login whose throttle or session could not be read or written signs nobody in."""
    log.exception("%s %s: storage unavailable", request.method, request.endpoint)
    return (render_template("unavailable.html", storage=True), 503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)})


bp.register_error_handler(StorageError, storage_unavailable)


def current_user():
    """Who is signed in (a CurrentUser), or None: checked against the session store and the
    user's record once per request (a GetItem each; webhooks and the API never ask), so a
    role change or a disable applies from the next request."""
    if "user" not in g:
        g.user = None  # until the reads succeed: a page rendered for their failure shows no one
        g.user = _signed_in_user()
    return g.user


def current_admin():
    """The signed-in user's name, or None ("who did this", whatever their role)."""
    user = current_user()
    return user.username if user else None


def require_role():
    """Before every portal request (after CSRF): anonymous visitors go to sign in; a
    signed-in user whose role may not open the page gets the 403 page."""
    if request.blueprint not in PORTAL_BLUEPRINTS:
        return None
    try:
        user = current_user()
    except StorageError as exc:
        return storage_unavailable(exc)
    if user is None:
        return redirect(url_for("auth.login", next=request.path))
    if not roles.may_open(user.role, request.endpoint):
        log.info("refused %s %s to role %s", request.method, request.endpoint, user.role)
        return render_template("forbidden.html", needed=roles.minimum_role(request.endpoint)), 403
    return None


@bp.app_context_processor
def portal_context():
    """The signed-in user (read once, if no check read it yet: the login page shows the header
    too) and whether they may open an endpoint (the nav). A page renders while DynamoDB fails:
    the user is then no one."""
    try:
        user = current_user() if has_request_context() else None
    except StorageError:
        user = None
    return {"portal_user": user,
            "may_open": lambda endpoint: user is not None and roles.may_open(user.role, endpoint)}


def home_for(role):
    """Where a role's portal starts."""
    first_pages = {ADMIN: "admin.ivrs", SUPERVISOR: "admin.dashboard", AGENT: "me.page"}
    return url_for(first_pages.get(role, "me.page"))


def login_required(view):
    """Send anonymous visitors (and revoked or idle sessions) to the login page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_admin() is None:
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target, role=ADMIN):
    """Where a fresh login goes: a portal page this app routes and the role may open,
    rebuilt from its endpoint by url_for (never the text as given), else the role's first page."""
    fallback = home_for(role)
    if not isinstance(target, str) or not target.startswith("/"):
        return fallback
    # urlsplit drops tabs and newlines as browsers do, so "/\t/evil.com" shows its host here.
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    try:
        # Matched as the server routes a request: on the decoded path ("Main%20Line" is "Main Line").
        endpoint, values = current_app.url_map.bind("localhost").match(unquote(parts.path), method="GET")
    except HTTPException:
        return fallback
    if endpoint.split(".")[0] not in PORTAL_BLUEPRINTS or not roles.may_open(role, endpoint):
        return fallback
    return url_for(endpoint, **values)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; check the password; throttle repeated attempts."""
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    svc = services()
    username = normalise_username(request.form.get("username", ""))
    password = request.form.get("password", "")[:256]
    now = svc.clock.now()
    address = client_address()
    throttle = throttle_key(username, address)
    if not svc.storage.take_login_attempt(throttle, now, LOCK_WINDOW, MAX_ATTEMPTS):
        log.warning("login throttled: too many attempts from %s", address)
        flash("Too many failed attempts. Try again in 15 minutes.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 429
    # An unknown name (or a disabled user) costs one read and one hash check too, as a known one.
    account = _account(username)
    expected_hash = account[2] if account else ""
    valid = check_password_hash(expected_hash or _dummy_hash(), password) and bool(expected_hash)
    if not valid:
        flash("Wrong username or password.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 401
    user, tag, _ = account
    svc.storage.clear_login_attempts(throttle)
    session_id = secrets.token_urlsafe(32)
    svc.storage.create_session(AdminSession(session_key(session_id), user.username, tag, now, now,
                                            now + _idle_timeout(), user.role))
    session.clear()
    session["sid"] = session_id
    session["admin"] = user.username
    session.permanent = True
    return redirect(safe_next(request.form.get("next"), user.role))


@bp.post("/logout")
def logout():
    """End the admin session, here and in the session store."""
    session_id = session.get("sid")
    if isinstance(session_id, str) and session_id:
        services().storage.end_session(session_key(session_id))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
def home():
    """The portal starts at the role's first page."""
    user = current_user()
    if user is None:
        return redirect(url_for("auth.login"))
    return redirect(home_for(user.role))


def forbid_anonymous():
    """For JSON-ish admin endpoints: 401 instead of a redirect."""
    if current_admin() is None:
        abort(401)
