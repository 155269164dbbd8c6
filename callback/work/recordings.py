"""Voicemail recordings at Twilio (issue #33): deleted once their work has ended and the IVR's
retention has passed (the sweep's step), and at once when a number is erased.

The sweep reads the list of recordings still at Twilio (storage's "RECORDING" items, by the
time each is due a look; no Scan): a recording whose callback has ended past the retention,
or whose callback is gone (erased, or past the record's own retention), is deleted, and a
404 from Twilio counts as deleted; any other is filed under its next time.
"""
import logging

from callback.domain import records as m
from callback.domain import voicemail as vm
from callback.storage import Conflict, NotFound, StorageError
from callback.telephony.recordings import Recordings
from callback.telephony.rest import TelephonyError

log = logging.getLogger(__name__)
BATCH = 50


def sweep_recordings(svc, now, report, budget):
    """The sweep's step: each listed recording whose time has come, deleted or filed again."""
    recordings = Recordings(svc.telephony)
    for key, callback_id, recording_sid, ivr_name in svc.storage.recordings_due(now, limit=BATCH):
        budget.check()
        report.items_read += 1
        try:
            if _look_at(svc, recordings, now, key, callback_id, recording_sid, ivr_name):
                report.recordings_deleted += 1
        except (StorageError, TelephonyError) as exc:
            log.warning("recording of %s: %s; the next sweep tries again", callback_id, exc)
            report.errors.append(f"recording {callback_id}")


def _look_at(svc, recordings, now, key, callback_id, recording_sid, ivr_name):
    """True when the recording was deleted (or found gone) now."""
    try:
        cb = svc.storage.get_callback(callback_id)
    except NotFound:
        cb = None
    ivr = svc.directory.ivr(cb.ivr_name if cb else ivr_name) if (cb or ivr_name) else None
    retention = ivr.settings.voicemail_retention_days if ivr else vm.DEFAULT_RETENTION_DAYS
    if cb is not None and cb.recording_sid == recording_sid:
        ended = cb.ended_at if cb.status in m.FINAL_STATUSES else None
        check_at = vm.next_check(now, ended, retention)
        if check_at > now:
            try:
                svc.storage.refile_recording(key, callback_id, recording_sid, ivr_name, check_at)
            except Conflict:
                pass  # another sweep moved it
            return False
    # Ended past its retention, gone, or a recording the callback does not hold (an orphan).
    recordings.delete(recording_sid)
    if cb is not None and cb.recording_sid == recording_sid:
        svc.storage.note_recording(callback_id, recording_sid, status="deleted")
    svc.storage.drop_recording(key)
    log.info("recording of %s deleted at Twilio", callback_id)
    return True


def delete_recordings_of(telephony, callbacks):
    """Erasure: delete the recordings of these callbacks at Twilio now; returns (deleted,
    failed). Their list items stay: the sweep finds the callbacks gone and drops them."""
    deleted = failed = 0
    recordings = Recordings(telephony)
    for cb in callbacks:
        if not cb.recording_sid or cb.recording_status == "deleted":
            continue
        try:
            deleted += recordings.delete(cb.recording_sid)
        except TelephonyError as exc:
            failed += 1
            log.warning("erasure: Twilio kept recording %s (%s); delete it in the console",
                        cb.recording_sid, exc)
    return deleted, failed
