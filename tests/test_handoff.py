"""Dispatch off the caller's path: webhooks hand dispatch to Zappa's asynchronous
invocation (Lambda's Invoke API stood in for over HTTP) or a background worker, and a
dispatch that comes twice, late, out of order or never changes nothing it should not."""
import json
import threading

import pytest
from conftest import twiml
from flask import Flask, Response, request
from test_caller_flow import enqueue_caller, enter_and_confirm
from test_dispatch import ALICE, agents  # noqa: F401 (agents is a fixture)
from werkzeug.serving import make_server

from callback.domain.records import DIALING, PENDING
from callback.work import handoff
from callback.work.sweep import sweep_once

FUNCTION = "callback-test"


class LambdaApi:
    """Lambda's Invoke API on loopback: records each invocation, runs nothing."""

    def __init__(self):
        self.invocations = []
        self.refuse = False
        app = Flask("lambda-api")
        app.add_url_rule("/2015-03-31/functions/<name>/invocations", "invoke", self.invoke,
                         methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, name):
        if self.refuse:
            return Response('{"Type": "Service", "message": "Rate exceeded"}', status=429,
                            content_type="application/json",
                            headers={"x-amzn-ErrorType": "TooManyRequestsException"})
        self.invocations.append({"function": name, "type": request.headers.get("X-Amz-Invocation-Type"),
                                 "payload": json.loads(request.get_data())})
        return Response(b"", status=202)


@pytest.fixture(scope="module")
def lambda_api_server():
    api = LambdaApi()
    yield api
    api.server.shutdown()


@pytest.fixture
def lambda_api(lambda_api_server):
    lambda_api_server.invocations.clear()
    lambda_api_server.refuse = False
    return lambda_api_server


@pytest.fixture
def config_overrides(config_overrides, lambda_api_server):
    """The app as on Lambda: dispatch handed to an asynchronous invocation."""
    return {**config_overrides, "DISPATCH_RUNNER": "lambda", "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
            "AWS_ENDPOINT_URL_LAMBDA": lambda_api_server.url}


@pytest.fixture
def alice_available(svc, agents, clock):  # noqa: F811
    """Alice is free (set in storage: setting her through the dispatcher would dispatch)."""
    svc.storage.set_agent_presence("alice", "available", clock.now())


def deliver(svc, invocation):
    """Lambda runs the invocation: what Zappa's handler calls, on this test's services."""
    payload = invocation["payload"]
    assert payload["command"] == "zappa.asynchronous.route_lambda_task"
    assert payload["task_path"] == "callback.work.wiring.run_dispatch"
    return handoff.dispatch_pending(svc, *payload["args"], **payload["kwargs"])


def test_the_webhook_answers_before_any_dispatch_and_hands_it_to_one_async_invocation(
        twilio, svc, alice_available, twilio_standin, lambda_api):
    enqueue_caller(twilio)  # recorded as waiting: a dispatch of Sales is asked for
    root = enter_and_confirm(twilio, "2125551234")  # the callback is stored: one is already pending
    assert [e.tag for e in root] == ["Leave"]
    assert twilio_standin.placed() == [], "nothing was dialed inside a webhook"
    assert [(i["function"], i["type"]) for i in lambda_api.invocations] == [(FUNCTION, "Event")]
    assert lambda_api.invocations[0]["payload"]["args"] == [["Sales"]]

    offers = deliver(svc, lambda_api.invocations[0])
    assert [o.agent_id for o in offers] == ["alice"]
    assert twilio_standin.placed(to=ALICE)
    # The dispatch has started: the next change asks for a new one.
    enqueue_caller(twilio, "CA" + "b" * 32)
    assert len(lambda_api.invocations) == 2


def test_the_agent_status_webhook_frees_the_agent_and_hands_dispatch_over_without_calling_twilio(
        twilio, svc, clock, alice_available, twilio_standin, lambda_api):
    """An agent's call ends while work waits for them: the webhook must not ring them again
    itself (a slow Twilio would hold it), only hand the dispatch over."""
    holding = "CA" + "c" * 32
    svc.storage.add_waiting_call(holding, ivr_name="Main Line", queue_name="Sales",
                                 caller="+12125550000", joined_at=clock.now())
    svc.storage.claim_waiting_call(svc.storage.get_agent("alice"), svc.storage.get_waiting_call(holding),
                                   clock.now(), offer_id="offer1")
    twilio_standin.delay_next(2.0, count=5)  # any REST request made inline would wait here
    root = twiml(twilio.post("/voice/agent/status", {"CallSid": "CA" + "9" * 32, "CallStatus": "completed"},
                             query={"kind": "call", "key": holding, "agent": "alice", "attempt": "offer1"}))
    assert list(root) == []
    assert twilio_standin.requests == [], "the webhook called Twilio's REST API itself"
    assert svc.storage.get_agent("alice").status == "available"
    assert svc.storage.get_waiting_call(holding).status == "waiting"
    # The hand-off ran: one asynchronous invocation, for every queue the agent serves.
    assert [(i["type"], i["payload"]["args"]) for i in lambda_api.invocations] == [("Event", [None])]


def test_an_invocation_that_runs_twice_dials_once(twilio, svc, alice_available, twilio_standin, lambda_api):
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    invocation = lambda_api.invocations[0]
    deliver(svc, invocation)
    deliver(svc, invocation)
    assert len(twilio_standin.placed(to=ALICE)) == 1
    callback = svc.storage.get_callback("CA" + "a" * 32)
    assert callback.status == DIALING and len(callback.history) == 1


def test_an_invocation_that_never_comes_is_made_up_by_the_sweep_and_blocks_nothing(
        twilio, svc, clock, alice_available, twilio_standin, lambda_api):
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    assert len(lambda_api.invocations) == 1 and twilio_standin.placed() == []
    # Lost on the way: the sweep dispatches whatever is due.
    sweep_once(svc)
    assert svc.storage.get_callback("CA" + "a" * 32).status == DIALING
    assert len(twilio_standin.placed(to=ALICE)) == 1
    # And the pending mark it left lapses: a later change is handed over again.
    clock.advance(seconds=31)
    enqueue_caller(twilio, "CA" + "b" * 32)
    assert len(lambda_api.invocations) == 2


def test_invocations_out_of_order_serve_the_line_in_its_own_order(
        twilio, svc, clock, alice_available, twilio_standin, lambda_api):
    first, second = "CA" + "1" * 32, "CA" + "2" * 32
    enqueue_caller(twilio, first)
    enter_and_confirm(twilio, "2125551111", call_sid=first)
    clock.advance(seconds=31)
    enqueue_caller(twilio, second)
    enter_and_confirm(twilio, "2125552222", call_sid=second)
    early, late = lambda_api.invocations
    # The later invocation runs first: it serves the line as stored, earliest place first.
    deliver(svc, late)
    assert svc.storage.get_callback(first).status == DIALING
    assert svc.storage.get_callback(second).status == PENDING
    # The earlier one arrives last and finds nothing more to do for a busy agent.
    assert deliver(svc, early) == []
    assert len(twilio_standin.placed()) == 1


def test_lambda_refusing_the_invocation_fails_nothing_and_the_next_change_tries_again(
        twilio, svc, alice_available, twilio_standin, lambda_api, caplog):
    lambda_api.refuse = True
    enqueue_caller(twilio)
    root = enter_and_confirm(twilio, "2125551234")
    assert [e.tag for e in root] == ["Leave"]
    assert svc.storage.get_callback("CA" + "a" * 32).status == PENDING
    assert "could not hand over a dispatch" in caplog.text
    lambda_api.refuse = False
    enqueue_caller(twilio, "CA" + "b" * 32)
    assert [i["payload"]["args"] for i in lambda_api.invocations] == [[["Sales"]]]


def test_the_background_worker_merges_a_burst_into_one_more_dispatch():
    started, release, runs = threading.Event(), threading.Event(), []
    done = threading.Semaphore(0)

    def run(queue_names):
        runs.append(queue_names)
        started.set()
        release.wait(30)
        done.release()

    runner = handoff.ThreadRunner(run)
    runner.submit(["Sales"])
    assert started.wait(30)
    # A burst while the worker is busy: merged into one more run.
    for queue_names in (["Sales"], ["Support"], ["Sales"]):
        runner.submit(queue_names)
    release.set()
    assert done.acquire(timeout=30) and done.acquire(timeout=30)
    assert runs == [["Sales"], ["Sales", "Support"]]
    # Nothing else was left pending: the next request is the next run.
    runner.submit(None)
    assert done.acquire(timeout=30)
    assert runs == [["Sales"], ["Sales", "Support"], None]


def test_an_unknown_runner_is_refused_at_start_up(config_overrides):
    from callback import create_app

    with pytest.raises(ValueError, match="DISPATCH_RUNNER"):
        create_app({**config_overrides, "DISPATCH_RUNNER": "later"})


def test_a_quick_retry_of_legs_is_one_async_invocation_that_pauses_then_settles(svc, lambda_api, monkeypatch):
    from datetime import timedelta

    from callback.work import wiring

    svc.handoff.settle_later(["+12125550100", "+12125550100"], timedelta(seconds=5))
    [invocation] = lambda_api.invocations
    assert invocation["type"] == "Event"
    payload = invocation["payload"]
    assert payload["task_path"] == "callback.work.wiring.run_settle"
    assert payload["args"] == [["+12125550100"], 5.0]
    # Lambda runs it: a bounded pause, then the legs are settled.
    pauses, settled = [], []
    monkeypatch.setattr(wiring.time, "sleep", pauses.append)
    monkeypatch.setattr(wiring, "_dispatch_services", svc)
    monkeypatch.setattr(wiring, "settle_now", lambda s, numbers: settled.append((s, numbers)))
    assert wiring.run_settle(*payload["args"]) == {"legs": 1}
    assert pauses == [5.0] and settled == [(svc, ["+12125550100"])]
    wiring.run_settle(["+12125550100"], 600)
    assert pauses[-1] == wiring.LONGEST_SETTLE_PAUSE


def test_the_background_worker_settles_legs_after_their_pause():
    settled = threading.Event()
    runner = handoff.ThreadRunner(lambda queue_names: None, lambda numbers: settled.set())
    runner.settle(["+12125550100"], 0.05)
    assert settled.wait(30)


def test_a_text_is_sent_by_an_async_invocation_not_by_the_webhook(
        twilio, svc, clock, main_line, twilio_standin, lambda_api, monkeypatch):
    from dataclasses import replace

    from callback.domain.texts import SENT
    from callback.work import wiring

    svc.storage.save_ivr(main_line.evolve(settings=replace(
        main_line.settings, sms_enabled=True, sms_service_sid="MG" + "0" * 32)))
    enqueue_caller(twilio)
    assert [e.tag for e in enter_and_confirm(twilio, "2125551234")] == ["Leave"]
    assert twilio_standin.texts() == [], "the webhook did not wait on the Messages API"
    [invocation] = [i for i in lambda_api.invocations
                    if i["payload"]["task_path"] == "callback.work.wiring.run_texts"]
    assert invocation["type"] == "Event"
    monkeypatch.setattr(wiring, "_dispatch_services", svc)
    # Lambda runs it, and (an at-least-once delivery) runs it again: one text.
    assert wiring.run_texts(*invocation["payload"]["args"]) == {"texts": 1}
    wiring.run_texts(*invocation["payload"]["args"])
    [key] = invocation["payload"]["args"][0]
    assert len(twilio_standin.texts()) == 1 and svc.storage.get_text(key).state == SENT
