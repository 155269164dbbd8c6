"""The webhooks of a voicemail (issue #33): the <Record> action that stores the message as a
callback of kind voicemail, its recording status and transcription reports, and the audio
the agent hears (see `voicemail` for how the caller gets there)."""
import logging

from flask import Response, abort, request

from callback.domain import voicemail as vm
from callback.domain.numbers import mask
from callback.domain.records import RECORDING
from callback.domain.settings import speech_of
from callback.domain.texts import CONFIRMATION
from callback.storage import NotFound, StorageError
from callback.telephony.recordings import AUDIO_TYPE, Recordings
from callback.telephony.rest import CallGone, TelephonyError
from callback.web import twiml, twiml_voicemail
from callback.web.voice.common import _routed, bp, param, services, webhook
from callback.web.voice.storing import _store_callback

log = logging.getLogger(__name__)
# The longest transcription kept (Twilio's of a two-minute message is far shorter).
MAX_TRANSCRIPTION = 4000


def _sorry():
    return twiml_voicemail.message_not_kept()


@bp.post("/voicemail/recorded")
@webhook(safe_twiml=_sorry)
def recorded():
    """The <Record> action: store the message as a callback (kind voicemail) with the
    caller's place in line, or say goodbye when there is nothing worth keeping."""
    ivr, queue = _routed()
    speech = speech_of(ivr)
    message = vm.message_from(param("RecordingSid"), request.form.get("RecordingUrl", ""),
                              param("RecordingDuration"))
    outcome, stored = _store_message(ivr, queue, message)
    if outcome in ("created", "same-call"):
        return twiml_voicemail.message_saved(stored.number, speech=speech)
    if outcome == "nothing":
        return twiml_voicemail.nothing_recorded(speech=speech)
    return twiml_voicemail.message_not_kept(stored.number if stored else None, speech=speech)


@bp.post("/voicemail/status")
@webhook(safe_twiml=twiml.empty)
def recording_status():
    """The recording status callback. It may never come, come twice, late, or say the
    recording failed: the action's own report is what the message is stored on, so this
    only notes the status on the message's callback, or, when the action never stored it
    and the caller is still marked as recording, stores it (the same store, idempotent)."""
    svc = services()
    call_sid, sid, status = param("CallSid"), param("RecordingSid"), param("RecordingStatus")
    if not call_sid or not sid:
        return twiml.empty()
    if svc.storage.note_recording(call_sid, sid, status=status or None):
        return twiml.empty()
    waiting = svc.storage.get_waiting_call(call_sid)
    if waiting is None or waiting.status != RECORDING:
        return twiml.empty()  # stored without it, ended, or never ours: nothing to do
    if status == "completed":
        ivr, queue = _routed()
        message = vm.message_from(sid, request.form.get("RecordingUrl", ""), param("RecordingDuration"))
        _store_message(ivr, queue, message)
    elif status in ("absent", "failed"):
        svc.storage.end_recording_visit(call_sid, svc.clock.now())
    return twiml.empty()


def _store_message(ivr, queue, message):
    """(outcome, callback) of storing a reported message: "created" or "same-call" (stored),
    "number-pending" (the number's callback stands; the recording goes), "nothing" (no
    message; the caller's visit ends) or "not-stored" (IVR or queue gone)."""
    svc = services()
    call_sid = param("CallSid")
    now = svc.clock.now()
    if message is None or not call_sid:
        if call_sid:
            svc.storage.end_recording_visit(call_sid, now)
        if param("RecordingSid"):  # a recording too short to keep is not left at Twilio
            svc.storage.file_orphan_recording(call_sid or "-", param("RecordingSid"), now)
        return "nothing", None
    if queue is None:
        svc.storage.file_orphan_recording(call_sid, message.recording_sid, now)
        return "not-stored", None
    number = vm.number_for(param("From"), ivr.settings)
    waiting = svc.storage.get_waiting_call(call_sid)
    if number is None and waiting is not None:
        number = vm.number_for(waiting.caller, ivr.settings)
    if number is None:  # voicemail turned off (or the rules changed) since the offer
        svc.storage.file_orphan_recording(call_sid, message.recording_sid, now)
        svc.storage.end_recording_visit(call_sid, now)
        return "not-stored", None
    result = _store_callback(ivr, queue, call_sid, number, None, message=message)
    log.info("voicemail %s (%d s) for %s in %s: %s", call_sid, message.duration, mask(number), queue.name,
             result.outcome)
    if result.outcome in ("created", "same-call"):
        svc.handoff.dispatch([queue.name])
        svc.dispatcher.text_about(result.callback, CONFIRMATION)
        return result.outcome, result.callback
    svc.storage.file_orphan_recording(call_sid, message.recording_sid, now)
    if result.outcome != "number-pending":
        svc.storage.end_recording_visit(call_sid, now)
    return result.outcome, result.callback


@bp.post("/voicemail/transcription")
@webhook(safe_twiml=twiml.empty)
def transcription():
    """Twilio's transcription of a message: kept on its callback (a failed one, as a note)."""
    text = request.form.get("TranscriptionText", "")[:MAX_TRANSCRIPTION].strip()
    if param("TranscriptionStatus") != "completed":
        text = ""
    if param("CallSid") and param("RecordingSid"):
        services().storage.note_recording(param("CallSid"), param("RecordingSid"),
                                          transcription=text or "(no transcription)")
    return twiml.empty()


@bp.get("/voicemail/audio/<callback_id>")
def message_audio(callback_id):
    """A message's audio for the agent's <Play> (Twilio fetches what it plays unsigned): only
    with the app's own short-lived signature for this callback and recording, fetched from
    Twilio server-side with the account's credentials."""
    svc = services()
    try:
        cb = svc.storage.get_callback(callback_id)
    except (NotFound, StorageError):
        abort(404)
    secret = svc.config.SECRET_KEY or svc.config.TWILIO_AUTH_TOKEN
    if not cb.recording_sid or not vm.audio_allowed(secret, cb.callback_id, cb.recording_sid,
                                                     request.args.get("exp"), request.args.get("sig"),
                                                     svc.clock.now()):
        abort(404)
    return audio_response(svc, cb)


def audio_response(svc, cb):
    """The recording of `cb` as an MP3 response, never cached; 404 when Twilio has it no more."""
    try:
        body = Recordings(svc.telephony).audio(cb.recording_sid)
    except CallGone:
        abort(404)
    except TelephonyError as exc:
        log.warning("recording of %s could not be fetched: %s", cb.callback_id, exc)
        abort(502)
    return Response(body, mimetype=AUDIO_TYPE, headers={"Cache-Control": "private, no-store"})


