"""A model of Twilio's voice side: phones, calls running TwiML, conferences, status callbacks.

`make call` (the simulator) and `make soak` both play Twilio with it against the app:

- **one TwiML engine** (`CallRun`) interprets every call's documents — Say, Play, Pause,
  Gather, Redirect, Enqueue (with its wait loop and QueueTime), Leave, Hangup,
  Dial/Conference, Record (refused inside a queue's wait, as Twilio refuses it; its action,
  recording status and transcription callbacks reported, the last two through the chaos) —
  as a loop, never recursing per step, with the caller's patience checked in every wait;
- **audio takes its real time**: a <Play> lasts its track's length times its `loop` (0:
  a thousand plays): Twilio's own hold tracks from a table, audio the app serves from its
  WAV header, any other track as `Network(tracks=...)` says; the next waitUrl request comes
  only when a document has played out, and only waitUrl requests carry the queue's
  parameters (QueueSid, QueueTime, QueuePosition…), never one reached through <Redirect>;
- **`<Say>` only in a voice and language Twilio's table lists together**
  (`callback.domain.voice_table`, as pinned): any other pair fails the verb, and the call
  hears "an application error has occurred", as Twilio warns it may;
- **queues with a size**: `<Enqueue>` joins the stand-in's queue of that name (created on
  first use with Twilio's default size, or sized by the app through the Queues API); a full
  queue turns the call away, its action requested with `QueueResult=queue-full`. The waitUrl
  hears the caller's real `QueuePosition`, `CurrentQueueSize` and `MaxQueueSize`;
- **phones** answer calls the app places the way people and machines do: a person who
  listens, then presses the keys they are asked for, a voicemail that answers and presses
  nothing (`AnsweredBy=machine_start` when the app asked for detection), busy, no answer,
  or a number Twilio refuses; a phone already on a call answers busy (`one_call_per_phone`);
- **answering-machine detection** as the create asked: synchronous, the callee waits in
  silence (3 s for a person, 5 s for a greeting) before the Url is fetched with AnsweredBy;
  asynchronous (`AsyncAmd=true`), the call's TwiML runs at once (inline `Twiml`, or the
  Url) and the verdict is posted to `AsyncAmdStatusCallback` 2-4 s after the answer,
  through the chaotic network like any callback. Each answering person's silence from the
  answer to the first sound is kept (`silences`), and each voicemail an agent heard;
- **conference announcements** (`AnnounceUrl` on a participant) are heard by that
  participant alone; an agent told of a machine while one is on the line presses star,
  which leaves the conference when their `<Dial hangupOnStar>` allows it;
- **calls the app places** wait `queued` in Twilio's outbound queue for the account's pace
  (`Pacing`: 1 call a second by default, shared with the account's other traffic), then
  report each progress event the create asked for (`initiated`, `ringing`, `answered`,
  `completed`, each with its `SequenceNumber`);
- **holding callers** may hang up at a moment of an offer to an agent (`HangUpPlan`): while
  the agent's phone rings, during the whisper, once the agent pressed 1, or as the app
  moves them out of the queue; the agent call that offers them is the one whose URLs name
  their CallSid;
- **conferences** send `participant-join`, `participant-leave`, `conference-start` and
  `conference-end` to the `<Conference statusCallback>` with `ConferenceSid`,
  `FriendlyName` and `CallSid`, and play a participant their `waitUrl` until the
  conference starts, as cautiously as Twilio's documents allow: a bare audio file once, a
  TwiML document's `<Play>` as often as its `loop` says, then silence, in which a person
  with `silence_seconds` hangs up;
- **the network** delivers status callbacks and conference events late, twice, out of
  order or never, as `Chaos` says, and signs every request exactly as Twilio does.

The REST side is `devtools.standin`: in-process (`LocalBackend`) the model hears
of calls the moment the app creates them; from another process (`RemoteBackend`) it
polls the stand-in of `make run`.
"""
import hashlib
import heapq
import io
import random
import threading
import time
import uuid
import wave
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote, urlencode, urljoin, urlsplit

import requests
from twilio.request_validator import RequestValidator

from callback.domain.voice_table import ROWS as VOICE_ROWS

ACCOUNT_SID = "AC" + "0" * 32
# How long Twilio's own hold tracks play, by file name (served from TWILIO_MUSIC_BUCKETS; the
# "default classical playlist" the <Enqueue> page names plays them all, shuffled). Twilio
# does not publish their lengths and no copy could be fetched when this table was written:
# these are estimates of whole pieces of music (the Chopin nocturne and the Brahms
# intermezzo at their usual tempo, the others at three minutes). Measure one with
# `ffprobe -show_entries format=duration FILE` to correct it.
TWILIO_HOLD_TRACKS = {
    "BusyStrings.mp3": 180,
    "ClockworkWaltz.mp3": 180,
    "ith_brahms-116-4.mp3": 280,
    "ith_chopin-15-2.mp3": 210,
    "MARKOVICHAMP-Borghestral.mp3": 180,
    "Mellotroniac_-_Flight_Of_Young_Hearts_Flute.mp3": 180,
    "oldDog_-_endless_goodbye_(instr.).mp3": 180,
}
TWILIO_MUSIC_BUCKETS = ("com.twilio.music.classical", "com.twilio.sounds.music")  # S3, either URL style
UNKNOWN_TRACK_SECONDS = 15  # a track the model has no length for (counted: give it one)
PLAY_LOOP_ZERO = 1000  # <Play loop="0"> repeats until hang-up or this many plays (Twilio's <Play> page)
FETCH_SECONDS = 1  # simulated time a webhook round trip stands for
MAX_DOCUMENTS = 5000  # TwiML documents one call may run before the model calls it a loop
DEFAULT_MESSAGE_SECONDS = 20  # how long a caller speaks at a <Record>, unless told
# The voice and language pairs Twilio's table lists (as pinned in the app), and what <Say>
# falls back to without one of the attributes: the account's default voice and language.
SAY_PAIRS = frozenset((voice, language) for language, voice, _kind, _gender in VOICE_ROWS)
SAY_VOICES = {voice for voice, _ in SAY_PAIRS}
SAY_LANGUAGES = {language for _, language in SAY_PAIRS}
# <Play loop="0"> plays "until the call is hung up or 1000 iterations are performed".
PLAY_FOREVER = 1000
# Twilio ends every call after four hours: no wait audio is worked out past that.
LONGEST_CALL = 4 * 3600
FINAL = ("completed", "busy", "no-answer", "failed", "canceled")
# Moments of an offer to an agent at which a holding caller may hang up (HangUpPlan).
AGENT_RUNG = "agent-rung"  # the agent's phone rings
AGENT_ANSWERED = "agent-answered"  # the agent hears the whisper
AGENT_ACCEPTED = "agent-accepted"  # the agent pressed 1
MOVED = "moved"  # the app redirects the caller out of the queue to the agent
OFFER_MOMENTS = (AGENT_RUNG, AGENT_ANSWERED, AGENT_ACCEPTED, MOVED)


class Redirected(Exception):
    """The app moved this call to new TwiML through the REST API."""

    def __init__(self, url):
        super().__init__(url)
        self.url = url


class HungUp(Exception):
    """The call is over; `who` ended it ('caller', 'app', 'rest', 'callee')."""

    def __init__(self, who):
        super().__init__(who)
        self.who = who


@dataclass
class Chaos:
    """What the network does to status callbacks and conference events."""

    duplicate: float = 0.0  # share delivered twice
    lose: float = 0.0  # share never delivered
    max_delay: float = 0.0  # each delivery waits up to this many simulated seconds (so reorders)

    def describe(self):
        """One line for logs."""
        return (f"duplicate {self.duplicate:.0%}, lose {self.lose:.0%}, "
                f"delay up to {self.max_delay:g} s (reorders)")


@dataclass
class Pacing:
    """Twilio's pace for calls created through the REST API: `cps` a second per account
    (Twilio's default is 1); a call beyond it waits `queued` for its turn. The account's
    other traffic (another app, a campaign) takes turns too: bursts of `burst_size` calls
    about every `burst_every` simulated seconds (0: none)."""

    cps: float = 1.0
    burst_every: float = 0.0
    burst_size: tuple = (10, 40)

    def describe(self):
        """One line for logs."""
        other = (f", other calls of the account in bursts of {self.burst_size[0]}-{self.burst_size[1]} "
                 f"about every {self.burst_every:g} s" if self.burst_every else "")
        return f"{self.cps:g} call(s) a second leave Twilio's outbound queue{other}"


@dataclass(frozen=True)
class HangUpPlan:
    """When a holding caller hangs up: `delay` simulated seconds after `moment` (one of
    OFFER_MOMENTS) first comes in an offer of them to an agent."""

    moment: str
    delay: float = 0.0


@dataclass
class Behaviour:
    """What one phone does when it rings.

    answer: human (a person), voicemail (answers and presses nothing), busy, no-answer,
    failed. keys: what a person presses at a Gather ('' for nothing).
    """

    answer: str = "human"
    keys: str = "1"
    ring_seconds: float = 4
    talk_seconds: float = 60
    alone_seconds: float = 120
    think_seconds: float = 0  # a person listens this long to a prompt before pressing keys
    # A person waiting alone in a conference hangs up after this long a silence (None:
    # silence does not make them hang up; `alone_seconds` still does).
    silence_seconds: float | None = None

    @property
    def is_person(self):
        """A human answered (not a machine, not nobody)."""
        return self.answer == "human"


class Phone:
    """A number and how it behaves call after call (the last behaviour repeats)."""

    def __init__(self, number, kind, behaviours, name=None):
        self.number, self.kind = number, kind
        self.behaviours = list(behaviours) or [Behaviour()]
        self.name = name or number
        self.calls = 0
        self.lock = threading.Lock()

    def next_behaviour(self):
        """The behaviour for the next call to this phone."""
        with self.lock:
            n, self.calls = self.calls, self.calls + 1
        return self.behaviours[min(n, len(self.behaviours) - 1)]


class Keys:
    """Where a caller's key presses come from: a script, a responder, or the keyboard."""

    def __init__(self, scripted=None, responder=None, out=None):
        self.scripted = list(scripted) if scripted is not None else None
        self.responder = responder
        self.out = out

    def next(self, prompt):
        """The next entry: digits, or '' for pressing nothing."""
        if self.responder is not None:
            return self.responder(prompt)
        if self.scripted is not None:
            if not self.scripted:
                return ""
            entry = self.scripted.pop(0).strip()
            pressed = "" if entry in ("wait", "-") else entry
            if self.out:
                self.out("caller", f"presses {pressed or '(nothing)'}")
            return pressed
        try:
            return input(f"{prompt} (keys, Enter for nothing): ").strip()
        except EOFError:
            return ""


def answering_caller(number_digits):
    """A caller who answers every prompt sensibly: '1' to menus, offers and confirmations,
    their ten digits when asked for a number."""

    def respond(prompt):
        text = prompt.lower()
        if "press 1" in text or "number" not in text:
            return "1"
        return number_digits

    return respond


class Timeline:
    """Simulated time: `speed` simulated seconds pass per real second.

    Stepped (with `clock` a FixedClock shared with the app): simulated time moves only as
    the model's calls wait, by exactly their waits, at once. For tests of one call at a time:
    several calls waiting together would each move it.
    """

    def __init__(self, speed=1.0, clock=None, stepped=False):
        self.speed = float(speed)
        self.clock = clock
        self.stepped = stepped

    def real(self, seconds):
        """Real seconds that `seconds` of simulated time take."""
        return max(seconds, 0) / self.speed

    def now(self):
        """The simulated now (the app's clock when shared)."""
        return self.clock.now() if self.clock else datetime.now(timezone.utc)


class Scheduler:
    """Runs deliveries at their (real) time on a few worker threads."""

    def __init__(self, workers=6):
        self._heap, self._seq = [], 0
        self._cond = threading.Condition()
        self._busy = 0
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self._threads:
            thread.start()

    def after(self, seconds, fn, *args):
        """Run fn(*args) after `seconds` real seconds."""
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic() + seconds, self._seq, fn, args))
            self._cond.notify()

    def idle(self):
        """Nothing waiting and nothing running."""
        with self._cond:
            return not self._heap and not self._busy

    def stop(self):
        """Drop what is left and stop the workers."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()

    def _work(self):
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, fn, args = heapq.heappop(self._heap)
                self._busy += 1
            try:
                fn(*args)
            except Exception:  # a delivery that failed is counted by whoever sent it
                pass
            finally:
                with self._cond:
                    self._busy -= 1


@dataclass
class Answer:
    """The app's answer to one webhook."""

    status: int
    root: ET.Element | None


class Webhooks:
    """Signs each request exactly as Twilio does and sends it to the app.

    URLs the app hands out are public (its PUBLIC_BASE_URL); the request goes to one of
    `targets` (the app's real addresses, several when several processes serve it), signed
    over the public URL, as a load balancer in front of many Lambdas would see it.
    """

    def __init__(self, auth_token, public_base, targets, timeout=15):
        self.validator = RequestValidator(auth_token)
        self.public_base = public_base.rstrip("/")
        self.targets = [t.rstrip("/") for t in targets]
        self.timeout = timeout
        self.local = threading.local()
        self.errors = []
        self.lock = threading.Lock()
        self.sent = 0

    def absolute(self, url):
        """A URL as Twilio would request it (relative ones against the public base)."""
        if url.startswith("/"):
            return self.public_base + url
        return urljoin(self.public_base + "/", url)

    def _session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def _address(self, url):
        """Where a public URL of the app is reached (one of `targets`), or the URL itself."""
        target = random.choice(self.targets) if len(self.targets) > 1 else self.targets[0]
        return target + url[len(self.public_base):] if url.startswith(self.public_base) else url

    def media(self, url):
        """The body of audio the app serves at `url`, fetched as Twilio fetches <Play> audio
        (a GET without parameters or signature); None for audio hosted elsewhere or an error."""
        url = self.absolute(url)
        if not url.startswith(self.public_base):
            return None
        response = self._session().get(self._address(url), timeout=self.timeout)
        return response.content if response.status_code == 200 else None

    def _send(self, url, params, method="POST"):
        """A request as Twilio signs it: POST with a form, or GET with the parameters added
        to the query string (`params` None: unsigned, as Twilio fetches audio it plays)."""
        url = self.absolute(url)
        headers = {}
        if params is not None:
            params = {k: str(v) for k, v in params.items() if v is not None}
            if method == "GET" and params:
                url, params = url + ("&" if "?" in url else "?") + urlencode(params), {}
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, params)
        address = self._address(url)
        with self.lock:
            self.sent += 1
        if method == "GET":
            return url, self._session().get(address, headers=headers, timeout=self.timeout)
        return url, self._session().post(address, data=params, headers=headers, timeout=self.timeout)

    @staticmethod
    def _twiml(response):
        if response.status_code != 200:
            return None
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            return None
        return root if root.tag == "Response" else None

    def post(self, url, params):
        """A signed POST; the parsed TwiML (None when the answer is not TwiML)."""
        url, response = self._send(url, params)
        root = self._twiml(response)
        if root is None:
            with self.lock:
                self.errors.append((url, response.status_code, response.text[:200]))
            return Answer(response.status_code, None)
        return Answer(200, root)

    def wait_audio(self, url, params, method="POST"):
        """A conference's waitUrl, as Twilio fetches it: (TwiML root, None), (None, audio
        bytes) for an audio file, or (None, None) for anything else (an error, kept)."""
        url, response = self._send(url, params, method)
        if response.status_code == 200 and response.headers.get("Content-Type", "").startswith("audio/"):
            return None, response.content
        root = self._twiml(response)
        if root is None:
            with self.lock:
                self.errors.append((url, response.status_code, response.text[:200]))
        return root, None

    def audio_seconds(self, url):
        """How long the audio at `url` plays: a WAV of the app's is fetched (unsigned, as
        Twilio fetches what it plays) and measured; any other clip stands for UNKNOWN_TRACK_SECONDS."""
        if not self.absolute(url).startswith(self.public_base):
            return UNKNOWN_TRACK_SECONDS
        _, response = self._send(url, None, "GET")
        return wav_seconds(response.content) if response.status_code == 200 else 0


def wav_seconds(audio, unknown=UNKNOWN_TRACK_SECONDS):
    """The length of a WAV file in seconds (`unknown` for audio that is not WAV)."""
    try:
        with wave.open(io.BytesIO(audio)) as clip:
            return clip.getnframes() / clip.getframerate()
    except (wave.Error, EOFError):
        return unknown


class LocalBackend:
    """The stand-in in this process: the model hears of REST calls as they happen."""

    def __init__(self, standin):
        self.standin = standin

    def attach(self, network):
        """Start telling `network` what the app does through the REST API."""
        self.standin.add_listener(network)

    def set_status(self, sid, status, answered_by=None):
        """A lifecycle step of a call."""
        self.standin.set_status(sid, status, answered_by)

    def detected(self, sid, answered_by):
        """Asynchronous detection decided on a call."""
        self.standin.detected(sid, answered_by)

    def conference_joined(self, name, call_sid, start, end):
        """Returns the conference SID."""
        return self.standin.conference_joined(name, call_sid, start, end).sid

    def conference_left(self, name, call_sid):
        """Returns whether the conference ended."""
        return self.standin.conference_left(name, call_sid)[1]

    def refuse(self, number, code):
        """Twilio refuses calls to this number with `code`."""
        self.standin.refuse(number, code)

    def time_out_after_placing(self, seconds, count):
        """The next create requests time out after placing their calls."""
        self.standin.time_out_after_placing(seconds, count)

    def _spot(self, queue, position):
        with self.standin.lock:
            return {"sid": queue.sid if queue else None, "position": position,
                    "size": len(queue.members) if queue else 0, "max_size": queue.max_size if queue else 0}

    def queue_join(self, name, call_sid):
        """A call's <Enqueue>: {sid, position, size, max_size}; position None when full."""
        return self._spot(*self.standin.queue_join(name, call_sid))

    def queue_left(self, name, call_sid):
        """A call left its queue."""
        self.standin.queue_left(name, call_sid)

    def queue_place(self, name, call_sid):
        """Where a call stands in its queue, as `queue_join` says it."""
        return self._spot(*self.standin.queue_place(name, call_sid))

    def known_calls(self):
        """SIDs of every call the stand-in holds."""
        return {c.sid for c in self.standin.placed()}

    def add_recording(self, call_sid, seconds, transcribed=False):
        """A <Record> made a recording: its SID."""
        return self.standin.add_recording(call_sid, seconds, transcribed=transcribed)

    def stop(self):
        """Nothing to stop in-process."""


class RemoteBackend:
    """The stand-in of `make run`, in another process: polled for what the app did."""

    def __init__(self, twilio_url, poll_seconds=0.2):
        self.url = twilio_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self.http = requests.Session()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.seen = {}
        self.announced = {}  # CallSid -> announcements already passed on

    def calls(self):
        """Every call the stand-in holds, as dicts."""
        return self.http.get(self.url + "/_standin/calls", timeout=5).json()

    def known_calls(self):
        """SIDs of every call the stand-in holds."""
        return {c["sid"] for c in self.calls()}

    def attach(self, network):
        """Poll the stand-in and tell `network` about new calls, redirects and hang-ups.
        Calls already there are history from earlier runs, not phones ringing now."""
        for call in self.calls():
            self.seen[call["sid"]] = (len(call["redirects"]), call["status"] in FINAL)
        threading.Thread(target=self._poll, args=(network,), daemon=True).start()

    def _poll(self, network):
        while not self.stopped.wait(self.poll_seconds):
            try:
                calls = self.calls()
            except requests.RequestException:
                continue
            for data in calls:
                call = _Placed(data)
                redirects, ended = self.seen.get(call.sid, (0, False))
                if call.sid not in self.seen:
                    self.seen[call.sid] = (0, False)
                    if call.url or getattr(call, "twiml", None):
                        network.call_created(call)
                announced = self.announced.get(call.sid, 0)
                for url in data.get("announcements", [])[announced:]:
                    network.call_announced(call, url)
                self.announced[call.sid] = len(data.get("announcements", []))
                for url in data["redirects"][redirects:]:
                    network.call_redirected(call, url)
                final = data["status"] in FINAL
                if final and not ended:
                    network.call_hung_up(call)
                self.seen[call.sid] = (len(data["redirects"]), final)

    def set_status(self, sid, status, answered_by=None):
        """A lifecycle step of a call."""
        data = {"status": status}
        if answered_by:
            data["answered_by"] = answered_by
        if status in FINAL:
            with self.lock:
                self.seen[sid] = (self.seen.get(sid, (0, False))[0], True)
        self.http.post(f"{self.url}/_standin/calls/{sid}/status", data=data, timeout=5)

    def detected(self, sid, answered_by):
        """Asynchronous detection decided on a call."""
        self.http.post(f"{self.url}/_standin/calls/{sid}/detected", data={"answered_by": answered_by},
                       timeout=5)

    def conference_joined(self, name, call_sid, start, end):
        """Returns the conference SID."""
        answer = self.http.post(f"{self.url}/_standin/conferences/{name}/join", timeout=5, data={
            "CallSid": call_sid, "start": str(start).lower(), "end": str(end).lower()}).json()
        return answer["sid"]

    def conference_left(self, name, call_sid):
        """Returns whether the conference ended."""
        return self.http.post(f"{self.url}/_standin/conferences/{name}/leave",
                              data={"CallSid": call_sid}, timeout=5).json()["ended"]

    def refuse(self, number, code):
        """Twilio refuses calls to this number with `code`."""
        self.http.post(self.url + "/_standin/config", json={"refuse": {number: code}}, timeout=5)

    def time_out_after_placing(self, seconds, count):
        """The next create requests time out after placing their calls."""
        self.http.post(self.url + "/_standin/config", timeout=5,
                       json={"time_out_after_placing": {"seconds": seconds, "count": count}})

    def _queue(self, name, action, call_sid):
        return self.http.post(f"{self.url}/_standin/queues/{name}/{action}", data={"CallSid": call_sid},
                              timeout=5).json()

    def queue_join(self, name, call_sid):
        """A call's <Enqueue>: {sid, position, size, max_size}; position None when full."""
        return self._queue(name, "join", call_sid)

    def queue_left(self, name, call_sid):
        """A call left its queue."""
        self._queue(name, "leave", call_sid)

    def queue_place(self, name, call_sid):
        """Where a call stands in its queue, as `queue_join` says it."""
        return self._queue(name, "place", call_sid)

    def add_recording(self, call_sid, seconds, transcribed=False):
        """A <Record> made a recording: its SID."""
        return self.http.post(f"{self.url}/_standin/recordings", timeout=5, data={
            "CallSid": call_sid, "seconds": seconds, "transcribed": str(transcribed).lower()}).json()["sid"]

    def stop(self):
        """Stop polling."""
        self.stopped.set()


class _Placed:
    """A placed call read from the remote stand-in, with the attributes of PlacedCall."""

    def __init__(self, data):
        for key, value in data.items():
            setattr(self, key, value)


@dataclass
class CallRecord:
    """One call as the model lived it: for the soak's checks and for reading logs."""

    sid: str
    number: str  # the callee of a placed call, the caller of an inbound one
    kind: str  # agent, customer, caller
    direction: str
    started: float  # simulated seconds since the model started
    ended: float | None = None
    answered: float | None = None  # when a placed call was picked up (what Twilio bills from)
    outcome: str | None = None
    behaviour: str | None = None
    url: str | None = None  # a placed call's Url and StatusCallback, as the app created it
    status_callback: str | None = None
    placed_at: datetime | None = None  # the simulated wall clock when Twilio took the call
    held: float = 0.0  # simulated seconds an inbound call spent in queues (the soak's caller-minutes)


class Room:
    """A conference on the voice side: who is in it, where its events go."""

    def __init__(self, name):
        self.name = name
        self.sid = None
        self.members = {}  # CallSid -> (LiveCall, flags)
        self.callback = None
        self.events = set()
        self.started = False
        self.ended = threading.Event()
        self.sequence = 0
        self.first = None  # CallSid of its first participant: names it for the network's choices


class LiveCall:
    """A call in progress in the model: interrupts from the REST API land here."""

    def __init__(self, sid, phone, behaviour, params, record):
        self.sid, self.phone, self.behaviour = sid, phone, behaviour
        self.params = params
        self.record = record
        self.wake = threading.Event()
        self.interrupts = []
        self.lock = threading.Lock()
        self.answered = False
        self.url = None
        self.state = "queued"  # then ringing, in-progress (an inbound call starts in progress)
        self.events = ()  # the progress events its create asked for
        self.sequence = 0  # SequenceNumber of its next progress event
        self.plan = None  # a holding caller's HangUpPlan
        self.plan_fired = False
        self.offered = None  # an agent's call: the holding caller it offers
        self.answered_at = None  # simulated time it was answered (a placed call)
        self.heard_first = None  # simulated time it first heard a sound after the answer
        self.with_agent = False  # in a conference with an agent at some time
        self.announcements = []  # AnnounceUrl documents waiting to be heard (a participant)

    def take_announcements(self):
        """The announcements sent to this call since the last look."""
        with self.lock:
            taken, self.announcements = self.announcements, []
        return taken

    def next_sequence(self):
        """The SequenceNumber of this call's next progress event."""
        with self.lock:
            number, self.sequence = self.sequence, self.sequence + 1
        return number

    def fire_plan(self, moment):
        """The caller's HangUpPlan when `moment` is its moment and it has not fired yet."""
        with self.lock:
            if self.plan is None or self.plan.moment != moment or self.plan_fired:
                return None
            self.plan_fired = True
            return self.plan

    def interrupt(self, kind, url=None):
        """A redirect or hang-up from the REST API."""
        with self.lock:
            self.interrupts.append((kind, url))
        self.wake.set()

    def check(self):
        """Raise what the REST API did to this call, if anything."""
        with self.lock:
            if not self.interrupts:
                self.wake.clear()
                return
            hangups = [i for i in self.interrupts if i[0] in ("hangup", "caller-hangs-up")]
            kind, url = hangups[0] if hangups else self.interrupts[-1]
            self.interrupts.clear()
            self.wake.clear()
        if kind == "hangup":
            raise HungUp("rest")
        if kind == "caller-hangs-up":
            raise HungUp("caller")
        raise Redirected(url)


class Network:
    """Twilio's voice side, modelled: runs every call the app places or a caller makes."""

    def __init__(self, backend, webhooks, timeline, chaos=None, seed=0, out=None, pacing=None,
                 one_call_per_phone=False, stable_sids=False, tracks=None,
                 unknown_track_seconds=UNKNOWN_TRACK_SECONDS):
        self.backend, self.webhooks, self.timeline = backend, webhooks, timeline
        # Seconds one play of a track lasts, by URL: the setting for tracks that are neither
        # Twilio's own (TWILIO_HOLD_TRACKS) nor audio the app serves (read from its header).
        self.tracks = dict(tracks or {})
        self.unknown_track_seconds = unknown_track_seconds
        self.chaos = chaos or Chaos()
        self.seed = seed
        self.pacing = pacing
        self.one_call_per_phone = one_call_per_phone
        # Inbound CallSids from the seed (the nth call from a number), so a run replays;
        # random ones when several runs share one app (`make call` after `make call`).
        self.stable_sids = stable_sids
        self.inbound_calls = defaultdict(int)
        self.key_listeners = []  # fn(phone, digits): a person pressed keys on a call the app placed
        self._free_at = 0.0  # simulated time the account's outbound queue next lets a call out
        self._bursts = 0
        self._next_burst = None
        self.longest_queued = 0.0
        self.out = out or (lambda who, text: None)
        self.phones = {}
        self.default_behaviour = {"agent": Behaviour(), "customer": Behaviour(keys="")}
        self.kind_of = {}  # number -> agent/customer, for numbers without a Phone
        self.scheduler = Scheduler()
        self.lock = threading.Lock()
        self.live = {}  # CallSid -> LiveCall
        self.rooms = {}
        self.records = []
        self.talks = defaultdict(float)  # customer number -> simulated seconds a person talked with an agent
        self.silences = []  # seconds an answering person heard nothing, answer to first sound
        self.stats = defaultdict(int)
        self.threads = []
        self.origin = time.monotonic()
        self.origin_time = timeline.clock.now() if timeline.stepped else None
        self.stopped = threading.Event()

    # -- set-up ---------------------------------------------------------------------------

    def add_phone(self, phone):
        """A number the model answers for (agents, customers)."""
        self.phones[phone.number] = phone
        return phone

    def start(self):
        """Start hearing what the app does through the REST API."""
        self._next_burst = self._burst(0)
        self.backend.attach(self)
        return self

    def live_calls(self):
        """The records of calls live now (queued, ringing or in progress), by CallSid."""
        with self.lock:
            return {sid: call.record for sid, call in self.live.items() if call.record.ended is None}

    def in_conversation(self):
        """CallSids of the calls in a conference together with another call now."""
        with self.lock:
            return {sid for room in self.rooms.values() if len(room.members) > 1 for sid in room.members}

    def stop(self):
        """Stop every call and delivery (what is left is dropped)."""
        self.stopped.set()
        with self.lock:
            calls = list(self.live.values())
        for call in calls:
            call.interrupt("hangup")
        self.scheduler.stop()
        self.backend.stop()

    def count(self, what):
        """One more of something worth reporting."""
        with self.lock:
            self.stats[what] += 1

    def sim_elapsed(self):
        """Simulated seconds since the model started."""
        if self.timeline.stepped:
            return (self.timeline.clock.now() - self.origin_time).total_seconds()
        return (time.monotonic() - self.origin) * self.timeline.speed

    def track_seconds(self, url):
        """How long one play of the audio at `url` lasts: its setting (`tracks`), Twilio's own
        track table, or the header of a WAV the app serves; else `unknown_track_seconds`,
        counted once per URL."""
        with self.lock:
            if url in self.tracks:
                return self.tracks[url]
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        twilio_track = any(bucket in url for bucket in TWILIO_MUSIC_BUCKETS)
        seconds = TWILIO_HOLD_TRACKS.get(name) if twilio_track else self._wav_seconds(url)
        if seconds is None:
            self.count("tracks of unknown length")
            seconds = self.unknown_track_seconds
        with self.lock:
            self.tracks[url] = seconds
        return seconds

    def _wav_seconds(self, url):
        try:
            body = self.webhooks.media(url)
        except requests.RequestException:
            return None
        return wav_seconds(body or b"", unknown=None)

    def play_seconds(self, verb):
        """How long a <Play> lasts: its track's length times its `loop` (0: PLAY_LOOP_ZERO)."""
        loop = int(verb.get("loop") or 1)
        return self.track_seconds((verb.text or "").strip()) * (loop or PLAY_LOOP_ZERO)

    def busy(self):
        """Calls still live or deliveries still pending."""
        with self.lock:
            live = len(self.live)
        return live or not self.scheduler.idle()

    def _rng(self, *parts):
        """Seeded randomness per decision, so a run's choices replay from its seed."""
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    # -- REST listener (the stand-in tells us what the app did) ----------------------------

    def call_created(self, call):
        """The app placed a call: ring the phone in a thread of its own."""
        if self.stopped.is_set():
            return
        thread = threading.Thread(target=self._placed_call, args=(call,), daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()

    def call_redirected(self, call, url):
        """The app moved a call to new TwiML."""
        with self.lock:
            live = self.live.get(call.sid)
        if live is not None:
            live.interrupt("redirect", url)

    def call_announced(self, call, url):
        """The app asked for an announcement to a participant: heard in its conference."""
        with self.lock:
            live = self.live.get(call.sid)
        if live is not None:
            with live.lock:
                live.announcements.append(url)

    def call_hung_up(self, call):
        """The app ended a call: it is over now, whenever its thread notices."""
        with self.lock:
            live = self.live.get(call.sid)
            if live is not None and live.record.ended is None:
                live.record.ended = self.sim_elapsed()
        if live is not None:
            live.interrupt("hangup")

    # -- calls ----------------------------------------------------------------------------

    def wait(self, call, seconds):
        """Let `seconds` of simulated time pass on a call; raises on a REST interrupt."""
        if self.timeline.stepped:
            call.check()
            if self.stopped.is_set():
                raise HungUp("model")
            self.timeline.clock.advance(seconds=max(seconds, 0))
            return
        deadline = time.monotonic() + self.timeline.real(seconds)
        while True:
            call.check()
            if self.stopped.is_set():
                raise HungUp("model")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            call.wake.wait(min(left, 0.5))

    def _record(self, sid, number, kind, direction, behaviour, url=None, status_callback=None):
        record = CallRecord(sid, number, kind, direction, self.sim_elapsed(), behaviour=behaviour, url=url,
                            status_callback=status_callback, placed_at=self.timeline.now())
        with self.lock:
            self.records.append(record)
        return record

    def _phone_for(self, number):
        phone = self.phones.get(number)
        if phone is None:
            kind = self.kind_of.get(number, "customer")
            phone = self.phones.setdefault(number, Phone(number, kind, [self.default_behaviour[kind]]))
        return phone

    def _placed_call(self, placed):
        phone = self._phone_for(placed.to)
        behaviour = phone.next_behaviour()
        record = self._record(placed.sid, placed.to, phone.kind, "outbound-api", behaviour.answer,
                              url=placed.url, status_callback=placed.status_callback)
        params = {"CallSid": placed.sid, "AccountSid": ACCOUNT_SID, "From": placed.from_, "To": placed.to,
                  "Direction": "outbound-api", "ApiVersion": "2010-04-01"}
        call = LiveCall(placed.sid, phone, behaviour, params, record)
        call.url = placed.url
        call.events = tuple(getattr(placed, "status_callback_events", None) or ())
        with self.lock:
            self.live[placed.sid] = call
            if phone.kind == "agent":
                call.offered = self._caller_named_by(placed)
        who = phone.name
        self.count(f"{phone.kind} calls")
        outcome = "completed"
        try:
            self._queued(call)
            self._progress(placed, call, "initiated", "initiated")
            answer = "busy" if self._start_ringing(call) else behaviour.answer
            self.backend.set_status(placed.sid, "ringing")
            self.out(who, f"phone rings ({placed.to})")
            timeout = placed.timeout or 60
            if answer in ("busy", "failed"):
                if answer != behaviour.answer:
                    self.count("calls busy: the phone was on another call")
                self._ring(call, 2)
                outcome = answer
            else:
                self._progress(placed, call, "ringing", "ringing")
                self._offer_moment(call, AGENT_RUNG)
                if answer == "no-answer" or behaviour.ring_seconds >= timeout:
                    self._ring(call, timeout)
                    outcome = "no-answer"
                else:
                    self._ring(call, behaviour.ring_seconds)
                    outcome = self._answered(placed, call)
        except HungUp:
            outcome = "completed" if call.answered else "canceled"
        except requests.RequestException as exc:
            self.count(f"webhook transport errors ({type(exc).__name__})")
            self.out(who, f"the app could not be reached ({type(exc).__name__})")
        self._finish(placed, call, outcome)

    def _caller_named_by(self, placed):
        """The holding caller (a live inbound call) whose CallSid the URLs of this agent's
        call name: the caller it offers. Called under the lock."""
        urls = f"{placed.url or ''} {placed.status_callback or ''}"
        return next((c for c in self.live.values() if c.record.direction == "inbound" and c.sid in urls),
                    None)

    def _queued(self, call):
        """Wait `queued` in Twilio's outbound queue for the account's turn (Pacing)."""
        if not self.pacing or not self.pacing.cps:
            return
        wait = self._turn(call.record.started) - self.sim_elapsed()
        if wait <= 0:
            return
        with self.lock:
            self.longest_queued = max(self.longest_queued, wait)
        self.count("calls queued for the account's pace")
        self._ring(call, wait)

    def _turn(self, created):
        """The simulated time a call created at `created` leaves the outbound queue."""
        cps = self.pacing.cps
        with self.lock:
            while self._next_burst is not None and self._next_burst[0] <= created:
                at, size = self._next_burst
                self._free_at = max(self._free_at, at) + size / cps
                self._bursts += 1
                self._next_burst = self._burst(self._bursts)
            turn = max(created, self._free_at)
            self._free_at = turn + 1 / cps
        return turn

    def _burst(self, n):
        """(when, how many) of the account's nth burst of other calls, or None."""
        if not self.pacing or not self.pacing.burst_every:
            return None
        rng = self._rng("burst", n)
        return (n + rng.random()) * self.pacing.burst_every, rng.randint(*self.pacing.burst_size)

    def _start_ringing(self, call):
        """The call leaves the queue for the phone; True when that phone is already on a
        call (ringing or talking) and so answers busy."""
        with self.lock:
            call.state = "ringing"
            if not self.one_call_per_phone:
                return False
            return any(other is not call and other.phone.number == call.phone.number
                       and other.state != "queued" and other.record.ended is None
                       for other in self.live.values())

    def _offer_moment(self, call, moment):
        """A moment of an agent's call that offers a holding caller: a caller who means to
        hang up then does, after their delay."""
        caller = call.offered
        plan = caller.fire_plan(moment) if caller is not None else None
        if plan is None:
            return
        self.count(f"callers hanging up: {moment}")
        self.out(caller.phone.name, f"will hang up {plan.delay:g} s after {moment}")
        self.scheduler.after(self.timeline.real(plan.delay), caller.interrupt, "caller-hangs-up")

    def pressed(self, call, digits):
        """A person pressed keys on a call: an agent's 1 accepts what the call offers."""
        if digits == "1":
            self._offer_moment(call, AGENT_ACCEPTED)
        for listener in list(self.key_listeners):
            listener(call.phone, digits)

    def _ring(self, call, seconds):
        """Ring (or wait queued) for `seconds`; a redirect meanwhile only changes the TwiML
        fetched on answer."""
        deadline = self.sim_elapsed() + seconds
        while True:
            try:
                self.wait(call, deadline - self.sim_elapsed())
                return
            except Redirected as moved:
                call.url = moved.url

    def _answered(self, placed, call):
        """The phone picked up: detection if asked (waited for, or running in the
        background), then the call's TwiML (inline, or fetched from its Url)."""
        behaviour = call.behaviour
        waiting = placed.machine_detection and not getattr(placed, "async_amd", False)
        verdict = "human" if behaviour.is_person else "machine_start"
        answered_by = verdict if waiting else None
        self.backend.set_status(placed.sid, "in-progress", answered_by)
        call.answered = True
        call.answered_at = self.sim_elapsed()
        call.state = "in-progress"
        if behaviour.is_person:
            self.out(call.phone.name, "answers")
        else:
            self.out(call.phone.name, "voicemail answers")
        call.record.answered = self.sim_elapsed()
        self._progress(placed, call, "answered", "in-progress", answered_by)
        self._offer_moment(call, AGENT_ANSWERED)
        if placed.machine_detection and not waiting:
            self._send_verdict(placed, call, verdict)
        listening = 0
        if waiting:
            # Detection listens before Twilio fetches the Url: a greeting takes longer to judge.
            listening = min(3 if behaviour.is_person else 5, placed.machine_detection_timeout or 30)
            self.wait(call, listening)
        extra = {"CallStatus": "in-progress", "AnsweredBy": answered_by}
        run = CallRun(self, call, call.phone.name, keys=None, patience=None)
        run.silent_before = listening
        inline = getattr(placed, "twiml", None)
        if inline and not call.url:
            self.count("calls answered with inline TwiML")
        run.run(call.url or placed.url, extra, fallback_url=getattr(placed, "fallback_url", None),
                document=inline if not call.url else None)
        return "completed"

    def call_over(self, call):
        """The call's line is gone from now (a hang-up): its end is stamped once."""
        with self.lock:
            if call.record.ended is None:
                call.record.ended = self.sim_elapsed()

    def _send_verdict(self, placed, call, answered_by):
        """Asynchronous detection: the verdict reaches AsyncAmdStatusCallback 2-4 s after the
        answer (of a call still going), through the chaotic network like any callback."""
        seconds = self._rng("amd", placed.sid).uniform(2, 4)
        url = getattr(placed, "amd_callback", None)
        due = call.answered_at + seconds

        def send():
            # Judged at the verdict's own simulated moment, not when this thread runs: at a
            # fast speed a loaded machine runs it late, after a call that was still up then.
            ended = call.record.ended
            if (ended is not None and ended <= due) or self.stopped.is_set():
                return
            try:  # Twilio keeps the verdict on the call, delivered or not (shown once it is over)
                self.backend.detected(placed.sid, answered_by)
            except requests.RequestException:
                pass
            if url:
                self.count(f"verdicts sent: {answered_by}")
                self.deliver(url, {**call.params, "CallStatus": "in-progress", "AnsweredBy": answered_by,
                                   "MachineDetectionDuration": str(int(seconds * 1000))}, ("amd", placed.sid))

        self.scheduler.after(self.timeline.real(seconds), send)

    def heard(self, call, silence):
        """A placed call heard a sound: the first one after the answer ends its silence
        (`silence` simulated seconds, counted as the call's run counts its time)."""
        if call.answered_at is None or call.heard_first is not None:
            return
        call.heard_first = self.sim_elapsed()
        if call.phone.kind == "customer" and call.behaviour.is_person:
            with self.lock:
                self.silences.append(silence)

    def _finish(self, placed, call, outcome):
        if call.answered and call.phone.kind == "customer" and not call.behaviour.is_person:
            self.count("machines an agent heard" if call.with_agent
                       else "machines ended before an agent heard them")
        with self.lock:
            self.live.pop(placed.sid, None)
            if call.record.ended is None:
                call.record.ended = self.sim_elapsed()
        call.record.outcome = outcome
        try:
            self.backend.set_status(placed.sid, outcome)
        except requests.RequestException:
            pass
        if outcome != "completed":
            self.out(call.phone.name, f"does not answer ({outcome})")
        self._progress(placed, call, "completed", outcome)

    def _progress(self, placed, call, event, status, answered_by=None):
        """A call progress event, sent when the create asked for it (`completed` also when
        it named none: Twilio's default). CallStatus is `initiated` for initiated, `ringing`,
        `in-progress` once answered, and the final status for completed."""
        if event not in call.events and not (event == "completed" and not call.events):
            return
        if not placed.status_callback or self.stopped.is_set():
            return
        sequence = call.next_sequence()
        params = {**call.params, "CallStatus": status, "AnsweredBy": answered_by,
                  "CallbackSource": "call-progress-events", "SequenceNumber": sequence,
                  "Timestamp": self._timestamp()}
        if status in FINAL:
            params["CallDuration"] = str(int(max(call.record.ended - call.record.started, 0)))
        self.deliver(placed.status_callback, params, ("status", placed.sid, event))

    def _timestamp(self):
        return self.timeline.now().strftime("%a, %d %b %Y %H:%M:%S +0000")

    def deliver(self, url, params, key):
        """Send a callback through the chaotic network: late, twice, or never."""
        rng = self._rng(*key)
        chaos = self.chaos
        if rng.random() < chaos.lose:
            self.count("callbacks lost")
            return
        copies = 2 if rng.random() < chaos.duplicate else 1
        if copies == 2:
            self.count("callbacks duplicated")
        for _ in range(copies):
            delay = rng.uniform(0, chaos.max_delay) if chaos.max_delay else 0
            if not delay:
                # An orderly network delivers in order: at once, from the call's own thread.
                self._send(url, params)
                continue
            self.count("callbacks delayed")
            self.scheduler.after(self.timeline.real(delay), self._send, url, params)

    def _send(self, url, params):
        if self.stopped.is_set():
            return
        try:
            self.webhooks.post(url, params)
            self.count("callbacks delivered")
        except requests.RequestException as exc:
            self.count(f"webhook transport errors ({type(exc).__name__})")

    # -- inbound calls -------------------------------------------------------------------

    def _inbound_sid(self, from_):
        if not self.stable_sids:
            return "CA" + uuid.uuid4().hex
        with self.lock:
            self.inbound_calls[from_] += 1
            nth = self.inbound_calls[from_]
        return "CA" + hashlib.sha256(f"{self.seed}|inbound|{from_}#{nth}".encode()).hexdigest()[:32]

    def dial_in(self, from_, to, keys, patience, incoming_path="/voice/incoming", name="caller",
                hang_up=None, message_seconds=None):
        """A person calls the IVR and follows the call to its end (in this thread); `hang_up`
        (a HangUpPlan) is when they hang up if the app offers them to an agent."""
        sid = self._inbound_sid(from_)
        record = self._record(sid, from_, "caller", "inbound", "human")
        params = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": to,
                  "Direction": "inbound", "ApiVersion": "2010-04-01"}
        call = LiveCall(sid, Phone(from_, "caller", [Behaviour()], name=name), Behaviour(), params, record)
        call.state, call.plan = "in-progress", hang_up
        with self.lock:
            self.live[sid] = call
        run = CallRun(self, call, name, keys=keys, patience=patience)
        if message_seconds is not None:
            run.message_seconds = message_seconds
        self.out(name, f"calls {to} from {from_}")
        try:
            run.run(incoming_path, {"CallStatus": "ringing"})
        except requests.RequestException as exc:
            self.count(f"webhook transport errors ({type(exc).__name__})")
            run.ending = f"app unreachable ({type(exc).__name__})"
            self.out(name, f"the app could not be reached ({type(exc).__name__})")
        finally:
            with self.lock:
                self.live.pop(sid, None)
            record.ended, record.outcome = record.ended or self.sim_elapsed(), run.ending
            try:
                self.backend.set_status(sid, "completed")
            except requests.RequestException:
                pass
        return run

    # -- conferences ----------------------------------------------------------------------

    def join(self, name, call, attrs):
        """A call enters a conference; returns its Room."""
        with self.lock:
            room = self.rooms.get(name)
            if room is None or room.ended.is_set():
                room = self.rooms[name] = Room(name)
            if room.callback is None and attrs.get("statusCallback"):
                room.callback = attrs["statusCallback"]
                room.events = set((attrs.get("statusCallbackEvent") or "start end").split())
            flags = {"start": attrs.get("startConferenceOnEnter", "true") != "false",
                     "end": attrs.get("endConferenceOnExit", "false") == "true",
                     "joined": self.sim_elapsed()}
            room.members[call.sid] = (call, flags)
            room.first = room.first or call.sid
            kinds = {member.phone.kind for member, _ in room.members.values()}
            if "agent" in kinds:
                for member, _ in room.members.values():
                    member.with_agent = member.with_agent or member.phone.kind != "agent"
            starting = (not room.started and len(room.members) >= 2
                        and any(f["start"] for _, f in room.members.values()))
            if starting:
                room.started = True
        room.sid = self.backend.conference_joined(name, call.sid, flags["start"], flags["end"])
        self._conference_event(room, "participant-join", call.sid, "join", flags)
        if starting:
            self._conference_event(room, "conference-start", None, "start")
        return room

    def leave(self, room, call, reason="participant_hung_up"):
        """A call leaves a conference; the last one out, or an end-on-exit one, ends it."""
        with self.lock:
            entry = room.members.pop(call.sid, None)
            if entry is None:
                return
            flags = entry[1]
            self._count_talk(room, call, flags)
            ending = not room.ended.is_set() and (flags["end"] or not room.members)
            removed = []
            if ending:
                # The conference ends: everyone still in it is removed, then it ends.
                room.ended.set()
                while room.members:
                    sid, (other, other_flags) = room.members.popitem()
                    self._count_talk(room, other, other_flags)
                    removed.append((sid, other_flags))
        self.backend.conference_left(room.name, call.sid)
        self._conference_event(room, "participant-leave", call.sid, "leave", flags,
                               ReasonParticipantLeft=reason)
        for sid, other_flags in removed:
            self._conference_event(room, "participant-leave", sid, "leave", other_flags,
                                   ReasonParticipantLeft="conference_ended")
        if ending:
            self.out("conference", f"{room.name} ends")
            self._conference_event(room, "conference-end", None, "end",
                                   CallSidEndingConference=call.sid,
                                   ReasonConferenceEnded="participant-with-end-conference-on-exit-left"
                                   if flags["end"] else "last-participant-left")

    def _count_talk(self, room, leaving, flags):
        """Time a person on a customer's line spent with a person on an agent's line."""
        if not leaving.behaviour.is_person:
            return
        now = self.sim_elapsed()
        for other, other_flags in room.members.values():
            if not other.behaviour.is_person:
                continue
            kinds = {leaving.phone.kind, other.phone.kind}
            if "agent" in kinds and kinds & {"customer", "caller"}:
                customer = leaving if leaving.phone.kind != "agent" else other
                together = now - max(flags["joined"], other_flags["joined"])
                self.talks[customer.phone.number] += max(together, 0)

    def _conference_event(self, room, event, call_sid, wanted, flags=None, **extra):
        if room.callback is None or wanted not in room.events:
            return
        with self.lock:
            room.sequence += 1
            sequence = room.sequence
        params = {"AccountSid": ACCOUNT_SID, "ConferenceSid": room.sid, "FriendlyName": room.name,
                  "StatusCallbackEvent": event, "CallSid": call_sid, "SequenceNumber": sequence,
                  "Timestamp": self._timestamp(), **extra}
        if flags is not None:
            params.update(StartConferenceOnEnter=str(flags["start"]).lower(),
                          EndConferenceOnExit=str(flags["end"]).lower(), Muted="false", Hold="false",
                          Coaching="false")
        # Keyed by a CallSid, not the app's conference name, so a seeded run replays.
        self.deliver(room.callback, params, ("conference", room.first, event, call_sid, sequence))


def _say_seconds(verb):
    """How long Twilio takes to say a <Say>: three words a second, a second at least."""
    return max(len((verb.text or "").split()) / 3, 1)


class CallRun:
    """One call running TwiML: an explicit loop over documents, never a recursion.

    `keys` answers Gathers for a caller (None: the phone's behaviour decides); `patience`
    is how many simulated seconds the caller stays on the line at most, checked in every
    wait, so no loop of the app's can keep them forever.
    """

    def __init__(self, network, call, who, keys=None, patience=None):
        self.network, self.call, self.who = network, call, who
        self.keys, self.patience = keys, patience
        self.elapsed = 0.0
        self.queue = None  # (name, waitUrl, action, joined at elapsed)
        self.queue_time = 0
        self.enqueued_at = None  # elapsed when the call last entered a queue
        self.held_since = None  # the network's simulated time then, until the call leaves it
        self.heard = []  # (elapsed, what): every Say and Play this party heard, when it began
        self.documents = 0
        self.ending = None
        self.conference = None
        self.redirected_out = False
        self.left_with = None
        self.url = None  # the document running now (a Gather without action posts back to it)
        self.silent_before = 0  # seconds of silence before the run began (synchronous detection)
        self.message_seconds = DEFAULT_MESSAGE_SECONDS  # how long a message they leave at a <Record>

    # -- plumbing ---------------------------------------------------------------------

    def _pass(self, seconds):
        """Let time pass on this call, within the caller's patience."""
        if self.patience is not None and self.elapsed + seconds > self.patience:
            self.network.wait(self.call, max(self.patience - self.elapsed, 0))
            self.elapsed = self.patience
            raise HungUp("caller")
        self.network.wait(self.call, seconds)
        self.elapsed += seconds
        if self.queue is not None:
            self.queue_time += seconds

    def fetch(self, url, extra=None, fallback_url=None):
        """Request TwiML (the next document of this call)."""
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            self.network.count("calls stopped looping")
            self.network.out(self.who, f"hangs up: {MAX_DOCUMENTS} TwiML documents and no end")
            raise HungUp("caller")
        self._pass(FETCH_SECONDS)
        self.url = url
        params = {**self.call.params, "CallStatus": "in-progress", **(extra or {})}
        answer = self.network.webhooks.post(url, params)
        if answer.root is None and fallback_url:
            self.network.count("fallback fetches")
            answer = self.network.webhooks.post(fallback_url, {**params, "ErrorCode": "11200",
                                                               "ErrorUrl": url})
        if answer.root is None:
            self.network.count("webhook errors")
            self.network.out(self.who, f"hears: an application error has occurred ({answer.status})")
            raise HungUp("app")
        return answer.root

    def hears(self, text):
        """What this party hears."""
        self.heard.append((self.elapsed, text))
        self.network.heard(self.call, self.silent_before + self.elapsed)
        self.network.out(f"{self.who} hears", text)

    def press(self, prompt):
        """Keys pressed at a Gather: the caller's script, or the phone's behaviour (a person
        listens to the prompt first)."""
        if self.keys is not None:
            return self.keys.next(prompt)
        behaviour = self.call.behaviour
        if not behaviour.is_person:
            return ""
        if behaviour.think_seconds:
            self._pass(behaviour.think_seconds)
        pressed = behaviour.keys
        if pressed:
            self.network.out(self.who, f"presses {pressed}")
            self.network.pressed(self.call, pressed)
        return pressed

    # -- the loop ---------------------------------------------------------------------------

    def run(self, url, extra=None, fallback_url=None, document=None):
        """Fetch the first document (or take `document`, TwiML given inline on the create)
        and run the call until it ends."""
        try:
            doc = ET.fromstring(document) if document else self.fetch(url, extra, fallback_url)
            while True:
                try:
                    if doc is None:
                        if self.queue is None:
                            self.ending = self.ending or "twiml-ended"
                            return
                        doc = self._wait_url()
                        continue
                    doc = self._execute(doc)
                except Redirected as moved:
                    doc = self._redirected(moved.url)
        except HungUp as gone:
            self.ending = self.ending or f"hung-up-by-{gone.who}"
            # The line is gone at the hang-up: Twilio requests the Enqueue action that reports
            # it after the call ended, so the call's end is not the action's answer.
            self.network.call_over(self.call)
            if gone.who in ("caller", "callee", "model") and self.queue is not None:
                self._leave_queue("hangup")
            if gone.who == "caller" and self.patience is not None and self.elapsed >= self.patience:
                self.network.out(self.who, f"gives up after {int(self.elapsed)} s on the line")
        finally:
            if self.conference is not None:
                self.network.leave(self.conference, self.call)
                self.conference = None
            if self.queue is not None:
                # Ended while queued without a webhook for it (a REST hang-up): out all the same.
                self.network.backend.queue_left(self.queue[0], self.call.sid)
                self.queue = None
                self._held_until_now()

    def _redirected(self, url):
        self.network.out(self.who, "is moved by the app")
        moving_out = self.queue is not None
        if moving_out:
            self.redirected_out = True
            self.network.out(self.who, "is taken out of the queue")
            self._leave_queue("redirected")
        if self.conference is not None:
            self.network.leave(self.conference, self.call, "participant_updated_via_api")
            self.conference = None
        doc = self.fetch(url)
        if moving_out and self.call.fire_plan(MOVED):
            # They hang up as they are moved: the new TwiML was fetched, never run.
            self.network.count(f"callers hanging up: {MOVED}")
            self.network.out(self.who, "hangs up while being moved")
            raise HungUp("caller")
        return doc

    def _held_until_now(self):
        """Add the time since the call entered its queue to its record's `held`."""
        if self.held_since is not None:
            self.call.record.held += max(self.network.sim_elapsed() - self.held_since, 0)
            self.held_since = None

    def _leave_queue(self, result):
        name, _, action, _ = self.queue
        self.queue = None
        self._held_until_now()
        self.network.backend.queue_left(name, self.call.sid)
        if action:
            answer = self.network.webhooks.post(action, {**self.call.params, "CallStatus": "in-progress",
                                                         "QueueResult": result, "QueueTime": int(self.queue_time)})
            return answer.root
        return None

    def _wait_url(self):
        name, wait_url, _, _ = self.queue
        spot = self.network.backend.queue_place(name, self.call.sid)
        return self.fetch(wait_url, {"QueueSid": spot["sid"], "QueueTime": int(self.queue_time),
                                     "QueuePosition": spot["position"] or 1, "CurrentQueueSize": spot["size"],
                                     "MaxQueueSize": spot["max_size"], "AvgQueueTime": 0})

    def _enqueue(self, verb):
        """Join the named queue and wait in it (None: run the waitUrl); a full queue turns the
        call away: its action hears QueueResult=queue-full and its answer runs, or without
        an action the verbs after <Enqueue> do (False)."""
        name = (verb.text or "").strip()
        spot = self.network.backend.queue_join(name, self.call.sid)
        if spot["position"] is None:
            self.network.count("callers turned away: queue full")
            self.network.out(self.who, f"finds queue {name} full ({spot['max_size']} waiting)")
            action = verb.get("action")
            return self.fetch(action, {"QueueResult": "queue-full", "QueueTime": 0}) if action else False
        self.queue = (name, verb.get("waitUrl"), verb.get("action"), self.elapsed)
        self.queue_time = 0
        self.enqueued_at = self.elapsed
        self.held_since = self.network.sim_elapsed()
        self.network.out(self.who, f"waits in queue {name}")
        return None

    def _say(self, verb):
        """Speak a <Say>, or fail it as Twilio may when its table does not list the voice
        with the language (without an attribute, the account's default stands in for it)."""
        voice, language = verb.get("voice"), verb.get("language")
        known = ((voice, language) in SAY_PAIRS if voice and language
                 else voice in SAY_VOICES if voice else language in SAY_LANGUAGES if language else True)
        if not known:
            self.network.count("says refused: voice and language not in Twilio's table")
            self.network.out(self.who, f"hears: an application error has occurred (<Say> in {voice} "
                                       f"with {language})")
            raise HungUp("app")
        self.hears(verb.text or "")

    def _execute(self, doc):
        """Run one document's verbs; returns the next document, or None when it runs out."""
        for verb in list(doc):
            tag = verb.tag
            if tag == "Say":
                self._say(verb)
                self._pass(_say_seconds(verb))
            elif tag == "Play":
                self.hears(f"♪ {(verb.text or '').strip()}")
                self._pass(self.network.play_seconds(verb))
            elif tag == "Pause":
                self._pass(int(verb.get("length", 1)))
            elif tag == "Gather":
                following = self._gather(verb)
                if following is not None:
                    return following
            elif tag == "Redirect":
                return self.fetch(verb.text)
            elif tag == "Enqueue":
                if self.queue is None:
                    following = self._enqueue(verb)
                    if following is not False:
                        return following
            elif tag == "Leave":
                if self.queue is not None:
                    self.network.out(self.who, "leaves the queue")
                    self.left_with = "leave"
                    return self._leave_queue("leave")
            elif tag == "Hangup":
                raise HungUp("app")
            elif tag == "Dial":
                following = self._dial(verb)
                if following is not None:
                    return following
            elif tag == "Reject":
                raise HungUp("app")
            elif tag == "Record":
                if self.queue is not None:
                    # Twilio allows no <Record> in a queue's waitUrl TwiML: the caller must <Leave>.
                    self.network.count("records refused: inside a queue's wait")
                    self.network.out(self.who, "hears: an application error has occurred "
                                               "(<Record> in a queue)")
                    raise HungUp("app")
                return self._record(verb)
        return None

    def _record(self, verb):
        """Leave a message of `message_seconds` (at most maxLength), then # (or hang up in
        it, as a caller out of patience does): the action is requested with the recording,
        the recording status callback (and a transcription, when asked for) come through
        the network's chaos. Returns the action's document."""
        max_length = int(verb.get("maxLength") or 3600)
        if verb.get("playBeep", "true") != "false":
            self.hears("(beep)")
        started, hung = self.elapsed, None
        self.network.out(self.who, f"leaves a message of {min(self.message_seconds, max_length)} s")
        try:
            self._pass(min(self.message_seconds, max_length))
        except HungUp as gone:
            hung = gone
        seconds = int(self.elapsed - started)
        transcribed = verb.get("transcribe") == "true" and bool(verb.get("transcribeCallback"))
        sid = self.network.backend.add_recording(self.call.sid, seconds, transcribed) if seconds > 0 else None
        self.network.count("messages recorded" if sid else "empty recordings")
        report = {**self.call.params, "RecordingSid": sid, "RecordingDuration": str(seconds),
                  "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"
                  if sid else None}
        action = verb.get("action") or self.url
        if hung is not None:
            self.network.webhooks.post(action, {**report, "CallStatus": "completed", "Digits": "hangup"})
        doc = None if hung is not None else self.fetch(action, {**report, "Digits": "#"})
        if verb.get("recordingStatusCallback"):
            status = {**report, "RecordingStatus": "completed" if sid else "absent"}
            self.network.deliver(verb.get("recordingStatusCallback"), status, ("recording", self.call.sid))
        if sid and transcribed:
            self.network.deliver(verb.get("transcribeCallback"), {
                **report, "TranscriptionStatus": "completed", "TranscriptionSid": "TR" + sid[2:],
                "TranscriptionText": "(the model's caller) Please call me back about my order."},
                ("transcription", self.call.sid))
        if hung is not None:
            raise hung
        return doc

    def _gather(self, verb):
        prompt, playing = [], 0
        for child in verb:
            if child.tag == "Say":
                self._say(child)
                prompt.append(child.text or "")
                playing += _say_seconds(child)
            elif child.tag == "Play":
                self.hears(f"♪ {(child.text or '').strip()}")
                playing += self.network.play_seconds(child)
        digits = self.press(" ".join(prompt) or "Your keys")
        limit = int(verb.get("numDigits") or 0)
        finish = verb.get("finishOnKey", "#")
        finished_on = ""
        if finish and finish in digits:
            # Twilio stops at the finish key and leaves it out of Digits.
            digits, finished_on = digits[:digits.index(finish)], finish
        elif digits and limit:
            digits = digits[:limit]
        elif digits and finish:
            finished_on = finish  # a whole entry is sent with the finish key
        if not digits:
            # Nobody pressed anything: the prompt and its music play, then the timeout runs out.
            self._pass(playing + int(verb.get("timeout", 5)))
            if verb.get("actionOnEmptyResult") != "true":
                return None
        else:
            self._pass(len(digits) * 0.5)
        return self.fetch(verb.get("action") or self.url, {"Digits": digits, "FinishedOnKey": finished_on})

    def _dial(self, verb):
        conference = verb.find("Conference")
        status = "completed"
        if conference is not None:
            self._in_conference(conference, hangup_on_star=verb.get("hangupOnStar") == "true")
        else:
            self.hears(f"dials {(verb.text or '').strip() or 'a number'}")
            self._pass(10)
        action = verb.get("action")
        if action:
            return self.fetch(action, {"DialCallStatus": status})
        return None

    def _announced(self, room, hangup_on_star):
        """Announcements to this participant, heard; True when the party then presses star
        to leave (an agent told of a machine while one is with them, their Dial allowing it)."""
        leave = False
        for url in self.call.take_announcements():
            answer = self.network.webhooks.post(url, {**self.call.params, "CallStatus": "in-progress"})
            if answer.root is None:
                self.network.count("announcements that failed")
                continue
            self.network.count("announcements heard")
            for verb in answer.root:
                if verb.tag == "Say":
                    self._say(verb)
                    self._pass(_say_seconds(verb))
            machine = any(not other.behaviour.is_person for sid, (other, _) in list(room.members.items())
                          if sid != self.call.sid)
            agent = self.call.phone.kind == "agent" and self.call.behaviour.is_person
            if hangup_on_star and machine and agent:
                self.network.count("agents ending a machine with star")
                self.network.out(self.who, "presses * (a machine)")
                leave = True
        return leave

    def _in_conference(self, element, hangup_on_star=False):
        """Join, stay as the party would, and leave (or be ended with the conference)."""
        name = (element.text or "").strip()
        room = self.network.join(name, self.call, element.attrib)
        self.conference = room
        self.network.out(self.who, f"joins conference {name}")
        behaviour = self.call.behaviour
        # Twilio plays the waitUrl to a participant only while the conference has not started.
        sounds = [] if room.started else self._wait_audio(element)
        joined = self.elapsed
        alone_since, together_since, quiet_since = self.elapsed, None, None
        while not room.ended.is_set():
            if self._announced(room, hangup_on_star):
                self.network.leave(room, self.call, "participant_hung_up")
                self.conference = None
                return
            if not room.started and behaviour.silence_seconds is not None:
                if any(start <= self.elapsed - joined < end for start, end in sounds):
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = self.elapsed
                if quiet_since is not None and self.elapsed - quiet_since >= behaviour.silence_seconds:
                    self.network.count("people hanging up on silence in a conference")
                    self.network.out(self.who, f"hangs up after {int(self.elapsed - quiet_since)} s "
                                               "of silence in the conference")
                    raise HungUp("callee")
            others = [c for sid, (c, _) in list(room.members.items()) if sid != self.call.sid]
            if others:
                together_since = self.elapsed if together_since is None else together_since
                if self.elapsed - together_since >= behaviour.talk_seconds:
                    self.network.out(self.who, "hangs up after talking" if behaviour.is_person
                                     else "voicemail recording ends")
                    raise HungUp("callee")
            else:
                if together_since is not None:
                    alone_since, together_since = self.elapsed, None
                if self.elapsed - alone_since >= behaviour.alone_seconds:
                    self.network.out(self.who, "hangs up, alone in the conference")
                    raise HungUp("callee")
            self._pass(1)
        self.network.leave(room, self.call, "conference_ended")
        self.conference = None

    def _wait_audio(self, element):
        """What a participant hears from the conference's waitUrl, as (start, end) spans of
        sound in seconds from their join: Twilio's own music without a waitUrl, silence for
        an empty one. A URL's answer is run the cautious way Twilio's documents allow: a
        bare audio file plays once; a TwiML document plays its <Play> (loop="0": 1,000
        times), <Say> and <Pause> in turn and fetches its <Redirect>; then silence, for no
        document says a conference's waitUrl is asked again as an <Enqueue>'s is."""
        url = element.get("waitUrl")
        if url is None:
            return [(0, LONGEST_CALL)]
        method = (element.get("waitMethod") or "POST").upper()
        webhooks = self.network.webhooks
        spans, at, fetched = [], 0.0, 0
        while url and at < LONGEST_CALL and fetched < MAX_DOCUMENTS:
            fetched += 1
            root, audio = webhooks.wait_audio(url, {**self.call.params, "CallStatus": "in-progress"}, method)
            if audio is not None:
                self.hears("♪ the wait audio, once")
                return spans + [(at, at + wav_seconds(audio))]
            url = None
            for verb in root if root is not None else ():
                seconds = 0
                if verb.tag == "Play":
                    loops = int(verb.get("loop") or 1) or PLAY_FOREVER
                    seconds = loops * webhooks.audio_seconds(verb.text or "")
                    self.hears(f"♪ the wait audio, {loops} time{'s' if loops > 1 else ''}")
                elif verb.tag == "Say":
                    self.hears(verb.text or "")
                    seconds = max(len((verb.text or "").split()) / 3, 1)
                elif verb.tag == "Pause":
                    at += int(verb.get("length", 1))
                elif verb.tag == "Redirect":
                    url, method = verb.text, (verb.get("method") or "POST").upper()
                    break
                if seconds:
                    spans.append((at, at + seconds))
                    at += seconds
        return spans
