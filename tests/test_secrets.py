"""Secrets that fail loudly: what a Lambda deployment cannot work without, one start-up error
naming it, webhooks that answer their safe TwiML (never act, never 403) while they cannot
trust a request, /health, and no random SECRET_KEY on Lambda."""
import logging
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
    twiml,
    with_admin_account,
)
from test_caller_flow import call_params, wait_url

from callback import create_app
from callback.config import PLACEHOLDER_ACCOUNT_SID, REQUIRED_ON_LAMBDA, Config, missing_secrets_message
from callback.domain.records import Ivr, Queue

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
                                          "the JSON API refuses every request: ADMIN_API_TOKEN is not set"]


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
    response = make_app(ADMIN_PASSWORD_HASH="", ADMIN_API_TOKEN="").test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "warnings": [
        "admin sign-in is disabled: ADMIN_PASSWORD_HASH is not set",
        "the JSON API refuses every request: ADMIN_API_TOKEN is not set"]}
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
