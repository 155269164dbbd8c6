"""The caller in the queue: incoming call, queue choice, the hold loop, the callback offer,
number entry and confirmation (the move into an agent's conference is `join.py`)."""
import logging
from datetime import timedelta

from flask import Response, request

from callback.domain import hours as h
from callback.domain import voicemail as vm
from callback.domain.estimate import estimate_wait, history_since
from callback.domain.hold import between_prompts, speech_seconds, until_due
from callback.domain.numbers import caller_id_number, check_callback_entry, mask
from callback.domain.settings import DEFAULT_SPEECH, speech_of
from callback.storage import StorageError
from callback.web import tones, twiml, twiml_times
from callback.web.voice.closed import answer_closed
from callback.web.voice.common import (
    _agents_on_duty,
    _closed_marker,
    _hold_music,
    _hold_track,
    _int,
    _joined_marker,
    _joined_time,
    _later_marker,
    _music,
    _number_in_hand,
    _resume_url,
    _routed,
    _turned_away,
    _unrouted_back_to_hold,
    _wait_url,
    bp,
    param,
    services,
    webhook,
)
from callback.web.voice.slots import choose_time
from callback.web.voice.storing import store_and_leave
from callback.web.voice.voicemail import leave_message, offers_message

log = logging.getLogger(__name__)


@bp.post("/incoming")
@webhook(safe_twiml=twiml.goodbye)
def incoming():
    """A call to one of an IVR's numbers: greeting, queue menu or straight to the queue."""
    ivr = services().directory.ivr_for_number(param("To"))
    if ivr is None or not ivr.queues:
        log.info("call %s to a number with no IVR", param("CallSid") or "-")
        return twiml.unknown_number()
    now = services().clock.now()
    if not h.is_open(ivr.settings.hours, now):
        return answer_closed(ivr, ivr.greeting, now)
    if len(ivr.queues) == 1:
        return _enqueue(ivr, ivr.queues[0], greeting=ivr.greeting)
    return twiml.queue_menu(ivr.greeting, [q.name for q in ivr.queues],
                            services().config.public_url("/voice/menu", ivr=ivr.name, attempt=1),
                            speech=speech_of(ivr))


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
                            speech=speech_of(ivr))

def _enqueue(ivr, queue, greeting=None):
    now = services().clock.now()
    if not h.is_open(ivr.settings.hours, now):  # it closed while the caller chose a queue
        return answer_closed(ivr, greeting, now)
    # Nothing is recorded yet: a caller who hangs up before Twilio runs <Enqueue> never
    # reaches the queue, so the first waitUrl request records them (see `wait`).
    action = services().config.public_url("/voice/enqueue-done", ivr=ivr.name, queue=queue.name)
    return twiml.enqueue(queue.name, _wait_url(ivr.name, queue.name, recorded=False), action,
                         greeting=greeting, speech=speech_of(ivr))


@bp.post("/wait")
@webhook(safe_twiml=_hold_music)
def wait():
    """The hold loop (hottest path): music, and the callback offer once it is due.

    A request without the `joined` marker records the caller as waiting since Twilio says
    they joined (now - QueueTime; without QueueTime, the app's own record or the `since` the
    URL carries; an earlier record keeps its place) and answers with a loop on the marked
    URL, which redirects to itself. Each document lasts until the next prompt is due
    (callback.domain.hold). Marked requests read only the cached directory, except once per
    call: the request that first makes the offer reads what the wait estimate needs, then
    the loop continues on an `offered` URL. If recording fails, plain music without a
    redirect sends the caller back to the bare waitUrl, which tries again.
    """
    svc = services()
    ivr, queue = _routed()
    track = _hold_track()
    if queue is None:
        return twiml.hold(_music(between_prompts(track)), speech=speech_of(ivr))
    now = svc.clock.now()
    joined = _joined_time()
    if joined is None:
        joined = _record_caller(ivr, queue, _joined_by_request(now))
        if joined is None:
            # A callback was stored for this call (its confirmation was lost): leave for it.
            return twiml.leave_queue()
    offer_on = param("offer") != "off"
    offered = param("offered") == "1"

    def loop(offered, est=None):
        return svc.config.public_url("/voice/wait", ivr=ivr.name, queue=queue.name,
                                     offer=None if offer_on else "off",
                                     offered="1" if offered else None, joined=int(joined.timestamp()),
                                     est=est)

    settings = ivr.settings
    offering = offer_on and queue.callback_enabled and settings.callback_enabled
    due_in = settings.offer_after_seconds - (now - joined).total_seconds()
    if not offering or (not offered and due_in > 0):
        audio = (until_due(due_in, track, speech_seconds(twiml.HOLD_MESSAGE)) if offering
                 else between_prompts(track))
        return twiml.hold(_music(audio), loop_url=loop(False), message=audio.message,
                          speech=speech_of(ivr))
    offer_url = svc.config.public_url("/voice/offer", ivr=ivr.name, queue=queue.name,
                                      joined=int(joined.timestamp()))
    # The estimate is read once per call; the loop carries its minutes (`est`), so every
    # turn can tell, by the clock alone, whether the callback still fits before closing.
    wait = None if offered else _offer_wait(queue, joined)
    minutes = (wait[1].minutes if wait else None) if not offered else _int(param("est"), None)
    when = h.callback_time(settings.hours, now, None if minutes is None else timedelta(minutes=minutes))
    if when is None:  # the center closes and does not open again in sight: no offer
        return twiml.hold(_music(between_prompts(track)), loop_url=loop(False), speech=speech_of(ivr))
    opens = h.spoken_moment(settings.hours, now, when) if when > now else None
    return twiml.hold(_music(between_prompts(track, message=False)), offer_url=offer_url,
                      loop_url=loop(True, minutes), wait=wait, opens=opens,
                      speech=speech_of(ivr), pick_time=settings.slot_capacity > 0,
                      leave_message=offers_message(ivr, param("From")))


def _joined_by_request(now):
    """When this request says the caller joined the queue: now - QueueTime, which Twilio
    documents on waitUrl requests only; else the `since` a redirect carried, else now."""
    queue_time = param("QueueTime")
    if queue_time.isdigit():
        return now - timedelta(seconds=_int(queue_time, 0))
    return _joined_time("since") or now


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
        # Their phone is busy while they hold: no callback of theirs (any queue) dials it.
        svc.dispatcher.caller_holding(call_sid, param("From"))
        svc.handoff.dispatch([queue.name])
    return call.joined_at if call else joined


def _offer_wait(queue, joined):
    """(ahead, estimate) for the caller hearing the offer, or None; never fails the loop.

    Ahead: the callers holding before them and the pending callbacks with an earlier place
    in line. Twilio documents QueuePosition on the waitUrl request only, and the offer is
    usually made on a redirected one: without it, the app's own line counts those holding
    before them. Three Queries (four without QueuePosition), once per call.
    """
    svc = services()
    position = _int(param("QueuePosition"), 0)
    now = svc.clock.now()
    try:
        history = svc.storage.recent_departures(queue.name, history_since(now))
        holding = position - 1 if position >= 1 else svc.storage.count_waiting_before(queue.name, joined)
        ahead = holding + svc.storage.count_pending_before(queue.name, joined)
        on_duty = _agents_on_duty(queue.name)
    except StorageError:
        log.warning("no wait estimate for call %s: DynamoDB did not answer", param("CallSid") or "-")
        return None
    estimate = estimate_wait(history, ahead, now, on_duty)
    return (ahead, estimate) if estimate is not None else None


@bp.get("/hold-clip.wav")
def hold_clip():
    """The app's own hold clip, whose exact length cuts a wait to the next prompt (public audio)."""
    return Response(tones.hold_clip_wav(), mimetype="audio/wav",
                    headers={"Cache-Control": "public, max-age=86400"})


@bp.post("/offer")
@webhook(safe_twiml=_hold_music)
def offer():
    """The caller pressed a key during the offer: 1 offers their own number (when the IVR
    says so and it is a valid one) or starts number entry; 3 leaves a message."""
    ivr_name, queue_name = param("ivr"), param("queue")
    ivr = services().directory.ivr(ivr_name)
    if param("Digits") == vm.KEY and not _turned_away() and offers_message(ivr, param("From")):
        return leave_message(ivr, queue_name)  # 3: a message instead of holding (`voicemail.py`)
    # 2: a time of their choosing, asked once their number is confirmed (`slots.py`).
    later = "1" if param("Digits") == "2" and ivr and ivr.settings.slot_capacity > 0 else None
    if param("Digits") != "1" and not later:
        return twiml.back_to_hold(_resume_url(ivr_name, queue_name, offered=True),
                                  speech=speech_of(ivr))
    own = caller_id_number(param("From"), ivr.settings.dial_rules) if ivr and ivr.settings.offer_caller_id \
        else None
    if own:
        return twiml.offer_caller_id(own, _confirm_url(ivr_name, queue_name, 1, 0, source="caller", later=later),
                                     speech=speech_of(ivr))
    # Entry runs inside the wait loop (this Gather's action keeps the waiting context):
    # the caller stays in the Twilio queue while typing, so an agent who frees up meanwhile
    # can still take them, and a failed entry just resumes holding. Leaving the queue
    # would mean a re-enqueue and a window in which nobody could answer them.
    return twiml.number_entry(_entry_url(ivr_name, queue_name, 1, later=later), speech=speech_of(ivr))


def _markers(later=None):
    """What the caller's URLs carry through entry and confirmation: their place (`joined`),
    and whether Twilio turned them away, the center is closed, or they choose a time."""
    return dict(joined=_joined_marker(), full="1" if _turned_away() else None, closed=_closed_marker(),
                later=later or _later_marker())


def _entry_url(ivr_name, queue_name, attempt, redo=0, later=None):
    return services().config.public_url("/voice/number", ivr=ivr_name, queue=queue_name,
                                        attempt=attempt, redo=redo or None, **_markers(later))


def _entry_not_saved(speech=DEFAULT_SPEECH):
    if _turned_away():
        return twiml.line_full("Sorry, I could not save your number just now.", speech)
    # Back to the bare wait URL: whatever the failed request left stored, its next request
    # puts it right (records the caller again, or sees the callback and leaves for it).
    if _closed_marker():
        return twiml_times.closed_goodbye("Sorry, I could not save your number just now.", speech)
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
    speech = speech_of(ivr)
    attempt, redo = _int(param("attempt"), 1), _int(param("redo"), 0)
    # Read the raw value: the length cap of `param` must not turn junk into a valid number.
    check = check_callback_entry(request.form.get("Digits", ""), ivr.settings.dial_rules)
    if check.problem == "not_callable":
        log.info("call %s: a number this IVR does not call was keyed in (%s)", param("CallSid") or "-",
                 mask("+1" + request.form.get("Digits", "")[:10]))
    if not check.ok:
        allowed = ivr.settings.entry_attempts
        if attempt >= allowed:
            return twiml.entry_failed(check.problem, _resume_url(ivr.name, queue.name, offer=False),
                                      speech=speech, holding=not _closed_marker())
        return twiml.number_entry(_entry_url(ivr.name, queue.name, attempt + 1, redo),
                                  problem=check.problem, last_try=attempt + 1 == allowed,
                                  speech=speech)
    call_sid = param("CallSid")
    if not call_sid:
        return twiml.back_to_hold(_resume_url(ivr.name, queue.name), speech=speech)
    # A valid but mistyped number must never be stored unconfirmed: keep it aside (by
    # CallSid, out of every URL) and read it back.
    entry = svc.storage.hold_entry(call_sid, check.e164, svc.clock.now())
    return twiml.confirm_number(check.e164, _confirm_url(ivr.name, queue.name, attempt, redo,
                                                         entry=entry), speech=speech)


def _confirm_url(ivr_name, queue_name, attempt, redo, *, entry=None, source=None, ask=1, later=None):
    return services().config.public_url("/voice/confirm", ivr=ivr_name, queue=queue_name,
                                        attempt=attempt, redo=redo or None, entry=entry,
                                        source=source, ask=ask if ask > 1 else None, **_markers(later))


# A caller may re-enter their number this many times (each is not a failed try, but the
# loop is bounded like everything else); then they go back to holding.
MAX_REENTRIES = 3


@bp.post("/confirm")
@webhook(safe_twiml=_entry_not_saved)
def confirm():
    """The number was read back (or the caller's own offered): 1 stores it, 2 enters a
    number (again), silence or another key asks once more (a caller who pressed 2 at the
    offer then chooses a time)."""
    ivr, queue = _routed()
    if queue is None:
        return _unrouted_back_to_hold()
    speech = speech_of(ivr)
    attempt, redo, ask = _int(param("attempt"), 1), _int(param("redo"), 0), _int(param("ask"), 1)
    entry, call_sid = param("entry"), param("CallSid")
    own_number = param("source") == "caller"
    e164 = _number_in_hand(ivr)
    if e164 is None or not call_sid:
        return _entry_not_saved(speech)
    digits = param("Digits")
    if digits == "1":
        return choose_time(ivr, queue, e164) if _later_marker() else store_and_leave(ivr, queue, call_sid, e164)
    if digits == "2":
        if own_number:
            return twiml.number_entry(_entry_url(ivr.name, queue.name, 1), speech=speech)
        if redo >= MAX_REENTRIES:
            return twiml.nothing_saved(_resume_url(ivr.name, queue.name, offer=False), speech=speech,
                                       holding=not _closed_marker())
        return twiml.number_entry(_entry_url(ivr.name, queue.name, attempt, redo + 1), speech=speech)
    if ask >= 2:
        return twiml.nothing_saved(_resume_url(ivr.name, queue.name, offer=False), speech=speech,
                                   holding=not _closed_marker())
    problem = "other" if digits else "silence"
    if own_number:
        return twiml.offer_caller_id(e164, _confirm_url(ivr.name, queue.name, 1, 0, source="caller",
                                                        ask=ask + 1), problem=problem, speech=speech)
    return twiml.confirm_number(e164, _confirm_url(ivr.name, queue.name, attempt, redo,
                                                   entry=entry, ask=ask + 1),
                                problem=problem, speech=speech)

