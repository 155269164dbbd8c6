"""Callbacks: storing a request with its number's pending slot, reading and listing them,
claiming one for an agent, and committing each change of an attempt that the domain
computes (callback.domain.transitions): a plain conditional update, a counted
transaction, or an ending transaction that also frees the number's pending slot.

Every change is conditional: on the callback exactly as read, or on what the domain asks
(still pending, expired by now); a lost condition is Conflict and moves no counter.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from callback.domain import records as m
from callback.domain import stats
from callback.domain.attempts import AGENT_RINGING
from callback.domain.slots import books_slot
from callback.domain.transitions import StillPending
from callback.storage.client import (
    Conflict,
    NotFound,
    StorageBase,
    StorageError,
    _cancel_codes,
    _dynamodb,
    _failed,
    _valid_key,
)
from callback.storage.tables import AttemptMap

# A number's pending slot taken over from ended callbacks this many times in a row means
# something keeps changing it: give up and let the caller try again.
MAX_GUARD_TRIES = 3
# A time slot's booking counter outlives its slot by this much (then DynamoDB's TTL drops it).
BOOKING_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class CreateResult:
    """How storing a callback request went."""

    outcome: str  # "created", "same-call" (already stored), "number-pending" (another one),
    #             "agent-connecting" (an agent is being connected to the caller: no callback),
    #             "slot-full" (the time slot it was for filled up meanwhile: nothing stored)
    callback: m.Callback | None


class CallbackStorage(StorageBase):
    """Callbacks, their attempts and their numbers' pending slots (pk "PENDING#<queue>")."""

    @staticmethod
    def _callback_from(r):
        history = tuple(
            m.Attempt(a.attempt_id, a.started_at, a.agent_id, a.outcome, a.ended_at, bool(a.counted),
                      a.agent_call_sid, a.customer_call_sid,
                      None if a.error_code is None else int(a.error_code), a.connected_at)
            for a in (r.history or []))
        return m.Callback(
            r.callback_id, r.number, r.ivr_name, r.queue_name, r.requested_at, r.place_in_line,
            int(r.priority), r.due_at, r.expires_at, r.status, int(r.attempts or 0), r.attempt_id,
            r.phase, r.agent_id, r.agent_call_sid, r.customer_call_sid, history, r.ended_reason,
            r.ended_at, r.sweep_at, r.window_start, r.window_end, r.name, r.reason, r.kind, r.recording_sid,
            r.recording_url, None if r.recording_seconds is None else int(r.recording_seconds),
            r.recording_status, r.transcription, r.detection, r.answered_by, int(r.verdict_reads or 0))

    def _guard_key(self, queue_name, number):
        return self.Guard(f"PENDING#{queue_name}", number)

    def _booking_key(self, queue_name, start):
        """The counter of the callbacks booked for a queue's time slot starting at `start`."""
        return self.Guard(f"BOOKED#{queue_name}", start.isoformat())

    def booked_slots(self, queue_name, first, last):
        """{slot start: callbacks booked} for a queue's time slots from `first` to `last`
        (one Query of the booking counters)."""
        G = self.Guard
        with _dynamodb():
            items = G.query(f"BOOKED#{queue_name}", G.sk.between(first.isoformat(), last.isoformat()))
            return {datetime.fromisoformat(item.sk): int(item.count or 0) for item in items}

    def create_callback(self, callback, waiting_call_sid, slot_capacity=None):
        """Store a new pending callback, claim its number's slot in the queue and take the
        caller out of the waiting list, all or nothing.

        The waiting call is deleted only while it still waits: a caller an agent is being
        connected to gets no callback ("agent-connecting"). A guard left by a callback that
        has ended no longer blocks the number: it is replaced, on the owner it was read with.
        A callback for a time slot (a window of one half-hour) books it in the same
        transaction, only while fewer than `slot_capacity` are booked ("slot-full" otherwise).
        """
        C, G, W = self.CallbackRec, self.Guard, self.Waiting
        record = C(callback.callback_id, number=callback.number, ivr_name=callback.ivr_name,
                   queue_name=callback.queue_name, requested_at=callback.requested_at,
                   place_in_line=callback.place_in_line, priority=callback.priority,
                   due_at=callback.due_at, expires_at=callback.expires_at, status=m.PENDING,
                   attempts=0, history=[], pending_queue=callback.queue_name,
                   sweep_status=m.PENDING, sweep_at=min(callback.due_at, callback.expires_at),
                   window_start=callback.window_start, window_end=callback.window_end,
                   name=callback.name, reason=callback.reason,
                   kind=callback.kind, recording_sid=callback.recording_sid,
                   recording_url=callback.recording_url, recording_seconds=callback.recording_seconds)
        books = books_slot(callback.window_start, callback.window_end)
        # A callback asked for through the API has an id no call has: the waiting call it
        # names does not exist, so its delete (condition: none, or still waiting) is a no-op.
        # A caller who left the queue to leave a message (RECORDING) is still theirs to store.
        still_waiting = W.call_sid.does_not_exist() | W.status.is_in(m.WAITING, m.RECORDING)
        guard_free = G.sk.does_not_exist()
        for _ in range(MAX_GUARD_TRIES):
            guard = self._guard_key(callback.queue_name, callback.number)
            guard.owner = callback.callback_id
            with _dynamodb():
                def write(tx, guard=guard, guard_free=guard_free):
                    tx.save(record, condition=C.callback_id.does_not_exist())
                    tx.save(guard, condition=guard_free)
                    tx.delete(W(waiting_call_sid), condition=still_waiting)
                    if books:
                        self._book(tx, callback, slot_capacity)
                    if callback.recording_sid:
                        self._file_recording(tx, callback)
                    self._count(tx, callback.queue_name, callback.ivr_name, callback.requested_at,
                                {stats.REQUESTED: 1})

                try:
                    self._transact(write)
                except TransactWriteError as exc:
                    # [delete waiting call, put callback, put guard, book the slot, count]
                    codes = _cancel_codes(exc)
                    if books and _failed(codes, 3):
                        return CreateResult("slot-full", None)
                    if _failed(codes, 1):
                        return CreateResult("same-call", self.get_callback(callback.callback_id))
                    if _failed(codes, 0):
                        return CreateResult("agent-connecting", None)
                    if not _failed(codes, 2):
                        raise
                else:
                    return CreateResult("created", self._callback_from(record))
            owner_id, existing = self._pending_owner(callback.queue_name, callback.number)
            if existing is not None and existing.status in m.OPEN_STATUSES:
                return self._keep_existing(existing, waiting_call_sid, callback)
            # The guard is stale (its callback ended, or it vanished since): take it over,
            # but only if it still names the owner just read.
            guard_free = (G.sk.does_not_exist() | G.owner.does_not_exist() if owner_id is None
                          else G.owner == owner_id)
        raise StorageError(f"the pending slot for callback {callback.callback_id} kept changing")

    def _book(self, tx, callback, capacity):
        """One more callback booked for its time slot, in transaction `tx`, while it has room."""
        G = self.Guard
        room = G.count.does_not_exist() | (G.count < int(capacity or 0))
        tx.update(self._booking_key(callback.queue_name, callback.window_start),
                  actions=[G.count.add(1), G.expires_ttl.set(callback.window_end + BOOKING_LIFETIME)],
                  condition=room)

    def _release_booking(self, tx, callback, now):
        """A callback ended before its time slot (canceled, say): the slot has room again."""
        if books_slot(callback.window_start, callback.window_end) and now < callback.window_start:
            tx.update(self._booking_key(callback.queue_name, callback.window_start),
                      actions=[self.Guard.count.add(-1)])

    def _keep_existing(self, existing, waiting_call_sid, callback):
        """The number has a live callback: the caller leaves the line for it (the request
        counted once as already pending, with the removal), unless an agent is already being
        connected to them."""
        W = self.Waiting

        def write(tx):
            tx.delete(W(waiting_call_sid), condition=W.status.is_in(m.WAITING, m.RECORDING))
            self._count(tx, callback.queue_name, callback.ivr_name, callback.requested_at,
                        {stats.ALREADY_PENDING: 1})

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if not _failed(_cancel_codes(exc), 0):
                    raise
                if self.get_waiting_call(waiting_call_sid) is not None:
                    return CreateResult("agent-connecting", None)
        return CreateResult("number-pending", existing)

    def _pending_owner(self, queue_name, number):
        """(owner id, owner callback) of a number's pending slot; Nones when free or ownerless."""
        with _dynamodb():
            try:
                owner_id = self.Guard.get(f"PENDING#{queue_name}", number, consistent_read=True).owner
            except DoesNotExist:
                return None, None
        try:
            return owner_id, self.get_callback(owner_id)
        except NotFound:
            return owner_id, None

    def get_callback(self, callback_id):
        """One callback by id (one past its retention is gone, deleted by TTL or not yet)."""
        with _dynamodb():
            try:
                record = self.CallbackRec.get(_valid_key(callback_id), consistent_read=True)
            except DoesNotExist as exc:
                raise NotFound(callback_id) from exc
        if record.expires_ttl is not None and record.expires_ttl <= self.clock.now():
            raise NotFound(callback_id)
        return self._callback_from(record)

    def callbacks_of_number(self, number):
        """Every callback of a number, ended ones too (for erasure): the keys-only number
        index, then each record read whole."""
        C = self.CallbackRec
        records = []
        with _dynamodb():
            for callback_id in sorted({r.callback_id for r in C.by_number.query(number)}):
                try:
                    records.append(C.get(callback_id, consistent_read=True))
                except DoesNotExist:
                    pass  # gone since the index was read
        return [self._callback_from(r) for r in records]

    def delete_ended_callback(self, cb):
        """Remove an ended callback for good (erasure); Conflict unless it is still ended."""
        C = self.CallbackRec
        with _dynamodb(conflict=f"callback {cb.callback_id} is not ended"):
            C(cb.callback_id).delete(condition=C.status.is_in(*m.FINAL_STATUSES))

    def due_callbacks(self, queue_name, now, limit=10):
        """Pending callbacks of a queue that may be dialed now, earliest place first."""
        C = self.CallbackRec
        with _dynamodb():
            return [self._callback_from(r) for r in C.by_pending.query(
                queue_name, filter_condition=C.due_at <= now, limit=limit)]

    def count_pending(self, queue_name):
        """How many callbacks of a queue are pending."""
        with _dynamodb():
            return self.CallbackRec.by_pending.count(queue_name)

    def count_pending_before(self, queue_name, place_in_line):
        """How many pending callbacks of a queue have an earlier place in line."""
        C = self.CallbackRec
        with _dynamodb():
            return C.by_pending.count(queue_name, range_key_condition=C.place_in_line < place_in_line)

    def needing_sweep(self, status, now, limit=100):
        """Open callbacks of a status whose sweep time has come (index query, no Scan)."""
        C = self.CallbackRec
        with _dynamodb():
            return [self._callback_from(r) for r in C.by_sweep.query(
                status, range_key_condition=C.sweep_at <= now, limit=limit)]

    def list_callbacks(self, *, status=None, ivr_name=None, limit=25, start_key=None):
        """Callbacks newest first, optionally of one status and IVR; returns (items, next key)."""
        C = self.CallbackRec
        kept = C.expires_ttl.does_not_exist() | (C.expires_ttl > self.clock.now())
        flt = (kept & (C.ivr_name == ivr_name)) if ivr_name else kept
        index, key = (C.by_status, status) if status else (C.by_requested, "CB")
        with _dynamodb():
            results = index.query(key, filter_condition=flt, scan_index_forward=False,
                                  limit=limit, last_evaluated_key=start_key, page_size=limit)
            items = [self._callback_from(r) for r in results]
            return items, results.last_evaluated_key

    def claim_callback(self, agent, callback, attempt_id, now, dial_deadline, phase=AGENT_RINGING, legs=()):
        """Reserve an available agent and move a due pending callback to dialing, atomically,
        with the attempt's `legs` (the agent's phone, the customer's number) in the ledger."""
        C = self.CallbackRec
        attempt = AttemptMap(attempt_id=attempt_id, started_at=now, agent_id=agent.agent_id)
        self._claim(agent, now, "callback", callback.callback_id, attempt_id, C(callback.callback_id),
                    [C.status.set(m.DIALING), C.phase.set(phase), C.attempt_id.set(attempt_id),
                     C.agent_id.set(agent.agent_id), C.agent_call_sid.remove(),
                     C.customer_call_sid.remove(), C.pending_queue.remove(), C.detection.remove(),
                     C.answered_by.remove(), C.verdict_reads.remove(),
                     C.sweep_status.set(m.DIALING), C.sweep_at.set(dial_deadline),
                     C.history.set(C.history.append([attempt]))],
                    (C.status == m.PENDING) & (C.due_at <= now) & (C.expires_at > now), legs)
        self._departed(callback.queue_name, now)

    def oldest_pending(self, queue_name):
        """The pending callback of a queue first in line, or None (one index read)."""
        with _dynamodb():
            return next((self._callback_from(r)
                         for r in self.CallbackRec.by_pending.query(queue_name, limit=1)), None)

    def open_callbacks(self, status, limit=500):
        """Callbacks in an open status (dialing, connected) across queues, through the sweep
        index: as many as there are agents on such calls, never the table's history."""
        with _dynamodb():
            return [self._callback_from(r)
                    for r in self.CallbackRec.by_sweep.query(status, limit=limit)]

    # -- committing a change the domain computed -----------------------------------------

    def _as_read(self, cb):
        """Condition: the callback's attempt, status, phase, both CallSids and the verdict are
        still what `cb` says, so a write computed from a stale read loses instead of landing."""
        C = self.CallbackRec
        condition = (C.attempt_id == cb.attempt_id) & (C.status == cb.status)
        for attr, value in ((C.phase, cb.phase), (C.agent_call_sid, cb.agent_call_sid),
                            (C.customer_call_sid, cb.customer_call_sid), (C.answered_by, cb.answered_by)):
            condition &= (attr == value) if value else attr.does_not_exist()
        return condition

    def _condition(self, cb, condition):
        """The DynamoDB condition a change asks for."""
        C = self.CallbackRec
        if isinstance(condition, StillPending):
            still = C.status == m.PENDING
            if condition.due_at is not None:
                still &= C.due_at == condition.due_at
            return still if condition.expired_by is None else still & (C.expires_at <= condition.expired_by)
        return self._as_read(cb)

    def commit(self, cb, change):
        """Write a change the domain computed from `cb` (callback.domain.transitions); returns
        the callback's new status. Conflict when its condition fails (nothing written, no
        counter moved)."""
        C = self.CallbackRec
        actions = []
        if change.attempt is not None:
            entry = C.history[self._index(cb, change.attempt.attempt_id)]
            actions += [getattr(entry, name).set(value) for name, value in change.attempt.fields.items()]
        actions += self._field_actions(C, change.set, change.remove)
        condition = self._condition(cb, change.condition)
        if change.releases_guard:
            # A final status: the record is kept for the retention period, then goes.
            actions.append(C.expires_ttl.set(change.counted_at + timedelta(days=self.config.RETENTION_DAYS)))
        if change.releases_guard:
            self._commit_ending(cb, actions, condition, change.counted_at, change.counts, change.worked)
        elif change.counts or change.worked:
            self._commit_counted(cb, actions, condition, change.counted_at, change.counts,
                                 worked=change.worked)
        else:
            self._update(C(cb.callback_id), actions, condition)
        return change.status(cb.status)

    @staticmethod
    def _index(cb, attempt_id):
        for i, attempt in enumerate(cb.history):
            if attempt.attempt_id == attempt_id:
                return i
        raise Conflict(f"attempt {attempt_id} not on callback {cb.callback_id}")

    def _commit_counted(self, callback, actions, condition, now, counts, ending=False, worked=None):
        """A conditional callback update, its counters and the agent's log entry (`worked`),
        in one transaction: the write that loses its condition counts and logs nothing."""
        C = self.CallbackRec
        with _dynamodb():
            def write(tx):
                tx.update(C(callback.callback_id), actions=actions, condition=condition)
                self._log_work(tx, worked)
                if ending:
                    self._release_booking(tx, callback, now)
                self._count(tx, callback.queue_name, callback.ivr_name, now, counts)
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if _failed(_cancel_codes(exc), 0):
                    raise Conflict(f"callback {callback.callback_id} is not in the expected state") from exc
                raise

    def _commit_ending(self, callback, actions, condition, now, counts, worked=None):
        """A final status: the update, the deletion of the number's pending slot (if this
        callback still owns it), the counters and the agent's log entry, in one transaction."""
        C = self.CallbackRec

        def write(tx):
            tx.update(C(callback.callback_id), actions=actions, condition=condition)
            self._log_work(tx, worked)
            tx.delete(self._guard_key(callback.queue_name, callback.number),
                      condition=self.Guard.owner == callback.callback_id)
            self._release_booking(tx, callback, now)
            self._count(tx, callback.queue_name, callback.ivr_name, now, counts)

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                codes = _cancel_codes(exc)  # [delete guard, update callback, count]
                if _failed(codes, 1):
                    raise Conflict(f"callback {callback.callback_id} moved on") from exc
                if not _failed(codes, 0):
                    raise
                # The guard is gone or belongs to another callback: end this one regardless.
                self._commit_counted(callback, actions, condition, now, counts, ending=True, worked=worked)
