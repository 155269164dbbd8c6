"""The API's Idempotency-Keys (pk "IDEM", sk "<scope>#<key>", in the config table): a
request claims its key with a conditional put, runs, then stores its answer on the claim
it still owns; a repeat reads the claim. Safe across Lambdas: two requests with one key
never both run, whichever container each lands in.

A stored answer shows the request's number in full (the API is for admins): the claim
carries the number, so that forgetting it deletes those answers too (one Query of the
keys of the last day or so, filtered by number; keys expire after a day).
"""
import uuid
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from callback.storage.client import Conflict, StorageBase, StorageError, _dynamodb

RUNNING, DONE = "running", "done"
# A claim taken over from a request that died this many times in a row means another
# request keeps taking it: answer "running".
MAX_CLAIM_TRIES = 3


def _sort_key(scope, key):
    return f"{scope}#{key}"


@dataclass(frozen=True)
class KeyClaim:
    """What claiming a key found: "new" (run the request, as `owner`), "running" (another
    request with this key is under way), "mismatch" (the key came with another body) or
    "done" (its first answer: `status`, `body`)."""

    outcome: str
    owner: str | None = None
    resource_id: str | None = None
    status: int | None = None
    body: str | None = None


class IdempotencyStorage(StorageBase):
    """Idempotency-Keys, each scoped to the caller (a hash of its token)."""

    def claim_key(self, scope, key, fingerprint, now, *, lifetime, lease, resource_id, number=None):
        """Claim `key` for a request whose body hashes to `fingerprint`. A new or expired key
        is claimed with `resource_id` (the id of what the request will create); a running
        claim older than `lease` belongs to a request that died: it is taken over with its
        own resource id, so the rerun finds what the first run may have stored."""
        I = self.Idem
        owner = uuid.uuid4().hex
        record = I("IDEM", _sort_key(scope, key), fingerprint=fingerprint, state=RUNNING, owner=owner,
                   started_at=now, resource_id=resource_id, number=number, expires_at=now + lifetime,
                   expires_ttl=now + lifetime)
        for _ in range(MAX_CLAIM_TRIES):
            try:
                with _dynamodb(conflict="key taken"):
                    record.save(condition=I.sk.does_not_exist() | (I.expires_at <= now))
                return KeyClaim("new", owner, resource_id)
            except Conflict:
                pass
            current = self._read_key(scope, key)
            if current is None:
                continue  # released meanwhile: claim it afresh
            if current.fingerprint != fingerprint:
                return KeyClaim("mismatch")
            if current.state == DONE:
                return KeyClaim("done", status=int(current.status), body=current.body)
            if current.started_at > now - lease:
                return KeyClaim("running")
            try:
                self._update(I(current.pk, current.sk), [I.owner.set(owner), I.started_at.set(now)],
                             (I.state == RUNNING) & (I.owner == current.owner))
                return KeyClaim("new", owner, current.resource_id)
            except Conflict:
                continue
        return KeyClaim("running")

    def _read_key(self, scope, key):
        with _dynamodb():
            try:
                return self.Idem.get("IDEM", _sort_key(scope, key), consistent_read=True)
            except DoesNotExist:
                return None

    def finish_key(self, scope, key, owner, status, body):
        """Store the answer of the request that claimed `key` as `owner`; Conflict when the
        claim is no longer its own (taken over after its lease)."""
        I = self.Idem
        self._update(I("IDEM", _sort_key(scope, key)),
                     [I.state.set(DONE), I.status.set(status), I.body.set(body)],
                     (I.state == RUNNING) & (I.owner == owner))

    def release_key(self, scope, key, owner):
        """Forget a claim whose request failed without an answer worth repeating (a 5xx), so
        that a retry runs again; nothing when the claim is no longer its own."""
        I = self.Idem
        try:
            with _dynamodb(conflict="not this request's claim"):
                I("IDEM", _sort_key(scope, key)).delete(condition=(I.state == RUNNING) & (I.owner == owner))
        except (Conflict, StorageError):
            pass  # its lease runs out instead

    def forget_key_answers(self, number):
        """Delete every claim and stored answer about `number` (erasure); how many went."""
        I, gone = self.Idem, 0
        with _dynamodb():
            found = list(I.query("IDEM", filter_condition=I.number == number))
        for item in found:
            try:
                with _dynamodb(conflict="changed meanwhile"):
                    item.delete(condition=I.number == number)
                gone += 1
            except Conflict:
                pass  # gone already
        return gone
