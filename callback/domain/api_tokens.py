"""API tokens: their form, their keyed hash, their roles and what a new one must say.

A token is `cbk_` + 40 random base-62 characters (about 238 bits) + a 6-character CRC-32 of
those, so secret scanners can find a leaked one by its prefix and confirm it by its
checksum, and a mistyped one is refused without a database read. It is stored only as its
HMAC-SHA256 under API_TOKEN_SECRET: a fast keyed hash, since a long random token cannot be
guessed (a password hash such as scrypt would cost ~0.1 s of CPU on every API request and
protect nothing more); the key keeps a copy of the table from being checked offline.
"""
import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

PREFIX = "cbk_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET_LENGTH = 40
CHECKSUM_LENGTH = 6
WELL_FORMED = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}\Z")
# A token's id is the start of its keyed hash: shown and logged freely (it helps no one
# forge the token), and the hash itself is found from it with one keyed Query.
ID_LENGTH = 16
ID_FORM = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}\Z")

# Roles over the API (callback.web.api_access says which routes each may use).
ADMIN, SUPERVISOR, INTEGRATION = "admin", "supervisor", "integration"
ROLES = (ADMIN, SUPERVISOR, INTEGRATION)
ROLE_LABELS = {ADMIN: "Admin: every route",
               SUPERVISOR: "Supervisor: stats, callbacks and agents' presence",
               INTEGRATION: "Integration: only asks for callbacks (a CRM, a website)"}
# Who holds a token: a person (by username) or an integration (by its name).
USER, SYSTEM = "user", "integration"
OWNER_KINDS = (USER, SYSTEM)
# A token's "last used" moves at most this often: one write a minute, never one a request.
LAST_USED_EVERY = timedelta(minutes=1)
MAX_NAME = 64
# The bootstrap token (ADMIN_API_TOKEN from the environment), as the audit trail names it.
BOOTSTRAP_NAME = "ADMIN_API_TOKEN"


def _base62(number, width):
    digits = []
    for _ in range(width):
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body):
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_token():
    """A fresh token, shown once to whoever creates it and never stored."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(token):
    """True for a text of a token's form whose checksum matches (no read needed to refuse
    anything else)."""
    if not isinstance(token, str) or not WELL_FORMED.match(token):
        return False
    body = token[len(PREFIX):len(PREFIX) + SECRET_LENGTH]
    return hmac.compare_digest(token[-CHECKSUM_LENGTH:], _checksum(body))


def key_hash(secret, token):
    """What is stored of a token: its HMAC-SHA256 under the server's secret, in hex."""
    return hmac.new(secret.encode("utf-8"), token.encode("utf-8"), hashlib.sha256).hexdigest()


def token_id(digest):
    """A token's id, from its keyed hash."""
    return digest[:ID_LENGTH]


def name_key(name):
    """One spelling per token name ("CRM" and "crm " are one name), for its uniqueness."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ApiToken:
    """A stored API token (never the token itself)."""

    token_id: str
    name: str
    owner: str
    owner_kind: str
    role: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def actor(self):
        """Who calls with it, as the audit trail writes it: a person's username, or
        `token:<name>` for an integration."""
        return self.owner if self.owner_kind == USER else f"token:{self.name}"

    def due_for_use_mark(self, now):
        """True when its "last used" is a minute old or more (or never set)."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_EVERY


def _text(value, label, errors, field):
    text = " ".join(value.split()) if isinstance(value, str) else ""
    if not text:
        errors[field] = f"{label} is required"
    elif len(text) > MAX_NAME or not text.isprintable():
        errors[field] = f"{label}: 1 to {MAX_NAME} printable characters"
    return text


def check_new_token(data):
    """({name, owner, owner_kind, role}, errors) of a request for a new token."""
    errors = {}
    fields = {"name": _text(data.get("name"), "a name", errors, "name"),
              "owner": _text(data.get("owner"), "an owner", errors, "owner"),
              "owner_kind": data.get("owner_kind"), "role": data.get("role")}
    if fields["owner_kind"] not in OWNER_KINDS:
        errors["owner_kind"] = "one of " + ", ".join(OWNER_KINDS)
    if fields["role"] not in ROLES:
        errors["role"] = "one of " + ", ".join(ROLES)
    return fields, errors
