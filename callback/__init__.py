"""callback: let callers in a queue ask to be called back, and call them back agent first."""
import os
from datetime import timedelta

import click
from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

from callback import logs
from callback.config import Config
from callback.work.wiring import build_services

csrf = CSRFProtect()
# Pages use only our own stylesheet: no script, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")


def create_app(overrides=None):
    """Application factory: configuration from the environment, then `overrides`."""
    config = Config.from_env(**(overrides or {}))
    logs.install(config.LOG_LEVEL)
    app = Flask(__name__, template_folder=TEMPLATES)
    app.config.update(
        SECRET_KEY=config.SECRET_KEY or os.urandom(32).hex(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.SESSION_COOKIE_SECURE,
        MAX_CONTENT_LENGTH=64 * 1024,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )
    app.extensions["callback"] = build_services(config)

    from callback.web import admin, api, auth, voice

    csrf.init_app(app)
    # Twilio signs its webhooks and the API takes a bearer token: no cookie, no CSRF.
    csrf.exempt(voice.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)

    app.after_request(security_headers)

    @app.cli.command("init-db")
    def init_db():
        """Create the DynamoDB tables (idempotent)."""
        created = app.extensions["callback"].storage.create_tables()
        click.echo("created: " + (", ".join(created) if created else "nothing, all tables exist"))

    return app


def security_headers(response):
    """Every answer: no sniffing, no framing, no referrer beyond the site; every HTML answer
    (login and error pages too) its CSP and no caching; HSTS once served over HTTPS."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("Cache-Control", "no-store")
    # Zappa's handler marks every Lambda request https; a local http run gets no HSTS, which a
    # browser would ignore there anyway. No includeSubDomains: the operator's other hosts
    # under a custom domain are not ours to pin.
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
