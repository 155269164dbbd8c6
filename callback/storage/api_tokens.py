"""API tokens, in the config table: one item per token (pk "API-TOKEN", sk the token's
HMAC-SHA256 under API_TOKEN_SECRET, never the token), found by that hash with one strongly
consistent GetItem, so a revocation holds from the next request on; and one guard per
token name (pk "API-TOKEN-NAME", sk the name's one spelling) that keeps names unique, for
good: a revoked token keeps its name, which the audit trail may still show.

Tokens are few (a handful per integration and person): the list is one Query of their
partition, and a token is found by its id (the start of its hash) with a keyed Query.
"""
from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from callback.domain import api_tokens as t
from callback.storage.client import (
    CONDITION_FAILED,
    Conflict,
    NotFound,
    StorageBase,
    _cancel_codes,
    _dynamodb,
)
from callback.storage.tables import _meta, _Record

TOKEN, TOKEN_NAME = "API-TOKEN", "API-TOKEN-NAME"


class TokenNameTaken(Conflict):
    """Another token (live or revoked) has this name."""


def build_token_model(config):
    """The API token model, bound to this configuration's config table."""

    class ApiTokenRecord(_Record):
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True, default=TOKEN)
        sk = UnicodeAttribute(range_key=True)
        token_id = UnicodeAttribute()
        name = UnicodeAttribute()
        owner = UnicodeAttribute()
        owner_kind = UnicodeAttribute()
        role = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        created_by = UnicodeAttribute()
        last_used_at = UTCDateTimeAttribute(null=True)
        revoked_at = UTCDateTimeAttribute(null=True)
        revoked_by = UnicodeAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update

    return ApiTokenRecord


def _token(r):
    return t.ApiToken(r.token_id, r.name, r.owner, r.owner_kind, r.role, r.created_at, r.created_by,
                      r.last_used_at, r.revoked_at, r.revoked_by)


class ApiTokenStorage(StorageBase):
    """API tokens by their keyed hash; their names kept unique."""

    def create_api_token(self, token, digest):
        """Store a new token under its keyed hash, with its name's guard, in one transaction;
        TokenNameTaken when another token has the name."""
        T, G = self.ApiTokenRec, self.Guard

        def write(tx):
            tx.save(T(TOKEN, digest, token_id=token.token_id, name=token.name, owner=token.owner,
                      owner_kind=token.owner_kind, role=token.role, created_at=token.created_at,
                      created_by=token.created_by), condition=T.sk.does_not_exist())
            tx.save(G(TOKEN_NAME, t.name_key(token.name), owner=token.token_id),
                    condition=G.sk.does_not_exist())

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                # The hash is new (238 random bits): only the name can be taken.
                if any(code in (CONDITION_FAILED, "ConditionalCheckFailed") for code in _cancel_codes(exc)):
                    raise TokenNameTaken(f"a token is named {token.name}") from exc
                raise
        return token

    def api_token_by_hash(self, digest):
        """The token stored under this keyed hash, or None (strongly consistent: a token
        revoked a moment ago is seen revoked)."""
        with _dynamodb():
            try:
                return _token(self.ApiTokenRec.get(TOKEN, digest, consistent_read=True))
            except DoesNotExist:
                return None

    def list_api_tokens(self):
        """Every token, live and revoked, newest first."""
        with _dynamodb():
            found = [_token(r) for r in self.ApiTokenRec.query(TOKEN)]
        return sorted(found, key=lambda token: token.created_at, reverse=True)

    def _record_of(self, token_id):
        if not isinstance(token_id, str) or not t.ID_FORM.match(token_id):
            raise NotFound(repr(token_id)[:40])
        T = self.ApiTokenRec
        with _dynamodb():
            found = list(T.query(TOKEN, T.sk.startswith(token_id), consistent_read=True))
        if len(found) != 1:
            raise NotFound(token_id)
        return found[0]

    def revoke_api_token(self, token_id, now, by):
        """Revoke a token for good; NotFound for no such token, Conflict when it was revoked
        already."""
        T = self.ApiTokenRec
        record = self._record_of(token_id)
        self._update(T(TOKEN, record.sk), [T.revoked_at.set(now), T.revoked_by.set(by)],
                     T.sk.exists() & T.revoked_at.does_not_exist())
        return _token(self._record_of(token_id))

    def mark_api_token_used(self, digest, now):
        """Note that a live token was used now, unless that was noted within the last
        minute; Conflict when another request noted it first (or it was revoked)."""
        T = self.ApiTokenRec
        self._update(T(TOKEN, digest), [T.last_used_at.set(now)],
                     T.sk.exists() & T.revoked_at.does_not_exist()
                     & (T.last_used_at.does_not_exist() | (T.last_used_at <= now - t.LAST_USED_EVERY)))
