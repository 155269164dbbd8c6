"""Faults: DynamoDB failing at each step (a failing endpoint in front of DynamoDB Local) and
Twilio failing or hanging. The caller always gets valid TwiML, a callback confirmed to the
caller is never lost, and the sweep repairs what was left half done."""
import json
import threading
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests
from conftest import IVR_NUMBER, PUBLIC, cancel_callback, said
from flask import Flask, Response, request
from test_dispatch import (  # noqa: F401  (agents and api are fixtures)
    BOB,
    agent_accepts,
    agents,
    api,
    holding_caller,
    ringing,
    status,
)
from werkzeug.serving import make_server

from callback.domain import records as m
from callback.storage import CONFLICT_ATTEMPTS, Conflict, NotFound, StorageError
from callback.work.sweep import sweep_once

# The DynamoDB operations each path issues, each failed in turn below; a test checks the
# lists against what the paths really send, so no fault test is vacuous and none is missing.
CALLER_FLOW_OPERATIONS = ["Query", "GetItem", "PutItem", "TransactWriteItems"]
DISPATCH_OPERATIONS = ["Query", "GetItem", "UpdateItem", "TransactWriteItems", "DeleteItem"]
CALL_SID = "CA" + "f" * 32
QUEUE_SID = "QU" + "0" * 32
CUSTOMER = "+12125551234"
# A request that is applied but whose answer never comes in time: the client's limit leaves
# the verifying read that follows room on a loaded machine (0.375 s did not), and the late
# answer comes well after it.
APPLIED_TIMEOUT_SECONDS = 1.5
LATE_ANSWER_SECONDS = 3.0
ALICE = "+14155550101"


class FaultyEndpoint:
    """Forwards DynamoDB requests to the real endpoint, failing the operations it is told to."""

    def __init__(self, target):
        self.target = target
        self.failing = {}
        self.remaining = {}
        self.passing = {}
        self.failures = 0
        self.seen = set()
        self.lock = threading.Lock()
        self.http = requests.Session()
        app = Flask("faulty-dynamodb")
        app.add_url_rule("/", "proxy", self.proxy, methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, operation, kind="throttle", times=None, after=0):
        """Fail the requests of this operation from now on (only the next `times` if given,
        after letting `after` through). Kinds: "throttle", "error" and "conflict" answer at
        once; "lost" applies the request, then answers an error as if the answer had been
        lost on the way back; "late" applies it and answers after the client's timeout."""
        with self.lock:
            self.failing[operation] = kind
            self.remaining[operation] = times
            self.passing[operation] = after

    def clear(self):
        """Stop failing."""
        with self.lock:
            self.failing.clear()
            self.passing.clear()

    def reset(self):
        """Stop failing and forget the failures counted so far (one test's count is its own)."""
        with self.lock:
            self.failing.clear()
            self.passing.clear()
            self.failures = 0
            self.seen.clear()

    def proxy(self):
        operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        with self.lock:
            self.seen.add(operation)
            kind = self.failing.get(operation)
            if kind and self.passing.get(operation, 0) > 0:
                self.passing[operation] -= 1
                kind = None
            if kind:
                self.failures += 1
                if self.remaining[operation] is not None:
                    self.remaining[operation] -= 1
                    if self.remaining[operation] == 0:
                        del self.failing[operation]
        if kind == "conflict" and operation == "TransactWriteItems":
            # What DynamoDB answers when another transaction holds one of the items.
            count = len(json.loads(request.get_data())["TransactItems"])
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            return Response(json.dumps({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": reasons + [{"Code": "None"}] * (count - 1)}),
                status=400, content_type="application/x-amz-json-1.0")
        if kind == "conflict":
            return Response('{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException",'
                            '"message":"Transaction is ongoing for the item"}',
                            status=400, content_type="application/x-amz-json-1.0")
        if kind == "throttle":
            return Response('{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
                            '"message":"Rate of requests exceeds the allowed throughput."}',
                            status=400, content_type="application/x-amz-json-1.0")
        if kind == "hang":
            time.sleep(1.5)
        if kind == "lost":
            self.forward()
        if kind == "late":
            upstream = self.forward()
            time.sleep(LATE_ANSWER_SECONDS)
            return Response(upstream.content, status=upstream.status_code,
                            content_type=upstream.headers.get("Content-Type"))
        if kind in ("error", "lost"):
            return Response('{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                            '"message":"Internal server error"}', status=500,
                            content_type="application/x-amz-json-1.0")
        upstream = self.forward()
        return Response(upstream.content, status=upstream.status_code,
                        content_type=upstream.headers.get("Content-Type"))

    def forward(self):
        headers = {k: v for k, v in request.headers if k.lower() not in ("host", "content-length")}
        return self.http.post(self.target + "/", data=request.get_data(), headers=headers, timeout=30)


@pytest.fixture(scope="module")
def faulty(dynamodb_endpoint):
    endpoint = FaultyEndpoint(dynamodb_endpoint)
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def config_overrides(config_overrides, faulty):
    faulty.reset()
    return {**config_overrides, "AWS_ENDPOINT_URL_DYNAMODB": faulty.url, "TWILIO_REST_TIMEOUT_SECONDS": 1}


def valid_twiml(response):
    assert response.status_code == 200, response.data[:300]
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def params(**extra):
    return {"CallSid": CALL_SID, "From": "+14155550123", "To": IVR_NUMBER, **extra}


def caller_journey(twilio):
    """Every step of the caller flow, whatever each one answers; returns the answers."""
    answers = {"incoming": valid_twiml(twilio.post("/voice/incoming", params()))}
    answers["menu"] = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1",
                                                  params(Digits="1")))
    answers["wait"] = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/wait?ivr=Main+Line&queue=Sales",
                                                  params(QueueTime="75")))
    answers["offer"] = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales",
                                                   params(Digits="1")))
    answers["bad"] = valid_twiml(twilio.post_url(
        f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1", params(Digits="123")))
    answers["entry"] = valid_twiml(twilio.post_url(
        f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=2", params(Digits="2125551234")))
    gather = answers["entry"].find("Gather")
    # The read-back (or, if the number could not be kept aside, the safe way back to hold).
    answers["number"] = (valid_twiml(twilio.post_url(gather.get("action"), params(Digits="1")))
                         if gather is not None else answers["entry"])
    answers["done"] = valid_twiml(twilio.post_url(
        f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales", params(QueueResult="leave")))
    return answers


@pytest.mark.parametrize("kind", ["throttle", "error"])
@pytest.mark.parametrize("operation", CALLER_FLOW_OPERATIONS)
def test_caller_flow_with_dynamodb_failing(twilio, svc, main_line, faulty, operation, kind):
    faulty.fail(operation, kind)
    answers = caller_journey(twilio)
    faulty.clear()
    assert faulty.failures > 0, "the fault never hit: this test would prove nothing"

    confirmed = [e.tag for e in answers["number"]] == ["Leave"]
    if confirmed:
        assert svc.storage.get_callback(CALL_SID).number == CUSTOMER
    else:
        assert "could not save your number" in ET.tostring(answers["number"], encoding="unicode")
    assert answers["done"][-1].tag == "Hangup"
    # Once DynamoDB is back, the same caller gets through.
    answers = caller_journey(twilio)
    assert [e.tag for e in answers["number"]] == ["Leave"]
    assert svc.storage.get_callback(CALL_SID).status == "pending"


def test_the_fault_lists_name_every_operation_the_caller_flow_sends(twilio, main_line, faulty):
    faulty.reset()
    caller_journey(twilio)
    assert faulty.seen == set(CALLER_FLOW_OPERATIONS)


def test_a_caller_whose_record_failed_is_recorded_by_the_next_loop_with_their_place(
        twilio, svc, main_line, faulty, clock):
    enqueue = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1",
                                          params(Digits="1"))).find("Enqueue")
    joined = clock.now()
    faulty.fail("TransactWriteItems")
    held = valid_twiml(twilio.post_url(enqueue.get("waitUrl"), params(QueueTime="0", QueueSid=QUEUE_SID)))
    faulty.clear()
    # Music, and no redirect: Twilio comes back to the bare waitUrl, which records them.
    assert [e.tag for e in held] == ["Play"] and svc.storage.get_waiting_call(CALL_SID) is None
    clock.advance(seconds=40)
    held = valid_twiml(twilio.post_url(enqueue.get("waitUrl"), params(QueueTime="40", QueueSid=QUEUE_SID)))
    assert "joined=" in held.find("Redirect").text
    assert svc.storage.get_waiting_call(CALL_SID).joined_at == joined


def enqueue_and_hold(twilio):
    """Menu choice and the first waitUrl request: the caller is recorded as waiting."""
    enqueue = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1",
                                          params(Digits="1"))).find("Enqueue")
    valid_twiml(twilio.post_url(enqueue.get("waitUrl"), params(QueueTime="0", QueueSid=QUEUE_SID)))
    return enqueue


def read_back(twilio):
    """A valid number keyed in: the app reads it back and waits for 1."""
    return valid_twiml(twilio.post_url(f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
                                       params(Digits="2125551234")))


def confirm(twilio, read):
    return valid_twiml(twilio.post_url(read.find("Gather").get("action"), params(Digits="1")))


def test_a_callback_stored_although_dynamodbs_answer_was_lost_is_confirmed(twilio, svc, main_line, faulty):
    enqueue_and_hold(twilio)
    read = read_back(twilio)
    faulty.fail("TransactWriteItems", "lost")
    answer = confirm(twilio, read)
    faulty.clear()
    # Every try of the transaction failed, but the first one was applied: the caller is
    # told the truth and leaves the queue for their callback.
    assert [e.tag for e in answer] == ["Leave"]
    assert svc.storage.get_callback(CALL_SID).status == "pending"
    assert svc.storage.get_waiting_call(CALL_SID) is None


def test_a_lost_store_that_cannot_be_checked_is_put_right_by_the_next_hold_request(
        twilio, svc, main_line, faulty):
    enqueue = enqueue_and_hold(twilio)
    read = read_back(twilio)
    faulty.fail("TransactWriteItems", "lost")
    # The entry and the waiting call are read; the check after the store fails.
    faulty.fail("GetItem", after=2)
    answer = confirm(twilio, read)
    faulty.clear()
    assert "could not save your number" in ET.tostring(answer, encoding="unicode")
    back = answer.find("Redirect").text
    assert "joined=" not in back, "the bare wait URL, whose request settles what is stored"
    # The callback is stored and the caller is no longer in line: the next request of the
    # hold loop sees it, and the caller leaves for the callback, which is confirmed.
    assert [e.tag for e in valid_twiml(twilio.post_url(back, params()))] == ["Leave"]
    assert svc.storage.get_waiting_call(CALL_SID) is None
    done = valid_twiml(twilio.post_url(enqueue.get("action"), params(QueueResult="leave")))
    assert "2 1 2, 5 5 5, 1 2 3 4" in ET.tostring(done, encoding="unicode")


def test_a_store_that_failed_leaves_the_caller_in_line_with_their_place(twilio, svc, main_line, faulty,
                                                                        clock):
    enqueue_and_hold(twilio)
    joined = clock.now()
    clock.advance(minutes=2)
    read = read_back(twilio)
    faulty.fail("TransactWriteItems", "error")
    answer = confirm(twilio, read)
    faulty.clear()
    assert "could not save your number" in ET.tostring(answer, encoding="unicode")
    loop = valid_twiml(twilio.post_url(answer.find("Redirect").text, params()))
    assert loop.find("Leave") is None and "joined=" in loop.find("Redirect").text
    assert svc.storage.get_waiting_call(CALL_SID).joined_at == joined


@pytest.mark.parametrize("result", ["error", "system-error"])
def test_a_queue_error_with_dynamodb_failing_still_puts_the_caller_back(twilio, svc, main_line, faulty,
                                                                        result):
    faulty.fail("GetItem")
    faulty.fail("DeleteItem")
    root = valid_twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                       params(QueueResult=result)))
    assert root.find("Enqueue").text == "Sales"


def bob_takes_the_caller(twilio, svc, clock, api, standin):
    """A caller holding in Support, offered to Bob, who accepts and is in his room: the
    caller is moved out of the queue. Returns (caller, Bob's leg, the URL they are moved
    to, when they joined the line)."""
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(standin, BOB)
    room = agent_accepts(twilio, leg).find("Dial/Conference").text
    standin.conference_joined(room, leg.sid, start_on_enter=False, end_on_exit=True)
    [moved] = standin.calls[caller].redirects
    return caller, leg, moved, joined


def back_in_support(answer, joined):
    """The caller's answer puts them back in Support with their place, never a goodbye."""
    enqueue = answer.find("Enqueue")
    assert enqueue is not None and enqueue.text == "Support", ET.tostring(answer, encoding="unicode")
    assert answer.find("Hangup") is None and "kept your place" in said(answer)
    assert f"joined={int(joined.timestamp())}" in enqueue.get("waitUrl")


def test_a_dynamodb_error_during_the_join_puts_the_caller_back_in_line_and_tells_the_agent(
        twilio, svc, clock, faulty, agents, api, twilio_standin):
    from callback.web.fallback import queue_of

    caller, leg, moved, joined = bob_takes_the_caller(twilio, svc, clock, api, twilio_standin)
    offer_id = svc.storage.get_waiting_call(caller).offer_id
    assert queue_of(moved) == "Support"  # the fallback function, handed it as ErrorUrl, too
    faulty.fail("GetItem", times=1)
    back_in_support(valid_twiml(twilio.post_url(moved, {"CallSid": caller})), joined)
    assert faulty.failures == 1
    # The offer is over: Bob hears why nobody comes, and the caller is in line again.
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-back-in-line"]
    call = svc.storage.get_waiting_call(caller)
    assert (call.status, call.joined_at) == (m.WAITING, joined)
    # Bob's call ends: he is free, and the caller, first in line, is offered again.
    status(twilio, leg, "completed")
    again = svc.storage.get_waiting_call(caller)
    assert again.joined_at == joined and again.offer_id not in (None, offer_id)


def test_when_dynamodb_fails_all_through_the_join_the_sweep_tells_the_agent(
        twilio, svc, clock, faulty, agents, api, twilio_standin):
    caller, leg, moved, joined = bob_takes_the_caller(twilio, svc, clock, api, twilio_standin)
    faulty.fail("GetItem")
    back_in_support(valid_twiml(twilio.post_url(moved, {"CallSid": caller})), joined)
    faulty.clear()
    assert not leg.redirects and svc.storage.get_waiting_call(caller).status == m.CONNECTING
    # Twilio says the caller is on the line but not in Bob's room: the sweep ends the offer.
    clock.advance(minutes=1)
    sweep_once(svc)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-back-in-line"]
    call = svc.storage.get_waiting_call(caller)
    assert (call.status, call.joined_at) == (m.WAITING, joined)


@pytest.fixture
def callback_ready(svc, clock, main_line):
    now = clock.now()
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=now,
                                   create=True)
    svc.storage.add_waiting_call(CALL_SID, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                                 joined_at=now)
    svc.storage.create_callback(m.Callback(CALL_SID, CUSTOMER, "Main Line", "Sales", now, now, 10, now,
                                           now + timedelta(hours=2)), CALL_SID)
    svc.storage.set_agent_presence("alice", "available", now)


@pytest.mark.parametrize("kind", ["lost", "late"])
def test_an_update_applied_although_its_answer_never_came_is_not_a_failure(svc, clock, faulty, callback_ready,
                                                                           kind):
    from callback.storage import Storage

    storage = Storage(svc.config.with_overrides({"DYNAMODB_TIMEOUT_SECONDS": APPLIED_TIMEOUT_SECONDS}))
    now = clock.now()
    storage.claim_callback(storage.get_agent("alice"), storage.get_callback(CALL_SID), "att1", now,
                           now + timedelta(minutes=3))
    faulty.fail("UpdateItem", kind, times=1)
    storage.agent_busy("alice", "att1", "CA" + "a" * 32, now)  # no StorageError: it was applied
    assert faulty.failures == 1
    assert storage.get_agent("alice").status == "busy"


@pytest.mark.parametrize("kind", ["lost", "late"])
def test_a_transaction_applied_although_its_answer_never_came_is_not_a_failure(svc, clock, faulty,
                                                                               callback_ready, kind):
    from callback.storage import Storage

    storage = Storage(svc.config.with_overrides({"DYNAMODB_TIMEOUT_SECONDS": APPLIED_TIMEOUT_SECONDS}))
    now = clock.now()
    faulty.fail("TransactWriteItems", kind, times=1)
    storage.claim_callback(storage.get_agent("alice"), storage.get_callback(CALL_SID), "att1", now,
                           now + timedelta(minutes=3))  # sent again with its token: applied once
    assert faulty.failures == 1
    cb = storage.get_callback(CALL_SID)
    assert (cb.status, cb.attempt_id, len(cb.history)) == ("dialing", "att1", 1)
    assert storage.get_agent("alice").attempt_id == "att1"


def test_an_update_whose_answer_was_a_server_error_and_not_applied_is_a_failure(svc, clock, faulty,
                                                                                callback_ready):
    now = clock.now()
    svc.storage.claim_callback(svc.storage.get_agent("alice"), svc.storage.get_callback(CALL_SID), "att1",
                               now, now + timedelta(minutes=3))
    faulty.fail("UpdateItem", "error", times=1)
    with pytest.raises(StorageError) as failed:
        svc.storage.agent_busy("alice", "att1", "CA" + "a" * 32, now)
    assert not isinstance(failed.value, Conflict)
    assert svc.storage.get_agent("alice").status == "reserved"


def drive_attempt(twilio, standin):
    """Answer whatever the app rings; every webhook must answer valid TwiML."""
    for call in list(standin.placed()):
        if call.url and call.status != "completed":
            valid_twiml(twilio.post_url(call.url, {"CallSid": call.sid, "AnsweredBy": "human"}))
    for call in list(standin.placed()):
        if call.status_callback:
            valid_twiml(twilio.post_url(call.status_callback, {"CallSid": call.sid,
                                                               "CallStatus": "no-answer"}))
        standin.end_call(call.sid)


@pytest.mark.parametrize("operation", DISPATCH_OPERATIONS)
def test_dispatch_with_dynamodb_failing_is_repaired_by_the_sweep(
        twilio, svc, clock, faulty, twilio_standin, callback_ready, operation):
    faulty.fail(operation)
    try:
        svc.dispatcher.dispatch()
    except Exception:  # in production the webhook or sweep around it catches and logs
        pass
    drive_attempt(twilio, twilio_standin)
    sweep_once(svc)
    faulty.clear()
    assert faulty.failures > 0, "the fault never hit: this test would prove nothing"

    for _ in range(3):
        clock.advance(minutes=10)
        sweep_once(svc)
        drive_attempt(twilio, twilio_standin)
    cb = svc.storage.get_callback(CALL_SID)
    assert cb.status in ("pending", "dialing", "expired")
    agent = svc.storage.get_agent("alice")
    assert agent.status in ("available", "reserved", "offline")
    if agent.status == "reserved":
        assert cb.status == "dialing" and cb.agent_id == "alice"
    counted = [a for a in cb.history if a.counted]
    assert len(counted) == cb.attempts <= 3


def test_the_fault_lists_name_every_operation_dispatch_and_sweep_send(
        twilio, svc, clock, faulty, twilio_standin, callback_ready):
    faulty.reset()
    svc.dispatcher.dispatch()
    drive_attempt(twilio, twilio_standin)
    sweep_once(svc)
    assert faulty.seen == set(DISPATCH_OPERATIONS)


def placed_eventually(standin, number):
    """Calls to `number`, once the stand-in (still sleeping on a slow request) placed one."""
    for _ in range(100):
        calls = standin.placed(to=number)
        if calls:
            return calls
        time.sleep(0.05)
    return []


def test_a_timed_out_ring_is_maybe_placed_and_never_rung_twice(twilio, svc, clock, twilio_standin,
                                                                callback_ready):
    """Twilio placed the call but the answer never came back: the agent may be ringing, so
    they stay reserved for this attempt and are not rung again; the call's own status
    callback (its URL names the attempt) settles the leg."""
    twilio_standin.delay_next(2.5)
    offers = svc.dispatcher.dispatch()
    assert [o.agent_call_sid for o in offers] == [None]
    cb = svc.storage.get_callback(CALL_SID)
    assert (cb.status, cb.agent_call_sid, cb.attempts) == ("dialing", None, 0)
    assert svc.storage.get_agent("alice").status == "reserved"
    assert svc.dispatcher.dispatch() == [] and sweep_once(svc).offers == 0
    [placed] = placed_eventually(twilio_standin, ALICE)  # it did ring
    valid_twiml(twilio.post_url(placed.status_callback, {"CallSid": placed.sid,
                                                         "CallStatus": "no-answer"}))
    cb = svc.storage.get_callback(CALL_SID)
    assert (cb.history[0].agent_call_sid, cb.history[0].outcome) == (placed.sid, "agent-no-answer")


def test_a_timed_out_ring_that_was_never_placed_is_settled_by_asking_twilio(svc, clock, twilio_standin,
                                                                             callback_ready):
    twilio_standin.delay_next(2.5)
    twilio_standin.fail_next(500, 20500)  # after the wait: Twilio did not place it
    svc.dispatcher.dispatch()
    for _ in range(100):  # the stand-in is still sleeping on that request: let it fail it
        if not twilio_standin._failures:
            break
        time.sleep(0.05)
    assert not twilio_standin.placed(to=ALICE)
    clock.advance(minutes=1)
    report = sweep_once(svc)
    assert report.repaired_attempts == 1
    cb = svc.storage.get_callback(CALL_SID)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 0, "dial-error")
    assert svc.storage.get_agent("alice").status == "available"


def callback_of(now):
    return m.Callback(CALL_SID, CUSTOMER, "Main Line", "Sales", now, now, 10, now, now + timedelta(hours=2))


def test_a_transaction_refused_for_another_transaction_runs_again(svc, clock, faulty, main_line):
    """DynamoDB cancels a transaction while another one holds one of its items (DynamoDB
    Local serializes requests and never does): nothing was written, so it runs again."""
    now = clock.now()
    svc.storage.add_waiting_call(CALL_SID, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                                 joined_at=now)
    before = faulty.failures
    faulty.fail("TransactWriteItems", "conflict", times=2)
    assert svc.storage.create_callback(callback_of(now), CALL_SID).outcome == "created"
    assert faulty.failures - before == 2
    assert svc.storage.get_waiting_call(CALL_SID) is None

    faulty.fail("TransactWriteItems", "conflict", times=1)
    assert cancel_callback(svc.storage, CALL_SID, now).status == "canceled"
    assert faulty.failures - before == 3
    # The number's pending slot was freed with it: the same number may ask again.
    again = m.Callback("CA" + "e" * 32, CUSTOMER, "Main Line", "Sales", now, now, 10, now,
                       now + timedelta(hours=2))
    assert svc.storage.create_callback(again, "CA" + "e" * 32).outcome == "created"


def test_a_transaction_that_keeps_conflicting_is_a_storage_error_not_a_lost_race(
        svc, clock, faulty, main_line):
    before = faulty.failures
    faulty.fail("TransactWriteItems", "conflict")
    with pytest.raises(StorageError) as raised:
        svc.storage.create_callback(callback_of(clock.now()), CALL_SID)
    faulty.clear()
    assert not isinstance(raised.value, Conflict)
    assert faulty.failures - before == CONFLICT_ATTEMPTS
    with pytest.raises(NotFound):
        svc.storage.get_callback(CALL_SID)


def test_a_write_refused_for_another_transaction_runs_again(svc, clock, faulty, twilio_standin,
                                                            callback_ready):
    """A single conditional write meets TransactionConflictException while a transaction
    holds its item; the agent's answer is recorded all the same."""
    offer, = svc.dispatcher.dispatch()
    before = faulty.failures
    faulty.fail("UpdateItem", "conflict", times=2)
    svc.storage.agent_busy("alice", svc.storage.get_agent("alice").attempt_id, offer.agent_call_sid,
                           clock.now())
    assert faulty.failures - before == 2
    assert svc.storage.get_agent("alice").status == "busy"


@pytest.fixture
def slow(faulty):
    """DynamoDB answering only after the client's timeout."""
    faulty.fail("GetItem", "hang")
    faulty.fail("UpdateItem", "hang")
    yield faulty
    faulty.clear()


def test_a_dynamodb_timeout_is_a_storage_error(app, main_line, config_overrides, slow):
    from callback.storage import Conflict, Storage, StorageError

    storage = Storage(app.extensions["callback"].config.with_overrides({"DYNAMODB_TIMEOUT_SECONDS": 0.5}))
    with pytest.raises(StorageError):
        storage.get_callback("CA" + "1" * 32)
    # A conditional write that timed out has no response, hence no error code: it is a
    # StorageError too (not a Conflict, and not an AttributeError from reading the code).
    with pytest.raises(StorageError) as timed_out:
        storage.set_agent_presence("alice", "available", app.extensions["callback"].clock.now())
    assert not isinstance(timed_out.value, Conflict)


def test_no_dynamodb_at_all_is_a_storage_error(app):
    from callback.storage import Storage, StorageError

    config = app.extensions["callback"].config.with_overrides(
        {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9", "DYNAMODB_TIMEOUT_SECONDS": 0.5})
    with pytest.raises(StorageError):
        Storage(config).get_callback("CA" + "1" * 32)


def test_production_dynamodb_limits_keep_a_request_within_two_seconds():
    from callback.config import Config
    from callback.storage import _client_limits

    limits = _client_limits(Config())
    assert limits["max_retry_attempts"] == 0
    assert limits["connect_timeout_seconds"] + limits["read_timeout_seconds"] <= 2.0
