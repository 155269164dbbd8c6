"""A callback at a time the caller picks. A caller who pressed 2 at the offer enters and
confirms their number as for any callback; then the next half-hour slots with room left
are read out (inside the open hours and that number's own calling window), the chosen one
is read back, and 1 stores the callback for it (callback.domain.slots).

The caller stays in the queue throughout, as during number entry: an agent who frees up
meanwhile may still take them, and every way out of the choice goes back to holding with
their place. Each step counts towards MAX_TRIES, so the choice never loops.
"""
import logging

from callback.domain import slots
from callback.domain.settings import DEFAULT_SPEECH, speech_of
from callback.web import twiml, twiml_times
from callback.web.voice.common import (
    _int,
    _joined_marker,
    _number_in_hand,
    _resume_url,
    _routed,
    _unrouted_back_to_hold,
    _wait_url,
    bp,
    param,
    services,
    webhook,
)
from callback.web.voice.storing import store_and_leave

log = logging.getLogger(__name__)
# Menus and read-backs a caller may hear before they go back to holding.
MAX_TRIES = 3
NO_TIMES = ("Sorry, there is no time left to choose today or on our next open day. You are still "
            "on hold and you have kept your place in line; press 1 at the next offer to be called back "
            "as soon as possible.")
TAKEN = "Sorry, that time has just been taken."
GONE = "Sorry, that time can no longer be chosen."


def _not_booked(speech=DEFAULT_SPEECH):
    # Back to the bare wait URL, as after a failed entry: its next request puts right
    # whatever the failed one left stored.
    return twiml.back_to_hold(_wait_url(param("ivr"), param("queue"), offer=False, recorded=False),
                              message="Sorry, I could not book a time just now. You are still on hold "
                                      "and you have kept your place in line.", speech=speech)


def offered_slots(ivr, queue, e164, now):
    """The slot starts this customer may book now, with room left (up to slots.OFFERED):
    one Query of the queue's booking counters."""
    settings = ivr.settings
    if settings.slot_capacity <= 0:
        return []
    starts = slots.slot_starts(settings.hours, settings.customer_clock(e164), now)
    if not starts:
        return []
    booked = services().storage.booked_slots(queue.name, starts[0], starts[-1])
    return slots.with_room(starts, booked, settings.slot_capacity)


def _slot_url(path, ivr, queue, tries, **extra):
    return services().config.public_url(path, ivr=ivr.name, queue=queue.name, tries=tries,
                                        entry=param("entry") or None, source=param("source") or None,
                                        joined=_joined_marker(), **extra)


def choose_time(ivr, queue, e164, problem=None, notice=None, tries=1):
    """The menu of times for the confirmed number `e164`; with none left, back to holding."""
    now, speech = services().clock.now(), speech_of(ivr)
    if tries > MAX_TRIES:
        return twiml.nothing_saved(_resume_url(ivr.name, queue.name, offer=False), speech=speech)
    offered = offered_slots(ivr, queue, e164, now)
    if not offered:
        log.info("call %s: no time slot left to offer in %s", param("CallSid") or "-", queue.name)
        return twiml.back_to_hold(_resume_url(ivr.name, queue.name, offered=True),
                                  message=" ".join(filter(None, (notice, NO_TIMES))), speech=speech)
    url = _slot_url("/voice/slot", ivr, queue, tries, slots=".".join(slots.marker(s) for s in offered))
    spoken = [slots.spoken(ivr.settings.hours, now, start) for start in offered]
    return twiml_times.slot_menu(spoken, url, problem=problem, notice=notice, speech=speech)


@bp.post("/slot")
@webhook(safe_twiml=_not_booked)
def slot():
    """The caller's key at the menu of times: read the chosen time back, or ask again."""
    ivr, queue = _routed()
    if queue is None:
        return _unrouted_back_to_hold()
    e164, tries = _number_in_hand(ivr), _int(param("tries"), 1)
    if e164 is None or not param("CallSid"):
        return _not_booked(speech_of(ivr))
    offered = [s for s in map(slots.from_marker, param("slots").split(".")) if s is not None]
    digits = param("Digits")
    if not (digits.isdigit() and 1 <= int(digits) <= len(offered)):
        return choose_time(ivr, queue, e164, problem="other" if digits else "silence", tries=tries + 1)
    start = offered[int(digits) - 1]
    url = _slot_url("/voice/slot/confirm", ivr, queue, tries, slot=slots.marker(start))
    return twiml_times.slot_readback(slots.spoken(ivr.settings.hours, services().clock.now(), start), url,
                                     speech=speech_of(ivr))


@bp.post("/slot/confirm")
@webhook(safe_twiml=_not_booked)
def slot_confirm():
    """The chosen time was read back: 1 stores the callback for it, 2 chooses again,
    anything else asks once more (all counted towards MAX_TRIES)."""
    svc = services()
    ivr, queue = _routed()
    if queue is None:
        return _unrouted_back_to_hold()
    e164, tries, call_sid = _number_in_hand(ivr), _int(param("tries"), 1), param("CallSid")
    start = slots.from_marker(param("slot"))
    if e164 is None or start is None or not call_sid:
        return _not_booked(speech_of(ivr))
    digits, now = param("Digits"), svc.clock.now()
    if digits == "2":
        return choose_time(ivr, queue, e164, tries=tries + 1)
    if digits != "1":
        if tries >= MAX_TRIES:
            return twiml.nothing_saved(_resume_url(ivr.name, queue.name, offer=False), speech=speech_of(ivr))
        url = _slot_url("/voice/slot/confirm", ivr, queue, tries + 1, slot=slots.marker(start))
        return twiml_times.slot_readback(slots.spoken(ivr.settings.hours, now, start), url,
                                         problem="other" if digits else "silence", speech=speech_of(ivr))
    # Checked again now: the time may have come too close, or the hours changed meanwhile.
    if start not in slots.slot_starts(ivr.settings.hours, ivr.settings.customer_clock(e164), now):
        return choose_time(ivr, queue, e164, notice=GONE, tries=tries + 1)
    return store_and_leave(ivr, queue, call_sid, e164, slot=start,
                           slot_full=lambda: choose_time(ivr, queue, e164, notice=TAKEN, tries=tries + 1))
