"""`make soak`: the app against a chaotic Twilio, in several processes; then the books.

    python -m bench.soak [--seed N] [--callbacks 200] [--agents 10] [--workers 3] [--write]
    python -m bench.soak --smoke          # ~30 callbacks, a short run

Processes: one serves DynamoDB over HTTP (Amazon's DynamoDB Local when `make
dynamodb-local` has fetched it, else moto's server), several
serve the app's webhooks and API and run the sweep every (simulated) minute — many
Lambdas at once — and this one plays Twilio with `devtools.twilio_model`: callers who
ask for a callback through the real IVR, agents who press 1, miss calls or whose phone
goes to voicemail, customers who answer, are busy, do not answer, have voicemail or a
number Twilio refuses, conferences and their events, status callbacks duplicated,
delayed, reordered and lost, and REST create requests that time out after the call was
placed. Every process shares one accelerated clock.

At the end it counts what must never happen and prints each count with example ids:
two live calls to one agent or one customer at once (from the model's own call log),
attempts over Max Retries or different from the counted history, callbacks neither
finished nor pending with a closed history, agents left busy or reserved, callbacks
lost. Randomness is seeded and the seed printed, so a run can be replayed (thread timing
still varies). It ends by itself: every loop is bounded in simulated and real time.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_key, "soak")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from callback.clock import fixed_start  # noqa: E402

PUBLIC = "https://soak.example.com/live"
TOKEN = "soak-auth-token"
API_TOKEN = "soak-api-token"
IVR_NUMBER = "+15005550006"
# A Monday at 14:00 UTC ahead of the real time, never a past date: DynamoDB Local deletes
# items (waiting calls, sessions) whose TTL is past by the real time (see FixedClock).
ORIGIN = fixed_start() - timedelta(hours=1)
REFUSAL_CODES = (21211, 21214, 21215, 21217)
OPEN = ("pending", "dialing", "connected")
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
    rest_timeout_seconds: float = 2.0
    engine: str = "auto"  # DynamoDB Local when fetched, else moto

    @classmethod
    def smoke(cls, seed=1):
        """A short run for the test suite."""
        return cls(seed=seed, callbacks=24, agents=4, workers=2, speed=60.0, arrival_minutes=6.0,
                   minutes=40.0, real_limit=150.0, expiration_minutes=25, retry_minutes=2)


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


def run_worker(spec):
    """Child process: the app's webhooks and API over HTTP, and the sweep every minute."""
    import logging

    from werkzeug.serving import make_server

    from callback import create_app
    from callback.work.sweep import EVERY, sweep_forever

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(app_config(spec))
    svc = app.extensions["callback"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    # Workers sweep out of step, as CloudWatch's Lambdas would, sometimes at once.
    first_after = EVERY * (1 + spec["index"] / max(spec["workers"], 1))
    threading.Thread(target=sweep_forever, args=(svc, stop), kwargs={"first_after": first_after},
                     daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()
    stop.set()
    server.shutdown()


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
    """What one agent's phone does, call after call."""
    from devtools.twilio_model import Behaviour

    plan = []
    for _ in range(400):
        roll = rng.random()
        voicemail = 0.35 if voicemail_prone else 0.06
        if roll < voicemail:
            plan.append(Behaviour("voicemail", keys="", ring_seconds=rng.uniform(8, 15),
                                  talk_seconds=rng.uniform(20, 40), alone_seconds=40))
        elif roll < voicemail + 0.08:
            plan.append(Behaviour("no-answer"))
        elif roll < voicemail + 0.11:
            plan.append(Behaviour("busy"))
        else:
            plan.append(Behaviour("human", keys="1", ring_seconds=rng.uniform(2, 8),
                                  talk_seconds=rng.uniform(30, 150), alone_seconds=90))
    return plan


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


@dataclass
class Run:
    """Everything one run started, for the checks and for stopping it."""

    plan: Plan
    network: object = None
    svc: object = None
    standin: object = None
    requested: dict = field(default_factory=dict)  # callback id -> customer number
    refused: dict = field(default_factory=dict)  # number -> code
    agent_numbers: set = field(default_factory=set)
    worker_logs: list = field(default_factory=list)
    late_creates: int = 0
    engine: str = ""
    callers: Counter = field(default_factory=Counter)
    sim_minutes: float = 0.0
    real_seconds: float = 0.0


class Desk:
    """Agent desktops: an agent the app set offline comes back after a break."""

    def __init__(self, run, api_urls):
        self.run, self.api_urls = run, api_urls
        self.stop = threading.Event()
        self.draining = threading.Event()
        self.rng = random.Random(f"{run.plan.seed}|desk")
        self.back_at = {}

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

    def loop(self):
        """Every 20 simulated seconds, set agents available (or, when draining, offline)."""
        import requests

        http = requests.Session()
        period = 20 / self.run.plan.speed
        while not self.stop.wait(period):
            try:
                agents = self.run.svc.storage.list_agents()
            except Exception:
                continue
            for agent in agents:
                wanted = self.wanted(agent, self.run.network.sim_elapsed())
                if wanted:
                    try:
                        http.put(f"{self.rng.choice(self.api_urls)}/api/agents/{agent.agent_id}/status",
                                 json={"status": wanted}, headers={"Authorization": f"Bearer {API_TOKEN}"},
                                 timeout=15)
                    except requests.RequestException:
                        pass


def main_run(plan, out=print):
    """Start everything, play the run, stop everything; returns (Run, report)."""
    import logging

    from callback import create_app
    from callback.domain import records as m
    from callback.domain.settings import CallbackSettings
    from devtools.standin import StandInServer, TwilioStandIn
    from devtools.twilio_model import Chaos, LocalBackend, Network, Phone, Timeline, Webhooks

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.time()
    rng = random.Random(plan.seed)
    workdir = tempfile.mkdtemp(prefix="soak-")
    out(f"soak: seed {plan.seed}; {plan.callbacks} callbacks, {plan.agents} agents, {plan.workers} app "
        f"processes, clock x{plan.speed:g}; logs in {workdir}")
    children = []
    run = Run(plan)
    try:
        dynamo, line = start_child(["dynamodb", plan.engine], os.path.join(workdir, "dynamodb.log"))
        children.append(dynamo)
        endpoint, _, run.engine = line.partition(" ")
        out(f"soak: DynamoDB: {run.engine} at {endpoint}")
        origin_wall = time.time()
        clock = SharedClock(origin_wall, plan.speed)
        standin = TwilioStandIn(clock=clock)
        server = StandInServer(standin).start()
        run.standin = standin
        spec = {"twilio_url": server.url, "prefix": f"soak{plan.seed}-", "dynamodb": endpoint,
                "rest_timeout_seconds": plan.rest_timeout_seconds, "origin_wall": origin_wall,
                "speed": plan.speed, "workers": plan.workers}
        app = create_app(app_config(spec))
        svc = run.svc = app.extensions["callback"]
        svc.storage.create_tables()
        settings = CallbackSettings(offer_after_seconds=30, expiration_minutes=plan.expiration_minutes,
                                    max_retries=plan.max_retries, retry_minutes=plan.retry_minutes,
                                    transfer_timeout_seconds=30)
        svc.storage.save_ivr(m.Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Thanks for calling.",
                                   queues=(m.Queue("Sales", "Main Line", 10),), settings=settings))
        urls = []
        for index in range(plan.workers):
            log_path = os.path.join(workdir, f"app-{index}.log")
            worker, port = start_child(["worker", json.dumps({**spec, "index": index})], log_path)
            children.append(worker)
            urls.append(f"http://127.0.0.1:{port}")
            run.worker_logs.append(log_path)

        chaos = Chaos(duplicate=plan.duplicate, lose=plan.lose, max_delay=plan.max_delay)
        network = run.network = Network(LocalBackend(standin), Webhooks(TOKEN, PUBLIC, urls),
                                        Timeline(plan.speed, clock), chaos=chaos, seed=plan.seed)
        out(f"soak: network: {chaos.describe()}; {plan.rest_timeouts:.0%} of create requests time out "
            "after placing the call; some numbers refused")
        late = random.Random(f"{plan.seed}|rest")
        late_lock = threading.Lock()

        def create_delay(call):
            with late_lock:
                if late.random() >= plan.rest_timeouts:
                    return 0
                run.late_creates += 1
            return plan.rest_timeout_seconds + 1

        standin.create_delay = create_delay
        for a in range(plan.agents):
            number = f"+1415555{a:04d}"
            svc.storage.save_agent_profile(f"a{a:02d}", name=f"Agent {a}", phone=number, queues=["Sales"],
                                           now=clock.now(), create=True)
            network.add_phone(Phone(number, "agent", agent_behaviours(random.Random(f"{plan.seed}|agent|{a}"),
                                                                      voicemail_prone=a % 5 == 4),
                                    name=f"agent a{a:02d}"))
            run.agent_numbers.add(number)
        network.start()

        callers = []
        for i in range(plan.callbacks):
            digits = f"{rng.randint(201, 989)}555{i:04d}"
            if digits[0] in "01" or digits[1:3] == "11":
                digits = f"212555{i:04d}"
            number = "+1" + digits
            behaviours, refusal = customer_behaviours(random.Random(f"{plan.seed}|customer|{i}"))
            network.add_phone(Phone(number, "customer", behaviours, name=f"customer {i}"))
            if refusal:
                standin.refuse(number, refusal)
                run.refused[number] = refusal
            callers.append((digits, number, rng.uniform(0, plan.arrival_minutes * 60)))
        threads = [threading.Thread(target=_caller, args=(run, digits, number, at), daemon=True)
                   for digits, number, at in callers]
        for thread in threads:
            thread.start()

        # Agents start their day once the callers have asked for callbacks (offer after
        # 30 s, then the number): the run is about callbacks, not holding callers.
        time.sleep((plan.arrival_minutes * 60 + 90) / plan.speed)
        desk = Desk(run, urls)
        desk_thread = threading.Thread(target=desk.loop, daemon=True)
        desk_thread.start()
        for agent in retrying(svc.storage.list_agents):
            try:
                svc.dispatcher.set_presence(agent.agent_id, m.AVAILABLE)
            except Exception:  # the desk sets them available on its next round
                pass

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
        run.sim_minutes = network.sim_elapsed() / 60
        for worker in children[1:]:
            stop_child(worker)
        network.stop()
        report = check(run)
        server.stop()
    finally:
        for child in children:
            if child.poll() is None:
                stop_child(child)
    run.real_seconds = time.time() - started
    return run, report


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


def _caller(run, digits, number, at_seconds):
    """One caller: calls in at their moment and asks for a callback at the offer; a caller
    whose call went wrong calls again a little later, as people do (three calls at most)."""
    from devtools.twilio_model import Keys, answering_caller

    network = run.network
    rng = random.Random(f"{run.plan.seed}|redial|{number}")
    time.sleep(network.timeline.real(at_seconds))
    for _ in range(3):
        call = network.dial_in(number, IVR_NUMBER, Keys(responder=answering_caller(digits)),
                               patience=20 * 60, name=f"caller {number}")
        if call.left_with == "leave":
            run.requested[call.call.sid] = number
            run.callers["asked for a callback"] += 1
            return
        if call.redirected_out:
            run.callers["taken by an agent while holding"] += 1
            return
        run.callers[f"called again after: {call.ending}"] += 1
        if network.stopped.wait(network.timeline.real(rng.uniform(60, 180))):
            return


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


def check_callbacks(callbacks, requested, max_retries, talks):
    """Findings over the stored callbacks: attempts, histories, open ones, lost ones."""
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
            lost.examples.append(f"{callback_id} (completed, but the customer never talked with an agent)")
    return [over, miscounted, unsettled, lost]


def check_agents(agents):
    """Agents left reserved or busy when everything is over."""
    stuck = Finding("agents left busy or reserved")
    for agent in agents:
        if agent.status in ("reserved", "busy"):
            stuck.examples.append(f"{agent.agent_id} ({agent.status})")
    return stuck


def _call(record):
    """A call of the model's log for an example: SID, simulated minutes live, how it went."""
    def at(seconds):
        return "…" if seconds is None else f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    return f"{record.sid} ({at(record.started)}–{at(record.ended)}, {record.behaviour}, {record.outcome or 'live'})"


def check(run):
    """Every count of the run, with examples; a dict for printing and RESULTS.md."""
    svc, network = run.svc, run.network
    callbacks = {cb.callback_id: cb for cb in retrying(_all_callbacks, svc)}
    records = list(network.records)
    two_agent = Finding("two live calls to one agent")
    two_customer = Finding("two live calls to one customer")
    by_sid = {r.sid: r for r in records}
    for number, first, second in overlapping_calls(records, ("agent",)):
        two_agent.examples.append(f"agent {number[-4:]}: {_call(by_sid[first])} / {_call(by_sid[second])}")
    by_number = {number: callback_id for callback_id, number in run.requested.items()}
    for number, first, second in overlapping_calls(records, ("customer",)):
        two_customer.examples.append(f"callback {by_number.get(number, number)}: {_call(by_sid[first])} / "
                                     f"{_call(by_sid[second])}")
    findings = [two_agent, two_customer]
    findings += check_callbacks(callbacks, run.requested, run.plan.max_retries, dict(network.talks))
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
    attempts = sum(len(cb.history) for cb in callbacks.values())
    outcomes = Counter(a.outcome for cb in callbacks.values() for a in cb.history)
    return {"findings": findings, "statuses": statuses, "attempts": attempts, "outcomes": outcomes,
            "stats": dict(network.stats), "app_errors": app_errors, "uncounted": uncounted, "requested": len(run.requested),
            "refused": sum(1 for n in run.requested.values() if n in run.refused), "webhooks": network.webhooks.sent}


def report_lines(run, report):
    """The run's summary as Markdown lines (printed, and kept in RESULTS.md)."""
    plan = run.plan
    findings = report["findings"]
    lines = [f"Seed {plan.seed}: {report['requested']} callbacks requested through the IVR "
             f"({report['refused']} of them to numbers Twilio refuses), {plan.agents} agents, {plan.workers} app "
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
    lines += ["",
              f"Violations: **{total}**. Callbacks: {statuses}. Attempts: {report['attempts']} ({outcomes}); "
              f"most uncounted attempts on one callback: {most}.",
              f"Network: {report['webhooks']} webhooks; status callbacks and conference events "
              f"duplicated {stats.get('callbacks duplicated', 0)}, lost {stats.get('callbacks lost', 0)}, "
              f"delayed {stats.get('callbacks delayed', 0)}; calls placed to agents "
              f"{stats.get('agent calls', 0)}, to customers {stats.get('customer calls', 0)}; "
              f"create requests that timed out after placing: {run.late_creates}; "
              f"errors logged by the app: {report['app_errors']}; webhooks unanswered within Twilio's "
              f"15 s (load on this machine): "
              f"{sum(v for k, v in stats.items() if k.startswith('webhook transport errors'))}.",
              "Callers: " + (", ".join(f"{k} {v}" for k, v in run.callers.most_common()) or "none") + "."]
    return lines


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
    parser.add_argument("--write", action="store_true", help="record the counts in bench/RESULTS.md")
    parser.add_argument("--json", help="also write the counts to this JSON file")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    plan = Plan.smoke(seed) if args.smoke else Plan(seed=seed)
    plan.engine = args.engine
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
                       "statuses": dict(report["statuses"])}, f, indent=2)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
