"""Queues sized on purpose: each Twilio queue gets its MaxSize through the Queues API (when
an IVR is saved, and by `flask size-queues`), and a caller who still finds the queue full is
offered a callback at once, or told plainly that the line is full. The journey: the 101st
caller in a queue of 100."""
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import (
    API_TOKEN,
    AUTH_TOKEN,
    IVR_NUMBER,
    PUBLIC,
    csrf_of,
    log_in,
    said,
    twiml,
    with_admin_account,
)

from callback.domain.records import TWILIO_MAX_QUEUE_SIZE, Ivr, Queue
from callback.domain.settings import CallbackSettings
from callback.domain.validation import check_queue
from devtools.twilio_model import Keys, LocalBackend, Network, Timeline, Webhooks, answering_caller

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CALL = "CA" + "f" * 32
CALLER = "+14155550199"


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


def params(call_sid=CALL, **extra):
    return {"CallSid": call_sid, "AccountSid": "AC" + "1" * 32, "From": CALLER, "To": IVR_NUMBER,
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def twilio_queue(standin, name):
    with standin.lock:
        return standin.queue_named(name)


# -- the setting --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, json, expected", [
    ({}, False, TWILIO_MAX_QUEUE_SIZE), ({"max_size": ""}, False, TWILIO_MAX_QUEUE_SIZE),
    ({"max_size": "100"}, False, 100), ({"max_size": " 1 "}, False, 1), ({"max_size": "5000"}, False, 5000),
    ({"max_size": None}, True, TWILIO_MAX_QUEUE_SIZE), ({"max_size": 250}, True, 250),
])
def test_a_queues_size_defaults_to_twilios_maximum(raw, json, expected):
    queue, errors = check_queue({"name": "Sales", **raw}, "Main Line", set(), json=json)
    assert errors == {} and queue.max_size == expected


@pytest.mark.parametrize("raw, json", [
    ({"max_size": "0"}, False), ({"max_size": "5001"}, False), ({"max_size": "lots"}, False),
    ({"max_size": "100"}, True), ({"max_size": 10.5}, True), ({"max_size": True}, True),
    ({"max_size": ""}, True),
])
def test_a_size_twilio_would_refuse_is_refused(raw, json):
    queue, errors = check_queue({"name": "Sales", **raw}, "Main Line", set(), json=json)
    assert queue is None and "max_size" in errors


def test_a_queue_stored_before_the_setting_has_twilios_maximum(svc, main_line):
    assert [q.max_size for q in svc.storage.get_ivr("Main Line").queues] == [5000, 5000]


# -- the REST adapter and the stand-in -------------------------------------------------------

def test_sizing_creates_the_queue_then_updates_it_only_when_the_size_changed(svc, twilio_standin):
    telephony = svc.telephony
    created = telephony.size_queue("Sales", 100)
    assert (created.outcome, created.max_size) == ("created", 100) and created.sid.startswith("QU")
    assert twilio_queue(twilio_standin, "Sales").max_size == 100
    assert telephony.size_queue("Sales", 100).outcome == "unchanged"
    updated = telephony.size_queue("Sales", 250)
    assert (updated.outcome, updated.sid) == ("updated", created.sid)
    assert twilio_queue(twilio_standin, "Sales").max_size == 250
    posts = [r for r in twilio_standin.requests if r["method"] == "POST"]
    assert [r["params"] for r in posts] == [{"FriendlyName": ["Sales"], "MaxSize": ["100"]},
                                            {"MaxSize": ["250"]}]


def test_a_queue_enqueue_created_first_is_updated_not_created_again(svc, twilio_standin):
    twilio_standin.queue_join("Support", "CA1")
    assert twilio_queue(twilio_standin, "Support").max_size == 1000
    assert svc.telephony.size_queue("Support", 5000).outcome == "updated"
    assert twilio_queue(twilio_standin, "Support").max_size == 5000
    assert len(twilio_standin.queues) == 1


def test_a_queue_created_meanwhile_is_sized_all_the_same(svc, twilio_standin, monkeypatch):
    telephony = svc.telephony
    real = telephony._queue_named
    reads = []

    def late(name):
        # The first read misses a queue a caller's <Enqueue> creates just after it.
        reads.append(name)
        if len(reads) == 1:
            twilio_standin.queue_join(name, "CA1")
            return None
        return real(name)

    monkeypatch.setattr(telephony, "_queue_named", late)
    assert telephony.size_queue("Sales", 42).outcome == "updated"
    assert twilio_queue(twilio_standin, "Sales").max_size == 42


def test_a_twilio_failure_is_that_queues_outcome_and_the_others_are_sized(svc, twilio_standin):
    twilio_standin.fail_next(503, 20503)
    sized = svc.telephony.size_queues([Queue("Sales", "Main Line", max_size=10),
                                       Queue("Support", "Main Line", max_size=20)])
    assert [(q.name, q.outcome) for q in sized] == [("Sales", "failed"), ("Support", "created")]
    assert sized[0].failed and sized[0].error and sized[0].sid is None
    assert twilio_queue(twilio_standin, "Support").max_size == 20


def test_the_standin_keeps_twilios_limits_and_lists_every_queue(standin_server, twilio_standin):
    import requests

    account = "AC" + "1" * 32
    url = f"{standin_server.url}/2010-04-01/Accounts/{account}/Queues.json"
    auth = (account, AUTH_TOKEN)
    for size in ("0", "5001", "many"):
        refused = requests.post(url, auth=auth, data={"FriendlyName": "Q", "MaxSize": size}, timeout=5)
        assert refused.status_code == 400
    assert requests.post(url, auth=auth, data={"MaxSize": "5"}, timeout=5).status_code == 400
    made = requests.post(url, auth=auth, data={"FriendlyName": "Q"}, timeout=5).json()
    assert (made["max_size"], made["current_size"]) == (1000, 0)
    assert requests.post(url, auth=auth, data={"FriendlyName": "Q"}, timeout=5).status_code == 400
    twilio_standin.queue_join("Q", "CA1")
    listed = requests.get(url, auth=auth, timeout=5).json()["queues"]
    assert [(q["friendly_name"], q["current_size"]) for q in listed] == [("Q", 1)]
    one = f"{standin_server.url}/2010-04-01/Accounts/{account}/Queues/{made['sid']}.json"
    assert requests.post(one, auth=auth, data={"MaxSize": "1"}, timeout=5).json()["max_size"] == 1
    assert twilio_standin.queue_join("Q", "CA2") == (twilio_queue(twilio_standin, "Q"), None)
    assert requests.get(one.replace(made["sid"], "QU" + "9" * 32), auth=auth, timeout=5).status_code == 404


# -- when an IVR is saved, and the operator's command ------------------------------------------

def test_saving_an_ivr_in_the_portal_sizes_its_twilio_queues(client, svc, main_line, twilio_standin):
    assert log_in(client).status_code == 302
    edit = "/admin/ivrs/Main%20Line/edit"
    html = client.get(edit).get_data(as_text=True)
    assert 'name="queue_max_size_0" type="number" min="1" max="5000" value="5000"' in html
    data = {"numbers": IVR_NUMBER, "greeting": "Hi.", "queue_rows": "2", "csrf_token": csrf_of(html),
            "queue_name_0": "Sales", "queue_priority_0": "10", "queue_callback_0": "on",
            "queue_max_size_0": "100",
            "queue_name_1": "Support", "queue_priority_1": "5", "queue_max_size_1": ""}
    assert client.post(edit, data=data).status_code == 302
    assert [q.max_size for q in svc.storage.get_ivr("Main Line").queues] == [100, 5000]
    assert twilio_queue(twilio_standin, "Sales").max_size == 100
    assert twilio_queue(twilio_standin, "Support").max_size == 5000
    queues_page = client.get("/admin/queues").get_data(as_text=True)
    assert '<td data-label="Max callers">100</td>' in queues_page


def test_an_invalid_size_saves_nothing(client, svc, main_line, twilio_standin):
    log_in(client)
    edit = "/admin/ivrs/Main%20Line/edit"
    data = {"numbers": IVR_NUMBER, "greeting": "Changed.", "queue_rows": "1",
            "csrf_token": csrf_of(client.get(edit).get_data(as_text=True)),
            "queue_name_0": "Sales", "queue_priority_0": "10", "queue_max_size_0": "9000"}
    response = client.post(edit, data=data)
    assert response.status_code == 400 and "must be between 1 and 5000" in response.get_data(as_text=True)
    assert svc.storage.get_ivr("Main Line").greeting == main_line.greeting
    assert not twilio_standin.queues


def test_a_queue_twilio_did_not_size_is_said_and_the_ivr_is_saved(client, svc, main_line, twilio_standin):
    log_in(client)
    edit = "/admin/ivrs/Main%20Line/edit"
    data = {"numbers": IVR_NUMBER, "greeting": "Hi.", "queue_rows": "1",
            "csrf_token": csrf_of(client.get(edit).get_data(as_text=True)),
            "queue_name_0": "Sales", "queue_priority_0": "10", "queue_max_size_0": "50"}
    twilio_standin.fail_next(503, 20503, count=2)
    page = client.post(edit, data=data, follow_redirects=True).get_data(as_text=True)
    assert "IVR Main Line saved." in page
    assert "Twilio did not take the size of queue Sales" in page and "flask --app app size-queues" in page
    assert svc.storage.get_ivr("Main Line").queues[0].max_size == 50


def test_a_queue_added_through_the_api_is_created_in_twilio_with_its_size(client, main_line, twilio_standin):
    response = client.post("/api/queues", json={"name": "Billing", "ivr": "Main Line", "max_size": 100},
                           headers=AUTH)
    assert response.status_code == 201
    body = response.get_json()
    assert body["queue"]["max_size"] == 100
    assert body["twilio"] == {"max_size": 100, "outcome": "created", "error": None}
    assert twilio_queue(twilio_standin, "Billing").max_size == 100
    bad = client.post("/api/queues", json={"name": "Other", "ivr": "Main Line", "max_size": "100"},
                      headers=AUTH)
    assert bad.status_code == 400 and "max_size" in bad.get_json()["fields"]
    assert twilio_queue(twilio_standin, "Other") is None


def test_size_queues_sizes_every_queue_and_says_so(app, svc, main_line, twilio_standin):
    svc.storage.save_ivr(Ivr("Second", numbers=("+15005550020",),
                             queues=(Queue("Billing", "Second", max_size=30),)))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["size-queues"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["queue Sales: MaxSize 5000, created",
                                          "queue Support: MaxSize 5000, created",
                                          "queue Billing: MaxSize 30, created"]
    again = runner.invoke(args=["size-queues"])
    assert "queue Billing: MaxSize 30, unchanged" in again.output
    twilio_standin.fail_next(503, 20503)
    failed = runner.invoke(args=["size-queues"])
    assert failed.exit_code == 1 and "queue Sales: MaxSize 5000, failed (" in failed.output


def test_the_twilio_set_up_sizes_every_queue_too(app, svc, main_line, twilio_standin):
    twilio_standin.own_number(IVR_NUMBER)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["twilio-setup", "--dry-run"])
    assert dry.exit_code == 0 and "queue Sales" not in dry.output and not twilio_standin.queues
    done = runner.invoke(args=["twilio-setup"])
    assert done.exit_code == 0, done.output
    assert "queue Sales: MaxSize 5000, created" in done.output
    assert twilio_queue(twilio_standin, "Support").max_size == 5000


# -- a caller who finds the queue full ---------------------------------------------------------

ENQUEUE_DONE = f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales"


def turned_away(twilio, url=ENQUEUE_DONE, call_sid=CALL):
    return twiml(twilio.post_url(url, params(call_sid, QueueResult="queue-full", QueueTime="0")))


def test_a_caller_the_full_queue_turned_away_is_offered_a_callback_at_once(twilio, main_line):
    root = turned_away(twilio)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert query_of(gather.get("action")) == {"ivr": "Main Line", "queue": "Sales", "full": "1"}
    assert "our line is full" in said(gather) and "Press 1 and we will call you back" in said(gather)
    # Silence: the line is full, said plainly, and the call ends (no queue to go back to).
    assert root[-1].tag == "Hangup" and root.find("Redirect") is None


def test_pressing_1_takes_the_number_and_stores_the_callback_without_a_queue(twilio, svc, main_line, clock):
    offer = turned_away(twilio)
    entry = twiml(twilio.post_url(offer.find("Gather").get("action"), params(Digits="1")))
    assert query_of(entry.find("Gather").get("action"))["full"] == "1"
    confirm = twiml(twilio.post_url(entry.find("Gather").get("action"), params(Digits="2125551234")))
    assert "Press 1 if that is right" in said(confirm)
    assert query_of(confirm.find("Gather").get("action"))["full"] == "1"
    stored = twiml(twilio.post_url(confirm.find("Gather").get("action"), params(Digits="1")))
    # Not <Leave/>: the caller is in no queue, so no Enqueue action would say the rest.
    assert stored.find("Leave") is None and stored[-1].tag == "Hangup"
    assert "We will call you back at 2 1 2, 5 5 5, 1 2 3 4" in said(stored)
    callback = svc.storage.get_callback(CALL)
    assert (callback.number, callback.queue_name) == ("+12125551234", "Sales")
    assert callback.place_in_line == clock.now()
    assert svc.storage.get_waiting_call(CALL) is None


@pytest.mark.parametrize("digits", ["2", "*"])
def test_another_key_hears_the_line_is_full_never_the_hold_loop(twilio, main_line, svc, digits):
    offer = turned_away(twilio)
    root = twiml(twilio.post_url(offer.find("Gather").get("action"), params(Digits=digits)))
    assert "Our line is full right now" in said(root) and root[-1].tag == "Hangup"
    assert root.find("Redirect") is None
    assert svc.storage.get_waiting_call(CALL) is None


def test_every_way_out_of_number_entry_ends_the_call_for_a_caller_in_no_queue(twilio, main_line, svc):
    url = f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=3&full=1"
    failed = twiml(twilio.post_url(url, params(Digits="12")))
    assert "I could not take a callback number" in said(failed) and failed[-1].tag == "Hangup"
    confirm = f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&ask=2&full=1&entry=x"
    svc.storage.hold_entry(CALL, "+12125551234", svc.clock.now())
    entry = svc.storage.hold_entry(CALL, "+12125551234", svc.clock.now())
    silent = twiml(twilio.post_url(confirm.replace("entry=x", f"entry={entry}"), params(Digits="")))
    assert "I have not saved a number" in said(silent) and silent[-1].tag == "Hangup"
    lost = twiml(twilio.post_url(confirm, params(Digits="1")))  # an entry no longer held
    assert "could not save your number" in said(lost) and lost.find("Redirect") is None
    unknown = twiml(twilio.post_url(f"{PUBLIC}/voice/number?ivr=Gone&queue=Sales&attempt=1&full=1",
                                    params(Digits="2125551234")))
    assert unknown[-1].tag == "Hangup" and unknown.find("Redirect") is None
    assert svc.storage.list_callbacks()[0] == []


def test_a_number_with_a_callback_pending_hears_so_and_goodbye(twilio, svc, main_line):
    from test_dispatch import store_callback

    store_callback(svc, svc.clock, call_sid="CA" + "1" * 32, number="+12125551234", joined_minutes_ago=5)
    offer = turned_away(twilio)
    entry = twiml(twilio.post_url(offer.find("Gather").get("action"), params(Digits="1")))
    confirm = twiml(twilio.post_url(entry.find("Gather").get("action"), params(Digits="2125551234")))
    root = twiml(twilio.post_url(confirm.find("Gather").get("action"), params(Digits="1")))
    assert "You already have a callback requested" in said(root)
    assert root.find("Leave") is None and root[-1].tag == "Hangup"


@pytest.mark.parametrize("ivr_enabled, queue_enabled", [(False, True), (True, False)])
def test_without_callbacks_the_caller_is_told_plainly_that_the_line_is_full(
        twilio, svc, main_line, ivr_enabled, queue_enabled):
    svc.storage.save_ivr(main_line.evolve(settings=CallbackSettings(callback_enabled=ivr_enabled),
                                          queues=(Queue("Sales", "Main Line", 10, queue_enabled),)))
    root = turned_away(twilio)
    assert root.find("Gather") is None
    assert said(root) == ("Our line is full right now, so we cannot keep you on hold. "
                          "Please call again later. Goodbye.")
    assert root[-1].tag == "Hangup"


def test_a_caller_sent_back_to_a_full_queue_keeps_their_place_in_line(twilio, svc, main_line, clock):
    joined = clock.now()
    svc.storage.add_waiting_call(CALL, ivr_name="Main Line", queue_name="Sales", caller=CALLER,
                                 joined_at=joined)
    clock.advance(minutes=7)
    offer = turned_away(twilio, url=ENQUEUE_DONE + "&requeue=1")
    assert query_of(offer.find("Gather").get("action"))["joined"] == str(int(joined.timestamp()))
    assert svc.storage.get_waiting_call(CALL) is None
    entry = twiml(twilio.post_url(offer.find("Gather").get("action"), params(Digits="1")))
    confirm = twiml(twilio.post_url(entry.find("Gather").get("action"), params(Digits="2125551234")))
    twiml(twilio.post_url(confirm.find("Gather").get("action"), params(Digits="1")))
    assert svc.storage.get_callback(CALL).place_in_line == joined


def test_when_the_handler_fails_the_safe_answer_still_says_the_line_is_full(twilio, svc, main_line,
                                                                           monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(svc.storage, "get_waiting_call", broken)
    root = turned_away(twilio)
    assert "Our line is full right now" in said(root) and root[-1].tag == "Hangup"
    assert "goodbye" not in said(root).lower().replace("goodbye.", "")


# -- the journey: the 101st caller in a queue of 100 -------------------------------------------

HOLDERS = 100
SPEED = 5  # simulated seconds per real second: speech is quick, hold loops are cheap


@pytest.fixture
def served_app(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.slow
def test_the_101st_caller_in_a_queue_of_100_is_offered_a_callback(
        app, svc, client, twilio_standin, served_app):
    svc.storage.save_ivr(Ivr("Solo", numbers=(IVR_NUMBER,), greeting="Thanks for calling.",
                             queues=(Queue("Sales", "Solo", 10),)))
    # The admin sets the queue's size in the portal: saving the IVR sizes Twilio's queue.
    log_in(client)
    edit = "/admin/ivrs/Solo/edit"
    data = {"numbers": IVR_NUMBER, "greeting": "Thanks for calling.", "queue_rows": "1",
            "csrf_token": csrf_of(client.get(edit).get_data(as_text=True)), "queue_name_0": "Sales",
            "queue_priority_0": "10", "queue_callback_0": "on", "queue_max_size_0": str(HOLDERS)}
    assert client.post(edit, data=data).status_code == 302
    assert twilio_queue(twilio_standin, "Sales").max_size == HOLDERS

    network = Network(LocalBackend(twilio_standin), Webhooks(AUTH_TOKEN, PUBLIC, [served_app]),
                      Timeline(SPEED)).start()
    try:
        holders = [threading.Thread(target=network.dial_in, daemon=True,
                                    args=(f"+1212555{i:04d}", IVR_NUMBER, Keys([]), 3600))
                   for i in range(HOLDERS)]
        for holder in holders:
            holder.start()
        deadline = time.time() + 120
        while len(twilio_queue(twilio_standin, "Sales").members) < HOLDERS and time.time() < deadline:
            time.sleep(0.2)
        assert len(twilio_queue(twilio_standin, "Sales").members) == HOLDERS
        heard = []
        network.out = lambda who, text: heard.append((who, text))
        run = network.dial_in("+13125550101", IVR_NUMBER, Keys(responder=answering_caller("3125550101")),
                              patience=600, name="caller 101")
    finally:
        network.stop()
        for holder in holders:
            holder.join(30)
    assert network.stats["callers turned away: queue full"] == 1
    assert ("caller 101 hears", "Sorry, our line is full right now, so we cannot keep you on hold. Press 1 "
            "and we will call you back when it is your turn.") in heard
    assert run.ending == "hung-up-by-app" and not network.webhooks.errors
    callback = svc.storage.get_callback(run.call.sid)
    assert (callback.number, callback.queue_name, callback.status) == ("+13125550101", "Sales", "pending")
