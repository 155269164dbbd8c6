"""The soak's books: what must never happen, found in the model's call log, in samples taken
as the run goes, and in the app's records read through its storage API.

Each check is a plain function over plain records, so tests feed it logs made for the
purpose; `Watch` takes the samples that only a moment shows.
"""
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

OPEN = ("pending", "dialing", "connected")


@dataclass
class Finding:
    """One kind of thing that must never happen: how often, and a few examples."""

    name: str
    examples: list = field(default_factory=list)

    @property
    def count(self):
        """How many times it happened."""
        return len(self.examples)


def overlapping_calls(records, kinds):
    """Pairs of placed calls to one number live at the same time (from the model's log)."""
    by_number = defaultdict(list)
    for record in records:
        if record.direction == "outbound-api" and record.kind in kinds:
            by_number[record.number].append(record)
    found = []
    for number, calls in by_number.items():
        calls.sort(key=lambda r: r.started)
        last_end, last = None, None
        for record in calls:
            end = record.ended if record.ended is not None else float("inf")
            if last_end is not None and record.started < last_end:
                found.append((number, last.sid, record.sid))
            if last_end is None or end > last_end:
                last_end, last = end, record
    return found


def rung_while_live(records):
    """Calls the app placed to a number while another call to or from that number was live
    (from the model's log): (number, the live call, the call placed over it). Live is
    queued, ringing or in progress; a holding caller's own call counts, agents' and
    customers' alike."""
    by_number = defaultdict(list)
    for record in records:
        by_number[record.number].append(record)
    found = []
    for number, calls in by_number.items():
        calls.sort(key=lambda r: (r.started, r.sid))
        for i, later in enumerate(calls):
            if later.direction != "outbound-api":
                continue
            for earlier in calls[:i]:
                if earlier.ended is None or earlier.ended > later.started:
                    found.append((number, earlier.sid, later.sid))
    return found


@dataclass(frozen=True)
class Owner:
    """What a placed call belongs to, as its URLs name it: an attempt of a callback
    (kind `callback`, the callback id) or an offer of a holding caller (kind `call`, their
    CallSid), with the attempt's or offer's id."""

    kind: str
    key: str
    attempt: str


def rung_outside_hours(records, clock_of):
    """Calls the app placed to a customer outside their calling window (`clock_of(number)`,
    their customer_clock.CustomerClock), at the moment Twilio took the call."""
    return [record for record in records
            if record.kind == "customer" and record.direction == "outbound-api" and record.placed_at
            and not clock_of(record.number).is_open(record.placed_at)]


def owner_named(*urls):
    """The Owner the first of these URLs to name one names (`kind`/`key` or `callback`, and
    `attempt` in its query), or None."""
    for url in urls:
        query = parse_qs(urlsplit(url or "").query)

        def one(name, query=query):
            return (query.get(name) or [""])[0]

        key = one("key") or one("callback")
        kind = one("kind") or ("callback" if one("callback") else "")
        if key and one("attempt") and kind in ("callback", "call"):
            return Owner(kind, key, one("attempt"))
    return None


def owner_is_open(storage, owner):
    """Whether the app's records hold this attempt or offer open: the attempt's history entry
    not ended (or, before it has one, the callback dialing or connected on it); the holding
    caller's record in that very offer."""
    from callback.domain import records as m
    from callback.storage import NotFound

    if owner.kind == "call":
        call = storage.get_waiting_call(owner.key)
        return call is not None and call.offer_id == owner.attempt and call.status == m.CONNECTING
    try:
        cb = storage.get_callback(owner.key)
    except NotFound:
        return False
    attempt = cb.attempt(owner.attempt)
    if attempt is not None:
        return attempt.ended_at is None
    return cb.attempt_id == owner.attempt and cb.status in (m.DIALING, m.CONNECTED)


@dataclass(frozen=True)
class Sighting:
    """A placed call seen live by the watch at simulated time `at`; `owned` when the attempt
    or offer its URLs name was open in the app's records then, or it was talking with
    someone (in a conference with another live call) whatever the records said."""

    at: float
    sid: str
    owned: bool


def calls_no_attempt_owns(sightings, grace, live_at_drain=()):
    """Placed calls no attempt or offer owned: seen live and unowned (see Sighting) for
    `grace` simulated seconds on end, or still live when the soak drained. (CallSid, why)."""
    found, unowned_since = {}, {}
    for seen in sorted(sightings, key=lambda s: s.at):
        if seen.owned:
            unowned_since.pop(seen.sid, None)
            continue
        since = unowned_since.setdefault(seen.sid, seen.at)
        if seen.at - since >= grace and seen.sid not in found:
            found[seen.sid] = (f"live {seen.at - since:.0f} s after its attempt or offer ended, "
                               "talking with nobody")
    for sid in live_at_drain:
        found.setdefault(sid, "still live when the soak drained")
    return list(found.items())


def available_while_on_call(agents, before, after):
    """Agents whose record says available while a call to their phone was live all along
    (live in the model's snapshots taken before and after the agents were read):
    (agent id, CallSid). `before` and `after` map CallSid to the call's record."""
    found = []
    for agent in agents:
        if agent.status != "available":
            continue
        found += [(agent.agent_id, sid) for sid, record in after.items()
                  if sid in before and record.number == agent.phone]
    return found


class Watch:
    """What only a moment shows, sampled as the soak runs: agents the app calls available
    while a call to their phone is live, and placed calls live with their attempt or offer
    closed (Sighting). Reads the app's records through its storage API, the calls from the
    model."""

    def __init__(self, run):
        self.run = run
        self.stop = threading.Event()
        self.available = {}  # (agent id, CallSid) -> simulated time first seen
        self.sightings = []
        self.closed = set()  # owners seen closed: an attempt or offer never reopens
        self.samples = 0

    def loop(self):
        """Sample every `sample_seconds` simulated seconds (at most twice a real second)."""
        plan = self.run.plan
        period = max(plan.sample_seconds / plan.speed, 0.5)
        while not self.stop.wait(period):
            try:
                self.sample()
            except Exception:  # DynamoDB under the soak's load may time out: next round
                continue

    def sample(self):
        """One look at the agents and the live calls."""
        network, storage = self.run.network, self.run.svc.storage
        before = network.live_calls()
        agents = storage.list_agents()
        after = network.live_calls()
        now = network.sim_elapsed()
        for key in available_while_on_call(agents, before, after):
            self.available.setdefault(key, now)
        talking = network.in_conversation()
        for sid, record in after.items():
            if record.direction != "outbound-api":
                continue
            owner = owner_named(record.url, record.status_callback)
            if owner is None:
                continue
            if owner not in self.closed and not owner_is_open(storage, owner):
                self.closed.add(owner)
            self.sightings.append(Sighting(now, sid, owner not in self.closed or sid in talking))
        self.samples += 1


def warned_callbacks(requests):
    """Callback ids whose agent was told, in the conference, that the line may be a machine
    (from the REST requests the stand-in saw: a participant's AnnounceUrl of the notice)."""
    warned = set()
    for request in requests:
        for url in request.get("params", {}).get("AnnounceUrl", []):
            if "/voice/agent/machine-notice" in url:
                warned.update(parse_qs(urlsplit(url).query).get("callback", []))
    return warned


def check_callbacks(callbacks, requested, max_retries, talks, warned=frozenset()):
    """Findings over the stored callbacks: attempts, histories, open ones, lost ones. A lost
    one whose agent was warned of a machine (`warned`) is told apart: the app completes a
    warned call whose line hangs up before the agent's star, by design."""
    over = Finding("attempts over Max Retries")
    miscounted = Finding("attempts different from the counted history")
    unsettled = Finding("callbacks neither finished nor pending with a closed history")
    lost = Finding("callbacks lost")
    stored_numbers = {cb.number for cb in callbacks.values()}
    for callback_id, number in requested.items():
        # A caller told "you already have a callback" was told the truth if their number has one.
        if callback_id not in callbacks and number not in stored_numbers:
            lost.examples.append(f"{callback_id} (requested, never stored)")
    for callback_id, cb in callbacks.items():
        number = cb.number
        if cb.attempts > max_retries:
            over.examples.append(f"{callback_id} ({cb.attempts} > {max_retries})")
        counted = sum(1 for a in cb.history if a.counted)
        if cb.attempts != counted:
            miscounted.examples.append(f"{callback_id} (attempts {cb.attempts}, counted {counted})")
        if cb.status in OPEN:
            closed = all(a.outcome and a.ended_at for a in cb.history)
            if cb.status != "pending" or not closed:
                unsettled.examples.append(f"{callback_id} ({cb.status}"
                                          f"{'' if closed else ', an attempt left open'})")
        if cb.status == "completed" and talks.get(number, 0) <= 0:
            how = ("the agent warned of a machine, the line hung up before their star"
                   if callback_id in warned else "never warned of a machine")
            lost.examples.append(f"{callback_id} (completed, but the customer never talked with an agent; "
                                 f"{how})")
    return [over, miscounted, unsettled, lost]


def check_agents(agents):
    """Agents left reserved or busy when everything is over."""
    stuck = Finding("agents left busy or reserved")
    for agent in agents:
        if agent.status in ("reserved", "busy"):
            stuck.examples.append(f"{agent.agent_id} ({agent.status})")
    return stuck


def call_summary(record):
    """A call of the model's log for an example: SID, simulated minutes live, how it went."""
    def at(seconds):
        return "…" if seconds is None else f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    return f"{record.sid} ({at(record.started)}–{at(record.ended)}, {record.behaviour}, {record.outcome or 'live'})"
