"""Who is calling the JSON API, and what their token's role may do there.

A bearer token is either the bootstrap token (ADMIN_API_TOKEN from the environment, an
admin, compared in constant time) or a token made in the portal (callback.domain.api_tokens),
found by its keyed hash with one GetItem. ENDPOINT_ROLES is the one table of which roles
may use which route; a route missing from it is the admin's alone (and a test fails).
"""
import hashlib
import hmac
import logging
from dataclasses import dataclass

from callback.domain import api_tokens as t
from callback.domain.users import normalise_username
from callback.storage import StorageError

log = logging.getLogger(__name__)

ALL = (t.ADMIN, t.SUPERVISOR, t.INTEGRATION)
STAFF = (t.ADMIN, t.SUPERVISOR)
ADMIN_ONLY = (t.ADMIN,)
# Flask endpoint -> the roles that may use it. A supervisor reads the wallboard's figures,
# reads and cancels callbacks, reads agents and sets their presence: no settings, hours,
# queues, new agents or erasure. An integration (a CRM, a website) only asks for callbacks:
# its token, kept on a web server, must not read anyone's callbacks.
ENDPOINT_ROLES = {
    "api.get_stats": STAFF,
    "api.list_callbacks": STAFF,
    "api.get_callback": STAFF,
    "api.cancel_callback": STAFF,
    "api.create_callback": ALL,
    "api.list_agents": STAFF,
    "api.set_agent_status": STAFF,
    "api.create_agent": ADMIN_ONLY,
    "api.list_ivrs": ADMIN_ONLY,
    "api.get_settings": ADMIN_ONLY,
    "api.put_settings": ADMIN_ONLY,
    "api.get_hours": ADMIN_ONLY,
    "api.put_hours": ADMIN_ONLY,
    "api.list_voices": ADMIN_ONLY,
    "api.list_queues": ADMIN_ONLY,
    "api.create_queue": ADMIN_ONLY,
    "privacy_api.api_forget": ADMIN_ONLY,
    "api.api_audit": ADMIN_ONLY,
}
# Routes that take no token at all.
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: who (as the audit trail names them), their role, and the
    scope of their Idempotency-Keys."""

    actor: str
    role: str
    scope: str
    token_id: str | None = None


def may(role, endpoint):
    """True when a token of `role` may use the route `endpoint`."""
    return role in ENDPOINT_ROLES.get(endpoint, ADMIN_ONLY)


def bearer(header):
    """The token of an `Authorization: Bearer <token>` header ("" when there is none)."""
    return header[7:].strip() if header.startswith("Bearer ") else ""


def caller_of(given, config, storage, now):
    """The Caller a bearer token authenticates, or None. A text of no token's form costs no
    read; a stored token costs one GetItem, and a write at most once a minute."""
    bootstrap = config.ADMIN_API_TOKEN
    if bootstrap and hmac.compare_digest(given.encode(), bootstrap.encode()):
        # The scope Idempotency-Keys had before stored tokens: keys survive the upgrade.
        return Caller(f"token:{t.BOOTSTRAP_NAME}", t.ADMIN, hashlib.sha256(given.encode()).hexdigest()[:32])
    if not config.API_TOKEN_SECRET or not t.well_formed(given):
        return None
    digest = t.key_hash(config.API_TOKEN_SECRET, given)
    token = storage.api_token_by_hash(digest)
    if token is None or token.revoked_at is not None:
        return None
    if token.owner_kind == t.USER and token.owner != normalise_username(config.ADMIN_USERNAME):
        # A named user's token is theirs only while they may sign in: one more read, for these
        # only (the environment's account is in no table, and ends only with its configuration).
        owner = storage.get_user(token.owner)
        if owner is None or owner.disabled:
            return None
    if token.due_for_use_mark(now):
        try:
            storage.mark_api_token_used(digest, now)
        except StorageError:
            # Another request noted it first, or the write failed: the request goes on.
            log.debug("last use of API token %s not noted", token.token_id, exc_info=True)
    return Caller(token.actor, token.role, f"token-{token.token_id}", token.token_id)
