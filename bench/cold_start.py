"""Cold start: `import app` against importing its dependencies alone, each in a fresh
interpreter, in the virtualenv and in the Lambda package as `make package` builds it.

The package is unpacked and run as a Lambda runs it: by the runtime's Python (`make
runtime-python`), bytecode writing off, no site-packages, its own AWS SDK. The same package
without its `__pycache__/` shows what Zappa alone would ship.
Ratios use CPU time (user + system of the child): on a shared machine wall time also
counts the turns of other processes, CPU time does not. Wall time is shown beside it.

A second section times the first requests a cold container serves, against DynamoDB
Local: the first hold request, number entry, stored callback and agent status callback
(`first_requests_section` says how).

`python -m bench.cold_start [--runs N] [--write]` runs only the import part,
`python -m bench.cold_start --first-requests [--runs N] [--write]` only the first requests;
`--write` replaces that section of bench/RESULTS.md and keeps the others. `make bench`
runs both with the rest.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

from devtools.lambda_package import runtime_python_path, stage_runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "build", "callback-dev.zip")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
TITLE = "## Cold start (fresh interpreter, median of runs)"
DEPENDENCIES = ("import flask, flask_wtf, twilio.rest, twilio.twiml.voice_response, "
                "twilio.request_validator, pynamodb.models, pynamodb.transactions, boto3")
# The part of them the app's start-up imports: the REST stack waits for the first REST
# call, and PynamoDB needs botocore, not boto3.
STARTUP_DEPENDENCIES = ("import flask, flask_wtf, twilio.twiml.voice_response, twilio.request_validator, "
                        "pynamodb.models, pynamodb.transactions")
PART = "the part of them `import app` loads"
VENV, BUILT, SOURCES = ("virtualenv (pip compiled it)", "Lambda package, as built",
                        "Lambda package, sources only (Zappa alone)")


def timed_run(command, env, cwd):
    """Wall and CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def unpack(zip_path, target, bytecode):
    """The package unpacked into `target`, with or without its bytecode."""
    with zipfile.ZipFile(zip_path) as archive:
        members = [n for n in archive.namelist() if bytecode or "__pycache__/" not in n]
        archive.extractall(target, members)
    return target


def runtime_python():
    """The interpreter of the dev stage's Lambda runtime, and its name."""
    runtime = stage_runtime(os.path.join(ROOT, "zappa_settings.json"), "dev")
    return runtime_python_path(runtime), runtime


def places(tmp, zip_path):
    """Where to start from: (name, command prefix, environment, working directory)."""
    venv_env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"}
    found = [(VENV, [sys.executable], venv_env, ROOT)]
    python, _ = runtime_python()
    if os.path.exists(zip_path) and os.path.exists(python):
        for name, bytecode in ((BUILT, True), (SOURCES, False)):
            directory = unpack(zip_path, os.path.join(tmp, "built" if bytecode else "sources"), bytecode)
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": directory,
                   "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
            found.append((name, [python, "-S", "-B"], env, directory))
    return found


def cases_at(place, cases):
    """What to time at a place: all of it in the virtualenv, the two that matter in the rest."""
    if place == VENV:
        return {"python alone": "pass", **cases}
    if place == SOURCES:
        return {what: code for what, code in cases.items() if what != PART}
    return cases


def section(runs, zip_path=PACKAGE):
    """This part's section of RESULTS.md, measured now, as a list of lines."""
    cases = {"dependencies alone": DEPENDENCIES, PART: STARTUP_DEPENDENCIES, "import app": "import app"}
    with tempfile.TemporaryDirectory() as tmp:
        where = places(tmp, zip_path)
        times = {}
        # Interleaved, so every figure sees the same machine.
        for _ in range(runs):
            for place, command, env, cwd in where:
                for what, code in cases_at(place, cases).items():
                    times.setdefault((place, what), []).append(timed_run(command + ["-c", code], env, cwd))
    median = {key: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
              for key, values in times.items()}
    _, runtime = runtime_python()
    lines = [TITLE, "",
             "Each figure a fresh interpreter with bytecode writing off: the virtualenv on the machine's",
             f"Python ({sys.implementation.cache_tag}), the package unpacked as Lambda runs it, by the runtime's",
             f"Python ({runtime}, `make runtime-python`), no site-packages, its own AWS SDK. Ratios are of",
             "CPU time (user + system), which other processes on a shared machine do not inflate.",
             "\"Dependencies alone\" is every library the app uses; the app's start-up imports only",
             "part of them (the Twilio REST stack waits for the first REST call; PynamoDB needs botocore,",
             "not boto3), hence the row for that part.", "",
             "| where | what | median wall s | median CPU s | CPU ratio to dependencies alone, same place |",
             "| --- | --- | ---: | ---: | ---: |"]
    for (place, what), (wall, cpu) in median.items():
        base = median[(place, "dependencies alone")][1]
        lines.append(f"| {place} | {what} | {wall:.3f} | {cpu:.3f} | {cpu / base:.2f} |")
    lines.append("")
    if (BUILT, "import app") in median:
        app, deps = median[(BUILT, "import app")][1], median[(BUILT, "dependencies alone")][1]
        part, sources = median[(BUILT, PART)][1], median[(SOURCES, "import app")][1]
        lines += [package_size(zip_path), "",
                  f"From the Lambda package as built, `import app` costs {app / deps:.2f}x its dependencies "
                  f"alone (target: at most 1.15x)",
                  f"and {app / part:.2f}x the part of them it loads. From the sources alone it costs "
                  f"{sources:.2f} s of CPU:",
                  f"the shipped bytecode saves {sources - app:.2f} s at every cold start.", ""]
    else:
        lines += [f"No {os.path.relpath(zip_path, ROOT)} or runtime Python: `make package` first "
                  f"(`make bench` does).", ""]
    return lines


def package_size(zip_path):
    """One line: the zip's size, unpacked size, and the AWS SDK's share of it."""
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
    zipped = sum(i.compress_size for i in infos)
    unpacked = sum(i.file_size for i in infos)
    sdk = sum(i.compress_size for i in infos if i.filename.split("/")[0] in ("boto3", "botocore", "s3transfer"))
    return (f"The package: {zipped / 2**20:.1f} MiB zipped ({unpacked / 2**20:.1f} MiB unpacked; Lambda takes "
            f"50 MiB zipped, 250 unpacked), of which the AWS SDK it ships is {sdk / 2**20:.1f} MiB.")


# -- first requests after a cold start ----------------------------------------------------

FIRST_TITLE = "## First requests after a cold start (fresh interpreter, median of runs)"
TOKEN = "bench-token"
PUBLIC = "https://bench.example.com/dev"
STEPS = ("import app", "first hold request (records the caller)", "first number entry (read back)",
         "first stored callback (confirm: 1)",
         "first agent status callback (an attempt it does not know: read, ignored)")
# In the child: CPU seconds of this process (every thread) around each step; the requests are
# signed before the clock starts, their answers read after it stops.
FIRST_REQUESTS_CHILD = r"""
import json, sys, time
run, clients = sys.argv[1], sys.argv[2]
start = time.process_time()
import app
cpu = [time.process_time() - start]
if clients == "per-model":
    # The baseline: PynamoDB's own connections, a botocore session and client per model
    # and one more for transactions, as the app ran before it shared one client.
    from pynamodb.connection import Connection
    from pynamodb.models import Model
    from callback.storage import client as shared_client, tables
    tables._Record._get_connection = classmethod(Model._get_connection.__func__)
    shared_client.SharedConnection.client = Connection.client
import xml.etree.ElementTree as ET
from urllib.parse import urlencode
from twilio.request_validator import RequestValidator

PUBLIC, TOKEN = %r, %r
client, validator = app.app.test_client(), RequestValidator(TOKEN)
call = {"CallSid": "CA" + run.rjust(32, "0"), "AccountSid": "AC" + "1" * 32, "From": "+14155550123",
        "To": "+15005550006"}

def step(url, **params):
    params = {**call, **params}
    headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
    start = time.process_time()
    response = client.post(url[len(PUBLIC):], data=params, headers=headers)
    cpu.append(time.process_time() - start)
    assert response.status_code == 200, response.data[:300]
    return ET.fromstring(response.data)

held = step(PUBLIC + "/voice/wait?ivr=Main+Line&queue=Sales", QueueSid="QU" + "0" * 32,
            QueueTime="0", QueuePosition="1")
assert held.find("Redirect") is not None, ET.tostring(held)
entry = step(PUBLIC + "/voice/number?" + urlencode({"ivr": "Main Line", "queue": "Sales", "attempt": 1}),
             Digits="212555" + run.rjust(4, "0"))
stored = step(entry.find("Gather").get("action"), Digits="1")
assert stored[0].tag == "Leave", ET.tostring(stored)
status = PUBLIC + "/voice/agent/status?" + urlencode(
    {"kind": "callback", "key": call["CallSid"], "attempt": "a-" + run, "agent": "alice"})
step(status, CallSid="CA" + run.rjust(32, "9"), CallStatus="completed")
print("CPU " + json.dumps(cpu))
"""


def seeded_dynamodb_local():
    """DynamoDB Local started for the bench, its tables made and one IVR (one queue) and one
    agent stored from this process; returns (server, table prefix)."""
    from callback.clock import SystemClock
    from callback.config import Config
    from callback.domain.records import Ivr, Queue
    from callback.storage import Storage
    from devtools.dynamodb_local import DynamoDBLocal

    for key, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    local = DynamoDBLocal().start()
    prefix = f"cold{os.getpid()}-"
    storage = Storage(Config(CALLBACK_TABLE_PREFIX=prefix, AWS_ENDPOINT_URL_DYNAMODB=local.url,
                             DYNAMODB_TIMEOUT_SECONDS=15))
    storage.create_tables()
    storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",), greeting="Welcome.",
                         queues=(Queue("Sales", "Main Line", 10),)))
    # Stored, never signed in: every dispatch finds nobody to ring (see first_requests_section).
    storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                               now=SystemClock().now(), create=True)
    return local, prefix


def first_requests_section(runs, zip_path=PACKAGE):
    """CPU of `import app`, then of the first hold request, number entry, stored callback and
    agent status callback, each run in a fresh interpreter started from the unpacked package
    as Lambda runs it, against DynamoDB Local; as RESULTS.md lines.

    Dispatches run inline (DISPATCH_RUNNER=inline) and the one agent is stored but never
    signed in, so each dispatch the webhooks ask for reads the agents, finds nobody to ring
    and places no call. That keeps every run the same: the thread runner would spend the
    dispatch's CPU on a background thread whenever it got its turn (in a later step, or
    after the child printed), and the Lambda runner needs a Lambda Invoke API. Inline, the
    dispatch is counted in the webhook that asked for it; in a Lambda it runs in another
    invocation, so these rows are an upper bound of a webhook's own cost there.
    """
    lines = [FIRST_TITLE, ""]
    if not os.path.exists(zip_path):
        return lines + [f"No {os.path.relpath(zip_path, ROOT)}: `make package` first (`make bench` does).", ""]
    local, prefix = seeded_dynamodb_local()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _, command, env, cwd = next(p for p in places(tmp, zip_path) if p[0] == BUILT)
            env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_ENDPOINT_URL_DYNAMODB": local.url, "CALLBACK_TABLE_PREFIX": prefix,
                   "DYNAMODB_TIMEOUT_SECONDS": "15", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                   "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC, "SECRET_KEY": "bench",
                   "DISPATCH_RUNNER": "inline", "LOG_LEVEL": "WARNING"}
            code = FIRST_REQUESTS_CHILD % (PUBLIC, TOKEN)
            # One run first, not counted: DynamoDB Local's JVM warms up on it. The baseline's
            # runs alternate with the app's, so both meet the same machine.
            first_requests_run(command, code, env, cwd, 0, "shared")
            samples, baseline = [], []
            for run in range(1, runs + 1):
                samples.append(first_requests_run(command, code, env, cwd, 2 * run, "shared"))
                baseline.append(first_requests_run(command, code, env, cwd, 2 * run + 1, "per-model"))
    finally:
        local.stop()
    median = [statistics.median(sample[i] for sample in samples) for i in range(len(STEPS))]
    after_import = sum(median[1:4])
    before = statistics.median(sum(sample[1:4]) for sample in baseline)
    lines += ["Each run a fresh interpreter of the runtime's Python started from the Lambda package as",
              "built (no site-packages, its own AWS SDK, bytecode writing off) against DynamoDB Local, one IVR and one agent",
              "stored beforehand. CPU time of the child (`time.process_time()`, every thread) around each",
              "step, in order; requests signed before the clock starts. Dispatches run inline and find",
              "nobody signed in, so no call is placed (bench/cold_start.py says why).", "",
              "| step | median CPU s | min | max |", "| --- | ---: | ---: | ---: |"]
    for i, what in enumerate(STEPS):
        values = [sample[i] for sample in samples]
        lines.append(f"| {what} | {median[i]:.3f} | {min(values):.3f} | {max(values):.3f} |")
    lines += ["", f"From the end of `import app` to the first stored callback (hold, number entry, confirm): "
              f"{after_import:.3f} s of CPU (target: at most 0.15 s). The same steps with a botocore",
              f"session and client per model, as PynamoDB opens them (the baseline, run alternately): "
              f"{before:.3f} s, {before / after_import:.1f}× as much.", ""]
    return lines


def first_requests_run(command, code, env, cwd, run, clients):
    """One fresh interpreter through the first requests, its DynamoDB clients `shared` (the
    app's) or `per-model` (the baseline); CPU seconds per step."""
    import json

    child = subprocess.run(command + ["-c", code, str(run + 1), clients], env=env, cwd=cwd, capture_output=True,
                           text=True, timeout=300)
    marker = [line for line in child.stdout.splitlines() if line.startswith("CPU ")]
    if child.returncode != 0 or not marker:
        raise RuntimeError(f"first-requests run failed:\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}")
    return json.loads(marker[0][len("CPU "):])


def replace_section(text, lines):
    """RESULTS.md text with the section `lines` starts with replaced by them (or added),
    others kept."""
    old, title = text.splitlines(), lines[0]
    if title not in old:
        return "\n".join(old + [""] * bool(old and old[-1]) + lines) + "\n"
    start = old.index(title)
    end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
    return "\n".join(old[:start] + lines + old[end:]).rstrip("\n") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=0, help="runs per figure (7, or 5 for the first requests)")
    parser.add_argument("--write", action="store_true", help="replace this section of bench/RESULTS.md")
    parser.add_argument("--first-requests", action="store_true",
                        help="only the first requests after a cold start (default: 5 runs)")
    args = parser.parse_args(argv)
    if args.first_requests:
        runs = args.runs or 5
        lines = first_requests_section(runs)
    else:
        runs = args.runs or 7
        lines = section(runs)
    lines[1:1] = ["", f"Run on its own at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {runs} runs."]
    print("\n".join(lines))
    if args.write:
        with open(RESULTS) as f:
            text = f.read()
        with open(RESULTS, "w") as f:
            f.write(replace_section(text, lines))


if __name__ == "__main__":
    main()
