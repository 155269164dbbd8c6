"""The portal's named users: who they are, their role, and what an admin may type for them.

Plain Python: storage keeps the records, the web layer hashes passwords and checks roles.
"""
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime

AGENT = "agent"
SUPERVISOR = "supervisor"
ADMIN = "admin"
# Lowest first: each role may open everything the roles before it may.
ROLES = (AGENT, SUPERVISOR, ADMIN)
ROLE_LABELS = {AGENT: "Agent", SUPERVISOR: "Supervisor", ADMIN: "Admin"}

MAX_USERNAME = 64
MAX_DISPLAY_NAME = 100
MIN_PASSWORD = 12
# The sign-in form reads at most this much of a password: a longer one could never sign in.
MAX_PASSWORD = 256
# Besides letters and digits, what a username may hold (an e-mail address fits).
USERNAME_PUNCTUATION = "._-@+"


@dataclass(frozen=True)
class User:
    """A named user of the portal. `generation` moves when their sessions must end (a
    disable, a new password); `revision` moves with every write (the condition of the next)."""

    username: str
    display_name: str
    role: str
    password_hash: str
    agent_id: str | None = None
    disabled: bool = False
    generation: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0

    @property
    def enabled_admin(self):
        """Counts towards "at least one enabled admin"."""
        return self.role == ADMIN and not self.disabled

    def evolve(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)


def normalise_username(name):
    """One spelling per account: Unicode NFKC, case folded, surrounding space removed, so
    "ADMIN ", "Admin" and "ａｄｍｉｎ" are all the admin (and share one throttle)."""
    text = unicodedata.normalize("NFKC", str(name)[:256])
    return unicodedata.normalize("NFKC", text.casefold()).strip()[:MAX_USERNAME]


def at_least(role, minimum):
    """True when `role` may open what `minimum` may (an unknown role may open nothing)."""
    return role in ROLES and minimum in ROLES and ROLES.index(role) >= ROLES.index(minimum)


def check_username(raw, *, reserved=()):
    """A new username, normalised; ValueError saying why it cannot be one. `reserved`: names
    taken outside the table (the environment's bootstrap account)."""
    text = str(raw or "")
    if len(text.strip()) > MAX_USERNAME:
        raise ValueError(f"a username is at most {MAX_USERNAME} characters")
    name = normalise_username(text)
    if not name:
        raise ValueError("enter a username")
    if not all(c.isalnum() or c in USERNAME_PUNCTUATION for c in name):
        raise ValueError(f"a username holds letters, digits and {' '.join(USERNAME_PUNCTUATION)} only")
    if name in {normalise_username(r) for r in reserved if r}:
        raise ValueError("that name is the bootstrap account's (ADMIN_USERNAME)")
    return name


def check_password(raw):
    """A password an admin or the CLI sets; ValueError saying why it cannot be one."""
    if not isinstance(raw, str) or len(raw) < MIN_PASSWORD:
        raise ValueError(f"a password is at least {MIN_PASSWORD} characters")
    if len(raw) > MAX_PASSWORD:
        raise ValueError(f"a password is at most {MAX_PASSWORD} characters")
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise ValueError("a password holds no control characters (a line break, a tab)")
    return raw


def check_profile(raw, *, known_agents):
    """Display name, role and linked agent from a form or the CLI: ({field: value}, {field:
    error}). An agent must be linked to an agent record that exists; other roles may be."""
    errors, fields = {}, {}
    display = " ".join(str(raw.get("display_name") or "").split())
    if len(display) > MAX_DISPLAY_NAME:
        errors["display_name"] = f"a display name is at most {MAX_DISPLAY_NAME} characters"
    fields["display_name"] = display
    role = str(raw.get("role") or "")
    if role not in ROLES:
        errors["role"] = "choose one of " + ", ".join(ROLES)
    fields["role"] = role
    agent_id = str(raw.get("agent_id") or "").strip() or None
    if agent_id is not None and agent_id not in known_agents:
        errors["agent_id"] = "no agent has that id"
    elif agent_id is None and role == AGENT:
        errors["agent_id"] = "an agent signs in as one agent record: choose which"
    fields["agent_id"] = agent_id
    return fields, errors
