"""The Lambda package: Zappa's callbacks (`callbacks` in zappa_settings.json), the runtime's
own Python, and the bytecode built with it. Run by `make package`, `make deploy` and
`make update`; never shipped.

Zappa's hooks here refuse what a first deploy would otherwise do quietly:

- `check_settings` (every Zappa command): a WebSocket handler Zappa thinks it found (it
  would publish an unauthenticated `<function>-ws` API), a deploy or update that builds
  its own zip instead of taking the one `make package` built and tested, and settings
  still holding `REPLACE-WITH` placeholders.
- `finish_zip` (after Zappa writes the zip): development files or a WebSocket handler in
  it; then it adds the bytecode, compiled by the Python of the stage's runtime.
- `after_deploy` (after `deploy` and `update`): the function's asynchronous-invocation
  settings, which Zappa does not manage: events older than 60 s are dropped and nothing is
  retried (the sweep is the retry), for the sweep's schedule and the hand-offs alike.

Bytecode: Zappa leaves `__pycache__/` out and a Lambda's code folder is read-only, so
without bytecode in the zip every cold start compiles every module it imports. It belongs
to one Python minor version, so it is compiled by the runtime's interpreter: this one when
it is that version, else the one `make runtime-python` unpacks from the Debian release
that ships it. Zip entries keep no file times, so the `.pyc` files are "unchecked-hash";
only Zappa's `zappa_settings.py`, which people do edit inside an unpacked package, is
"checked-hash" so an edited copy is never shadowed by stale bytecode.

Only the standard library at import: the runtime's Python runs this file as a script.
"""
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from importlib.util import cache_from_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED = {"zappa_settings.py"}
PLACEHOLDER = "REPLACE-WITH"
# What must never reach the zip: the development side of the repository.
DEVELOPMENT = ("devtools/", "tests/", "bench/", "build/", "infra/", ".ci/", ".venv/", ".git/")
# Debian releases whose python3.X is a Lambda runtime's Python (debootstrap's suite names).
DEBIAN_SUITE = {"python3.11": "bookworm", "python3.13": "trixie"}
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The AWS services the function calls: the app's tables and secrets, Zappa's handler's
# remote_env (S3) and asynchronous tasks (zappa.asynchronous makes Lambda, SNS, STS and
# DynamoDB clients when imported). The pinned SDK ships with the models of these alone:
# botocore's 400-odd others would be 15 MiB of the zip that nothing reads.
SDK_SERVICES = ("dynamodb", "s3", "lambda", "sns", "ssm", "sts")
# The function's asynchronous invocations (Zappa's event rule and its tasks).
EVENT_INVOKE = {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}


class PackageError(Exception):
    """The package cannot be built or deployed as it stands."""


BytecodeError = PackageError


def this_runtime():
    """The Lambda runtime name matching the running Python, e.g. 'python3.13'."""
    return "python{}.{}".format(*sys.version_info[:2])


def stage_config(settings_path, stage):
    """A stage of zappa_settings.json with what it `extends` merged under it, as Zappa does."""
    with open(settings_path) as f:
        stages = json.load(f)
    config = dict(stages[stage])
    while "extends" in config:
        parent = stages[config.pop("extends")]
        config = {**parent, **config}
    return config


def stage_runtime(settings_path, stage):
    """A stage's `runtime`; Zappa's default when none is set is the Python running it."""
    return stage_config(settings_path, stage).get("runtime", this_runtime())


# -- the runtime's Python ------------------------------------------------------------

WRAPPER = """#!/bin/sh
# {runtime} of Debian {suite}, unpacked by debootstrap beside this file (`make runtime-python`),
# run through that release's own loader and libraries: nothing of the host's C library mixes in.
root="$(cd "$(dirname "$0")" && pwd)/root"
PYTHONHOME="$root/usr" exec "$root/{loader}" --library-path "$root/usr/lib/{triplet}" \\
  "$root/usr/bin/{runtime}" "$@"
"""
LOADERS = {"x86_64": ("lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
           "aarch64": ("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu")}


def runtime_python_path(runtime, root=ROOT):
    """Where `make runtime-python` puts the interpreter of `runtime`."""
    return os.path.join(root, "build", ".runtime", runtime, "python")


def fetch_runtime_python(runtime, target):
    """Make `target`/python run `runtime`: this Python when it is that version, else the
    Debian release that ships it, unpacked with debootstrap (root only: it makes devices)."""
    wrapper = os.path.join(target, "python")
    if runtime == this_runtime():
        os.makedirs(target, exist_ok=True)
        _write_executable(wrapper, f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        return wrapper
    suite = DEBIAN_SUITE.get(runtime)
    if suite is None:
        raise PackageError(f"no Debian release ships {runtime}: build on a machine whose python3 is {runtime} "
                           f"(make package PYTHON={runtime}), or pick a runtime of {sorted(DEBIAN_SUITE)}")
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise PackageError(f"{runtime} for the package's bytecode comes from Debian {suite} through debootstrap, "
                           f"which needs root and the debootstrap package (apt-get install debootstrap)")
    machine = os.uname().machine
    if machine not in LOADERS:
        raise PackageError(f"no loader known for {machine}")
    loader, triplet = LOADERS[machine]
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    run = subprocess.run(["debootstrap", "--variant=minbase", f"--include={runtime}", suite,
                          os.path.join(staging, "root"), DEBIAN_MIRROR], capture_output=True, text=True)
    if run.returncode != 0:
        raise PackageError(f"debootstrap {suite} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    _write_executable(os.path.join(staging, "python"),
                      WRAPPER.format(runtime=runtime, suite=suite, loader=loader, triplet=triplet))
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    version = interpreter_runtime(wrapper)
    if version != runtime:
        raise PackageError(f"{wrapper} runs {version}, not {runtime}")
    return wrapper


def _write_executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def interpreter_runtime(python):
    """The runtime name of an interpreter, e.g. 'python3.13', asked of it."""
    run = subprocess.run([python, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise PackageError(f"{python} does not run: {run.stderr[-1000:]}")
    return run.stdout.strip()


def prune_sdk(site):
    """Remove the service models of every AWS service but SDK_SERVICES from the botocore
    and boto3 installed in `site`; returns how many were removed."""
    removed = 0
    for package in ("botocore", "boto3"):
        data = os.path.join(site, package, "data")
        for name in sorted(os.listdir(data)):
            if os.path.isdir(os.path.join(data, name)) and name not in SDK_SERVICES:
                shutil.rmtree(os.path.join(data, name))
                removed += 1
    missing = [s for s in SDK_SERVICES if not os.path.isdir(os.path.join(site, "botocore", "data", s))]
    if missing:
        raise PackageError(f"botocore has no model for {', '.join(missing)}")
    return removed


# -- bytecode -------------------------------------------------------------------------

def add_bytecode(zip_path):
    """Compile every module in the zip for this Python and add the `.pyc` files to it.

    Returns (number of modules compiled, sources that are not valid Python for it)."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        if any(name.endswith(".pyc") for name in names):
            raise PackageError(f"{zip_path} already holds .pyc files, of unknown Python and "
                               f"invalidation mode: keep '*.pyc' and '__pycache__' in `exclude`")
        sources = [name for name in names if name.endswith(".py")]
        with tempfile.TemporaryDirectory() as tmp:
            compiled, invalid = [], []
            for name in sources:
                source = archive.extract(name, tmp)
                cached = cache_from_source(name, optimization="")
                mode = (py_compile.PycInvalidationMode.CHECKED_HASH if name in CHECKED
                        else py_compile.PycInvalidationMode.UNCHECKED_HASH)
                try:
                    with warnings.catch_warnings():
                        # Third-party sources' own SyntaxWarnings are not ours to print.
                        warnings.simplefilter("ignore")
                        py_compile.compile(source, cfile=os.path.join(tmp, cached), dfile=name,
                                           doraise=True, optimize=0, invalidation_mode=mode)
                except py_compile.PyCompileError:
                    # Not importable by this Python either; nothing a cold start would load.
                    invalid.append(name)
                    continue
                compiled.append(cached)
            with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as out:
                for cached in compiled:
                    info = zipfile.ZipInfo(cached, date_time=(1980, 1, 1, 0, 0, 0))
                    info.create_system = 3
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(os.path.join(tmp, cached), "rb") as f:
                        out.writestr(info, f.read())
    return len(compiled), invalid


def add_bytecode_for(runtime, zip_path, python=None):
    """`add_bytecode` run by `runtime`'s interpreter: this one, `python`, or the one
    `make runtime-python` made. Returns (cache tag, modules compiled, invalid sources)."""
    if runtime == this_runtime() and python is None:
        count, invalid = add_bytecode(zip_path)
        return sys.implementation.cache_tag, count, invalid
    python = python or os.environ.get("LAMBDA_RUNTIME_PYTHON") or runtime_python_path(runtime)
    if not os.path.exists(python):
        raise PackageError(f"the package's bytecode must be compiled by {runtime} and this is {this_runtime()}: "
                           f"`make runtime-python` provides it (make package does it first)")
    found = interpreter_runtime(python)
    if found != runtime:
        raise PackageError(f"the Lambda runtime is {runtime} but {python} is {found}: its bytecode would be "
                           f"ignored there and every cold start would compile every module again")
    run = subprocess.run([python, os.path.abspath(__file__), "compile", os.path.abspath(zip_path)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise PackageError(f"{runtime} could not compile the package: {run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result["tag"], result["compiled"], result["invalid"]


# -- Zappa's callbacks -----------------------------------------------------------------

def settings_problems(command, zip_given, config, websocket):
    """What makes a Zappa command unsafe to run with these stage settings; [] when none."""
    problems = []
    if websocket:
        problems.append(f"Zappa found a WebSocket handler ({websocket}) and would publish an unauthenticated "
                        f"WebSocket API: this app has none. Keep virtualenvs and build folders out of the "
                        f"project tree, or in hidden folders Zappa skips")
    if command in ("deploy", "update") and not zip_given:
        problems.append(f"`zappa {command}` would build its own zip from this folder's virtualenv; deploy the "
                        f"one `make package` built and tested: `make {command}`")
    checked = {key: config.get(key, "") for key in ("s3_bucket", "remote_env", "role_name")}
    checked["PUBLIC_BASE_URL"] = config.get("environment_variables", {}).get("PUBLIC_BASE_URL", "")
    for key, value in checked.items():
        # A package may be built and tested with placeholders; nothing is deployed with one
        # but the API's URL, known only once the first deploy has made it (`update` refuses it).
        if (PLACEHOLDER in str(value) and command in ("deploy", "update")
                and not (key == "PUBLIC_BASE_URL" and command == "deploy")):
            problems.append(f"{key} is still a placeholder in zappa_settings.json: {value}")
    if not config.get("s3_bucket") and command in ("deploy", "update"):
        problems.append("no s3_bucket: Zappa would make a new zappa-<random> bucket at every deploy")
    return problems


def zip_problems(zip_path):
    """What must not ship in a built package; [] when none."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        settings = archive.read("zappa_settings.py").decode() if "zappa_settings.py" in names else ""
    problems = []
    if "zappa_settings.py" not in names or "handler.py" not in names:
        problems.append("no zappa_settings.py or handler.py: not a package Zappa built")
    if "WEBSOCKET_HANDLER_MODULE" in settings:
        problems.append("the package's settings name a WebSocket handler: deploy would publish a WebSocket API")
    development = sorted(n for n in names if n.startswith(DEVELOPMENT))
    if development:
        problems.append(f"development files in the package: {', '.join(development[:5])}")
    return problems


def check_settings(cli):
    """Zappa's `settings` callback: refuse a command these settings would make unsafe."""
    import click

    problems = settings_problems(cli.command, bool(cli.vargs.get("zip")), cli.stage_config, cli.use_websocket)
    if problems:
        raise click.ClickException("\n".join(["refused:", *problems]))
    value = cli.stage_config.get("environment_variables", {}).get("PUBLIC_BASE_URL", "")
    if PLACEHOLDER in value and cli.command == "deploy":
        click.echo("PUBLIC_BASE_URL is still a placeholder: set it to the URL this deploy prints, "
                   "then `make update` (Twilio's signatures cover it)")


def finish_zip(cli):
    """Zappa's `zip` callback: check the package, then add the runtime's bytecode."""
    import click

    try:
        problems = zip_problems(cli.zip_path)
        if problems:
            raise PackageError("\n".join(problems))
        tag, count, invalid = add_bytecode_for(cli.runtime, cli.zip_path)
    except PackageError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added bytecode for {cli.runtime} ({tag}) of {count} modules to {os.path.basename(cli.zip_path)}")
    if invalid:
        click.echo(f"Not valid {cli.runtime}, left as source only: {', '.join(invalid)}")


def after_deploy(cli):
    """Zappa's `post` callback: the function's asynchronous-invocation settings."""
    import click

    cli.zappa.lambda_client.put_function_event_invoke_config(FunctionName=cli.lambda_name, **EVENT_INVOKE)
    click.echo(f"{cli.lambda_name}: asynchronous events older than {EVENT_INVOKE['MaximumEventAgeInSeconds']} s "
               f"are dropped and none is retried (the sweep is the retry)")


def is_deployed(stage, settings_path=os.path.join(ROOT, "zappa_settings.json")):
    """Whether the stage's function exists in its AWS account (credentials from the environment)."""
    import boto3

    config = stage_config(settings_path, stage)
    client = boto3.client("lambda", region_name=config.get("aws_region"))
    try:
        client.get_function(FunctionName=f"{config['project_name']}-{stage}")
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


# -- command line ----------------------------------------------------------------------

def main(argv=None):
    """`runtime STAGE` prints the stage's runtime; `runtime-python STAGE` makes its Python;
    `deploy-command STAGE` prints `deploy`, or `update` when the stage's function exists;
    `stage-env STAGE` prints the stage's environment variables as NAME=value lines;
    `prune-sdk SITE` keeps only the AWS models the function uses; `compile ZIP` adds this
    Python's bytecode to ZIP (run by the runtime's interpreter)."""
    args = sys.argv[1:] if argv is None else argv
    settings = os.path.join(ROOT, "zappa_settings.json")
    try:
        if args[:1] == ["runtime"]:
            print(stage_runtime(settings, args[1]))
        elif args[:1] == ["runtime-python"]:
            runtime = stage_runtime(settings, args[1])
            python = fetch_runtime_python(runtime, os.path.dirname(runtime_python_path(runtime)))
            print(f"{runtime}: {os.path.relpath(python, ROOT)}")
        elif args[:1] == ["deploy-command"]:
            # `zappa deploy` refuses a stage that exists: `make deploy` updates it instead.
            print("update" if is_deployed(args[1]) else "deploy")
        elif args[:1] == ["stage-env"]:
            # The stage's own (non-secret) settings, for a command run against it from here
            # (`make twilio-setup`); its secrets come from the environment or Parameter Store.
            for name, value in sorted(stage_config(settings, args[1]).get("environment_variables", {}).items()):
                print(f"{name}={value}")
        elif args[:1] == ["prune-sdk"]:
            print(f"removed {prune_sdk(args[1])} AWS service models; kept {', '.join(SDK_SERVICES)}")
        elif args[:1] == ["compile"]:
            count, invalid = add_bytecode(args[1])
            print(json.dumps({"tag": sys.implementation.cache_tag, "compiled": count, "invalid": invalid}))
        else:
            print(main.__doc__, file=sys.stderr)
            return 2
    except PackageError as exc:
        print(f"lambda_package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
