"""Dispatch journeys with a controlled clock: agents, agent-first callbacks, retries,
expiration, the sweep, and Twilio answering through the stand-in over real HTTP."""
import io
import wave
from datetime import timedelta

import pytest
from conftest import API_TOKEN, IVR_NUMBER, PUBLIC, said, twiml

from callback.domain.records import Callback
from callback.work.sweep import SweepReport, sweep_once

ALICE = "+14155550101"
BOB = "+14155550102"
CUSTOMER = "+12125551234"


@pytest.fixture
def agents(svc, main_line, clock):
    """Alice serves Sales; Bob serves Sales and Support. Both start offline."""
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"],
                                   now=clock.now(), create=True)
    svc.storage.save_agent_profile("bob", name="Bob", phone=BOB, queues=["Sales", "Support"],
                                   now=clock.now(), create=True)


@pytest.fixture
def api(app):
    client = app.test_client()

    class Api:
        def status(self, agent_id, status):
            return client.put(f"/api/agents/{agent_id}/status", json={"status": status},
                              headers={"Authorization": f"Bearer {API_TOKEN}"})

    return Api()


def store_callback(svc, clock, call_sid="CA" + "c" * 32, number=CUSTOMER, queue="Sales",
                   priority=10, joined_minutes_ago=2):
    now = clock.now()
    cb = Callback(call_sid, number, "Main Line", queue, now, now - timedelta(minutes=joined_minutes_ago),
                  priority, now, now + timedelta(minutes=120))
    svc.storage.add_waiting_call(call_sid, ivr_name="Main Line", queue_name=queue, caller=number,
                                 joined_at=cb.place_in_line)
    assert svc.storage.create_callback(cb, call_sid).outcome == "created"
    return call_sid


def holding_caller(svc, clock, queue, minutes_ago=0, caller_number=CUSTOMER, call_sid="CA" + "e" * 32):
    """A caller waiting in a queue since `minutes_ago`; returns their CallSid."""
    svc.storage.add_waiting_call(call_sid, ivr_name="Main Line", queue_name=queue, caller=caller_number,
                                 joined_at=clock.now() - timedelta(minutes=minutes_ago))
    return call_sid


def ringing(standin, to):
    calls = [c for c in standin.placed(to=to) if c.status not in ("completed",)]
    assert calls, f"nothing ringing {to}"
    return calls[-1]


def answer(twilio, call, **extra):
    """The callee picks up: Twilio fetches the call's Url (and its record says in-progress)."""
    call.status = "in-progress"
    return twiml(twilio.post_url(call.url, {"CallSid": call.sid, "CallStatus": "in-progress",
                                            "To": call.to, "From": call.from_, **extra}))


def status(twilio, call, call_status, **extra):
    """Twilio reports a call status to the call's StatusCallback."""
    response = twilio.post_url(call.status_callback, {"CallSid": call.sid, "CallStatus": call_status,
                                                      "To": call.to, "From": call.from_, **extra})
    assert response.status_code == 200
    return response


def conference_end(twilio, agent_twiml):
    return conference_event(twilio, agent_twiml, "conference-end")


def conference_event(twilio, conference_twiml, event, call=None):
    """Twilio reports a conference event (a participant's, with their CallSid)."""
    conf = conference_twiml.find("Dial/Conference")
    response = twilio.post_url(conf.get("statusCallback"), {
        "StatusCallbackEvent": event, "FriendlyName": conf.text, "ConferenceSid": "CF" + "0" * 32,
        "CallSid": call.sid if call else None})
    assert response.status_code == 200
    return response


def press(twilio, call, whisper, digits):
    """The agent presses keys (or nothing: "") after the whisper."""
    gather = whisper.find("Gather")
    assert gather is not None and gather.get("actionOnEmptyResult") == "true"
    return twiml(twilio.post_url(gather.get("action"), {"CallSid": call.sid, "Digits": digits,
                                                        "CallStatus": "in-progress"}))


def agent_accepts(twilio, call):
    """The agent answers, hears the whisper, presses 1 and is in the conference (its
    participant-join reported); returns their conference TwiML."""
    whisper = answer(twilio, call)
    return agent_joins(twilio, call, press(twilio, call, whisper, "1"))


def agent_joins(twilio, call, agent_twiml):
    """Twilio reports the agent in their conference; returns their conference TwiML."""
    conference_event(twilio, agent_twiml, "participant-join", call)
    return agent_twiml


def customer_joins(twilio, standin, agent_twiml, answered_by="human"):
    """The customer answers (a person) and joins the agent's conference; returns their leg."""
    customer_leg = ringing(standin, CUSTOMER)
    customer_twiml = answer(twilio, customer_leg, AnsweredBy=answered_by)
    conference_event(twilio, agent_twiml, "participant-join", customer_leg)
    return customer_leg, customer_twiml


def test_agent_api_needs_the_bearer_token(app, agents):
    client = app.test_client()
    assert client.get("/api/agents").status_code == 401
    assert client.get("/api/agents", headers={"Authorization": "Bearer wrong"}).status_code == 401
    listed = client.get("/api/agents", headers={"Authorization": f"Bearer {API_TOKEN}"}).get_json()
    assert {a["id"]: a["status"] for a in listed["agents"]} == {"alice": "offline", "bob": "offline"}


@pytest.mark.parametrize("body", [{"status": "busy"}, {"status": None}, {}, ["available"]])
def test_agent_status_rejects_bad_bodies_with_json(api, agents, body, app):
    response = app.test_client().put("/api/agents/alice/status", json=body,
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 400 and "error" in response.get_json()


def test_unknown_agent_is_404(api, agents):
    assert api.status("nobody", "available").status_code == 404


def test_callback_answered_on_the_first_attempt(twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    assert api.status("alice", "available").get_json()["agent"]["status"] == "reserved"

    # The agent is rung first, from the IVR's number.
    agent_leg = ringing(twilio_standin, ALICE)
    assert agent_leg.from_ == IVR_NUMBER and agent_leg.timeout == 20
    assert agent_leg.url.startswith(PUBLIC + "/voice/agent/answer?")
    assert not twilio_standin.placed(to=CUSTOMER)

    # The agent hears what is coming and must press 1; only then is the customer dialed.
    whisper = answer(twilio, agent_leg)
    assert "Callback for Sales, to 2 1 2, 5 5 5, 1 2 3 4. Attempt 1 of 3." in said(whisper)
    assert not twilio_standin.placed(to=CUSTOMER)
    agent_twiml = press(twilio, agent_leg, whisper, "1")
    conference = agent_twiml.find("Dial/Conference")
    assert conference.get("endConferenceOnExit") == "true"
    # The agent hears a ringing tone until the customer starts the conference: one ring
    # cycle, looped by a TwiML document (a bare audio file at a waitUrl may play once).
    assert conference.get("startConferenceOnEnter") == "false"
    assert conference.get("waitUrl") == f"{PUBLIC}/voice/agent/ringing"
    assert conference.get("waitMethod") == "POST"
    play = twiml(twilio.post_url(conference.get("waitUrl"), {"CallSid": agent_leg.sid})).find("Play")
    assert (play.text, play.get("loop")) == (f"{PUBLIC}/voice/ringback.wav", "0")
    # The customer is dialed once the agent is in the conference.
    assert not twilio_standin.placed(to=CUSTOMER)
    agent_joins(twilio, agent_leg, agent_twiml)
    customer_leg = ringing(twilio_standin, CUSTOMER)
    assert customer_leg.timeout == 30 and customer_leg.machine_detection == "Enable"
    assert svc.storage.get_agent("alice").status == "busy"

    customer_twiml = answer(twilio, customer_leg, AnsweredBy="human")
    assert customer_twiml.find("Dial/Conference").text == conference.text
    # Answered is not connected: only both in the conference is.
    assert svc.storage.get_callback(cb_id).status == "dialing"
    conference_event(twilio, agent_twiml, "participant-join", customer_leg)
    assert svc.storage.get_callback(cb_id).status == "connected"

    conference_end(twilio, agent_twiml)
    status(twilio, customer_leg, "completed")
    status(twilio, agent_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0
    [attempt] = cb.history
    assert (attempt.agent_id, attempt.outcome) == ("alice", "completed")
    assert (attempt.agent_call_sid, attempt.customer_call_sid) == (agent_leg.sid, customer_leg.sid)
    assert svc.storage.get_agent("alice").status == "available"


def run_attempt(twilio, standin, customer_status, agent=ALICE, answered_by=None):
    agent_leg = ringing(standin, agent)
    agent_accepts(twilio, agent_leg)
    customer_leg = ringing(standin, CUSTOMER)
    if answered_by:
        answer(twilio, customer_leg, AnsweredBy=answered_by)
    status(twilio, customer_leg, customer_status)
    standin.end_call(customer_leg.sid)
    status(twilio, agent_leg, "completed")
    standin.end_call(agent_leg.sid)
    return agent_leg, customer_leg


def test_no_answer_twice_then_answered(twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    place = svc.storage.get_callback(cb_id).place_in_line
    api.status("alice", "available")

    agent_leg, _ = run_attempt(twilio, twilio_standin, "no-answer")
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=retry"]
    notice = twiml(twilio.post_url(agent_leg.redirects[0], {"CallSid": agent_leg.sid}))
    assert "will be retried" in said(notice)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.due_at) == ("pending", 1, clock.now() + timedelta(minutes=5))
    assert cb.place_in_line == place
    # Not due yet: the free agent is not rung again.
    assert sweep_once(svc).offers == 0

    clock.advance(minutes=5)
    assert sweep_once(svc).offers == 1
    run_attempt(twilio, twilio_standin, "busy")
    assert svc.storage.get_callback(cb_id).attempts == 2

    clock.advance(minutes=5)
    sweep_once(svc)
    agent_leg = ringing(twilio_standin, ALICE)
    agent_twiml = agent_accepts(twilio, agent_leg)
    customer_joins(twilio, twilio_standin, agent_twiml)
    conference_end(twilio, agent_twiml)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed"
    assert [a.outcome for a in cb.history] == ["no-answer", "busy", "completed"]
    assert [a.counted for a in cb.history] == [True, True, False]


def test_max_retries_exhausted_expires_and_never_dials_again(twilio, svc, clock, agents, api,
                                                            twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    run_attempt(twilio, twilio_standin, "no-answer")
    clock.advance(minutes=5)
    sweep_once(svc)
    run_attempt(twilio, twilio_standin, "failed")
    clock.advance(minutes=5)
    sweep_once(svc)
    agent_leg, _ = run_attempt(twilio, twilio_standin, "no-answer", answered_by=None)
    assert agent_leg.redirects[-1].endswith("message=expired")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.ended_reason) == ("expired", 3, "max-retries")

    dialed = len(twilio_standin.placed(to=CUSTOMER))
    clock.advance(minutes=30)
    sweep_once(svc)
    assert len(twilio_standin.placed(to=CUSTOMER)) == dialed == 3


def test_answering_machine_counts_as_a_failed_attempt(twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    customer_leg = ringing(twilio_standin, CUSTOMER)
    root = answer(twilio, customer_leg, AnsweredBy="machine_end_beep")
    assert root.find("Hangup") is not None and root.find("Dial") is None
    status(twilio, customer_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 1, "machine")


def test_expired_before_an_agent_was_free(svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    clock.advance(minutes=121)
    report = sweep_once(svc)
    assert report.expired == 1
    api.status("alice", "available")
    assert svc.storage.get_callback(cb_id).status == "expired"
    assert not twilio_standin.placed()
    assert svc.storage.get_agent("alice").status == "available"


def test_agent_not_answering_twice_goes_away_and_the_callback_waits_uncounted(
        twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    status(twilio, ringing(twilio_standin, ALICE), "no-answer")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.attempts, cb.history[0].outcome, cb.history[0].counted) == (0, "agent-no-answer", False)
    # One miss may be a moment away from the desk: she is rung again, at once.
    status(twilio, ringing(twilio_standin, ALICE), "no-answer")
    alice = svc.storage.get_agent("alice")
    assert (alice.status, alice.away_reason) == ("offline", "missed 2 offered calls in a row")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, len(cb.history)) == ("pending", 0, 2)
    assert not twilio_standin.placed(to=CUSTOMER)
    # Bob becomes available and gets it at once.
    api.status("bob", "available")
    assert ringing(twilio_standin, BOB)


def test_the_agents_ringing_tone_outlasts_the_longest_ring_twilio_allows(app):
    """`loop="0"` plays the cycle up to 1,000 times; a call rings at most 600 s (Twilio's
    largest Timeout, plus its 5 s), then answering-machine detection listens up to 30 s."""
    response = app.test_client().get("/voice/ringback.wav")
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    with wave.open(io.BytesIO(response.data)) as cycle:
        seconds = cycle.getnframes() / cycle.getframerate()
    assert seconds == 6 and 1000 * seconds > 600 + 5 + 30


def test_equal_priority_callback_keeps_its_place_among_holding_callers(
        twilio, svc, clock, agents, api, twilio_standin):
    holding_caller(svc, clock, "Sales", minutes_ago=1)
    cb_id = store_callback(svc, clock, joined_minutes_ago=3)
    api.status("alice", "available")
    assert f"key={cb_id}" in ringing(twilio_standin, ALICE).url


def test_lower_priority_callback_waits_while_callers_hold(twilio, svc, clock, agents, api,
                                                          twilio_standin):
    caller = holding_caller(svc, clock, "Sales", minutes_ago=1)
    store_callback(svc, clock, priority=1, joined_minutes_ago=30)
    api.status("alice", "available")
    assert f"key={caller}" in ringing(twilio_standin, ALICE).url


def test_holding_caller_is_moved_into_the_agents_conference(twilio, svc, clock, agents, api,
                                                           twilio_standin):
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    agent_leg = ringing(twilio_standin, BOB)
    whisper = answer(twilio, agent_leg)
    assert "A caller waiting in Support" in said(whisper)
    assert not twilio_standin.calls.get(caller)
    root = press(twilio, agent_leg, whisper, "1")
    conference = root.find("Dial/Conference").text
    # The caller is moved once the agent is in the conference.
    assert not twilio_standin.calls.get(caller)
    agent_joins(twilio, agent_leg, root)
    [moved] = twilio_standin.calls[caller].redirects
    assert moved.startswith(f"{PUBLIC}/voice/caller/join?conference={conference}&agent=bob&attempt=")
    joined = twiml(twilio.post_url(moved, {"CallSid": caller}))
    assert joined.find("Dial/Conference").text == conference
    conference_event(twilio, joined, "participant-join", twilio_standin.calls[caller])
    assert svc.storage.get_waiting_call(caller) is None
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_agent("bob").status == "available"


def test_caller_who_hung_up_meanwhile_releases_the_agent(twilio, svc, clock, agents, api,
                                                         twilio_standin):
    caller = holding_caller(svc, clock, "Support")
    api.status("bob", "available")
    agent_leg = ringing(twilio_standin, BOB)
    twilio_standin.end_call(caller)
    agent_accepts(twilio, agent_leg)
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=caller-gone"]
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_agent("bob").status == "available"
    assert svc.storage.get_waiting_call(caller) is None


def test_agent_not_answering_a_holding_caller_puts_them_back_in_line(
        twilio, svc, clock, agents, api, twilio_standin):
    joined = clock.now()
    caller = holding_caller(svc, clock, "Sales")
    api.status("alice", "available")
    first = ringing(twilio_standin, ALICE)
    status(twilio, first, "no-answer")
    twilio_standin.end_call(first.sid)
    # Still available after one miss, she is offered the caller again, and misses again.
    status(twilio, ringing(twilio_standin, ALICE), "no-answer")
    assert svc.storage.get_agent("alice").status == "offline"
    back = svc.storage.get_waiting_call(caller)
    assert (back.status, back.joined_at) == ("waiting", joined)
    assert [c.call_sid for c in svc.storage.waiting_in_queue("Sales")] == [caller]


def test_duplicate_and_out_of_order_status_callbacks_count_once(twilio, svc, clock, agents, api,
                                                                twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    agent_twiml = agent_accepts(twilio, agent_leg)
    customer_leg, _ = customer_joins(twilio, twilio_standin, agent_twiml)
    conference_end(twilio, agent_twiml)
    status(twilio, customer_leg, "completed")
    # Late and repeated: a no-answer after completion, and everything twice.
    status(twilio, customer_leg, "no-answer")
    status(twilio, customer_leg, "completed")
    conference_end(twilio, agent_twiml)
    status(twilio, agent_leg, "completed")
    status(twilio, agent_leg, "no-answer")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, len(cb.history)) == ("completed", 0, 1)
    assert svc.storage.get_agent("alice").status == "available"


def test_repeated_failure_status_counts_one_attempt(twilio, svc, clock, agents, api, twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    customer_leg = ringing(twilio_standin, CUSTOMER)
    for _ in range(3):
        status(twilio, customer_leg, "no-answer")
    assert svc.storage.get_callback(cb_id).attempts == 1


def test_a_server_error_on_ringing_the_agent_leaves_the_leg_unknown_until_twilio_says(
        svc, clock, agents, api, twilio_standin):
    """A 5xx may come after Twilio placed the call: the attempt waits for Twilio's word (a
    status event, or its list of calls) instead of freeing the agent to be rung again."""
    cb_id = store_callback(svc, clock)
    twilio_standin.fail_next(500, 20500)
    api.status("alice", "available")
    assert svc.storage.get_callback(cb_id).status == "dialing"
    assert svc.storage.get_agent("alice").status == "reserved"
    assert svc.storage.get_leg(ALICE).state == "placing"
    # Past the ring deadline Twilio lists no call to her: never placed, nothing counted.
    clock.advance(seconds=60)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 0, "dial-error")
    assert svc.storage.get_leg(ALICE) is None and svc.storage.get_leg(CUSTOMER) is None


@pytest.mark.parametrize("http_status, code", [(429, 20429), (400, 21210)])
def test_twilio_failing_to_ring_the_agent_keeps_the_callback(svc, clock, agents, api,
                                                            twilio_standin, http_status, code):
    cb_id = store_callback(svc, clock)
    twilio_standin.fail_next(http_status, code)
    api.status("alice", "available")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 0, "dial-error")
    assert svc.storage.get_agent("alice").status == "available"
    # It backs off before the next try; then Twilio answers.
    assert cb.due_at == clock.now() + timedelta(seconds=30)
    assert sweep_once(svc).offers == 0
    clock.advance(seconds=30)
    sweep_once(svc)
    assert ringing(twilio_standin, ALICE)
    assert svc.storage.get_callback(cb_id).status == "dialing"


def test_twilio_failing_to_dial_the_customer_keeps_the_callback(twilio, svc, clock, agents, api,
                                                               twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, agent_leg)
    twilio_standin.fail_next(429, 20429)
    agent_joins(twilio, agent_leg, press(twilio, agent_leg, whisper, "1"))
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=dial-error"]
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 0, "dial-error")
    # The agent hangs up after the notice, is free again, and is offered the callback anew
    # once the back-off has passed.
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"
    clock.advance(seconds=30)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.agent_id, len(cb.history)) == ("dialing", "alice", 2)
    assert ringing(twilio_standin, ALICE).sid != agent_leg.sid


def test_a_server_error_dialing_the_customer_holds_their_number_until_twilio_says(
        twilio, svc, clock, agents, api, twilio_standin):
    """A 503 may come after Twilio placed the call: the customer's number stays held and the
    attempt waits for Twilio's word; with no call listed past the deadline, a dial error."""
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, agent_leg)
    twilio_standin.fail_next(503, 20503)
    agent_joins(twilio, agent_leg, press(twilio, agent_leg, whisper, "1"))
    assert agent_leg.redirects == []
    assert svc.storage.get_leg(CUSTOMER).state == "placing"
    clock.advance(minutes=3)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 0, "dial-error")
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=dial-error"]
    assert svc.storage.get_leg(CUSTOMER) is None


def test_sweep_repairs_an_attempt_whose_status_never_came(twilio, svc, clock, agents, api,
                                                          twilio_standin):
    cb_id = store_callback(svc, clock)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    agent_accepts(twilio, agent_leg)
    customer_leg = ringing(twilio_standin, CUSTOMER)
    # Twilio gave up on the customer, and both status callbacks were lost.
    twilio_standin.calls[customer_leg.sid].status = "no-answer"
    clock.advance(minutes=3)
    report = sweep_once(svc)
    assert report.repaired_attempts == 1
    cb = svc.storage.get_callback(cb_id)
    # Twilio's own status, not a guess, and the agent is told.
    assert (cb.status, cb.attempts, cb.history[0].outcome) == ("pending", 1, "no-answer")
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=retry"]
    twilio_standin.end_call(agent_leg.sid)
    clock.advance(minutes=1)
    assert sweep_once(svc).released_agents == 1
    assert svc.storage.get_agent("alice").status == "available"


def test_sweep_frees_an_agent_reserved_with_no_live_call(svc, clock, agents, twilio_standin):
    svc.storage.set_agent_presence("alice", "available", clock.now())
    agent = svc.storage.get_agent("alice")
    store_callback(svc, clock)
    cb = svc.storage.due_callbacks("Sales", clock.now())[0]
    # A dispatcher claimed the work and died before placing the call.
    svc.storage.claim_callback(agent, cb, "lost", clock.now(), clock.now() + timedelta(minutes=3))
    clock.advance(minutes=6)
    report = sweep_once(svc)
    assert report.repaired_attempts == 1
    # Twilio holds no call to her since the attempt began: it was never placed.
    cb = svc.storage.get_callback(cb.callback_id)
    assert (cb.history[0].outcome, cb.history[0].counted) == ("dial-error", False)
    assert svc.storage.get_agent("alice").status in ("available", "reserved")


def test_sweep_drops_stale_waiting_calls(svc, clock, main_line):
    svc.storage.add_waiting_call("CA" + "9" * 32, ivr_name="Main Line", queue_name="Sales",
                                 caller=CUSTOMER, joined_at=clock.now())
    clock.advance(minutes=300)
    assert sweep_once(svc).dropped_waiting == 1
    assert svc.storage.get_waiting_call("CA" + "9" * 32) is None


def test_sweep_is_idempotent(svc, clock, agents):
    store_callback(svc, clock)
    clock.advance(minutes=200)
    first, second = sweep_once(svc), sweep_once(svc)
    assert (first.expired, second.expired) == (1, 0)


def test_an_agent_on_a_call_cannot_go_offline_mid_call(twilio, svc, clock, agents, api,
                                                      twilio_standin):
    store_callback(svc, clock)
    api.status("alice", "available")
    response = api.status("alice", "offline")
    assert response.status_code == 409 and response.get_json()["fields"]["status"] == "reserved"


def test_a_caller_and_their_callback_sharing_a_call_sid_are_told_apart(svc, clock, agents, api,
                                                                       twilio_standin):
    """The callback's id is the caller's CallSid; if that caller is (again) recorded holding,
    both are candidates under one key, and each must be offered as what it is."""
    cb_id = store_callback(svc, clock, queue="Support", priority=5, joined_minutes_ago=1)
    holding_caller(svc, clock, "Support", minutes_ago=5, call_sid=cb_id)
    assert api.status("bob", "available").status_code == 200
    assert f"kind=call&key={cb_id}" in ringing(twilio_standin, BOB).url


def test_a_sweep_starts_no_item_the_invocation_has_no_time_left_for(svc, clock, agents):
    """Lambda's remaining time is read before every item: with only enough for two, the
    sweep expires two and stops; the next sweep (a new invocation) finishes the work."""
    for n in range(4):
        store_callback(svc, clock, call_sid="CA" + str(n) * 32, number=f"+1415555010{n}")
    clock.advance(minutes=200)
    reserve = 2 * svc.config.TWILIO_REST_TIMEOUT_SECONDS + 2 * svc.config.DYNAMODB_TIMEOUT_SECONDS
    left = [reserve + 2, reserve + 1, reserve - 0.1]
    checks = []

    def time_left():
        checks.append(1)
        return left[min(len(checks), len(left)) - 1]

    first = sweep_once(svc, time_left=time_left)
    assert (first.expired, first.stopped_at, first.offers) == (1, "expire_pending", 0)
    second = sweep_once(svc, time_left=lambda: reserve + 60)
    assert (second.expired, second.stopped_at) == (3, None)


def test_the_scheduled_entry_point_reads_the_lambda_contexts_remaining_time(monkeypatch):
    from callback.work import wiring

    seen = {}

    def fake_sweep(services, time_left=None):
        seen["left"] = time_left()
        return SweepReport()

    monkeypatch.setattr(wiring, "_sweep_services", object())
    monkeypatch.setattr(wiring, "sweep_once", fake_sweep)

    class Context:
        def get_remaining_time_in_millis(self):
            return 12_500

    assert wiring.run_sweep({"source": "aws.events"}, Context())["stopped_at"] is None
    assert seen["left"] == 12.5


def test_a_stored_callback_to_a_number_the_ivr_no_longer_calls_ends_undialed_and_the_next_is_served(
        svc, clock, agents, api, twilio_standin):
    """Checked again at the moment of dialing: a Canadian number stored while the IVR called
    Canada, after the admin unticked it, is never dialed; the agent gets the next callback."""
    canadian = store_callback(svc, clock, call_sid="CA" + "1" * 32, number="+16135550123", joined_minutes_ago=5)
    store_callback(svc, clock)
    svc.storage.remove_waiting_call(canadian)
    svc.storage.remove_waiting_call("CA" + "c" * 32)
    api.status("alice", "available")
    cb = svc.storage.get_callback(canadian)
    assert (cb.status, cb.ended_reason, cb.history) == ("failed", "number-not-allowed", ())
    assert twilio_standin.placed(to="+16135550123") == []
    assert svc.storage.get_callback("CA" + "c" * 32).status == "dialing"
    assert len(twilio_standin.placed(to=ALICE)) == 1
