"""The built Lambda package, run through Zappa's own handler, offline.

`make package` builds the zip exactly as for a deployment; the test unpacks it and runs
its `handler.lambda_handler` in a fresh interpreter of the Lambda runtime's Python
(`make runtime-python`) that sees only the package, AWS SDK included. Secrets come from the stage's remote_env file (in a
moto S3 bucket), tables from DynamoDB Local: API Gateway proxy events signed for the
public execute-api URL with its stage path, and the CloudWatch schedule, go through it.
Bytecode writing is off, as in a Lambda's read-only code folder, and every module must
load from the bytecode shipped in the package (tests/import_probe.py watches).
"""
import ast
import glob
import importlib.util
import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
import zipfile
from urllib.parse import urlencode

import boto3
import pytest
from conftest import moto_server
from import_probe import PROBE, REPORT, read_report
from test_handoff import LambdaApi
from twilio.request_validator import RequestValidator

from callback.clock import SystemClock
from callback.config import Config
from callback.domain.records import Ivr, Queue
from callback.storage import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
API_HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
PUBLIC = f"https://{API_HOST}/dev"
TOKEN = "lambda-test-auth-token"
sys.path.insert(0, ROOT)
from devtools.lambda_package import runtime_python_path, stage_runtime  # noqa: E402

RUNTIME = stage_runtime(os.path.join(ROOT, "zappa_settings.json"), "dev")
RUNTIME_PYTHON = runtime_python_path(RUNTIME)
RUNTIME_TAG = "cpython-" + RUNTIME.removeprefix("python").replace(".", "")


def runtime_bytecode(source):
    """Where the runtime's Python looks for a source's bytecode."""
    cached = importlib.util.cache_from_source(source, optimization="")
    return cached.replace(sys.implementation.cache_tag, RUNTIME_TAG)

RUNNER = PROBE + r"""
import json, sys
events = json.load(open(sys.argv[1]))
class Context:
    aws_request_id = "req-1"
    function_name = "callback-dev"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:callback-dev"
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 30000
import handler
results = [handler.lambda_handler(event, Context()) for event in events]
forbidden = [m for m in sys.modules if m.split(".")[0] in ("pytest", "moto", "troposphere")]
import botocore
print("RESULTS " + json.dumps({"results": results, "forbidden": forbidden, "botocore": botocore.__file__,
                               "python": "python%d.%d" % sys.version_info[:2]}, default=str))
""" + REPORT


@pytest.fixture(scope="module")
def package_dir(lambda_zip, tmp_path_factory):
    """The package `make package` built, unpacked."""
    target = tmp_path_factory.mktemp("lambda")
    with zipfile.ZipFile(lambda_zip) as archive:
        size = sum(i.compress_size for i in archive.infolist())
        assert size < 50 * 2**20, "over Lambda's 50 MB zipped limit"
        names = archive.namelist()
        assert not any(n.startswith(("tests/", ".local-data/", "troposphere/", "bin/")) for n in names)
        for source in (n for n in names if n.endswith(".py")):
            bytecode = runtime_bytecode(source)
            assert bytecode in names, f"no bytecode for {source}"
        archive.extractall(target)
    return target


DEVELOPMENT_PREFIXES = ("devtools/", "tests/", "bench/", "build/", ".venv")
DEVELOPMENT_FILES = ("Makefile",)


def test_the_zip_holds_the_app_and_no_development_tools(package_dir):
    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        names = archive.namelist()
    development = [n for n in names if n.startswith(DEVELOPMENT_PREFIXES) or n in DEVELOPMENT_FILES
                   or (n.endswith(".md") and "/" not in n)]
    assert development == [], f"development files in the Lambda zip: {development[:20]}"
    assert "app.py" in names
    assert {"callback/__init__.py", "callback/web/voice/__init__.py", "callback/work/sweep.py"} <= set(names)
    # Data files the app reads at run time: the API's OpenAPI description among them.
    assert {"callback/web/openapi.json", "templates/callback_detail.html"} <= set(names)


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 over HTTP on loopback, for the stage's secrets file."""
    with moto_server() as url:
        yield url


@pytest.fixture
def lambda_api():
    """Lambda's Invoke API, where the package's asynchronous dispatches go."""
    api = LambdaApi()
    yield api
    api.server.shutdown()


@pytest.fixture
def lambda_env(package_dir, dynamodb_endpoint, s3_endpoint, tmp_path, standin_server, lambda_api):
    """The unpacked package with its settings pointed at DynamoDB Local, secrets in a moto
    bucket, the Twilio stand-in and a local Lambda Invoke API."""
    prefix = f"l{uuid.uuid4().hex[:8]}-"
    settings_path = package_dir / "zappa_settings.py"
    lines = []
    for line in settings_path.read_text().splitlines():
        if line.startswith("REMOTE_ENV="):
            line = "REMOTE_ENV='s3://callback-secrets-test/callback/dev.json'"
        elif line.startswith("ENVIRONMENT_VARIABLES="):
            env = ast.literal_eval(line.split("=", 1)[1])
            assert env["PUBLIC_BASE_URL"].endswith("/dev") and "TWILIO_AUTH_TOKEN" not in env
            env.update(PUBLIC_BASE_URL=PUBLIC, CALLBACK_TABLE_PREFIX=prefix)
            line = f"ENVIRONMENT_VARIABLES={env!r}"
        lines.append(line)
    settings_path.write_text("\n".join(lines) + "\n")

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="callback-secrets-test")
    s3.put_object(Bucket="callback-secrets-test", Key="callback/dev.json", Body=json.dumps({
        "TWILIO_ACCOUNT_SID": "AC" + "5" * 32, "TWILIO_AUTH_TOKEN": TOKEN,
        "SECRET_KEY": "lambda-secret-key", "ADMIN_API_TOKEN": "lambda-api-token",
        "TWILIO_API_BASE_URL": standin_server.url}))

    # As in conftest: a loaded test machine can stall DynamoDB Local past the production timeout.
    storage = Storage(Config(CALLBACK_TABLE_PREFIX=prefix, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
                             DYNAMODB_TIMEOUT_SECONDS=15))
    storage.create_tables()
    storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",), greeting="Welcome.",
                         queues=(Queue("Sales", "Main Line", 10),)))

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint, "AWS_ENDPOINT_URL_S3": s3_endpoint,
           "DYNAMODB_TIMEOUT_SECONDS": "15",
           # What the Lambda runtime sets, and where this function's own Invoke API is.
           "AWS_LAMBDA_FUNCTION_NAME": "callback-dev", "AWS_ENDPOINT_URL_LAMBDA": lambda_api.url}
    return {"dir": package_dir, "env": env, "storage": storage, "tmp": tmp_path}


def invoke(lambda_env, events):
    """Run the package's handler on events in a fresh interpreter with no site-packages,
    bytecode writing off."""
    events_file = lambda_env["tmp"] / "events.json"
    events_file.write_text(json.dumps(events))
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", RUNNER, str(events_file)], cwd=lambda_env["dir"],
                         env=lambda_env["env"], capture_output=True, text=True, timeout=120)
    marker = [line for line in run.stdout.splitlines() if line.startswith("RESULTS ")]
    assert run.returncode == 0 and marker, run.stdout[-3000:] + run.stderr[-3000:]
    output = json.loads(marker[0][len("RESULTS "):])
    assert output["forbidden"] == []
    # The runtime's Python, and the AWS SDK the package ships, pinned and tested, not Lambda's own.
    assert output["python"] == RUNTIME
    assert os.path.realpath(output["botocore"]).startswith(os.path.realpath(lambda_env["dir"]) + os.sep)
    assert TOKEN not in run.stdout + run.stderr, "a secret reached the logs"
    # lambda_env edited zappa_settings.py, whose bytecode checks its source for exactly that.
    compiled = read_report(run.stdout)["compiled_from_source"]
    assert [os.path.relpath(path, lambda_env["dir"]) for path in compiled] == ["zappa_settings.py"]
    return output["results"], run.stdout + run.stderr


def api_gateway_event(path, params, signature, query=None):
    body = urlencode(params)
    headers = {"Host": API_HOST, "Content-Type": "application/x-www-form-urlencoded",
               "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", "User-Agent": "TwilioProxy/1.1"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": "POST", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {"stage": "dev", "path": "/dev" + path, "httpMethod": "POST",
                           "resourcePath": "/{proxy+}", "requestId": "r-1", "apiId": "abc123defg",
                           "accountId": "123456789012", "identity": {"sourceIp": "54.172.60.1"}},
        "body": body, "isBase64Encoded": False,
    }


def test_signed_webhook_through_zappas_handler_answers_twiml(lambda_env):
    params = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "5" * 32, "From": "+14155550123",
              "To": "+15005550006", "CallStatus": "ringing", "Direction": "inbound"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/voice/incoming", params)
    wrong = RequestValidator("not-the-token").compute_signature(PUBLIC + "/voice/incoming", params)
    unstaged = RequestValidator(TOKEN).compute_signature(f"https://{API_HOST}/voice/incoming", params)
    scheduled = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-11-24T12:00:00Z", "region": "us-east-1",
                 "resources": ["arn:aws:events:us-east-1:123456789012:rule/callback-dev-callback.work.wiring.run_sweep"],
                 "detail": {}}
    (ok, bad, no_stage, sweep), logs = invoke(lambda_env, [
        api_gateway_event("/voice/incoming", params, signature),
        api_gateway_event("/voice/incoming", params, wrong),
        api_gateway_event("/voice/incoming", params, unstaged),
        scheduled])

    assert ok["statusCode"] == 200 and ok["headers"]["Content-Type"].startswith("text/xml")
    assert "<Enqueue" in ok["body"] and f"{PUBLIC}/voice/wait?ivr=Main+Line" in ok["body"]
    assert bad["statusCode"] == 403
    assert no_stage["statusCode"] == 403, "the signature must cover the stage path"
    assert isinstance(sweep, dict) and sweep["errors"] == [] and "expired" in sweep
    # Recorded as waiting only by the first waitUrl request, once the caller is in the queue.
    assert lambda_env["storage"].get_waiting_call("CA" + "7" * 32) is None
    assert "+14155550123" not in logs


def test_a_cold_start_loads_the_packages_bytecode_and_compiles_nothing(package_dir, tmp_path):
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", PROBE + "import app\n" + REPORT], cwd=package_dir,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir),
                              "AWS_DEFAULT_REGION": "us-east-1"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    report = read_report(run.stdout)
    assert report["dont_write_bytecode"] is True
    assert report["compiled_from_source"] == []

    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        shipped = set(archive.namelist())
    from_package = {}
    inside = os.path.realpath(package_dir) + os.sep
    for name, (file, cached) in report["modules"].items():
        if file and file.endswith(".py") and os.path.realpath(file).startswith(inside):
            from_package[name] = os.path.relpath(cached, package_dir)
    assert {"app", "callback.web.voice", "flask.app", "werkzeug.routing", "pynamodb.models",
            "twilio.twiml.voice_response"} <= set(from_package)
    assert {name: cached for name, cached in from_package.items() if cached not in shipped} == {}


def test_a_dispatch_handed_over_by_a_webhook_runs_through_zappas_handler(lambda_env, lambda_api,
                                                                           twilio_standin):
    storage, now = lambda_env["storage"], SystemClock().now()
    storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"], now=now,
                               create=True)
    storage.set_agent_presence("alice", "available", now)
    query = {"ivr": "Main Line", "queue": "Sales"}
    params = {"CallSid": "CA" + "8" * 32, "AccountSid": "AC" + "5" * 32, "From": "+14155550123",
              "To": "+15005550006", "QueueSid": "QU" + "1" * 32, "QueueTime": "2"}
    signature = RequestValidator(TOKEN).compute_signature(
        f"{PUBLIC}/voice/wait?{urlencode(query)}", params)
    (held,), _ = invoke(lambda_env, [api_gateway_event("/voice/wait", params, signature, query)])

    # The first waitUrl request records the caller and returns; nothing was dialed in it.
    assert held["statusCode"] == 200 and "<Redirect" in held["body"] and "joined=" in held["body"]
    assert storage.get_waiting_call("CA" + "8" * 32).queue_name == "Sales"
    assert twilio_standin.placed() == []
    # Zappa's asynchronous task: an Event invocation of this same function ...
    assert [(i["function"], i["type"]) for i in lambda_api.invocations] == [("callback-dev", "Event")]
    payload = lambda_api.invocations[0]["payload"]
    assert payload["command"] == "zappa.asynchronous.route_lambda_task"

    # ... which Zappa's handler routes to the dispatch, in a fresh container: Alice is rung.
    (result,), _ = invoke(lambda_env, [payload])
    assert result == {"offers": 1}
    assert [c.to for c in twilio_standin.placed()] == ["+14155550101"]
    assert storage.get_agent("alice").status == "reserved"


GLIBC_OF_THE_RUNTIME = (2, 34)  # Amazon Linux 2023, under python3.12 and later runtimes
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def wheel_tags(archive):
    """Each installed distribution's wheel tags, from its .dist-info/WHEEL."""
    tags = {}
    for name in archive.namelist():
        if name.endswith(".dist-info/WHEEL"):
            lines = archive.read(name).decode().splitlines()
            tags[name.split("/")[0]] = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
    return tags


def glibc_of(platform):
    """The glibc a manylinux platform tag needs, e.g. (2, 28); None for other platforms."""
    if platform in {f"{legacy}_x86_64" for legacy in LEGACY_MANYLINUX}:
        return LEGACY_MANYLINUX[platform.removesuffix("_x86_64")]
    if platform.startswith("manylinux_") and platform.endswith("_x86_64"):
        major, minor = platform[len("manylinux_"):-len("_x86_64")].split("_")
        return int(major), int(minor)
    return None


def test_the_package_holds_wheels_for_the_lambda_runtime_and_the_pinned_versions(package_dir):
    python_tag = "cp" + RUNTIME.removeprefix("python").replace(".", "")
    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        tags = wheel_tags(archive)
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
    assert extensions, "aiohttp, multidict, yarl … ship compiled modules"
    assert all(f".{python_tag.replace('cp', 'cpython-')}-x86_64-linux-gnu.so" in n or ".abi3.so" in n
               for n in extensions), extensions
    for dist, dist_tags in tags.items():
        for tag in dist_tags:
            interpreter, abi, platform = tag.split("-")
            if platform == "any":
                continue
            assert abi in (python_tag, "abi3") and interpreter.startswith("cp"), (dist, tag)
            glibc = glibc_of(platform)
            assert glibc and glibc <= GLIBC_OF_THE_RUNTIME, f"{dist}: {tag} will not load on the runtime"

    pins = dict(line.split("==") for line in open(os.path.join(ROOT, "requirements.txt")).read().split("\n")
                if "==" in line and not line.startswith("#"))
    shipped = dict(d.removesuffix(".dist-info").lower().replace("_", "-").rsplit("-", 1) for d in tags)
    assert {name: shipped.get(name) for name in pins} == pins


def test_zappa_finds_no_websocket_handler_in_the_project_tree_once_built(package_dir):
    """Zappa walks the folder it runs in for `zappa.websocket` imports (at `package`, `deploy`
    and `update`); Zappa's own handler in a build folder it does not skip would turn on a
    public WebSocket API. The built package's settings must name none either."""
    from zappa.cli import ZappaCLI

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        assert ZappaCLI._detect_websocket_usage() is None
    finally:
        os.chdir(here)
    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        assert b"WEBSOCKET_HANDLER_MODULE" not in archive.read("zappa_settings.py")


def test_every_file_of_the_runtime_requirements_is_in_the_zip(package_dir):
    """Zappa's `exclude` names match at any depth: nothing installed may be left out."""
    site = glob.glob(os.path.join(ROOT, "build", ".lambda-env-dev", "lib", "*", "site-packages"))[0]
    installed = {os.path.relpath(os.path.join(folder, name), site).replace(os.sep, "/")
                 for folder, _, names in os.walk(site) for name in names}
    # Left out on purpose (zappa_settings `exclude_glob`): phonenumbers' geocoding and
    # carrier data, 20 MB the app never reads (its numbering plan and time zones ship).
    left_out = ("bin/", "phonenumbers/geodata/", "phonenumbers/carrierdata/")
    installed = {n for n in installed if not n.startswith(left_out) and "__pycache__" not in n}
    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        shipped = set(archive.namelist())
    assert "twilio/rest/serverless/v1/service/build/__init__.py" in shipped
    # Zappa itself always leaves out *.tar.gz (core.ZIP_EXCLUDES): dateutil's bundled time
    # zones, which nothing here reads (botocore takes only tzutc and tzlocal from dateutil).
    assert sorted(installed - shipped) == ["dateutil/zoneinfo/dateutil-zoneinfo.tar.gz"]


def test_the_numbering_plan_and_its_time_zones_work_from_the_zip_without_the_geodata(package_dir):
    # PYTHONTZPATH empty: zoneinfo may not read the system's zones (a minimal Lambda image
    # may have none), only the tzdata package the zip ships.
    probe = ("import phonenumbers, json\n"
             "from datetime import datetime, timezone as tz\n"
             "from phonenumbers import timezone\n"
             "from callback.domain.customer_clock import customer_clock\n"
             "from callback.domain.dialing import why_not_callable\n"
             "n = phonenumbers.parse('+12125551234')\n"
             "july = datetime(2027, 7, 5, 14, 0, tzinfo=tz.utc)\n"
             "summer = customer_clock('+14155551234').next_opening(july)\n"
             "print(json.dumps([list(timezone.time_zones_for_number(n)), why_not_callable('+19005551234'),\n"
             "                  why_not_callable('+12125551234'), summer.isoformat()]))\n")
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", probe], cwd=package_dir,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir), "PYTHONTZPATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    # 08:00 in San Francisco in July is 15:00 UTC (PDT).
    assert json.loads(run.stdout) == [["America/New_York"], "premium-rate", None, "2027-07-05T15:00:00+00:00"]
    with zipfile.ZipFile(os.path.join(ROOT, "build", "callback-dev.zip")) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.startswith(("phonenumbers/geodata/", "phonenumbers/carrierdata/"))]
    assert "phonenumbers/tzdata/__init__.py" in names


def test_the_fallback_function_answers_from_the_zip_with_no_tables_and_no_secrets(package_dir):
    """The `*-fallback` stages deploy this same package with `callback.web.fallback.app`:
    run from the zip by the runtime's Python, with nothing configured at all."""
    probe = ("import json\n"
             "from callback.web.fallback import app\n"
             "r = app.test_client().post('/', data={'ErrorUrl': 'https://x.example/dev/voice/wait?queue=Sales'})\n"
             "print(json.dumps([r.status_code, r.mimetype, r.get_data(as_text=True)]))\n")
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", probe], cwd=package_dir,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    status, mimetype, body = json.loads(run.stdout.strip().splitlines()[-1])
    assert (status, mimetype) == (200, "text/xml") and "<Enqueue>Sales</Enqueue>" in body


def test_open_hours_work_from_the_zip_without_the_systems_zone_files(package_dir):
    """zoneinfo reads the system's zone files first and the `tzdata` package after them. Amazon
    Linux 2023 images have shipped without /usr/share/zoneinfo (provided.al2023 at its launch),
    so the zip carries the pinned `tzdata`: with no system path at all (PYTHONTZPATH empty), an
    IVR's hours must still resolve, DST included."""
    probe = ("import json, zoneinfo\n"
             "from datetime import datetime, timezone\n"
             "from callback.domain.hours import OpenHours, next_opening\n"
             "assert zoneinfo.TZPATH == ()\n"
             "week = (((540, 1020),),) * 5 + ((), ())\n"
             "friday = datetime(2026, 3, 6, 23, 0, tzinfo=timezone.utc)\n"
             "print(json.dumps([next_opening(OpenHours(weekly=week), friday).isoformat(),\n"
             "                  'America/Los_Angeles' in zoneinfo.available_timezones()]))\n")
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", probe], cwd=package_dir,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir), "PYTHONTZPATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    # Monday 09:00 in New York after the clocks went forward: 13:00 UTC, not 14:00.
    assert json.loads(run.stdout) == ["2026-03-09T13:00:00+00:00", True]


def test_the_shipped_sdk_has_the_models_of_the_services_the_function_calls(package_dir):
    from devtools.lambda_package import SDK_SERVICES

    code = ("import boto3, botocore.exceptions\n"
            f"for name in {SDK_SERVICES!r}:\n"
            "    boto3.client(name, region_name='us-east-1')\n"
            "boto3.resource('s3', region_name='us-east-1')\n"
            "try:\n"
            "    boto3.client('ec2', region_name='us-east-1')\n"
            "except botocore.exceptions.UnknownServiceError:\n"
            "    print('PRUNED')\n")
    run = subprocess.run([RUNTIME_PYTHON, "-S", "-B", "-c", code], cwd=package_dir,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(package_dir),
                              "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "PRUNED"


def get_event(path):
    """An API Gateway proxy GET, as an uptime check sends one."""
    event = api_gateway_event(path, {}, None)
    event.update(httpMethod="GET", body=None)
    event["requestContext"]["httpMethod"] = "GET"
    return event


def test_a_stage_whose_secrets_cannot_be_read_keeps_callers_safe_and_says_so(lambda_env):
    """The remote_env object is missing (a wrong key, or no s3:GetObject): Zappa's handler
    only prints a line and starts the app. No webhook may answer 403 (Twilio would play
    the caller an error), and /health must say what is missing."""
    settings = lambda_env["dir"] / "zappa_settings.py"
    settings.write_text(settings.read_text().replace("/callback/dev.json", "/callback/missing.json"))
    params = {"CallSid": "CA" + "6" * 32, "AccountSid": "AC" + "5" * 32, "From": "+14155550123",
              "To": "+15005550006", "CallStatus": "ringing", "Direction": "inbound"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/voice/incoming", params)
    (incoming, health), logs = invoke(lambda_env, [api_gateway_event("/voice/incoming", params, signature),
                                                   get_event("/health")])

    assert incoming["statusCode"] == 200 and incoming["headers"]["Content-Type"].startswith("text/xml")
    answer = ET.fromstring(incoming["body"])
    assert answer.tag == "Response" and answer.find("Say") is not None and answer.find("Enqueue") is None
    assert health["statusCode"] == 503
    report = json.loads(health["body"])
    assert report["status"] == "misconfigured"
    assert {"TWILIO_AUTH_TOKEN", "SECRET_KEY"} <= set(report["missing"]) and report["webhooks_answered_safe"] == 1
    assert "missing secrets" in logs and "CA" + "6" * 32 in logs
