"""Benchmarks: `make bench` (or `python -m bench [--quick] [--write]`).

Each part prints a table with ratios against a baseline measured in the same run:
- webhook cost vs a bare Flask endpoint answering the same TwiML;
- cold start: importing the app vs importing its dependencies alone, in the virtualenv and
  in the Lambda package (bench/cold_start.py);
- sweep cost as the callbacks table grows, with a fixed 100 callbacks due, on moto and on
  DynamoDB Local;
- dispatch throughput with N agents, against one agent;
- the wait estimate's accuracy over a simulated day, against a recent-average baseline;
- the promise kept: how often the first attempt comes within the time a caller was told,
  and the estimate's error by position in line beside the floor (bench/promise.py);
- webhooks with a Twilio that takes 2 s a request and 4 idle agents: dispatch handed to a
  background worker, against dispatch inside the webhook (as before);
- every caller-facing webhook with DynamoDB not answering, against DynamoDB answering;
- wallboard reads per refresh as the history grows (bench/wallboard.py);
- an API token's check: HMAC-SHA256 against scrypt (bench/tokens.py).
"""
import argparse
import heapq
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(key, "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from flask import Flask, Response  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from callback import create_app  # noqa: E402
from callback.clock import FixedClock  # noqa: E402
from callback.domain import records as m  # noqa: E402
from callback.domain.estimate import (  # noqa: E402
    CAP_MINUTES,
    Departures,
    bucket_start,
    estimate_wait,
    history_since,
)
from devtools import dynamodb_local  # noqa: E402
from devtools.standin import StandInServer  # noqa: E402

from . import cold_start, promise, tokens, wallboard  # noqa: E402
from .promise import (  # noqa: E402
    CALLBACK_SHARE,
    DAY_AGENTS,
    DAY_ARRIVALS,
    OFFER_SECONDS,
    PATIENCE_MINUTES,
    SERVICE_MINUTES,
)
from .records import dynamodb_calls, load_callbacks  # noqa: E402

TOKEN = "bench-token"
PUBLIC = "https://bench.example.com/dev"
LINES = []


def out(line=""):
    """Print and keep for RESULTS.md."""
    print(line, flush=True)
    LINES.append(line)


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_moto():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server


def make_app(endpoint, standin_url, clock, cache_seconds=30, runner="inline", log_level="WARNING",
             prefix=None, setup=True, **overrides):
    # moto runs in this process: on a busy machine it can take longer than a deployment's
    # 1 s DynamoDB timeout, which only the DynamoDB-not-answering part measures.
    app = create_app({"DYNAMODB_TIMEOUT_SECONDS": 30, **overrides,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": standin_url,
        "PUBLIC_BASE_URL": PUBLIC, "CALLBACK_TABLE_PREFIX": prefix or f"b{uuid.uuid4().hex[:8]}-",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "ADMIN_API_TOKEN": "bench", "SECRET_KEY": "bench",
        "CONFIG_CACHE_SECONDS": cache_seconds, "LOG_LEVEL": log_level, "DISPATCH_RUNNER": runner,
        "clock": clock})
    svc = app.extensions["callback"]
    if not setup:
        return app, svc
    svc.storage.create_tables()
    svc.storage.save_ivr(m.Ivr("Main Line", numbers=("+15005550006",),
                               queues=(m.Queue("Sales", "Main Line", 10), m.Queue("Support", "Main Line", 5))))
    return app, svc


def timed_posts(client, url_of, params_of, n):
    validator = RequestValidator(TOKEN)
    times = []
    for i in range(n):
        url, params = url_of(i), params_of(i)
        path = url[len(PUBLIC):]
        signature = validator.compute_signature(url, params)
        start = time.perf_counter()
        response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.data[:200]
    return times


def bench_webhooks(endpoint, standin, n):
    out("## Webhook cost (Flask test client, DynamoDB = moto server over HTTP)")
    out()
    clock = FixedClock()
    app, svc = make_app(endpoint, standin.url, clock)
    client = app.test_client()
    now = clock.now()
    entries = []
    for i in range(n):
        svc.storage.add_waiting_call(f"CAW{i}", ivr_name="Main Line", queue_name="Sales", caller="+1",
                                     joined_at=now)
        entries.append(svc.storage.hold_entry(f"CAW{i}", f"+1212555{i % 10000:04d}", now))
    joined = int((now - timedelta(seconds=90)).timestamp())
    cases = {
        "waitUrl (hold loop, offer due)": (
            lambda i: f"{PUBLIC}/voice/wait?ivr=Main+Line&queue=Sales&offered=1&joined={joined}",
            lambda i: {"CallSid": f"CAW{i}", "From": "+14155550123"}),
        "waitUrl (first offer, reads the wait estimate)": (
            lambda i: f"{PUBLIC}/voice/wait?ivr=Main+Line&queue=Sales&joined={joined}",
            lambda i: {"CallSid": f"CAW{i}", "QueuePosition": "3", "From": "+14155550123"}),
        "waitUrl (first request, records the caller)": (
            lambda i: f"{PUBLIC}/voice/wait?ivr=Main+Line&queue=Sales",
            lambda i: {"CallSid": f"CAF{i}", "QueueTime": "1", "QueueSid": "QU1", "From": "+14155550123"}),
        "number entry (valid, read back)": (
            lambda i: f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
            lambda i: {"CallSid": f"CAV{i}", "Digits": f"212555{i % 10000:04d}", "From": "+14155550123"}),
        "confirm (1, stores callback)": (
            lambda i: f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&entry={entries[i]}",
            lambda i: {"CallSid": f"CAW{i}", "Digits": "1", "From": "+14155550123"}),
        "number entry (invalid, asks again)": (
            lambda i: f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
            lambda i: {"CallSid": f"CAX{i}", "Digits": "12345"}),
        "status callback (duplicate, stale attempt)": (
            lambda i: f"{PUBLIC}/voice/customer/status?callback=CAW{i}&attempt=gone",
            lambda i: {"CallSid": f"CAC{i}", "CallStatus": "no-answer"}),
    }
    bodies = {}
    for name, (url_of, params_of) in cases.items():
        path = url_of(0)[len(PUBLIC):]
        bodies[name] = client.post(path, data=params_of(0), headers={
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url_of(0), params_of(0))}).data
    bare = Flask("bare")
    for i, (name, body) in enumerate(bodies.items()):
        bare.add_url_rule(f"/b{i}", f"b{i}", (lambda body=body: Response(body, mimetype="text/xml")),
                          methods=["POST"])
    bare_client = bare.test_client()
    out("| webhook | median ms | p99 ms | DynamoDB calls/request | bare Flask median ms | ratio |")
    out("| --- | ---: | ---: | ---: | ---: | ---: |")
    for i, (name, (url_of, params_of)) in enumerate(cases.items()):
        with dynamodb_calls() as calls:
            times = timed_posts(client, url_of, params_of, n)
        bare_times = []
        for j in range(n):
            start = time.perf_counter()
            bare_client.post(f"/b{i}", data=params_of(j))
            bare_times.append(time.perf_counter() - start)
        med, bare_med = statistics.median(times), statistics.median(bare_times)
        out(f"| {name} | {med * 1e3:.2f} | {pct(times, 0.99) * 1e3:.2f} | {calls['n'] / n:.2f} | "
            f"{bare_med * 1e3:.3f} | {med / bare_med:.0f}x |")
    out()


def bench_cold_start(runs):
    for line in cold_start.section(runs):
        out(line)
    for line in cold_start.first_requests_section(min(runs, 5)):
        out(line)


def sweep_at_size(endpoint, size):
    """Sweep a callbacks table of `size` records, 100 of them due; returns the figures."""
    from callback.config import Config
    from callback.work.sweep import sweep_once
    from callback.work.wiring import build_services

    clock = FixedClock()
    config = Config(CALLBACK_TABLE_PREFIX=f"s{size}-{uuid.uuid4().hex[:6]}-",
                    TWILIO_API_BASE_URL="http://127.0.0.1:9", AWS_ENDPOINT_URL_DYNAMODB=endpoint,
                    LOG_LEVEL="WARNING").with_overrides({"clock": clock})
    svc = build_services(config)
    svc.storage.create_tables()
    svc.storage.save_ivr(m.Ivr("Main Line", numbers=("+15005550006",),
                               queues=(m.Queue("Sales", "Main Line", 10),)))
    load_callbacks(svc, clock, size, due=100)
    with dynamodb_calls() as calls:
        start = time.perf_counter()
        report = sweep_once(svc)
        elapsed = time.perf_counter() - start
    assert report.expired == 100, report
    # Control: the same index query with nothing to return, to show what the engine itself
    # costs at this table size.
    start = time.perf_counter()
    for _ in range(10):
        assert svc.storage.needing_sweep(m.PENDING, clock.now()) == []
    control = (time.perf_counter() - start) / 10
    return {"seconds": elapsed, "read": report.items_read, "calls": calls["n"],
            "scanned": calls["scanned"], "control": control}


def bench_sweep(sizes, local_endpoint):
    out("## Sweep cost as the table grows (100 callbacks due; moto in-process, DynamoDB Local over HTTP)")
    out()
    out(f"{dynamodb_local.describe()}.")
    out()
    from moto import mock_aws

    rows = []
    for size in sizes:
        with mock_aws():
            moto = sweep_at_size(None, size)
        local = sweep_at_size(local_endpoint, size)
        assert (moto["read"], moto["calls"]) == (local["read"], local["calls"]), (moto, local)
        rows.append((size, moto, local))
    out("| stored callbacks | items the sweep read | DynamoDB calls | items examined (ScannedCount) moto / Local "
        "| sweep s (moto) | time ratio (moto) | empty index query, moto ms "
        "| sweep s (DynamoDB Local) | time ratio (DynamoDB Local) | empty index query, DynamoDB Local ms |")
    out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    first_moto, first_local = rows[0][1], rows[0][2]
    for size, moto, local in rows:
        out(f"| {size:,} | {moto['read']} | {moto['calls']} | {moto['scanned']} / {local['scanned']} "
            f"| {moto['seconds']:.2f} | {moto['seconds'] / first_moto['seconds']:.2f} "
            f"| {moto['control'] * 1e3:.1f} "
            f"| {local['seconds']:.2f} | {local['seconds'] / first_local['seconds']:.2f} "
            f"| {local['control'] * 1e3:.1f} |")
    out()
    out("What DynamoDB reads and bills (items examined, calls) stays flat as the table grows. In moto")
    out("the wall time does not: an index query that returns nothing costs more the larger the table,")
    out("because the emulator walks every item. DynamoDB Local, Amazon's own engine, answers the same")
    out("Query from an index, so its time follows the items examined, as DynamoDB's does.")
    out()


def bench_dispatch(endpoint, standin, agent_counts):
    out("## Dispatch throughput (moto server over HTTP, Twilio stand-in over HTTP)")
    out()
    rows = []
    for count in agent_counts:
        clock = FixedClock()
        _app, svc = make_app(endpoint, standin.url, clock, cache_seconds=30)
        now = clock.now()
        for i in range(count * 2):
            sid = f"CA{i:032d}"
            svc.storage.create_callback(m.Callback(sid, f"+1212555{i:04d}", "Main Line", "Sales", now,
                                                   now - timedelta(seconds=i), 10, now,
                                                   now + timedelta(hours=2)), sid)
        for a in range(count):
            svc.storage.save_agent_profile(f"a{a}", name=f"A{a}", phone=f"+1415555{a:04d}",
                                           queues=["Sales"], now=now, create=True)
            svc.storage.set_agent_presence(f"a{a}", "available", now)
        start = time.perf_counter()
        offers = svc.dispatcher.dispatch()
        elapsed = time.perf_counter() - start
        assert len(offers) == count, (count, len(offers))
        rows.append((count, elapsed, count / elapsed))
    out("| agents available | dispatch s | callbacks dispatched/s | ratio to 1 agent |")
    out("| ---: | ---: | ---: | ---: |")
    for count, elapsed, rate in rows:
        out(f"| {count} | {elapsed:.3f} | {rate:.1f} | {rate / rows[0][2]:.2f} |")
    out()



def simulate_day(seed):
    """One day of arrivals and service in one queue, served in order of place in line.

    Work leaves the line when an agent takes it; those departures fill five-minute buckets
    exactly as the app's aggregates do. At each caller's offer (after 60 s of holding) the
    estimate is computed from those buckets and the number of callers and callbacks ahead
    of them, as the app does; the baseline is the recent average remaining wait of the work
    that left the line (the usual "expected wait time" of contact-center dashboards). Returns
    (offers, estimates given, abandoned after an estimate, our errors, baseline errors) with
    errors in minutes, over the callers who were eventually served.
    """
    rng = random.Random(seed)
    start = FixedClock().now().replace(hour=8, minute=0)
    day = len(DAY_ARRIVALS) * 3600
    at = lambda t: start + timedelta(seconds=t)  # noqa: E731
    events, line, taken = [], {}, {}
    buckets, waited = {}, {}
    offers, abandoned_after_estimate = 0, 0
    ours, baseline = {}, {}
    seq = 0

    def push(t, kind, who=None):
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, who))

    t = 0.0
    while t < day:
        t += rng.expovariate(DAY_ARRIVALS[int(t // 3600)] / 60)
        if t < day:
            push(t, "arrive")
    for hour in range(len(DAY_AGENTS)):
        push(hour * 3600, "shift", DAY_AGENTS[hour])
    on_shift, busy, next_id = 0, 0, 0

    def serve(now):
        nonlocal busy
        while busy < on_shift and line:
            who = min(line, key=line.get)
            joined = line.pop(who)
            busy += 1
            b = bucket_start(at(now))
            buckets[b] = buckets.get(b, 0) + 1
            waited[b] = waited.get(b, 0) + (now - joined - OFFER_SECONDS)
            taken[who] = now
            push(now + rng.expovariate(1 / (SERVICE_MINUTES * 60)), "done")

    while events:
        now, _, kind, who = heapq.heappop(events)
        if kind == "arrive":
            who, next_id = next_id, next_id + 1
            line[who] = now
            push(now + OFFER_SECONDS, "offer", who)
            push(now + rng.expovariate(1 / (PATIENCE_MINUTES * 60)), "abandon", who)
        elif kind == "offer" and who in line:
            offers += 1
            ahead = sum(1 for joined in line.values() if joined < line[who])
            history = [Departures(b, n) for b, n in buckets.items() if b >= history_since(at(now))]
            estimate = estimate_wait(history, ahead, at(now), agents_on_duty=on_shift)
            if estimate is not None:
                ours[who] = (now, estimate)
                count = sum(d.count for d in history)
                recent = sum(waited[d.start] for d in history) / count
                baseline[who] = max(recent, 0) / 60
            if rng.random() < CALLBACK_SHARE:
                # A callback keeps its place in line, and no longer abandons.
                line[("cb", who)] = line.pop(who)
        elif kind == "abandon" and who in line:
            del line[who]
            if who in ours:
                abandoned_after_estimate += 1
        elif kind == "done":
            busy -= 1
        elif kind == "shift":
            on_shift = who
        serve(now)
    for key, when in list(taken.items()):
        if isinstance(key, tuple):
            taken[key[1]] = when
    errors, base_errors = [], []
    for who, (offered_at, estimate) in ours.items():
        if who not in taken:
            continue
        actual = (taken[who] - offered_at) / 60
        said = min(estimate.minutes, CAP_MINUTES)
        errors.append(max(0.0, said - actual) if estimate.over_cap else abs(said - actual))
        base_errors.append(abs(min(baseline[who], CAP_MINUTES) - actual))
    return offers, len(ours), abandoned_after_estimate, errors, base_errors


def bench_estimate(days):
    out("## Wait estimate accuracy (a simulated day per seed, pure Python)")
    out()
    out(f"One queue from 08:00 to 20:00: {min(DAY_ARRIVALS)}-{max(DAY_ARRIVALS)} calls a minute, "
        f"{min(DAY_AGENTS)}-{max(DAY_AGENTS)} agents by shift, {SERVICE_MINUTES:.0f}-minute calls "
        f"(exponential),")
    out(f"callers' patience {PATIENCE_MINUTES:.0f} minutes on average, {CALLBACK_SHARE:.0%} of those "
        f"offered take a callback (keeping their place). Errors are |said - actual| in minutes,")
    out("actual = from the offer until an agent took the caller or their callback.")
    out()
    out("| day (seed) | offers | estimate given | abandoned after one | median abs error, ours | "
        "p90, ours | median, baseline | ratio ours / baseline |")
    out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    all_ours, all_base = [], []
    for seed in range(1, days + 1):
        offers, given, abandoned, errors, base = simulate_day(seed)
        all_ours += errors
        all_base += base
        out(f"| {seed} | {offers} | {given} ({given / offers:.0%}) | {abandoned} | "
            f"{statistics.median(errors):.2f} | {pct(errors, 0.9):.2f} | {statistics.median(base):.2f} | "
            f"{statistics.median(errors) / statistics.median(base):.2f} |")
    out(f"| all | | | | {statistics.median(all_ours):.2f} | {pct(all_ours, 0.9):.2f} | "
        f"{statistics.median(all_base):.2f} | {statistics.median(all_ours) / statistics.median(all_base):.2f} |")
    out()


def signed_post(client, url, params):
    """POST a webhook signed like Twilio; returns (seconds, response)."""
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    start = time.perf_counter()
    response = client.post(url[len(PUBLIC):], data=params, headers={"X-Twilio-Signature": signature})
    return time.perf_counter() - start, response


def bench_slow_twilio(endpoint, standin, n, n_inline):
    out("## Webhooks with Twilio taking 2 s a request and 4 idle agents (DynamoDB Local)")
    out()
    out("Before each request four agents are available and work is waiting for them, so a")
    out("dispatch rings four agents. `inline` dispatches inside the webhook (as before).")
    out("`lambda` hands it to an asynchronous invocation of the function, as deployed: a")
    out("pending mark in DynamoDB, then Lambda's Invoke API (a local stand-in answering 202;")
    out("the clock moves 31 s between requests, so every request marks and invokes). `thread`")
    out("hands it to the background worker of `make run`, which rings the agents in this")
    out("same process meanwhile. DynamoDB is DynamoDB Local over HTTP, in a process of its")
    out("own as DynamoDB is: moto in-process (its earlier figures are kept) copies every table a")
    out("TransactWriteItems touches, on every call, so the store's tail measured moto, and the")
    out("worker's concurrent transactions made it fail (\"dictionary changed size during")
    out("iteration\").")
    out()
    standin.standin.reset()
    standin.standin.delay_next(2.0, count=1_000_000)
    load_before = os.getloadavg()
    invoke_api = LambdaInvokeStandIn()
    lambda_settings = {"AWS_LAMBDA_FUNCTION_NAME": "callback-bench",
                       "AWS_ENDPOINT_URL_LAMBDA": invoke_api.url}
    rows = []
    try:
        for runner, count in (("inline", n_inline), ("lambda", n), ("thread", n)):
            clock = FixedClock()
            app, svc = make_app(endpoint, standin.url, clock, runner=runner, **lambda_settings)
            client = app.test_client()
            now = clock.now()
            for a in range(4):
                svc.storage.save_agent_profile(f"a{a}", name=f"A{a}", phone=f"+1415555{a:04d}",
                                               queues=["Sales"], now=now, create=True)
            # The agent whose call ends in the status case: in no queue, so no dispatch takes them.
            svc.storage.save_agent_profile("s0", name="S0", phone="+14155559999", queues=[], now=now,
                                           create=True)
            svc.storage.set_agent_presence("s0", m.AVAILABLE, now)
            # Enough waiting work for four offers on every request that dispatches inline.
            for i in range(20 * n_inline + 8):
                sid = f"CB{i:032d}"
                svc.storage.create_callback(m.Callback(sid, f"+1212556{i:04d}", "Main Line", "Sales", now,
                                                       now - timedelta(hours=1), 10, now,
                                                       now + timedelta(hours=2)), sid)

            def idle_agents():
                for a in range(4):
                    agent = svc.storage.get_agent(f"a{a}")
                    if agent.status in (m.RESERVED, m.BUSY):
                        svc.storage.release_agent(agent.agent_id, now=now, attempt_id=agent.attempt_id)
                    elif agent.status == m.OFFLINE:
                        svc.storage.set_agent_presence(agent.agent_id, m.AVAILABLE, now)

            def incoming(i):
                return f"{PUBLIC}/voice/incoming", {"CallSid": f"CI{i}", "From": "+14155550123",
                                                    "To": "+15005550006"}

            def number(i):
                return (f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
                        {"CallSid": f"CR{i}", "Digits": f"212559{i:04d}", "From": "+14155550123"})

            def confirm(i):
                sid = f"CN{i}"
                svc.storage.add_waiting_call(sid, ivr_name="Main Line", queue_name="Sales", caller="+1",
                                             joined_at=now)
                entry = svc.storage.hold_entry(sid, f"+1212557{i:04d}", clock.now())
                return (f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&entry={entry}",
                        {"CallSid": sid, "Digits": "1", "From": "+14155550123"})

            def agent_status(i):
                sid = f"CS{i}"
                svc.storage.add_waiting_call(sid, ivr_name="Main Line", queue_name="Support", caller="+1",
                                             joined_at=now)
                call = svc.storage.get_waiting_call(sid)
                svc.storage.claim_waiting_call(svc.storage.get_agent("s0"), call, now, offer_id=f"o{i}")
                return (f"{PUBLIC}/voice/agent/status?kind=call&key={sid}&agent=s0&attempt=o{i}",
                        {"CallSid": f"CAG{i}", "CallStatus": "completed"})

            def customer_status(i):
                return (f"{PUBLIC}/voice/customer/status?callback=CB{i:032d}&attempt=gone",
                        {"CallSid": f"CC{i}", "CallStatus": "no-answer"})

            cases = {"/voice/incoming": incoming, "/voice/number (valid: read back)": number,
                     "/voice/confirm (1: stores a callback)": confirm,
                     "/voice/agent/status (frees an agent)": agent_status,
                     "/voice/customer/status (stale attempt)": customer_status}
            for name, prepare in cases.items():
                times = []
                for i in range(count):
                    idle_agents()
                    clock.advance(seconds=31)
                    url, params = prepare(i)
                    elapsed, response = signed_post(client, url, params)
                    assert response.status_code == 200, response.data[:200]
                    times.append(elapsed)
                rows.append((name, runner, times))
    finally:
        standin.standin.reset()
        invoke_api.server.shutdown()
    out(f"Invocations the `lambda` rows sent: {invoke_api.count}. {load_line(load_before, os.getloadavg())}")
    out()
    inline = {name: statistics.median(times) for name, runner, times in rows if runner == "inline"}
    out("Target (issue #13), for the handed-over rows: median < 50 ms and p99 < 250 ms.")
    out()
    out("| webhook | dispatch | requests | median ms | p99 ms | ratio to inline median | target met |")
    out("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name, runner, times in rows:
        med, p99 = statistics.median(times), pct(times, 0.99)
        met = "—" if runner == "inline" else ("yes" if med < 0.050 and p99 < 0.250 else "no")
        out(f"| {name} | {runner} | {len(times)} | {med * 1e3:.1f} | {p99 * 1e3:.1f} | "
            f"{med / inline[name]:.3f} | {met} |")
    out()


class LambdaInvokeStandIn:
    """Lambda's Invoke API on loopback: accepts every asynchronous invocation, runs none."""

    def __init__(self):
        import threading

        from werkzeug.serving import make_server

        self.count = 0
        api = Flask("lambda-invoke")

        @api.post("/2015-03-31/functions/<name>/invocations")
        def invoke(name):
            self.count += 1
            return Response(b"", status=202)

        self.server = make_server("127.0.0.1", 0, api, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class HangingDynamoDB:
    """Forwards to moto until told to hang: then it accepts requests and never answers."""

    def __init__(self, target):
        import threading

        import requests
        from flask import request
        from werkzeug.serving import make_server

        self.target, self.http = target, requests.Session()
        self.hanging, self.released = threading.Event(), threading.Event()
        proxy = Flask("hanging-dynamodb")

        @proxy.post("/")
        def forward():
            if self.hanging.is_set():
                self.released.wait(120)
                return Response("", status=503)
            headers = {k: v for k, v in request.headers if k.lower() not in ("host", "content-length")}
            upstream = self.http.post(target + "/", data=request.get_data(), headers=headers, timeout=30)
            return Response(upstream.content, status=upstream.status_code,
                            content_type=upstream.headers.get("Content-Type"))

        self.server = make_server("127.0.0.1", 0, proxy, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.released.set()
        self.server.shutdown()


def bench_dynamodb_hanging(endpoint, standin, runs):
    out("## Caller-facing webhooks with DynamoDB not answering")
    out()
    out("DynamoDB behind a proxy that accepts each request and never answers (the production")
    out("limit, DYNAMODB_TIMEOUT_SECONDS = 2, no retry). The routing directory is cached, as in a")
    out("warm container, except on the last row. Baseline: the same request, DynamoDB answering.")
    out()
    import xml.etree.ElementTree as ET

    hanging = HangingDynamoDB(endpoint)
    clock = FixedClock()
    prefix = f"h{uuid.uuid4().hex[:8]}-"
    _, setup = make_app(endpoint, standin.url, clock, prefix=prefix)  # tables and IVR, straight to moto
    # The production limits (Config's defaults), through the proxy.
    app, svc = make_app(hanging.url, standin.url, clock, runner="thread", log_level="CRITICAL",
                        prefix=prefix, setup=False, DYNAMODB_TIMEOUT_SECONDS=2.0)
    client = app.test_client()
    now = clock.now()
    joined = int(now.timestamp())
    base = {"From": "+14155550123", "To": "+15005550006"}
    wait = f"{PUBLIC}/voice/wait?ivr=Main+Line&queue=Sales"
    done = f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales"
    cases = {
        "/voice/incoming": lambda i: (f"{PUBLIC}/voice/incoming", {"CallSid": f"CI{i}"}),
        "/voice/menu": lambda i: (f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1",
                                  {"CallSid": f"CI{i}", "Digits": "1"}),
        "/voice/wait (first request)": lambda i: (wait, {"CallSid": f"CW{i}", "QueueSid": "QU1",
                                                         "QueueTime": "0"}),
        "/voice/wait (hold loop)": lambda i: (f"{wait}&joined={joined}", {"CallSid": f"CW{i}"}),
        "/voice/offer": lambda i: (f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales&joined={joined}",
                                   {"CallSid": f"CW{i}", "Digits": "1"}),
        "/voice/number (valid number)": lambda i: (
            f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1&joined={joined}",
            {"CallSid": f"CW{i}", "Digits": f"212558{i:04d}"}),
        "/voice/confirm (1: store)": lambda i: (
            f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&joined={joined}"
            f"&entry={entries.get(i, 'gone')}", {"CallSid": f"CK{i}", "Digits": "1"}),
        "/voice/enqueue-done (leave)": lambda i: (done, {"CallSid": f"CW{i}", "QueueResult": "leave"}),
        "/voice/enqueue-done (error)": lambda i: (done, {"CallSid": f"CW{i}", "QueueResult": "error"}),
        "/voice/incoming (directory not cached)": lambda i: (f"{PUBLIC}/voice/incoming",
                                                             {"CallSid": f"CJ{i}"}),
    }
    entries = {i: setup.storage.hold_entry(f"CK{i}", f"+1212550{i:04d}", now) for i in range(runs)}
    results = {}
    try:
        for phase in ("answering", "hanging"):
            if phase == "hanging":
                hanging.hanging.set()
            for name, request_of in cases.items():
                if name.endswith("not cached)"):
                    svc.directory.invalidate()
                times, answers = [], set()
                for i in range(runs):
                    url, params = request_of(i if phase == "answering" else 1000 + i)
                    elapsed, response = signed_post(client, url, {**base, **params})
                    assert response.status_code == 200 and response.mimetype == "text/xml", response.data[:200]
                    root = ET.fromstring(response.data)
                    assert root.tag == "Response"
                    answers.add(" ".join(e.tag for e in root))
                    times.append(elapsed)
                results[(name, phase)] = (max(times), answers)
    finally:
        hanging.stop()
    out("| webhook | answer with DynamoDB not answering | slowest s | slowest s, answering | ratio |")
    out("| --- | --- | ---: | ---: | ---: |")
    for name in cases:
        slow, answers = results[(name, "hanging")]
        fast, _ = results[(name, "answering")]
        out(f"| {name} | {' / '.join(sorted(answers))} | {slow:.2f} | {fast:.3f} | {slow / fast:.0f}x |")
    out()
    worst = max(results[(name, "hanging")][0] for name in cases)
    out(f"Slowest answer with DynamoDB not answering: {worst:.2f} s (Twilio waits 15 s).")
    out()


def load_line(before, after):
    """The machine's load average around a part: it is shared, and tail latencies follow it."""
    return (f"Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.1f}' for x in before)}; "
            f"at the end: {', '.join(f'{x:.1f}' for x in after)} ({os.cpu_count()} cores).")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


PARTS = ("webhooks", "cold-start", "sweep", "dispatch", "estimate", "promise", "slow-twilio", "dynamodb-hanging",
         "wallboard", "tokens")


def merge_sections(previous, lines):
    """RESULTS.md with the sections of this run replacing those of the same title (or
    appended), each marked with this run's machine line; every other section is kept."""
    def sections(text_lines):
        head, found, current = [], {}, None
        for line in text_lines:
            if line.startswith("## "):
                current = line
                found[current] = []
            elif current is None:
                head.append(line)
            else:
                found[current].append(line)
        return head, found

    old_head, old = sections(previous)
    new_head, new = sections(lines)
    machine_line = next(line for line in new_head if line.startswith("Machine:"))
    new = {title: ["", machine_line, *body] for title, body in new.items()}
    merged = old_head[:]
    for title, body in {**old, **new}.items():
        if merged and merged[-1]:
            merged.append("")
        merged += [title, *body]
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (repeatable); --write then replaces only its "
                             "section of RESULTS.md")
    args = parser.parse_args(argv)
    parts = args.only or PARTS
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    out("# Benchmark results")
    out()
    out(f"Machine: {machine()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' (quick)' if args.quick else ''}{' (' + ', '.join(parts) + ')' if args.only else ''}.")
    out()
    endpoint, moto = start_moto()
    needs_local = {"sweep", "slow-twilio"} & set(parts)
    local = dynamodb_local.DynamoDBLocal().start() if needs_local else None
    standin = StandInServer().start()
    try:
        if "webhooks" in parts:
            bench_webhooks(endpoint, standin, 50 if args.quick else 300)
        if "cold-start" in parts:
            bench_cold_start(3 if args.quick else 7)
        if "sweep" in parts:
            bench_sweep([1_000, 5_000] if args.quick else [1_000, 10_000, 100_000], local.url)
        if "dispatch" in parts:
            bench_dispatch(endpoint, standin, [1, 5] if args.quick else [1, 5, 20])
        if "estimate" in parts:
            bench_estimate(2 if args.quick else 5)
        if "promise" in parts:
            for line in promise.section(2 if args.quick else 5):
                out(line)
        if "slow-twilio" in parts:
            bench_slow_twilio(local.url, standin, 20 if args.quick else 100, 3 if args.quick else 5)
        if "dynamodb-hanging" in parts:
            bench_dynamodb_hanging(endpoint, standin, 2 if args.quick else 5)
        if "wallboard" in parts:
            for line in wallboard.section([1_000, 10_000] if args.quick else [1_000, 100_000]):
                out(line)
        if "tokens" in parts:
            for line in tokens.section(args.quick):
                out(line)
    finally:
        standin.stop()
        moto.stop()
        if local:
            local.stop()
    if args.write:
        path = os.path.join(ROOT, "bench", "RESULTS.md")
        if args.only and os.path.exists(path):
            with open(path) as f:
                lines = merge_sections(f.read().splitlines(), LINES)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
        else:
            from bench.soak import soak_section

            kept = soak_section(open(path).read()) if os.path.exists(path) else ""
            with open(path, "w") as f:
                f.write("\n".join(LINES) + "\n" + (f"\n{kept}" if kept else ""))


if __name__ == "__main__":
    main()
