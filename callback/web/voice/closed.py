"""A call while the IVR is closed: the caller hears the hours and when it opens, and may ask
to be called back at that opening (number entry and confirmation as for a holding caller,
outside any queue), or hears goodbye."""
import logging

from callback.domain import hours as h
from callback.domain.numbers import caller_id_number
from callback.domain.settings import speech_of
from callback.web import twiml, twiml_times
from callback.web.voice.common import bp, param, services, webhook

log = logging.getLogger(__name__)
MAX_CHOICE_TRIES = 2


def closed_queues(ivr):
    """The queues a caller of a closed IVR may ask a callback from."""
    if not (ivr.settings.callback_enabled and ivr.settings.hours.closed_callbacks):
        return []
    return [q for q in ivr.queues if q.callback_enabled]


def answer_closed(ivr, greeting, now, problem=None, attempt=1):
    """What a caller of the closed IVR hears: its hours, its next opening, and the offer of
    a callback at that opening when the IVR makes one."""
    hours = ivr.settings.hours
    opening = h.next_opening(hours, now)
    opens = h.spoken_moment(hours, now, opening) if opening else None
    queues = closed_queues(ivr) if opening else []
    action = services().config.public_url("/voice/closed", ivr=ivr.name, attempt=attempt) if queues else None
    said = f"{problem} {greeting or ''}".strip() if problem else greeting
    return twiml_times.closed(said, h.spoken_week(hours), opens, action, [q.name for q in queues],
                        speech=speech_of(ivr))


def stored_while_closed(ivr, e164, now):
    """The confirmation of a callback asked for while the IVR is closed, with its opening."""
    hours = ivr.settings.hours
    opening = h.next_opening(hours, now)
    return twiml.callback_stored(e164, speech=speech_of(ivr),
                                 opens=h.spoken_moment(hours, now, opening) if opening else None)


@bp.post("/closed")
@webhook(safe_twiml=twiml_times.closed_goodbye)
def closed():
    """The caller of a closed IVR chose (or not) to be called back at its opening."""
    svc = services()
    ivr = svc.directory.ivr(param("ivr"))
    if ivr is None:
        return twiml_times.closed_goodbye()
    queues = closed_queues(ivr)
    digits = param("Digits")
    choice = int(digits) if digits.isdigit() and len(digits) == 1 else 0
    if not 1 <= choice <= len(queues):
        attempt = int(param("attempt")) if param("attempt").isdigit() else 1
        if attempt >= MAX_CHOICE_TRIES or not queues:
            return twiml_times.closed_goodbye(speech=speech_of(ivr))
        problem = "Sorry, that is not one of the choices." if digits else "Sorry, I did not hear a choice."
        return answer_closed(ivr, None, svc.clock.now(), problem, attempt + 1)
    queue = queues[choice - 1]
    config, speech = svc.config, speech_of(ivr)
    own = caller_id_number(param("From"), ivr.settings.dial_rules) if ivr.settings.offer_caller_id else None
    route = dict(ivr=ivr.name, queue=queue.name, attempt=1, closed=1)
    if own:
        return twiml.offer_caller_id(own, config.public_url("/voice/confirm", source="caller", **route),
                                     speech=speech)
    return twiml.number_entry(config.public_url("/voice/number", **route), speech=speech)


@bp.post("/closed/bye")
@webhook(safe_twiml=twiml_times.closed_goodbye)
def closed_bye():
    """No callback was taken from the caller of a closed IVR: goodbye."""
    return twiml_times.closed_goodbye(speech=speech_of(services().directory.ivr(param("ivr"))))
