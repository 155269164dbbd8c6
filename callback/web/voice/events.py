"""Twilio's reports: the end of a caller's time in the queue, the status of the calls the
app places (agent and customer legs), and conference events."""
import logging
from datetime import timedelta

from callback.domain import hours as h
from callback.domain import stats
from callback.domain.estimate import estimate_wait, expected_call, history_since
from callback.domain.records import RECORDING
from callback.domain.rules import CALL, CALLBACK
from callback.domain.settings import speech_of
from callback.storage import NotFound, StorageError
from callback.web import twiml
from callback.web.voice.common import (
    FINAL_CALL_STATUSES,
    QUEUE_ERRORS,
    _agents_on_duty,
    _int,
    _requeue,
    _routed,
    bp,
    param,
    services,
    webhook,
)
from callback.web.voice.voicemail import record_prompt

log = logging.getLogger(__name__)


MAX_REQUEUES = 2


def _left_queue_safely():
    result = param("QueueResult")
    if result == "leave":
        # Only a stored callback makes us <Leave>: confirm it, without the read-back.
        return twiml.goodbye("Thank you. Your callback request is saved and keeps your place "
                             "in line. You may hang up now. Goodbye.")
    if result in QUEUE_ERRORS and param("queue") and _int(param("requeue"), 0) < MAX_REQUEUES:
        # Back into the queue without DynamoDB: their record, if any, keeps their place.
        return _requeue(None)
    if result == "queue-full":
        return twiml.line_full()
    return twiml.hangup()


@bp.post("/enqueue-done")
@webhook(safe_twiml=_left_queue_safely)
def enqueue_done():
    """The caller left the queue: hung up, served, left for a callback, thrown out by an
    error (then back in, with their place, a bounded number of times), or never let in
    because the queue was full (then offered a callback at once)."""
    svc = services()
    call_sid = param("CallSid")
    result = param("QueueResult")
    # A caller sent back to the queue (an error, an agent gone) may find it full: their
    # record's place in line goes with the offer, since the record leaves the line below.
    waiting = svc.storage.get_waiting_call(call_sid) if call_sid and result == "queue-full" else None
    if result == "leave":
        try:
            callback = svc.storage.get_callback(call_sid)
        except NotFound:
            # No callback: a caller who pressed 3 left the queue to record (`voicemail.py`).
            waiting = svc.storage.get_waiting_call(call_sid) if call_sid else None
            prompt = record_prompt(waiting) if waiting is not None and waiting.status == RECORDING else None
            return prompt or twiml.goodbye("Goodbye.")
        ivr = svc.directory.ivr(callback.ivr_name)
        if callback.window_start is not None and ivr is not None:  # a time the caller chose
            when = h.spoken_moment(ivr.settings.hours, svc.clock.now(), callback.window_start)
            return twiml.callback_stored(callback.number, speech=speech_of(ivr), scheduled=when)
        expected = _expected_callback(callback)
        opens = _opens(ivr, expected.estimate if expected is not None else None)
        return twiml.callback_stored(callback.number, expected=expected, speech=speech_of(ivr), opens=opens)
    if result in QUEUE_ERRORS and param("queue") and _int(param("requeue"), 0) < MAX_REQUEUES:
        waiting = svc.storage.get_waiting_call(call_sid) if call_sid else None
        log.warning("call %s dropped from queue %s (%s); putting it back", call_sid or "-",
                    param("queue"), result)
        return _requeue(waiting.joined_at if waiting else None)
    if call_sid and result == "hangup":
        svc.dispatcher.caller_hung_up(call_sid, param("From"))
    if call_sid and result == "hangup" and svc.dispatcher.caller_left_queue(call_sid):
        # Offered to an agent: the offer ended through its own steps (the agent is told,
        # and freed once their call ends), which took the caller out of the line.
        return twiml.hangup()
    if call_sid and result in ("hangup", "bridged", "queue-full") + QUEUE_ERRORS:
        # A hang-up while holding is an abandoned call, counted once for the wallboard.
        svc.storage.remove_waiting_call(call_sid, event=stats.ABANDONED if result == "hangup" else None,
                                        now=svc.clock.now())
    if result == "queue-full":
        return _queue_full(waiting.joined_at if waiting else None)
    if result in QUEUE_ERRORS:
        return twiml.goodbye()
    return twiml.hangup() if result == "hangup" else twiml.empty()


def _queue_full(joined):
    """Twilio turned the caller away, their queue being full: a callback offered at once
    (keeping `joined`, their place, when they had one), or, where the queue takes no
    callbacks, the plain news that the line is full."""
    ivr, queue = _routed()
    log.warning("queue %s is full: call %s was turned away", param("queue"), param("CallSid") or "-")
    if queue is None or not (queue.callback_enabled and ivr.settings.callback_enabled):
        return twiml.line_full(speech=speech_of(ivr))
    offer_url = services().config.public_url("/voice/offer", ivr=ivr.name, queue=queue.name, full="1",
                                             joined=int(joined.timestamp()) if joined else None)
    return twiml.queue_full_offer(offer_url, speech=speech_of(ivr))


def _opens(ivr, estimate):
    """'tomorrow at 9 AM' when the center closes (or is closed) before the estimated call,
    else None: the estimate counts open time only."""
    if ivr is None:
        return None
    now = services().clock.now()
    wait = timedelta(minutes=estimate.minutes) if estimate is not None else None
    when = h.callback_time(ivr.settings.hours, now, wait)
    return h.spoken_moment(ivr.settings.hours, now, when) if when is not None and when > now else None


def _expected_callback(callback):
    """When a just-stored callback should come (an ExpectedCall): from the work ahead of its
    place in line and the queue's recent pace, within the customer's calling window."""
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
        history, ahead, on_duty = [], None, None
    ivr = svc.directory.ivr(callback.ivr_name)
    if ivr is None:
        return None
    estimate = estimate_wait(history, ahead, now, on_duty)
    return expected_call(estimate, ivr.settings.customer_clock(callback.number), now)


@bp.post("/agent/status")
@webhook(safe_twiml=twiml.empty)
def agent_status():
    """Status of an agent's leg: on its final status, release the agent and fix the work; an
    earlier one (initiated, ringing, answered) teaches the ledger its CallSid."""
    svc = services()
    status = param("CallStatus")
    if param("kind") not in (CALL, CALLBACK):
        return twiml.empty()
    if status not in FINAL_CALL_STATUSES:
        if param("CallSid"):
            svc.dispatcher.agent_call_progress(param("kind"), param("key"), param("attempt"), param("agent"),
                                               param("CallSid"), status)
        return twiml.empty()
    released = svc.dispatcher.agent_call_ended(param("kind"), param("key"), param("attempt"),
                                               param("agent"), param("CallSid"), status)
    if released:
        svc.handoff.dispatch()
    return twiml.empty()


@bp.post("/customer/status")
@webhook(safe_twiml=twiml.empty)
def customer_status():
    """Status of the customer's leg: a final status ends the attempt, once; an earlier one
    (initiated, ringing, answered) teaches the ledger its CallSid."""
    status = param("CallStatus")
    if status in FINAL_CALL_STATUSES:
        services().dispatcher.customer_call_ended(param("callback"), param("attempt"), param("CallSid"), status)
        # The customer's number is free (and maybe the agent): work that waited for it may go.
        services().handoff.dispatch()
    elif param("CallSid"):
        services().dispatcher.customer_call_progress(param("callback"), param("attempt"), param("CallSid"),
                                                     status)
    return twiml.empty()


@bp.post("/customer/amd")
@webhook(safe_twiml=twiml.empty)
def customer_verdict():
    """Twilio's asynchronous answering-machine verdict on the customer's leg (AnsweredBy):
    it names the callback and attempt (query) and the call (CallSid), and changes nothing
    unless they still match: a late, repeated or stray verdict is ignored."""
    if param("CallSid") and param("callback") and param("attempt"):
        log.info("callback %s attempt %s: AnsweredBy %s after %s ms", param("callback"), param("attempt"),
                 param("AnsweredBy") or "-", param("MachineDetectionDuration") or "-")
        services().dispatcher.customer_verdict(param("callback"), param("attempt"), param("CallSid"),
                                               param("AnsweredBy"))
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
                                              param("StatusCallbackEvent"), param("CallSid"),
                                              param("CallSidEndingConference") or None)
    if outcome is not None and outcome.freed_agent:
        svc.handoff.dispatch()
    return twiml.empty()
