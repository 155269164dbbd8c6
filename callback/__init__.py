"""callback: let callers in a queue ask to be called back, and call them back agent first."""
import os
from datetime import timedelta

import click
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from callback import logs
from callback.config import Config
from callback.domain.settings import speech_problem
from callback.storage.parameter_store import with_parameters
from callback.web import health, twiml
from callback.web.headers import security_headers
from callback.work.effects import Effects
from callback.work.queues import size_every_queue
from callback.work.twilio_setup import set_up_numbers
from callback.work.wiring import build_services

csrf = CSRFProtect()
# Work places the customer's call with its first TwiML inline (asynchronous detection), and
# only web writes TwiML: this package, which wires the two, hands the one to the other. Any
# process (the sweep's, the hand-off's too) imports it before anything of callback's.
Effects.conference_twiml = staticmethod(twiml.conference)
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")


def create_app(overrides=None):
    """Application factory: configuration from the environment (and Parameter Store, when
    CALLBACK_SECRETS_SSM_PATH is set), then `overrides`."""
    config = Config.from_env(**(overrides or {}))
    logs.install(config.LOG_LEVEL)
    config = with_parameters(config, overrides)
    app = Flask(__name__, template_folder=TEMPLATES)
    app.config.update(
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.SESSION_COOKIE_SECURE,
        MAX_CONTENT_LENGTH=64 * 1024,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )
    app.extensions["callback"] = build_services(config)
    app.extensions[health.EXTENSION] = health.check_at_startup(config)

    # api_hours, api_callbacks and api_docs add their routes to the API's blueprint;
    # portal_audit its route to the API's and its page to the admin portal's.
    from callback.web import (  # noqa: F401
        admin,
        agent_page,
        api,
        api_callbacks,
        api_docs,
        api_hours,
        auth,
        center_clock,
        me,
        portal_audit,
        portal_hours,
        portal_tokens,
        portal_voicemail,
        privacy,
        public,
        sms,
        users,
        voice,
        waiting,
    )

    # Before CSRF, which cannot check a token without the key.
    app.before_request(auth.refuse_without_secret_key)
    csrf.init_app(app)
    # After CSRF: every portal page checked for its role (callback/web/roles.py).
    app.before_request(auth.require_role)
    # Twilio signs its webhooks and the API takes a bearer token: no cookie, no CSRF.
    csrf.exempt(voice.bp)
    csrf.exempt(sms.bp)
    csrf.exempt(api.bp)
    csrf.exempt(privacy.api_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(agent_page.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(privacy.api_bp)
    app.register_blueprint(portal_hours.bp)
    app.register_blueprint(portal_voicemail.bp)
    app.register_blueprint(portal_tokens.bp)
    app.register_blueprint(center_clock.bp)
    app.register_blueprint(waiting.bp)
    # The public callback page: CSRF as the portal, its own limits (webhooks never take them).
    app.register_blueprint(public.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(me.bp)

    app.after_request(security_headers)

    @app.cli.command("init-db")
    def init_db():
        """Create the DynamoDB tables (idempotent), then report IVRs whose voice Twilio does not list."""
        created = app.extensions["callback"].storage.create_tables()
        click.echo("created: " + (", ".join(created) if created else "nothing, all tables exist"))
        _report_voices(app.extensions["callback"].storage.list_ivrs())

    @app.cli.command("check-voices")
    def check_voices():
        """Report IVRs whose voice and language Twilio's voice table does not list (exit 1 if any)."""
        if _report_voices(app.extensions["callback"].storage.list_ivrs()):
            raise SystemExit(1)

    @app.cli.command("twilio-setup")
    @click.option("--dry-run", is_flag=True, help="say what would change, change nothing")
    @click.option("--take-over", is_flag=True, help="clear a number's TwiML App or SIP trunk binding")
    def twilio_setup(dry_run, take_over):
        """Point every IVR number's Voice URL, fallback and status callback at this deployment."""
        svc = app.extensions["callback"]
        results = set_up_numbers(svc.storage, svc.telephony, svc.config, dry_run=dry_run, take_over=take_over)
        for result in results:
            for line in result.lines():
                click.echo(line)
        if not results:
            click.echo("no IVR has a number yet: add one in the portal, then run this again")
        # Every queue gets its MaxSize too, or <Enqueue> gives it Twilio's default size.
        unsized = False if dry_run else _echo_sizing(size_every_queue(svc))
        if any(r.problem for r in results) or unsized:
            raise SystemExit(1)

    @app.cli.command("size-queues")
    def size_queues():
        """Create or update every IVR queue's Twilio queue with its MaxSize (exit 1 if one failed)."""
        if _echo_sizing(size_every_queue(app.extensions["callback"])):
            raise SystemExit(1)

    return app


def _echo_sizing(sized):
    """Print what sizing each queue came to; True when Twilio did not size one."""
    for queue in sized:
        click.echo(f"queue {queue.name}: MaxSize {queue.max_size}, {queue.outcome}"
                   + (f" ({queue.error})" if queue.error else ""))
    if not sized:
        click.echo("no queues: add them on an IVR")
    return any(queue.failed for queue in sized)


def _report_voices(ivrs):
    """Print each IVR whose voice and language Twilio's table does not list, with the nearest
    pair it does; returns how many there were."""
    wrong = [ivr for ivr in ivrs if speech_problem(ivr.settings.voice, ivr.settings.language)]
    for ivr in wrong:
        click.echo(f"IVR {ivr.name}: {speech_problem(ivr.settings.voice, ivr.settings.language)}. "
                   "Until the settings change, its calls speak that nearest pair.")
    click.echo(f"voices: {len(wrong)} of {len(ivrs)} IVRs outside Twilio's voice table"
               + (" (fix them in IVRs > Settings or PUT /api/ivrs/<name>/settings)" if wrong else ""))
    return len(wrong)


def _secret_key(config):
    """SECRET_KEY; without one, a random key for a local run or a test (one process), and on
    Lambda none at all."""
    if config.SECRET_KEY.strip():
        return config.SECRET_KEY
    # Each Lambda container would make its own random key, so a session or a page cursor
    # would fail on the next container: the admin portal refuses sign-in instead, and the
    # start-up error and /health name the missing SECRET_KEY.
    return None if config.AWS_LAMBDA_FUNCTION_NAME else os.urandom(32).hex()
