"""Twilio voice webhooks: thin handlers that read the request, call the domain, answer TwiML.

Every route checks X-Twilio-Signature against the public URL Twilio requested, and every
failure inside a route answers with TwiML that keeps the caller safe, never an HTML 500.
"""
import functools
import logging
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from callback.domain import stats
from callback.domain.answers import NOTICES
from callback.domain.estimate import estimate_wait, history_since
from callback.domain.numbers import caller_id_number, check_callback_entry, mask
from callback.domain.records import CONNECTING, OFFLINE, Callback
from callback.domain.rules import CALL, CALLBACK
from callback.domain.settings import DEFAULT_SPEECH
from callback.domain.views import caller_conference
from callback.storage import CreateResult, NotFound, StorageError
from callback.web import tones, twiml

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

MAX_PARAM_LENGTH = 256
FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
# QueueResult values of an Enqueue that ended through no choice of the caller's.
QUEUE_ERRORS = ("error", "system-error")


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


def webhook(safe_twiml):
    """Signature check, then the handler; any exception answers `safe_twiml()` instead."""

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            if not signature_is_valid():
                log.warning("rejected unsigned or wrongly signed request to %s (CallSid %s)",
                            request.path, param("CallSid") or "-")
                abort(403)
            try:
                return _xml(handler(*args, **kwargs))
            except Exception:
                log.exception("webhook %s failed (CallSid %s, From %s)", request.path,
                              param("CallSid") or "-", mask(param("From")))
                try:
                    return _xml(safe_twiml())
                except Exception:
                    log.exception("safe answer failed too (CallSid %s)", param("CallSid") or "-")
                    return _xml(twiml.goodbye())

        return wrapper

    return decorate


def _wait_url(ivr_name, queue_name, offer=True, offered=False, recorded=True):
    """The hold loop's URL. `recorded` carries this request's `joined` marker (the caller
    is recorded as waiting since then); False gives the bare URL, which records them."""
    config = services().config
    joined = _joined_marker() if recorded else None
    return config.public_url("/voice/wait", ivr=ivr_name, queue=queue_name,
                             offer=None if offer else "off", offered="1" if offered else None,
                             joined=joined)


def _joined_marker():
    """The `joined` marker of this request (epoch seconds, a URL we built), or None."""
    value = param("joined")
    return value if value.isdigit() and len(value) <= 10 else None


def _joined_time():
    """The time in the `joined` marker, or None."""
    marker = _joined_marker()
    return datetime.fromtimestamp(int(marker), timezone.utc) if marker else None


def _speech(ivr):
    """The voice and language of an IVR's prompts (the default when it is unknown)."""
    return ivr.settings.speech if ivr else DEFAULT_SPEECH


def _hold_music():
    return twiml.hold_music_only(services().config.HOLD_MUSIC_URL)


# -- caller flow -------------------------------------------------------------------------

@bp.post("/incoming")
@webhook(safe_twiml=twiml.goodbye)
def incoming():
    """A call to one of an IVR's numbers: greeting, queue menu or straight to the queue."""
    ivr = services().directory.ivr_for_number(param("To"))
    if ivr is None or not ivr.queues:
        log.info("call %s to a number with no IVR", param("CallSid") or "-")
        return twiml.unknown_number()
    if len(ivr.queues) == 1:
        return _enqueue(ivr, ivr.queues[0], greeting=ivr.greeting)
    return twiml.queue_menu(ivr.greeting, [q.name for q in ivr.queues],
                            services().config.public_url("/voice/menu", ivr=ivr.name, attempt=1),
                            speech=_speech(ivr))


@bp.post("/menu")
@webhook(safe_twiml=twiml.goodbye)
def menu():
    """The caller picked a queue (or did not): enqueue, ask again, or take the first."""
    ivr = services().directory.ivr(param("ivr"))
    if ivr is None or not ivr.queues:
        return twiml.unknown_number()
    digits = param("Digits")
    if digits.isdigit() and 1 <= int(digits) <= len(ivr.queues):
        return _enqueue(ivr, ivr.queues[int(digits) - 1])
    attempt = _int(param("attempt"), 1)
    if attempt >= 3:
        return _enqueue(ivr, ivr.queues[0],
                        greeting=f"I will put you through to {ivr.queues[0].name}.")
    problem = "Sorry, that is not one of the choices." if digits else "Sorry, I did not hear a choice."
    return twiml.queue_menu(None, [q.name for q in ivr.queues],
                            services().config.public_url("/voice/menu", ivr=ivr.name,
                                                         attempt=attempt + 1), problem=problem,
                            speech=_speech(ivr))


def _routed():
    """(IVR, queue) named by the request; the queue is None when either is unknown."""
    ivr = services().directory.ivr(param("ivr"))
    return ivr, (ivr.queue(param("queue")) if ivr else None)


def _unrouted_back_to_hold():
    # The IVR or queue was renamed or deleted mid-call: the caller keeps holding where
    # Twilio has them, and the offer is not made again on a route we no longer know.
    return twiml.back_to_hold(_wait_url(param("ivr"), param("queue"), offer=False))


def _int(text, default):
    """A small whole number from a parameter (QueueTime is at most 14,400: calls end at 4 h)."""
    return int(text) if text.isdigit() and len(text) <= 6 else default


def _enqueue(ivr, queue, greeting=None):
    # Nothing is recorded yet: a caller who hangs up before Twilio runs <Enqueue> never
    # reaches the queue, so the first waitUrl request records them (see `wait`).
    action = services().config.public_url("/voice/enqueue-done", ivr=ivr.name, queue=queue.name)
    return twiml.enqueue(queue.name, _wait_url(ivr.name, queue.name, recorded=False), action,
                         greeting=greeting, speech=_speech(ivr))


@bp.post("/wait")
@webhook(safe_twiml=_hold_music)
def wait():
    """The hold loop (hottest path): music, and the callback offer once it is due.

    A request without the `joined` marker records the caller as waiting since Twilio says
    they joined (now - QueueTime; an earlier record keeps its place) and answers with a loop
    on the marked URL, which redirects to itself. Marked requests read only the cached
    directory, except once per call: the request that first makes the offer reads what the
    wait estimate needs (three Queries), then the loop continues on an `offered` URL. If
    recording fails, plain music without a redirect sends the caller back to the bare
    waitUrl, which tries again.
    """
    svc = services()
    ivr, queue = _routed()
    music = svc.config.HOLD_MUSIC_URL
    if queue is None:
        return twiml.hold(music, speech=_speech(ivr))
    now = svc.clock.now()
    joined = _joined_time()
    if joined is None:
        joined = _record_caller(ivr, queue, now - timedelta(seconds=_int(param("QueueTime"), 0)))
        if joined is None:
            # A callback was stored for this call (its confirmation was lost): leave for it.
            return twiml.leave_queue()
    offer_on = param("offer") != "off"
    offered = param("offered") == "1"

    def loop(offered):
        return svc.config.public_url("/voice/wait", ivr=ivr.name, queue=queue.name,
                                     offer=None if offer_on else "off",
                                     offered="1" if offered else None, joined=int(joined.timestamp()))

    settings = ivr.settings
    offer_due = (
        offer_on and queue.callback_enabled and settings.callback_enabled
        and (offered or (now - joined).total_seconds() >= settings.offer_after_seconds)
    )
    if not offer_due:
        return twiml.hold(music, loop_url=loop(False), speech=_speech(ivr))
    offer_url = svc.config.public_url("/voice/offer", ivr=ivr.name, queue=queue.name,
                                      joined=int(joined.timestamp()))
    if offered:
        return twiml.hold(music, offer_url=offer_url, loop_url=loop(True), speech=_speech(ivr))
    return twiml.hold(music, offer_url=offer_url, loop_url=loop(True), wait=_offer_wait(queue, joined),
                      speech=_speech(ivr))


def _record_caller(ivr, queue, joined):
    """Record the caller of this request as waiting; returns the time their place in line
    dates from, or None when this call already has a callback."""
    svc = services()
    call_sid = param("CallSid")
    if not call_sid:
        return joined
    outcome, call = svc.storage.record_waiting_call(call_sid, ivr_name=ivr.name, queue_name=queue.name,
                                                    caller=param("From"), joined_at=joined)
    if outcome == "has-callback":
        log.warning("call %s is holding although its callback is stored; it leaves the queue", call_sid)
        return None
    if outcome == "recorded":
        svc.handoff.dispatch([queue.name])
    return call.joined_at if call else joined


def _offer_wait(queue, joined):
    """(ahead, estimate) for the caller hearing the offer, or None; never fails the loop.

    Ahead: the callers holding before them (Twilio's QueuePosition) and the pending
    callbacks with an earlier place in line. Three Queries, once per call.
    """
    svc = services()
    position = _int(param("QueuePosition"), 0)
    if position < 1:
        return None
    now = svc.clock.now()
    try:
        history = svc.storage.recent_departures(queue.name, history_since(now))
        ahead = position - 1 + svc.storage.count_pending_before(queue.name, joined)
        on_duty = _agents_on_duty(queue.name)
    except StorageError:
        log.warning("no wait estimate for call %s: DynamoDB did not answer", param("CallSid") or "-")
        return None
    estimate = estimate_wait(history, ahead, now, on_duty)
    return (ahead, estimate) if estimate is not None else None


@bp.post("/offer")
@webhook(safe_twiml=_hold_music)
def offer():
    """The caller pressed a key during the offer: 1 offers their own number (when the IVR
    says so and it is a valid one) or starts number entry."""
    ivr_name, queue_name = param("ivr"), param("queue")
    ivr = services().directory.ivr(ivr_name)
    if param("Digits") != "1":
        return twiml.back_to_hold(_wait_url(ivr_name, queue_name, offered=True),
                                  speech=_speech(ivr))
    own = caller_id_number(param("From")) if ivr and ivr.settings.offer_caller_id else None
    if own:
        return twiml.offer_caller_id(own, _confirm_url(ivr_name, queue_name, 1, 0, source="caller"),
                                     speech=_speech(ivr))
    # Entry runs inside the wait loop (this Gather's action keeps the waiting context):
    # the caller stays in the Twilio queue while typing, so an agent who frees up meanwhile
    # can still take them, and a failed entry just resumes holding. Leaving the queue
    # would mean a re-enqueue and a window in which nobody could answer them.
    return twiml.number_entry(_entry_url(ivr_name, queue_name, 1), speech=_speech(ivr))


def _entry_url(ivr_name, queue_name, attempt, redo=0):
    return services().config.public_url("/voice/number", ivr=ivr_name, queue=queue_name,
                                        attempt=attempt, redo=redo or None, joined=_joined_marker())


def _entry_not_saved(speech=DEFAULT_SPEECH):
    # Back to the bare wait URL: whatever the failed request left stored, its next request
    # puts it right (records the caller again, or sees the callback and leaves for it).
    return twiml.back_to_hold(_wait_url(param("ivr"), param("queue"), offer=False, recorded=False),
                              message="Sorry, I could not save your number just now. You are "
                                      "still on hold and you have kept your place in line.",
                              speech=speech)


@bp.post("/number")
@webhook(safe_twiml=_entry_not_saved)
def number():
    """Check the keyed-in number: read a valid one back for confirmation, or ask again."""
    svc = services()
    ivr, queue = _routed()
    if queue is None:
        return _unrouted_back_to_hold()
    speech = _speech(ivr)
    attempt, redo = _int(param("attempt"), 1), _int(param("redo"), 0)
    # Read the raw value: the length cap of `param` must not turn junk into a valid number.
    check = check_callback_entry(request.form.get("Digits", ""))
    if not check.ok:
        allowed = ivr.settings.entry_attempts
        if attempt >= allowed:
            return twiml.entry_failed(check.problem, _wait_url(ivr.name, queue.name, offer=False),
                                      speech=speech)
        return twiml.number_entry(_entry_url(ivr.name, queue.name, attempt + 1, redo),
                                  problem=check.problem, last_try=attempt + 1 == allowed,
                                  speech=speech)
    call_sid = param("CallSid")
    if not call_sid:
        return twiml.back_to_hold(_wait_url(ivr.name, queue.name), speech=speech)
    # A valid but mistyped number must never be stored unconfirmed: keep it aside (by
    # CallSid, out of every URL) and read it back.
    entry = svc.storage.hold_entry(call_sid, check.e164, svc.clock.now())
    return twiml.confirm_number(check.e164, _confirm_url(ivr.name, queue.name, attempt, redo,
                                                         entry=entry), speech=speech)


def _confirm_url(ivr_name, queue_name, attempt, redo, *, entry=None, source=None, ask=1):
    return services().config.public_url("/voice/confirm", ivr=ivr_name, queue=queue_name,
                                        attempt=attempt, redo=redo or None, entry=entry,
                                        source=source, ask=ask if ask > 1 else None,
                                        joined=_joined_marker())


# A caller may re-enter their number this many times (each is not a failed try, but the
# loop is bounded like everything else); then they go back to holding.
MAX_REENTRIES = 3


@bp.post("/confirm")
@webhook(safe_twiml=_entry_not_saved)
def confirm():
    """The number was read back (or the caller's own offered): 1 stores it, 2 enters a
    number (again), silence or another key asks once more."""
    svc = services()
    ivr, queue = _routed()
    if queue is None:
        return _unrouted_back_to_hold()
    speech = _speech(ivr)
    attempt, redo, ask = _int(param("attempt"), 1), _int(param("redo"), 0), _int(param("ask"), 1)
    entry, call_sid = param("entry"), param("CallSid")
    own_number = param("source") == "caller"
    if own_number:
        # From is signed by Twilio like every parameter: the caller's own line, offered as is.
        e164 = caller_id_number(param("From")) if ivr.settings.offer_caller_id else None
    else:
        e164 = svc.storage.held_entry(call_sid, entry, svc.clock.now()) if call_sid and entry else None
    if e164 is None or not call_sid:
        return _entry_not_saved(speech)
    digits = param("Digits")
    if digits == "1":
        return _store_and_leave(ivr, queue, call_sid, e164)
    if digits == "2":
        if own_number:
            return twiml.number_entry(_entry_url(ivr.name, queue.name, 1), speech=speech)
        if redo >= MAX_REENTRIES:
            return twiml.nothing_saved(_wait_url(ivr.name, queue.name, offer=False), speech=speech)
        return twiml.number_entry(_entry_url(ivr.name, queue.name, attempt, redo + 1), speech=speech)
    if ask >= 2:
        return twiml.nothing_saved(_wait_url(ivr.name, queue.name, offer=False), speech=speech)
    problem = "other" if digits else "silence"
    if own_number:
        return twiml.offer_caller_id(e164, _confirm_url(ivr.name, queue.name, 1, 0, source="caller",
                                                        ask=ask + 1), problem=problem, speech=speech)
    return twiml.confirm_number(e164, _confirm_url(ivr.name, queue.name, attempt, redo,
                                                   entry=entry, ask=ask + 1),
                                problem=problem, speech=speech)


def _store_and_leave(ivr, queue, call_sid, e164):
    """Store the confirmed callback and take the caller out of the queue."""
    result = _store_callback(ivr, queue, call_sid, e164)
    if result.outcome == "agent-connecting":
        return twiml.back_to_hold(_wait_url(ivr.name, queue.name, offer=False),
                                  message="An agent is about to answer your call. "
                                          "Please stay on the line.", speech=_speech(ivr))
    if result.outcome == "number-pending":
        existing = result.callback.number if result.callback else e164
        return twiml.already_pending(existing, speech=_speech(ivr))
    services().handoff.dispatch([queue.name])
    return twiml.leave_queue()


def _store_callback(ivr, queue, call_sid, e164):
    svc = services()
    now = svc.clock.now()
    waiting = svc.storage.get_waiting_call(call_sid)
    if waiting is not None and waiting.status == CONNECTING:
        return CreateResult("agent-connecting", None)
    # Their place in line is when they first joined the queue, not when they asked.
    place = waiting.joined_at if waiting else (_joined_time() or now)
    settings = ivr.settings
    callback = Callback(
        callback_id=call_sid, number=e164, ivr_name=ivr.name, queue_name=queue.name,
        requested_at=now, place_in_line=place, priority=settings.priority_for(queue.priority),
        due_at=now, expires_at=now + timedelta(minutes=settings.expiration_minutes))
    try:
        result = svc.storage.create_callback(callback, call_sid)
    except StorageError:
        stored = _stored_anyway(call_sid, e164)
        if stored is None:
            raise
        log.warning("callback %s was stored although DynamoDB's answer was lost", call_sid)
        result = CreateResult("created", stored)
    log.info("callback %s for %s in %s: %s", call_sid, mask(e164), queue.name, result.outcome)
    return result


def _stored_anyway(call_sid, e164):
    """After a failed store: the callback if the write was applied all the same (its answer
    was lost), else None. The transaction is all or nothing, so a stored callback means
    the caller has left the line too."""
    try:
        callback = services().storage.get_callback(call_sid)
    except NotFound:
        return None
    except StorageError:
        log.exception("could not check whether callback %s was stored", call_sid)
        return None
    return callback if callback.number == e164 else None


MAX_REQUEUES = 2
REQUEUE_MESSAGE = "Sorry, something went wrong. You are still in line and you have kept your place."


def _left_queue_safely():
    result = param("QueueResult")
    if result == "leave":
        # Only a stored callback makes us <Leave>: confirm it, without the read-back.
        return twiml.goodbye("Thank you. Your callback request is saved and keeps your place "
                             "in line. You may hang up now. Goodbye.")
    if result in QUEUE_ERRORS and param("queue") and _int(param("requeue"), 0) < MAX_REQUEUES:
        # Back into the queue without DynamoDB: their record, if any, keeps their place.
        return _requeue(None)
    return twiml.hangup()


def _requeue(joined):
    """Put the caller back in their queue (Twilio ended the Enqueue with an error)."""
    config = services().config
    ivr_name, queue_name = param("ivr"), param("queue")
    wait_url = config.public_url("/voice/wait", ivr=ivr_name, queue=queue_name,
                                 joined=int(joined.timestamp()) if joined else None)
    action = config.public_url("/voice/enqueue-done", ivr=ivr_name, queue=queue_name,
                               requeue=_int(param("requeue"), 0) + 1)
    return twiml.enqueue(queue_name, wait_url, action, greeting=REQUEUE_MESSAGE)


@bp.post("/enqueue-done")
@webhook(safe_twiml=_left_queue_safely)
def enqueue_done():
    """The caller left the queue: hung up, served, left for a callback, or thrown out by
    an error (then back in, with their place, a bounded number of times)."""
    svc = services()
    call_sid = param("CallSid")
    result = param("QueueResult")
    if result == "leave":
        try:
            callback = svc.storage.get_callback(call_sid)
        except NotFound:
            return twiml.goodbye("Goodbye.")
        return twiml.callback_stored(callback.number, expected=_expected_callback(callback),
                                     speech=_speech(svc.directory.ivr(callback.ivr_name)))
    if result in QUEUE_ERRORS and param("queue") and _int(param("requeue"), 0) < MAX_REQUEUES:
        waiting = svc.storage.get_waiting_call(call_sid) if call_sid else None
        log.warning("call %s dropped from queue %s (%s); putting it back", call_sid or "-",
                    param("queue"), result)
        return _requeue(waiting.joined_at if waiting else None)
    if call_sid and result in ("hangup", "bridged", "queue-full") + QUEUE_ERRORS:
        # A hang-up while holding is an abandoned call, counted once for the wallboard.
        svc.storage.remove_waiting_call(call_sid, event=stats.ABANDONED if result == "hangup" else None,
                                        now=svc.clock.now())
    if result in ("queue-full",) + QUEUE_ERRORS:
        return twiml.goodbye()
    return twiml.hangup() if result == "hangup" else twiml.empty()


def _expected_callback(callback):
    """When a just-stored callback should come, from the work ahead of its place in line
    and the queue's recent pace; None when not worth saying (or DynamoDB did not answer)."""
    svc = services()
    now = svc.clock.now()
    queue, place = callback.queue_name, callback.place_in_line
    try:
        history = svc.storage.recent_departures(queue, history_since(now))
        ahead = (svc.storage.count_waiting_before(queue, place)
                 + svc.storage.count_pending_before(queue, place))
        on_duty = _agents_on_duty(queue)
    except StorageError:
        log.warning("no callback estimate for call %s: DynamoDB did not answer", callback.callback_id)
        return None
    return estimate_wait(history, ahead, now, on_duty)


def _agents_on_duty(queue_name):
    """Agents of the queue signed in now (available, ringing or on a call)."""
    return sum(1 for agent in services().storage.list_agents()
               if agent.status != OFFLINE and queue_name in agent.queues)


# -- agents, customers, conferences ----------------------------------------------------

def _sorry_agent():
    return twiml.notice("Sorry, this call could not be connected. Goodbye.")


def _agent_answer_twiml(answer):
    if answer.whisper:
        return twiml.agent_whisper(answer.whisper, answer.accept_url, speech=answer.speech)
    if answer.conference is None:
        return twiml.notice(answer.notice, speech=answer.speech)
    # The agent waits for the other party with a ringing tone, not silence.
    return twiml.conference(answer.conference, announcement=answer.announcement,
                            status_callback=answer.status_callback, start_on_enter=False,
                            wait_url=services().config.public_url("/voice/ringback.wav"),
                            speech=answer.speech)


@bp.post("/agent/answer")
@webhook(safe_twiml=_sorry_agent)
def agent_answer():
    """The agent picked up: the whisper (queue, number, attempt n of m), 1 to accept."""
    svc = services()
    kind = param("kind")
    if kind not in (CALL, CALLBACK):
        return twiml.hangup()
    answer = svc.dispatcher.agent_answered(kind, param("key"), param("attempt"), param("agent"),
                                           param("CallSid"))
    return _agent_answer_twiml(answer)


@bp.post("/agent/accept")
@webhook(safe_twiml=_sorry_agent)
def agent_accept():
    """The agent's key after the whisper: 1 joins them to the conference at once (the
    customer is dialed, the holding caller moved, when their join is reported); anything
    else, or nothing, declines."""
    svc = services()
    kind = param("kind")
    if kind not in (CALL, CALLBACK):
        return twiml.hangup()
    answer = svc.dispatcher.agent_pressed(kind, param("key"), param("attempt"), param("agent"),
                                          param("CallSid"), param("Digits"))
    if answer.conference is None:
        svc.handoff.dispatch()
    return _agent_answer_twiml(answer)


@bp.post("/agent/status")
@webhook(safe_twiml=twiml.empty)
def agent_status():
    """Status of an agent's leg: on its final status, release the agent and fix the work."""
    svc = services()
    status = param("CallStatus")
    if status not in FINAL_CALL_STATUSES or param("kind") not in (CALL, CALLBACK):
        return twiml.empty()
    released = svc.dispatcher.agent_call_ended(param("kind"), param("key"), param("attempt"),
                                               param("agent"), param("CallSid"), status)
    if released:
        svc.handoff.dispatch()
    return twiml.empty()


@bp.post("/customer/answer")
@webhook(safe_twiml=lambda: twiml.goodbye("We are sorry, we could not connect your callback. "
                                          "We will try again. Goodbye."))
def customer_answer():
    """The customer picked up (Twilio already ran answering-machine detection)."""
    answer = services().dispatcher.customer_answered(param("callback"), param("attempt"),
                                                     param("CallSid"), param("AnsweredBy"))
    if answer.hang_up:
        return (twiml.notice(answer.announcement, speech=answer.speech) if answer.announcement
                else twiml.hangup())
    return twiml.conference(answer.conference, announcement=answer.announcement,
                            status_callback=answer.status_callback, speech=answer.speech)


@bp.post("/customer/status")
@webhook(safe_twiml=twiml.empty)
def customer_status():
    """Status of the customer's leg: a final status ends the attempt, once."""
    status = param("CallStatus")
    if status in FINAL_CALL_STATUSES:
        outcome = services().dispatcher.customer_call_ended(param("callback"), param("attempt"),
                                                            param("CallSid"), status)
        if outcome.freed_agent:
            services().handoff.dispatch()
    return twiml.empty()


@bp.post("/conference")
@webhook(safe_twiml=twiml.empty)
def conference_event():
    """Conference status: participants joining and leaving, and its end. The agent's join
    dials the customer (or moves the holding caller): one bounded REST request."""
    svc = services()
    kind = param("kind") or CALLBACK
    key = param("key") or param("callback")
    outcome = svc.dispatcher.conference_event(kind, key, param("attempt"), param("agent"),
                                              param("StatusCallbackEvent"), param("CallSid"))
    if outcome is not None and outcome.freed_agent:
        svc.handoff.dispatch()
    return twiml.empty()


@bp.post("/caller/join")
@webhook(safe_twiml=twiml.goodbye)
def caller_join():
    """A holding caller taken out of the queue: into the agent's conference, or back in
    line (same place) when the agent is no longer there for them."""
    svc = services()
    conference = param("conference")
    call_sid = param("CallSid")
    if conference != caller_conference(call_sid):
        return twiml.goodbye()
    agent_id, offer_id = param("agent"), param("attempt")
    if not svc.dispatcher.caller_joining(call_sid, agent_id, offer_id):
        call = svc.storage.get_waiting_call(call_sid)
        if call is None:
            return twiml.goodbye()
        action = svc.config.public_url("/voice/enqueue-done", ivr=call.ivr_name, queue=call.queue_name)
        return twiml.enqueue(call.queue_name, _wait_url(call.ivr_name, call.queue_name), action,
                             greeting="Sorry, the agent is no longer available. You are back "
                                      "on hold and you have kept your place in line.")
    status_callback = svc.config.public_url("/voice/conference", kind=CALL, key=call_sid,
                                            attempt=offer_id, agent=agent_id)
    return twiml.conference(conference, announcement="Connecting you to an agent now.",
                            status_callback=status_callback)


@bp.post("/call-fallback")
@webhook(safe_twiml=twiml.hangup)
def call_fallback():
    """Twilio's FallbackUrl for the calls the app places: the app could not answer, so the
    callee hears an apology (no database needed); the sweep puts the attempt right."""
    if param("leg") == "customer":
        return twiml.goodbye("We are sorry, we could not connect your callback just now. "
                             "We will call you again. Goodbye.")
    return twiml.notice("Sorry, this call could not be connected. Goodbye.")


@bp.get("/ringback.wav")
def ringback():
    """The ringing tone an agent hears while the customer's phone rings (public audio)."""
    return Response(tones.ringback_wav(), mimetype="audio/wav",
                    headers={"Cache-Control": "public, max-age=86400"})


@bp.post("/notice")
@webhook(safe_twiml=twiml.hangup)
def notice():
    """Tell an agent what happened to their call, then hang up."""
    return twiml.notice(NOTICES.get(param("message"), "Goodbye."))
