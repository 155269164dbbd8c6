"""The customer's own clock, end to end: a callback is dialed only inside the customer's
calling window in their local time, waits for it with its place in line, and is checked
again at the moment of dialing. Signed webhooks on DynamoDB Local, the Twilio stand-in.

The test clock starts at 15:00 UTC on a Monday in January: 10:00 in New York (the IVR's
zone), 07:00 in San Francisco.
"""
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from conftest import PUBLIC, log_in, twiml, with_admin_account
from test_caller_flow import call_params, enqueue_caller, enter_and_confirm
from test_dispatch import (  # noqa: F401  (fixtures)
    ALICE,
    CUSTOMER,
    agent_accepts,
    agents,
    answer,
    api,
    conference_event,
    press,
    ringing,
    store_callback,
)

from callback.domain import records as m
from callback.domain.estimate import Estimate, ExpectedCall
from callback.web import twiml as twiml_documents
from callback.work.sweep import sweep_once

PACIFIC = "+14155550188"


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)
CALLER_SID = "CA" + "a" * 32


def said_lines(root):
    return [say.text for say in root.iter("Say")]


def ask_for_a_callback(twilio, digits):
    """A caller holds, asks for a callback to `digits`, and hears what comes next."""
    enqueue_caller(twilio)
    enter_and_confirm(twilio, digits)
    return twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="leave")))


def test_a_pacific_customer_is_not_rung_before_8_their_time_then_rung_once_it_opens(
        twilio, svc, clock, agents, api, twilio_standin, client):  # noqa: F811
    start = clock.now()
    done = ask_for_a_callback(twilio, PACIFIC[2:])
    assert ("It is outside our calling hours where you are, so we will call you after 8 a.m. your time."
            in said_lines(done))
    cb = svc.storage.get_callback(CALLER_SID)
    # Due at 08:00 in San Francisco (16:00 UTC), its place in line kept; Expiration Time
    # counts from then.
    assert cb.due_at == start + timedelta(hours=1)
    expiration = svc.directory.ivr("Main Line").settings.expiration_minutes
    assert cb.expires_at == cb.due_at + timedelta(minutes=expiration)
    assert cb.place_in_line <= start

    assert api.status("alice", "available").status_code == 200
    clock.advance(minutes=30)
    assert sweep_once(svc).offers == 0
    assert not twilio_standin.placed(to=ALICE) and not twilio_standin.placed(to=PACIFIC)
    assert log_in(client).status_code == 302
    page = client.get(f"/admin/callbacks/{CALLER_SID}").get_data(as_text=True)
    assert "Outside the customer&#39;s hours (their time 07:30)" in page
    listing = client.get("/admin/callbacks").get_data(as_text=True)
    assert "waits, outside the customer&#39;s hours (their time 07:30)" in listing

    clock.advance(minutes=30)  # 08:00 in San Francisco
    assert sweep_once(svc).offers == 1
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    assert ringing(twilio_standin, PACIFIC)
    assert svc.storage.get_callback(CALLER_SID).status == m.DIALING
    assert "waits" not in client.get("/admin/callbacks").get_data(as_text=True)


def test_a_due_callback_outside_its_window_waits_and_the_next_in_line_is_served(
        svc, clock, agents, api, twilio_standin):  # noqa: F811
    """A callback stored due now (as before this rule) whose customer's window is closed is
    moved to the window's opening by dispatch, keeping its place; the next one is served."""
    pacific = store_callback(svc, clock, call_sid="CA" + "1" * 32, number=PACIFIC, joined_minutes_ago=10)
    store_callback(svc, clock, call_sid="CA" + "2" * 32, number=CUSTOMER, joined_minutes_ago=5)
    before = svc.storage.get_callback(pacific)
    api.status("alice", "available")
    assert ringing(twilio_standin, ALICE).url.count("CA" + "2" * 32) == 1
    waiting = svc.storage.get_callback(pacific)
    assert waiting.status == m.PENDING and waiting.place_in_line == before.place_in_line
    assert waiting.due_at == clock.now() + timedelta(hours=1)


def test_the_window_is_checked_again_at_the_moment_of_dialing(
        twilio, svc, clock, agents, api, twilio_standin):  # noqa: F811
    """Chosen at 19:59:30 in New York; the agent accepts after 20:00: the customer is not
    dialed, the attempt is not counted, their number is let go, and the callback waits for
    08:00 with its place."""
    clock.advance(minutes=9 * 60 + 59, seconds=30)
    now = clock.now()
    # An Expiration Time that outlasts the night (one that does not would expire now).
    svc.storage.create_callback(m.Callback("CA" + "c" * 32, CUSTOMER, "Main Line", "Sales", now, now, 10, now,
                                           now + timedelta(hours=16)), "CA" + "c" * 32)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, leg)
    clock.advance(seconds=40)
    agent_twiml = press(twilio, leg, whisper, "1")
    conference_event(twilio, agent_twiml, "participant-join", leg)
    assert not twilio_standin.placed(to=CUSTOMER)
    cb = svc.storage.get_callback("CA" + "c" * 32)
    assert cb.status == m.PENDING and cb.attempts == 0
    assert cb.history[-1].outcome == "outside-hours" and not cb.history[-1].counted
    # 08:00 the next morning in New York, 13:00 UTC.
    assert cb.due_at == clock.now().replace(hour=13, minute=0, second=0)
    assert svc.storage.get_leg(CUSTOMER) is None
    assert any("message=outside-hours" in url for url in leg.redirects)


def test_a_retry_waits_for_the_window_and_one_past_expiration_expires(svc, clock):
    """The pure rule under a failed attempt: Retry Time lands after 20:00, so the next try is
    08:00; when that is past the Expiration Time, the callback expires instead."""
    from callback.domain.rules import RetryDecision, within_hours
    from callback.domain.settings import CallbackSettings

    window = CallbackSettings().customer_clock(CUSTOMER)
    evening = clock.now().replace(hour=0, minute=58) + timedelta(days=1)  # 19:58 in New York
    retry = RetryDecision(False, evening + timedelta(minutes=5), "retry")
    opens = window.next_opening(retry.due_at)
    assert within_hours(retry, opens, evening + timedelta(hours=16)).due_at == opens
    assert within_hours(retry, opens, evening + timedelta(hours=2)).expire


@pytest.mark.parametrize("expected, lines", [
    (ExpectedCall(Estimate(5, low=2, high=9)), ["We expect to call you in 2 to 9 minutes."]),
    (ExpectedCall(opens="8 a.m."),
     ["It is outside our calling hours where you are, so we will call you after 8 a.m. your time."]),
    (ExpectedCall(Estimate(5, low=2, high=9), closes="8 p.m."),
     ["We expect to call you in 2 to 9 minutes.", "We call only until 8 p.m. your time."]),
    (ExpectedCall(Estimate(60, True)), ["It may be more than 60 minutes before we call."]),
    (ExpectedCall(), []),
])
def test_what_the_caller_hears_after_storing(expected, lines):
    root = ET.fromstring(twiml_documents.callback_stored(PACIFIC, expected))
    said = [say.text for say in root.iter("Say")]
    assert said[0].startswith("Thank you. We will call you back at 4 1 5")
    assert said[1:-1] == lines
    assert said[-1].startswith("You keep your place in line") and root[-1].tag == "Hangup"
