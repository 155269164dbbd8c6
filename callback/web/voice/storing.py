"""Storing a confirmed callback, the end of number entry (and of the choice of a time): the
caller leaves the queue for it, keeping their place in line, or is told why not."""
import logging

from callback.domain import slots
from callback.domain.callback_requests import plain_timing
from callback.domain.numbers import mask
from callback.domain.records import CONNECTING, Callback
from callback.domain.settings import speech_of
from callback.domain.texts import CONFIRMATION
from callback.domain.voicemail import VOICEMAIL
from callback.storage import CreateResult, NotFound, StorageError
from callback.web import twiml
from callback.web.voice.closed import stored_while_closed
from callback.web.voice.common import (
    _closed_marker,
    _joined_time,
    _turned_away,
    _wait_url,
    services,
)
from callback.web.voice.events import _expected_callback

log = logging.getLogger(__name__)


def store_and_leave(ivr, queue, call_sid, e164, slot=None, slot_full=None):
    """Store the confirmed callback (for the time slot starting at `slot`, when the caller
    chose one) and take the caller out of the queue; `slot_full()` answers when that slot
    filled up meanwhile."""
    result = _store_callback(ivr, queue, call_sid, e164, slot)
    if result.outcome == "slot-full":
        return slot_full()
    if result.outcome == "agent-connecting":
        return twiml.back_to_hold(_wait_url(ivr.name, queue.name, offer=False),
                                  message="An agent is about to answer your call. "
                                          "Please stay on the line.", speech=speech_of(ivr))
    if result.outcome == "number-pending":
        existing = result.callback.number if result.callback else e164
        return twiml.already_pending(existing, speech=speech_of(ivr),
                                     in_queue=not (_turned_away() or _closed_marker()))
    services().handoff.dispatch([queue.name])
    # Stored once (a retried request finds it stored) and sent off this request.
    services().dispatcher.text_about(result.callback, CONFIRMATION)
    if _closed_marker():  # in no queue to leave: confirmed here, with the opening
        return stored_while_closed(ivr, e164, services().clock.now())
    if _turned_away():
        # In no queue, so no <Leave> and no Enqueue action: the confirmation is said here.
        return twiml.callback_stored(e164, expected=_expected_callback(result.callback),
                                     speech=speech_of(ivr))
    return twiml.leave_queue()


def _store_callback(ivr, queue, call_sid, e164, slot, message=None):
    """Store the callback (a voicemail when `message`, a voicemail.Message, comes with it)
    with the caller's place in line; returns the CreateResult."""
    svc = services()
    now = svc.clock.now()
    waiting = svc.storage.get_waiting_call(call_sid)
    if waiting is not None and waiting.status == CONNECTING:
        return CreateResult("agent-connecting", None)
    # Their place in line is when they first joined the queue, not when they asked.
    place = waiting.joined_at if waiting else (_joined_time() or now)
    settings = ivr.settings
    # Outside the customer's calling window it waits for the window, with its place in line.
    due, expires = plain_timing(settings, e164, now)
    window = slots.window(slot) if slot is not None else (None, None)
    if slot is not None:
        # A chosen time: due at the slot's start, ranked by it among the work due then,
        # retried within the slot and expired at its end.
        place, due, expires = slot, slot, window[1]
    callback = Callback(
        callback_id=call_sid, number=e164, ivr_name=ivr.name, queue_name=queue.name,
        requested_at=now, place_in_line=place, priority=settings.priority_for(queue.priority),
        due_at=due, expires_at=expires, window_start=window[0], window_end=window[1],
        **(dict(kind=VOICEMAIL, recording_sid=message.recording_sid, recording_url=message.recording_url,
                recording_seconds=message.duration) if message else {}))
    try:
        result = svc.storage.create_callback(callback, call_sid, slot_capacity=settings.slot_capacity)
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
