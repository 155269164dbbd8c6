"""The dashboard in headless Chromium after scripted journeys: the page shows the journeys'
numbers, refreshes itself in place, fits a 400 px screen; a screenshot is kept in build/."""
import os
from datetime import timedelta

import pytest
from conftest import IVR_NUMBER, PUBLIC, TwilioClient, cancel_callback, twiml
from test_admin import log_in
from test_browser import PASSWORD, config_overrides  # noqa: F401 (a fixture)
from test_stats import answer_from_hold, complete, connect, refuse_number, request_callback

from callback.web import admin

pytestmark = pytest.mark.browser
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "artifacts")


def join_the_line(twilio, call_sid):
    """A caller picks Sales and holds: the wait URL's first request records them."""
    params = {"CallSid": call_sid, "AccountSid": "AC" + "1" * 32, "From": "+12125550000",
              "To": IVR_NUMBER, "CallStatus": "in-progress", "Direction": "inbound"}
    root = twiml(twilio.post("/voice/incoming", params))
    enqueue = twiml(twilio.post_url(root.find("Gather").get("action"), {**params, "Digits": "1"}))
    twiml(twilio.post_url(enqueue.find("Enqueue").get("waitUrl"), {**params, "QueueTime": "5"}))
    return params


def hang_up_while_holding(twilio, call_sid, duplicate=False):
    """A caller picks Sales, holds, and hangs up; Twilio may send the action callback twice."""
    params = join_the_line(twilio, call_sid)
    for _ in range(2 if duplicate else 1):
        twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                              {**params, "QueueResult": "hangup"}))


@pytest.fixture
def journeys(app, svc, clock, main_line):
    """Three callers join the line: two abandon (one action callback twice), Bob answers
    the third. Four ask for a callback: one connected after 4 minutes and completed, one
    canceled, one whose number Twilio refuses; a number asks twice (not stored again); one
    caller holds for 7 minutes; Alice is away after her call."""
    storage = svc.storage
    twilio = TwilioClient(app.test_client())
    storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                               now=clock.now(), create=True)
    storage.save_agent_profile("bob", name="Bob", phone="+14155550102", queues=["Sales"],
                               now=clock.now(), create=True)
    hang_up_while_holding(twilio, "CA" + "1" * 32, duplicate=True)
    hang_up_while_holding(twilio, "CA" + "2" * 32)
    join_the_line(twilio, "CA" + "3" * 32)
    answer_from_hold(svc, clock, "CA" + "3" * 32, "bob")
    done, canceled, waiting, refused = "CA" + "a" * 32, "CA" + "b" * 32, "CA" + "c" * 32, "CA" + "9" * 32
    request_callback(svc, clock, refused, number="+12125557777")
    refuse_number(svc, clock, refused)
    request_callback(svc, clock, done)
    request_callback(svc, clock, canceled, number="+12125559876")
    request_callback(svc, clock, waiting, number="+12125554444", held_minutes=5)
    assert request_callback(svc, clock, "CA" + "d" * 32, number="+12125554444").outcome == "number-pending"
    cancel_callback(storage, canceled, clock.now())
    clock.advance(minutes=4)
    connect(svc, clock, done)
    complete(svc, clock, done)
    storage.release_agent("alice", now=clock.now(), status="offline", attempt_id="att1")
    storage.add_waiting_call("CA" + "e" * 32, ivr_name="Main Line", queue_name="Sales", caller="+12125550001",
                             joined_at=clock.now() - timedelta(minutes=7))


def figure(page, name):
    return page.locator(f"[data-queue='Sales'] [data-figure='{name}']").first.inner_text()


def row(page, name):
    return page.locator(f"[data-queue='Sales'] tr[data-figure='{name}'] td").all_inner_texts()


def test_dashboard_shows_the_journeys_and_refreshes_itself(page, svc, clock, journeys, monkeypatch):
    monkeypatch.setattr(admin, "DASHBOARD_REFRESH_SECONDS", 1)
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto("/admin/dashboard")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/dashboard")
    assert page.get_by_role("link", name="Dashboard").get_attribute("aria-current") == "page"

    assert figure(page, "holding") == "1"
    assert figure(page, "longest_hold") == "7 min"
    assert figure(page, "pending_callbacks") == "1"
    assert figure(page, "oldest_pending") == "9 min"
    assert (figure(page, "dialing"), figure(page, "agents_available"), figure(page, "agents_away")) == ("0", "0", "1")
    assert row(page, "requested") == ["4", "4"]
    assert row(page, "completed") == ["1", "1"]
    assert row(page, "canceled") == ["1", "1"]
    assert row(page, "number_refused") == ["1", "1"]
    assert row(page, "already_pending") == ["1", "1"]
    assert row(page, "joined") == ["3", "3"]
    assert row(page, "answered") == ["1", "1"]
    assert row(page, "abandoned") == ["2", "2"]
    labels = page.locator("[data-queue='Sales'] tr[data-figure] th").all_inner_texts()
    assert {"Number refused by Twilio", "Not stored: already pending"} <= set(labels)
    assert row(page, "first_attempt_success_rate") == ["100 %", "100 %"]
    assert row(page, "median_wait") == ["≤ 5 min", "≤ 5 min"]
    # Every chart has a name and a text alternative.
    assert page.locator("[data-queue='Sales'] svg[role='img']").count() == 4
    assert page.locator("[data-queue='Sales'] details table").count() == 2
    # A narrow screen scrolls nothing sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 400

    # A new caller starts holding; the page shows it without being reloaded.
    page.evaluate("window.notReloaded = true")
    # The clock first: a refresh that shows the new caller then also shows the new time (the
    # other way round, one refresh between the two showed the caller at the old time).
    clock.advance(seconds=15)
    svc.storage.add_waiting_call("CA" + "f" * 32, ivr_name="Main Line", queue_name="Sales",
                                 caller="+12125550002", joined_at=clock.now())
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("[data-queue='Sales'] [data-figure='holding']")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#refreshed-at").inner_text() == clock.now().strftime("%H:%M:%S UTC")
    assert page.locator("#refresh-problem").is_hidden()

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "dashboard-400px.png")
    page.screenshot(path=shot, full_page=True)
    assert os.path.getsize(shot) > 0


def test_dashboard_needs_a_login(app):
    client = app.test_client()
    for path in ("/admin/dashboard", "/admin/dashboard.json"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_only_the_dashboard_allows_a_script_and_only_its_own(app, main_line):
    client = app.test_client()
    assert log_in(client, password=PASSWORD).status_code == 302
    response = client.get("/admin/dashboard")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert b"<script src=" in response.data and b"<script>" not in response.data
    assert "script-src 'none'" in client.get("/admin/ivrs").headers["Content-Security-Policy"]
    data = client.get("/admin/dashboard.json")
    assert data.headers["Cache-Control"] == "no-store"
    assert [q["name"] for q in data.get_json()["stats"]["queues"]] == ["Sales", "Support"]
