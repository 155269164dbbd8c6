"""Who is on the phone (#30): every call the app places is owned until Twilio says it ended.

Each journey below rang someone already on the phone, or stranded an agent, before the
call ledger; they run through signed webhooks on DynamoDB Local with the Twilio stand-in.
"""
import pytest
from conftest import PUBLIC
from test_dispatch import (
    ALICE,
    BOB,
    CUSTOMER,
    agent_accepts,
    agent_joins,
    agents,  # noqa: F401  (a fixture)
    answer,
    api,  # noqa: F401  (a fixture)
    conference_event,
    holding_caller,
    press,
    ringing,
    status,
    store_callback,
)
from test_real_network import short_rest_timeout, wait_for  # noqa: F401  (fixtures)

from callback.work.ledger import CREATES_IN_FLIGHT
from callback.work.sweep import sweep_once

SUPPORT_CALLBACK = "CA" + "d" * 32
CALLBACK = "CA" + "c" * 32


def held_by(svc):
    """The attempt the callback's latest try was."""
    return svc.storage.get_callback(CALLBACK).history[0].attempt_id


def live(standin, number):
    """The stand-in's calls to `number` that are not over."""
    return [c for c in standin.placed(to=number) if c.status not in ("completed", "busy", "no-answer",
                                                                      "failed", "canceled")]


def initiated(twilio, call):
    """Twilio's `initiated` status event of a call (it names the CallSid)."""
    status(twilio, call, "initiated")


# 1 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("learned_by", ["initiated-event", "sweep"])
def test_1_a_customer_leg_whose_callsid_came_late_is_hung_up_and_never_doubled(
        short_rest_timeout, twilio, svc, clock, agents, api, twilio_standin, learned_by):  # noqa: F811
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
    # The customer's create times out after Twilio placed the call.
    twilio_standin.time_out_after_placing(1.5)
    agent_joins(twilio, leg, agent_twiml)
    [customer] = wait_for(twilio_standin, CUSTOMER)
    assert svc.storage.get_leg(CUSTOMER).call_sid is None
    # Alice hangs up before the app knows the customer's CallSid: the attempt ends.
    conference_event(twilio, agent_twiml, "participant-leave", leg)
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"
    if learned_by == "initiated-event":
        # Twilio's `initiated` event names the call: the leg, over, is hung up at once, and
        # its number stays held until Twilio says that call ended.
        initiated(twilio, customer)
        assert twilio_standin.calls[customer.sid].status == "completed"
        held = svc.storage.get_leg(CUSTOMER)
        assert held is not None and held.call_sid == customer.sid and held.over
        sweep_once(svc)
        assert len(twilio_standin.placed(to=CUSTOMER)) == 1, "not dialed while the leg is held"
        status(twilio, customer, "completed")
    else:
        # Every event of it lost: the sweep finds it in Twilio's list of calls to the number,
        # hangs it up, and reads that it ended.
        clock.advance(minutes=1)
        sweep_once(svc)
        assert twilio_standin.calls[customer.sid].status == "completed"
    assert svc.storage.get_leg(CUSTOMER) is None or svc.storage.get_leg(CUSTOMER).attempt_id != held_by(svc)
    # The next attempt dials the customer once, with no other call to them live.
    sweep_once(svc)
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    assert len(twilio_standin.placed(to=CUSTOMER)) == 2
    assert len(live(twilio_standin, CUSTOMER)) == 1


# 2 -------------------------------------------------------------------------------------

def test_2_a_notice_that_failed_is_retried_and_the_agent_freed_once_their_call_ends(
        twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    agent_accepts(twilio, leg)
    customer = ringing(twilio_standin, CUSTOMER)
    # The customer does not answer; Twilio refuses the redirect to the notice twice (the
    # app's own try and its immediate second).
    twilio_standin.fail_next(503, 20503, count=2)
    status(twilio, customer, "no-answer")
    assert leg.redirects == []
    alice = svc.storage.get_agent("alice")
    assert alice.status == "busy", "alone in the conference, but on the line: not free"
    # The sweep tells her, then her call ends and she is free.
    clock.advance(minutes=1)
    sweep_once(svc)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=retry"]
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"


def test_2_an_agent_whose_notice_never_lands_is_hung_up_then_freed(
        twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    agent_accepts(twilio, leg)
    customer = ringing(twilio_standin, CUSTOMER)
    twilio_standin.fail_next(503, 20503, count=2)
    status(twilio, customer, "no-answer")
    # Every later redirect fails too: two tries of the notice, then her call is ended.
    for _ in range(6):
        twilio_standin.fail_next(500, 20500, count=1)
        clock.advance(minutes=5)
        sweep_once(svc)
        if twilio_standin.calls[leg.sid].status == "completed":
            break
    assert twilio_standin.calls[leg.sid].status == "completed"
    first_attempt = svc.storage.get_callback(CALLBACK).history[0].attempt_id
    clock.advance(minutes=5)
    sweep_once(svc)
    # Freed: available, or already rung for the callback's next attempt.
    alice = svc.storage.get_agent("alice")
    assert alice.status in ("available", "reserved") and alice.attempt_id != first_attempt
    assert svc.storage.get_leg(ALICE) is None or svc.storage.get_leg(ALICE).attempt_id != first_attempt


# 3 and 4 -------------------------------------------------------------------------------

def test_3_a_holding_caller_who_hangs_up_right_after_the_agent_pressed_1_ends_the_offer(
        twilio, svc, clock, agents, api, twilio_standin):
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    agent_twiml = press(twilio, leg, answer(twilio, leg), "1")
    # The caller hangs up: Twilio ends their Enqueue with QueueResult=hangup.
    twilio_standin.end_call(caller)
    response = twilio.post("/voice/enqueue-done", {"CallSid": caller, "QueueResult": "hangup"},
                           query={"ivr": "Main Line", "queue": "Support"})
    assert response.status_code == 200
    assert svc.storage.get_waiting_call(caller) is None
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-gone"]
    # His join, late, moves nobody; he stays busy until his call ends, then is free.
    agent_joins(twilio, leg, agent_twiml)
    assert svc.storage.get_agent("bob").status == "busy"
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("bob").status == "available"


def test_4_an_agent_told_the_caller_is_gone_is_not_rung_again_while_on_the_line(
        twilio, svc, clock, agents, api, twilio_standin):
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    leg = ringing(twilio_standin, BOB)
    next_caller = holding_caller(svc, clock, "Support", call_sid="CA" + "7" * 32, caller_number="+13125550000")
    # The first caller hangs up while Bob joins: moving them fails with 21220.
    twilio_standin.end_call(caller)
    agent_accepts(twilio, leg)
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-gone"]
    # Still on the line hearing it: the next caller is not offered to him yet.
    assert [c.sid for c in twilio_standin.placed(to=BOB)] == [leg.sid]
    assert svc.storage.get_agent("bob").status == "busy"
    status(twilio, leg, "completed")
    second = ringing(twilio_standin, BOB)
    assert second.sid != leg.sid
    assert svc.storage.get_waiting_call(next_caller).agent_id == "bob"


def test_4_an_agent_who_declines_cannot_be_rung_during_the_decline_notice(
        twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    press(twilio, leg, answer(twilio, leg), "2")
    # She says "available" during the notice: refused with the reason, nobody rung.
    refused = api.status("alice", "available")
    assert refused.status_code == 409
    assert "call" in refused.get_json()["error"]
    assert len(twilio_standin.placed(to=ALICE)) == 1
    # Her call ends: she is away (she declined) and may come back herself.
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("alice").status == "offline"
    assert api.status("alice", "available").status_code == 200
    assert len(live(twilio_standin, ALICE)) == 1


# 6 -------------------------------------------------------------------------------------

def test_6_one_customer_with_callbacks_in_two_queues_is_dialed_by_one_agent_at_a_time(
        twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock, queue="Sales")
    store_callback(svc, clock, call_sid=SUPPORT_CALLBACK, queue="Support")
    api.status("alice", "available")
    api.status("bob", "available")
    # Alice is rung for the Sales callback; Bob (Sales and Support) is not rung for the
    # Support one while the customer's number is held.
    rung = [number for number in (ALICE, BOB) if twilio_standin.placed(to=number)]
    assert rung == [ALICE]
    first = ringing(twilio_standin, ALICE)
    agent_twiml = agent_accepts(twilio, first)
    customer = ringing(twilio_standin, CUSTOMER)
    answer(twilio, customer, AnsweredBy="human")
    conference_event(twilio, agent_twiml, "participant-join", customer)
    sweep_once(svc)
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1
    # The conversation ends; once Twilio says the customer's call ended, the other
    # queue's callback goes to the free agent.
    conference_event(twilio, agent_twiml, "participant-leave", customer)
    twilio_standin.end_call(customer.sid)
    status(twilio, customer, "completed")
    second = ringing(twilio_standin, BOB)
    agent_accepts(twilio, second)
    assert len(twilio_standin.placed(to=CUSTOMER)) == 2 and len(live(twilio_standin, CUSTOMER)) == 1


# the ledger's own rules ------------------------------------------------------------------

def test_an_agent_and_a_customer_number_are_held_from_the_claim(svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_leg, customer_leg = svc.storage.get_leg(ALICE), svc.storage.get_leg(CUSTOMER)
    attempt = svc.storage.get_callback(cb_id).attempt_id
    assert (agent_leg.role, agent_leg.attempt_id, agent_leg.call_sid) == (
        "agent", attempt, ringing(twilio_standin, ALICE).sid)
    assert (customer_leg.role, customer_leg.state, customer_leg.call_sid) == ("customer", "reserved", None)


def test_a_customer_number_never_dialed_is_freed_when_the_attempt_ends(
        twilio, svc, clock, agents, api, twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    first = svc.storage.get_callback(CALLBACK).attempt_id
    leg = ringing(twilio_standin, ALICE)
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "no-answer")
    # That attempt holds nothing now (she, free again, may already hold the next one's).
    for number in (CUSTOMER, ALICE):
        held = svc.storage.get_leg(number)
        assert held is None or held.attempt_id != first


def test_dispatch_paces_itself_while_creates_wait_in_twilios_queue(svc, clock, agents, api, twilio_standin):
    """Creates Twilio has not started (queued, or not answered yet) count against the pace:
    past it, an available agent waits for the next dispatch."""
    from callback.domain import records as m

    for n in range(CREATES_IN_FLIGHT):
        number = f"+1646555{n:04d}"
        leg = svc.dispatcher.new_leg("customer", "callback", f"CB{n}", f"A{n}", number, clock.now())
        svc.storage.leg_record(leg).save()
        svc.storage.change_leg(number, leg.leg_id, state=m.LEG_PLACING, placed_at=clock.now())
    store_callback(svc, clock)
    api.status("alice", "available")
    assert twilio_standin.placed(to=ALICE) == []
    clock.advance(minutes=2)  # the pace counts recent creates only
    sweep_once(svc)
    assert ringing(twilio_standin, ALICE)


def test_a_caller_holding_in_one_queue_is_not_called_back_for_another_until_they_hang_up(
        twilio, svc, clock, agents, api, twilio_standin):
    """Their own call is live while they hold: a callback of theirs in another queue waits."""
    from test_caller_flow import QUEUE_SID, wait_url
    from test_dispatch import CUSTOMER as NUMBER

    store_callback(svc, clock, queue="Sales")
    holding = "CA" + "9" * 32
    svc.storage.remove_waiting_call(CALLBACK)  # the callback's own call is long over
    params = {"CallSid": holding, "AccountSid": "AC" + "1" * 32, "From": NUMBER, "To": "+15005550006",
              "CallStatus": "in-progress", "QueueTime": "0", "QueuePosition": "1", "QueueSid": QUEUE_SID}
    assert twilio.post_url(wait_url("Support"), params).status_code == 200
    assert svc.storage.get_leg(NUMBER).role == "caller"
    api.status("alice", "available")
    assert twilio_standin.placed(to=ALICE) == [], "not rung for a customer who is on the line"
    # They hang up in the queue: their number is free, and the callback goes.
    twilio.post("/voice/enqueue-done", {"CallSid": holding, "From": NUMBER, "QueueResult": "hangup"},
                query={"ivr": "Main Line", "queue": "Support"})
    assert svc.storage.get_leg(NUMBER) is None
    sweep_once(svc)
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    assert len(twilio_standin.placed(to=NUMBER)) == 1


def test_a_caller_whose_hang_up_was_never_reported_is_freed_once_twilio_says_their_call_ended(
        twilio, svc, clock, agents, api, twilio_standin):
    holding = "CA" + "9" * 32
    svc.dispatcher.caller_holding(holding, CUSTOMER)
    assert svc.storage.get_leg(CUSTOMER).role == "caller"
    clock.advance(minutes=2)
    twilio_standin.end_call(holding)  # Twilio knows no call of that sid: it reads as over
    sweep_once(svc)
    assert svc.storage.get_leg(CUSTOMER) is None


def test_a_caller_who_called_in_while_their_callback_held_their_number_is_held_after_it(
        twilio, svc, clock, agents, api, twilio_standin):
    """The callback's attempt held the number when they started holding: once it lets the
    number go, the sweep holds it for the caller, so the next attempt waits for them."""
    store_callback(svc, clock, queue="Sales")
    svc.storage.remove_waiting_call(CALLBACK)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    holding = holding_caller(svc, clock, "Support", call_sid="CA" + "9" * 32)
    svc.dispatcher.caller_holding(holding, CUSTOMER)  # refused: the attempt holds the number
    assert svc.storage.get_leg(CUSTOMER).role == "customer"
    press(twilio, leg, answer(twilio, leg), "2")  # she declines: the attempt ends
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")  # she is away; the number is let go
    clock.advance(minutes=1)
    sweep_once(svc)
    assert svc.storage.get_leg(CUSTOMER).role == "caller"
    assert len(twilio_standin.placed(to=CUSTOMER)) == 0


def test_a_customer_who_calls_in_while_their_attempt_rings_the_agent_is_not_dialed(
        twilio, svc, clock, agents, api, twilio_standin):
    """The attempt has reserved their number and rings the agent when they call in and
    hold: the agent accepts, but the customer is not dialed into a busy phone; the number
    passes to the caller, and the callback keeps its place until their call ends."""
    store_callback(svc, clock, queue="Sales")
    svc.storage.remove_waiting_call(CALLBACK)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    attempt = svc.storage.get_callback(CALLBACK).attempt_id
    holding = holding_caller(svc, clock, "Support", call_sid="CA" + "9" * 32)
    svc.dispatcher.caller_holding(holding, CUSTOMER)
    assert svc.storage.get_leg(CUSTOMER).on_line == holding
    agent_twiml = agent_accepts(twilio, leg)
    agent_joins(twilio, leg, agent_twiml)
    assert twilio_standin.placed(to=CUSTOMER) == [], "never dialed while they are on the line"
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=customer-on-line"]
    cb = svc.storage.get_callback(CALLBACK)
    assert (cb.status, cb.attempts) == ("pending", 0)
    assert (cb.history[0].attempt_id, cb.history[0].outcome, cb.history[0].counted) == (
        attempt, "customer-on-line", False)
    held = svc.storage.get_leg(CUSTOMER)
    assert (held.role, held.call_sid) == ("caller", holding), "the number passes to the caller at once"
    # Alice hears her notice and hangs up; the callback waits while its customer holds.
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    sweep_once(svc)
    assert twilio_standin.placed(to=CUSTOMER) == []
    assert len(twilio_standin.placed(to=ALICE)) == 1
    # Their call ends: the callback is theirs to get.
    twilio.post("/voice/enqueue-done", {"CallSid": holding, "From": CUSTOMER, "QueueResult": "hangup"},
                query={"ivr": "Main Line", "queue": "Support"})
    assert svc.storage.get_leg(CUSTOMER) is None
    sweep_once(svc)
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    assert len(twilio_standin.placed(to=CUSTOMER)) == 1


def test_a_caller_who_calls_in_once_their_customer_leg_is_being_dialed_changes_nothing(
        twilio, svc, clock, agents, api, twilio_standin):
    """Once the create has gone out the leg is not marked: the attempt owns that call, and
    the sweep holds the number for the caller after the attempt lets it go."""
    store_callback(svc, clock, queue="Sales")
    svc.storage.remove_waiting_call(CALLBACK)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    customer = ringing(twilio_standin, CUSTOMER)
    svc.dispatcher.caller_holding("CA" + "9" * 32, CUSTOMER)
    held = svc.storage.get_leg(CUSTOMER)
    assert (held.role, held.call_sid, held.on_line) == ("customer", customer.sid, None)


def test_a_notice_twilio_refused_is_tried_again_within_seconds_not_at_the_next_sweep(
        twilio, svc, clock, agents, api, twilio_standin):
    """The failed notice is handed to a quick retry in the background (the process's
    hand-off runner), five seconds on: the agent does not wait for the minute sweep."""
    from callback.work.handoff import settle_now
    from callback.work.ledger import SOON

    retries = []
    svc.dispatcher.later = lambda numbers, after: retries.append((numbers, after))
    store_callback(svc, clock)
    api.status("alice", "available")
    leg = ringing(twilio_standin, ALICE)
    agent_accepts(twilio, leg)
    customer = ringing(twilio_standin, CUSTOMER)
    twilio_standin.fail_next(429, 20429, count=2)
    status(twilio, customer, "no-answer")
    assert leg.redirects == [] and retries == [([ALICE], SOON)]
    settle_now(svc, [ALICE])
    assert leg.redirects == [], "not before its pause"
    clock.advance(seconds=5)
    # Twilio refuses once more: tried again later still, a bounded number of times.
    twilio_standin.fail_next(503, 20503, count=1)
    settle_now(svc, [ALICE])
    assert leg.redirects == [] and len(retries) == 2 and retries[1][1].total_seconds() == 15
    clock.advance(seconds=15)
    settle_now(svc, [ALICE])
    assert leg.redirects == [f"{PUBLIC}/voice/notice?message=retry"]
    twilio_standin.end_call(leg.sid)
    status(twilio, leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"
