"""The status callback of the IVR's own numbers (set by `flask twilio-setup`): a caller's
call ended. A backstop for what the queue's own report (`/voice/enqueue-done`) says, which
Twilio sends only for a caller who reached a queue and may lose: the caller's number is
freed in the call ledger, and a caller still recorded as holding leaves the line."""
from callback.domain import stats
from callback.domain.records import RECORDING
from callback.web import twiml
from callback.web.voice.common import FINAL_CALL_STATUSES, bp, param, services, webhook


@bp.post("/caller/status")
@webhook(safe_twiml=twiml.empty)
def caller_status():
    """A status of a caller's own call: once final, they are off the phone."""
    svc = services()
    call_sid = param("CallSid")
    if call_sid and param("CallStatus") in FINAL_CALL_STATUSES:
        svc.dispatcher.caller_hung_up(call_sid, param("From"))
        # An open offer ends through its own steps (the agent is told); a plain holding
        # record goes, counted as abandoned once (the queue's report may count it first).
        if not svc.dispatcher.caller_left_queue(call_sid) and not _recording(call_sid):
            svc.storage.remove_waiting_call(call_sid, event=stats.ABANDONED, now=svc.clock.now())
    return twiml.empty()


def _recording(call_sid):
    """True for a caller who left the queue to leave a message: hanging up ends a message
    (Twilio then reports it to the <Record> action, perhaps after this), so their record is
    the message's to settle, not an abandoned call (its TTL is the backstop)."""
    call = services().storage.get_waiting_call(call_sid)
    return call is not None and call.status == RECORDING
