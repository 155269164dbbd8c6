"""The DynamoDB plumbing every storage module shares: one botocore client per process and
endpoint, the one translation of PynamoDB and botocore errors into the domain's, and the
two ways a state change is written safely (a conditional update read back when its answer
was lost; a transaction carrying its client request token), with retries while another
transaction holds an item.

One client: PynamoDB opens a botocore session per model class (and thread), and each new
session parses DynamoDB's service description again (about 0.45 s of CPU per cold Lambda
container for all the models). Here every model's connection and the transactions' one
share a single session and a single low-level client per endpoint and client limits.
botocore clients are thread-safe; creating them is not, so it happens under a lock.
The session is made once: credentials and AWS config files are read when the first client
is created (on Lambda they never change), and an in-process AWS mock must be started
before the first client (the local run and the bench start moto first).
"""
import logging
import random
import threading
import time
import uuid
from contextlib import contextmanager

import botocore.session
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from callback.clock import SystemClock

log = logging.getLogger(__name__)

CONDITION_FAILED = "ConditionalCheckFailedException"
# DynamoDB refuses a write while another transaction holds its item: a single write with
# TransactionConflictException, a transaction with the TransactionConflict cancellation
# reason. Nothing was written, so the write runs again, a bounded number of times.
# (DynamoDB Local serializes requests and moto checks nothing: neither ever answers so.)
CONFLICT_ATTEMPTS = 3


class StorageError(Exception):
    """DynamoDB could not be reached or refused the request."""


class Conflict(StorageError):
    """A conditional write lost: the record was not in the expected state."""


class NotFound(StorageError):
    """No such record."""


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


# -- one botocore session and one client per endpoint and limits, for the process --------

_lock = threading.Lock()
_session = None
_clients = {}


def _lacks_credentials(client):
    """botocore keeps a client whose credentials failed to load (an instance-metadata
    hiccup) without credentials for good: such a client is replaced, as PynamoDB does."""
    signer = client._request_signer
    return bool(signer) and not signer._credentials


def botocore_session():
    """The process's one botocore session (the Parameter Store read at start-up uses it too)."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                _session = botocore.session.get_session()
    return _session


def shared_client(region, host, *, connect_timeout_seconds, read_timeout_seconds, max_retry_attempts,
                  max_pool_connections):
    """The process's DynamoDB client for this endpoint and these limits, created once
    (configured as PynamoDB configures its own: no parameter validation, standard retries)."""
    key = (region, host or None, connect_timeout_seconds, read_timeout_seconds, max_retry_attempts,
           max_pool_connections)
    client = _clients.get(key)
    if client is not None and not _lacks_credentials(client):
        return client
    session = botocore_session()
    with _lock:
        client = _clients.get(key)
        if client is None or _lacks_credentials(client):
            config = BotocoreConfig(parameter_validation=False, connect_timeout=connect_timeout_seconds,
                                    read_timeout=read_timeout_seconds, max_pool_connections=max_pool_connections,
                                    retries={"total_max_attempts": 1 + max_retry_attempts, "mode": "standard"})
            client = session.create_client("dynamodb", region, endpoint_url=host or None, config=config)
            _clients[key] = client
        return client


class SharedConnection(Connection):
    """A PynamoDB connection whose botocore client is the process's shared one."""

    def __init__(self, region, host, *, connect_timeout_seconds, read_timeout_seconds, max_retry_attempts,
                 max_pool_connections=None):
        super().__init__(region=region, host=host or None, connect_timeout_seconds=connect_timeout_seconds,
                         read_timeout_seconds=read_timeout_seconds, max_retry_attempts=max_retry_attempts,
                         max_pool_connections=max_pool_connections)
        self._limits = {"connect_timeout_seconds": self._connect_timeout_seconds,
                        "read_timeout_seconds": self._read_timeout_seconds,
                        "max_retry_attempts": self._max_retry_attempts_exception,
                        "max_pool_connections": self._max_pool_connections}

    @property
    def client(self):
        return shared_client(self.region, self.host, **self._limits)


class _IdempotentConnection(SharedConnection):
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


# -- errors ---------------------------------------------------------------------------------

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


# -- the writes every aggregate uses ---------------------------------------------------------

class StorageBase:
    """What every aggregate's storage shares: the configuration, the transaction connection
    and the two safe ways to write. The model classes are set by `Storage.__init__`."""

    def __init__(self, config):
        self.config = config
        self._connection = None
        # What reads compare TTLs with (the app's clock, set by wiring): an item past its
        # TTL is gone for the app even before DynamoDB deletes it.
        self.clock = SystemClock()

    def _tx(self):
        if self._connection is None:
            self._connection = _IdempotentConnection(self.config.AWS_REGION,
                                                     self.config.AWS_ENDPOINT_URL_DYNAMODB or None,
                                                     **_client_limits(self.config))
        return TransactWrite(connection=self._connection)

    def _counted(self, counts):
        """Told what counters a landed transaction moved (CounterStorage reports them)."""

    def _transact(self, write):
        """Run `write(tx)` as one transaction; again while another transaction held one of
        its items (counted transitions share an hourly counter item, so they meet often)."""
        counted = []

        def run():
            counted.clear()
            with self._tx() as tx:
                tx.counted = counted  # the counters `write` moves, told to CloudWatch once it landed
                write(tx)
        _retrying(run)
        for counts in counted:
            self._counted(counts)

    @staticmethod
    def _field_actions(model, set_, remove):
        """Update actions on `model`'s attributes, by name: set ({name: value}), then remove."""
        return ([getattr(model, name).set(value) for name, value in set_.items()]
                + [getattr(model, name).remove() for name in remove])

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
