"""The app's records as plain dataclasses: what storage returns and the domain reads."""
from dataclasses import dataclass, field, replace
from datetime import datetime

from callback.domain.settings import CallbackSettings

# Callback lifecycle.
PENDING = "pending"
DIALING = "dialing"
CONNECTED = "connected"
COMPLETED = "completed"
EXPIRED = "expired"
CANCELED = "canceled"
# Ended without a conversation for a reason no retry can change (a number Twilio refuses).
FAILED = "failed"
CALLBACK_STATUSES = (PENDING, DIALING, CONNECTED, COMPLETED, EXPIRED, CANCELED, FAILED)
OPEN_STATUSES = (PENDING, DIALING, CONNECTED)
FINAL_STATUSES = (COMPLETED, EXPIRED, CANCELED, FAILED)

# Agent presence.
OFFLINE = "offline"
AVAILABLE = "available"
RESERVED = "reserved"
BUSY = "busy"
AGENT_STATUSES = (OFFLINE, AVAILABLE, RESERVED, BUSY)

# A callback asked for through the API has an id of its own, never a CallSid ("CA…").
API_ID_PREFIX = "API"
# The public callback page stores through the API's create path, under ids of its own.
PUBLIC_PAGE_ID_PREFIX = API_ID_PREFIX + "WEB"

# Waiting calls.
WAITING = "waiting"
CONNECTING = "connecting"
# Left the Twilio queue to leave a message: out of the line, their place kept for the message.
RECORDING = "recording"


# Twilio keeps at most this many calls waiting in one queue (its MaxSize limit), and gives
# a queue that <Enqueue> creates on first use 1,000 (100 in older accounts' documentation).
TWILIO_MAX_QUEUE_SIZE = 5000


@dataclass(frozen=True)
class Queue:
    """A named Twilio queue of an IVR; `max_size` is the MaxSize the app gives Twilio's queue:
    a caller who finds it full is offered a callback at once."""

    name: str
    ivr_name: str
    priority: int = 0
    callback_enabled: bool = True
    max_size: int = TWILIO_MAX_QUEUE_SIZE


@dataclass(frozen=True)
class Ivr:
    """An entry point: the numbers that reach it, its greeting, queues and settings."""

    name: str
    numbers: tuple = ()
    greeting: str = ""
    queues: tuple = ()
    settings: CallbackSettings = field(default_factory=CallbackSettings)
    version: int | None = None

    @property
    def caller_id(self):
        """The number the app calls out from on this IVR's behalf."""
        return self.numbers[0] if self.numbers else None

    def queue(self, name):
        """One of this IVR's queues by name, or None."""
        return next((q for q in self.queues if q.name == name), None)

    def evolve(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)


def queue_names(ivrs):
    """The names of every queue of these IVRs (queue names are unique across IVRs)."""
    return {queue.name for ivr in ivrs for queue in ivr.queues}


@dataclass(frozen=True)
class Agent:
    """A person who takes calls, and where they are in their day."""

    agent_id: str
    name: str
    phone: str
    queues: tuple = ()
    status: str = OFFLINE
    status_changed_at: datetime | None = None
    work_kind: str | None = None
    work_key: str | None = None
    call_sid: str | None = None
    # The attempt (callback) or offer (holding caller) they are reserved for: releases are
    # guarded by it, since a work key is reused by every retry of a callback.
    attempt_id: str | None = None
    # Why the app set them offline (declined, missed calls), for the portal.
    away_reason: str | None = None
    # Calls offered and missed in a row.
    misses: int = 0


@dataclass(frozen=True)
class WaitingCall:
    """A caller holding in a Twilio queue, with their place in line."""

    call_sid: str
    ivr_name: str
    queue_name: str
    caller: str
    joined_at: datetime
    status: str = WAITING
    agent_id: str | None = None
    agent_call_sid: str | None = None
    # The offer to an agent this caller is in, and where it stands (offers.OFFER_TABLE).
    offer_id: str | None = None
    phase: str | None = None
    # When the current offer started ringing its agent (the agent's page, their day's log).
    offered_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    """One try at connecting a callback: when, who, how it ended."""

    attempt_id: str
    started_at: datetime
    agent_id: str | None
    outcome: str | None = None
    ended_at: datetime | None = None
    counted: bool = False
    agent_call_sid: str | None = None
    customer_call_sid: str | None = None
    # Twilio's error code when it refused to place a call of this attempt.
    error_code: int | None = None
    # When agent and customer were first connected: the talk time of a completed attempt.
    connected_at: datetime | None = None


@dataclass(frozen=True)
class Callback:
    """A caller's request to be called back, and everything that happened to it."""

    callback_id: str
    number: str
    ivr_name: str
    queue_name: str
    requested_at: datetime
    place_in_line: datetime
    priority: int
    due_at: datetime
    expires_at: datetime
    status: str = PENDING
    attempts: int = 0
    attempt_id: str | None = None
    phase: str | None = None
    agent_id: str | None = None
    agent_call_sid: str | None = None
    customer_call_sid: str | None = None
    history: tuple = ()
    ended_reason: str | None = None
    ended_at: datetime | None = None
    # When the sweep next looks at this callback (open ones only).
    sweep_at: datetime | None = None
    # The slot the caller chose (callback.domain.slots): due at its start, expires at its end.
    window_start: datetime | None = None
    window_end: datetime | None = None
    # Who and what about, as a CRM asked for it through the API (callback.domain.callback_requests).
    name: str | None = None
    reason: str | None = None
    # A voicemail (callback.domain.voicemail) carries its recording; None: a callback.
    kind: str | None = None
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_seconds: int | None = None
    recording_status: str | None = None
    transcription: str | None = None
    # The current attempt's answering-machine detection, as its customer's call was placed
    # (callback.domain.detection), the verdict heard (AnsweredBy), and how many times the
    # sweep read Twilio's record of the call for a verdict that never came.
    detection: str | None = None
    answered_by: str | None = None
    verdict_reads: int = 0

    @property
    def from_api(self):
        """True for a callback asked for through the API (a caller's id is their CallSid)."""
        return self.callback_id.startswith(API_ID_PREFIX)

    @property
    def asked_through(self):
        """How the callback was asked for, as the portal says it."""
        if self.callback_id.startswith(PUBLIC_PAGE_ID_PREFIX):
            return "asked on the public page"
        return "asked through the API" if self.from_api else "joined the queue"

    @property
    def conference_name(self):
        """The conference agent and customer meet in for the current attempt."""
        return f"callback-{self.callback_id}-{self.attempt_id}"

    def attempt(self, attempt_id):
        """The history entry of one attempt, or None."""
        return next((a for a in self.history if a.attempt_id == attempt_id), None)


@dataclass(frozen=True)
class AdminSession:
    """A signed-in portal user, stored server-side so logout, a disable and a new password
    revoke it."""

    key: str  # SHA-256 of the session id the cookie carries
    username: str
    password_tag: str  # which password (and, for a named user, generation) it was opened with
    created_at: datetime
    last_seen: datetime
    expires_at: datetime  # idle deadline
    role: str | None = None  # at sign-in, for the record; requests read the user's role afresh


# Legs of the call ledger (callback.domain.legs): a number the app holds.
LEG_RESERVED = "reserved"  # claimed for an attempt or offer; no call requested yet
LEG_PLACING = "placing"    # the create request went out; Twilio's CallSid not known yet
LEG_PLACED = "placed"      # Twilio has the call: its CallSid is known
LEG_STATES = (LEG_RESERVED, LEG_PLACING, LEG_PLACED)


@dataclass(frozen=True)
class Leg:
    """A phone number the app holds: from the claim of the work that will ring it until
    Twilio says the call to it ended (or that no call was ever placed). One per number."""

    number: str
    leg_id: str
    role: str                  # "agent" or "customer"
    kind: str                  # the owner's kind: "callback" or "call" (a holding caller's offer)
    key: str                   # the owner: a callback id, or the holding caller's CallSid
    attempt_id: str            # the owner's attempt or offer
    created_at: datetime
    agent_id: str | None = None
    state: str = LEG_RESERVED
    call_sid: str | None = None
    placed_at: datetime | None = None
    # The owner is done with the call: it must end (an agent hears `notice` first).
    over: bool = False
    notice: str | None = None
    # Why the agent is released once their call ends (declined, missed, …), noted by a step
    # that ended their work while they were still on the line.
    release_why: str | None = None
    twilio_status: str | None = None
    tries: int = 0
    check_at: datetime | None = None
    # A customer leg not dialed yet whose number called in to hold (that call's CallSid):
    # it is never dialed, and when its attempt ends the number passes to that caller.
    on_line: str | None = None


@dataclass(frozen=True)
class Alert:
    """A condition only an admin can fix, as the dashboard shows it."""

    kind: str
    detail: str
    count: int
    last_at: datetime
