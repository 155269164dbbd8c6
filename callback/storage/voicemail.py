"""Voicemail (issue #33): a holding caller leaving the queue to record (their waiting record
marked, out of the line, their place kept), a message's recording status and transcription,
and the recordings still at Twilio that the sweep deletes once their retention is over.

A message itself is a callback record of kind "voicemail", stored by `create_callback`.
"""
from datetime import timezone

from pynamodb.exceptions import DoesNotExist

from callback.domain import records as m
from callback.domain import stats
from callback.domain import voicemail as vm
from callback.storage.client import Conflict, NotFound, StorageBase, _dynamodb, _retrying, _valid_key


def _recording_key(check_at, callback_id):
    """A recording's sort key: its check time first, so one range condition finds those due."""
    return f"{check_at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S}#{callback_id}"


class VoicemailStorage(StorageBase):
    """Waiting calls that left to record, messages' recordings and their deletion list."""

    def leave_to_record(self, call_sid):
        """Mark a holding caller as leaving the queue to record a message: out of the line
        (no agent is offered them), their record and place kept. Returns the waiting call,
        or None when they no longer simply wait (an agent is being connected, or no record)."""
        W = self.Waiting
        try:
            self._update(W(_valid_key(call_sid)), [W.status.set(m.RECORDING), W.waiting_queue.remove()],
                         W.status == m.WAITING)
        except (Conflict, NotFound):
            return None
        return self.get_waiting_call(call_sid)

    def end_recording_visit(self, call_sid, now):
        """A caller who left to record stored no message (hung up, or said nothing): their
        record leaves, counted abandoned once; a record in another state stays."""
        call = self.get_waiting_call(call_sid)
        if call is not None and call.status == m.RECORDING:
            self._remove_counted(call, self.Waiting.status == m.RECORDING, {stats.ABANDONED: 1}, now)

    def pending_callback_of(self, queue_name, number):
        """The open callback that holds a number's pending slot in a queue, or None."""
        _owner, callback = self._pending_owner(queue_name, number)
        return callback if callback is not None and callback.status in m.OPEN_STATUSES else None

    def note_recording(self, callback_id, recording_sid, *, status=None, transcription=None):
        """Keep a message's recording status or transcription, only on the callback of that
        recording (a late or repeated report writes the same; a stray one changes nothing).
        False when no such callback holds that recording."""
        C = self.CallbackRec
        actions = []
        if status is not None:
            actions.append(C.recording_status.set(status))
        if transcription is not None:
            actions.append(C.transcription.set(transcription))
        if not actions:
            return False
        try:
            self._update(C(_valid_key(callback_id)), actions,
                         C.callback_id.exists() & (C.recording_sid == recording_sid))
        except (Conflict, NotFound):
            return False
        return True

    # -- recordings still at Twilio -------------------------------------------------------

    def _file_recording(self, tx, callback):
        """In transaction `tx`: the message's recording joins the deletion list, first
        looked at after RECHECK (its work is open until then at least)."""
        tx.save(self.Recording("RECORDING", _recording_key(callback.requested_at + vm.RECHECK,
                                                           callback.callback_id),
                               callback_id=callback.callback_id, recording_sid=callback.recording_sid,
                               ivr_name=callback.ivr_name))

    def file_orphan_recording(self, callback_id, recording_sid, now):
        """A recording no callback holds (the number had one pending already): listed for
        deletion at once, so that it does not stay at Twilio."""
        with _dynamodb():
            self.Recording("RECORDING", _recording_key(now, callback_id), callback_id=callback_id,
                           recording_sid=recording_sid).save()

    def recordings_due(self, now, limit=50):
        """Listed recordings whose check time has come: [(sort key, callback id, recording sid,
        IVR name)], earliest first (one Query of the list's partition)."""
        R = self.Recording
        with _dynamodb():
            return [(r.sk, r.callback_id, r.recording_sid, r.ivr_name) for r in R.query(
                "RECORDING", R.sk <= _recording_key(now, "~"), limit=limit, consistent_read=True)]

    def refile_recording(self, key, callback_id, recording_sid, ivr_name, check_at):
        """Look at a listed recording again at `check_at`: the item moves, once (a second
        sweep that read the same key changes nothing)."""
        R = self.Recording
        new = R("RECORDING", _recording_key(check_at, callback_id), callback_id=callback_id,
                recording_sid=recording_sid, ivr_name=ivr_name)
        if new.sk == key:
            return

        def write(tx):
            tx.delete(R("RECORDING", key), condition=R.sk.exists())
            tx.save(new)

        with _dynamodb(conflict=f"recording of {callback_id} was moved meanwhile"):
            self._transact(write)

    def drop_recording(self, key):
        """The recording is gone from Twilio: off the list (absent is fine)."""
        with _dynamodb():
            _retrying(lambda: self.Recording("RECORDING", key).delete())

    def recording_item(self, key):
        """A listed recording by sort key, or None (tests, and the sweep's second look)."""
        with _dynamodb():
            try:
                return self.Recording.get("RECORDING", key, consistent_read=True)
            except DoesNotExist:
                return None
