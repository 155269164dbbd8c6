"""DynamoDB storage through PynamoDB: the only module that knows tables exist.

Tables (each name prefixed by CALLBACK_TABLE_PREFIX):
- `config`: IVRs (pk "IVR", with their queues and settings inside), agents (pk "AGENT"),
  one-pending-callback-per-number guards (pk "PENDING"), login throttles (pk "LOGIN"),
  numbers a caller keyed in and has not confirmed yet (pk "ENTRY", minutes-long TTL),
  departures from each queue's line per five-minute bucket (pk "STATS#<queue>", hours-long
  TTL), which the wait estimate reads, admin sessions (pk "SESSION") and pending
  asynchronous dispatches per queue (pk "DISPATCH"); throttles and sessions expire by TTL;
  the wallboard's hourly counters (pk "HOURLY#<queue>", sk the UTC hour, days-long TTL).
  All IVRs share one partition so the whole routing directory loads with one Query.
- `waiting-calls`: callers holding, by CallSid; sparse index of who waits in each queue.
- `callbacks`: callbacks, by id; sparse indexes of pending work per queue and of what
  the sweep must look at, by status and time; listing indexes for the admin.

Every state change is a conditional write; failed conditions become `Conflict`.
"""
import logging
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import BotoCoreError
from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DoesNotExist,
    PutError,
    PynamoDBException,
    TransactWriteError,
    UpdateError,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from callback.domain import records as m
from callback.domain import stats
from callback.domain.attempts import AGENT_RINGING
from callback.domain.estimate import BUCKET, Departures, bucket_start
from callback.domain.settings import DEFAULT_LANGUAGE, DEFAULT_VOICE, CallbackSettings

log = logging.getLogger(__name__)

CONDITION_FAILED = "ConditionalCheckFailedException"
# DynamoDB refuses a write while another transaction holds its item: a single write with
# TransactionConflictException, a transaction with the TransactionConflict cancellation
# reason. Nothing was written, so the write runs again, a bounded number of times.
# (DynamoDB Local serializes requests and moto checks nothing: neither ever answers so.)
CONFLICT_ATTEMPTS = 3
# Twilio ends every call after four hours, so a waiting-call record older than that is stale.
WAITING_CALL_LIFETIME = timedelta(hours=4, minutes=10)
# A keyed-in number is confirmed within seconds; after this it is forgotten.
ENTRY_LIFETIME = timedelta(minutes=10)
# Departure buckets are read for half an hour; DynamoDB may delete them after this.
DEPARTURES_LIFETIME = timedelta(hours=2)
# Hourly counters serve today and the last 24 hours; a week more leaves room to look back.
STATS_LIFETIME = timedelta(days=8)
# A number's pending slot taken over from ended callbacks this many times in a row means
# something keeps changing it: give up and let the caller try again.
MAX_GUARD_TRIES = 3


class StorageError(Exception):
    """DynamoDB could not be reached or refused the request."""


class Conflict(StorageError):
    """A conditional write lost: the record was not in the expected state."""


class NotFound(StorageError):
    """No such record."""


@dataclass(frozen=True)
class CreateResult:
    """How storing a callback request went."""

    outcome: str  # "created", "same-call" (already stored), "number-pending" (another one),
    #             "agent-connecting" (an agent is being connected to the caller: no callback)
    callback: m.Callback | None


class _QueueMap(MapAttribute):
    name = UnicodeAttribute()
    priority = NumberAttribute(default=0)
    callback_enabled = BooleanAttribute(default=True)


class _SettingsMap(MapAttribute):
    callback_enabled = BooleanAttribute(default=True)
    offer_after_seconds = NumberAttribute(default=60)
    expiration_minutes = NumberAttribute(default=120)
    max_retries = NumberAttribute(default=3)
    priority = NumberAttribute(null=True)
    retry_minutes = NumberAttribute(default=5)
    transfer_timeout_seconds = NumberAttribute(default=30)
    entry_attempts = NumberAttribute(default=3)
    offer_caller_id = BooleanAttribute(default=False)
    announce_as = UnicodeAttribute(null=True)
    voice = UnicodeAttribute(null=True)
    language = UnicodeAttribute(null=True)


class _AttemptMap(MapAttribute):
    attempt_id = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    agent_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    ended_at = UTCDateTimeAttribute(null=True)
    counted = BooleanAttribute(default=False)
    agent_call_sid = UnicodeAttribute(null=True)
    customer_call_sid = UnicodeAttribute(null=True)
    error_code = NumberAttribute(null=True)


def _client_limits(config):
    """Twilio waits 15 s for a webhook and a webhook may make a few DynamoDB requests, so
    each request gets DYNAMODB_TIMEOUT_SECONDS (2) in all: a short connect timeout, the
    rest for reading, and no client-side retry (a retry's backoff alone can take a second).
    A request that fails this way is a StorageError: the webhook answers its caller-safe
    TwiML and the sweep repairs later."""
    budget = config.DYNAMODB_TIMEOUT_SECONDS
    connect = min(0.5, budget / 4)
    return {"connect_timeout_seconds": connect, "read_timeout_seconds": budget - connect,
            "max_retry_attempts": 0}


def _meta(table_name, config):
    attrs = {
        "table_name": table_name,
        "region": config.AWS_REGION,
        "billing_mode": "PAY_PER_REQUEST",
        **_client_limits(config),
    }
    if config.AWS_ENDPOINT_URL_DYNAMODB:
        attrs["host"] = config.AWS_ENDPOINT_URL_DYNAMODB
    return type("Meta", (), attrs)


def _time_ordered_index(index_name, hash_name, range_name):
    """A global secondary index keyed by a string and ordered by a UTC time, all attributes
    projected (every index here answers whole records)."""
    meta = type("Meta", (), {"index_name": index_name, "projection": AllProjection()})
    return type(f"Index_{index_name.replace('-', '_')}", (GlobalSecondaryIndex,), {
        "Meta": meta,
        hash_name: UnicodeAttribute(hash_key=True),
        range_name: UTCDateTimeAttribute(range_key=True),
    })()


def _build_models(config):
    """Model classes bound to this configuration's table names and endpoint."""
    prefix = config.CALLBACK_TABLE_PREFIX

    class IvrRecord(Model):
        Meta = _meta(prefix + "config", config)
        pk = UnicodeAttribute(hash_key=True, default="IVR")
        sk = UnicodeAttribute(range_key=True)
        numbers = ListAttribute(of=UnicodeAttribute, default=list)
        greeting = UnicodeAttribute(default="")
        queues = ListAttribute(of=_QueueMap, default=list)
        settings = _SettingsMap(default=_SettingsMap)
        version = VersionAttribute()

    class AgentRecord(Model):
        Meta = _meta(prefix + "config", config)
        pk = UnicodeAttribute(hash_key=True, default="AGENT")
        sk = UnicodeAttribute(range_key=True)
        name = UnicodeAttribute()
        phone = UnicodeAttribute()
        queues = ListAttribute(of=UnicodeAttribute, default=list)
        status = UnicodeAttribute(default=m.OFFLINE)
        status_changed_at = UTCDateTimeAttribute(null=True)
        work_kind = UnicodeAttribute(null=True)
        work_key = UnicodeAttribute(null=True)
        call_sid = UnicodeAttribute(null=True)
        attempt_id = UnicodeAttribute(null=True)
        away_reason = UnicodeAttribute(null=True)
        misses = NumberAttribute(default=0)
        last_write = UnicodeAttribute(null=True)  # see Storage._update

    class GuardRecord(Model):
        Meta = _meta(prefix + "config", config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        owner = UnicodeAttribute(null=True)
        count = NumberAttribute(default=0)
        expires_ttl = TTLAttribute(null=True)

    class WaitingCallRecord(Model):
        Meta = _meta(prefix + "waiting-calls", config)
        call_sid = UnicodeAttribute(hash_key=True)
        ivr_name = UnicodeAttribute()
        queue_name = UnicodeAttribute()
        caller = UnicodeAttribute(default="")
        joined_at = UTCDateTimeAttribute()
        status = UnicodeAttribute(default=m.WAITING)
        waiting_queue = UnicodeAttribute(null=True)
        agent_id = UnicodeAttribute(null=True)
        agent_call_sid = UnicodeAttribute(null=True)
        offer_id = UnicodeAttribute(null=True)
        phase = UnicodeAttribute(null=True)
        expires_ttl = TTLAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see Storage._update
        by_queue = _time_ordered_index("waiting-by-queue", "waiting_queue", "joined_at")

    class CallbackRecord(Model):
        Meta = _meta(prefix + "callbacks", config)
        callback_id = UnicodeAttribute(hash_key=True)
        number = UnicodeAttribute()
        ivr_name = UnicodeAttribute()
        queue_name = UnicodeAttribute()
        requested_at = UTCDateTimeAttribute()
        place_in_line = UTCDateTimeAttribute()
        priority = NumberAttribute()
        due_at = UTCDateTimeAttribute()
        expires_at = UTCDateTimeAttribute()
        status = UnicodeAttribute()
        attempts = NumberAttribute(default=0)
        attempt_id = UnicodeAttribute(null=True)
        phase = UnicodeAttribute(null=True)
        agent_id = UnicodeAttribute(null=True)
        agent_call_sid = UnicodeAttribute(null=True)
        customer_call_sid = UnicodeAttribute(null=True)
        history = ListAttribute(of=_AttemptMap, default=list)
        ended_reason = UnicodeAttribute(null=True)
        ended_at = UTCDateTimeAttribute(null=True)
        list_key = UnicodeAttribute(default="CB")
        pending_queue = UnicodeAttribute(null=True)
        sweep_status = UnicodeAttribute(null=True)
        sweep_at = UTCDateTimeAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see Storage._update
        by_pending = _time_ordered_index("pending-by-queue", "pending_queue", "place_in_line")
        by_sweep = _time_ordered_index("sweep-by-status", "sweep_status", "sweep_at")
        by_status = _time_ordered_index("by-status", "status", "requested_at")
        by_requested = _time_ordered_index("by-requested", "list_key", "requested_at")

    return IvrRecord, AgentRecord, GuardRecord, WaitingCallRecord, CallbackRecord


def _build_entry_model(config):
    """A keyed-in number awaiting the caller's confirmation, by CallSid: kept out of URLs
    (and so out of every access log) and forgotten within minutes."""

    class EntryRecord(Model):
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True, default="ENTRY")
        sk = UnicodeAttribute(range_key=True)
        entry_id = UnicodeAttribute()
        number = UnicodeAttribute()
        expires_ttl = TTLAttribute()

    return EntryRecord


def _build_session_model(config):
    """Admin sessions live in the config table (pk "SESSION", sk the SHA-256 of the session
    id), removed by its TTL once idle; the app checks the times itself, as TTL deletion can
    lag by a day or more."""

    class SessionRecord(Model):
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True, default="SESSION")
        sk = UnicodeAttribute(range_key=True)
        username = UnicodeAttribute()
        password_tag = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        last_seen = UTCDateTimeAttribute()
        expires_ttl = TTLAttribute()

    return SessionRecord


def _build_departures_model(config):
    """How many pieces of work agents took from a queue's line in one bucket: counted by
    atomic ADDs, read by one Query of a few items."""

    class DeparturesRecord(Model):
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        bucket_start = UTCDateTimeAttribute()
        departures = NumberAttribute(default=0)
        expires_ttl = TTLAttribute()

    return DeparturesRecord


def _bucket_key(start):
    """Sort key of a bucket: its start, so a range condition selects recent buckets."""
    return start.strftime("%Y-%m-%dT%H:%M")


def _build_stats_model(config):
    """One queue's counters for one UTC hour: a number attribute per counted transition
    and per time-to-connected histogram bucket, each changed only by ADD."""
    attrs = {
        "Meta": _meta(config.CALLBACK_TABLE_PREFIX + "config", config),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "ivr_name": UnicodeAttribute(null=True),
        "expires_ttl": TTLAttribute(null=True),
        **{name: NumberAttribute(null=True) for name in stats.COUNTERS},
    }
    return type("StatsRecord", (Model,), attrs)


def _valid_key(value):
    """DynamoDB refuses empty key values and sort keys over 1,024 bytes: such a key names
    no record, so lookups by it answer NotFound instead of a DynamoDB error."""
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > 1024:
        raise NotFound(repr(value)[:80])
    return value


def _code(exc):
    """DynamoDB's error code, or None for errors that never got a response (timeouts,
    refused connections): PynamoDB's own `cause_response_code` fails on those, since
    botocore gives them `response=None`."""
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None
    return (response.get("Error") or {}).get("Code")


@contextmanager
def _dynamodb(conflict=None):
    """Turn PynamoDB and botocore errors into the domain's: a failed condition into
    Conflict(conflict) when the caller expects one, anything else into StorageError."""
    try:
        yield
    except (PynamoDBException, BotoCoreError) as exc:
        if conflict is not None and _code(exc) == CONDITION_FAILED:
            raise Conflict(conflict) from exc
        raise StorageError(f"{type(exc).__name__}: {exc}") from exc


def _outcome_unknown(exc):
    """True when DynamoDB may or may not have applied the request: no answer came (a
    timeout, a dropped connection) or it answered a server error."""
    code = _code(exc)
    return code is None or code in ("InternalServerError", "ServiceUnavailable")


class _IdempotentConnection(Connection):
    """The connection of transactions: each carries a client request token, and one whose
    outcome is in doubt (no answer, or a 500) is sent once more with the same token, which
    DynamoDB applies at most once. So a transaction applied although its answer was lost is
    not reported as failed, and its repeat never fails its own conditions."""

    def transact_write_items(self, *args, client_request_token=None, **kwargs):
        token = client_request_token or uuid.uuid4().hex
        try:
            return super().transact_write_items(*args, client_request_token=token, **kwargs)
        except TransactWriteError as exc:
            if not _outcome_unknown(exc):
                raise
            log.warning("a transaction's outcome is unknown (%s): sending it again, same token",
                        _code(exc) or "no answer")
        return super().transact_write_items(*args, client_request_token=token, **kwargs)


def _cancel_codes(exc):
    """Cancellation codes in PynamoDB's send order: condition checks, deletes, puts, updates.
    None at all when the transaction failed without an answer (a timeout)."""
    reasons = getattr(exc.cause, "cancellation_reasons", None) or ()
    return [reason.code if reason else None for reason in reasons]


def _failed(codes, index):
    return len(codes) > index and codes[index] in (CONDITION_FAILED, "ConditionalCheckFailed")


def _held_by_another_transaction(exc):
    """True when DynamoDB refused the whole request only because another transaction held
    one of its items (no condition failed)."""
    if _code(exc) == "TransactionConflictException":
        return True
    if isinstance(exc, TransactWriteError):
        codes = [code for code in _cancel_codes(exc) if code]
        return bool(codes) and all(code == "TransactionConflict" for code in codes)
    return False


def _retrying(write):
    """Run write(); again, after a short random pause, while another transaction held one of
    its items, up to CONFLICT_ATTEMPTS times in all."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return write()
        except PynamoDBException as exc:
            if attempt == CONFLICT_ATTEMPTS or not _held_by_another_transaction(exc):
                raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)


class Storage:
    """Records in DynamoDB, read and changed only through keyed reads, index queries and
    conditional writes."""

    def __init__(self, config):
        self.config = config
        (self.Ivr, self.AgentRec, self.Guard, self.Waiting, self.CallbackRec) = _build_models(config)
        self.Entry = _build_entry_model(config)
        self.Session = _build_session_model(config)


        self.DeparturesRec = _build_departures_model(config)
        self.Stats = _build_stats_model(config)
        self._connection = None

    @property
    def models(self):
        """Every model class, one per table shape (config shares one table)."""
        return (self.Ivr, self.Waiting, self.CallbackRec)

    def _tx(self):
        if self._connection is None:
            self._connection = _IdempotentConnection(region=self.config.AWS_REGION,
                                                     host=self.config.AWS_ENDPOINT_URL_DYNAMODB or None,
                                                     **_client_limits(self.config))
        return TransactWrite(connection=self._connection)

    def _transact(self, write):
        """Run `write(tx)` as one transaction; again while another transaction held one of
        its items (counted transitions share an hourly counter item, so they meet often)."""
        def run():
            with self._tx() as tx:
                write(tx)
        _retrying(run)

    # -- infrastructure -------------------------------------------------------------

    def create_tables(self):
        """Create the tables that do not exist yet (idempotent); return their names."""
        created = []
        for model in self.models:
            if not model.exists():
                model.create_table(wait=True)
                created.append(model.Meta.table_name)
        self._enable_ttl()
        return created

    def _enable_ttl(self):
        client = self.Ivr._get_connection().connection.client
        for model in (self.Ivr, self.Waiting):
            name = model.Meta.table_name
            current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                continue
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_ttl"},
            )

    def table_names(self):
        """The names of the tables this storage uses."""
        return [model.Meta.table_name for model in self.models]

    # -- IVRs --------------------------------------------------------------------------

    @staticmethod
    def _ivr_from(record):
        s = record.settings
        settings = CallbackSettings(
            callback_enabled=bool(s.callback_enabled),
            offer_after_seconds=int(s.offer_after_seconds),
            expiration_minutes=int(s.expiration_minutes),
            max_retries=int(s.max_retries),
            priority=None if s.priority is None else int(s.priority),
            retry_minutes=int(s.retry_minutes),
            transfer_timeout_seconds=int(s.transfer_timeout_seconds),
            entry_attempts=int(s.entry_attempts),
            offer_caller_id=bool(s.offer_caller_id),
            announce_as=s.announce_as or "",
            voice=s.voice or DEFAULT_VOICE,
            language=s.language or DEFAULT_LANGUAGE,
        )
        queues = tuple(
            m.Queue(q.name, record.sk, int(q.priority), bool(q.callback_enabled)) for q in record.queues
        )
        return m.Ivr(record.sk, tuple(record.numbers), record.greeting, queues, settings, record.version)

    def list_ivrs(self):
        """Every IVR, alphabetically, in one Query."""
        with _dynamodb():
            return [self._ivr_from(r) for r in self.Ivr.query("IVR")]

    def get_ivr(self, name):
        """One IVR by name."""
        with _dynamodb():
            try:
                return self._ivr_from(self.Ivr.get("IVR", _valid_key(name)))
            except DoesNotExist as exc:
                raise NotFound(name) from exc

    def save_ivr(self, ivr):
        """Create (version None) or update an IVR; a concurrent edit raises Conflict."""
        record = self.Ivr(
            "IVR",
            ivr.name,
            numbers=list(ivr.numbers),
            greeting=ivr.greeting,
            queues=[_QueueMap(name=q.name, priority=q.priority, callback_enabled=q.callback_enabled)
                    for q in ivr.queues],
            settings=_SettingsMap(**{**ivr.settings.as_dict(),
                                     "announce_as": ivr.settings.announce_as or None}),
        )
        if ivr.version is not None:
            record.version = ivr.version
        with _dynamodb(conflict=f"IVR {ivr.name} was changed by someone else"):
            record.save()
        return self._ivr_from(record)

    # -- agents ------------------------------------------------------------------------

    @staticmethod
    def _agent_from(r):
        return m.Agent(r.sk, r.name, r.phone, tuple(r.queues), r.status, r.status_changed_at,
                       r.work_kind, r.work_key, r.call_sid, r.attempt_id, r.away_reason,
                       int(r.misses or 0))

    def list_agents(self):
        """Every agent (one Query over the agents' partition)."""
        with _dynamodb():
            return [self._agent_from(r) for r in self.AgentRec.query("AGENT")]

    def get_agent(self, agent_id):
        """One agent by id."""
        with _dynamodb():
            try:
                return self._agent_from(self.AgentRec.get("AGENT", _valid_key(agent_id)))
            except DoesNotExist as exc:
                raise NotFound(agent_id) from exc

    def save_agent_profile(self, agent_id, *, name, phone, queues, now, create=False):
        """Create an agent (offline) or change who they are, leaving their status alone."""
        A = self.AgentRec
        with _dynamodb(conflict=agent_id):
            if create:
                A("AGENT", agent_id, name=name, phone=phone, queues=list(queues),
                  status=m.OFFLINE, status_changed_at=now).save(condition=A.sk.does_not_exist())
            else:
                A("AGENT", agent_id).update(
                    actions=[A.name.set(name), A.phone.set(phone), A.queues.set(list(queues))],
                    condition=A.sk.exists())
        return self.get_agent(agent_id)

    def set_agent_presence(self, agent_id, status, now):
        """Agent says available/offline; never while reserved or busy on a call."""
        A = self.AgentRec
        # Saying it themselves clears what the app noted when it set them away.
        self._update(A("AGENT", _valid_key(agent_id)),
                     [A.status.set(status), A.status_changed_at.set(now), A.away_reason.remove(),
                      A.misses.set(0)],
                     A.sk.exists() & A.status.is_in(m.OFFLINE, m.AVAILABLE))
        return self.get_agent(agent_id)

    def _agent_guard(self, attempt_id, call_sid=None):
        """Condition: the agent still holds this attempt (and this call, when both know it)."""
        A = self.AgentRec
        condition = A.status.is_in(m.RESERVED, m.BUSY)
        condition &= (A.attempt_id == attempt_id) if attempt_id else A.attempt_id.does_not_exist()
        if call_sid:
            condition &= (A.call_sid == call_sid) | A.call_sid.does_not_exist()
        return condition

    def agent_busy(self, agent_id, attempt_id, call_sid, now):
        """The agent accepted the work of this attempt: busy on it."""
        A = self.AgentRec
        self._update(A("AGENT", agent_id),
                     [A.status.set(m.BUSY), A.status_changed_at.set(now), A.call_sid.set(call_sid),
                      A.misses.set(0)],
                     self._agent_guard(attempt_id, call_sid))

    def set_agent_call(self, agent_id, attempt_id, call_sid):
        """Remember the call that rings an agent for this attempt."""
        A = self.AgentRec
        self._update(A("AGENT", agent_id), [A.call_sid.set(call_sid)],
                     self._agent_guard(attempt_id, call_sid))

    def release_agent(self, agent_id, *, now, attempt_id, call_sid=None, status=m.AVAILABLE,
                      away_reason=None, misses=0):
        """End an agent's reservation or call for one attempt; a stale or repeated event
        (another attempt, another call) changes nothing. True when this released them."""
        A = self.AgentRec
        actions = [A.status.set(status), A.status_changed_at.set(now), A.work_kind.remove(),
                   A.work_key.remove(), A.call_sid.remove(), A.attempt_id.remove(),
                   A.misses.set(misses)]
        actions.append(A.away_reason.set(away_reason) if away_reason else A.away_reason.remove())
        try:
            self._update(A("AGENT", agent_id), actions, self._agent_guard(attempt_id, call_sid))
            return True
        except Conflict:
            return False

    # -- waiting calls -----------------------------------------------------------------

    @staticmethod
    def _waiting_from(r):
        return m.WaitingCall(r.call_sid, r.ivr_name, r.queue_name, r.caller, r.joined_at, r.status,
                             r.agent_id, r.agent_call_sid, r.offer_id, r.phase)

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
            self._remove_counted(call, self.Waiting.call_sid.exists(), event, now)

    def _remove_counted(self, call, condition, event, now):
        """Delete a waiting call on `condition` and count `event` at `now` in the same
        transaction; False when the condition failed (nothing written, nothing counted)."""
        W = self.Waiting
        with _dynamodb():
            def write(tx):
                tx.delete(W(call.call_sid), condition=condition)
                self._count(tx, call.queue_name, call.ivr_name, now, {event: 1})
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

    def advance_offer(self, call, *, phase, agent_call_sid=None):
        """Move the caller's offer to another open phase (and learn the agent's CallSid)."""
        W = self.Waiting
        actions = [W.phase.set(phase)]
        if agent_call_sid and agent_call_sid != call.agent_call_sid:
            actions.append(W.agent_call_sid.set(agent_call_sid))
        self._update(W(call.call_sid), actions, self._offer_as_read(call))

    def end_offer(self, call, *, back_in_line, answered_at=None):
        """Close the caller's offer: waiting again at the same place, or out of the line
        (hung up on the way, or with `answered_at` joined the agent: counted answered once,
        with the removal). Conflict when the offer has moved on."""
        W = self.Waiting
        moved_on = "the offer has moved on"
        if back_in_line:
            self._update(W(call.call_sid),
                         [W.status.set(m.WAITING), W.waiting_queue.set(call.queue_name),
                          W.agent_id.remove(), W.agent_call_sid.remove(), W.offer_id.remove(),
                          W.phase.remove()],
                         self._offer_as_read(call))
        elif answered_at is None:
            with _dynamodb(conflict=moved_on):
                _retrying(lambda: W(call.call_sid).delete(condition=self._offer_as_read(call)))
        elif not self._remove_counted(call, self._offer_as_read(call), stats.ANSWERED, answered_at):
            raise Conflict(moved_on)

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

    # -- callbacks ---------------------------------------------------------------------

    @staticmethod
    def _callback_from(r):
        history = tuple(
            m.Attempt(a.attempt_id, a.started_at, a.agent_id, a.outcome, a.ended_at, bool(a.counted),
                      a.agent_call_sid, a.customer_call_sid,
                      None if a.error_code is None else int(a.error_code))
            for a in (r.history or []))
        return m.Callback(
            r.callback_id, r.number, r.ivr_name, r.queue_name, r.requested_at, r.place_in_line,
            int(r.priority), r.due_at, r.expires_at, r.status, int(r.attempts or 0), r.attempt_id,
            r.phase, r.agent_id, r.agent_call_sid, r.customer_call_sid, history, r.ended_reason,
            r.ended_at, r.sweep_at)

    def _guard_key(self, queue_name, number):
        return self.Guard(f"PENDING#{queue_name}", number)

    def create_callback(self, callback, waiting_call_sid):
        """Store a new pending callback, claim its number's slot in the queue and take the
        caller out of the waiting list, all or nothing.

        The waiting call is deleted only while it still waits: a caller an agent is being
        connected to gets no callback ("agent-connecting"). A guard left by a callback that
        has ended no longer blocks the number: it is replaced, on the owner it was read with.
        """
        C, G, W = self.CallbackRec, self.Guard, self.Waiting
        record = C(callback.callback_id, number=callback.number, ivr_name=callback.ivr_name,
                   queue_name=callback.queue_name, requested_at=callback.requested_at,
                   place_in_line=callback.place_in_line, priority=callback.priority,
                   due_at=callback.due_at, expires_at=callback.expires_at, status=m.PENDING,
                   attempts=0, history=[], pending_queue=callback.queue_name,
                   sweep_status=m.PENDING, sweep_at=min(callback.due_at, callback.expires_at))
        still_waiting = W.call_sid.does_not_exist() | (W.status == m.WAITING)
        guard_free = G.sk.does_not_exist()
        for _ in range(MAX_GUARD_TRIES):
            guard = self._guard_key(callback.queue_name, callback.number)
            guard.owner = callback.callback_id
            with _dynamodb():
                def write(guard=guard, guard_free=guard_free):
                    with self._tx() as tx:
                        tx.save(record, condition=C.callback_id.does_not_exist())
                        tx.save(guard, condition=guard_free)
                        tx.delete(W(waiting_call_sid), condition=still_waiting)
                        self._count(tx, callback.queue_name, callback.ivr_name, callback.requested_at,
                                    {stats.REQUESTED: 1})

                try:
                    _retrying(write)
                except TransactWriteError as exc:
                    codes = _cancel_codes(exc)  # [delete waiting call, put callback, put guard]
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

    def _keep_existing(self, existing, waiting_call_sid, callback):
        """The number has a live callback: the caller leaves the line for it (the request
        counted once as already pending, with the removal), unless an agent is already being
        connected to them."""
        W = self.Waiting

        def write():
            with self._tx() as tx:
                tx.delete(W(waiting_call_sid), condition=W.status == m.WAITING)
                self._count(tx, callback.queue_name, callback.ivr_name, callback.requested_at,
                            {stats.ALREADY_PENDING: 1})

        with _dynamodb():
            try:
                _retrying(write)
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
        """One callback by id."""
        with _dynamodb():
            try:
                return self._callback_from(self.CallbackRec.get(_valid_key(callback_id),
                                                                consistent_read=True))
            except DoesNotExist as exc:
                raise NotFound(callback_id) from exc

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
        flt = (C.ivr_name == ivr_name) if ivr_name else None
        index, key = (C.by_status, status) if status else (C.by_requested, "CB")
        with _dynamodb():
            results = index.query(key, filter_condition=flt, scan_index_forward=False,
                                  limit=limit, last_evaluated_key=start_key, page_size=limit)
            items = [self._callback_from(r) for r in results]
            return items, results.last_evaluated_key

    # -- claiming work: agent and work change together or not at all --------------------

    def _claim(self, agent, now, work_kind, work_key, attempt_id, work, work_actions, work_condition):
        """Reserve an available agent for a piece of work and change the work in the same
        transaction; Conflict when either has moved on."""
        A = self.AgentRec
        with _dynamodb():
            try:
                with self._tx() as tx:
                    tx.update(A("AGENT", agent.agent_id),
                              actions=[A.status.set(m.RESERVED), A.status_changed_at.set(now),
                                       A.work_kind.set(work_kind), A.work_key.set(work_key),
                                       A.attempt_id.set(attempt_id), A.call_sid.remove()],
                              condition=A.status == m.AVAILABLE)
                    tx.update(work, actions=work_actions, condition=work_condition)
            except TransactWriteError as exc:
                # Not run again on TransactionConflict: another dispatcher holds this agent
                # or this work, so the claim is lost and the dispatcher looks elsewhere.
                if any(code in (CONDITION_FAILED, "ConditionalCheckFailed", "TransactionConflict")
                       for code in _cancel_codes(exc)):
                    raise Conflict("claim lost") from exc
                raise

    def claim_callback(self, agent, callback, attempt_id, now, dial_deadline, phase=AGENT_RINGING):
        """Reserve an available agent and move a due pending callback to dialing, atomically."""
        C = self.CallbackRec
        attempt = _AttemptMap(attempt_id=attempt_id, started_at=now, agent_id=agent.agent_id)
        self._claim(agent, now, "callback", callback.callback_id, attempt_id, C(callback.callback_id),
                    [C.status.set(m.DIALING), C.phase.set(phase), C.attempt_id.set(attempt_id),
                     C.agent_id.set(agent.agent_id), C.agent_call_sid.remove(),
                     C.customer_call_sid.remove(), C.pending_queue.remove(),
                     C.sweep_status.set(m.DIALING), C.sweep_at.set(dial_deadline),
                     C.history.set(C.history.append([attempt]))],
                    (C.status == m.PENDING) & (C.due_at <= now) & (C.expires_at > now))
        self._departed(callback.queue_name, now)

    def claim_waiting_call(self, agent, call, now, offer_id=None, phase=AGENT_RINGING):
        """Reserve an available agent and take a holding caller for them (offer `offer_id`,
        its agent ringing), atomically."""
        W = self.Waiting
        offer_id = offer_id or uuid.uuid4().hex[:16]
        self._claim(agent, now, "call", call.call_sid, offer_id, W(call.call_sid),
                    [W.status.set(m.CONNECTING), W.waiting_queue.remove(), W.agent_id.set(agent.agent_id),
                     W.offer_id.set(offer_id), W.phase.set(phase), W.agent_call_sid.remove()],
                    W.status == m.WAITING)
        self._departed(call.queue_name, now)

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

    # -- callback attempts: every write conditional on the attempt exactly as read ------

    def _update(self, record, actions, condition):
        """A conditional update. Each one also writes a fresh token to `last_write`: when the
        answer never came (a timeout after DynamoDB applied it, or a 500), the record read
        back says whether this very write landed, so an applied write is never reported as
        failed (and no retry of it fails its own condition)."""
        token = uuid.uuid4().hex
        actions = [*actions, type(record).last_write.set(token)]
        try:
            with _dynamodb(conflict=f"{type(record).__name__} is not in the expected state"):
                _retrying(lambda: record.update(actions=actions, condition=condition,
                                                add_version_condition=False))
        except StorageError as exc:
            in_doubt = not isinstance(exc, Conflict) and _outcome_unknown(exc.__cause__)
            if not (in_doubt and self._landed(record, token)):
                raise
            log.warning("a %s update was applied although its answer was lost", type(record).__name__)
        return record

    @staticmethod
    def _landed(record, token):
        """True when the record, read back, carries the token of the write in doubt."""
        try:
            with _dynamodb():
                record.refresh(consistent_read=True)
        except StorageError:  # unreachable still, or no such record
            return False
        return record.last_write == token

    def _as_read(self, cb):
        """Condition: the callback's attempt, status, phase and both CallSids are still
        what `cb` says, so a write computed from a stale read loses instead of landing."""
        C = self.CallbackRec
        condition = (C.attempt_id == cb.attempt_id) & (C.status == cb.status)
        for attr, value in ((C.phase, cb.phase), (C.agent_call_sid, cb.agent_call_sid),
                            (C.customer_call_sid, cb.customer_call_sid)):
            condition &= (attr == value) if value else attr.does_not_exist()
        return condition

    def _learned(self, cb, i, agent_call_sid, customer_call_sid):
        C = self.CallbackRec
        actions = []
        if agent_call_sid and agent_call_sid != cb.agent_call_sid:
            actions += [C.agent_call_sid.set(agent_call_sid), C.history[i].agent_call_sid.set(agent_call_sid)]
        if customer_call_sid and customer_call_sid != cb.customer_call_sid:
            actions += [C.customer_call_sid.set(customer_call_sid),
                        C.history[i].customer_call_sid.set(customer_call_sid)]
        return actions

    @staticmethod
    def _index(cb):
        for i, attempt in enumerate(cb.history):
            if attempt.attempt_id == cb.attempt_id:
                return i
        raise Conflict(f"attempt {cb.attempt_id} not on callback {cb.callback_id}")

    def advance_attempt(self, cb, *, phase, sweep_at, agent_call_sid=None, customer_call_sid=None,
                        connected=False, now=None):
        """Move the current attempt to another open state (and learn its CallSids); the
        move to connected, at `now`, is counted for the wallboard."""
        C = self.CallbackRec
        i = self._index(cb)
        status = m.CONNECTED if connected else cb.status
        actions = [C.phase.set(phase), C.status.set(status), C.sweep_status.set(status),
                   C.sweep_at.set(sweep_at)]
        actions += self._learned(cb, i, agent_call_sid, customer_call_sid)
        if connected and cb.status != m.CONNECTED:
            actions.append(C.history[i].outcome.set("connected"))
            counts = {stats.CONNECTED: 1,
                      stats.wait_bucket((now - cb.requested_at).total_seconds()): 1}
            if cb.attempts == 0:
                counts[stats.FIRST_ATTEMPT_CONNECTED] = 1
            self._update_counted(cb, actions, self._as_read(cb), now, counts)
            return
        self._update(C(cb.callback_id), actions, self._as_read(cb))

    def end_attempt(self, cb, *, outcome, counted, now, decision, agent_call_sid=None,
                    customer_call_sid=None, error_code=None):
        """Close the current attempt: back to pending at `decision.due_at`, or ended with
        `decision.status`. Returns the callback's new status."""
        C = self.CallbackRec
        i = self._index(cb)
        closing = [C.history[i].outcome.set(outcome), C.history[i].ended_at.set(now),
                   C.history[i].counted.set(counted),
                   C.attempts.set(cb.attempts + (1 if counted else 0))]
        closing += self._learned(cb, i, agent_call_sid, customer_call_sid)
        if error_code is not None:
            closing.append(C.history[i].error_code.set(error_code))
        condition = self._as_read(cb)
        if decision.expire:
            self._update_ending(cb, closing, condition, status=decision.status,
                                reason=decision.reason, now=now)
            return decision.status
        due = decision.due_at
        self._update(C(cb.callback_id),
                     closing + [C.status.set(m.PENDING), C.due_at.set(due),
                                C.pending_queue.set(cb.queue_name), C.phase.remove(),
                                C.sweep_status.set(m.PENDING),
                                C.sweep_at.set(min(due, cb.expires_at))],
                     condition)
        return m.PENDING

    def _update_counted(self, callback, actions, condition, now, counts):
        """A conditional callback update and its counters, in one transaction: the write
        that loses its condition counts nothing."""
        C = self.CallbackRec
        with _dynamodb():
            def write(tx):
                tx.update(C(callback.callback_id), actions=actions, condition=condition)
                self._count(tx, callback.queue_name, callback.ivr_name, now, counts)
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if _failed(_cancel_codes(exc), 0):
                    raise Conflict(f"callback {callback.callback_id} is not in the expected state") from exc
                raise

    def complete_attempt(self, cb, now):
        """The conversation ended: the callback is done."""
        C = self.CallbackRec
        i = self._index(cb)
        self._update_ending(cb, [C.history[i].outcome.set("completed"), C.history[i].ended_at.set(now),
                                 C.phase.remove()],
                            self._as_read(cb), status=m.COMPLETED, reason="completed", now=now)

    def _update_ending(self, callback, actions, condition, *, status, reason, now):
        """Final status: leave every work index and free the number's pending slot."""
        C = self.CallbackRec
        actions = actions + [C.status.set(status), C.ended_reason.set(reason), C.ended_at.set(now),
                             C.pending_queue.remove(), C.sweep_status.remove(), C.sweep_at.remove()]
        counter = stats.ending(status, reason)
        counts = {counter: 1} if counter else {}

        def write():
            with self._tx() as tx:
                tx.update(C(callback.callback_id), actions=actions, condition=condition)
                tx.delete(self._guard_key(callback.queue_name, callback.number),
                          condition=self.Guard.owner == callback.callback_id)
                self._count(tx, callback.queue_name, callback.ivr_name, now, counts)

        with _dynamodb():
            try:
                _retrying(write)
            except TransactWriteError as exc:
                codes = _cancel_codes(exc)  # [delete guard, update callback, count]
                if _failed(codes, 1):
                    raise Conflict(f"callback {callback.callback_id} moved on") from exc
                if not _failed(codes, 0):
                    raise
                # The guard is gone or belongs to another callback: end this one regardless.
                self._update_counted(callback, actions, condition, now, counts)

    def postpone_sweep(self, cb, sweep_at):
        """Look at this attempt again later (nothing about it has changed)."""
        C = self.CallbackRec
        self._update(C(cb.callback_id), [C.sweep_at.set(sweep_at)], self._as_read(cb))

    def expire_callback(self, callback, now, reason="expiration-time"):
        """End a pending callback whose expiration time has come."""
        C = self.CallbackRec
        self._update_ending(callback, [], (C.status == m.PENDING) & (C.expires_at <= now),
                            status=m.EXPIRED, reason=reason, now=now)

    def cancel_callback(self, callback_id, now):
        """An admin cancels a pending callback."""
        C = self.CallbackRec
        callback = self.get_callback(callback_id)
        self._update_ending(callback, [], C.status == m.PENDING, status=m.CANCELED,
                            reason="canceled by admin", now=now)
        return self.get_callback(callback_id)

    # -- wallboard counters ---------------------------------------------------------------

    def _count(self, tx, queue_name, ivr_name, when, counts):
        """Add `counts` ({counter: n}) to a queue's bucket of the hour `when` falls in, as part
        of transaction `tx`: the counters move only if the state change they count is written,
        so a retried Lambda or a duplicate status callback counts nothing twice."""
        if not counts:
            return
        S = self.Stats
        tx.update(S(f"HOURLY#{queue_name}", stats.hour_key(when)),
                  actions=[S.ivr_name.set(ivr_name),
                           S.expires_ttl.set(stats.hour_of(when) + STATS_LIFETIME),
                           *(getattr(S, name).add(n) for name, n in counts.items())])

    def hourly_counts(self, queue_name, since, until):
        """A queue's hourly counters from the hour of `since` to that of `until` (one Query
        of at most that many small items), as [{"hour": datetime, counter: n, …}]."""
        S = self.Stats
        with _dynamodb():
            records = S.query(f"HOURLY#{queue_name}",
                              S.sk.between(stats.hour_key(since), stats.hour_key(until)))
            return [{"hour": stats.hour_from_key(r.sk),
                     **{name: int(getattr(r, name) or 0) for name in stats.COUNTERS}}
                    for r in records]

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

    # -- sign-in: login throttles and admin sessions -------------------------------------

    def take_login_attempt(self, key, now, window, limit):
        """Take one of `limit` login attempts for a throttle key in its window (which opens at
        its first attempt and lasts `window`); False once all are taken. Each attempt is
        granted by one conditional write that both checks and counts, so any number of
        concurrent requests get at most `limit` between them."""
        G = self.Guard
        for _ in range(2):
            with _dynamodb():
                try:
                    G("LOGIN", key).update(actions=[G.count.add(1)],
                                           condition=G.sk.exists() & (G.expires_ttl > now) & (G.count < limit))
                    return True
                except UpdateError as exc:
                    if _code(exc) != CONDITION_FAILED:
                        raise
                try:
                    G("LOGIN", key, count=1, expires_ttl=now + window).save(
                        condition=G.sk.does_not_exist() | (G.expires_ttl <= now))
                    return True
                except PutError as exc:
                    if _code(exc) != CONDITION_FAILED:
                        raise
            # Both lost: the window is full, or another request just opened a fresh one
            # between our two writes, and the next round takes a place in it.
        return False

    def clear_login_attempts(self, key):
        """Forget a throttle key's attempts after a successful login."""
        with _dynamodb():
            self.Guard("LOGIN", key).delete()

    def create_session(self, session):
        """Store a new admin session (its id is a fresh random hash: never overwritten)."""
        S = self.Session
        with _dynamodb(conflict="session id taken"):
            S("SESSION", session.key, username=session.username, password_tag=session.password_tag,
              created_at=session.created_at, last_seen=session.last_seen,
              expires_ttl=session.expires_at).save(condition=S.sk.does_not_exist())

    def get_session(self, key):
        """An admin session by the hash of its id, or None (one strongly consistent read, so
        a logout is seen at once)."""
        with _dynamodb():
            try:
                r = self.Session.get("SESSION", _valid_key(key), consistent_read=True)
            except (DoesNotExist, NotFound):
                return None
        return m.AdminSession(r.sk, r.username, r.password_tag, r.created_at, r.last_seen, r.expires_ttl)

    def touch_session(self, key, now, expires_at):
        """Move a live session's idle deadline; Conflict if it was ended meanwhile (a touch
        must never bring back a session that logout removed)."""
        S = self.Session
        with _dynamodb(conflict="session ended"):
            S("SESSION", key).update(actions=[S.last_seen.set(now), S.expires_ttl.set(expires_at)],
                                     condition=S.sk.exists())

    def end_session(self, key):
        """Revoke an admin session."""
        with _dynamodb():
            self.Session("SESSION", _valid_key(key)).delete()
