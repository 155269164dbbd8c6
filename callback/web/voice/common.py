"""What every voice webhook shares: the blueprint, the signature check, the safe-TwiML
error handler, request parameters, and the hold loop's URLs and routing.

Every route checks X-Twilio-Signature against the public URL Twilio requested, and every
failure inside a route answers with TwiML that keeps the caller safe, never an HTML 500.
While a secret the webhooks need is missing (see callback.config.WEBHOOK_SECRETS), no route
runs at all: each request gets that same safe TwiML, and is logged and counted.
"""
import functools
import logging
import time
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, current_app, g, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from callback import metrics
from callback.domain.hold import HoldTrack, between_prompts
from callback.domain.numbers import caller_id_number, mask
from callback.domain.records import OFFLINE
from callback.web import twiml
from callback.web.health import readiness

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

MAX_PARAM_LENGTH = 256
FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
# QueueResult values of an Enqueue that ended through no choice of the caller's.
QUEUE_ERRORS = ("error", "system-error")


@bp.before_request
def _started():
    g.webhook_started = time.perf_counter()


@bp.after_request
def _measured(response):
    """One line per webhook for on-call: its route, status and time, and whether it had to
    answer its safe TwiML (a failure the caller did not hear as one)."""
    started = g.get("webhook_started")
    if started is not None:
        fallback = request.path.endswith("-fallback")
        values = {metrics.WEBHOOK_LATENCY: round((time.perf_counter() - started) * 1000, 1),
                  metrics.WEBHOOK_ERRORS: int(bool(g.get("webhook_failed")) or response.status_code >= 500)}
        if fallback:
            values[metrics.FALLBACK_USED] = 1
        try:
            call_sid = request.form.get("CallSid", "")[:64]
        except Exception:  # a body the request refused (too large): no CallSid to tell
            call_sid = ""
        metrics.emit(values, route=request.url_rule.rule if request.url_rule else request.path,
                     status=response.status_code, CallSid=call_sid,
                     callback=request.args.get("callback") or request.args.get("key"),
                     attempt=request.args.get("attempt"))
    return response


def services():
    """The app's wired services (storage, directory, dispatcher, clock, config)."""
    return current_app.extensions["callback"]


def public_request_url():
    """The URL Twilio requested, rebuilt from PUBLIC_BASE_URL (proxies and API Gateway
    stages change what Flask sees)."""
    config = services().config
    url = config.PUBLIC_BASE_URL.rstrip("/") + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def _signing_key_id(settings_header):
    """The SharedKey id in X-Twilio-Webhooks-Signature-Settings ("key=<id>,algorithm=<alg>")."""
    for part in settings_header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "key":
            return value.strip()
    return ""


def signature_is_valid():
    """True when X-Twilio-Signature matches this request: HMAC-SHA1 with the Auth Token, or,
    when Twilio announces another scheme in X-Twilio-Webhooks-Signature-Settings, that
    algorithm (HMAC-SHA256) with the SharedKey the header names."""
    config = services().config
    if not config.VALIDATE_TWILIO_SIGNATURE:
        return True
    signature = request.headers.get(SIGNATURE_HEADER, "")
    settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER, "")
    key_id = _signing_key_id(settings_header)
    secret = config.webhook_shared_keys().get(key_id) if key_id else config.TWILIO_AUTH_TOKEN
    if key_id and not secret:
        log.warning("webhook signed with SharedKey %s, which TWILIO_WEBHOOK_SHARED_KEYS lacks", key_id[:64])
    if not signature or not secret:
        return False
    return RequestValidator(secret).validate(public_request_url(), request.form, signature,
                                             get_signature_algorithm(settings_header))


def param(name, default=""):
    """A request parameter (form, then query string), trimmed and length-capped."""
    value = request.form.get(name)
    if value is None:
        value = request.args.get(name, default)
    return (value or "")[:MAX_PARAM_LENGTH].strip()


def _xml(body):
    return Response(body, mimetype="text/xml")


def _safe_answer(safe_twiml):
    g.webhook_failed = True
    try:
        return _xml(safe_twiml())
    except Exception:
        log.exception("safe answer failed too (CallSid %s)", param("CallSid") or "-")
        return _xml(twiml.goodbye())


def _answer_unconfigured(safe_twiml):
    """The safe TwiML, logged and counted: without the token no signature can be checked, so
    nothing the request says is acted on (and a 403 would leave the caller to Twilio's fallback)."""
    state = readiness()
    state.count_safe_answer()
    log.error("webhook %s answered with its safe TwiML: missing secrets %s (CallSid %s)", request.path,
              ", ".join(state.missing), param("CallSid") or "-")
    return _safe_answer(safe_twiml)


def webhook(safe_twiml):
    """Signature check, then the handler; any exception answers `safe_twiml()` instead, and
    so does every request while a secret the webhooks need is missing."""

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            if readiness().webhooks_blocked:
                return _answer_unconfigured(safe_twiml)
            if not signature_is_valid():
                log.warning("rejected unsigned or wrongly signed request to %s (CallSid %s)",
                            request.path, param("CallSid") or "-")
                abort(403)
            try:
                return _xml(handler(*args, **kwargs))
            except Exception:
                log.exception("webhook %s failed (CallSid %s, From %s)", request.path,
                              param("CallSid") or "-", mask(param("From")))
                return _safe_answer(safe_twiml)

        return wrapper

    return decorate


def _wait_url(ivr_name, queue_name, offer=True, offered=False, recorded=True):
    """The hold loop's URL. `recorded` carries this request's `joined` marker (the caller
    is recorded as waiting since then); False gives the bare URL, which records them, with
    the marker as `since`: a redirected request need not carry QueueTime to date the wait.

    A caller of a closed center is in no queue: where others go back to holding, they go
    on to goodbye."""
    config = services().config
    if _closed_marker():
        return config.public_url("/voice/closed/bye", ivr=ivr_name)
    marker = _joined_marker()
    return config.public_url("/voice/wait", ivr=ivr_name, queue=queue_name,
                             offer=None if offer else "off", offered="1" if offered else None,
                             joined=marker if recorded else None,
                             since=None if recorded else marker)


def _closed_marker():
    """"1" when this request belongs to a call taken while the center was closed (its
    number entry runs outside any queue), else None."""
    return "1" if param("closed") == "1" else None


def _later_marker():
    """"1" when this request belongs to a caller who pressed 2 at the offer: once their number
    is confirmed, they choose a time for the callback (`slots.py`), else None."""
    return "1" if param("later") == "1" else None


def _number_in_hand(ivr):
    """The number this caller confirmed or was offered: their own line (`source=caller`;
    From is signed by Twilio like every parameter), or the entry held aside by CallSid
    (`entry`); None when neither is there (any more)."""
    if param("source") == "caller":
        return caller_id_number(param("From"), ivr.settings.dial_rules) if ivr.settings.offer_caller_id \
            else None
    svc, call_sid, entry = services(), param("CallSid"), param("entry")
    return svc.storage.held_entry(call_sid, entry, svc.clock.now()) if call_sid and entry else None


def _joined_marker(name="joined"):
    """The `joined` marker of this request (epoch seconds, a URL we built), or None."""
    value = param(name)
    return value if value.isdigit() and len(value) <= 10 else None


def _joined_time(name="joined"):
    """The time in the `joined` marker (or another of its kind, `since`), or None."""
    marker = _joined_marker(name)
    return datetime.fromtimestamp(int(marker), timezone.utc) if marker else None


def _hold_track():
    """The hold music as configured: HOLD_MUSIC_URL, and its length when HOLD_MUSIC_SECONDS says."""
    config = services().config
    return HoldTrack(config.HOLD_MUSIC_URL.strip(), config.HOLD_MUSIC_SECONDS or None)


def _music(audio):
    """[(url, times)] for twiml.hold: the hold track's whole plays, then the app's own clip's."""
    config = services().config
    return [(config.HOLD_MUSIC_URL.strip(), audio.plays),
            (config.public_url("/voice/hold-clip.wav"), audio.fillers)]
REQUEUE_MESSAGE = "Sorry, something went wrong. You are still in line and you have kept your place."


def _requeue(joined):
    """Put the caller back in the queue the URL names, with their place (`joined`, when
    known): no DynamoDB needed, as the safe answer of a caller thrown out of the queue."""
    config = services().config
    ivr_name, queue_name = param("ivr"), param("queue")
    wait_url = config.public_url("/voice/wait", ivr=ivr_name, queue=queue_name,
                                 joined=int(joined.timestamp()) if joined else None)
    action = config.public_url("/voice/enqueue-done", ivr=ivr_name, queue=queue_name,
                               requeue=_int(param("requeue"), 0) + 1)
    return twiml.enqueue(queue_name, wait_url, action, greeting=REQUEUE_MESSAGE)


def _hold_music():
    # No redirect: Twilio asks for the waitUrl again once this has played, and that request
    # (with its QueueTime) tries again.
    return twiml.hold_music_only(_music(between_prompts(_hold_track())))


def _routed():
    """(IVR, queue) named by the request; the queue is None when either is unknown."""
    ivr = services().directory.ivr(param("ivr"))
    return ivr, (ivr.queue(param("queue")) if ivr else None)


def _turned_away():
    """True on the requests of a caller Twilio turned away because their queue was full
    (`full=1`, a URL we built): they are in no queue, so nothing sends them back to hold,
    whose first request would record them as waiting."""
    return param("full") == "1"


def _resume_url(ivr_name, queue_name, **options):
    """Where a caller goes on holding (`_wait_url`), or None for one in no queue."""
    return None if _turned_away() else _wait_url(ivr_name, queue_name, **options)


def _unrouted_back_to_hold():
    # The IVR or queue was renamed or deleted mid-call: the caller keeps holding where
    # Twilio has them, and the offer is not made again on a route we no longer know.
    return twiml.back_to_hold(_resume_url(param("ivr"), param("queue"), offer=False))


def _int(text, default):
    """A small whole number from a parameter (QueueTime is at most 14,400: calls end at 4 h)."""
    return int(text) if text.isdigit() and len(text) <= 6 else default


def _agents_on_duty(queue_name):
    """Agents of the queue signed in now (available, ringing or on a call)."""
    return sum(1 for agent in services().storage.list_agents()
               if agent.status != OFFLINE and queue_name in agent.queues)
