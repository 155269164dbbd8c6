"""`make soak`: the app against a chaotic Twilio, in several processes; then the books.

    python -m bench.soak [--seed N] [--callbacks 200] [--agents 10] [--workers 3] [--write]
    python -m bench.soak --smoke          # ~30 callbacks, a short run

Processes: one serves DynamoDB over HTTP (Amazon's DynamoDB Local when `make
dynamodb-local` has fetched it, else moto's server), several
serve the app's webhooks and API and run the sweep every (simulated) minute — many
Lambdas at once, their dispatch hand-offs run late, twice or never — and this one plays
Twilio with `devtools.twilio_model`: callers who ask for a callback through the real IVR
(some in both queues), callers who hold and hang up at each step of an offer to an agent,
agents who press 1, decline (and set themselves available at once), hang up while the
customer is dialed, miss calls or whose phone goes to voicemail, customers who answer, are
busy, do not answer, have voicemail or a number Twilio refuses, phones busy while on
another call, conferences and their events, status callbacks duplicated, delayed,
reordered and lost, outbound calls paced by the account's calls per second, and REST
requests that fail (429, 5xx), answer late, or time out (some after Twilio acted). Every
process shares one accelerated clock.

At the end it counts what must never happen and prints each count with example ids:
two live calls to one agent or one customer at once, and a phone rung while a call to or
from it was live (from the model's own call log); a placed call no attempt or offer owns;
a customer rung outside their calling hours (their local time, from the model's log); an
agent the app calls available while on a call (sampled as the run goes); attempts over
Max Retries or different from the counted history, callbacks neither finished nor pending
with a closed history, agents left busy or reserved, callbacks lost. Randomness is seeded
and the seed printed, so a run can be replayed (thread timing still varies). It ends by
itself: every loop is bounded in simulated and real time. Beside the counts it reports what
the run cost: Twilio's dollars (bench/cost.py) and the requests made of DynamoDB, Lambda
and Twilio per completed callback and per holding caller-minute (bench/meter.py).
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_key, "soak")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from bench.cost import run_cost  # noqa: E402
from bench.meter import HANDOFF, SWEEP, Meter, run_usage  # noqa: E402
from bench.soak_checks import (  # noqa: E402
    OPEN,
    Finding,
    Watch,
    call_summary,
    calls_no_attempt_owns,
    check_agents,
    check_callbacks,
    overlapping_calls,
    owner_named,
    rung_outside_hours,
    rung_while_live,
    warned_callbacks,
)
from callback.clock import fixed_start  # noqa: E402

PUBLIC = "https://soak.example.com/live"
TOKEN = "soak-auth-token"
API_TOKEN = "soak-api-token"
IVR_NUMBER = "+15005550006"
# A Monday at 15:30 UTC ahead of the real time, never a past date: DynamoDB Local deletes
# items (waiting calls, sessions) whose TTL is past by the real time (see FixedClock). It is
# 07:30 in the Pacific zone: those customers' callbacks wait for 08:00, half an hour in,
# and come due together; Alaska's, Hawaii's and Guam's wait all run.
ORIGIN = fixed_start() + timedelta(minutes=30)
# Refusals that describe the number (21215/21216 describe the account: held, not failed).
REFUSAL_CODES = (21211, 21214, 21217)
# Callbacks are asked for in Sales (the menu's 1); Support (2) ranks first, so callers who
# hold there are offered to agents while Sales's callbacks are being worked.
SALES, SUPPORT = ("Sales", "1"), ("Support", "2")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
SECTION = "## Soak"


class SharedClock:
    """One accelerated clock for every process: the same origin and speed give the same now."""

    def __init__(self, origin_wall, speed, origin=ORIGIN):
        self.origin_wall, self.speed, self.origin = origin_wall, float(speed), origin

    def now(self):
        """Origin plus elapsed wall time times the speed."""
        return self.origin + timedelta(seconds=(time.time() - self.origin_wall) * self.speed)


@dataclass
class Plan:
    """The size and pace of one run."""

    seed: int = 1
    callbacks: int = 200
    agents: int = 10
    workers: int = 3
    speed: float = 10.0
    arrival_minutes: float = 20.0  # callers call in over this long (a busy hour's pace)
    minutes: float = 90.0  # simulated time the run may take before draining
    real_limit: float = 1500.0  # real seconds the whole run may take
    expiration_minutes: int = 45
    retry_minutes: int = 3
    max_retries: int = 3
    duplicate: float = 0.15
    lose: float = 0.05
    max_delay: float = 20.0
    rest_timeouts: float = 0.03  # share of create requests answered after the client gave up
    slow_creates: float = 0.15  # share answered late, within the client's timeout
    create_errors: float = 0.01  # share refused with 429/503, nothing placed
    update_errors: float = 0.05  # share of redirects and hang-ups answered 429/500/503
    update_timeouts: float = 0.03  # share timing out (half of them applied all the same)
    rest_timeout_seconds: float = 2.0
    cps: float = 1.0  # calls a second Twilio lets out of the account's outbound queue
    burst_every: float = 240.0  # the account's other traffic: a burst about this often
    burst_size: tuple = (10, 40)
    handoff_late: float = 20.0  # a hand-off's dispatch runs up to this late (simulated s)
    handoff_twice: float = 0.15
    handoff_lost: float = 0.03
    shared_customers: float = 0.12  # share of callers who ask for a callback in Support too
    holders: int = 40  # callers who hold in Support while agents work
    holder_minutes: float = 20.0  # they call in over this long after the agents start
    sample_seconds: float = 5.0  # how often the watch samples agents and live calls
    # How long a placed call may outlive its attempt or offer: the app's last words to an agent
    # (a notice) take under 10 s, a retried hang-up a few more.
    unowned_grace: float = 30.0
    engine: str = "auto"  # DynamoDB Local when fetched, else moto
    detection: str = "async"  # the IVR's answering-machine detection: async, sync or off

    @classmethod
    def smoke(cls, seed=1):
        """A short run for the test suite."""
        return cls(seed=seed, callbacks=24, agents=4, workers=2, speed=60.0, arrival_minutes=6.0,
                   minutes=40.0, real_limit=150.0, expiration_minutes=25, retry_minutes=2, holders=8,
                   holder_minutes=6.0)


# -- the app's processes ---------------------------------------------------------------------

def app_config(spec):
    """The app's configuration in every process of one run."""
    return {
        "TWILIO_ACCOUNT_SID": "AC" + "5" * 32, "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_BASE_URL": spec["twilio_url"], "PUBLIC_BASE_URL": PUBLIC,
        "CALLBACK_TABLE_PREFIX": spec["prefix"], "AWS_ENDPOINT_URL_DYNAMODB": spec["dynamodb"],
        "ADMIN_API_TOKEN": API_TOKEN, "SECRET_KEY": "soak", "SESSION_COOKIE_SECURE": False,
        "TWILIO_REST_TIMEOUT_SECONDS": spec["rest_timeout_seconds"], "LOG_LEVEL": "WARNING",
        # moto on a shared machine is far slower than DynamoDB: more than production's 2 s.
        "DYNAMODB_TIMEOUT_SECONDS": 10,
        "clock": SharedClock(spec["origin_wall"], spec["speed"]),
    }


def run_dynamodb(engine):
    """Child process: DynamoDB over HTTP until stdin closes — Amazon's DynamoDB Local (the
    tests' engine, when `make dynamodb-local` has fetched it), else moto's server."""
    server = None
    if engine in ("auto", "dynamodb-local"):
        from devtools.dynamodb_local import DynamoDBLocal, Unavailable

        try:
            server = DynamoDBLocal().start()
            print(f"{server.url} DynamoDB Local", flush=True)
        except Unavailable as exc:
            if engine == "dynamodb-local":
                raise
            print(f"DynamoDB Local unavailable ({str(exc).splitlines()[0]}); using moto", file=sys.stderr)
    if server is None:
        from devtools.local import start_dynamodb

        endpoint, server = start_dynamodb()
        print(f"{endpoint} moto", flush=True)
    sys.stdin.read()
    server.stop()


class StormyHandoff:
    """Dispatch handed over the way Lambda's asynchronous invocations deliver it under load:
    each request runs late (up to `late` simulated seconds), some twice, a few never, several
    at once. The app takes it through configuration (`dispatch_runner`), as any runner."""

    def __init__(self, seed, index, speed, late, twice, lost, meter=None):
        from devtools.twilio_model import Scheduler

        self.seed, self.index, self.speed = seed, index, speed
        self.late, self.twice, self.lost = late, twice, lost
        self.meter = meter or Meter()  # each run is a Lambda invocation, a repeat too
        self.svc = None  # the app's services, once built
        self.scheduler = Scheduler(workers=3)
        self.lock = threading.Lock()
        self.requests = 0

    def submit(self, queue_names):
        """Ask for a dispatch of these queues; it runs when (and as often as) the seed says."""
        with self.lock:
            self.requests += 1
            rng = random.Random(f"{self.seed}|handoff|{self.index}|{self.requests}")
        self.meter.handoff("dispatch requested")
        if rng.random() < self.lost:
            return
        for _ in range(2 if rng.random() < self.twice else 1):
            self.scheduler.after(rng.uniform(0, self.late) / self.speed, self._dispatch, queue_names)

    def settle(self, numbers, after_seconds):
        """A quick retry of legs (`after_seconds` wall seconds from now), delivered as
        dispatches are: late, twice or never, as the seed says."""
        with self.lock:
            self.requests += 1
            rng = random.Random(f"{self.seed}|settle|{self.index}|{self.requests}")
        self.meter.handoff("settle requested")
        if rng.random() < self.lost:
            return
        for _ in range(2 if rng.random() < self.twice else 1):
            late = rng.uniform(0, self.late) / self.speed
            self.scheduler.after(after_seconds + late, self._settle, numbers)

    def _settle(self, numbers):
        from callback.work.handoff import settle_now

        self.meter.handoff("settle run")
        with self.meter.source(HANDOFF):
            settle_now(self.svc, numbers)

    def _dispatch(self, queue_names):
        from callback.work.handoff import dispatch_now

        self.meter.handoff("dispatch run")
        with self.meter.source(HANDOFF):
            dispatch_now(self.svc, queue_names)


def run_worker(spec):
    """Child process: the app's webhooks and API over HTTP, and the sweep every minute; its
    requests to DynamoDB, the ones it served and its hand-offs and sweeps are counted
    (bench/meter.py) and written to `spec["meter"]` when it stops."""
    import logging

    from werkzeug.serving import make_server

    from callback import create_app
    from callback.storage.client import botocore_session
    from callback.work.sweep import EVERY, sweep_forever

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    meter = Meter()
    # Before the app makes its DynamoDB client: the session's handlers are copied into it.
    meter.watch_dynamodb(botocore_session())
    handoff = StormyHandoff(spec["seed"], spec["index"], spec["speed"], *spec["handoff"], meter=meter)
    # The metric lines go to the meter, never to stdout (nobody reads this pipe after the port).
    app = create_app({**app_config(spec), "dispatch_runner": handoff, "METRICS": "on",
                      "metrics_sink": meter.metric_line})
    svc = handoff.svc = app.extensions["callback"]
    server = make_server("127.0.0.1", 0, meter.wsgi(app), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    # Workers sweep out of step, as CloudWatch's Lambdas would, sometimes at once.
    first_after = EVERY * (1 + spec["index"] / max(spec["workers"], 1))

    def sweep():
        with meter.source(SWEEP):
            sweep_forever(svc, stop, first_after=first_after)

    threading.Thread(target=sweep, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()
    stop.set()
    server.shutdown()
    if spec.get("meter"):
        with open(spec["meter"], "w") as f:
            json.dump(meter.snapshot(), f)


def start_child(args, log_path):
    """A child process of this run; returns (process, its first output line)."""
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "bench.soak", *args], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                               env={**os.environ, "PYTHONPATH": ROOT})
    line = process.stdout.readline().strip()
    if not line:
        process.kill()
        log.close()
        with open(log_path) as f:
            raise RuntimeError(f"soak child {args[:2]} did not start:\n{f.read()[-2000:]}")
    return process, line


def stop_child(process):
    """Close its stdin (it stops by itself), kill it if it will not."""
    try:
        process.stdin.close()
        process.wait(timeout=15)
    except (subprocess.TimeoutExpired, OSError):
        process.kill()
        process.wait(timeout=5)


# -- the people ----------------------------------------------------------------------------

def agent_behaviours(rng, voicemail_prone):
    """What one agent's phone does, call after call. A person listens to the whisper before
    pressing; some decline (2), some hang up seconds after accepting, while the customer is
    being dialed; and any hangs up after 20 s of silence while they wait in the conference."""
    from devtools.twilio_model import Behaviour

    plan = []
    for _ in range(400):
        roll = rng.random()
        voicemail = 0.35 if voicemail_prone else 0.06
        person = dict(ring_seconds=rng.uniform(2, 8), talk_seconds=rng.uniform(30, 150), alone_seconds=90,
                      think_seconds=rng.uniform(1.5, 6), silence_seconds=20)
        if roll < voicemail:
            plan.append(Behaviour("voicemail", keys="", ring_seconds=rng.uniform(8, 15),
                                  talk_seconds=rng.uniform(20, 40), alone_seconds=40))
        elif roll < voicemail + 0.08:
            plan.append(Behaviour("no-answer"))
        elif roll < voicemail + 0.11:
            plan.append(Behaviour("busy"))
        elif roll < voicemail + 0.16:
            plan.append(Behaviour("human", keys="2", **person))
        elif roll < voicemail + 0.28:
            plan.append(Behaviour("human", keys="1", **{**person, "alone_seconds": rng.uniform(1, 6)}))
        else:
            plan.append(Behaviour("human", keys="1", **person))
    return plan


def _callable_digits(rng, i):
    """Ten digits of a number the IVR calls back (a US area code the numbering plan knows):
    callers who key in premium, Caribbean or non-existent numbers are another test's."""
    from callback.domain.dialing import why_not_callable

    for _ in range(50):
        digits = f"{rng.randint(201, 989)}555{i:04d}"
        if why_not_callable("+1" + digits) is None:
            return digits
    return f"212555{i:04d}"


def customer_behaviours(rng):
    """What one customer's phone does, attempt after attempt; and a refusal code or None."""
    from devtools.twilio_model import Behaviour

    person = Behaviour("human", keys="1", ring_seconds=rng.uniform(3, 12),
                       talk_seconds=rng.uniform(30, 150), alone_seconds=60)
    voicemail = Behaviour("voicemail", keys="", ring_seconds=rng.uniform(15, 25), talk_seconds=30,
                          alone_seconds=30)
    roll = rng.random()
    if roll < 0.05:
        return [person], rng.choice(REFUSAL_CODES)
    if roll < 0.45:
        return [person], None
    if roll < 0.60:
        return [voicemail, person], None
    if roll < 0.70:
        return [Behaviour("busy"), person], None
    if roll < 0.80:
        return [Behaviour("no-answer")], None
    if roll < 0.85:
        return [voicemail], None
    choices = [person, voicemail, Behaviour("busy"), Behaviour("no-answer")]
    return [rng.choice(choices) for _ in range(8)], None


def queue_choice(queue_key, responder):
    """A caller who picks a queue at the IVR's menu ("For Support, press 2."), then answers
    every other prompt as `responder` does."""

    def respond(prompt):
        if re.search(r"For [^,.]+, press \d", prompt):
            return queue_key
        return responder(prompt)

    return respond


def hang_up_plan(rng, index):
    """When the index-th holding caller hangs up, if offered to an agent: at each moment of
    an offer in turn (a fifth of them stay until served or out of patience)."""
    from devtools.twilio_model import (
        AGENT_ACCEPTED,
        AGENT_ANSWERED,
        AGENT_RUNG,
        MOVED,
        OFFER_MOMENTS,
        HangUpPlan,
    )

    # Ringing lasts seconds, the whisper a few; right after 1 is before the agent is in.
    delays = {AGENT_RUNG: (1, 10), AGENT_ANSWERED: (0.5, 5), AGENT_ACCEPTED: (0, 3), MOVED: (0, 0)}
    moments = [*OFFER_MOMENTS, None]
    moment = moments[index % len(moments)]
    return HangUpPlan(moment, rng.uniform(*delays[moment])) if moment else None


@dataclass
class Run:
    """Everything one run started, for the checks and for stopping it."""

    plan: Plan
    network: object = None
    svc: object = None
    standin: object = None
    watch: object = None
    requested: dict = field(default_factory=dict)  # callback id -> customer number
    refused: dict = field(default_factory=dict)  # number -> code
    agent_numbers: set = field(default_factory=set)
    eager_agents: dict = field(default_factory=dict)  # phone -> agent id: back at once after declining
    worker_logs: list = field(default_factory=list)
    meter_paths: list = field(default_factory=list)  # each app process's counts (bench/meter.py)
    live_at_drain: dict = field(default_factory=dict)  # CallSid -> record, when the soak drained
    engine: str = ""
    callers: Counter = field(default_factory=Counter)
    sim_minutes: float = 0.0
    real_seconds: float = 0.0


class Desk:
    """Agent desktops: an agent the app set offline comes back after a break; an eager one
    sets themselves available again right after declining a call, while the app may still
    be telling them goodbye on it."""

    def __init__(self, run, api_urls):
        from devtools.twilio_model import Scheduler

        self.run, self.api_urls = run, api_urls
        self.stop = threading.Event()
        self.draining = threading.Event()
        self.rng = random.Random(f"{run.plan.seed}|desk")
        self.back_at = {}
        self.scheduler = Scheduler(workers=2)
        self.local = threading.local()

    def wanted(self, agent, elapsed):
        """The status this agent's desk sets now (at `elapsed` simulated seconds), or None."""
        if agent.status != "offline":
            # A break starts when they go offline, not at an earlier sighting of them offline.
            self.back_at.pop(agent.agent_id, None)
            return "offline" if self.draining.is_set() and agent.status == "available" else None
        if self.draining.is_set():
            return None
        back = self.back_at.setdefault(agent.agent_id, elapsed + self.rng.uniform(30, 120))
        if elapsed < back:
            return None
        del self.back_at[agent.agent_id]
        return "available"

    def set_status(self, agent_id, status):
        """PUT the agent's status through the app's JSON API; the HTTP status (None: no answer)."""
        import requests

        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
        try:
            return self.local.http.put(f"{self.rng.choice(self.api_urls)}/api/agents/{agent_id}/status",
                                       json={"status": status}, timeout=15,
                                       headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code
        except requests.RequestException:
            return None

    def key_pressed(self, phone, digits):
        """An eager agent who declined (any key but 1) clicks available a moment later, and
        again if the app says they are still on the call."""
        agent_id = self.run.eager_agents.get(phone.number)
        if agent_id is None or digits == "1" or self.draining.is_set():
            return
        rng = random.Random(f"{self.run.plan.seed}|eager|{agent_id}|{phone.calls}")
        delay = self.run.network.timeline.real(rng.uniform(0.5, 3))
        self.scheduler.after(delay, self._come_back, agent_id, 3)

    def _come_back(self, agent_id, tries):
        if self.set_status(agent_id, "available") == 409 and tries > 1 and not self.draining.is_set():
            self.scheduler.after(self.run.network.timeline.real(2), self._come_back, agent_id, tries - 1)

    def loop(self):
        """Every 20 simulated seconds, set agents available (or, when draining, offline)."""
        period = 20 / self.run.plan.speed
        while not self.stop.wait(period):
            try:
                agents = self.run.svc.storage.list_agents()
            except Exception:
                continue
            for agent in agents:
                wanted = self.wanted(agent, self.run.network.sim_elapsed())
                if wanted:
                    self.set_status(agent.agent_id, wanted)


def main_run(plan, out=print):
    """Start everything, play the run, stop everything; returns (Run, report)."""
    import logging

    from callback import create_app
    from callback.domain import records as m
    from callback.domain.settings import CallbackSettings
    from devtools.standin import RestFaults, StandInServer, TwilioStandIn
    from devtools.twilio_model import Chaos, LocalBackend, Network, Pacing, Phone, Timeline, Webhooks

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.time()
    rng = random.Random(plan.seed)
    workdir = tempfile.mkdtemp(prefix="soak-")
    out(f"soak: seed {plan.seed}; {plan.callbacks} callbacks, {plan.holders} holding callers, {plan.agents} "
        f"agents, {plan.workers} app processes, clock x{plan.speed:g}; logs in {workdir}")
    children = []
    run = Run(plan)
    try:
        dynamo, line = start_child(["dynamodb", plan.engine], os.path.join(workdir, "dynamodb.log"))
        children.append(dynamo)
        endpoint, _, run.engine = line.partition(" ")
        out(f"soak: DynamoDB: {run.engine} at {endpoint}")
        origin_wall = time.time()
        clock = SharedClock(origin_wall, plan.speed)
        standin = TwilioStandIn(clock=clock, seed=plan.seed)
        standin.faults = RestFaults(seed=plan.seed, update_errors=plan.update_errors,
                                    update_timeouts=plan.update_timeouts, create_errors=plan.create_errors,
                                    create_timeouts=plan.rest_timeouts, slow_creates=plan.slow_creates,
                                    client_timeout=plan.rest_timeout_seconds)
        server = StandInServer(standin).start()
        run.standin = standin
        spec = {"twilio_url": server.url, "prefix": f"soak{plan.seed}-", "dynamodb": endpoint,
                "rest_timeout_seconds": plan.rest_timeout_seconds, "origin_wall": origin_wall,
                "speed": plan.speed, "workers": plan.workers, "seed": plan.seed,
                "handoff": [plan.handoff_late, plan.handoff_twice, plan.handoff_lost]}
        app = create_app(app_config(spec))
        svc = run.svc = app.extensions["callback"]
        svc.storage.create_tables()
        settings = CallbackSettings(offer_after_seconds=30, expiration_minutes=plan.expiration_minutes,
                                    max_retries=plan.max_retries, retry_minutes=plan.retry_minutes,
                                    transfer_timeout_seconds=30, machine_detection=plan.detection)
        queues = (m.Queue(SALES[0], "Main Line", 10), m.Queue(SUPPORT[0], "Main Line", 20))
        svc.storage.save_ivr(m.Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Thanks for calling.",
                                   queues=queues, settings=settings))
        urls = []
        for index in range(plan.workers):
            log_path = os.path.join(workdir, f"app-{index}.log")
            meter_path = os.path.join(workdir, f"meter-{index}.json")
            worker, port = start_child(["worker", json.dumps({**spec, "index": index, "meter": meter_path})],
                                       log_path)
            children.append(worker)
            urls.append(f"http://127.0.0.1:{port}")
            run.worker_logs.append(log_path)
            run.meter_paths.append(meter_path)

        chaos = Chaos(duplicate=plan.duplicate, lose=plan.lose, max_delay=plan.max_delay)
        pacing = Pacing(plan.cps, plan.burst_every, plan.burst_size)
        network = run.network = Network(LocalBackend(standin), Webhooks(TOKEN, PUBLIC, urls),
                                        Timeline(plan.speed, clock), chaos=chaos, seed=plan.seed,
                                        pacing=pacing, one_call_per_phone=True, stable_sids=True)
        out(f"soak: network: {chaos.describe()}; {pacing.describe()}; a phone on a call answers busy")
        out(f"soak: REST: creates {plan.rest_timeouts:.0%} answered after the app gave up (placed), "
            f"{plan.slow_creates:.0%} late, {plan.create_errors:.0%} refused for load; redirects and "
            f"hang-ups {plan.update_errors:.0%} 429/5xx, {plan.update_timeouts:.0%} timed out "
            "(half applied); "
            f"hand-offs up to {plan.handoff_late:g} s late, {plan.handoff_twice:.0%} twice, "
            f"{plan.handoff_lost:.0%} never")
        for a in range(plan.agents):
            number = f"+1415555{a:04d}"
            # Every other agent also takes Support, which ranks first.
            queues = [SALES[0], SUPPORT[0]] if a % 2 == 0 else [SALES[0]]
            svc.storage.save_agent_profile(f"a{a:02d}", name=f"Agent {a}", phone=number, queues=queues,
                                           now=clock.now(), create=True)
            network.add_phone(Phone(number, "agent", agent_behaviours(random.Random(f"{plan.seed}|agent|{a}"),
                                                                      voicemail_prone=a % 5 == 4),
                                    name=f"agent a{a:02d}"))
            run.agent_numbers.add(number)
            if a % 4 == 1:
                run.eager_agents[number] = f"a{a:02d}"
        network.start()

        callers = []
        for i in range(plan.callbacks):
            digits = _callable_digits(rng, i)
            number = "+1" + digits
            behaviours, refusal = customer_behaviours(random.Random(f"{plan.seed}|customer|{i}"))
            network.add_phone(Phone(number, "customer", behaviours, name=f"customer {i}"))
            if refusal:
                standin.refuse(number, refusal)
                run.refused[number] = refusal
            queues = [SALES, SUPPORT] if rng.random() < plan.shared_customers else [SALES]
            callers.append((digits, number, rng.uniform(0, plan.arrival_minutes * 60), queues))
        threads = [threading.Thread(target=_caller, args=(run, *caller), daemon=True) for caller in callers]
        for thread in threads:
            thread.start()

        # Agents start their day once the callers have asked for callbacks (offer after
        # 30 s, then the number); then the holding callers call in.
        agents_start = plan.arrival_minutes * 60 + 90
        for i in range(plan.holders):
            holder_rng = random.Random(f"{plan.seed}|holder|{i}")
            # Every fourth is a customer with a callback pending, calling in while they wait.
            number = callers[i * 7 % len(callers)][1] if i % 4 == 3 and callers else f"+1646555{i:04d}"
            at = agents_start + holder_rng.uniform(0, plan.holder_minutes * 60)
            threads.append(threading.Thread(target=_holder, daemon=True,
                                            args=(run, number, at, hang_up_plan(holder_rng, i))))
            threads[-1].start()
        time.sleep(agents_start / plan.speed)
        desk = Desk(run, urls)
        network.key_listeners.append(desk.key_pressed)
        desk_thread = threading.Thread(target=desk.loop, daemon=True)
        desk_thread.start()
        watch = run.watch = Watch(run)
        threading.Thread(target=watch.loop, daemon=True).start()
        # Through the app's API, as the desk does: every request the app makes is then an
        # app process's, where it is counted (a refusal: the desk tries on its next round).
        for agent in retrying(svc.storage.list_agents):
            desk.set_status(agent.agent_id, m.AVAILABLE)

        deadline_sim = plan.minutes * 60
        deadline_real = started + plan.real_limit * 0.8
        next_note = network.sim_elapsed() + 600
        while network.sim_elapsed() < deadline_sim and time.time() < deadline_real:
            time.sleep(2)
            callers_done = all(not t.is_alive() for t in threads)
            if callers_done or network.sim_elapsed() >= next_note:
                still_open = retrying(_open_callbacks, svc)
                if network.sim_elapsed() >= next_note:
                    next_note += 600
                    out(f"soak: {network.sim_elapsed() / 60:.0f} simulated minutes: {len(run.requested)} "
                        f"callbacks asked for, {still_open} still open")
                if callers_done and not still_open:
                    break
        out(f"soak: calls done at {network.sim_elapsed() / 60:.0f} simulated minutes; draining")
        desk.draining.set()
        drain_until = min(time.time() + 600 / plan.speed + 10, started + plan.real_limit)
        while time.time() < drain_until and network.busy():
            time.sleep(0.5)
        # Two more sweeps in every process, for whatever events never came.
        time.sleep(min(150 / plan.speed, max(started + plan.real_limit - time.time(), 0)))
        desk.stop.set()
        watch.stop.set()
        run.live_at_drain = {sid: record for sid, record in network.live_calls().items()
                             if record.direction == "outbound-api"}
        run.sim_minutes = network.sim_elapsed() / 60
        for worker in children[1:]:
            stop_child(worker)
        network.stop()
        desk.scheduler.stop()
        report = check(run)
        write_evidence(run, report, os.path.join(workdir, "calls.json"))
        out(f"soak: every finding, the model's call log and every REST request in {workdir}/calls.json")
        server.stop()
    finally:
        for child in children:
            if child.poll() is None:
                stop_child(child)
    run.real_seconds = time.time() - started
    return run, report


def write_evidence(run, report, path):
    """Every finding with all its examples, the model's call log (times in simulated seconds)
    and every REST request the app made (with the fault each met), for tracing a finding."""
    from dataclasses import asdict

    with open(path, "w") as f:
        json.dump({"findings": {f.name: f.examples for f in report["findings"]},
                   "calls": [asdict(r) for r in run.network.records], "rest": list(run.standin.requests)}, f,
                  indent=1, default=str)


def retrying(step, *args, tries=6, **kwargs):
    """A storage step of this process, retried: DynamoDB under the soak's load may time out."""
    from callback.storage import Conflict, NotFound, StorageError

    for attempt in range(tries):
        try:
            return step(*args, **kwargs)
        except (Conflict, NotFound):
            raise
        except StorageError:
            if attempt == tries - 1:
                raise
            time.sleep(1 + attempt)
    return None


def _caller(run, digits, number, at_seconds, queues=(SALES,)):
    """One caller: calls in at their moment and asks for a callback at the offer, in each of
    `queues` in turn; a caller whose call went wrong calls again a little later, as people
    do (three calls at most per queue)."""
    from devtools.twilio_model import Keys, answering_caller

    network = run.network
    rng = random.Random(f"{run.plan.seed}|redial|{number}")
    time.sleep(network.timeline.real(at_seconds))
    for queue_name, key in queues:
        for _ in range(3):
            keys = Keys(responder=queue_choice(key, answering_caller(digits)))
            call = network.dial_in(number, IVR_NUMBER, keys, patience=20 * 60, name=f"caller {number}")
            if call.left_with == "leave":
                run.requested[call.call.sid] = number
                run.callers[f"asked for a callback in {queue_name}"] += 1
                break
            if call.redirected_out:
                run.callers["taken by an agent while holding"] += 1
                return
            run.callers[f"called again after: {call.ending}"] += 1
            if network.stopped.wait(network.timeline.real(rng.uniform(60, 180))):
                return
        if network.stopped.wait(network.timeline.real(rng.uniform(20, 90))):
            return


def _holder(run, number, at_seconds, hang_up):
    """A caller who holds in Support, presses nothing at the callback offer, and hangs up
    when their plan says (at a moment of an offer to an agent) or their patience ends."""
    from devtools.twilio_model import Keys

    network = run.network
    if network.stopped.wait(network.timeline.real(at_seconds - network.sim_elapsed())):
        return
    call = network.dial_in(number, IVR_NUMBER, Keys(responder=queue_choice(SUPPORT[1], lambda prompt: "")),
                           patience=15 * 60, name=f"holder {number}", hang_up=hang_up)
    if call.call.plan_fired:
        run.callers[f"held, hung up: {hang_up.moment}"] += 1
    elif call.redirected_out:
        run.callers["held, taken by an agent"] += 1
    else:
        run.callers[f"held, then: {call.ending}"] += 1


def _all_callbacks(svc):
    """Every stored callback (through the index the admin list uses, not a Scan)."""
    found, key = [], None
    while True:
        items, key = svc.storage.list_callbacks(limit=100, start_key=key)
        found.extend(items)
        if not key:
            return found


def _open_callbacks(svc):
    """Callbacks not yet finished (read through the status index)."""
    waiting = 0
    for status in OPEN:
        key = None
        while True:
            items, key = svc.storage.list_callbacks(status=status, limit=100, start_key=key)
            waiting += len(items)
            if not key:
                break
    return waiting


# -- the books -----------------------------------------------------------------------------

def check(run):
    """Every count of the run, with examples; a dict for printing and RESULTS.md."""
    svc, network = run.svc, run.network
    callbacks = {cb.callback_id: cb for cb in retrying(_all_callbacks, svc)}
    records = list(network.records)
    two_agent = Finding("two live calls to one agent")
    two_customer = Finding("two live calls to one customer")
    by_sid = {r.sid: r for r in records}
    for number, first, second in overlapping_calls(records, ("agent",)):
        two_agent.examples.append(f"agent {number[-4:]}: {call_summary(by_sid[first])} / "
                                  f"{call_summary(by_sid[second])}")
    for number, first, second in overlapping_calls(records, ("customer",)):
        # A number may have a callback in each queue: each call names its own.
        owners = [owner_named(by_sid[sid].url, by_sid[sid].status_callback) for sid in (first, second)]
        named = " / ".join(dict.fromkeys(o.key for o in owners if o)) or "?"
        two_customer.examples.append(f"customer {number[-4:]} (callback {named}): "
                                     f"{call_summary(by_sid[first])} / {call_summary(by_sid[second])}")
    rung = Finding("phones rung while a call to them was live")
    for number, live, placed in rung_while_live(records):
        rung.examples.append(f"{by_sid[placed].kind} {number[-4:]}: {call_summary(by_sid[placed])} placed "
                             f"while {by_sid[live].direction} {call_summary(by_sid[live])} was live")
    unowned = Finding("placed calls no attempt or offer owns")
    sightings = run.watch.sightings if run.watch else []
    for sid, why in calls_no_attempt_owns(sightings, run.plan.unowned_grace, run.live_at_drain):
        record = by_sid[sid]
        owner = owner_named(record.url, record.status_callback)
        named = f"{owner.kind} {owner.key} {owner.attempt}" if owner else "no attempt named"
        unowned.examples.append(f"{record.kind} {record.number[-4:]}: {call_summary(record)} ({named}): "
                                f"{why}")
    available = Finding("agents available while on a call")
    for (agent_id, sid), at in sorted((run.watch.available if run.watch else {}).items(), key=lambda i: i[1]):
        available.examples.append(f"{agent_id} at {int(at // 60)}:{int(at % 60):02d} during "
                                  f"{call_summary(by_sid[sid])}")
    hours = Finding("customers rung outside their hours")
    settings = retrying(svc.storage.get_ivr, "Main Line").settings
    for record in rung_outside_hours(records, settings.customer_clock):
        local = settings.customer_clock(record.number).local_time(record.placed_at)
        hours.examples.append(f"customer {record.number[-4:]} at {local:%H:%M} their time: "
                              f"{call_summary(record)}")
    findings = [two_agent, two_customer, rung, hours, unowned, available]
    findings += check_callbacks(callbacks, run.requested, run.plan.max_retries, dict(network.talks),
                                warned_callbacks(list(run.standin.requests)))
    findings.append(check_agents(retrying(svc.storage.list_agents)))
    errors = Finding("webhook answers that were not TwiML")
    errors.examples = [f"{url.split('?')[0].replace(PUBLIC, '')} ({status})"
                       for url, status, _ in network.webhooks.errors]
    findings.append(errors)
    app_errors = 0
    for path in run.worker_logs:
        with open(path, errors="replace") as f:
            app_errors += sum(1 for line in f if line.startswith("Traceback") or " ERROR " in line
                              or line.startswith("ERROR"))
    uncounted = max(((sum(1 for a in cb.history if not a.counted), cb.callback_id) for cb in callbacks.values()),
                    default=(0, None))
    statuses = Counter(cb.status for cb in callbacks.values())
    # Stored while their customer's window was closed: each waits for it to open.
    waited = [cb for cb in callbacks.values()
              if not settings.customer_clock(cb.number).is_open(cb.requested_at)]
    attempts = sum(len(cb.history) for cb in callbacks.values())
    outcomes = Counter(a.outcome for cb in callbacks.values() for a in cb.history)
    return {"findings": findings, "statuses": statuses, "attempts": attempts, "outcomes": outcomes,
            "stats": dict(network.stats), "app_errors": app_errors, "uncounted": uncounted,
            "requested": len(run.requested), "refused": sum(1 for n in run.requested.values() if n in run.refused),
            "webhooks": network.webhooks.sent, "rest_faults": dict(run.standin.fault_counts),
            "longest_queued": network.longest_queued, "samples": run.watch.samples if run.watch else 0,
            "waited_for_hours": len(waited), "waited_then_dialed": sum(1 for cb in waited if cb.history),
            "cost": run_cost(records, statuses.get("completed", 0),
                             detection=getattr(run.plan, "detection", "async") != "off"),
            "usage": run_usage(_meter_snapshots(getattr(run, "meter_paths", ())), list(run.standin.requests),
                               records, statuses.get("completed", 0),
                               expected=len(getattr(run, "meter_paths", ())))}


def _meter_snapshots(paths):
    """The counts each app process wrote when it stopped (a process killed wrote none)."""
    snapshots = []
    for path in paths:
        try:
            with open(path) as f:
                snapshots.append(json.load(f))
        except (OSError, ValueError):
            continue
    return snapshots


def report_lines(run, report):
    """The run's summary as Markdown lines (printed, and kept in RESULTS.md)."""
    plan = run.plan
    findings = report["findings"]
    lines = [f"Seed {plan.seed}: {report['requested']} callbacks requested through the IVR "
             f"({report['refused']} of them to numbers Twilio refuses), {plan.holders} callers holding, "
             f"{plan.agents} agents, {plan.workers} app "
             f"processes sweeping every simulated minute, DynamoDB: {run.engine}, clock x{plan.speed:g}; "
             f"{run.sim_minutes:.0f} simulated minutes in {run.real_seconds:.0f} s.",
             "",
             "| must never happen | count | examples |",
             "| --- | ---: | --- |"]
    for finding in findings:
        examples = "; ".join(finding.examples[:3]) or "–"
        lines.append(f"| {finding.name} | {finding.count} | {examples} |")
    total = sum(f.count for f in findings)
    stats = report["stats"]
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(report["statuses"].items())) or "none"
    uncounted, worst = report["uncounted"]
    most = f"{uncounted} ({worst})" if worst else "0"
    outcomes = ", ".join(f"{k} {v}" for k, v in report["outcomes"].most_common()) or "none"
    faults = report["rest_faults"]
    queued = stats.get("calls queued for the account's pace", 0)
    hanging_up = ", ".join(f"{k.split(': ', 1)[1]} {v}" for k, v in sorted(stats.items())
                           if k.startswith("callers hanging up: ")) or "none"
    lines += ["",
              f"Violations: **{total}**. Callbacks: {statuses}. Attempts: {report['attempts']} ({outcomes}); "
              f"most uncounted attempts on one callback: {most}.",
              f"Network: {report['webhooks']} webhooks; status callbacks and conference events "
              f"duplicated {stats.get('callbacks duplicated', 0)}, lost {stats.get('callbacks lost', 0)}, "
              f"delayed {stats.get('callbacks delayed', 0)}; calls placed to agents "
              f"{stats.get('agent calls', 0)}, to customers {stats.get('customer calls', 0)}; "
              f"create requests that timed out after placing: "
              f"{faults.get('create answered after the client gave up', 0)}; "
              f"errors logged by the app: {report['app_errors']}; webhooks unanswered within Twilio's "
              f"15 s (load on this machine): "
              f"{sum(v for k, v in stats.items() if k.startswith('webhook transport errors'))}.",
              "Twilio: REST faults " + (", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none")
              + f"; calls queued for the account's pace {queued} (longest {report['longest_queued']:.0f} s); "
              f"calls answered busy, the phone on another call: "
              f"{stats.get('calls busy: the phone was on another call', 0)}; holding callers hanging up at "
              f"a moment of an offer: {hanging_up}; agents hanging up on silence in a conference: "
              f"{stats.get('people hanging up on silence in a conference', 0)}; "
              f"watch samples: {report['samples']}.",
              "Callers: " + (", ".join(f"{k} {v}" for k, v in run.callers.most_common()) or "none") + ".",
              f"Customer hours: {report.get('waited_for_hours', 0)} callbacks stored outside their "
              f"customer's window waited for it, {report.get('waited_then_dialed', 0)} of them dialed "
              "once it opened.",
              report["cost"].line(),
              detection_line(run.plan.detection, detection_figures(run.network)),
              *report["usage"].lines()]
    return lines


def detection_figures(network):
    """What answering-machine detection did to customers: the silence of each person who
    answered, from the answer to the first sound, and the voicemails an agent heard or not."""
    silences = sorted(network.silences)
    stats = network.stats

    def pick(share):
        return round(silences[min(int(share * len(silences)), len(silences) - 1)], 1) if silences else None

    return {"answers": len(silences), "silence_median": pick(0.5), "silence_p90": pick(0.9),
            "silence_max": round(silences[-1], 1) if silences else None,
            "silences_under_1s": sum(s < 1 for s in silences),
            "machines_ended_unheard": stats.get("machines ended before an agent heard them", 0),
            "machines_heard": stats.get("machines an agent heard", 0),
            "machines_ended_with_star": stats.get("agents ending a machine with star", 0),
            "verdicts": {k.split(": ", 1)[1]: v for k, v in stats.items() if k.startswith("verdicts sent: ")}}


def detection_line(mode, figures):
    """The detection figures as one line of the report."""
    machines = figures["machines_ended_unheard"] + figures["machines_heard"]
    return (f"Detection ({mode}): customers who answered (people) {figures['answers']}, silence from "
            f"the answer to the first sound median {figures['silence_median']} s, 90th percentile "
            f"{figures['silence_p90']} s, longest {figures['silence_max']} s, under 1 s "
            f"{figures['silences_under_1s']}; voicemails that answered {machines}, ended before an agent "
            f"heard them {figures['machines_ended_unheard']}, heard by an agent {figures['machines_heard']} "
            f"(ended by the agent's star {figures['machines_ended_with_star']}).")


def _split(text):
    """(before, the soak section, after) of a RESULTS.md text."""
    start = text.find(f"\n{SECTION}")
    if start < 0:
        return text, "", ""
    following = text.find("\n## ", start + 1)
    end = following if following >= 0 else len(text)
    return text[:start + 1], text[start + 1:end], text[end:]


def soak_section(text):
    """The soak section of a RESULTS.md text ('' when there is none)."""
    return _split(text)[1].strip("\n") + "\n" if _split(text)[1] else ""


def write_results(lines, path=RESULTS):
    """Replace the soak section of RESULTS.md (the other sections stay as they are)."""
    existing = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    before, _, after = _split(existing)
    title = f"{SECTION} (`make soak`: the app against a chaotic Twilio)"
    section = "\n".join([title, "", *lines]) + "\n"
    text = before.rstrip("\n") + "\n\n" + section + (("\n" + after.strip("\n") + "\n") if after.strip() else "")
    with open(path, "w") as f:
        f.write(text)


def main(argv=None):
    """`make soak`: run, check, print, and with --write record in bench/RESULTS.md."""
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "dynamodb":
        return run_dynamodb(argv[1] if len(argv) > 1 else "auto")
    if argv and argv[0] == "worker":
        return run_worker(json.loads(argv[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a new seed)")
    parser.add_argument("--smoke", action="store_true", help="a short run (~30 callbacks)")
    parser.add_argument("--callbacks", type=int)
    parser.add_argument("--agents", type=int)
    parser.add_argument("--workers", type=int, help="app processes")
    parser.add_argument("--speed", type=float, help="simulated seconds per real second")
    parser.add_argument("--engine", choices=("auto", "dynamodb-local", "moto"), default="auto",
                        help="DynamoDB engine (auto: DynamoDB Local when `make dynamodb-local` fetched it)")
    parser.add_argument("--detection", choices=("async", "sync", "off"), default="async",
                        help="the IVR's answering-machine detection (default: async)")
    parser.add_argument("--max-delay", type=float,
                        help="latest a callback arrives, in simulated seconds (0: at once, in order)")
    parser.add_argument("--write", action="store_true", help="record the counts in bench/RESULTS.md")
    parser.add_argument("--json", help="also write the counts to this JSON file")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    plan = Plan.smoke(seed) if args.smoke else Plan(seed=seed)
    plan.engine = args.engine
    plan.detection = args.detection
    if args.max_delay is not None:
        plan.max_delay = args.max_delay
    for name in ("callbacks", "agents", "workers", "speed"):
        if getattr(args, name) is not None:
            setattr(plan, name, getattr(args, name))
    run, report = main_run(plan)
    lines = report_lines(run, report)
    print()
    print("\n".join(lines), flush=True)
    total = sum(f.count for f in report["findings"])
    for finding in report["findings"]:
        if finding.count:
            print(f"\n{finding.name}: {finding.count}, e.g.")
            for example in finding.examples[:5]:
                print(f"  {example}")
    print(f"\nsoak: {total} violations (seed {plan.seed}; replay with --seed {plan.seed})")
    if args.write:
        write_results(lines)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": plan.seed, "requested": report["requested"], "violations": total, "lines": lines,
                       "findings": {f.name: f.count for f in report["findings"]},
                       "statuses": dict(report["statuses"]),
                       "detection": detection_figures(run.network),
                       "cost": {"dollars_per_completed_callback": report["cost"].per_completed,
                                "dollars": round(report["cost"].total, 2), **report["usage"].figures()}},
                      f, indent=2)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
