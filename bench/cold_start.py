"""Cold start: `import app` against importing its dependencies alone, each in a fresh
interpreter, in the virtualenv and in the Lambda package as `make package` builds it.

The package is unpacked and run as a Lambda runs it: bytecode writing off, no
site-packages, the AWS SDK from beside it (the runtime provides it; the package leaves it
out). The same package without its `__pycache__/` shows what Zappa alone would ship.
Ratios use CPU time (user + system of the child): on a shared machine wall time also
counts the turns of other processes, CPU time does not. Wall time is shown beside it.

`python -m bench.cold_start [--runs N] [--write]` runs only this part; `--write` replaces
its section of bench/RESULTS.md and keeps the others. `make bench` runs it with the rest.
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
RUNTIME_SDK = ("boto3", "botocore", "s3transfer")
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


def runtime_sdk(target):
    """The AWS SDK on a path of its own, as the Lambda runtime provides it."""
    import boto3

    os.mkdir(target)
    site = os.path.dirname(os.path.dirname(boto3.__file__))
    for name in RUNTIME_SDK:
        os.symlink(os.path.join(site, name), os.path.join(target, name))
    return target


def places(tmp, zip_path):
    """Where to start from: (name, command prefix, environment, working directory)."""
    venv_env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"}
    found = [(VENV, [sys.executable], venv_env, ROOT)]
    if os.path.exists(zip_path):
        sdk = runtime_sdk(os.path.join(tmp, "sdk"))
        for name, bytecode in ((BUILT, True), (SOURCES, False)):
            directory = unpack(zip_path, os.path.join(tmp, "built" if bytecode else "sources"), bytecode)
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{directory}{os.pathsep}{sdk}",
                   "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
            found.append((name, [sys.executable, "-S", "-B"], env, directory))
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
    lines = [TITLE, "",
             "Each figure a fresh interpreter with bytecode writing off; the package unpacked as Lambda",
             "runs it (no site-packages, the AWS SDK beside it as the runtime provides it). Ratios are of",
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
        lines += [f"From the Lambda package as built, `import app` costs {app / deps:.2f}x its dependencies "
                  f"alone (target: at most 1.15x)",
                  f"and {app / part:.2f}x the part of them it loads. From the sources alone it costs "
                  f"{sources:.2f} s of CPU:",
                  f"the shipped bytecode saves {sources - app:.2f} s at every cold start.", ""]
    else:
        lines += [f"No {os.path.relpath(zip_path, ROOT)}: `make package` first (`make bench` does).", ""]
    return lines


def replace_section(text, lines):
    """RESULTS.md text with this part's section replaced by `lines` (or added), others kept."""
    old = text.splitlines()
    if TITLE not in old:
        return "\n".join(old + [""] * bool(old and old[-1]) + lines) + "\n"
    start = old.index(TITLE)
    end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
    return "\n".join(old[:start] + lines + old[end:]).rstrip("\n") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="replace this section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    lines = section(args.runs)
    lines[1:1] = ["", f"Run on its own at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.runs} runs."]
    print("\n".join(lines))
    if args.write:
        with open(RESULTS) as f:
            text = f.read()
        with open(RESULTS, "w") as f:
            f.write(replace_section(text, lines))


if __name__ == "__main__":
    main()
