"""Forgetting a number on request: its callbacks (pending ones cancelled first), their
attempts, their texts and the number's opt-out from texts, the API's stored answers about
it (Idempotency-Keys), Twilio's records of the calls they made and took and of the texts
sent to and received from the number (Twilio's Messages resource supports DELETE; a log
Twilio keeps is counted as left, and logged), and the recordings of its voicemails
(counted with the call records).

What is not touched, and why: holding callers and keyed-in entries expire within a day and
ten minutes (TTL); the wallboard's counters and the departures of the wait estimate hold
no numbers; the logs mask them. The tables' point-in-time backups keep an erased number
until they age out (`BackupRecoveryDays` of the template, 35 days at most). A number with
a call in progress (an attempt dialing or connected) is refused: erase it once it ended.
"""
import logging
from dataclasses import dataclass

from callback.domain import records as m
from callback.domain import transitions
from callback.storage import Conflict, NotFound
from callback.telephony.messages import Messaging
from callback.telephony.rest import TelephonyError
from callback.work.recordings import delete_recordings_of

log = logging.getLogger(__name__)


class NumberBusy(Conflict):
    """A callback of the number has a call in progress: nothing was erased."""


@dataclass(frozen=True)
class Erasure:
    """What forgetting a number removed (never the number itself)."""

    callbacks: int
    canceled: int
    twilio_records: int
    twilio_failures: int
    texts: int = 0


def _call_sids(cb):
    """The calls of a callback whose Twilio records carry the number: the caller's own
    (the callback's id is its CallSid) and every customer leg."""
    sids = {cb.callback_id} if cb.callback_id.startswith("CA") else set()
    return sids | {a.customer_call_sid for a in cb.history if a.customer_call_sid}


def forget_number(storage, telephony, number, now):
    """Erase everything the app keeps of `number`; NumberBusy while a call to it is live."""
    found = storage.callbacks_of_number(number)
    busy = [cb for cb in found if cb.status in (m.DIALING, m.CONNECTED)]
    if busy or storage.get_leg(number) is not None:
        raise NumberBusy("a call to this number is in progress; try again once it has ended")
    canceled = removed = deleted = failed = texts = 0
    # Voicemail recordings first: Twilio keeps them apart from the call records.
    deleted, failed = delete_recordings_of(telephony, found)
    for cb in found:
        if cb.status == m.PENDING:
            try:
                storage.commit(cb, transitions.cancel(cb, now))
                canceled += 1
            except Conflict as exc:
                raise NumberBusy("a callback of this number just changed; try again") from exc
            cb = storage.get_callback(cb.callback_id)
        for sid in sorted(_call_sids(cb)):
            try:
                deleted += telephony.delete_call_record(sid)
            except TelephonyError as exc:
                failed += 1
                log.warning("erasure: Twilio kept call record %s (%s); delete it in the console", sid, exc)
        texts += len(storage.forget_texts(cb.callback_id))
        try:
            storage.delete_ended_callback(cb)
            removed += 1
        except (Conflict, NotFound):
            pass
    storage.opt_in(number)  # the opt-out holds the number too; Twilio keeps its own block
    storage.forget_key_answers(number)  # the API's stored answers show it in full
    try:
        gone, kept = Messaging(telephony).delete_messages_of(number)
    except TelephonyError as exc:
        gone, kept = 0, 1
        log.warning("erasure: could not list the number's texts at Twilio (%s); delete them in the console",
                    exc)
    deleted, failed = deleted + gone, failed + kept
    report = Erasure(removed, canceled, deleted, failed, texts)
    # Recorded without the number: an erasure that kept a copy of what it erased would not be one.
    log.info("erasure: a number was forgotten: %d callbacks (%d cancelled), %d texts, %d Twilio call and "
             "message records deleted, %d left", report.callbacks, report.canceled, report.texts,
             report.twilio_records, report.twilio_failures)
    return report
