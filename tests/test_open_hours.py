"""Open hours, journeys through signed webhooks on DynamoDB Local with the clock walked by
hand: a caller of a closed center, callbacks asked for just before closing carried to the
opening in order, the night's callbacks paced at opening, hours checked again at the moment
of dialing, Retry and Expiration Time counting open time, across midnight, a holiday and a
DST change."""
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from conftest import PUBLIC, said, twiml
from test_caller_flow import call_params, press, query_of
from test_dispatch import (  # noqa: F401  (agents and api are fixtures)
    ALICE,
    BOB,
    CUSTOMER,
    agent_accepts,
    agents,
    answer,
    api,
    conference_end,
    conference_event,
    customer_joins,
    ringing,
    run_attempt,
    status,
    store_callback,
)

from callback.clock import FixedClock, fixed_start
from callback.domain.hours import Closure, OpenHours, open_time_later
from callback.domain.records import Callback
from callback.work.ledger import CREATES_IN_FLIGHT
from callback.work.sweep import sweep_once

NY = ZoneInfo("America/New_York")
NINE_TO_FIVE = ((9 * 60, 17 * 60),)
OFFICE = OpenHours(weekly=(NINE_TO_FIVE,) * 5 + ((), ()))


def monday_at(hour, minute=0):
    """The test clock's Monday (fixed_start: a Monday 15:00 UTC, 10:00 in New York) at a New
    York wall time."""
    day = fixed_start().astimezone(NY).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).astimezone(timezone.utc)


def local(moment):
    return moment.astimezone(NY)


@pytest.fixture
def clock():
    """Monday 16:40 in New York: twenty minutes before closing."""
    return FixedClock(monday_at(16, 40))


def with_hours(svc, hours=OFFICE, **settings):
    ivr = svc.storage.get_ivr("Main Line")
    return svc.storage.save_ivr(ivr.evolve(settings=replace(ivr.settings, hours=hours, **settings)))


@pytest.fixture
def office(svc, main_line):
    """Main Line open Monday to Friday, 09:00-17:00 in New York."""
    return with_hours(svc)


def stored_as_the_webhook_does(svc, clock, call_sid="CA" + "c" * 32):
    """A pending callback for CUSTOMER in Sales whose Expiration Time counts open time, as
    the confirming webhook stores it."""
    now = clock.now()
    hours = svc.storage.get_ivr("Main Line").settings.hours
    cb = Callback(call_sid, CUSTOMER, "Main Line", "Sales", now, now - timedelta(minutes=2), 10, now,
                  open_time_later(hours, now, timedelta(minutes=120)))
    assert svc.storage.create_callback(cb, call_sid).outcome == "created"
    return call_sid


def agent_calls(standin, *numbers):
    return [c for c in standin.placed() if c.to in numbers]


def hold_and_offer(twilio, call_sid, queue_time, choice="1"):
    """A caller chooses a queue and is recorded holding since `queue_time` seconds ago:
    returns the hold loop's answer, which makes the offer."""
    root = twiml(twilio.post("/voice/incoming", call_params(call_sid)))
    enqueued = twiml(twilio.post_url(root.find("Gather").get("action"), call_params(call_sid, Digits=choice)))
    return twiml(twilio.post_url(enqueued.find("Enqueue").get("waitUrl"),
                                 call_params(call_sid, QueueTime=str(queue_time), QueuePosition="1")))


def ask_for_callback(twilio, call_sid, queue_time, digits):
    """Hold, hear the offer, press 1, key in and confirm `digits`; returns what the offer said."""
    offer = hold_and_offer(twilio, call_sid, queue_time)
    entry = press(twilio, offer, "1", call_sid)
    confirm_url = entry.find("Gather").get("action")
    confirm = twiml(twilio.post_url(confirm_url, call_params(call_sid, Digits=digits)))
    assert twiml(twilio.post_url(confirm.find("Gather").get("action"),
                                 call_params(call_sid, Digits="1"))).find("Leave") is not None
    return said(offer)


def walk(svc, clock, until, step=timedelta(hours=1)):
    """Sweep every `step` of the clock (and once at `until`) until then; the offers made."""
    offers = 0
    while clock.now() + step < until:
        clock.advance(seconds=step.total_seconds())
        offers += sweep_once(svc).offers
    clock.advance(seconds=(until - clock.now()).total_seconds())
    return offers + sweep_once(svc).offers


# -- a caller of a closed center ----------------------------------------------------------

def test_a_caller_of_a_closed_center_hears_the_hours_and_is_called_back_at_opening(
        twilio, svc, clock, office, agents, api, twilio_standin):
    clock.advance(minutes=80)  # 18:00
    call_sid = "CA" + "1" * 32
    closed = twiml(twilio.post("/voice/incoming", call_params(call_sid)))
    text = said(closed)
    assert "We are closed now. We are open Monday to Friday, 9 AM to 5 PM." in text
    assert "We open again tomorrow at 9 AM." in text and "For Sales, press 1." in text
    assert closed.find("Enqueue") is None
    entry = press(twilio, closed, "1", call_sid)
    assert "ten digit number" in said(entry) and query_of(entry.find("Gather").get("action"))["closed"] == "1"
    confirm = twiml(twilio.post_url(entry.find("Gather").get("action"),
                                    call_params(call_sid, Digits="2125551234")))
    stored = press(twilio, confirm, "1", call_sid)
    assert "expect our call after we open, tomorrow at 9 AM" in said(stored)
    assert stored[-1].tag == "Hangup" and stored.find("Leave") is None
    cb = svc.storage.get_callback(call_sid)
    assert (cb.status, cb.queue_name, cb.place_in_line) == ("pending", "Sales", clock.now())
    # Expiration Time (120 min) counts open time only: 09:00 + 2 h the next day.
    assert local(cb.expires_at).strftime("%a %H:%M") == "Tue 11:00"

    api.status("alice", "available")
    assert not agent_calls(twilio_standin, ALICE)
    assert walk(svc, clock, monday_at(8, 59) + timedelta(days=1)) == 0
    assert not agent_calls(twilio_standin, ALICE)
    assert walk(svc, clock, monday_at(9) + timedelta(days=1)) == 1
    assert ringing(twilio_standin, ALICE)
    assert svc.storage.get_callback(call_sid).status == "dialing"


def test_a_caller_of_a_closed_center_that_takes_no_callbacks_hears_goodbye(twilio, svc, clock, main_line):
    with_hours(svc, replace(OFFICE, closed_callbacks=False))
    clock.advance(minutes=30)  # 17:10
    root = twiml(twilio.post("/voice/incoming", call_params()))
    assert "We are closed now." in said(root) and "Please call again when we are open. Goodbye." in said(root)
    assert root.find("Gather") is None and root[-1].tag == "Hangup"


def test_a_failed_entry_of_a_closed_center_says_goodbye_instead_of_going_back_to_hold(
        twilio, svc, clock, office):
    clock.advance(minutes=80)
    closed = twiml(twilio.post("/voice/incoming", call_params()))
    entry = press(twilio, closed, "1")
    url = entry.find("Gather").get("action")
    for attempt in (1, 2, 3):
        url = url.replace(f"attempt={attempt - 1}", f"attempt={attempt}") if attempt > 1 else url
        answer_ = twiml(twilio.post_url(url, call_params(Digits="41555")))
        if attempt < 3:
            url = answer_.find("Gather").get("action")
    assert "You are back on hold" not in said(answer_)
    bye = twiml(twilio.post_url(answer_.find("Redirect").text, call_params()))
    assert "Please call again when we are open" in said(bye) and bye[-1].tag == "Hangup"


# -- just before closing ------------------------------------------------------------------

def test_the_offer_near_closing_is_a_callback_at_the_next_opening(twilio, svc, clock, office):
    offer = said(hold_and_offer(twilio, "CA" + "3" * 32, 120))
    assert "Press 1 to be called back instead of waiting" in offer
    clock.advance(minutes=11)  # 16:51: no estimate, under ten minutes before closing
    text = said(hold_and_offer(twilio, "CA" + "4" * 32, 120))
    assert "We close before we could call you back today. Press 1 to be called back when we open, " \
           "tomorrow at 9 AM." in text


def test_callbacks_asked_for_just_before_closing_are_carried_to_the_opening_in_order(
        twilio, svc, clock, office, agents, api, twilio_standin):
    first, second = "CA" + "5" * 32, "CA" + "6" * 32
    clock.advance(minutes=12)  # 16:52
    assert "when we open, tomorrow at 9 AM" in ask_for_callback(twilio, second, 300, "2125551234")
    clock.advance(minutes=1)   # 16:53, but holding since 16:38: earlier in line than the one before
    ask_for_callback(twilio, first, 900, "6465550000")
    stored = twiml(twilio.post("/voice/enqueue-done", call_params(first, QueueResult="leave")))
    assert "expect our call after we open, tomorrow at 9 AM" in said(stored)
    # 7 open minutes before closing, then 113 from 09:00.
    assert local(svc.storage.get_callback(first).expires_at).strftime("%a %H:%M") == "Tue 10:53"

    clock.advance(minutes=7)  # 17:00: closed, and only now an agent
    api.status("alice", "available")
    # The night, midnight included: nothing is dialed, nothing expires.
    assert walk(svc, clock, monday_at(8, 59) + timedelta(days=1)) == 0
    assert not agent_calls(twilio_standin, ALICE)
    assert {svc.storage.get_callback(c).status for c in (first, second)} == {"pending"}

    assert walk(svc, clock, monday_at(9) + timedelta(days=1)) == 1
    assert svc.storage.get_callback(first).status == "dialing"
    assert svc.storage.get_callback(second).status == "pending"
    agent_leg = ringing(twilio_standin, ALICE)
    agent_twiml = agent_accepts(twilio, agent_leg)
    customer_leg = ringing(twilio_standin, "+16465550000")
    answer(twilio, customer_leg, AnsweredBy="human")
    conference_event(twilio, agent_twiml, "participant-join", customer_leg)
    conference_end(twilio, agent_twiml)
    status(twilio, customer_leg, "completed")
    status(twilio, agent_leg, "completed")
    twilio_standin.end_call(agent_leg.sid)
    twilio_standin.end_call(customer_leg.sid)
    assert svc.storage.get_callback(first).status == "completed"
    sweep_once(svc)
    assert svc.storage.get_callback(second).status == "dialing"


def test_a_try_that_failed_just_before_closing_is_retried_after_five_open_minutes(
        twilio, svc, clock, office, agents, api, twilio_standin):
    clock.advance(minutes=17)  # 16:57
    cb_id = stored_as_the_webhook_does(svc, clock)
    api.status("alice", "available")
    clock.advance(minutes=1)
    run_attempt(twilio, twilio_standin, "no-answer")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts) == ("pending", 1)
    assert local(cb.due_at).strftime("%a %H:%M") == "Tue 09:03"


def test_hours_are_checked_again_at_the_moment_of_dialing(
        twilio, svc, clock, office, agents, api, twilio_standin):
    clock.advance(minutes=19, seconds=40)  # 16:59:40
    # Its Expiration Time counts open time: the customer's own window, which would end a
    # callback due after its expiration, leaves it pending for the opening.
    cb_id = stored_as_the_webhook_does(svc, clock)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    clock.advance(seconds=25)  # the agent accepts at 17:00:05: closed
    agent_accepts(twilio, agent_leg)
    assert not twilio_standin.placed(to=CUSTOMER)
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.attempts) == ("pending", 0)
    assert (cb.history[-1].outcome, cb.history[-1].counted) == ("closed", False)
    assert local(cb.due_at).strftime("%a %H:%M") == "Tue 09:00"
    assert agent_leg.redirects == [f"{PUBLIC}/voice/notice?message=closed"]
    assert "has closed" in said(twiml(twilio.post_url(agent_leg.redirects[0], {"CallSid": agent_leg.sid})))


def test_a_holding_caller_is_still_served_after_closing(
        twilio, svc, clock, office, agents, api, twilio_standin):
    clock.advance(minutes=25)  # 17:05, a caller who joined before closing still holds
    svc.storage.add_waiting_call("CA" + "7" * 32, ivr_name="Main Line", queue_name="Sales",
                                 caller="+14155550123",
                                 joined_at=clock.now() - timedelta(minutes=10))
    store_callback(svc, clock)
    api.status("alice", "available")
    assert "CA" + "7" * 32 in ringing(twilio_standin, ALICE).url


# -- the night's callbacks at opening -----------------------------------------------------

def stored_overnight(svc, clock, count):
    clock.advance(minutes=180)  # 19:40
    ids = []
    for i in range(count):
        ids.append(store_callback(svc, clock, call_sid=f"CA{i:032d}", number=f"+1212555{i:04d}",
                                  joined_minutes_ago=count - i))
    return ids


def test_the_nights_callbacks_never_ring_more_agents_than_are_free(
        svc, clock, office, agents, api, twilio_standin):
    ids = stored_overnight(svc, clock, 6)
    api.status("alice", "available")
    api.status("bob", "available")
    assert walk(svc, clock, monday_at(9) + timedelta(days=1)) == 2
    assert sorted(c.to for c in twilio_standin.placed()) == [ALICE, BOB]
    # The two first in line went first; the rest keep their places for the next free agent.
    assert [svc.storage.get_callback(i).status for i in ids] == ["dialing"] * 2 + ["pending"] * 4


def test_the_nights_callbacks_are_paced_at_opening(svc, clock, office, twilio_standin):
    ids = stored_overnight(svc, clock, CREATES_IN_FLIGHT + 4)
    for i in range(CREATES_IN_FLIGHT + 4):
        svc.storage.save_agent_profile(f"agent{i}", name=f"Agent {i}", phone=f"+1415555{i:04d}",
                                       queues=["Sales"], now=clock.now(), create=True)
        svc.storage.set_agent_presence(f"agent{i}", "available", clock.now())
    assert walk(svc, clock, monday_at(8, 59) + timedelta(days=1)) == 0
    assert not twilio_standin.placed()
    clock.advance(minutes=1)
    # At opening every callback is due at once: no more calls than Twilio starts in a few
    # seconds wait at once (its account pace is one a second); the rest go in later rounds.
    assert sweep_once(svc).offers == CREATES_IN_FLIGHT
    assert sweep_once(svc).offers == 0
    placed = twilio_standin.placed()
    assert len(placed) == len({c.to for c in placed}) == CREATES_IN_FLIGHT
    statuses = [svc.storage.get_callback(i).status for i in ids]
    assert statuses == ["dialing"] * CREATES_IN_FLIGHT + ["pending"] * 4


# -- a holiday and a DST change -----------------------------------------------------------

def second_sunday_of_march(year):
    first = date(year, 3, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7)


def test_across_a_weekend_with_a_dst_change_and_a_monday_holiday(twilio, svc, agents, api, twilio_standin):
    clock = svc.clock
    sunday = second_sunday_of_march(fixed_start().year)
    friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
    with_hours(svc, replace(OFFICE, holidays=(Closure(monday, monday, "Holiday"),)))
    at = lambda day, hour, minute=0: datetime(day.year, day.month, day.day, hour, minute,  # noqa: E731
                                              tzinfo=NY).astimezone(timezone.utc)
    clock.advance(seconds=(at(friday, 16, 55) - clock.now()).total_seconds())
    # Stored with two hours of wall time to live: a holiday added after a callback was
    # stored must not lose it, so the sweep finds less open time passed and lets it live on.
    cb_id = store_callback(svc, clock)
    clock.advance(minutes=6)  # 17:01: closed for the weekend
    api.status("alice", "available")
    assert not twilio_standin.placed()
    assert walk(svc, clock, at(monday + timedelta(days=1), 8, 59)) == 0
    assert not twilio_standin.placed() and svc.storage.get_callback(cb_id).status == "pending"
    assert walk(svc, clock, at(monday + timedelta(days=1), 9, 0)) == 1
    # Tuesday 09:00 in New York is 13:00 UTC once the clocks went forward.
    assert clock.now().hour == 13 and ringing(twilio_standin, ALICE)
    # 5 open minutes on Friday, 115 from Tuesday 09:00 (EDT, after the change).
    assert svc.storage.get_callback(cb_id).expires_at == at(monday + timedelta(days=1), 10, 55)
