"""Fixtures: a real DynamoDB endpoint (Amazon's DynamoDB Local), the Twilio stand-in over
HTTP, a controlled clock, the app, and a client that signs requests like Twilio does."""
import os
import re
import shutil
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, settings
from twilio.request_validator import RequestValidator
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from callback import create_app
from callback.clock import FixedClock
from callback.domain import transitions
from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings
from devtools import dynamodb_local
from devtools.standin import StandInServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# CI must not turn red by chance: there Hypothesis derives its examples from each test's
# name (derandomize) and keeps no example database. Locally it explores new examples every
# run and remembers failures in .hypothesis/. HYPOTHESIS_PROFILE picks one by hand.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://callback.example.com/dev"
IVR_NUMBER = "+15005550006"
API_TOKEN = "api-token-for-tests"
ADMIN_PASSWORD = "correct horse battery staple"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session", autouse=True)
def aws_credentials():
    """Fake credentials, so nothing can ever reach a real AWS account."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[key] = value


def cancel_callback(storage, callback_id, now):
    """Cancel a pending callback by id as the API does: read it, commit the domain's change,
    read it again."""
    cb = storage.get_callback(callback_id)
    storage.commit(cb, transitions.cancel(cb, now))
    return storage.get_callback(callback_id)


def pytest_report_header(config):
    """Say which DynamoDB engine the storage, dispatch, race and fault tests run on."""
    return f"dynamodb engine: {dynamodb_local.describe()}"


@pytest.fixture(scope="session")
def dynamodb_endpoint(aws_credentials):
    """Amazon's DynamoDB Local over real HTTP on a free loopback port, one per session;
    each test keeps to its own tables through its own prefix (config_overrides)."""
    yield from serve_dynamodb_local()


def serve_dynamodb_local():
    """Run a DynamoDB Local for a fixture: yields its URL, stops it afterwards; a test that
    needs it fails with the reason when it cannot start (never a silent skip)."""
    server = dynamodb_local.DynamoDBLocal()
    try:
        server.start()
    except dynamodb_local.Unavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server.url
    server.stop()


@contextmanager
def moto_server():
    """moto's AWS over HTTP on a free loopback port; yields its URL. moto keeps its
    accounts in the process, shared by every server it starts."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lambda_zip():
    """`make package`: the dev stage's Lambda zip, built once per test session."""
    build = subprocess.run(["make", "package"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return os.path.join(ROOT, "build", "callback-dev.zip")


@pytest.fixture(scope="session")
def standin_server():
    """The Twilio REST stand-in over real HTTP on loopback."""
    server = StandInServer().start()
    yield server
    server.stop()


@pytest.fixture
def twilio_standin(standin_server, clock):
    """The stand-in's state, reset for each test, keeping the test's time as Twilio keeps the
    real time: the app's "calls placed since this attempt began" compares the two."""
    standin = standin_server.standin
    standin.reset()
    standin.clock = clock
    yield standin
    # A request the test let time out is still being served: it ends here, not in the next
    # test (a delayed create places its call when it wakes, into whatever test runs then).
    assert standin.wait_idle(timeout=60), "the Twilio stand-in is still serving a request"


@pytest.fixture
def clock():
    """A clock the test moves by hand."""
    return FixedClock()


@pytest.fixture
def config_overrides(dynamodb_endpoint, standin_server, clock):
    """Configuration of one test's app: its own tables, the stand-in, the fixed clock."""
    return {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": standin_server.url,
        "PUBLIC_BASE_URL": PUBLIC,
        "CALLBACK_TABLE_PREFIX": f"t{uuid.uuid4().hex[:10]}-",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        # A shared 2-core test machine is slower than DynamoDB; production keeps 2 s.
        "DYNAMODB_TIMEOUT_SECONDS": 20,
        "ADMIN_API_TOKEN": API_TOKEN,
        "API_TOKEN_SECRET": "test-api-token-secret",
        "SECRET_KEY": "test-secret",
        "SESSION_COOKIE_SECURE": False,
        "CONFIG_CACHE_SECONDS": 0,
        # Dispatch in the request, so a test sees its effects when the webhook returns.
        "DISPATCH_RUNNER": "inline",
        "clock": clock,
    }


@pytest.fixture
def app(config_overrides):
    """The app on fresh tables."""
    app = create_app(config_overrides)
    app.config["TESTING"] = True
    app.extensions["callback"].storage.create_tables()
    return app


@pytest.fixture
def svc(app):
    """The app's services (storage, dispatcher, clock…)."""
    return app.extensions["callback"]


@pytest.fixture
def main_line(svc):
    """IVR 'Main Line' with queues Sales (priority 10) and Support (priority 5).

    Its customers' legs use synchronous detection (their Url answers with the verdict): the
    journeys written against it step through that webhook. Asynchronous detection, the
    default, has journeys of its own (test_async_detection.py)."""
    ivr = Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Thanks for calling Example Co.",
              queues=(Queue("Sales", "Main Line", 10, True), Queue("Support", "Main Line", 5, True)),
              settings=CallbackSettings(machine_detection="sync"))
    return svc.storage.save_ivr(ivr)


@pytest.fixture
def client(app):
    """A test client of the app (a browser without JavaScript)."""
    return app.test_client()


def with_admin_account(overrides, password=ADMIN_PASSWORD):
    """The configuration plus the admin account: user "admin" with `password`."""
    return {**overrides, "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD_HASH": generate_password_hash(password)}


def csrf_of(html):
    """The CSRF token of the page's form; fails the test when there is none."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def log_in(client, password=ADMIN_PASSWORD, username="admin", environ_base=None, **extra):
    """Sign in through the login form as a browser does: its CSRF token, then the POST."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       **extra}, environ_base=environ_base or {})


@pytest.fixture
def live_server(app):
    """The app over real HTTP on a free loopback port, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def page(live_server):
    """A page of Debian's headless Chromium, driven by Playwright, on the live app (Playwright's
    own browser download cannot work offline); the test skips, saying why, without one."""
    if not CHROMIUM:
        pytest.skip("no chromium on this machine and it could not be installed (make test tries apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(base_url=live_server)
        page.set_default_timeout(15_000)
        yield page
        browser.close()


class TwilioClient:
    """Sends webhooks exactly as Twilio does: form POST, signed over the public URL."""

    def __init__(self, client, token=AUTH_TOKEN):
        self.client = client
        self.validator = RequestValidator(token)

    def post(self, path, params=None, query=None, signature=None, url=None):
        params = {k: v for k, v in (params or {}).items() if v is not None}
        qs = ("?" + urlencode(query)) if query else ""
        public = url or PUBLIC + path + qs
        if signature is None:
            signature = self.validator.compute_signature(public, params)
        headers = {"X-Twilio-Signature": signature} if signature else {}
        return self.client.post(path + qs, data=params, headers=headers)

    def post_url(self, absolute_url, params=None):
        """POST to a URL the app handed to Twilio (absolute, public)."""
        assert absolute_url.startswith(PUBLIC), absolute_url
        rest = absolute_url[len(PUBLIC):]
        path, _, qs = rest.partition("?")
        params = {k: v for k, v in (params or {}).items() if v is not None}
        signature = self.validator.compute_signature(absolute_url, params)
        return self.client.post(path + ("?" + qs if qs else ""), data=params,
                                headers={"X-Twilio-Signature": signature})


@pytest.fixture
def twilio(app):
    """A Twilio-like webhook client for the app."""
    return TwilioClient(app.test_client())


def twiml(response):
    """Parse a TwiML answer; fails the test unless it is 200 text/xml with <Response>."""
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def said(root):
    """All the text the caller hears, joined."""
    return " ".join((e.text or "") for e in root.iter("Say"))


@pytest.fixture(autouse=True)
def no_scans(monkeypatch):
    """Fail any test whose code path asks DynamoDB for a Scan: access is keyed or indexed."""
    from pynamodb.connection.base import Connection

    real = Connection._make_api_call
    operations = []

    def spy(self, operation_name, operation_kwargs):
        assert operation_name != "Scan", f"Scan on {operation_kwargs.get('TableName')}"
        operations.append(operation_name)
        return real(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", spy)
    return operations
