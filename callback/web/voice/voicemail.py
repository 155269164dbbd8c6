"""Voicemail instead of holding (issue #33): who is offered 3, leaving the queue for it, and
the <Record> after the queue (the message's webhooks are `voicemail_hooks`).

A queue's waitUrl TwiML may not hold <Record>, so the caller first <Leave>s the queue. Their
waiting record, marked RECORDING (out of the line, no agent is offered them), is what tells
the Enqueue action (`/voice/enqueue-done`, whose URL was fixed when they were enqueued) to
answer with <Record> instead of a callback's confirmation. The message keeps the place in
line the record holds: when they joined the queue.

The number called back is the caller's own, and only a number the IVR calls back is offered
3: a caller with a withheld, foreign or refused caller ID hears no such choice (they may still
press 1 and key a number in). Asking for a number before recording would make the quick
path the longest one.
"""
import logging

from callback.domain import voicemail as vm
from callback.domain.records import CONNECTING
from callback.domain.settings import speech_of
from callback.web import twiml, twiml_voicemail
from callback.web.voice.common import (
    _resume_url,
    param,
    services,
)

log = logging.getLogger(__name__)


def offers_message(ivr, caller):
    """True when this caller hears "press 3 to leave a message" (see the module's note)."""
    return ivr is not None and vm.number_for(caller, ivr.settings) is not None


def leave_message(ivr, queue_name):
    """The caller pressed 3 at the offer: out of the queue to record, keeping their place;
    or back to holding when they may not (or an agent is already on the way)."""
    svc = services()
    number = vm.number_for(param("From"), ivr.settings) if ivr else None
    call_sid = param("CallSid")
    resume = _resume_url(ivr.name if ivr else param("ivr"), queue_name, offered=True)
    if number is None or not call_sid:
        return twiml.back_to_hold(resume, speech=speech_of(ivr))
    pending = svc.storage.pending_callback_of(queue_name, number)
    if pending is not None:
        return twiml_voicemail.pending_already(pending.number, resume, speech=speech_of(ivr))
    call = svc.storage.leave_to_record(call_sid)
    if call is None:
        waiting = svc.storage.get_waiting_call(call_sid)
        message = ("An agent is about to answer your call. Please stay on the line."
                   if waiting is not None and waiting.status == CONNECTING else None)
        return twiml.back_to_hold(resume, message=message, speech=speech_of(ivr))
    log.info("call %s leaves queue %s to record a message", call_sid, queue_name)
    return twiml.leave_queue()


def record_prompt(waiting):
    """The Enqueue action of a caller who left to record (`enqueue_done`): the <Record>, or
    None when their IVR or queue is gone (the caller then hears the usual goodbye)."""
    svc = services()
    ivr = svc.directory.ivr(waiting.ivr_name)
    if ivr is None or svc.directory.queue(waiting.queue_name) is None:
        return None
    settings = ivr.settings
    where = dict(ivr=ivr.name, queue=waiting.queue_name, joined=int(waiting.joined_at.timestamp()))
    transcribe = vm.transcribe(settings, settings.voicemail_max_seconds)
    return twiml_voicemail.record(
        svc.config.public_url("/voice/voicemail/recorded", **where),
        svc.config.public_url("/voice/voicemail/status", **where), settings.voicemail_max_seconds,
        transcribe_url=svc.config.public_url("/voice/voicemail/transcription") if transcribe else None,
        speech=speech_of(ivr))
