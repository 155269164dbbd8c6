"""Hostile input, generated: nothing answers 500, nothing corrupts stored state."""
import json
import logging
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from conftest import API_TOKEN, AUTH_TOKEN, IVR_NUMBER, PUBLIC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callback.domain import records as m
from callback.domain.settings import CallbackSettings, validate_settings
from callback.web.api import MAX_BODY_BYTES

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

junk_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789*#+ ", max_size=30),
    st.sampled_from(["", "1", "2125551234", "12125551234", "\x00", "' OR 1=1 --", "<Say>hi</Say>",
                     "%s%n", "../../etc", "9" * 5000, "☎" * 100]),
)
WEBHOOKS = [
    "/voice/incoming", "/voice/menu?ivr=Main+Line&attempt=1", "/voice/wait?ivr=Main+Line&queue=Sales",
    "/voice/wait?ivr=Main+Line&queue=Sales&offer=off&record=retry", "/voice/offer?ivr=Main+Line&queue=Sales",
    "/voice/number?ivr=Main+Line&queue=Sales&attempt=2", "/voice/enqueue-done?ivr=Main+Line&queue=Sales",
    "/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&entry=x", "/voice/confirm?ivr=Main+Line&queue=Sales",
    "/voice/agent/answer?kind=callback&key=CA1&attempt=x&agent=alice", "/voice/agent/status?kind=call&key=CA1",
    "/voice/customer/answer?callback=CA1&attempt=x", "/voice/customer/status?callback=CA1&attempt=x",
    "/voice/conference?callback=CA1&attempt=x", "/voice/caller/join?conference=call-CA1",
    "/voice/notice?message=retry", "/voice/menu?ivr=%00&attempt=99999999999",
    "/voice/wait?ivr=Nope&queue=%F0%9F%92%A3",
]
PARAM_NAMES = ["CallSid", "From", "To", "Digits", "QueueTime", "QueueResult", "CallStatus",
               "AnsweredBy", "StatusCallbackEvent", "FriendlyName", "kind", "Junk"]


@FAST
@given(path=st.sampled_from(WEBHOOKS),
       params=st.dictionaries(st.sampled_from(PARAM_NAMES), junk_text, max_size=8))
def test_no_signed_webhook_answers_anything_but_twiml(twilio, main_line, svc, path, params):
    response = twilio.post_url(PUBLIC + path, params)
    assert response.status_code == 200, (path, params, response.data[:300])
    assert ET.fromstring(response.data).tag == "Response"


# What an HTTP header can carry: visible ASCII, space and tab (RFC 9110 field-value). A
# newline cannot travel in a header at all; the test below sends one on purpose, through
# the WSGI environ, which is where a broken proxy could put it.
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"),
                       max_size=60)


@FAST
@given(path=st.sampled_from(WEBHOOKS), params=st.dictionaries(st.sampled_from(PARAM_NAMES), junk_text),
       signature=st.one_of(st.none(), header_value))
def test_unsigned_or_forged_webhooks_are_refused(twilio, main_line, path, params, signature):
    response = twilio.post(path.split("?")[0], params, signature=signature or "")
    assert response.status_code == 403


@pytest.mark.parametrize("signature", ["\r\n", "abc\nX-Injected: 1", "\x00", "é" * 20])
def test_a_signature_no_header_could_carry_is_refused(app, main_line, signature):
    response = app.test_client().post("/voice/incoming", data={"CallSid": "CA1"},
                                      environ_overrides={"HTTP_X_TWILIO_SIGNATURE": signature})
    assert response.status_code == 403


settings_values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=True),
                            junk_text, st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                              st.integers(), max_size=1))
SETTING_NAMES = ["callback_enabled", "offer_after_seconds", "expiration_minutes", "max_retries", "priority",
                 "retry_minutes", "transfer_timeout_seconds", "entry_attempts", "slot_capacity", "offer_caller_id",
                 "announce_as", "voice", "language", "machine_detection", "bogus"]


@FAST
@given(body=st.dictionaries(st.sampled_from(SETTING_NAMES), settings_values, max_size=6))
def test_settings_api_stores_only_valid_settings(app, svc, main_line, body):
    client = app.test_client()
    data = json.dumps(body, allow_nan=True)
    response = client.put("/api/ivrs/Main%20Line/settings", data=data,
                          content_type="application/json", headers={"Authorization": f"Bearer {API_TOKEN}"})
    # Junk can add up to more than the API reads: that body is refused whole, as too large.
    answers = (413,) if len(data.encode()) > MAX_BODY_BYTES else (200, 400)
    assert response.status_code in answers and response.is_json
    stored = svc.storage.get_ivr("Main Line").settings
    again, errors = validate_settings(stored.as_dict())
    assert not errors and again == stored


@FAST
@given(body=st.dictionaries(st.sampled_from(["id", "name", "phone", "queues", "ivr", "priority",
                                             "callback_enabled", "status"]), settings_values, max_size=5),
       path=st.sampled_from(["/api/agents", "/api/queues"]))
def test_api_creation_never_fails_with_500(app, main_line, body, path):
    response = app.test_client().post(path, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code in (201, 400, 404, 409) and response.is_json


@FAST
@given(form=st.dictionaries(st.sampled_from(SETTING_NAMES), junk_text, max_size=8))
def test_settings_validation_is_total(form):
    result, errors = validate_settings(form, CallbackSettings(), checkbox_form=True)
    assert (result is None) == bool(errors)


def accept(twilio, agent_leg):
    """The agent answers, presses 1 after the whisper and is in the conference."""
    whisper = ET.fromstring(twilio.post_url(agent_leg.url, {"CallSid": agent_leg.sid}).data)
    joining = ET.fromstring(twilio.post_url(whisper.find("Gather").get("action"),
                                            {"CallSid": agent_leg.sid, "Digits": "1"}).data)
    conference = joining.find("Dial/Conference")
    twilio.post_url(conference.get("statusCallback"), {
        "StatusCallbackEvent": "participant-join", "FriendlyName": conference.text,
        "ConferenceSid": "CF" + "0" * 32, "CallSid": agent_leg.sid})


def test_no_phone_number_or_secret_reaches_the_logs(twilio, svc, clock, main_line, twilio_standin, caplog):
    """A whole journey, logged at DEBUG: the caller's and customer's numbers and the
    secrets never appear."""
    caplog.set_level(logging.DEBUG)
    caller, customer = "+14155550123", "2125551234"
    base = {"CallSid": "CA" + "3" * 32, "From": caller, "To": IVR_NUMBER}
    twilio.post("/voice/incoming", base)
    twilio.post_url(f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1", {**base, "Digits": "1"})
    confirm = twilio.post_url(f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
                              {**base, "Digits": customer})
    twilio.post_url(ET.fromstring(confirm.data).find("Gather").get("action"), {**base, "Digits": "1"})
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                   now=clock.now(), create=True)
    svc.storage.set_agent_presence("alice", "available", clock.now())
    svc.dispatcher.dispatch()
    agent_leg = twilio_standin.placed(to="+14155550101")[0]
    accept(twilio, agent_leg)
    customer_leg = twilio_standin.placed(to="+1" + customer)[0]
    twilio.post_url(customer_leg.status_callback, {"CallSid": customer_leg.sid, "CallStatus": "busy",
                                                   "To": "+1" + customer})
    for model in svc.storage.models:
        model.delete_table()
    twilio.post_url(f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1", {**base, "Digits": customer})

    text = caplog.text
    assert "callback" in text.lower(), "nothing was logged: this test would prove nothing"
    for secret in (caller, caller[2:], customer, "+1" + customer, "4155550101", AUTH_TOKEN, API_TOKEN):
        assert secret not in text


def test_repeated_status_storms_leave_a_consistent_callback(twilio, svc, clock, main_line, twilio_standin):
    now = clock.now()
    svc.storage.create_callback(m.Callback("CA1", "+12125551234", "Main Line", "Sales", now, now, 10, now,
                                           now + timedelta(hours=1)), "CA1")
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"], now=now,
                                   create=True)
    svc.storage.set_agent_presence("alice", "available", now)
    svc.dispatcher.dispatch()
    agent_leg = twilio_standin.placed()[0]
    accept(twilio, agent_leg)
    customer_leg = twilio_standin.placed(to="+12125551234")[0]
    for status in ["no-answer", "completed", "busy", "in-progress", "no-answer", "failed", "canceled"] * 3:
        twilio.post_url(customer_leg.status_callback, {"CallSid": customer_leg.sid, "CallStatus": status})
    cb = svc.storage.get_callback("CA1")
    assert (cb.status, cb.attempts) == ("pending", 1)
    assert [a.outcome for a in cb.history] == ["no-answer"]


@pytest.mark.parametrize("size", [70_000, 1_000_000])
def test_oversized_bodies_are_refused_without_a_500(twilio, main_line, size):
    response = twilio.post("/voice/incoming", {"CallSid": "CA1", "Junk": "x" * size})
    assert response.status_code in (403, 413)


FORM_FIELDS = SETTING_NAMES + ["name", "numbers", "greeting", "queue_rows", "queue_name_0", "queue_priority_0",
                               "queue_callback_0", "id", "phone", "queues", "status"]


@pytest.fixture
def config_overrides(config_overrides):
    from werkzeug.security import generate_password_hash

    return {**config_overrides, "ADMIN_PASSWORD_HASH": generate_password_hash("pw")}


@pytest.fixture
def admin_client(app, main_line):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": "pw", "csrf_token": token})
    client.csrf = token
    return client


@FAST
@given(form=st.dictionaries(st.sampled_from(FORM_FIELDS), junk_text, max_size=10),
       url=st.sampled_from(["/admin/ivrs/Main%20Line/settings", "/admin/ivrs/new", "/admin/ivrs/Main%20Line/edit",
                            "/admin/agents/new", "/admin/agents/nobody/status", "/admin/callbacks/CA1/cancel"]))
def test_admin_forms_answer_junk_with_a_page_and_store_only_valid_data(admin_client, svc, form, url):
    response = admin_client.post(url, data={**form, "csrf_token": admin_client.csrf})
    assert response.status_code in (200, 302, 400, 404), (url, form, response.status_code)
    for ivr in svc.storage.list_ivrs():
        assert not validate_settings(ivr.settings.as_dict())[1]
        assert ivr.numbers and all(n.startswith("+") for n in ivr.numbers) and ivr.queues
