"""The agent on the line: the answer with its whisper, the key that accepts, the ringing
tone while the customer's phone rings, notices; and the fallback for any call the app places."""
from flask import Response

from callback.domain.answers import NOTICES
from callback.domain.detection import MACHINE_NOTICE
from callback.domain.rules import CALL, CALLBACK
from callback.web import tones, twiml
from callback.web.voice.common import bp, param, services, webhook


def _sorry_agent():
    return twiml.notice("Sorry, this call could not be connected. Goodbye.")


def _agent_answer_twiml(answer):
    if answer.whisper:
        return twiml.agent_whisper(answer.whisper, answer.accept_url, speech=answer.speech,
                                   accept=answer.accept)
    if answer.conference is None:
        return twiml.notice(answer.notice, speech=answer.speech)
    # The agent waits for the other party with a ringing tone, not silence.
    return twiml.conference(answer.conference, announcement=answer.announcement,
                            status_callback=answer.status_callback, start_on_enter=False,
                            wait_url=services().config.public_url("/voice/agent/ringing"),
                            speech=answer.speech, hangup_on_star=answer.hangup_on_star,
                            play_url=answer.play_url)


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

def _machine_notice_safely():
    return twiml.spoken(MACHINE_NOTICE)


@bp.post("/agent/machine-notice")
@webhook(safe_twiml=_machine_notice_safely)
def agent_machine_notice():
    """The conference announcement an agent alone hears when a verdict after the join says
    machine: words only (an announcement may hold nothing else), star ends the call."""
    message, speech = services().dispatcher.machine_notice(param("callback"))
    return twiml.spoken(message, speech=speech)


@bp.post("/call-fallback")
@webhook(safe_twiml=twiml.hangup)
def call_fallback():
    """Twilio's FallbackUrl for the calls the app places: the app could not answer, so the
    callee hears an apology (no database needed); the sweep puts the attempt right."""
    if param("leg") == "customer":
        return twiml.goodbye("We are sorry, we could not connect your callback just now. "
                             "We will call you again. Goodbye.")
    return twiml.notice("Sorry, this call could not be connected. Goodbye.")


def _ringing():
    return twiml.ringing(services().config.public_url("/voice/ringback.wav"))


@bp.post("/agent/ringing")
@webhook(safe_twiml=_ringing)
def agent_ringing():
    """The agent's conference waitUrl: the ringing tone, looped while the other party rings."""
    return _ringing()


@bp.get("/ringback.wav")
def ringback():
    """One cycle of the ringing tone, which `agent_ringing` loops (public audio: Twilio
    fetches what it plays without signing, and may cache it)."""
    return Response(tones.ringback_wav(), mimetype="audio/wav",
                    headers={"Cache-Control": "public, max-age=86400"})


@bp.post("/notice")
@webhook(safe_twiml=twiml.hangup)
def notice():
    """Tell an agent what happened to their call, then hang up."""
    return twiml.notice(NOTICES.get(param("message"), "Goodbye."))
