"""A local stand-in for the slice of Twilio's REST API the app uses.

It records every request, answers in Twilio's JSON shapes, and can be told to fail, so
`make run` works with no Twilio account and tests exercise the real twilio client over
real HTTP. Calls it places ring until someone (the simulator, the Twilio model of
`devtools.twilio_model`, or a test) says what happened to them; their status then moves
through Twilio's lifecycle (queued, ringing, in-progress, then one final status), and
`GET` of a call, the calls list (filtered by `To`, `From`, `Status`, `StartTime>`…),
conferences and their participants answer from that state.

Recordings a `<Record>` made (`add_recording`) can be fetched (`…/Recordings/{Sid}.json`), their
audio read (`….mp3`, with the account's credentials) and deleted.

Texts are kept as Twilio keeps them: `Messages.json` creates one (through a Messaging
Service, status "accepted"), lists them by To and From, deletes one; an opt-out word texted
in (`inbound_text`) makes every later text to that number fail with 21610 until an opt-in
word, as on a long code; `undeliverable` numbers fail later (the model or a test reports
30006 to the status callback), and `messages` holds every text for tests and `make call`.

Twilio Verify's codes are sent and checked as Verify does it (`devtools.standin_verify`, `verify`).

Call queues are kept as Twilio keeps them: created by the Queues API (list, create, fetch,
update, with their MaxSize) or on a call's first `<Enqueue>` with Twilio's default size, and
holding the calls the model puts in them (`queue_join`, which turns a call away when the
queue is full, and `queue_left`); `current_size` reads from that.

Beyond plain failures it models what the real network does to a REST client: numbers
Twilio refuses with its own 4xx codes (`refuse`), create requests that time out after
Twilio placed the call (`time_out_after_placing`), and, decided per request from a seed
(`RestFaults`), redirects and hang-ups answered 429 or 5xx or timing out (some after they
were applied), creates refused for load, and creates answered late or never.
"""
import hashlib
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from flask import Flask, Response, g, has_request_context, jsonify, request
from werkzeug.serving import make_server

from callback.clock import SystemClock
from callback.domain.texts import OPT_IN_WORDS, OPT_OUT_WORDS
from devtools.standin_verify import VerifyStandIn
from devtools.standin_verify import add_routes as add_verify_routes

FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_FINAL = FINAL  # the name earlier code used
LIVE = frozenset({"queued", "ringing", "in-progress"})
# Which status may follow which: a final status is never left.
_NEXT = {
    "queued": {"ringing", "in-progress"} | FINAL,
    "ringing": {"in-progress"} | FINAL,
    "in-progress": {"completed", "failed"},
}

# Twilio's answers to a create request for a number it will not call (all HTTP 400).
REFUSALS = {
    21211: "Invalid 'To' Phone Number",
    21214: "'To' phone number cannot be reached",
    21215: "Account not authorized to call {to}. Perhaps you need to enable some "
           "international permissions: https://www.twilio.com/console/voice/calls/geo-permissions/low-risk",
    21216: "Account not allowed to call {to}",
    21217: "Phone number does not appear to be valid",
}


# What Twilio answers a request it will not serve now: too many requests, or trouble on its
# side. A create refused this way placed nothing.
LOAD_ERRORS = ((429, 20429, "Too Many Requests"), (500, 20500, "Internal Server Error"),
               (503, 20503, "Service Unavailable"))
CREATE_LOAD_ERRORS = (LOAD_ERRORS[0], LOAD_ERRORS[2])


@dataclass
class RestFaults:
    """How Twilio's REST API fails the app's requests, decided per request from `seed`.

    Shares of requests: an update (redirect or hang-up) answered 429, 500 or 503 without
    being applied, or answered only after the client gave up (half of those applied all the
    same, as a real one may be); a create answered 429 or 503 with nothing placed; a create
    answered after the client gave up although the call was placed; a create answered late
    but in time, the phone ringing meanwhile. `client_timeout` is the app's REST timeout.
    """

    seed: int = 0
    update_errors: float = 0.0
    update_timeouts: float = 0.0
    create_errors: float = 0.0
    create_timeouts: float = 0.0
    slow_creates: float = 0.0
    client_timeout: float = 2.0

    def _rng(self, *parts):
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    @property
    def overdue(self):
        """Seconds an answer takes that the client has given up on."""
        return self.client_timeout + 1

    def for_update(self, call_sid, nth):
        """None, ("error", status, code, message) or ("timeout", applied) for the nth
        update of a call."""
        rng = self._rng("update", call_sid, nth)
        roll = rng.random()
        if roll < self.update_errors:
            return ("error", *rng.choice(LOAD_ERRORS))
        if roll < self.update_errors + self.update_timeouts:
            return ("timeout", rng.random() < 0.5)
        return None

    def for_create(self, to, nth):
        """None, ("error", status, code, message), ("late", seconds) or ("lost", seconds)
        for the nth create to `to`: late answers come within the client's timeout, lost
        ones after it (the call placed all the same)."""
        rng = self._rng("create", to, nth)
        roll = rng.random()
        for share, fault in ((self.create_errors, "error"), (self.create_timeouts, "lost"),
                             (self.slow_creates, "late")):
            if roll < share:
                if fault == "error":
                    return ("error", *rng.choice(CREATE_LOAD_ERRORS))
                if fault == "lost":
                    return ("lost", self.overdue)
                return ("late", rng.uniform(0.2, 0.9) * self.client_timeout)
            roll -= share
        return None


def _rfc2822(when):
    return format_datetime(when, usegmt=True) if when else None


def _parse_time(text):
    """A StartTime filter value: YYYY-MM-DD or an ISO 8601 date-time (UTC)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc), True
    return datetime.fromisoformat(text.replace("Z", "+00:00")), False


@dataclass
class PlacedCall:
    """A call the app asked Twilio to place (or an inbound call it changed), as Twilio sees it."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    timeout: int | None
    machine_detection: str | None
    status: str = "queued"
    redirects: list = field(default_factory=list)
    fallback_url: str | None = None
    machine_detection_timeout: int | None = None
    direction: str = "outbound-api"
    answered_by: str | None = None
    status_callback_events: list = field(default_factory=list)
    created_at: datetime | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    # Inline TwiML (Twiml, instead of Url) and asynchronous detection (AsyncAmd=true).
    twiml: str | None = None
    async_amd: bool = False
    amd_callback: str | None = None
    # Conference announcements to this call as a participant (AnnounceUrl), in order.
    announcements: list = field(default_factory=list)

    def as_dict(self):
        """JSON-friendly (times as ISO 8601)."""
        data = dict(vars(self))
        for key in ("created_at", "started_at", "answered_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


# What Twilio gives a queue created without a MaxSize (by the API or by <Enqueue>), and the
# most it allows.
DEFAULT_QUEUE_SIZE = 1000
MAX_QUEUE_SIZE = 5000


@dataclass
class CallQueue:
    """A call queue as Twilio's REST API shows it, with the calls waiting in it, first in first."""

    sid: str
    friendly_name: str
    max_size: int
    created_at: datetime
    members: list = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass
class ConferenceRoom:
    """A conference as Twilio's REST API shows it: its participants while it lasts."""

    sid: str
    friendly_name: str
    created_at: datetime
    status: str = "init"
    participants: dict = field(default_factory=dict)  # CallSid -> flags
    updated_at: datetime | None = None
    reason_ended: str | None = None
    call_sid_ending: str | None = None


class TwilioStandIn:
    """State and behaviour of the stand-in: calls placed, requests seen, failures queued."""

    def __init__(self, clock=None, seed=None):
        self.lock = threading.Lock()
        self.clock = clock or SystemClock()
        # With a seed, call SIDs follow from it (the nth call to a number), so whatever is
        # decided per SID replays; without one they are random, as Twilio's are.
        self.seed = seed
        self._ordinals = Counter()
        self._updates = Counter()
        self.faults = None  # RestFaults, or None for a Twilio that always answers
        self.fault_counts = Counter()
        self.requests = []
        self.calls = {}
        self.ended = set()
        self.conferences = {}  # ConferenceSid -> ConferenceRoom
        self.numbers = {}  # PhoneNumberSid -> the account's number, as IncomingPhoneNumbers shows it
        self.deleted = set()  # CallSids whose records were deleted (erasure)
        self.queues = {}  # QueueSid -> CallQueue
        self.messages = {}  # MessageSid -> the text, as the Messages API shows it
        self.opted_out = set()  # numbers that texted an opt-out word (21610 until they opt in)
        self.recordings = {}  # RecordingSid -> a <Record>'s recording (`add_recording`)
        self.listeners = []
        self.verify = VerifyStandIn(lambda: self.clock.now())
        self._failures = []
        self._delays = []
        self._refused = {}
        self._late_answers = []
        self._serving = 0
        self._served = threading.Condition(self.lock)
        # Optional function(call) -> seconds: how long a create request answers after
        # placing that call (a chaotic Twilio decides per call).
        self.create_delay = None

    def new_sid(self, prefix="CA", basis=None):
        """A fresh call (CA…) or conference (CF…) SID; from the seed and `basis` when both
        are given."""
        if self.seed is not None and basis is not None:
            return prefix + hashlib.sha256(f"{self.seed}|{basis}".encode()).hexdigest()[:32]
        return prefix + uuid.uuid4().hex

    def _next_ordinal(self, counter, key):
        with self.lock:
            counter[key] += 1
            return counter[key]

    def fail_next(self, status=500, code=20500, count=1, message="Internal Server Error"):
        """Make the next `count` requests fail with this HTTP status and Twilio code."""
        with self.lock:
            self._failures.extend([(status, code, message)] * count)

    def delay_next(self, seconds, count=1):
        """Make the next `count` requests answer only after `seconds` (a slow Twilio)."""
        with self.lock:
            self._delays.extend([seconds] * count)

    def refuse(self, number, code=21217):
        """Every call created to `number` from now on is refused with Twilio's `code` (HTTP 400)."""
        if code not in REFUSALS:
            raise ValueError(f"unknown refusal code {code}")
        with self.lock:
            self._refused[number] = code

    def time_out_after_placing(self, seconds, count=1):
        """The next `count` created calls are placed, but their create request answers
        only after `seconds`: a client with a shorter timeout sees a timeout, while the
        call rings all the same."""
        with self.lock:
            self._late_answers.extend([seconds] * count)

    def own_number(self, phone_number, **fields):
        """The account owns `phone_number` (optionally bound: voice_application_sid, trunk_sid,
        or configured: voice_url …); returns its PN sid."""
        with self.lock:
            sid = self.new_sid("PN", basis=phone_number)
            self.numbers[sid] = {"sid": sid, "phone_number": phone_number, "voice_url": None,
                                 "voice_method": "POST", "voice_fallback_url": None,
                                 "voice_fallback_method": "POST", "status_callback": None,
                                 "status_callback_method": "POST",
                                 "voice_application_sid": None, "trunk_sid": None, "sms_url": None,
                                 "sms_method": "POST", **fields}
            return sid

    def texts(self, to=None):
        """Texts sent so far (to `to`), oldest first."""
        with self.lock:
            return [dict(m) for m in self.messages.values() if m["direction"] == "outbound-api"
                    and (to is None or m["to"] == to)]

    def inbound_text(self, from_, to, body):
        """A text comes in (a customer's reply): recorded, and an opt-out or opt-in word acts
        as Twilio's keyword handling does; returns its MessageSid."""
        word = " ".join((body or "").split()).upper()
        with self.lock:
            if word in OPT_OUT_WORDS:
                self.opted_out.add(from_)
            elif word in OPT_IN_WORDS:
                self.opted_out.discard(from_)
            sid = self.new_sid("SM")
            self.messages[sid] = {"sid": sid, "to": to, "from": from_, "body": body, "status": "received",
                                  "direction": "inbound", "messaging_service_sid": None, "error_code": None,
                                  "status_callback": None, "date_created": self.clock.now()}
            return sid

    def add_recording(self, call_sid, duration, sid=None, transcribed=False):
        """A recording of `duration` seconds that a <Record> on `call_sid` made (the model's
        or a test's), with a transcription when `transcribed` (its SID: "TR" and the rest of
        the recording's); returns its SID. Its audio is a few bytes standing in for an MP3."""
        with self.lock:
            sid = sid or self.new_sid("RE", basis=f"recording|{call_sid}|{len(self.recordings)}")
            self.recordings[sid] = {"sid": sid, "call_sid": call_sid, "duration": str(int(duration)),
                                    "date_created": self.clock.now(), "status": "completed",
                                    "audio": b"ID3\x03standin-recording-" + sid.encode(),
                                    "transcriptions": ["TR" + sid[2:]] if transcribed else []}
        return sid

    def add_listener(self, listener):
        """Tell `listener` (call_created, call_redirected, call_announced, call_hung_up) what
        the REST API did."""
        with self.lock:
            self.listeners.append(listener)

    def _notify(self, event, *args):
        with self.lock:
            listeners = list(self.listeners)
        for listener in listeners:
            getattr(listener, event)(*args)

    def end_call(self, sid):
        """Mark a call (placed or inbound) as over: redirects then fail with 21220."""
        with self.lock:
            self.ended.add(sid)
            if sid in self.calls:
                call = self.calls[sid]
                if call.status not in FINAL:
                    call.status, call.ended_at = "completed", self.clock.now()

    def detected(self, sid, answered_by):
        """Asynchronous detection decided (`answered_by`): Twilio keeps it on the call, whether
        its callback was delivered or not, and shows it once the call is complete."""
        with self.lock:
            call = self.calls.get(sid)
            if call is not None and not call.answered_by:
                call.answered_by = answered_by

    def set_status(self, sid, status, answered_by=None):
        """Move a call along Twilio's lifecycle; False when that step is not allowed
        (a final status is never left)."""
        now = self.clock.now()
        with self.lock:
            call = self.calls.get(sid)
            if call is None:
                if status in FINAL:
                    self.ended.add(sid)
                return False
            if status == call.status:
                return True
            if status not in _NEXT.get(call.status, ()):
                return False
            call.status = status
            if status == "in-progress":
                call.answered_at, call.answered_by = now, answered_by
            if status in FINAL:
                call.ended_at = now
                self.ended.add(sid)
            return True

    def placed(self, to=None):
        """Calls placed so far, optionally only those to one number."""
        with self.lock:
            return [c for c in self.calls.values() if to is None or c.to == to]

    def live_calls(self, to=None):
        """Calls not yet over (queued, ringing or in progress), optionally to one number."""
        return [c for c in self.placed(to) if c.status in LIVE]

    # -- conferences (the model of the voice side tells the REST side what happened) ----

    def conference_joined(self, name, call_sid, start_on_enter=True, end_on_exit=False):
        """A call joined the named conference (created on first join); returns its room."""
        now = self.clock.now()
        with self.lock:
            room = self._open_room(name)
            if room is None:
                room = ConferenceRoom(self.new_sid("CF"), name, now)
                self.conferences[room.sid] = room
            room.participants[call_sid] = {"start": start_on_enter, "end": end_on_exit, "joined_at": now}
            room.updated_at = now
            if room.status == "init" and len(room.participants) >= 2 and any(
                    p["start"] for p in room.participants.values()):
                room.status = "in-progress"
            return room

    def conference_left(self, name, call_sid, reason="participant-left"):
        """A call left; the room ends when it empties or an end-on-exit participant leaves.
        Returns (room, ended)."""
        now = self.clock.now()
        with self.lock:
            room = self._open_room(name)
            if room is None or call_sid not in room.participants:
                return room, False
            flags = room.participants.pop(call_sid)
            room.updated_at = now
            if flags["end"] or not room.participants:
                room.status, room.participants = "completed", {}
                room.reason_ended = ("participant-with-end-conference-on-exit-left" if flags["end"]
                                     else "last-participant-left")
                room.call_sid_ending = call_sid
                return room, True
            return room, False

    # -- call queues (the model's <Enqueue> puts calls in them; the app sizes them) -------

    def queue_named(self, name):
        """The queue of that friendly name (the name <Enqueue> uses), or None. Under the lock."""
        return next((q for q in self.queues.values() if q.friendly_name == name), None)

    def add_queue(self, name, max_size=DEFAULT_QUEUE_SIZE):
        """Create a queue; returns it. Under the lock."""
        now = self.clock.now()
        queue = CallQueue(self.new_sid("QU", f"queue|{name}"), name, max_size, now, updated_at=now)
        self.queues[queue.sid] = queue
        return queue

    def queue_join(self, name, call_sid):
        """A call's <Enqueue>: (queue, position from 1), or (queue, None) when the queue is
        full and turns it away. A queue that does not exist yet is created, as Twilio does,
        with its default size."""
        with self.lock:
            queue = self.queue_named(name) or self.add_queue(name)
            if call_sid not in queue.members:
                if len(queue.members) >= queue.max_size:
                    return queue, None
                queue.members.append(call_sid)
            return queue, queue.members.index(call_sid) + 1

    def queue_left(self, name, call_sid):
        """A call left its queue (dequeued, <Leave>, redirected, hung up)."""
        with self.lock:
            queue = self.queue_named(name)
            if queue is not None and call_sid in queue.members:
                queue.members.remove(call_sid)

    def queue_place(self, name, call_sid):
        """(queue, position from 1) of a call in a queue; the position is None when it is not in it."""
        with self.lock:
            queue = self.queue_named(name)
            if queue is None or call_sid not in queue.members:
                return queue, None
            return queue, queue.members.index(call_sid) + 1

    def _open_room(self, name):
        return next((r for r in self.conferences.values()
                     if r.friendly_name == name and r.status != "completed"), None)

    def reset(self):
        """Forget everything (back to a plain, always-succeeding Twilio)."""
        with self.lock:
            self.requests.clear()
            self.calls.clear()
            self.ended.clear()
            self.conferences.clear()
            self.numbers.clear()
            self.deleted.clear()
            self.queues.clear()
            self.messages.clear()
            self.opted_out.clear()
            self.recordings.clear()
            self.listeners.clear()
            self._failures.clear()
            self._delays.clear()
            self._refused.clear()
            self._late_answers.clear()
            self._ordinals.clear()
            self._updates.clear()
            self.fault_counts.clear()
            self.verify.reset()
            self.create_delay = None
            self.faults = None
            self.seed = None
            self.clock = SystemClock()

    def wait_idle(self, timeout):
        """Wait until no request is being served (a delayed one its client gave up on goes on
        until it answers); False if one still is after `timeout` seconds."""
        with self._served:
            return self._served.wait_for(lambda: self._serving == 0, timeout)

    def _count_fault(self, what):
        """Count a fault, and note it on the request it befell (in `requests`)."""
        with self.lock:
            self.fault_counts[what] += 1
            if has_request_context() and "standin_request" in g:
                g.standin_request["fault"] = what

    def _take_failure(self):
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    # -- the HTTP side -----------------------------------------------------------------

    def wsgi_app(self):
        """The Flask app serving Twilio's URL layout."""
        app = Flask("twilio_standin")
        base = "/2010-04-01/Accounts/<account_sid>"

        def error(status, code, message):
            response = jsonify(code=code, message=message, status=status,
                               more_info=f"https://www.twilio.com/docs/errors/{code}")
            response.status_code = status
            return response

        @app.before_request
        def count_in():
            with self.lock:
                self._serving += 1

        @app.teardown_request
        def count_out(_exc):
            with self._served:
                self._serving -= 1
                self._served.notify_all()

        @app.before_request
        def record_and_maybe_fail():
            if request.path.startswith("/_standin"):
                return None
            g.standin_request = {"method": request.method, "path": request.path,
                                 "params": request.form.to_dict(flat=False),
                                 "query": request.args.to_dict(flat=False),
                                 "at": self.clock.now().isoformat()}
            with self.lock:
                self.requests.append(g.standin_request)
            if request.authorization is None:
                return error(401, 20003, "Authenticate")
            with self.lock:
                delay = self._delays.pop(0) if self._delays else 0
            if delay:
                time.sleep(delay)
            failure = self._take_failure()
            if failure:
                return error(*failure)
            return None

        def call_payload(account_sid, call):
            uri = f"/2010-04-01/Accounts/{account_sid}/Calls/{call.sid}.json"
            duration = None
            if call.ended_at and call.answered_at:
                duration = str(int((call.ended_at - call.answered_at).total_seconds()))
            return {
                "sid": call.sid, "account_sid": account_sid, "to": call.to, "from": call.from_,
                "to_formatted": call.to, "from_formatted": call.from_, "status": call.status,
                "direction": call.direction,
                # Under asynchronous detection Twilio promises AnsweredBy on the call once the
                # call is complete (its warning 21262), not before: shown no earlier here.
                "answered_by": call.answered_by if not call.async_amd or call.status in FINAL else None,
                "date_created": _rfc2822(call.created_at), "date_updated": _rfc2822(self.clock.now()),
                "start_time": _rfc2822(call.started_at), "end_time": _rfc2822(call.ended_at),
                "duration": duration, "parent_call_sid": None, "price": None, "price_unit": "USD",
                "api_version": "2010-04-01", "queue_time": "0", "uri": uri,
                "subresource_uris": {"notifications": uri.replace(".json", "/Notifications.json"),
                                     "recordings": uri.replace(".json", "/Recordings.json")},
            }

        def page(account_sid, key, items, resource):
            size = min(max(request.args.get("PageSize", 50, type=int), 1), 1000)
            number = max(request.args.get("Page", 0, type=int), 0)
            chunk = items[number * size:(number + 1) * size]
            uri = f"/2010-04-01/Accounts/{account_sid}/{resource}.json"
            more = (number + 1) * size < len(items)
            return jsonify({key: chunk, "page": number, "page_size": size, "start": number * size,
                            "end": number * size + max(len(chunk) - 1, 0), "uri": uri,
                            "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                            "previous_page_uri": f"{uri}?PageSize={size}&Page={number - 1}" if number else None,
                            "next_page_uri": f"{uri}?PageSize={size}&Page={number + 1}" if more else None})

        number_params = {"VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
                         "VoiceFallbackUrl": "voice_fallback_url", "VoiceFallbackMethod": "voice_fallback_method",
                         "StatusCallback": "status_callback",
                         "StatusCallbackMethod": "status_callback_method",
                         "VoiceApplicationSid": "voice_application_sid", "TrunkSid": "trunk_sid",
                         "SmsUrl": "sms_url", "SmsMethod": "sms_method"}

        def number_payload(account_sid, number):
            uri = f"/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{number['sid']}.json"
            return {**number, "account_sid": account_sid, "friendly_name": number["phone_number"],
                    "api_version": "2010-04-01", "uri": uri}

        @app.get(base + "/IncomingPhoneNumbers.json")
        def list_numbers(account_sid):
            """GET …/IncomingPhoneNumbers.json (PhoneNumber filters)."""
            wanted = request.args.get("PhoneNumber")
            with self.lock:
                found = [number_payload(account_sid, n) for n in self.numbers.values()
                         if wanted is None or n["phone_number"] == wanted]
            return page(account_sid, "incoming_phone_numbers", found, "IncomingPhoneNumbers")

        @app.post(base + "/IncomingPhoneNumbers/<number_sid>.json")
        def update_number(account_sid, number_sid):
            """POST …/IncomingPhoneNumbers/{Sid}.json: change its URLs (empty clears a binding)."""
            with self.lock:
                number = self.numbers.get(number_sid)
                if number is None:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                for param, name in number_params.items():
                    if param in request.form:
                        number[name] = request.form[param] or None
                return jsonify(number_payload(account_sid, number))

        def message_payload(account_sid, message):
            uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{message['sid']}.json"
            return {**{k: v for k, v in message.items() if k != "date_created"}, "account_sid": account_sid,
                    "api_version": "2010-04-01", "num_segments": "1", "num_media": "0", "price": None,
                    "date_created": _rfc2822(message["date_created"]), "date_sent": None,
                    "date_updated": _rfc2822(self.clock.now()), "error_message": None, "uri": uri,
                    "subresource_uris": {"media": uri.replace(".json", "/Media.json")}}

        @app.post(base + "/Messages.json")
        def create_message(account_sid):
            """POST …/Messages.json: a text, through a Messaging Service or from a number."""
            form = request.form
            if not form.get("To"):
                return error(400, 21604, "A 'To' phone number is required.")
            if not form.get("Body"):
                return error(400, 21602, "Message body is required.")
            if not (form.get("MessagingServiceSid") or form.get("From")):
                return error(400, 21603, "A 'From' phone number is required.")
            with self.lock:
                if form["To"] in self.opted_out:
                    return error(400, 21610, "Attempt to send to unsubscribed recipient")
                sid = self.new_sid("SM")
                message = {"sid": sid, "to": form["To"], "from": form.get("From"), "body": form["Body"],
                           "messaging_service_sid": form.get("MessagingServiceSid"),
                           "status": "accepted" if form.get("MessagingServiceSid") else "queued",
                           "direction": "outbound-api", "error_code": None,
                           "status_callback": form.get("StatusCallback"), "date_created": self.clock.now()}
                self.messages[sid] = message
                response = jsonify(message_payload(account_sid, message))
            response.status_code = 201
            return response

        @app.get(base + "/Messages.json")
        def list_messages(account_sid):
            """GET …/Messages.json: texts, newest first, filtered by To and From."""
            with self.lock:
                found = sorted(self.messages.values(), key=lambda m: m["date_created"], reverse=True)
                for name, key in (("To", "to"), ("From", "from")):
                    if request.args.get(name):
                        found = [m for m in found if m[key] == request.args[name]]
                payloads = [message_payload(account_sid, m) for m in found]
            return page(account_sid, "messages", payloads, "Messages")

        @app.route(base + "/Messages/<message_sid>.json", methods=["GET", "DELETE"])
        def one_message(account_sid, message_sid):
            """GET or DELETE …/Messages/{Sid}.json."""
            with self.lock:
                message = self.messages.get(message_sid)
                if message is None:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                if request.method == "DELETE":
                    del self.messages[message_sid]
                    return "", 204
                return jsonify(message_payload(account_sid, message))

        def recording_payload(account_sid, recording):
            uri = f"/2010-04-01/Accounts/{account_sid}/Recordings/{recording['sid']}.json"
            return {"sid": recording["sid"], "account_sid": account_sid, "call_sid": recording["call_sid"],
                    "duration": recording["duration"], "status": recording["status"], "channels": 1,
                    "source": "RecordVerb", "api_version": "2010-04-01", "uri": uri,
                    "date_created": _rfc2822(recording["date_created"]),
                    "media_url": f"{request.host_url.rstrip('/')}{uri.replace('.json', '')}"}

        @app.route(base + "/Recordings/<recording_sid>.json", methods=["GET", "DELETE"])
        def one_recording(account_sid, recording_sid):
            """GET or DELETE …/Recordings/{Sid}.json."""
            with self.lock:
                recording = self.recordings.get(recording_sid)
                if recording is None:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                if request.method == "DELETE":
                    del self.recordings[recording_sid]
                    return "", 204
                return jsonify(recording_payload(account_sid, recording))

        @app.get(base + "/Recordings/<recording_sid>/Transcriptions.json")
        def list_transcriptions(account_sid, recording_sid):
            """GET …/Recordings/{Sid}/Transcriptions.json."""
            with self.lock:
                recording = self.recordings.get(recording_sid)
                if recording is None:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                payloads = [{"sid": t, "account_sid": account_sid, "recording_sid": recording_sid,
                             "status": "completed", "api_version": "2010-04-01",
                             "uri": f"/2010-04-01/Accounts/{account_sid}/Transcriptions/{t}.json"}
                            for t in recording["transcriptions"]]
            return page(account_sid, "transcriptions", payloads, f"Recordings/{recording_sid}/Transcriptions")

        @app.route(base + "/Recordings/<recording_sid>/Transcriptions/<transcription_sid>.json",
                   methods=["DELETE"])
        def one_transcription(account_sid, recording_sid, transcription_sid):
            """DELETE …/Recordings/{RecordingSid}/Transcriptions/{Sid}.json."""
            with self.lock:
                recording = self.recordings.get(recording_sid)
                if recording is None or transcription_sid not in recording["transcriptions"]:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                recording["transcriptions"].remove(transcription_sid)
                return "", 204

        @app.get(base + "/Recordings/<recording_sid>.mp3")
        def recording_audio(account_sid, recording_sid):
            """GET …/Recordings/{Sid}.mp3: the audio (HTTP auth required, as an account may)."""
            with self.lock:
                recording = self.recordings.get(recording_sid)
                if recording is None:
                    return error(404, 20404, f"The requested resource {request.path} was not found")
                return Response(recording["audio"], mimetype="audio/mpeg")

        @app.post(base + "/Calls.json")
        def create_call(account_sid):
            """POST …/Calls.json: place a call (it rings until told otherwise)."""
            form = request.form
            if not form.get("To") or not form.get("From"):
                return error(400, 21201, "No 'To' or 'From' number is specified")
            with self.lock:
                refused = self._refused.get(form["To"])
            if refused:
                return error(400, refused, REFUSALS[refused].format(to=form["To"]))
            nth = self._next_ordinal(self._ordinals, form["To"])
            fault = self.faults.for_create(form["To"], nth) if self.faults else None
            if fault and fault[0] == "error":
                self._count_fault("create refused for load")
                return error(*fault[1:])
            now = self.clock.now()
            call = PlacedCall(self.new_sid("CA", f"{form['To']}#{nth}"), form["To"], form["From"],
                              form.get("Url", ""),
                              form.get("StatusCallback"), form.get("Timeout", type=int),
                              form.get("MachineDetection"), fallback_url=form.get("FallbackUrl"),
                              machine_detection_timeout=form.get("MachineDetectionTimeout", type=int),
                              status_callback_events=form.getlist("StatusCallbackEvent"),
                              created_at=now, started_at=now,
                              # Twilio ignores Twiml when a Url comes with it.
                              twiml=None if form.get("Url") else form.get("Twiml"),
                              async_amd=form.get("AsyncAmd") == "true",
                              amd_callback=form.get("AsyncAmdStatusCallback"))
            with self.lock:
                self.calls[call.sid] = call
                late = self._late_answers.pop(0) if self._late_answers else 0
            self._notify("call_created", call)
            if self.create_delay is not None:
                late = max(late, self.create_delay(call) or 0)
            if fault:
                self._count_fault("create answered after the client gave up" if fault[0] == "lost"
                                  else "create answered late")
                late = max(late, fault[1])
            if late:
                time.sleep(late)
            response = jsonify(call_payload(account_sid, call))
            response.status_code = 201
            return response

        @app.get(base + "/Calls.json")
        def list_calls(account_sid):
            """GET …/Calls.json: calls, newest first, filtered as Twilio filters them."""
            args = request.args
            calls = sorted(self.placed(), key=lambda c: c.created_at or datetime.min.replace(
                tzinfo=timezone.utc), reverse=True)
            for name, attr in (("To", "to"), ("From", "from_"), ("Status", "status")):
                if args.get(name):
                    calls = [c for c in calls if getattr(c, attr) == args[name]]
            for name in ("StartTime>", "StartTime<", "StartTime"):
                if not args.get(name):
                    continue
                try:
                    when, whole_day = _parse_time(args[name])
                except ValueError:
                    return error(400, 20001, f"Invalid value for {name}")
                end = when + timedelta(days=1) if whole_day else when
                if name == "StartTime>":
                    calls = [c for c in calls if c.started_at and c.started_at >= when]
                elif name == "StartTime<":
                    calls = [c for c in calls if c.started_at and c.started_at < end]
                else:
                    calls = [c for c in calls if c.started_at and when <= c.started_at < end]
            return page(account_sid, "calls", [call_payload(account_sid, c) for c in calls], "Calls")

        def update_call(account_sid, call_sid, call, ended):
            """Redirect or hang up a call, as Twilio does once a request reaches it."""
            if ended:
                return error(400, 21220, "Call is not in-progress. Cannot redirect.")
            if call is None:
                call = PlacedCall(call_sid, "", "", "", None, None, None, "in-progress",
                                  direction="inbound", created_at=self.clock.now(),
                                  started_at=self.clock.now())
                with self.lock:
                    self.calls[call_sid] = call
            wanted = request.form.get("Status")
            if wanted == "canceled" and call.status == "in-progress":
                return jsonify(call_payload(account_sid, call))
            if wanted in ("completed", "canceled"):
                final = "canceled" if wanted == "canceled" else "completed"
                with self.lock:
                    call.status, call.ended_at = final, self.clock.now()
                    self.ended.add(call_sid)
                self._notify("call_hung_up", call)
            elif request.form.get("Url"):
                with self.lock:
                    call.redirects.append(request.form["Url"])
                self._notify("call_redirected", call, request.form["Url"])
            return jsonify(call_payload(account_sid, call))

        @app.route(base + "/Calls/<call_sid>.json", methods=["GET", "POST", "DELETE"])
        def one_call(account_sid, call_sid):
            """GET, POST or DELETE …/Calls/{Sid}.json: fetch, redirect or hang up a call, or
            delete the record of one that ended."""
            with self.lock:
                call = self.calls.get(call_sid)
                ended = call_sid in self.ended or (call is not None and call.status in FINAL)
                if request.method == "DELETE":
                    if call is None and not ended:
                        return error(404, 20404, f"The requested resource {request.path} was not found")
                    if not ended:
                        return error(400, 20001, "Call in progress cannot be deleted")
                    self.calls.pop(call_sid, None)
                    self.deleted.add(call_sid)
                    return "", 204
            if request.method == "GET":
                if call is None:
                    status = "completed" if ended else "in-progress"
                    call = PlacedCall(call_sid, "", "", "", None, None, None, status, direction="inbound")
                return jsonify(call_payload(account_sid, call))
            fault = self.faults.for_update(call_sid, self._next_ordinal(self._updates, call_sid)) \
                if self.faults else None
            if fault and fault[0] == "error":
                self._count_fault(f"update answered {fault[1]}")
                return error(*fault[1:])
            if fault and not fault[1]:
                # The request never got through; the client hears nothing and gives up.
                self._count_fault("update timed out, not applied")
                time.sleep(self.faults.overdue)
                return error(503, 20503, "Service Unavailable")
            answer = update_call(account_sid, call_sid, call, ended)
            if fault:
                # Applied, but the answer comes after the client gave up.
                self._count_fault("update timed out, applied")
                time.sleep(self.faults.overdue)
            return answer

        def conference_payload(account_sid, room):
            uri = f"/2010-04-01/Accounts/{account_sid}/Conferences/{room.sid}.json"
            return {"sid": room.sid, "account_sid": account_sid, "friendly_name": room.friendly_name,
                    "status": room.status, "region": "us1", "api_version": "2010-04-01",
                    "date_created": _rfc2822(room.created_at), "date_updated": _rfc2822(room.updated_at),
                    "reason_conference_ended": room.reason_ended,
                    "call_sid_ending_conference": room.call_sid_ending, "uri": uri,
                    "subresource_uris": {"participants": uri.replace(".json", "/Participants.json")}}

        def room_of(sid_or_name):
            with self.lock:
                room = self.conferences.get(sid_or_name)
                return room or self._open_room(sid_or_name)

        @app.get(base + "/Conferences.json")
        def list_conferences(account_sid):
            """GET …/Conferences.json, by FriendlyName and Status."""
            with self.lock:
                rooms = sorted(self.conferences.values(), key=lambda r: r.created_at, reverse=True)
            for name, attr in (("FriendlyName", "friendly_name"), ("Status", "status")):
                if request.args.get(name):
                    rooms = [r for r in rooms if getattr(r, attr) == request.args[name]]
            return page(account_sid, "conferences", [conference_payload(account_sid, r) for r in rooms],
                        "Conferences")

        @app.get(base + "/Conferences/<conference_sid>.json")
        def one_conference(account_sid, conference_sid):
            """GET …/Conferences/{Sid}.json."""
            room = room_of(conference_sid)
            if room is None:
                return error(404, 20404, "The requested resource was not found")
            return jsonify(conference_payload(account_sid, room))

        def participant_payload(account_sid, room, call_sid, flags):
            return {"account_sid": account_sid, "call_sid": call_sid, "conference_sid": room.sid,
                    "label": None, "coaching": False, "hold": False, "muted": False,
                    "status": "connected", "start_conference_on_enter": flags["start"],
                    "end_conference_on_exit": flags["end"], "date_created": _rfc2822(flags["joined_at"]),
                    "date_updated": _rfc2822(flags["joined_at"]),
                    "uri": f"/2010-04-01/Accounts/{account_sid}/Conferences/{room.sid}/Participants/"
                           f"{call_sid}.json"}

        @app.get(base + "/Conferences/<conference_sid>/Participants.json")
        def list_participants(account_sid, conference_sid):
            """GET …/Participants.json: who is in the conference now (none once it ended)."""
            room = room_of(conference_sid)
            if room is None:
                return error(404, 20404, "The requested resource was not found")
            with self.lock:
                items = [participant_payload(account_sid, room, sid, flags)
                         for sid, flags in room.participants.items()]
            return page(account_sid, "participants", items, f"Conferences/{room.sid}/Participants")

        @app.route(base + "/Conferences/<conference_sid>/Participants/<call_sid>.json",
                   methods=["GET", "POST"])
        def one_participant(account_sid, conference_sid, call_sid):
            """GET …/Participants/{CallSid}.json: 404 unless that call is in it now; POST with
            AnnounceUrl plays that document to this participant alone."""
            room = room_of(conference_sid)
            with self.lock:
                flags = room.participants.get(call_sid) if room else None
                call = self.calls.get(call_sid)
                announce = request.method == "POST" and request.form.get("AnnounceUrl")
                if flags is not None and announce and call is not None:
                    call.announcements.append(announce)
            if flags is None:
                return error(404, 20404, "The requested resource was not found")
            if announce and call is not None:
                self._notify("call_announced", call, announce)
            return jsonify(participant_payload(account_sid, room, call_sid, flags))

        def queue_payload(account_sid, queue):
            return {"sid": queue.sid, "account_sid": account_sid, "friendly_name": queue.friendly_name,
                    "max_size": queue.max_size, "current_size": len(queue.members), "average_wait_time": 0,
                    "date_created": _rfc2822(queue.created_at), "date_updated": _rfc2822(queue.updated_at),
                    "uri": f"/2010-04-01/Accounts/{account_sid}/Queues/{queue.sid}.json"}

        def max_size_of(form, default):
            """MaxSize of a create or update: (size, None), or (None, the error to answer)."""
            text = form.get("MaxSize")
            if text is None:
                return default, None
            if not text.strip().isdigit() or not 1 <= int(text) <= MAX_QUEUE_SIZE:
                return None, error(400, 20001, f"MaxSize must be a whole number from 1 to {MAX_QUEUE_SIZE}")
            return int(text), None

        @app.get(base + "/Queues.json")
        def list_queues(account_sid):
            """GET …/Queues.json: every queue (the API filters none), oldest first."""
            with self.lock:
                queues = sorted(self.queues.values(), key=lambda q: q.created_at)
                items = [queue_payload(account_sid, q) for q in queues]
            return page(account_sid, "queues", items, "Queues")

        @app.post(base + "/Queues.json")
        def create_queue(account_sid):
            """POST …/Queues.json: a new queue (FriendlyName, MaxSize)."""
            name = (request.form.get("FriendlyName") or "").strip()
            if not name or len(name) > 64:
                return error(400, 20001, "FriendlyName is required, at most 64 characters")
            size, problem = max_size_of(request.form, DEFAULT_QUEUE_SIZE)
            if problem:
                return problem
            with self.lock:
                if self.queue_named(name) is not None:
                    # The app reads the list before it creates, so it never asks for this.
                    return error(400, 20001, f"A queue named {name} already exists")
                payload = queue_payload(account_sid, self.add_queue(name, size))
            response = jsonify(payload)
            response.status_code = 201
            return response

        @app.route(base + "/Queues/<queue_sid>.json", methods=["GET", "POST"])
        def one_queue(account_sid, queue_sid):
            """GET or POST …/Queues/{Sid}.json: fetch or update (FriendlyName, MaxSize) a queue."""
            with self.lock:
                queue = self.queues.get(queue_sid)
            if queue is None:
                return error(404, 20404, "The requested resource was not found")
            if request.method == "POST":
                size, problem = max_size_of(request.form, queue.max_size)
                if problem:
                    return problem
                with self.lock:
                    queue.max_size = size
                    queue.friendly_name = request.form.get("FriendlyName") or queue.friendly_name
                    queue.updated_at = self.clock.now()
            with self.lock:
                return jsonify(queue_payload(account_sid, queue))

        # -- local controls (the simulator in another process drives calls through these) --

        @app.post("/_standin/queues/<path:name>/<action>")
        def standin_queue(name, action):
            """A call joined or left a queue, or asks its place in it (for the simulator)."""
            sid = request.form.get("CallSid", "")
            if action == "join":
                queue, position = self.queue_join(name, sid)
            elif action == "leave":
                self.queue_left(name, sid)
                queue, position = self.queue_place(name, sid)
            else:
                queue, position = self.queue_place(name, sid)
            with self.lock:
                return jsonify(sid=queue.sid if queue else None, position=position,
                               size=len(queue.members) if queue else 0,
                               max_size=queue.max_size if queue else DEFAULT_QUEUE_SIZE)

        @app.post("/_standin/recordings")
        def standin_recording():
            """A <Record> made a recording (for the simulator): its SID."""
            return jsonify(sid=self.add_recording(request.form.get("CallSid", ""),
                                                  int(request.form.get("seconds", "0")),
                                                  transcribed=request.form.get("transcribed") == "true"))

        @app.get("/_standin/calls")
        def standin_calls():
            """Calls placed or redirected so far (for the simulator)."""
            return jsonify([c.as_dict() for c in self.placed()])

        @app.post("/_standin/calls/<call_sid>/status")
        def standin_status(call_sid):
            """Say what happened to a call (for the simulator): a lifecycle step."""
            status = request.form.get("status", "completed")
            changed = self.set_status(call_sid, status, request.form.get("answered_by"))
            if not changed and status in FINAL:
                # Older callers end calls in any state; a final status stays final.
                with self.lock:
                    self.ended.add(call_sid)
            return jsonify(ok=changed)

        @app.post("/_standin/calls/<call_sid>/detected")
        def standin_detected(call_sid):
            """Asynchronous detection decided on a call (for the simulator): its AnsweredBy."""
            self.detected(call_sid, request.form.get("answered_by"))
            return jsonify(ok=True)

        @app.post("/_standin/conferences/<path:name>/<action>")
        def standin_conference(name, action):
            """A call joined or left a conference (for the simulator)."""
            sid = request.form.get("CallSid", "")
            if action == "join":
                room = self.conference_joined(name, sid, request.form.get("start", "true") == "true",
                                              request.form.get("end", "false") == "true")
                return jsonify(sid=room.sid, status=room.status, ended=False)
            room, ended = self.conference_left(name, sid)
            return jsonify(sid=room.sid if room else None, status=room.status if room else None, ended=ended)

        @app.post("/_standin/config")
        def standin_config():
            """Refuse numbers, time out create requests, fail requests by a seed (RestFaults's
            fields, or null for none) (for the simulator)."""
            body = request.get_json(silent=True) or {}
            try:
                for number, code in (body.get("refuse") or {}).items():
                    self.refuse(number, int(code))
                late = body.get("time_out_after_placing")
                if late:
                    self.time_out_after_placing(float(late.get("seconds", 10)), int(late.get("count", 1)))
                if body.get("faults") is not None:
                    self.faults = RestFaults(**body["faults"]) if body["faults"] else None
            except (TypeError, ValueError) as exc:
                return error(400, 20001, str(exc))
            return jsonify(ok=True)

        @app.get("/_standin/messages")
        def standin_messages():
            """Texts sent so far (for the simulator)."""
            return jsonify([{**m, "date_created": m["date_created"].isoformat()} for m in self.texts()])

        @app.post("/_standin/messages/inbound")
        def standin_inbound():
            """A text comes in from a phone (for the simulator): its MessageSid."""
            return jsonify(sid=self.inbound_text(request.form.get("From", ""), request.form.get("To", ""),
                                                 request.form.get("Body", "")))

        @app.get("/_standin/requests")
        def list_requests():
            """Every REST request received."""
            with self.lock:
                return jsonify(self.requests)

        add_verify_routes(app, self.verify, error)
        return app


class StandInServer:
    """The stand-in served over HTTP on loopback in a background thread."""

    def __init__(self, standin=None, host="127.0.0.1", port=0):
        self.standin = standin or TwilioStandIn()
        self._server = make_server(host, port, self.standin.wsgi_app(), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self):
        """Stop serving."""
        self._server.shutdown()
