"""Data kept only as long as it should be (#35): ended callbacks expire after the
retention period, reads treat them as gone at once, and a number can be forgotten on
request, through the API and the portal, on DynamoDB Local with the Twilio stand-in."""
from datetime import timedelta

import pytest
from conftest import API_TOKEN
from test_admin import post_form
from test_dispatch import CUSTOMER, agent_accepts, agents, api, ringing, status, store_callback  # noqa: F401

from callback.domain import transitions
from callback.storage import NotFound

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def config_overrides(config_overrides):
    from conftest import with_admin_account

    return with_admin_account(config_overrides)
OTHER = "+14155550177"


def test_an_ended_callback_carries_its_ttl_and_is_gone_for_reads_once_due(svc, clock, main_line):
    cb_id = store_callback(svc, clock)
    kept = store_callback(svc, clock, call_sid="CA" + "1" * 32, number=OTHER)
    cb = svc.storage.get_callback(cb_id)
    svc.storage.commit(cb, transitions.cancel(cb, clock.now()))
    record = svc.storage.CallbackRec.get(cb_id)
    assert abs((record.expires_ttl - (clock.now() + timedelta(days=90))).total_seconds()) < 1
    assert svc.storage.CallbackRec.get(kept).expires_ttl is None, "open work never expires"
    clock.advance(minutes=90 * 24 * 60 + 1)
    with pytest.raises(NotFound):
        svc.storage.get_callback(cb_id)
    assert [c.callback_id for c in svc.storage.list_callbacks()[0]] == [kept]


def test_a_leg_left_behind_by_a_bug_is_let_go_after_a_day(svc, clock, main_line):
    svc.dispatcher.caller_holding("CA" + "9" * 32, CUSTOMER)
    assert svc.storage.get_leg(CUSTOMER) is not None
    clock.advance(minutes=24 * 60 + 1)
    assert svc.storage.get_leg(CUSTOMER) is None and svc.storage.live_legs() == []


def test_forgetting_a_number_cancels_removes_and_deletes_twilios_records(
        twilio, svc, clock, agents, api, twilio_standin, caplog):  # noqa: F811
    done = store_callback(svc, clock, queue="Sales")
    svc.storage.remove_waiting_call(done)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, "+14155550101"))
    customer = ringing(twilio_standin, CUSTOMER)
    # The customer does not answer: the attempt ends, and the callback stays pending.
    twilio_standin.end_call(customer.sid)
    status(twilio, customer, "no-answer")
    other_queue = store_callback(svc, clock, call_sid="CA" + "2" * 32, queue="Support")
    svc.storage.remove_waiting_call(other_queue)
    kept = store_callback(svc, clock, call_sid="CA" + "3" * 32, number=OTHER)
    api.status("alice", "away")
    twilio_standin.calls[customer.sid].status = "no-answer"
    client = twilio.client
    response = client.post("/api/numbers/forget", json={"number": CUSTOMER}, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["callbacks_removed"] == 2 and body["callbacks_canceled"] == 2
    assert body["twilio_records_deleted"] >= 1
    assert svc.storage.callbacks_of_number(CUSTOMER) == []
    assert [c.callback_id for c in svc.storage.callbacks_of_number(OTHER)] == [kept]
    deleted = [r for r in twilio_standin.requests if r["method"] == "DELETE"]
    assert customer.sid in {r["path"].rsplit("/", 1)[-1].removesuffix(".json") for r in deleted}
    assert CUSTOMER not in caplog.text and "a number was forgotten" in caplog.text
    from test_contract import assert_in_spec

    for request in twilio_standin.requests:
        assert_in_spec(request)
    # Twice is harmless, and a bad number is a clear 400.
    again = client.post("/api/numbers/forget", json={"number": CUSTOMER}, headers=AUTH).get_json()
    assert again["callbacks_removed"] == 0
    assert client.post("/api/numbers/forget", json={"number": "212"}, headers=AUTH).status_code == 400


def test_a_number_with_a_call_in_progress_is_not_forgotten_until_it_ends(
        twilio, svc, clock, agents, api, twilio_standin):  # noqa: F811
    store_callback(svc, clock)
    api.status("alice", "available")
    ringing(twilio_standin, "+14155550101")
    response = twilio.client.post("/api/numbers/forget", json={"number": CUSTOMER}, headers=AUTH)
    assert response.status_code == 409 and "in progress" in response.get_json()["error"]
    assert len(svc.storage.callbacks_of_number(CUSTOMER)) == 1


def test_the_portal_forgets_a_number_after_a_confirmation(app, svc, clock, main_line):
    from conftest import log_in

    client = app.test_client()
    assert log_in(client).status_code == 302
    store_callback(svc, clock)
    url = "/admin/privacy"
    unconfirmed = post_form(client, url, url, {"number": CUSTOMER})
    assert unconfirmed.status_code == 400 and "cannot be undone" in unconfirmed.get_data(as_text=True)
    assert len(svc.storage.callbacks_of_number(CUSTOMER)) == 1
    done = post_form(client, url, url, {"number": CUSTOMER, "confirm": "yes"})
    assert done.status_code == 302 and svc.storage.callbacks_of_number(CUSTOMER) == []
    assert "Forgotten: 1 callbacks" in client.get(url).get_data(as_text=True)


def _ttl_of_each_kind(svc, clock):
    """Every kind of record the app writes that is not configuration (IVRs, agents), written
    through storage as the app writes it; (kind, its raw record's TTL) for each."""
    from callback.domain import texts as t

    s, now = svc.storage, clock.now()
    store_callback(svc, clock, call_sid="CA" + "4" * 32)  # its waiting call, then the callback
    cb = s.get_callback("CA" + "4" * 32)
    s.commit(cb, transitions.cancel(cb, now))
    s.add_waiting_call("CA" + "5" * 32, ivr_name="Main Line", queue_name="Sales", caller=OTHER, joined_at=now)
    entry = "CA" + "6" * 32
    s.hold_entry(entry, OTHER, now)
    s.count_departure("Sales", now)
    s.claim_key("scope", "key-1", "fingerprint", now, lifetime=timedelta(hours=24),
                lease=timedelta(minutes=1), resource_id="API1")
    s.queue_text(t.Text("CA" + "4" * 32, t.ABOUT_TO_CALL, OTHER, "Main Line", "Sales", now))
    s.note_alert("test-alert", "detail", now)
    s.request_dispatch("Sales", now, now + timedelta(seconds=30))
    svc.dispatcher.caller_holding("CA" + "9" * 32, CUSTOMER)  # the call ledger
    return {
        "callback (ended), with its attempts": s.CallbackRec.get("CA" + "4" * 32).expires_ttl,
        "waiting call": s.Waiting.get("CA" + "5" * 32).expires_ttl,
        "number awaiting confirmation": s.Entry.get("ENTRY", entry).expires_ttl,
        "departure bucket": next(iter(s.DeparturesRec.query("STATS#Sales"))).expires_ttl,
        "Idempotency-Key": next(iter(s.Idem.query("IDEM"))).expires_ttl,
        "text and its outbox item": min(r.expires_ttl for pk in ("TEXT", "OUTBOX") for r in s.Text.query(pk)),
        "alert": next(iter(s.Guard.query("ALERT"))).expires_ttl,
        "pending dispatch mark": next(iter(s.Guard.query("DISPATCH"))).expires_ttl,
        "call ledger leg": s.Leg.get("LEG", CUSTOMER).expires_ttl,
    }


def test_every_kind_of_record_written_carries_a_ttl(svc, clock, main_line):
    """Retention: nothing the app writes about callers or calls outlives its time (IVRs and
    agents are configuration, kept until changed; sessions and wallboard counters are
    checked in test_security and test_stats)."""
    now = clock.now()
    for kind, ttl in _ttl_of_each_kind(svc, clock).items():
        assert ttl is not None and now < ttl <= now + timedelta(days=400), kind
