"""Journeys on the real telephone network (issue items 1–9): voicemail, late and repeated
and lost status callbacks, refused numbers, timed-out REST calls, conference events. Every
step goes through signed webhooks and DynamoDB over HTTP; Twilio is the stand-in."""
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from conftest import PUBLIC, said, twiml
from test_dispatch import (
    ALICE,
    BOB,
    CUSTOMER,
    agent_accepts,
    agent_joins,
    agents,  # noqa: F401  (fixture)
    answer,
    api,  # noqa: F401  (fixture)
    conference_event,
    customer_joins,
    holding_caller,
    press,
    ringing,
    status,
    store_callback,
)
from test_line import query_of

from callback.domain import records as m
from callback.domain import transitions
from callback.work.sweep import sweep_once

OTHER = "+13125550188"


def live(standin, number):
    """Calls to a number that are not over."""
    return [c for c in standin.placed(to=number) if c.status not in ("completed", "busy", "no-answer",
                                                                      "failed", "canceled")]


def accepted(twilio, svc, clock, api, standin, dial_times_out=False):
    """A callback rung to Alice, who accepts and is in the conference, so the customer is
    dialed (that request timing out after placing the call, when asked); returns
    (callback id, her leg, her TwiML)."""
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(standin, ALICE)
    agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
    if dial_times_out:
        standin.delay_next(1.5)
    return cb_id, leg, agent_joins(twilio, leg, agent_twiml)


# 1 -------------------------------------------------------------------------------------

def test_1_an_agents_voicemail_declines_and_the_customer_is_never_dialed(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    voicemail = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, voicemail)  # the voicemail greeting plays over the whisper
    root = press(twilio, voicemail, whisper, "")  # and presses nothing
    assert root.find("Hangup") is not None and root.find("Dial") is None
    assert not twilio_standin.placed(to=CUSTOMER)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (
        "pending", 0, "agent-declined", False)
    # Her phone is busy until Twilio says its call ended; then she is away, with the reason.
    assert svc.storage.get_agent("alice").status == "reserved"
    status(twilio, voicemail, "completed")
    alice = svc.storage.get_agent("alice")
    assert alice.status == "offline" and alice.away_reason == "did not accept an offered call"
    # The reason is in the portal and the API; the work goes to the next agent.
    assert api.status("bob", "available").status_code == 200
    assert ringing(twilio_standin, BOB)


def test_1_an_agent_pressing_another_key_declines(twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    root = press(twilio, leg, answer(twilio, leg), "2")
    assert "You did not accept" in said(root)
    assert not twilio_standin.placed(to=CUSTOMER)
    # On the line for the notice: away only once Twilio says her call ended.
    assert svc.storage.get_agent("alice").status == "reserved"
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("alice").status == "offline"


def test_1_a_holding_caller_declined_keeps_their_place(twilio, svc, clock, agents, api, twilio_standin):
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    press(twilio, leg, answer(twilio, leg), "")
    assert caller not in twilio_standin.calls  # never moved out of the queue
    back = svc.storage.get_waiting_call(caller)
    assert (back.status, back.joined_at) == ("waiting", joined)
    status(twilio, leg, "completed")
    bob = svc.storage.get_agent("bob")
    assert (bob.status, bob.away_reason) == ("offline", "did not accept an offered call")


# 2 -------------------------------------------------------------------------------------

def test_2_a_late_final_status_of_an_earlier_attempt_cannot_free_the_agent(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, first, _ = accepted(twilio, svc, clock, api, twilio_standin)
    customer = ringing(twilio_standin, CUSTOMER)
    # The customer is not reached; the agent hangs up; the callback is due again later.
    status(twilio, customer, "no-answer")
    twilio_standin.end_call(customer.sid)
    status(twilio, first, "completed")
    twilio_standin.end_call(first.sid)
    clock.advance(minutes=5)
    sweep_once(svc)
    second = ringing(twilio_standin, ALICE)
    assert second.sid != first.sid
    assert svc.storage.get_agent("alice").status == "reserved"
    # Attempt 1's final status, re-delivered now, with the same work key.
    status(twilio, first, "completed")
    status(twilio, first, "no-answer")
    alice = svc.storage.get_agent("alice")
    assert alice.status == "reserved" and alice.call_sid == second.sid
    # The next dispatch does not ring her again while she rings.
    api.status("bob", "offline")
    sweep_once(svc)
    assert len(live(twilio_standin, ALICE)) == 1
    assert svc.storage.get_callback(cb_id).history[-1].agent_call_sid == second.sid


# 3 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [21211, 21214, 21217])
def test_3_a_number_twilio_refuses_ends_the_callback_at_once(
        twilio, svc, clock, agents, api, twilio_standin, code):
    refused = store_callback(svc, clock, call_sid="CA" + "1" * 32, joined_minutes_ago=10)
    behind = store_callback(svc, clock, call_sid="CA" + "2" * 32, number=OTHER, joined_minutes_ago=5)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    assert f"key={refused}" in leg.url
    agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
    twilio_standin.fail_next(400, code, message="refused")
    agent_joins(twilio, leg, agent_twiml)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=refused"]
    cb = svc.storage.get_callback(refused)
    assert (cb.status, cb.ended_reason, cb.history[0].outcome, cb.history[0].error_code) == (
        "failed", "number-refused", "number-refused", code)
    # The admin sees Twilio's code, and the callback behind it is served next.
    detail = api_get(svc, twilio, f"/api/callbacks/{refused}")
    assert detail["history"][0]["error_code"] == code
    status(twilio, leg, "completed")
    twilio_standin.end_call(leg.sid)
    assert f"key={behind}" in ringing(twilio_standin, ALICE).url
    clock.advance(minutes=30)
    sweep_once(svc)
    assert len(twilio_standin.placed(to=CUSTOMER)) == 0


def api_get(svc, twilio, path):
    from conftest import API_TOKEN

    response = twilio.client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200
    return response.get_json()["callback"] if "callbacks/" in path else response.get_json()


def test_3_transient_errors_back_off_and_count_after_a_few(twilio, svc, clock, agents, api,
                                                          twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    waits = []
    for _ in range(3):
        leg = ringing(twilio_standin, ALICE)
        agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
        twilio_standin.fail_next(429, 20429)
        agent_joins(twilio, leg, agent_twiml)
        status(twilio, leg, "completed")
        twilio_standin.end_call(leg.sid)
        cb = svc.storage.get_callback(cb_id)
        waits.append(cb.due_at - clock.now())
        clock.advance(seconds=waits[-1].total_seconds())
        sweep_once(svc)
    assert waits[:2] == [timedelta(seconds=30), timedelta(seconds=60)]
    cb = svc.storage.get_callback(cb_id)
    assert [a.counted for a in cb.history[:3]] == [False, False, True] and cb.attempts == 1


def test_3_no_callback_circles_forever_without_a_counted_attempt(twilio, svc, clock, agents, api,
                                                                 twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    for _ in range(5):  # the agent hangs up during the whisper, again and again
        leg = ringing(twilio_standin, ALICE)
        answer(twilio, leg)
        status(twilio, leg, "completed")
        twilio_standin.end_call(leg.sid)
    cb = svc.storage.get_callback(cb_id)
    assert [a.counted for a in cb.history] == [False] * 4 + [True]
    assert cb.attempts == 1 and cb.due_at > clock.now()


# 4 -------------------------------------------------------------------------------------

def test_4_an_agent_whose_final_status_never_came_is_free_within_two_sweeps(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, agent_twiml = accepted(twilio, svc, clock, api, twilio_standin)
    customer, _ = customer_joins(twilio, twilio_standin, agent_twiml)
    # The conversation ends; every status callback and the conference end are lost.
    twilio_standin.end_call(leg.sid)
    twilio_standin.end_call(customer.sid)
    for _ in range(2):
        clock.advance(minutes=1)
        sweep_once(svc)
    assert svc.storage.get_agent("alice").status == "available"
    assert svc.storage.get_callback(cb_id).status == "completed"
    assert api.status("alice", "offline").status_code == 200


def test_4_a_storage_error_in_the_status_handler_is_repaired_from_twilio(
        twilio, svc, clock, agents, api, twilio_standin, monkeypatch):
    from callback.storage import StorageError

    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)

    def failing(*args, **kwargs):
        raise StorageError("DynamoDB timed out")

    with monkeypatch.context() as patch:
        patch.setattr(svc.storage, "get_callback", failing)
        response = status(twilio, leg, "no-answer")  # answered 200: Twilio never retries it
    twiml(response)
    twilio_standin.calls[leg.sid].status = "no-answer"
    assert svc.storage.get_agent("alice").status == "reserved"
    clock.advance(minutes=1)
    sweep_once(svc)
    # Twilio's record says no-answer: one miss, the attempt closed uncounted, and the
    # same sweep offers the callback again (to her: one miss does not set her away).
    cb = svc.storage.get_callback(cb_id)
    assert (cb.history[0].outcome, cb.history[0].counted, cb.attempts) == ("agent-no-answer", False, 0)
    assert svc.storage.get_agent("alice").misses == 1
    assert len(twilio_standin.placed(to=ALICE)) == 2


# 5 -------------------------------------------------------------------------------------

def wait_for(standin, number, count=1):
    for _ in range(100):
        if len(standin.placed(to=number)) >= count:
            return standin.placed(to=number)
        time.sleep(0.05)
    raise AssertionError(f"no call to {number}")


@pytest.fixture
def short_rest_timeout(config_overrides):
    config_overrides["TWILIO_REST_TIMEOUT_SECONDS"] = 0.5
    return config_overrides


def test_5_a_timed_out_customer_dial_is_maybe_placed_never_dialed_twice(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin):
    cb_id, _, agent_twiml = accepted(twilio, svc, clock, api, twilio_standin, dial_times_out=True)
    assert agent_twiml.find("Dial/Conference") is not None  # the agent waits, hearing ringing
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase, cb.customer_call_sid) == ("dialing", "customer-ringing", None)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    # Nothing dials the customer again while that call may ring.
    clock.advance(seconds=20)
    sweep_once(svc)
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1
    # Its answer and join (URLs naming the attempt) settle the leg.
    answer(twilio, customer, AnsweredBy="human")
    conference_event(twilio, agent_twiml, "participant-join", customer)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.customer_call_sid) == ("connected", customer.sid)


def test_5_a_lost_leg_after_a_timeout_is_found_by_listing_twilios_calls(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin):
    cb_id, _, _ = accepted(twilio, svc, clock, api, twilio_standin, dial_times_out=True)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    twilio_standin.calls[customer.sid].status = "busy"  # and its status callback was lost
    clock.advance(minutes=2)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 1, "busy")
    assert cb.history[0].customer_call_sid == customer.sid


def test_5_an_answered_customer_of_a_lost_leg_is_connected_only_once_in_the_conference(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, _ = accepted(twilio, svc, clock, api, twilio_standin, dial_times_out=True)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    # Twilio says the customer's call is in progress (answering-machine detection still
    # listens, or they hear the announcement); every status callback of theirs is lost.
    twilio_standin.set_status(customer.sid, "in-progress", answered_by="human")
    clock.advance(minutes=2)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.customer_call_sid) == ("dialing", customer.sid)
    # The agent gives up before the customer joined; both calls end, unheard of.
    api.status("bob", "offline")
    twilio_standin.end_call(leg.sid)
    twilio_standin.end_call(customer.sid)
    clock.advance(minutes=2)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert cb.history[0].outcome == "agent-hung-up" and cb.attempts == 0
    assert cb.status != "completed"


def test_5_a_lost_leg_found_in_the_conference_with_the_agent_is_connected(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, _ = accepted(twilio, svc, clock, api, twilio_standin, dial_times_out=True)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    twilio_standin.set_status(customer.sid, "in-progress", answered_by="human")
    conference = svc.storage.get_callback(cb_id).conference_name
    twilio_standin.conference_joined(conference, leg.sid, start_on_enter=False, end_on_exit=True)
    twilio_standin.conference_joined(conference, customer.sid, end_on_exit=True)
    clock.advance(minutes=2)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.customer_call_sid) == ("connected", customer.sid)


# 6 -------------------------------------------------------------------------------------

def test_6_agent_hanging_up_before_the_customer_joined_counts_nothing(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, agent_twiml = accepted(twilio, svc, clock, api, twilio_standin)
    place = svc.storage.get_callback(cb_id).place_in_line
    customer = ringing(twilio_standin, CUSTOMER)
    answer(twilio, customer, AnsweredBy="human")
    assert svc.storage.get_callback(cb_id).status == "dialing"  # answered is not connected
    api.status("bob", "offline")
    conference_event(twilio, agent_twiml, "participant-leave", leg)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (0, "agent-hung-up", False)
    assert twilio_standin.calls[customer.sid].status == "completed"  # not left alone
    # It keeps its place and is due at once: once Twilio says both calls ended (her phone
    # and theirs are busy until then), the free agent is offered it again.
    assert cb.place_in_line == place and cb.due_at <= clock.now()
    assert svc.storage.get_agent("alice").status == "busy"
    status(twilio, customer, "completed")
    status(twilio, leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, len(cb.history)) == ("dialing", 2)


def test_6_connected_only_when_the_customer_joins_and_the_customer_alone_ends_it(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, _, agent_twiml = accepted(twilio, svc, clock, api, twilio_standin)
    customer, customer_twiml = customer_joins(twilio, twilio_standin, agent_twiml)
    conference = customer_twiml.find("Dial/Conference")
    assert conference.get("endConferenceOnExit") == "true"
    assert conference.get("statusCallback") == agent_twiml.find("Dial/Conference").get("statusCallback")
    assert svc.storage.get_callback(cb_id).status == "connected"
    conference_event(twilio, agent_twiml, "participant-leave", customer)
    assert svc.storage.get_callback(cb_id).status == "completed"


# 7 -------------------------------------------------------------------------------------

def test_7_the_sweep_acting_on_a_stale_snapshot_changes_nothing(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    clock.advance(minutes=1)
    stale = svc.storage.needing_sweep(m.DIALING, clock.now())
    assert [c.callback_id for c in stale] == [cb_id]
    # Meanwhile the agent answers and accepts: the attempt moves on.
    agent_accepts(twilio, leg)
    from callback.storage import Conflict

    with pytest.raises(Conflict):
        svc.storage.commit(stale[0], transitions.postpone_sweep(stale[0], clock.now()))
    assert svc.dispatcher.reconcile(cb_id, stale[0].attempt_id) is False
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase) == ("dialing", "customer-ringing")
    assert svc.storage.get_agent("alice").status == "busy"
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1


def test_7_a_customer_dialed_by_another_process_mid_sweep_is_not_judged_not_placed(
        twilio, svc, clock, agents, api, twilio_standin, monkeypatch):
    """The sweep asks Twilio about a late agent join; meanwhile the conference webhook (another
    process) moves the attempt on and its create is on the way: the customer is in no list
    of Twilio's yet, which must not read as "never placed" (the number freed while it rings)."""
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    press(twilio, leg, answer(twilio, leg), "1")
    clock.advance(minutes=1)
    [due] = svc.storage.needing_sweep(m.DIALING, clock.now())
    assert due.phase == "agent-joining"
    call_status = svc.telephony.call_status

    def the_join_lands_meanwhile(sid):
        if sid == leg.sid:
            cb = svc.storage.get_callback(cb_id)
            svc.storage.commit(cb, transitions.advance(cb, phase="customer-ringing",
                                                       sweep_at=clock.now() + timedelta(minutes=1)))
        return call_status(sid)

    monkeypatch.setattr(svc.telephony, "call_status", the_join_lands_meanwhile)
    svc.dispatcher.reconcile(cb_id, due.attempt_id)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase) == ("dialing", "customer-ringing")


# 8 is in test_faults.py (timeouts and connection errors are StorageError).

# 9 -------------------------------------------------------------------------------------

def test_9_every_outbound_call_has_a_fallback_url_and_short_machine_detection(
        twilio, svc, clock, agents, api, twilio_standin):
    accepted(twilio, svc, clock, api, twilio_standin)
    creates = [r["params"] for r in twilio_standin.requests if r["path"].endswith("/Calls.json")
               and r["method"] == "POST"]
    assert len(creates) == 2
    for params in creates:
        [fallback] = params["FallbackUrl"]
        assert fallback.startswith(f"{PUBLIC}/voice/call-fallback?leg=")
        root = twiml(twilio.post_url(fallback, {"CallSid": "CA" + "3" * 32}))
        assert root.find("Hangup") is not None
    assert creates[1]["MachineDetectionTimeout"] == ["6"]


def test_9_no_caller_id_means_no_dialing_and_a_clear_error(twilio, svc, clock, agents, api,
                                                          twilio_standin, main_line):
    svc.storage.save_ivr(main_line.evolve(numbers=()))
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    assert not twilio_standin.placed()
    detail = api_get(svc, twilio, f"/api/callbacks/{cb_id}")
    assert detail["status"] == "pending" and "no phone number to call from" in detail["blocked"]


@pytest.mark.parametrize("answered_by, joins", [("human", True), ("unknown", True), (None, True),
                                                ("machine_start", False), ("fax", False),
                                                ("machine_end_beep", False)])
def test_9_answered_by_policy(twilio, svc, clock, agents, api, twilio_standin, answered_by, joins):
    cb_id, _, _ = accepted(twilio, svc, clock, api, twilio_standin)
    root = answer(twilio, ringing(twilio_standin, CUSTOMER), AnsweredBy=answered_by)
    assert (root.find("Dial/Conference") is not None) == joins
    cb = svc.storage.get_callback(cb_id)
    assert cb.attempts == (0 if joins else 1)


def test_9_a_holding_caller_who_hangs_up_on_the_way_frees_the_agent(
        twilio, svc, clock, agents, api, twilio_standin):
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    agent_accepts(twilio, leg)
    twilio_standin.end_call(caller)  # gone before their redirect ran
    clock.advance(minutes=1)
    sweep_once(svc)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-gone"]
    # He hears the notice and hangs up; free once Twilio says so (its status was lost).
    twilio_standin.end_call(leg.sid)
    clock.advance(minutes=1)
    sweep_once(svc)
    assert svc.storage.get_agent("bob").status == "available"
    assert svc.storage.get_waiting_call(caller) is None


def test_9_a_caller_arriving_after_the_agent_left_goes_back_in_line(
        twilio, svc, clock, agents, api, twilio_standin):
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    agent_accepts(twilio, leg)
    [moved] = twilio_standin.calls[caller].redirects
    status(twilio, leg, "completed")
    root = twiml(twilio.post_url(moved, {"CallSid": caller}))
    assert root.find("Enqueue").text == "Support" and "kept your place" in said(root)
    assert svc.storage.get_waiting_call(caller).joined_at == joined


def test_9_a_lost_conference_end_does_not_leave_a_callback_connected(
        twilio, svc, clock, agents, api, twilio_standin, main_line):
    cb_id, leg, agent_twiml = accepted(twilio, svc, clock, api, twilio_standin)
    customer, _ = customer_joins(twilio, twilio_standin, agent_twiml)
    twilio_standin.end_call(customer.sid)
    twilio_standin.end_call(leg.sid)
    clock.advance(minutes=3)
    sweep_once(svc)
    assert svc.storage.get_callback(cb_id).status == "completed"
    # So the same number may ask again, instead of "you already have a callback".
    call_sid = "CA" + "7" * 32
    holding_caller(svc, clock, "Sales", call_sid=call_sid)
    read_back = twiml(twilio.post_url(f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1",
                                      {"CallSid": call_sid, "Digits": "2125551234"}))
    confirmed = twiml(twilio.post_url(read_back.find("Gather").get("action"),
                                      {"CallSid": call_sid, "Digits": "1"}))
    assert [e.tag for e in confirmed] == ["Leave"]


# A holding caller offered to an agent ------------------------------------------------

def offered_and_accepted(twilio, svc, clock, api, standin):
    """A caller holding in Support, offered to Bob, who presses 1; returns (caller, Bob's
    leg, Bob's conference TwiML, the URL the caller was redirected to, when they joined)."""
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(standin, BOB)
    agent_twiml = agent_accepts(twilio, leg)
    [moved] = standin.calls[caller].redirects
    return caller, leg, agent_twiml, moved, joined


def test_a_late_final_status_of_an_earlier_offer_of_the_caller_changes_nothing(
        twilio, svc, clock, agents, api, twilio_standin):
    joined = clock.now()
    caller = holding_caller(svc, clock, "Sales")
    api.status("alice", "available")
    first = ringing(twilio_standin, ALICE)
    status(twilio, first, "no-answer")
    twilio_standin.end_call(first.sid)
    # One miss: she is still available, and the same caller is offered to her again.
    second = ringing(twilio_standin, ALICE)
    assert second.sid != first.sid
    # The first offer's final status, delivered again and late.
    status(twilio, first, "no-answer")
    status(twilio, first, "completed")
    call = svc.storage.get_waiting_call(caller)
    assert (call.status, call.agent_id, call.joined_at) == (m.CONNECTING, "alice", joined)
    alice = svc.storage.get_agent("alice")
    assert (alice.status, alice.call_sid) == ("reserved", second.sid)
    # The caller is not in line while Alice rings for them: Bob is not offered them too.
    api.status("bob", "available")
    assert twilio_standin.placed(to=BOB) == []
    # The second offer runs its course as if nothing had come.
    agent_accepts(twilio, second)
    assert len(twilio_standin.calls[caller].redirects) == 1


def test_an_agent_who_leaves_before_the_holding_caller_joins_sends_them_back_with_their_place(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, moved, joined = offered_and_accepted(twilio, svc, clock, api,
                                                                    twilio_standin)
    # Bob hangs up in the conference before the caller is in; his final status is late.
    conference_event(twilio, agent_twiml, "participant-leave", leg)
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    # Back in line with their place, out of that offer: Bob, free again, is rung anew.
    back = svc.storage.get_waiting_call(caller)
    assert back.joined_at == joined and back.offer_id != query_of(moved)["attempt"]
    assert ringing(twilio_standin, BOB).sid != leg.sid
    root = twiml(twilio.post_url(moved, {"CallSid": caller}))
    assert root.find("Enqueue").text == "Support" and "kept your place" in said(root)
    assert root.find("Dial") is None
    assert svc.storage.get_waiting_call(caller).joined_at == joined


def test_a_repeated_or_late_conference_event_of_an_earlier_offer_changes_nothing(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, moved, joined = offered_and_accepted(twilio, svc, clock, api,
                                                                    twilio_standin)
    conference_event(twilio, agent_twiml, "participant-leave", leg)
    conference_event(twilio, agent_twiml, "conference-end")
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    twiml(twilio.post_url(moved, {"CallSid": caller}))  # back in line
    # Bob, free again, is offered the same caller: a second offer.
    second = ringing(twilio_standin, BOB)
    assert second.sid != leg.sid
    # The first offer's conference events, again and late: the caller's join included.
    conference_event(twilio, agent_twiml, "participant-leave", leg)
    conference_event(twilio, agent_twiml, "participant-join", twilio_standin.calls[caller])
    conference_event(twilio, agent_twiml, "conference-end")
    status(twilio, leg, "completed")
    call = svc.storage.get_waiting_call(caller)
    assert call is not None and (call.status, call.agent_id, call.joined_at) == (
        m.CONNECTING, "bob", joined)
    bob = svc.storage.get_agent("bob")
    assert (bob.status, bob.call_sid) == ("reserved", second.sid)


def test_a_caller_in_the_conference_with_the_agent_is_served_once(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, moved, _ = offered_and_accepted(twilio, svc, clock, api, twilio_standin)
    joined = twiml(twilio.post_url(moved, {"CallSid": caller}))
    caller_leg = twilio_standin.calls[caller]
    conference_event(twilio, agent_twiml, "participant-join", leg)
    for _ in range(2):
        conference_event(twilio, joined, "participant-join", caller_leg)
    assert svc.storage.get_waiting_call(caller) is None
    [hour] = svc.storage.hourly_counts("Support", clock.now(), clock.now())
    assert hour["answered"] == 1
    # The conversation goes on: Bob is busy until his own call ends.
    assert svc.storage.get_agent("bob").status == "busy"
    for event in ("participant-leave", "participant-leave", "conference-end"):
        conference_event(twilio, joined, event, caller_leg if event != "conference-end" else None)
    assert svc.storage.get_waiting_call(caller) is None
    status(twilio, leg, "completed")
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("bob").status == "available"


def test_a_holding_caller_whose_join_event_was_lost_is_found_in_the_conference_by_the_sweep(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, moved, _ = offered_and_accepted(twilio, svc, clock, api, twilio_standin)
    twiml(twilio.post_url(moved, {"CallSid": caller}))
    twilio_standin.calls[caller].status = "in-progress"
    conference = agent_twiml.find("Dial/Conference").text
    twilio_standin.conference_joined(conference, leg.sid, start_on_enter=False, end_on_exit=True)
    twilio_standin.conference_joined(conference, caller, end_on_exit=True)
    clock.advance(minutes=1)
    sweep_once(svc)
    assert svc.storage.get_waiting_call(caller) is None
    [hour] = svc.storage.hourly_counts("Support", clock.now(), clock.now())
    assert hour["answered"] == 1
    assert svc.storage.get_agent("bob").status == "busy"


def test_an_agent_silent_past_the_whisper_is_hung_up_and_the_holding_caller_keeps_their_place(
        twilio, svc, clock, agents, api, twilio_standin):
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    answer(twilio, leg)  # the whisper plays; the key press never reaches the app
    clock.advance(minutes=2)
    sweep_once(svc)
    assert twilio_standin.calls[leg.sid].status == "completed"
    # Hung up; his final status is lost: the next sweep reads it from Twilio.
    clock.advance(minutes=1)
    sweep_once(svc)
    bob = svc.storage.get_agent("bob")
    assert (bob.status, bob.away_reason) == ("offline", "did not accept an offered call")
    back = svc.storage.get_waiting_call(caller)
    assert (back.status, back.joined_at) == ("waiting", joined)


# The other party comes only once the agent is in the conference ------------------------

def accepting(twilio, svc, clock, api, standin):
    """A callback rung to Alice, who presses 1 and is on the way into the conference (her
    join not reported yet); returns (callback id, her leg, her TwiML)."""
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(standin, ALICE)
    return cb_id, leg, press(twilio, leg, answer(twilio, leg), "1")


def test_a_customer_joining_before_the_agent_is_never_connected_without_them(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin):
    # Every dial request from here on times out after Twilio placed the call.
    twilio_standin.time_out_after_placing(1.5, count=3)
    cb_id, leg, agent_twiml = accepting(twilio, svc, clock, api, twilio_standin)
    assert agent_twiml.find("Dial/Conference") is not None  # the agent is on the way in
    # Whoever joins before the agent (a customer dialed too early, who answered; anyone
    # else) and leaves again neither connects nor completes the callback.
    stray = SimpleNamespace(sid="CA" + "5" * 32)
    for early in twilio_standin.placed(to=CUSTOMER) + [stray]:
        if early is not stray:
            answer(twilio, early, AnsweredBy="human")
        conference_event(twilio, agent_twiml, "participant-join", early)
        conference_event(twilio, agent_twiml, "participant-leave", early)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase, cb.attempts) == ("dialing", "agent-joining", 0)
    assert not twilio_standin.placed(to=CUSTOMER)
    # The agent is in: now the customer is dialed (maybe placed), answers and joins.
    agent_joins(twilio, leg, agent_twiml)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    answer(twilio, customer, AnsweredBy="human")
    conference_event(twilio, agent_twiml, "participant-join", customer)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.customer_call_sid) == ("connected", customer.sid)


def test_an_agent_who_hangs_up_before_joining_counts_nothing_and_nobody_is_dialed(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, agent_twiml = accepting(twilio, svc, clock, api, twilio_standin)
    place = svc.storage.get_callback(cb_id).place_in_line
    assert svc.storage.get_agent("alice").status == "busy"
    status(twilio, leg, "completed")
    twilio_standin.end_call(leg.sid)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (0, "agent-hung-up", False)
    assert cb.place_in_line == place and cb.due_at <= clock.now()
    # Released from that attempt (and, free, offered the callback again at once).
    assert svc.storage.get_agent("alice").call_sid != leg.sid
    # A late join of that attempt's agent changes nothing: nobody is dialed for it.
    agent_joins(twilio, leg, agent_twiml)
    assert not twilio_standin.placed(to=CUSTOMER)
    assert svc.storage.get_callback(cb_id).history[0].outcome == "agent-hung-up"


def test_an_agents_lost_join_is_found_by_the_sweep_and_the_customer_dialed_once(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, _ = accepting(twilio, svc, clock, api, twilio_standin)
    assert not twilio_standin.placed(to=CUSTOMER)
    # Alice is in the conference; its participant-join never reached the app.
    conference = svc.storage.get_callback(cb_id).conference_name
    twilio_standin.conference_joined(conference, leg.sid, start_on_enter=False, end_on_exit=True)
    for _ in range(3):
        clock.advance(minutes=1)
        sweep_once(svc)
    [customer] = twilio_standin.placed(to=CUSTOMER)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase, cb.customer_call_sid) == ("dialing", "customer-ringing", customer.sid)


def test_an_agent_never_in_the_conference_after_accepting_is_hung_up_and_nothing_counts(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, _ = accepting(twilio, svc, clock, api, twilio_standin)
    api.status("bob", "offline")
    clock.advance(minutes=1)
    sweep_once(svc)
    assert twilio_standin.calls[leg.sid].status == "completed"
    cb = svc.storage.get_callback(cb_id)
    assert (cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (0, "agent-hung-up", False)
    assert not twilio_standin.placed(to=CUSTOMER)


def test_a_repeated_agent_join_dials_the_customer_once(twilio, svc, clock, agents, api, twilio_standin):
    cb_id, leg, agent_twiml = accepting(twilio, svc, clock, api, twilio_standin)
    for _ in range(3):
        agent_joins(twilio, leg, agent_twiml)
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1


def redirects_of(standin, call_sid):
    """Where the REST API redirected a call (none: Twilio never heard of it)."""
    call = standin.calls.get(call_sid)
    return call.redirects if call else []


def offered_and_pressed(twilio, svc, clock, api, standin):
    """A caller holding in Support, offered to Bob, who presses 1 and is on the way into
    the conference; returns (caller, Bob's leg, his TwiML, when the caller joined the line)."""
    joined = clock.now()
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(standin, BOB)
    return caller, leg, press(twilio, leg, answer(twilio, leg), "1"), joined


def test_a_holding_caller_is_moved_only_once_the_agent_is_in_the_conference(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, _ = offered_and_pressed(twilio, svc, clock, api, twilio_standin)
    assert not redirects_of(twilio_standin, caller)
    # A join of the caller's CallSid before the agent is in serves nobody.
    conference_event(twilio, agent_twiml, "participant-join", SimpleNamespace(sid=caller))
    assert svc.storage.get_waiting_call(caller).status == m.CONNECTING
    for _ in range(2):  # repeated: moved once
        agent_joins(twilio, leg, agent_twiml)
    [moved] = twilio_standin.calls[caller].redirects
    joined = twiml(twilio.post_url(moved, {"CallSid": caller}))
    conference_event(twilio, joined, "participant-join", twilio_standin.calls[caller])
    assert svc.storage.get_waiting_call(caller) is None


def test_an_agent_who_hangs_up_before_joining_leaves_the_holding_caller_in_line(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, _, joined = offered_and_pressed(twilio, svc, clock, api, twilio_standin)
    offer_id = svc.storage.get_waiting_call(caller).offer_id
    status(twilio, leg, "completed")
    twilio_standin.end_call(leg.sid)
    assert not redirects_of(twilio_standin, caller)
    # Back in line with their place, out of that offer (and Bob, free, offered them anew).
    back = svc.storage.get_waiting_call(caller)
    assert back.joined_at == joined and back.offer_id != offer_id
    assert svc.storage.get_agent("bob").call_sid != leg.sid


def test_an_agents_lost_join_on_a_holding_caller_is_found_by_the_sweep_once(
        twilio, svc, clock, agents, api, twilio_standin):
    caller, leg, agent_twiml, _ = offered_and_pressed(twilio, svc, clock, api, twilio_standin)
    room = agent_twiml.find("Dial/Conference").text
    twilio_standin.conference_joined(room, leg.sid, start_on_enter=False, end_on_exit=True)
    for _ in range(3):
        clock.advance(minutes=1)
        sweep_once(svc)
    assert len(redirects_of(twilio_standin, caller)) == 1
    assert svc.storage.get_agent("bob").status == "busy"


@pytest.mark.parametrize("code", [21215, 21216, 21219])
def test_a_refusal_that_describes_the_account_holds_the_callback_and_tells_the_admin(
        twilio, svc, clock, agents, api, twilio_standin, code, caplog):
    """Geographic permissions, an account without an approved customer profile, a trial
    account: the number is not at fault. The callback is held (never counted, never failed),
    the dashboard says what to fix, and the error log carries the on-call alarm's pattern."""
    held = store_callback(svc, clock, call_sid="CA" + "1" * 32, joined_minutes_ago=10)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
    twilio_standin.fail_next(400, code, message="refused")
    agent_joins(twilio, leg, agent_twiml)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=account"]
    cb = svc.storage.get_callback(held)
    assert (cb.status, cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (
        "pending", 0, "account-refused", False)
    assert "twilio-account-refusal" in caplog.text and "+12125551234" not in caplog.text
    [alert] = svc.storage.active_alerts(clock.now())
    assert alert.count == 1 and str(code) in alert.detail
    # Tried again only after the hold, then served once the account is fixed.
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    clock.advance(minutes=5)
    sweep_once(svc)
    assert len(twilio_standin.placed(to=ALICE)) == 1
    clock.advance(minutes=6)
    sweep_once(svc)
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1
    # A day later the alert is gone from the dashboard.
    clock.advance(minutes=25 * 60)
    assert svc.storage.active_alerts(clock.now()) == []


def test_two_offers_of_one_caller_in_a_row_meet_in_two_rooms(twilio, svc, clock, agents, api, twilio_standin):
    """Bob's offer ends while he is still in his room (the caller could not be moved to
    him); Alice's offer of the same caller, right after, meets in a room of its own."""
    caller = holding_caller(svc, clock, "Sales")
    api.status("bob", "available")
    bob = ringing(twilio_standin, BOB)
    bob_twiml = press(twilio, bob, answer(twilio, bob), "1")
    first_room = bob_twiml.find("Dial/Conference").text
    twilio_standin.conference_joined(first_room, bob.sid, start_on_enter=False, end_on_exit=True)
    twilio_standin.fail_next(500, 20500)  # the move of the caller to Bob
    agent_joins(twilio, bob, bob_twiml)
    assert bob.redirects == [f"{PUBLIC}/voice/notice?message=caller-back-in-line"]
    assert svc.storage.get_waiting_call(caller).status == m.WAITING
    # Before Bob, hearing his notice, is out of his room, Alice takes the caller.
    api.status("alice", "available")
    alice = ringing(twilio_standin, ALICE)
    second_room = agent_accepts(twilio, alice).find("Dial/Conference").text
    [moved] = twilio_standin.calls[caller].redirects
    joined = twiml(twilio.post_url(moved, {"CallSid": caller}))
    assert joined.find("Dial/Conference").text == second_room != first_room
    conference_event(twilio, joined, "participant-join", twilio_standin.calls[caller])
    assert svc.storage.get_waiting_call(caller) is None
