"""Secrets that fail loudly: what a Lambda deployment cannot work without, one start-up error
naming it, webhooks that answer their safe TwiML (never act, never 403) while they cannot
trust a request, /health, no random SECRET_KEY on Lambda, and secrets from Parameter Store."""
import logging
import socket
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest
from conftest import (
    ADMIN_PASSWORD,
    API_TOKEN,
    AUTH_TOKEN,
    IVR_NUMBER,
    TwilioClient,
    csrf_of,
    moto_server,
    twiml,
    with_admin_account,
)
from test_caller_flow import call_params, wait_url
from werkzeug.serving import make_server

from callback import create_app
from callback.config import PLACEHOLDER_ACCOUNT_SID, REQUIRED_ON_LAMBDA, Config, missing_secrets_message
from callback.domain.records import Ivr, Queue
from callback.storage.client import botocore_session
from callback.storage.parameter_store import (
    ParameterStoreError,
    read_parameters,
    request_path,
    with_parameters,
)
from callback.work import wiring

FUNCTION = "callback-dev"
CALL_SID = "CA" + "d" * 32
ACCOUNT_SID = "AC" + "1" * 32
SECRET_KEY = "test-secret"


@pytest.fixture
def lambda_overrides(config_overrides):
    """A deployed app's configuration: on Lambda, every secret set, the admin account too."""
    return {**with_admin_account(config_overrides), "AWS_LAMBDA_FUNCTION_NAME": FUNCTION}


@pytest.fixture
def make_app(lambda_overrides):
    """Build an app on tables of its own holding the Main Line IVR, from the Lambda
    configuration with some settings changed."""

    def make(**changes):
        prefix = f"t{uuid.uuid4().hex[:10]}-"
        app = create_app({**lambda_overrides, "CALLBACK_TABLE_PREFIX": prefix, **changes})
        app.config["TESTING"] = True
        storage = app.extensions["callback"].storage
        storage.create_tables()
        storage.save_ivr(Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Thanks for calling.",
                             queues=(Queue("Sales", "Main Line", 10, True),)))
        return app

    return make


def errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- the rule: what is required where ------------------------------------------------------

def test_off_lambda_nothing_is_required():
    config = Config(TWILIO_AUTH_TOKEN="", SECRET_KEY="", ADMIN_PASSWORD_HASH="", ADMIN_API_TOKEN="")
    assert config.missing_secrets() == [] and config.disabled_features() == []


@pytest.mark.parametrize("changes, missing", [
    ({}, []),
    ({"TWILIO_AUTH_TOKEN": ""}, ["TWILIO_AUTH_TOKEN"]),
    ({"TWILIO_AUTH_TOKEN": "  "}, ["TWILIO_AUTH_TOKEN"]),
    ({"TWILIO_ACCOUNT_SID": PLACEHOLDER_ACCOUNT_SID}, ["TWILIO_ACCOUNT_SID"]),
    ({"TWILIO_ACCOUNT_SID": ""}, ["TWILIO_ACCOUNT_SID"]),
    ({"SECRET_KEY": ""}, ["SECRET_KEY"]),
    # SharedKeys sign webhooks only when Twilio says so, and never the REST calls.
    ({"TWILIO_AUTH_TOKEN": "", "TWILIO_WEBHOOK_SHARED_KEYS": "webhooks_sharedkey_1:s"},
     ["TWILIO_AUTH_TOKEN"]),
    ({"TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "", "SECRET_KEY": ""}, list(REQUIRED_ON_LAMBDA)),
])
def test_on_lambda_the_account_sid_the_token_and_the_secret_key_are_required(changes, missing):
    config = Config(AWS_LAMBDA_FUNCTION_NAME=FUNCTION, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                    TWILIO_AUTH_TOKEN=AUTH_TOKEN, SECRET_KEY=SECRET_KEY, ADMIN_PASSWORD_HASH="h",
                    ADMIN_API_TOKEN="t").with_overrides(changes)
    assert config.missing_secrets() == missing


def test_the_admin_secrets_only_turn_their_feature_off():
    config = Config(AWS_LAMBDA_FUNCTION_NAME=FUNCTION, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                    TWILIO_AUTH_TOKEN=AUTH_TOKEN, SECRET_KEY=SECRET_KEY)
    assert config.missing_secrets() == []
    assert config.disabled_features() == ["admin sign-in is disabled: ADMIN_PASSWORD_HASH is not set",
                                          "the bootstrap API token is off: ADMIN_API_TOKEN is not set",
                                          "API tokens made in the portal are refused: API_TOKEN_SECRET is not set"]


def test_the_start_up_error_says_what_fails_and_where_to_look():
    both = missing_secrets_message(["TWILIO_AUTH_TOKEN", "SECRET_KEY"])
    assert both.startswith("missing secrets: TWILIO_AUTH_TOKEN, SECRET_KEY — webhooks answer the safe "
                           "TwiML and admin sign-in is refused until they are set")
    assert "remote_env" in both and "kms:Decrypt" in both
    assert "webhooks" not in missing_secrets_message(["SECRET_KEY"])


# -- webhooks while the token is missing -----------------------------------------------------

def test_an_incoming_call_hears_a_polite_goodbye_not_a_403(make_app, caplog, no_scans, twilio_standin):
    app = make_app(TWILIO_AUTH_TOKEN="")
    before = len(no_scans)
    # Twilio signs with the token it has; this app has none to check it with.
    response = TwilioClient(app.test_client()).post("/voice/incoming", call_params(CALL_SID))
    root = twiml(response)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "call again later" in root.find("Say").text
    assert no_scans[before:] == [] and twilio_standin.placed() == [], "the handler must not run"
    assert any(CALL_SID in message and "/voice/incoming" in message and "TWILIO_AUTH_TOKEN" in message
               for message in errors(caplog))
    assert app.test_client().get("/health").get_json()["webhooks_answered_safe"] == 1


def test_a_holding_caller_keeps_holding(make_app, caplog, no_scans):
    app = make_app(TWILIO_AUTH_TOKEN="")
    before = len(no_scans)
    response = TwilioClient(app.test_client()).post_url(
        wait_url(), call_params(CALL_SID, QueueSid="QU" + "0" * 32, QueueTime="30", QueuePosition="1"))
    root = ET.fromstring(response.data)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    # Music and nothing else: when it ends Twilio asks the waitUrl again, the caller still in line.
    assert [child.tag for child in root] == ["Play"]
    assert root.find("Play").text == app.extensions["callback"].config.HOLD_MUSIC_URL
    assert no_scans[before:] == []
    assert any(CALL_SID in message and "/voice/wait" in message for message in errors(caplog))
    assert app.test_client().get("/health").get_json()["webhooks_answered_safe"] == 1


def test_every_voice_webhook_answers_twiml_and_acts_on_nothing(make_app, no_scans, twilio_standin):
    app = make_app(TWILIO_AUTH_TOKEN="")
    client, before = app.test_client(), len(no_scans)
    routes = sorted(rule.rule for rule in app.url_map.iter_rules()
                    if rule.endpoint.startswith("voice.") and "POST" in rule.methods)
    assert len(routes) >= 10
    for route in routes:
        # Unsigned, even forged: nothing it says may be acted on, and nothing is.
        response = client.post(route + "?ivr=Main+Line&queue=Sales", data=call_params(CALL_SID, Digits="1"))
        assert response.status_code == 200 and response.mimetype == "text/xml", route
        assert ET.fromstring(response.data).tag == "Response", route
    assert no_scans[before:] == [] and twilio_standin.placed() == []
    health = client.get("/health").get_json()
    assert health["webhooks_answered_safe"] == len(routes)


def test_off_lambda_a_missing_token_still_refuses_webhooks(config_overrides):
    app = create_app({**config_overrides, "TWILIO_AUTH_TOKEN": ""})
    assert TwilioClient(app.test_client()).post("/voice/incoming", call_params()).status_code == 403
    assert app.test_client().get("/health").get_json() == {"status": "ok"}


# -- /health ---------------------------------------------------------------------------------

def test_health_is_503_naming_what_is_missing_then_200_once_configured(make_app, twilio_standin, no_scans):
    broken = make_app(TWILIO_AUTH_TOKEN="", TWILIO_ACCOUNT_SID=PLACEHOLDER_ACCOUNT_SID)
    client = broken.test_client()
    assert client.get("/health").get_json()["webhooks_answered_safe"] == 0
    TwilioClient(client).post("/voice/incoming", call_params(CALL_SID))
    before = len(no_scans)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "misconfigured",
                                   "missing": ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
                                   "webhooks_answered_safe": 1}
    assert no_scans[before:] == [], "the health check reads no table"
    body = response.get_data(as_text=True)
    assert SECRET_KEY not in body and API_TOKEN not in body

    fixed = make_app().test_client().get("/health")
    assert fixed.status_code == 200 and fixed.get_json() == {"status": "ok"}


def test_health_carries_the_security_headers_and_no_cache(make_app):
    response = make_app(TWILIO_AUTH_TOKEN="").test_client().get("/health", base_url="https://callback.example.com")
    assert response.status_code == 503 and response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_health_needs_no_cookie_and_takes_only_get(make_app):
    client = make_app().test_client()
    assert client.get("/health").status_code == 200
    # Not a CSRF refusal (400): there is simply nothing to post.
    assert client.post("/health").status_code == 405


def test_health_warns_when_admin_sign_in_or_the_api_is_off(make_app, caplog):
    app = make_app(ADMIN_PASSWORD_HASH="", ADMIN_API_TOKEN="", API_TOKEN_SECRET="")
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "warnings": [
        "admin sign-in is disabled: ADMIN_PASSWORD_HASH is not set",
        "the bootstrap API token is off: ADMIN_API_TOKEN is not set",
        "API tokens made in the portal are refused: API_TOKEN_SECRET is not set"]}
    assert errors(caplog) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == response.get_json()["warnings"]


def test_one_error_at_start_up_names_the_missing_secrets_and_no_value(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(TWILIO_AUTH_TOKEN="", SECRET_KEY="")
    TwilioClient(app.test_client()).post("/voice/incoming", call_params(CALL_SID))
    app.test_client().get("/health")
    start_up, webhook = errors(caplog)
    assert start_up.startswith("missing secrets: TWILIO_AUTH_TOKEN, SECRET_KEY — ")
    assert CALL_SID in webhook
    config = app.extensions["callback"].config
    for value in (config.ADMIN_PASSWORD_HASH, config.ADMIN_API_TOKEN, AUTH_TOKEN):
        assert value not in caplog.text


# -- SECRET_KEY ---------------------------------------------------------------------------

def test_on_lambda_a_missing_secret_key_is_not_replaced_by_a_random_one(make_app, caplog):
    app = make_app(SECRET_KEY="")
    assert app.secret_key is None and app.config["SECRET_KEY"] is None
    assert any("SECRET_KEY" in message and "admin sign-in is refused" in message
               for message in errors(caplog))
    assert app.test_client().get("/health").get_json()["missing"] == ["SECRET_KEY"]


def test_without_a_secret_key_the_portal_refuses_sign_in_clearly(make_app):
    app = make_app(SECRET_KEY="")
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "SECRET_KEY" in page.get_data(as_text=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    # The right password, no CSRF token to be had: refused the same way, not a 400 or a 500.
    answer = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 503 and "Set-Cookie" not in answer.headers
    for path in ("/", "/admin/ivrs", "/admin/dashboard"):
        assert client.get(path).status_code == 503, path
    assert client.post("/logout").status_code == 503


def test_without_a_secret_key_webhooks_and_the_api_still_work(make_app):
    app = make_app(SECRET_KEY="")
    answer = TwilioClient(app.test_client()).post("/voice/incoming", call_params(CALL_SID))
    assert twiml(answer).find("Enqueue") is not None
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert app.test_client().get("/api/ivrs", headers=auth).status_code == 200
    paging = app.test_client().get("/api/callbacks", headers=auth)
    assert paging.status_code == 503 and "SECRET_KEY" in paging.get_json()["error"]


def test_off_lambda_a_missing_secret_key_is_still_a_random_one(config_overrides):
    first = create_app({**config_overrides, "SECRET_KEY": ""})
    second = create_app({**config_overrides, "SECRET_KEY": ""})
    assert first.secret_key and second.secret_key and first.secret_key != second.secret_key
    page = first.test_client().get("/login")
    assert page.status_code == 200 and csrf_of(page.get_data(as_text=True))


# -- Parameter Store --------------------------------------------------------------------------

SSM_SECRETS = {"TWILIO_ACCOUNT_SID": "AC" + "7" * 32, "TWILIO_AUTH_TOKEN": "ssm-auth-token-0123456789",
               "SECRET_KEY": "ssm-secret-key-0123456789", "ADMIN_API_TOKEN": "ssm-api-token-0123456789",
               "ADMIN_PASSWORD_HASH": "scrypt:32768:8:1$ssm-salt$0123456789abcdef"}


@pytest.fixture(scope="module")
def ssm_endpoint():
    """moto's server over HTTP on a free loopback port (SSM and KMS)."""
    with moto_server() as url:
        yield url


@pytest.fixture
def ssm_path(ssm_endpoint):
    """A fresh path holding the five secrets as SecureStrings (one under a customer-managed
    KMS key), ten parameters no setting is named for, and one a level deeper."""
    session = botocore_session()
    ssm = session.create_client("ssm", "us-east-1", endpoint_url=ssm_endpoint)
    kms = session.create_client("kms", "us-east-1", endpoint_url=ssm_endpoint)
    key = kms.create_key(Description="callback secrets")["KeyMetadata"]["KeyId"]
    path = f"/callback/t{uuid.uuid4().hex[:8]}"
    # The fillers go first, so the secrets come on the second page (ten a page at most).
    for i in range(10):
        ssm.put_parameter(Name=f"{path}/UNUSED_{i:02d}", Value=f"filler-{i}", Type="String")
    for name, value in SSM_SECRETS.items():
        extra = {"KeyId": key} if name == "TWILIO_AUTH_TOKEN" else {}
        ssm.put_parameter(Name=f"{path}/{name}", Value=value, Type="SecureString", **extra)
    ssm.put_parameter(Name=f"{path}/nested/SECRET_KEY", Value="not-this-one", Type="SecureString")
    return path + "/"


@pytest.fixture
def ssm_overrides(lambda_overrides, ssm_path, ssm_endpoint):
    """The Lambda configuration with no secrets of its own, and the path to read them from."""
    overrides = {k: v for k, v in lambda_overrides.items() if k not in SSM_SECRETS}
    return {**overrides, "CALLBACK_SECRETS_SSM_PATH": ssm_path, "AWS_ENDPOINT_URL_SSM": ssm_endpoint}


def test_the_path_is_sent_without_its_trailing_slash_as_the_iam_resource_names_it():
    assert request_path("/callback/dev/") == "/callback/dev"
    assert request_path("/callback/dev") == "/callback/dev"
    assert request_path("/") == "/"


def test_every_parameter_under_the_path_decrypted_across_pages(ssm_path, ssm_endpoint):
    sent = []

    def record(params, **_):
        sent.append(dict(params))

    session = botocore_session()
    session.register("provide-client-params.ssm.GetParametersByPath", record)
    try:
        found = read_parameters(ssm_path, "us-east-1", ssm_endpoint)
    finally:
        session.unregister("provide-client-params.ssm.GetParametersByPath", record)
    assert {name: found[name] for name in SSM_SECRETS} == SSM_SECRETS, "SecureStrings come decrypted"
    assert len(found) == 15 and "nested" not in found and found["SECRET_KEY"] != "not-this-one"
    assert len(sent) == 2, "15 parameters are two pages"
    assert all(p["Path"] == ssm_path.rstrip("/") and p["WithDecryption"] and p["Recursive"] is False
               for p in sent)


def test_a_deployment_takes_its_secrets_from_parameter_store(ssm_overrides, caplog, no_scans):
    caplog.set_level(logging.DEBUG)
    app = create_app(ssm_overrides)
    app.extensions["callback"].storage.create_tables()
    app.extensions["callback"].storage.save_ivr(
        Ivr("Main Line", numbers=(IVR_NUMBER,), queues=(Queue("Sales", "Main Line", 10, True),)))
    config = app.extensions["callback"].config
    assert {name: getattr(config, name) for name in SSM_SECRETS} == SSM_SECRETS
    assert app.secret_key == SSM_SECRETS["SECRET_KEY"]
    client = app.test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    signed = TwilioClient(client, token=SSM_SECRETS["TWILIO_AUTH_TOKEN"])
    assert twiml(signed.post("/voice/incoming", call_params(CALL_SID))).find("Enqueue") is not None
    assert TwilioClient(client).post("/voice/incoming", call_params(CALL_SID)).status_code == 403
    assert any("UNUSED_00" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert any("filled in ADMIN_API_TOKEN, ADMIN_PASSWORD_HASH, SECRET_KEY, TWILIO_ACCOUNT_SID, "
               "TWILIO_AUTH_TOKEN" in r.getMessage() for r in caplog.records)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for name, value in SSM_SECRETS.items():
        if name != "TWILIO_ACCOUNT_SID":
            assert value not in logged, f"the value of {name} reached the logs"


def test_the_environment_and_overrides_win_over_parameter_store(ssm_path, ssm_endpoint):
    environ = {"CALLBACK_SECRETS_SSM_PATH": ssm_path, "AWS_ENDPOINT_URL_SSM": ssm_endpoint,
               "TWILIO_AUTH_TOKEN": "from-the-environment", "SECRET_KEY": "", "LOG_LEVEL": "INFO"}
    overrides = {"ADMIN_API_TOKEN": "from-an-override"}
    config = with_parameters(Config.from_env(environ, **overrides), overrides, environ)
    assert config.TWILIO_AUTH_TOKEN == "from-the-environment"
    assert config.SECRET_KEY == SSM_SECRETS["SECRET_KEY"], "an empty value counts as unset"
    assert config.ADMIN_API_TOKEN == "from-an-override"
    assert config.TWILIO_ACCOUNT_SID == SSM_SECRETS["TWILIO_ACCOUNT_SID"]
    assert config.CALLBACK_SECRETS_SSM_PATH == ssm_path


def test_the_sweep_and_dispatch_read_parameter_store_too(ssm_path, ssm_endpoint, monkeypatch):
    monkeypatch.setenv("CALLBACK_SECRETS_SSM_PATH", ssm_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", ssm_endpoint)
    for name in SSM_SECRETS:
        monkeypatch.delenv(name, raising=False)
    config = wiring._services_from_env({"DISPATCH_RUNNER": "inline"}).config
    assert config.TWILIO_AUTH_TOKEN == SSM_SECRETS["TWILIO_AUTH_TOKEN"]
    assert config.TWILIO_ACCOUNT_SID == SSM_SECRETS["TWILIO_ACCOUNT_SID"]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeSsm:
    """An SSM endpoint that answers with the errors AWS gives (JSON 1.1, as botocore reads them)."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), 0
        self.server = make_server("127.0.0.1", 0, self.wsgi)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def wsgi(self, environ, start_response):
        self.requests += 1
        status, body = self.answers.pop(0) if self.answers else ("200 OK", b'{"Parameters": []}')
        start_response(status, [("Content-Type", "application/x-amz-json-1.1")])
        return [body]


DENIED = ("400 Bad Request", b'{"__type": "AccessDeniedException", "message": "User: '
          b'arn:aws:sts::123456789012:assumed-role/callback-dev-lambda/callback-dev '
          b'is not authorized to perform: '
          b'ssm:GetParametersByPath on resource: arn:aws:ssm:us-east-1:123456789012:parameter/callback/dev"}')
THROTTLED = ("400 Bad Request", b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')


def test_a_denied_read_is_one_clear_error_and_the_app_starts_without_the_secrets(lambda_overrides, caplog,
                                                                                  no_scans):
    ssm = FakeSsm(DENIED)
    overrides = {k: v for k, v in lambda_overrides.items() if k not in SSM_SECRETS}
    app = create_app({**overrides, "CALLBACK_SECRETS_SSM_PATH": "/callback/dev/",
                      "AWS_ENDPOINT_URL_SSM": ssm.url})
    ssm.server.shutdown()
    assert ssm.requests == 1, "access denied is not retried"
    [denied, missing] = errors(caplog)
    assert denied.startswith("could not read secrets from SSM Parameter Store path /callback/dev: "
                             "AccessDeniedException: ")
    assert "kms:Decrypt" in denied
    assert missing.startswith("missing secrets: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SECRET_KEY — ")
    client = app.test_client()
    assert client.get("/health").status_code == 503
    answer = twiml(client.post("/voice/incoming", data=call_params(CALL_SID)))
    assert [child.tag for child in answer] == ["Say", "Hangup"]


@pytest.mark.parametrize("endpoint, error", [("closed port", "EndpointConnectionError"),
                                             ("not a url", "Invalid endpoint")])
def test_an_unreachable_parameter_store_is_one_error_and_the_app_starts(lambda_overrides, caplog, endpoint,
                                                                        error):
    overrides = {k: v for k, v in lambda_overrides.items() if k not in SSM_SECRETS}
    url = f"http://127.0.0.1:{closed_port()}" if endpoint == "closed port" else endpoint
    app = create_app({**overrides, "CALLBACK_SECRETS_SSM_PATH": "/callback/dev", "AWS_ENDPOINT_URL_SSM": url})
    assert error in errors(caplog)[0] and len(errors(caplog)) == 2
    assert app.test_client().get("/health").get_json()["missing"] == list(REQUIRED_ON_LAMBDA)


def test_a_throttled_read_is_tried_once_more_and_no_more():
    once = FakeSsm(THROTTLED)
    assert read_parameters("/callback/dev", "us-east-1", once.url) == {} and once.requests == 2
    twice = FakeSsm(THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(ParameterStoreError, match="ThrottlingException"):
        read_parameters("/callback/dev", "us-east-1", twice.url)
    assert twice.requests == 2
    once.server.shutdown()
    twice.server.shutdown()


def test_without_a_path_parameter_store_is_not_asked(lambda_overrides, monkeypatch):
    import callback.storage.parameter_store as parameter_store

    def refuse(*args, **kwargs):
        raise AssertionError("Parameter Store was asked")

    monkeypatch.setattr(parameter_store, "read_parameters", refuse)
    assert create_app(lambda_overrides).extensions["callback"].config.TWILIO_AUTH_TOKEN == AUTH_TOKEN
