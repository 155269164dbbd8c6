"""What a soak asked of AWS and Twilio: DynamoDB requests, Lambda invocations and Twilio
REST requests, per completed callback and per holding caller-minute (issue #35).

Each app process of the soak counts its own (`Meter`): DynamoDB requests through a
`before-call` hook on the process's one botocore session (`callback.storage.client`), so
every model and transaction is seen and nothing in the app changes; the requests its WSGI
app served, by route family; the hand-offs it ran; the sweep's runs, from the app's own
`SweepRuns` metric line. A DynamoDB request is put down to what the thread was doing (a
webhook of a family, a hand-off, the sweep). The Twilio REST requests are the stand-in's
record. `run_usage` adds the processes up and divides.

On Lambda each served request, each hand-off run and each sweep is one invocation. The
soak differs from production in two ways the figures carry: every app process sweeps each
minute (production sweeps once), so the sweep is given apart, per run; and the soak's
hand-off runner (bench/soak.py's StormyHandoff) invokes on every request, where the Lambda
runner first writes a pending mark and invokes once per queue per 30 s (fewer invocations,
one conditional write more per request).
"""
import json
import re
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

WEBHOOKS, HANDOFF, SWEEP, OTHER = "webhooks", "hand-offs", "sweep", "other"
# Twilio's REST paths: a collection, then a resource's SID, in turn.
ACCOUNT_PREFIX = re.compile(r"^/2010-04-01/Accounts/[^/]+")
SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
REST_NAMES = {
    ("POST", "/Calls"): "create call",
    ("GET", "/Calls/{sid}"): "fetch call",
    ("POST", "/Calls/{sid}"): "update call",
    ("DELETE", "/Calls/{sid}"): "delete call",
    ("GET", "/Calls"): "list calls",
    ("POST", "/Conferences/{sid}/Participants"): "add conference participant",
    ("GET", "/Conferences/{sid}/Participants"): "list conference participants",
    ("GET", "/Conferences/{sid}/Participants/{sid}"): "fetch conference participant",
    ("POST", "/Conferences/{sid}/Participants/{sid}"): "update conference participant",
    ("DELETE", "/Conferences/{sid}/Participants/{sid}"): "remove conference participant",
    ("GET", "/Conferences"): "list conferences",
    ("GET", "/Conferences/{sid}"): "fetch conference",
    ("POST", "/Conferences/{sid}"): "update conference",
    ("GET", "/Queues"): "list queues",
    ("POST", "/Queues"): "create queue",
    ("GET", "/Queues/{sid}"): "fetch queue",
    ("POST", "/Messages"): "send text",
}


def route_family(path):
    """The family of an app route a request reached: `hold` (the wait loop), `status`
    (call and recording status callbacks), `amd` (detection verdicts), `conference`
    (conference events), `voice` (every other TwiML document), `sms`, `api`, `audio`
    (clips Twilio fetches), `other`."""
    path = path.split("?", 1)[0]
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/sms"):
        return "sms"
    if path.endswith((".wav", ".mp3")) or path.startswith("/static/"):
        return "audio"
    if not path.startswith("/voice/"):
        return "other"
    if path == "/voice/wait":
        return "hold"
    for family in ("status", "amd", "conference"):
        if path.endswith("/" + family):
            return family
    return "voice"


def rest_kind(method, path, params=None):
    """What a Twilio REST request did ("create call", "hang up call", "redirect call",
    "update conference participant"…), from its method, path and form parameters."""
    tail = ACCOUNT_PREFIX.sub("", path)
    if tail.endswith(".json"):
        tail = tail[:-len(".json")]
    segments = [s for s in tail.split("/") if s]
    if tail != path:
        pattern = "/" + "/".join("{sid}" if i % 2 else s for i, s in enumerate(segments))
    else:  # another API (Verify…): only what looks like a SID is left out
        pattern = "/" + "/".join("{sid}" if SID.match(s) else s for s in segments)
    name = REST_NAMES.get((method, pattern), f"{method} {pattern}")
    if name == "update call":
        params = params or {}
        if "completed" in params.get("Status", ()) or "canceled" in params.get("Status", ()):
            return "hang up call"
        if params.get("Url") or params.get("Twiml"):
            return "redirect call"
    return name


class Meter:
    """The counts of one app process; `snapshot()` is what it hands the soak (JSON)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.local = threading.local()
        self.dynamodb = defaultdict(Counter)  # source -> {operation: requests}
        self.served = Counter()  # route family -> requests served
        self.handoffs = Counter()  # "dispatch requested", "dispatch run", "settle requested", …
        self.sweeps = 0

    @contextmanager
    def source(self, name):
        """What this thread's DynamoDB requests are put down to while the block runs."""
        before = getattr(self.local, "source", None)
        self.local.source = name
        try:
            yield
        finally:
            self.local.source = before

    def watch_dynamodb(self, session):
        """Count every DynamoDB request of clients this botocore session makes from now on."""
        session.register("before-call.dynamodb", self._dynamodb_request)

    def _dynamodb_request(self, model, **_):
        source = getattr(self.local, "source", None) or OTHER
        with self.lock:
            self.dynamodb[source][model.name] += 1

    def metric_line(self, line):
        """The app's metric sink: the sweep's runs, as its SweepRuns metric counts them."""
        try:
            values = json.loads(line)
        except ValueError:
            return
        if values.get("event") == "sweep":
            with self.lock:
                self.sweeps += int(values.get("SweepRuns", 0))

    def handoff(self, what):
        """One hand-off event ("dispatch requested", "dispatch run", …)."""
        with self.lock:
            self.handoffs[what] += 1

    def wsgi(self, app):
        """`app` with every request it serves counted by route family, and the DynamoDB
        requests made while serving it put down to that family."""

        def counted(environ, start_response):
            family = route_family(environ.get("PATH_INFO", ""))
            with self.lock:
                self.served[family] += 1
            with self.source(f"{WEBHOOKS}: {family}"):
                return app(environ, start_response)

        return counted

    def snapshot(self):
        """The counts so far, as plain JSON."""
        with self.lock:
            return {"dynamodb": {source: dict(ops) for source, ops in self.dynamodb.items()},
                    "served": dict(self.served), "handoffs": dict(self.handoffs), "sweeps": self.sweeps}


def holding_minutes(records):
    """Minutes callers spent holding in a queue, from the model's call records (`held`)."""
    return sum(getattr(r, "held", 0) or 0 for r in records if r.kind == "caller") / 60


@dataclass
class Usage:
    """A run's requests, added up over its app processes, and what they bought."""

    dynamodb: dict = field(default_factory=dict)  # source -> {operation: requests}
    served: Counter = field(default_factory=Counter)
    handoffs: Counter = field(default_factory=Counter)
    sweeps: int = 0
    rest: Counter = field(default_factory=Counter)
    completed: int = 0
    holding_minutes: float = 0.0
    processes: int = 0  # app processes whose counts came back
    expected: int = 0  # app processes the run started

    def dynamodb_of(self, *, sweep):
        """DynamoDB requests of the sweep (True) or of everything else (False)."""
        return sum(n for source, ops in self.dynamodb.items() if (source == SWEEP) == sweep
                   for n in ops.values())

    @property
    def operations(self):
        """DynamoDB requests by operation, every source together."""
        total = Counter()
        for ops in self.dynamodb.values():
            total.update(ops)
        return total

    @property
    def handoff_runs(self):
        """Hand-offs that ran (each a Lambda invocation; a duplicate delivery is one too)."""
        return sum(n for what, n in self.handoffs.items() if what.endswith(" run"))

    def rows(self):
        """(what, requests in all) for the table, sweep apart."""
        return [("DynamoDB requests: webhooks and hand-offs", self.dynamodb_of(sweep=False)),
                ("DynamoDB requests: the sweep", self.dynamodb_of(sweep=True)),
                ("Lambda invocations: webhooks and API requests", sum(self.served.values())),
                ("Lambda invocations: hand-offs", self.handoff_runs),
                ("Lambda invocations: the sweep", self.sweeps),
                ("Twilio REST requests", sum(self.rest.values()))]

    def per(self, count, denominator):
        """`count` divided, rounded for the report; None without a denominator."""
        return round(count / denominator, 2) if denominator else None

    def figures(self):
        """Every count and ratio, for the soak's --json."""
        return {
            "completed_callbacks": self.completed, "holding_caller_minutes": round(self.holding_minutes, 1),
            "app_processes_counted": self.processes, "app_processes": self.expected,
            "rows": {what: {"total": total, "per_completed_callback": self.per(total, self.completed),
                            "per_holding_caller_minute": self.per(total, self.holding_minutes)}
                     for what, total in self.rows()},
            "dynamodb_by_operation": dict(self.operations.most_common()),
            "dynamodb_by_source": {source: dict(Counter(ops).most_common())
                                   for source, ops in sorted(self.dynamodb.items())},
            "dynamodb_per_sweep_run": self.per(self.dynamodb_of(sweep=True), self.sweeps),
            "webhooks_by_family": dict(self.served.most_common()),
            "hold_webhooks_per_holding_caller_minute": self.per(self.served.get("hold", 0),
                                                                self.holding_minutes),
            "handoffs": dict(sorted(self.handoffs.items())),
            "twilio_rest_by_kind": dict(self.rest.most_common()),
        }

    def lines(self):
        """The figures as the soak prints them (Markdown: a table, then the breakdowns)."""
        def cell(value):
            return "n/a" if value is None else f"{value:g}"

        def listed(counts):
            return ", ".join(f"{k} {v}" for k, v in Counter(counts).most_common()) or "none"

        missing = "" if self.processes == self.expected else (
            f" (counts of {self.processes} of {self.expected} app processes came back: the figures are low)")
        lines = ["",
                 f"Requests per completed callback ({self.completed}) and per holding caller-minute "
                 f"({self.holding_minutes:.1f}: callers in a queue, from the model's call records), over the "
                 f"whole run{missing}:",
                 "",
                 "| requests | in all | per completed callback | per holding caller-minute |",
                 "| --- | ---: | ---: | ---: |"]
        for what, total in self.rows():
            lines.append(f"| {what} | {total} | {cell(self.per(total, self.completed))} | "
                         f"{cell(self.per(total, self.holding_minutes))} |")
        by_source = {source: sum(ops.values()) for source, ops in self.dynamodb.items()}
        lines += ["",
                  f"DynamoDB by operation: {listed(self.operations)}; by what made them: "
                  f"{listed(by_source)}; the sweep's per run: "
                  f"{cell(self.per(self.dynamodb_of(sweep=True), self.sweeps))} "
                  f"({self.sweeps} runs: every app process sweeps each minute).",
                  f"Webhooks by family: {listed(self.served)}; the hold loop's per holding caller-minute: "
                  f"{cell(self.per(self.served.get('hold', 0), self.holding_minutes))}. "
                  f"Hand-offs: {listed(self.handoffs)}.",
                  f"Twilio REST by kind: {listed(self.rest)}."]
        return lines


def run_usage(snapshots, rest_requests, records, completed, expected=None):
    """The run's Usage: `snapshots` (Meter.snapshot() of each app process that reported),
    the stand-in's REST requests ({method, path, params}), the model's call records and
    the completed callbacks."""
    usage = Usage(completed=completed, holding_minutes=holding_minutes(records), processes=len(snapshots),
                  expected=len(snapshots) if expected is None else expected)
    dynamodb = defaultdict(Counter)
    for snap in snapshots:
        for source, ops in snap.get("dynamodb", {}).items():
            dynamodb[source].update(ops)
        usage.served.update(snap.get("served", {}))
        usage.handoffs.update(snap.get("handoffs", {}))
        usage.sweeps += snap.get("sweeps", 0)
    usage.dynamodb = {source: dict(ops) for source, ops in dynamodb.items()}
    for request in rest_requests:
        usage.rest[rest_kind(request["method"], request["path"], request.get("params"))] += 1
    return usage
