"""The audit trail's rules, plain Python: what an entry says (who, when, through what, which
kind of target, what changed before and after), the diff of two states, and what an entry
may never hold.

An entry holds phone numbers only masked as the logs mask them (`numbers.mask`: all but the
last two digits), so erasing a number never needs to touch the trail, and never a secret: a
field named for one (a password, a hash, a token, a secret, a key) says only that it
changed. An erasure is recorded with its counts and never its number, not even masked.
"""
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from callback.domain.numbers import mask
from callback.domain.records import CANCELED

# Kinds of target: the trail's first filter. Queues are recorded per IVR (their IVR is the
# target, each queue a field), whether the IVR form or the API changed them.
IVR, QUEUE, SETTINGS, HOURS = "ivr", "queue", "settings", "hours"
AGENT, PRESENCE, CALLBACK, ERASURE = "agent", "presence", "callback", "erasure"
USER, TOKEN = "user", "token"
KINDS = (IVR, QUEUE, SETTINGS, HOURS, AGENT, PRESENCE, CALLBACK, ERASURE, USER, TOKEN)
KIND_LABELS = {IVR: "IVR", QUEUE: "Queues", SETTINGS: "Callback Settings", HOURS: "Open Hours",
               AGENT: "Agent", PRESENCE: "Agent Presence", CALLBACK: "Callback", ERASURE: "Erasure",
               USER: "User", TOKEN: "API Token"}
# Through what the change came (cli: a `flask` command, such as creating the first admin).
PORTAL, API, CLI = "portal", "api", "cli"
# What a secret field shows instead of its value.
HIDDEN = "(hidden)"

# The logs' pattern of a phone number in text (callback.logs): a digit run of ten or more
# with the separators people write, not inside a word.
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\d[\d\- ().]{8,}\d(?![A-Za-z0-9])")
_SECRET_WORDS = {"password", "passwd", "hash", "secret", "token", "key", "credential", "credentials"}
# Werkzeug's password hashes, whatever field one arrives in.
_HASH_PREFIXES = ("scrypt:", "pbkdf2:")


@dataclass(frozen=True)
class AuditEntry:
    """One change, as recorded: never edited once written."""

    entry_id: str
    at: datetime
    actor: str
    via: str
    kind: str
    action: str
    target: str
    changes: dict = field(default_factory=dict)  # field: {"before": value, "after": value}
    detail: dict = field(default_factory=dict)


def is_secret_field(name):
    """True for a field whose value is a secret: its name ends in one of the secret words
    (password, password_hash, token, token_hash, secret, api_key…)."""
    words = re.split(r"[^a-z0-9]+", str(name).lower())
    return "password" in words or words[-1] in _SECRET_WORDS


def mask_text(text):
    """A text with every phone number in it masked (a sip: or client: address as a whole)."""
    if text.startswith(("sip:", "client:")):
        return mask(text)
    if text.startswith(_HASH_PREFIXES):
        return HIDDEN
    return _PHONE.sub(lambda found: mask(found.group()), text)


def _plain(value):
    """A value as JSON carries it: tuples as lists, times as ISO text, keys as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def masked(value):
    """A value safe for the trail: numbers masked, secret fields hidden, at any depth."""
    if isinstance(value, dict):
        return {k: (HIDDEN if v is not None and is_secret_field(k) else masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def changes(before, after):
    """The fields that differ between two states ({name: value} each, None for "did not
    exist"), as {name: {"before", "after"}}, masked; a secret field says only that it
    changed. Values are compared in full, before masking."""
    before, after = _plain(before or {}), _plain(after or {})
    diff = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if is_secret_field(name):
            diff[name] = {"before": None if old is None else HIDDEN, "after": None if new is None else HIDDEN}
        else:
            diff[name] = {"before": masked(old), "after": masked(new)}
    return diff


def new_entry(*, now, actor, via, kind, action, target, before=None, after=None, detail=None, entry_id=None):
    """The entry recording a change, or None when nothing changed and there is nothing else
    to say (a form saved as it was)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of target {kind!r}")
    diff, extra = changes(before, after), masked(_plain(detail or {}))
    if not diff and not extra:
        return None
    return AuditEntry(entry_id or uuid.uuid4().hex, now, str(actor or "unknown")[:128], via, kind, action,
                      mask_text(str(target or ""))[:256], diff, extra)


# -- the states each kind of change compares -------------------------------------------------

def ivr_fields(ivr):
    """What the IVR form changes besides queues; None for no IVR."""
    return None if ivr is None else {"numbers": list(ivr.numbers), "greeting": ivr.greeting}


def queue_fields(ivr):
    """An IVR's queues, one field per queue; None for no IVR."""
    if ivr is None:
        return None
    return {q.name: {"priority": q.priority, "callback_enabled": q.callback_enabled, "max_size": q.max_size}
            for q in ivr.queues}


def agent_fields(agent):
    """Who an agent is (not their presence); None for no agent."""
    return None if agent is None else {"name": agent.name, "phone": agent.phone, "queues": list(agent.queues)}


def cancellation(cb):
    """(before, after, detail) of canceling a callback: its status, and which callback it
    was for a reader of the trail (its IVR, queue and number, masked)."""
    return ({"status": cb.status}, {"status": CANCELED},
            {"ivr": cb.ivr_name, "queue": cb.queue_name, "number": cb.number})


def erasure_detail(erased):
    """What forgetting a number removed: counts only, never the number."""
    return {"callbacks_removed": erased.callbacks, "callbacks_canceled": erased.canceled,
            "texts_removed": erased.texts, "twilio_records_deleted": erased.twilio_records,
            "twilio_records_left": erased.twilio_failures}


# -- reading an entry back, and the filters --------------------------------------------------

def to_json(entry):
    """An entry as the API shows it."""
    return {"id": entry.entry_id, "at": entry.at.isoformat(), "actor": entry.actor, "via": entry.via,
            "kind": entry.kind, "action": entry.action, "target": entry.target,
            "changes": entry.changes, "detail": entry.detail}


def dumps(value):
    """A change or detail as stored text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list: a kind, an actor, from `since` (inclusive) to `until` (exclusive)."""

    kind: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _moment(text, *, end):
    """A date (a whole UTC day: its start, or for `end` the next day's) or an ISO date-time
    (UTC unless it says otherwise)."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime.combine(day, time(0), timezone.utc)
        return start + timedelta(days=1) if end else start
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def read_filter(args):
    """The filters from a request's arguments (kind, actor, since, until); returns (filter,
    errors) and the filter only if no error."""
    errors, kind = {}, (args.get("kind") or "").strip() or None
    if kind and kind not in KINDS:
        errors["kind"] = "one of " + ", ".join(KINDS)
    bounds = {}
    for name in ("since", "until"):
        text = (args.get(name) or "").strip()
        try:
            bounds[name] = _moment(text, end=name == "until") if text else None
        except ValueError:
            errors[name] = "a date (2025-01-31) or an ISO 8601 date-time"
    if not errors and bounds["since"] and bounds["until"] and bounds["since"] >= bounds["until"]:
        errors["until"] = "must come after since"
    if errors:
        return None, errors
    actor = (args.get("actor") or "").strip()[:128] or None
    return AuditFilter(kind, actor, bounds["since"], bounds["until"]), {}
