"""The line: callers holding in a queue (and the offer of one to an agent), departures from
the line for the wait estimate, pending dispatch marks, and numbers keyed in awaiting the
caller's confirmation.

A caller is recorded once (the first place stands), taken by an agent in the same
transaction that reserves the agent, and removed once; removals that mean something
(answered, abandoned) are counted with the removal.
"""
import logging
import uuid
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError

from callback.domain import records as m
from callback.domain import stats
from callback.domain.attempts import AGENT_RINGING
from callback.domain.estimate import BUCKET, Departures, bucket_start
from callback.storage.client import (
    CONDITION_FAILED,
    Conflict,
    NotFound,
    StorageBase,
    StorageError,
    _cancel_codes,
    _code,
    _dynamodb,
    _failed,
    _retrying,
    _valid_key,
)

log = logging.getLogger(__name__)

# Twilio ends every call after four hours, so a waiting-call record older than that is stale.
WAITING_CALL_LIFETIME = timedelta(hours=4, minutes=10)
# A keyed-in number is confirmed within seconds; after this it is forgotten.
ENTRY_LIFETIME = timedelta(minutes=10)
# Departure buckets are read for half an hour; DynamoDB may delete them after this.
DEPARTURES_LIFETIME = timedelta(hours=2)


def _bucket_key(start):
    """Sort key of a bucket: its start, so a range condition selects recent buckets."""
    return start.strftime("%Y-%m-%dT%H:%M")


class LineStorage(StorageBase):
    """Waiting calls and offers, departures, dispatch marks, number entries."""

    # -- waiting calls -----------------------------------------------------------------

    @staticmethod
    def _waiting_from(r):
        return m.WaitingCall(r.call_sid, r.ivr_name, r.queue_name, r.caller, r.joined_at, r.status,
                             r.agent_id, r.agent_call_sid, r.offer_id, r.phase, r.offered_at)

    def add_waiting_call(self, call_sid, *, ivr_name, queue_name, caller, joined_at,
                         fetch_existing=True):
        """Record a caller joining a queue; a call already recorded keeps its first place."""
        W = self.Waiting
        record = W(call_sid, ivr_name=ivr_name, queue_name=queue_name, caller=caller,
                   joined_at=joined_at, status=m.WAITING, waiting_queue=queue_name,
                   expires_ttl=joined_at + WAITING_CALL_LIFETIME)
        try:
            with _dynamodb(conflict=call_sid):
                record.save(condition=W.call_sid.does_not_exist())
            return self._waiting_from(record)
        except Conflict:
            return self.get_waiting_call(call_sid) if fetch_existing else None

    def record_waiting_call(self, call_sid, *, ivr_name, queue_name, caller, joined_at):
        """Record a caller found holding in a queue, unless they already have a callback.

        Returns ("recorded", call), ("already", call or None) when a record exists (its
        first place stands), or ("has-callback", None) when a callback was stored for this
        call: a caller is never both in line and holding a callback.
        """
        C, W = self.CallbackRec, self.Waiting
        record = W(call_sid, ivr_name=ivr_name, queue_name=queue_name, caller=caller,
                   joined_at=joined_at, status=m.WAITING, waiting_queue=queue_name,
                   expires_ttl=joined_at + WAITING_CALL_LIFETIME)

        def write(tx):
            tx.condition_check(C, _valid_key(call_sid), condition=C.callback_id.does_not_exist())
            tx.save(record, condition=W.call_sid.does_not_exist())
            # Counted in the hour they joined, only by the request that records them.
            self._count(tx, queue_name, ivr_name, joined_at, {stats.JOINED: 1})

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                codes = _cancel_codes(exc)  # [callback check, put waiting call, count]
                if _failed(codes, 0):
                    return "has-callback", None
                if _failed(codes, 1):
                    return "already", self.get_waiting_call(call_sid)
                raise
        return "recorded", self._waiting_from(record)

    def get_waiting_call(self, call_sid):
        """A waiting call by CallSid, or None."""
        with _dynamodb():
            try:
                return self._waiting_from(self.Waiting.get(_valid_key(call_sid)))
            except (DoesNotExist, NotFound):
                return None

    def remove_waiting_call(self, call_sid, event=None, now=None):
        """Forget a waiting call (hung up or served); absent is fine. With an `event`
        (abandoned, answered) the removal is counted at `now`, once: only the removal that
        finds the record counts, in the same transaction."""
        if event is None:
            with _dynamodb():
                self.Waiting(call_sid).delete()
            return
        call = self.get_waiting_call(call_sid)
        if call is not None:
            self._remove_counted(call, self.Waiting.call_sid.exists(), {event: 1}, now)

    def _remove_counted(self, call, condition, counts, now, worked=None):
        """Delete a waiting call on `condition`, add `counts` ({counter: n}) at `now` and the
        agent's log entry (`worked`) in the same transaction; False when the condition failed
        (nothing written, counted or logged)."""
        W = self.Waiting

        def write(tx):
            tx.delete(W(call.call_sid), condition=condition)
            self._count(tx, call.queue_name, call.ivr_name, now, counts)
            self._log_work(tx, worked)
        return self._transact_conditional(write)

    def _transact_conditional(self, write):
        """Run `write(tx)` as one transaction whose first item carries the condition; False
        when that condition failed (nothing written)."""
        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if not _failed(_cancel_codes(exc), 0):
                    raise
                return False
        return True

    def waiting_in_queue(self, queue_name, limit=10, joined_before=None):
        """Callers waiting (not being connected) in a queue, earliest place first."""
        W = self.Waiting
        condition = W.joined_at <= joined_before if joined_before is not None else None
        with _dynamodb():
            return [self._waiting_from(r) for r in W.by_queue.query(
                queue_name, range_key_condition=condition, limit=limit)]

    def count_waiting(self, queue_name):
        """How many callers wait in a queue."""
        with _dynamodb():
            return self.Waiting.by_queue.count(queue_name)

    def count_waiting_before(self, queue_name, joined_at):
        """How many callers hold in a queue with an earlier place in line."""
        W = self.Waiting
        with _dynamodb():
            return W.by_queue.count(queue_name, range_key_condition=W.joined_at < joined_at)

    def _offer_as_read(self, call):
        """Condition: the caller is still in this offer, at this phase, with this agent
        call, as `call` says, so a write computed from a stale read loses."""
        W = self.Waiting
        condition = (W.status == m.CONNECTING) & (W.offer_id == call.offer_id)
        for attr, value in ((W.phase, call.phase), (W.agent_call_sid, call.agent_call_sid)):
            condition &= (attr == value) if value else attr.does_not_exist()
        return condition

    def commit_offer(self, call, change):
        """Write an offer's change the domain computed from `call`
        (callback.domain.transitions): an update, a deletion, or a deletion counted in the
        same transaction; an ending adds the agent's log entry to its transaction. Conflict
        when the offer has moved on (nothing written, counted or logged)."""
        W = self.Waiting
        condition = self._offer_as_read(call)
        moved_on = "the offer has moved on"
        if change.worked is not None and not change.leaves_line:
            # Back in line: the record's update and the agent's log entry, together.
            def write(tx):
                tx.update(W(call.call_sid), actions=self._field_actions(W, change.set, change.remove),
                          condition=condition)
                self._log_work(tx, change.worked)
            if not self._transact_conditional(write):
                raise Conflict(moved_on)
        elif not change.leaves_line:
            self._update(W(call.call_sid), self._field_actions(W, change.set, change.remove), condition)
        elif not change.counts and change.worked is None:
            with _dynamodb(conflict=moved_on):
                _retrying(lambda: W(call.call_sid).delete(condition=condition))
        elif not self._remove_counted(call, condition, change.counts, change.counted_at, change.worked):
            raise Conflict(moved_on)

    def claim_waiting_call(self, agent, call, now, offer_id=None, phase=AGENT_RINGING, legs=()):
        """Reserve an available agent and take a holding caller for them (offer `offer_id`,
        its agent ringing), atomically, with the agent's leg in the ledger."""
        W = self.Waiting
        offer_id = offer_id or uuid.uuid4().hex[:16]
        self._claim(agent, now, "call", call.call_sid, offer_id, W(call.call_sid),
                    [W.status.set(m.CONNECTING), W.waiting_queue.remove(), W.agent_id.set(agent.agent_id),
                     W.offer_id.set(offer_id), W.phase.set(phase), W.agent_call_sid.remove(),
                     W.offered_at.set(now)],
                    W.status == m.WAITING, legs)
        self._departed(call.queue_name, now)

    # -- pending dispatches (coalescing asynchronous dispatch requests) -----------------

    def request_dispatch(self, key, now, pending_until):
        """Mark a dispatch of `key` (a queue name, or "*") pending until `pending_until`;
        False when one already is, so the caller need not ask for another."""
        G = self.Guard
        with _dynamodb(conflict=key):
            try:
                G("DISPATCH", _valid_key(key), expires_ttl=pending_until).save(
                    condition=G.sk.does_not_exist() | (G.expires_ttl <= now))
            except PynamoDBException as exc:
                if _code(exc) == CONDITION_FAILED:
                    return False
                raise
        return True

    def dispatch_started(self, keys):
        """A dispatch of these keys starts: a change from now on needs a new one."""
        with _dynamodb():
            for key in keys:
                self.Guard("DISPATCH", _valid_key(key)).delete()

    # -- departures from the line, for the wait estimate ---------------------------------

    def _departed(self, queue_name, now):
        """Count work an agent just took; the claim stands even if counting fails."""
        try:
            self.count_departure(queue_name, now)
        except StorageError:
            log.warning("could not count a departure from %s; the estimate will be lower", queue_name)

    def count_departure(self, queue_name, now):
        """One more piece of work left the queue's line in the current bucket (an atomic
        ADD: concurrent Lambdas never lose a count)."""
        D = self.DeparturesRec
        start = bucket_start(now)
        with _dynamodb():
            D(f"STATS#{queue_name}", _bucket_key(start)).update(actions=[
                D.departures.add(1), D.bucket_start.set(start),
                D.expires_ttl.set(start + BUCKET + DEPARTURES_LIFETIME)])

    def recent_departures(self, queue_name, since):
        """The queue's departure buckets from `since` on (one Query of a few items)."""
        D = self.DeparturesRec
        with _dynamodb():
            return [Departures(r.bucket_start, int(r.departures)) for r in D.query(
                f"STATS#{queue_name}", range_key_condition=D.sk >= _bucket_key(since))]

    # -- numbers awaiting confirmation ---------------------------------------------------

    def hold_entry(self, call_sid, number, now, lifetime=ENTRY_LIFETIME):
        """Keep a keyed-in number until the caller confirms it; returns the entry's id (a
        newer entry of the same call replaces it, so only the latest can be confirmed)."""
        entry_id = uuid.uuid4().hex[:12]
        with _dynamodb():
            self.Entry("ENTRY", _valid_key(call_sid), entry_id=entry_id, number=number,
                       expires_ttl=now + lifetime).save()
        return entry_id

    def held_entry(self, call_sid, entry_id, now):
        """The number of that entry of the call, or None when replaced, expired or absent
        (DynamoDB deletes expired items late, so the time is checked here)."""
        with _dynamodb():
            try:
                record = self.Entry.get("ENTRY", _valid_key(call_sid), consistent_read=True)
            except (DoesNotExist, NotFound):
                return None
        if record.entry_id != entry_id or record.expires_ttl <= now:
            return None
        return record.number

