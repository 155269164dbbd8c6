"""The health check, and what start-up found missing.

`GET /health` answers from memory: no DynamoDB or Twilio request, no secret value, no
sign-in. 200 `{"status": "ok"}` when the deployment has its secrets; 503 naming the missing
ones (and how many webhooks were answered with their safe TwiML meanwhile) when not.
"""
import logging
import threading

from flask import Blueprint, current_app, jsonify

from callback.config import WEBHOOK_SECRETS, missing_secrets_message

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
EXTENSION = "callback.readiness"


class Readiness:
    """What this process's configuration lacks, and the webhooks answered safe because of it."""

    def __init__(self, config):
        self.missing = tuple(config.missing_secrets())
        self.warnings = tuple(config.disabled_features())
        self.webhooks_blocked = bool(set(self.missing) & set(WEBHOOK_SECRETS))
        self._lock = threading.Lock()
        self._safe_answers = 0

    def count_safe_answer(self):
        """Count one webhook answered with its safe TwiML for lack of a secret."""
        with self._lock:
            self._safe_answers += 1

    @property
    def safe_answers(self):
        """Webhooks answered with their safe TwiML for lack of a secret, in this process."""
        return self._safe_answers


def check_at_startup(config):
    """The process's Readiness, logged once: one ERROR naming the missing required secrets,
    one WARNING per feature an optional one turns off (names only, never a value)."""
    readiness = Readiness(config)
    if readiness.missing:
        log.error(missing_secrets_message(readiness.missing))
    for warning in readiness.warnings:
        log.warning(warning)
    return readiness


def readiness():
    """This app's Readiness."""
    return current_app.extensions[EXTENSION]


@bp.get("/health")
def health():
    """200 when the deployment has its secrets; 503 naming those it lacks."""
    state = readiness()
    body = {"status": "ok"}
    if state.missing:
        body = {"status": "misconfigured", "missing": list(state.missing),
                "webhooks_answered_safe": state.safe_answers}
    if state.warnings:
        body["warnings"] = list(state.warnings)
    response = jsonify(body)
    response.status_code = 503 if state.missing else 200
    # A load balancer's or a proxy's cached answer would hide a fixed (or a new) problem.
    response.headers["Cache-Control"] = "no-store"
    return response
