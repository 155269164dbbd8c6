"""An agent's own page: the work log written with the change that ends the work (and never
without it), the page's JSON for an idle agent, one rung for a callback and one rung for a
holding caller, presence changed through the page, and the page in headless Chromium at
desktop width and 400 px, refreshing itself."""
import dataclasses
from datetime import timedelta

import pytest
from conftest import ADMIN_PASSWORD, csrf_of, log_in, with_admin_account
from test_browser import ARTIFACTS
from test_stats import answer_from_hold, request_callback

from callback.domain import agent_day, transitions, worklog
from callback.domain import records as m
from callback.domain.attempts import AGENT_DECLINED, AGENT_MISSED, AGENT_RINGING, CALLER_GONE, Event, apply
from callback.domain.hours import OpenHours
from callback.domain.offers import OFFER_TABLE
from callback.domain.rules import RetryDecision
from callback.domain.views import offer_view
from callback.storage import Conflict
from callback.web import agent_page

CUSTOMER = "+12125551234"
NEW_YORK = OpenHours().tz  # the default IVR zone
CALL = "CA" + "a" * 32
HOLDER = "CA" + "h" * 32


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def alice(svc, main_line, clock):
    return svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                          now=clock.now(), create=True)


@pytest.fixture
def signed_in(client, main_line):
    assert log_in(client).status_code == 302
    return client


def ring_alice_for(svc, clock, callback_id, attempt_id):
    """Alice says available and is claimed for the callback's next attempt."""
    storage = svc.storage
    storage.set_agent_presence("alice", m.AVAILABLE, clock.now())
    storage.claim_callback(storage.get_agent("alice"), storage.get_callback(callback_id), attempt_id,
                           clock.now(), clock.now() + timedelta(minutes=5))
    return storage.get_callback(callback_id)


def retry_later(now):
    return RetryDecision(expire=False, due_at=now + timedelta(minutes=5), reason="retry")


def no_answer(svc, clock, cb):
    """The customer did not answer: the attempt ends, counted, and the callback waits again."""
    return transitions.end_attempt(cb, outcome="no-answer", counted=True, now=clock.now(),
                                   decision=retry_later(clock.now()))


def today(svc, clock):
    return svc.storage.work_since("alice", clock.now() - timedelta(hours=12))


# -- the work log, in the domain ----------------------------------------------------------

def test_an_ending_attempt_carries_its_agents_entry_masked_and_a_pending_callback_none(clock):
    now = clock.now()
    attempt = m.Attempt("att1", now - timedelta(minutes=3), "alice", connected_at=now - timedelta(seconds=95))
    cb = m.Callback(CALL, CUSTOMER, "Main Line", "Sales", now, now, 10, now, now + timedelta(hours=2),
                    status=m.CONNECTED, attempt_id="att1", agent_id="alice", history=(attempt,))
    done = transitions.complete(cb, now).worked
    assert done == worklog.WorkDone("alice", worklog.CALLBACK, "att1", "Main Line", "Sales", "+*********34",
                                    "completed", attempt.started_at, now, 95)
    assert done.count == worklog.CONNECTED
    missed = transitions.end_attempt(dataclasses.replace(cb, kind="voicemail"), outcome="agent-no-answer",
                                     counted=False, now=now, decision=retry_later(now)).worked
    assert (missed.kind, missed.outcome, missed.count) == (worklog.VOICEMAIL, "agent-no-answer",
                                                          worklog.DECLINED_OR_MISSED)
    # A pending callback that expires or is canceled ends no agent's work.
    pending = m.Callback(CALL, CUSTOMER, "Main Line", "Sales", now, now, 10, now, now)
    assert transitions.expire(pending, now).worked is None
    assert transitions.cancel(pending, now).worked is None


@pytest.mark.parametrize("event, outcome, count", [
    (AGENT_DECLINED, worklog.DECLINED, worklog.DECLINED_OR_MISSED),
    (AGENT_MISSED, worklog.MISSED, worklog.DECLINED_OR_MISSED),
    (CALLER_GONE, worklog.CALLER_GONE, None),
])
def test_an_offer_ending_logs_how_it_ended_for_the_agent(clock, event, outcome, count):
    now = clock.now()
    call = m.WaitingCall(HOLDER, "Main Line", "Sales", CUSTOMER, now - timedelta(minutes=4),
                         status=m.CONNECTING, agent_id="alice", offer_id="offer1", phase=AGENT_RINGING,
                         offered_at=now - timedelta(seconds=20))
    step = apply(offer_view(HOLDER, call, "offer1"), Event(event, HOLDER, "offer1"), OFFER_TABLE)
    change = transitions.offer_ending(call, step.effects, now)
    assert change.worked == worklog.WorkDone("alice", worklog.HOLDING, "offer1", "Main Line", "Sales",
                                             "+*********34", outcome, call.offered_at, now)
    assert change.worked.count == count


@pytest.mark.parametrize("choice, text, stored", [
    ("Lunch", "", ("Lunch", None)),
    ("Break", "  back at\t3 \x07", ("Break: back at 3", None)),
    ("Other", "Dentist", ("Dentist", None)),
    ("Other", "   ", (None, "Say why you are away, in a few words.")),
    ("Napping", "", (None, "Choose why you are away.")),
    (None, None, (None, "Choose why you are away.")),
    ("Other", "x" * 500, ("x" * agent_day.REASON_MAX_LENGTH, None)),
])
def test_away_reasons_come_from_the_list_or_the_agents_own_words(choice, text, stored):
    assert agent_day.away_reason(choice, text) == stored


# -- the work log, in DynamoDB: with the ending or not at all -----------------------------

def test_each_ending_attempt_logs_once_in_its_own_transaction(svc, clock, alice, no_scans):
    storage = svc.storage
    assert request_callback(svc, clock, CALL).outcome == "created"
    dialing = ring_alice_for(svc, clock, CALL, "att1")
    clock.advance(seconds=40)
    change = no_answer(svc, clock, dialing)
    writes = len(no_scans)
    assert storage.commit(dialing, change) == m.PENDING
    # One request: the callback's update and the log entry in one TransactWriteItems.
    assert no_scans[writes:] == ["TransactWriteItems"]
    # The same ending computed from the same read (a duplicate status callback) loses, and
    # logs nothing a second time.
    with pytest.raises(Conflict):
        storage.commit(dialing, change)
    [entry] = today(svc, clock)
    assert (entry.kind, entry.work_id, entry.queue_name, entry.outcome) == ("callback", "att1", "Sales",
                                                                             "no-answer")
    assert entry.number == "+*********34" and CUSTOMER not in repr(entry)
    assert entry.started_at == clock.now() - timedelta(seconds=40) and entry.ended_at == clock.now()
    storage.release_agent("alice", now=clock.now(), attempt_id="att1")

    # The second try connects and completes: its talk time is the time since connected.
    clock.advance(minutes=5)
    dialing = ring_alice_for(svc, clock, CALL, "att2")
    storage.commit(dialing, transitions.advance(dialing, phase="connected", sweep_at=clock.now(),
                                                connected=True, now=clock.now()))
    clock.advance(seconds=130)
    connected = storage.get_callback(CALL)
    storage.commit(connected, transitions.complete(connected, clock.now()))
    entries = today(svc, clock)
    assert [(e.work_id, e.outcome, e.talk_seconds) for e in entries] == [("att1", "no-answer", None),
                                                                          ("att2", "completed", 130)]
    assert worklog.day_counts(entries) == {worklog.CONNECTED: 1, worklog.NOT_REACHED: 1,
                                           worklog.HOLDING_TAKEN: 0, worklog.DECLINED_OR_MISSED: 0}
    # Another agent's day is theirs alone.
    assert svc.storage.work_since("bob", clock.now() - timedelta(hours=12)) == []


def test_an_ending_refused_by_its_condition_logs_nothing(svc, clock, alice):
    storage = svc.storage
    request_callback(svc, clock, CALL)
    stale = ring_alice_for(svc, clock, CALL, "att1")
    # Something else moved the attempt on first (the agent's call was learned meanwhile).
    storage.commit(stale, transitions.advance(stale, phase=AGENT_RINGING, sweep_at=clock.now(),
                                              agent_call_sid="CA" + "c" * 32))
    with pytest.raises(Conflict):
        storage.commit(stale, no_answer(svc, clock, stale))
    assert today(svc, clock) == []
    # A final ending whose condition fails (already ended) logs nothing either.
    current = storage.get_callback(CALL)
    storage.commit(current, transitions.end_attempt(current, outcome="busy", counted=True, now=clock.now(),
                                                    decision=RetryDecision(True, None, "max-retries")))
    with pytest.raises(Conflict):
        storage.commit(current, transitions.complete(current, clock.now()))
    assert [e.outcome for e in today(svc, clock)] == ["busy"]


def test_a_holding_caller_taken_or_sent_back_is_logged_with_the_offers_ending(svc, clock, alice):
    storage = svc.storage
    storage.save_agent_profile("bob", name="Bob", phone="+14155550102", queues=["Sales"], now=clock.now(),
                               create=True)
    storage.add_waiting_call(HOLDER, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                             joined_at=clock.now() - timedelta(minutes=3))
    storage.set_agent_presence("bob", m.AVAILABLE, clock.now())
    storage.claim_waiting_call(storage.get_agent("bob"), storage.get_waiting_call(HOLDER), clock.now(),
                               offer_id="offer0")
    offered = storage.get_waiting_call(HOLDER)
    assert offered.offered_at == clock.now()
    clock.advance(seconds=12)
    declined = transitions.back_in_line(offered, worklog.for_offer(offered, worklog.DECLINED, clock.now()))
    storage.commit_offer(offered, declined)
    with pytest.raises(Conflict):  # the same ending again: nothing more is logged
        storage.commit_offer(offered, declined)
    assert storage.get_waiting_call(HOLDER).status == m.WAITING
    [bobs] = storage.work_since("bob", clock.now() - timedelta(hours=1))
    assert (bobs.kind, bobs.outcome, bobs.started_at) == ("holding", "declined", offered.offered_at)

    answer_from_hold(svc, clock, HOLDER, "alice")  # the caller joins Alice's conference
    [alices] = today(svc, clock)
    assert (alices.kind, alices.outcome, alices.work_id, alices.count) == ("holding", "taken", "offer1",
                                                                           worklog.HOLDING_TAKEN)


# -- the page's JSON ----------------------------------------------------------------------

def test_an_idle_agent_sees_their_presence_and_an_empty_day(signed_in, alice):
    data = signed_in.get("/agents/alice/today.json")
    assert data.status_code == 200 and data.headers["Cache-Control"] == "no-store"
    body = data.get_json()
    assert body["agent"]["status"] == "offline" and body["agent"]["label"] == "Away"
    assert body["work"] is None
    assert [c["count"] for c in body["day"]["counts"]] == [0, 0, 0, 0] and body["day"]["work"] == []
    assert "Nothing yet today." in body["html"]
    assert signed_in.get("/agents/nobody/today.json").status_code == 404


def test_an_agent_rung_for_a_callback_sees_who_which_try_and_the_tries_before(signed_in, svc, clock, alice):
    storage = svc.storage
    ivr = storage.get_ivr("Main Line")
    paris = dataclasses.replace(ivr.settings, hours=OpenHours(zone="Europe/Paris"))
    storage.save_ivr(ivr.evolve(settings=paris))
    svc.directory.invalidate()
    now = clock.now()
    cb = m.Callback("API" + "1" * 20, CUSTOMER, "Main Line", "Sales", now, now, 10, now,
                    now + timedelta(hours=2), name="Dana Reyes", reason="Invoice 1234")
    storage.create_callback(cb, cb.callback_id)
    first = ring_alice_for(svc, clock, cb.callback_id, "att1")
    storage.commit(first, no_answer(svc, clock, first))
    storage.release_agent("alice", now=clock.now(), attempt_id="att1")
    clock.advance(minutes=6)
    ring_alice_for(svc, clock, cb.callback_id, "att2")

    body = signed_in.get("/agents/alice/today.json").get_json()
    assert body["agent"]["status"] == "reserved" and body["zone"] == "Europe/Paris"
    work = body["work"]
    assert (work["kind"], work["queue"], work["number"]) == ("callback", "Sales", "(212) 555-1234")
    assert (work["name"], work["reason"], work["attempt"], work["of"]) == ("Dana Reyes", "Invoice 1234", 2, 3)
    local = now.astimezone(OpenHours(zone="Europe/Paris").tz).strftime("%H:%M")
    assert work["earlier"] == [{"outcome": "Customer did not answer", "started": local, "ended": local,
                                "by_you": True}]
    assert [(row["outcome"], row["ended"], row["number"]) for row in body["day"]["work"]] == [
        ("no-answer", local, "+*********34")]
    counts = {c["name"]: c["count"] for c in body["day"]["counts"]}
    assert counts[worklog.NOT_REACHED] == 1
    assert 'data-fact="attempt">2 of 3<' in body["html"] and "Dana Reyes" in body["html"]


def test_an_agent_rung_for_a_holding_caller_sees_the_queue_and_the_wait(signed_in, svc, clock, alice):
    storage = svc.storage
    storage.add_waiting_call(HOLDER, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                             joined_at=clock.now() - timedelta(minutes=3))
    storage.set_agent_presence("alice", m.AVAILABLE, clock.now())
    storage.claim_waiting_call(storage.get_agent("alice"), storage.get_waiting_call(HOLDER), clock.now(),
                               offer_id="offer1")
    clock.advance(seconds=20)
    work = signed_in.get("/agents/alice/today.json").get_json()["work"]
    assert work == {"kind": "holding", "queue": "Sales", "number": "(212) 555-1234", "waited_seconds": 200,
                    "joined": (clock.now() - timedelta(seconds=200)).astimezone(NEW_YORK).strftime("%H:%M")}


def test_the_page_needs_a_login(client, svc, alice):
    for path in ("/agents/alice/today", "/agents/alice/today.json"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    # A valid CSRF token (the login form's) is not a login.
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/agents/alice/today/presence", data={"status": "available", "csrf_token": token})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert svc.storage.get_agent("alice").status == m.OFFLINE


# -- presence through the page --------------------------------------------------------------

def post_presence(client, data, token=None):
    token = token or csrf_of(client.get("/agents/alice/today").get_data(as_text=True))
    return client.post("/agents/alice/today/presence", data={**data, "csrf_token": token})


def test_presence_changes_through_the_page_with_a_reason_and_a_csrf_token(signed_in, svc, clock, alice):
    storage = svc.storage
    assert signed_in.post("/agents/alice/today/presence", data={"status": "available"}).status_code == 400
    assert post_presence(signed_in, {"status": "available"}, token="forged").status_code == 400
    assert storage.get_agent("alice").status == m.OFFLINE

    response = post_presence(signed_in, {"status": "available"})
    assert response.status_code == 303 and response.location.endswith("/agents/alice/today")
    assert storage.get_agent("alice").status == m.AVAILABLE
    post_presence(signed_in, {"status": "away", "reason": "Lunch", "other": "back at 2"})
    agent = storage.get_agent("alice")
    assert (agent.status, agent.away_reason) == (m.OFFLINE, "Lunch: back at 2")
    page = signed_in.get("/agents/alice/today").get_data(as_text=True)
    assert "Lunch: back at 2" in page and "You are away (Lunch: back at 2)." in page

    # "Other" needs words; nothing changes without them.
    post_presence(signed_in, {"status": "available"})
    post_presence(signed_in, {"status": "away", "reason": "Other", "other": ""})
    assert storage.get_agent("alice").status == m.AVAILABLE
    assert "Say why you are away" in signed_in.get("/agents/alice/today").get_data(as_text=True)
    assert post_presence(signed_in, {"status": "busy"}).status_code == 400
    # Available again clears the reason, as the admin's button does.
    post_presence(signed_in, {"status": "away", "reason": "Other", "other": "Dentist"})
    assert storage.get_agent("alice").away_reason == "Dentist"
    post_presence(signed_in, {"status": "available"})
    assert storage.get_agent("alice").away_reason is None


def test_available_through_the_page_is_the_admins_change_and_dispatches(signed_in, svc, clock, alice,
                                                                        monkeypatch):
    calls = []
    real = svc.dispatcher.set_presence
    monkeypatch.setattr(svc.dispatcher, "set_presence",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or real(*args, **kwargs))
    request_callback(svc, clock, CALL)
    post_presence(signed_in, {"status": "available"})
    assert calls == [(("alice", m.AVAILABLE), {"away_reason": None})]
    # Dispatch gave her the waiting callback at once; away is refused while she is rung.
    agent = svc.storage.get_agent("alice")
    assert (agent.status, agent.work_key) == (m.RESERVED, CALL)
    post_presence(signed_in, {"status": "away", "reason": "Break"})
    assert svc.storage.get_agent("alice").status == m.RESERVED
    page = signed_in.get("/agents/alice/today").get_data(as_text=True)
    assert "You are on a call: your status changes when it ends." in page


# -- in a browser -----------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 400])
def test_the_page_in_a_browser_fits_and_refreshes_itself(page, svc, clock, alice, monkeypatch, width):
    monkeypatch.setattr(agent_page, "REFRESH_SECONDS", 1)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/agents/alice/today")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/agents/alice/today")
    assert page.locator("#presence").inner_text().startswith("Away")
    assert page.locator("#no-work").inner_text() == "Nothing offered to you."

    # Away with a reason, then available: through the forms, as an agent would.
    page.get_by_label("Why you step away").select_option("Training")
    page.get_by_role("button", name="I am away").click()
    assert page.locator("#away-reason-now").inner_text() == "Training"
    page.get_by_role("button", name="I am available").click()
    assert page.locator("#presence").inner_text().startswith("Available")
    assert svc.storage.get_agent("alice").status == m.AVAILABLE
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # A callback arrives and Alice is rung: the page shows it without being reloaded.
    page.evaluate("window.notReloaded = true")
    request_callback(svc, clock, CALL)
    svc.dispatcher.dispatch(agent_id="alice")
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#work [data-fact='number']")).to_have_text("(212) 555-1234")
    expect(page.locator("#work [data-fact='attempt']")).to_have_text("1 of 3")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#refresh-problem").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"agent-page-{width}px.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
