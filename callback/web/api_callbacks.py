"""Callbacks from a CRM or a website: `POST /api/callbacks` with an Idempotency-Key, on the
API's own blueprint (its bearer token and JSON errors).

The key follows the IETF draft "The Idempotency-Key HTTP Header Field": a repeat with the
same key and body answers the first answer (status and body); the same key with another
body answers 422; the same key while the first request still runs answers 409. Keys are
scoped to the caller's token (by its id) and expire after KEY_LIFETIME.
"""
import hashlib
import json
import logging
import uuid
from datetime import timedelta

from flask import g, jsonify, request

from callback.domain import records as m
from callback.domain.callback_requests import check_request, timing
from callback.domain.numbers import mask
from callback.domain.texts import CONFIRMATION
from callback.storage import Conflict, CreateResult, NotFound, StorageError
from callback.web.api import ApiError, bp, callback_json, json_body, services, token_required

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
KEY_LIFETIME = timedelta(hours=24)
# A claim older than this belongs to a request that died (a Lambda runs 30 s at most): a
# retry may run it again, keeping the callback id the first run may have stored.
RUNNING_LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


def _key():
    """The request's Idempotency-Key: required (see the README), printable ASCII."""
    key = request.headers.get(KEY_HEADER, "").strip()
    # The draft sends it as a Structured Field string: take the quotes off.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise ApiError(400, "an Idempotency-Key header is required",
                       {KEY_HEADER: "a unique value per request, such as a UUID"})
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(400, "invalid Idempotency-Key", {KEY_HEADER: f"1 to {MAX_KEY_LENGTH} printable ASCII "
                                                                    "characters"})
    return key


class _MaybeStored(StorageError):
    """The store's answer was lost and reading the callback back failed too."""


def _scope():
    """Whose keys: the caller's token (its id; the bootstrap token's hash, never the token)."""
    return g.api_caller.scope


def _fingerprint(body):
    """The body as the key's fingerprint: its JSON in one canonical form, with the route."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _answer(status, payload):
    response = jsonify(payload)
    response.status_code = status
    return response


@bp.post("/callbacks")
@token_required
def create_callback():
    """Ask for a callback: {"queue", "number", "name"?, "reason"?, "window"?: {earliest, latest}}."""
    key, body = _key(), json_body()
    svc, scope = services(), _scope()
    now = svc.clock.now()
    number = body.get("number") if isinstance(body.get("number"), str) else None
    claim = svc.storage.claim_key(scope, key, _fingerprint(body), now, lifetime=KEY_LIFETIME,
                                  lease=RUNNING_LEASE, resource_id=m.API_ID_PREFIX + uuid.uuid4().hex,
                                  number=number.strip()[:32] if number else None)
    if claim.outcome == "mismatch":
        raise ApiError(422, "this Idempotency-Key came with another body",
                       {KEY_HEADER: "use a new key for a new request"})
    if claim.outcome == "running":
        raise ApiError(409, "a request with this Idempotency-Key is still being processed; retry later",
                       {KEY_HEADER: "in use"})
    if claim.outcome == "done":
        response = _answer(claim.status, json.loads(claim.body))
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        status, payload = create_checked(body, claim.resource_id, now)
    except ApiError as exc:
        status, payload = exc.status, {"error": exc.message, "fields": exc.fields, **exc.extra}
    except _MaybeStored:
        raise  # the claim stays: a retry after RUNNING_LEASE reruns it under the same callback id
    except BaseException:
        # No answer worth repeating (storage down, a bug): a retry runs the request again.
        svc.storage.release_key(scope, key, claim.owner)
        raise
    try:
        svc.storage.finish_key(scope, key, claim.owner, status, json.dumps(payload))
    except (Conflict, StorageError):
        # The answer still holds: a retry after the lease reruns it and finds the same callback.
        log.warning("could not store the answer to an Idempotency-Key", exc_info=True)
    return _answer(status, payload)


def create_checked(body, callback_id, now, ivrs=None):
    """(status, payload) of a checked, stored request; ApiError for anything else. `ivrs`: the
    IVRs whose queues it may name (every IVR; the public page passes its own)."""
    svc = services()
    asked, errors = check_request(body, svc.storage.list_ivrs() if ivrs is None else ivrs, now)
    if errors:
        raise ApiError(400, "invalid callback", errors)
    ivr, queue, settings = asked.ivr, asked.queue, asked.ivr.settings
    if not (settings.callback_enabled and queue.callback_enabled):
        raise ApiError(409, "callbacks are off for this queue", {"queue": "callbacks are off"})
    place, due, expires = timing(asked, now)
    window = asked.window or (None, None)
    callback = m.Callback(
        callback_id=callback_id, number=asked.number, ivr_name=ivr.name, queue_name=queue.name,
        requested_at=now, place_in_line=place, priority=settings.priority_for(queue.priority),
        due_at=due, expires_at=expires, window_start=window[0], window_end=window[1],
        name=asked.name, reason=asked.reason)
    try:
        result = svc.storage.create_callback(callback, callback_id, slot_capacity=settings.slot_capacity)
    except StorageError as exc:
        result = CreateResult("created", _stored_anyway(callback, exc))
    log.info("API callback %s for %s in %s: %s", callback_id, mask(asked.number), queue.name, result.outcome)
    if result.outcome == "slot-full":
        raise ApiError(409, "that half-hour is fully booked", {"window": "choose another time"})
    if result.outcome == "number-pending":
        raise ApiError(409, "this number already has a pending callback in this queue",
                       {"number": "has a pending callback"},
                       extra={"callback": callback_json(result.callback)} if result.callback else None)
    if result.outcome not in ("created", "same-call"):
        raise StorageError(f"unexpected outcome {result.outcome}")
    if result.outcome == "created":
        svc.handoff.dispatch([queue.name])
        # Texted as a caller's is, when the IVR texts its customers.
        svc.dispatcher.text_about(result.callback, CONFIRMATION)
    return 201, {"callback": callback_json(result.callback)}


def _stored_anyway(callback, failure):
    """After a failed store: the callback when the write landed all the same (its answer was
    lost); the `failure` again when it surely did not, _MaybeStored when that is unknown."""
    try:
        stored = services().storage.get_callback(callback.callback_id)
    except NotFound:
        raise failure from None
    except StorageError as exc:
        raise _MaybeStored(f"callback {callback.callback_id} may have been stored") from exc
    log.warning("callback %s was stored although DynamoDB's answer was lost", callback.callback_id)
    return stored
