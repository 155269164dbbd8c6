"""Queues sized on purpose: each Twilio queue gets its MaxSize through the Queues API (when
an IVR is saved, and by `flask size-queues`)."""
import pytest
from conftest import (
    API_TOKEN,
    AUTH_TOKEN,
    IVR_NUMBER,
    csrf_of,
    log_in,
    with_admin_account,
)

from callback.domain.records import TWILIO_MAX_QUEUE_SIZE, Ivr, Queue
from callback.domain.validation import check_queue

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


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
