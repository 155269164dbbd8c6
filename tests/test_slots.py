"""Callbacks at a time the caller picks: the pure slot rules (open hours, the customer's own
window, the center's days, capacity), the booking counter on DynamoDB Local (all or nothing
with the callback, released by a cancel), and the caller's journey through signed webhooks:
press 2, confirm the number, choose a time, hear it back, be called in that slot and not
before."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from conftest import API_TOKEN, cancel_callback, log_in, said, twiml, with_admin_account
from test_caller_flow import call_params, press, query_of
from test_dispatch import (  # noqa: F401  (agents and api are fixtures)
    ALICE,
    CUSTOMER,
    agents,
    api,
    ringing,
    run_attempt,
)
from test_open_hours import OFFICE, hold_and_offer, local, monday_at, with_hours

from callback.clock import FixedClock
from callback.domain import slots
from callback.domain.customer_clock import customer_clock
from callback.domain.hours import OpenHours
from callback.domain.records import Callback
from callback.storage import NotFound
from callback.work.sweep import sweep_once

NY = ZoneInfo("America/New_York")
NY_NUMBER = "+12125551234"
LA_NUMBER = "+13105551234"


def at(day_offset, hour, minute=0):
    return monday_at(hour, minute) + timedelta(days=day_offset)


def starts(now, number=NY_NUMBER, hours=OFFICE, start="08:00", end="20:00"):
    return slots.slot_starts(hours, customer_clock(number, time_zone=hours.zone, start=start, end=end), now)


# -- the pure rules ---------------------------------------------------------------------

def test_slots_are_whole_half_hours_inside_the_hours_today_and_the_next_open_day():
    found = starts(at(0, 16))
    assert found[0] == at(0, 16, 30)  # 16:15 at the earliest, on a boundary, ending by 17:00
    assert found[1:] == [at(1, 9) + slots.SLOT * i for i in range(16)]  # all of Tuesday, none after


@pytest.mark.parametrize("now, first, last", [
    (at(0, 10), at(0, 10, 30), at(1, 16, 30)),       # 10:00: the lead puts the first at 10:30
    (at(0, 10, 14), at(0, 10, 30), at(1, 16, 30)),
    (at(0, 10, 16), at(0, 11), at(1, 16, 30)),        # 10:31 would start too soon
    (at(0, 16, 50), at(1, 9), at(2, 16, 30)),         # nothing left today: Tuesday and Wednesday
    (at(4, 15), at(4, 15, 30), at(7, 16, 30)),        # Friday, then Monday (the weekend is closed)
    (at(5, 12), at(7, 9), at(8, 16, 30)),             # a Saturday call: Monday and Tuesday
])
def test_the_first_and_last_slot_offered(now, first, last):
    found = starts(now)
    assert (found[0], found[-1]) == (first, last)


def test_slots_lie_inside_the_customers_own_window_too():
    # Los Angeles, 08:00-20:00 there: 11:00-23:00 in New York, so 11:00-17:00 of the office.
    found = starts(at(1, 8), number=LA_NUMBER)
    assert found[0] == at(1, 11) and found[-1] == at(2, 16, 30)
    assert all(at(1, 11) <= s < at(1, 17) or at(2, 11) <= s < at(2, 17) for s in found)


def test_around_the_clock_hours_still_respect_the_customers_night():
    found = starts(at(0, 22), hours=OpenHours())
    assert found[0] == at(1, 8) and found[-1] == at(2, 19, 30)
    assert len(found) == 2 * 24


def test_a_zone_whose_offset_is_not_whole_hours_keeps_its_own_half_hours():
    hours = OpenHours(zone="America/St_Johns")
    found = starts(datetime(2026, 6, 2, 14, 5, tzinfo=timezone.utc), number="+17095551234", hours=hours)
    assert {s.astimezone(ZoneInfo("America/St_Johns")).minute for s in found} == {0, 30}
    assert found[0] == datetime(2026, 6, 2, 14, 30, tzinfo=timezone.utc)  # 12:00 in St. John's


def test_the_day_clocks_change_has_its_own_half_hours():
    spring = datetime(2026, 3, 8, 5, 0, tzinfo=timezone.utc)  # Sunday 00:00 in New York
    found = starts(spring, hours=OpenHours())
    first = [s.astimezone(NY) for s in found[:3]]
    assert [f"{s:%H:%M %Z}" for s in first] == ["08:00 EDT", "08:30 EDT", "09:00 EDT"]


def test_capacity_leaves_out_full_slots_and_offers_four_at_most():
    found = [at(0, 10) + slots.SLOT * i for i in range(8)]
    booked = {found[0]: 2, found[1]: 1, found[3]: 5}
    assert slots.with_room(found, booked, 2) == [found[1], found[2], found[4], found[5]]
    assert slots.with_room(found, booked, 0) == []


@pytest.mark.parametrize("text", ["", "abc", "-5", "1" * 13, "12.5"])
def test_a_slot_marker_that_is_not_ours_names_no_slot(text):
    assert slots.from_marker(text) is None


def test_a_slot_marker_round_trips():
    assert slots.from_marker(slots.marker(at(0, 10, 30))) == at(0, 10, 30)


# -- booking, all or nothing ------------------------------------------------------------

@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def clock():
    """Monday 10:00 in New York."""
    return FixedClock(monday_at(10))


@pytest.fixture
def office(svc, main_line):
    """Main Line open 09:00-17:00 on weekdays, two callbacks per queue and half-hour."""
    return with_hours(svc, OFFICE, slot_capacity=2)


def booked_callback(svc, clock, call_sid, start, number=CUSTOMER):
    now = clock.now()
    cb = Callback(call_sid, number, "Main Line", "Sales", now, start, 10, start, start + slots.SLOT,
                  window_start=start, window_end=start + slots.SLOT)
    svc.storage.add_waiting_call(call_sid, ivr_name="Main Line", queue_name="Sales", caller=number,
                                 joined_at=now - timedelta(minutes=1))
    return svc.storage.create_callback(cb, call_sid, slot_capacity=2)


def test_a_slot_takes_its_capacity_and_not_one_more(svc, clock, office):
    slot = at(0, 14)
    assert booked_callback(svc, clock, "CA" + "1" * 32, slot, "+12125550001").outcome == "created"
    assert booked_callback(svc, clock, "CA" + "2" * 32, slot, "+12125550002").outcome == "created"
    full = booked_callback(svc, clock, "CA" + "3" * 32, slot, "+12125550003")
    assert (full.outcome, full.callback) == ("slot-full", None)
    # Nothing of the third was written: no callback, the caller still holds, the number free.
    with pytest.raises(NotFound):
        svc.storage.get_callback("CA" + "3" * 32)
    assert svc.storage.get_waiting_call("CA" + "3" * 32) is not None
    assert booked_callback(svc, clock, "CA" + "3" * 32, at(0, 14, 30), "+12125550003").outcome == "created"
    assert svc.storage.booked_slots("Sales", at(0, 9), at(0, 17)) == {at(0, 14): 2, at(0, 14, 30): 1}


def test_a_callback_canceled_before_its_slot_gives_the_room_back(svc, clock, office):
    slot = at(0, 14)
    booked_callback(svc, clock, "CA" + "1" * 32, slot, "+12125550001")
    booked_callback(svc, clock, "CA" + "2" * 32, slot, "+12125550002")
    cancel_callback(svc.storage, "CA" + "1" * 32, clock.now())
    assert svc.storage.booked_slots("Sales", slot, slot) == {slot: 1}
    assert booked_callback(svc, clock, "CA" + "3" * 32, slot, "+12125550003").outcome == "created"


# -- the caller's journey ---------------------------------------------------------------

def choose_a_time(twilio, call_sid, digits="2125551234"):
    """Hold, press 2 at the offer, key in and confirm a number: the menu of times."""
    offer = hold_and_offer(twilio, call_sid, 120)
    assert "press 2 to choose a time" in said(offer)
    entry = press(twilio, offer, "2", call_sid)
    assert query_of(entry.find("Gather").get("action"))["later"] == "1"
    confirm = press(twilio, entry, digits, call_sid)
    return press(twilio, confirm, "1", call_sid)


def test_a_caller_books_a_time_and_is_called_in_that_slot_and_not_before(
        twilio, svc, clock, office, agents, api, twilio_standin):
    call_sid = "CA" + "5" * 32
    menu = choose_a_time(twilio, call_sid)
    assert ("For today at 10:30 AM, press 1. For today at 11 AM, press 2. For today at 11:30 AM, press 3. "
            "For today at noon, press 4.") in said(menu)
    readback = press(twilio, menu, "3", call_sid)
    assert "We will call you today at 11:30 AM, within half an hour" in said(readback)
    assert press(twilio, readback, "1", call_sid).find("Leave") is not None
    cb = svc.storage.get_callback(call_sid)
    assert (cb.window_start, cb.window_end) == (at(0, 11, 30), at(0, 12))
    assert (cb.due_at, cb.place_in_line, cb.expires_at) == (at(0, 11, 30), at(0, 11, 30), at(0, 12))
    stored = twiml(twilio.post("/voice/enqueue-done", call_params(call_sid, QueueResult="leave"),
                               query={"ivr": "Main Line", "queue": "Sales"}))
    assert "We will call you today at 11:30 AM, within half an hour." in said(stored)
    assert svc.storage.booked_slots("Sales", at(0, 9), at(0, 17)) == {at(0, 11, 30): 1}

    api.status("alice", "available")
    clock.advance(minutes=89)  # 11:29
    assert sweep_once(svc).offers == 0 and not twilio_standin.placed(to=ALICE)
    clock.advance(minutes=1)
    assert sweep_once(svc).offers == 1
    assert ringing(twilio_standin, ALICE)


def test_the_confirmation_text_names_the_chosen_time(twilio, svc, clock, office, twilio_standin):
    with_hours(svc, OFFICE, slot_capacity=2, sms_enabled=True, sms_service_sid="MG" + "0" * 32)
    call_sid = "CA" + "3" * 32
    readback = press(twilio, choose_a_time(twilio, call_sid), "2", call_sid)
    assert press(twilio, readback, "1", call_sid).find("Leave") is not None
    (text,) = twilio_standin.texts(to="+12125551234")
    assert "at the time you chose. We will call you today at 11 AM, within half an hour." in text["body"]


def test_the_confirmation_text_of_a_closed_center_names_the_opening(twilio, svc, clock, office, twilio_standin):
    with_hours(svc, OFFICE, sms_enabled=True, sms_service_sid="MG" + "0" * 32)
    clock.advance(minutes=8 * 60)  # 18:00: closed
    call_sid = "CA" + "2" * 32
    closed = twiml(twilio.post("/voice/incoming", call_params(call_sid)))
    confirm = press(twilio, press(twilio, closed, "1", call_sid), "2125551234", call_sid)
    assert "tomorrow at 9 AM" in said(press(twilio, confirm, "1", call_sid))
    (text,) = twilio_standin.texts(to="+12125551234")
    assert "We are closed until then: expect our call after we open, tomorrow at 9 AM." in text["body"]


def test_a_booked_callback_not_reached_in_its_slot_expires_at_its_end(
        twilio, svc, clock, office, agents, api, twilio_standin):
    call_sid = "CA" + "6" * 32
    assert booked_callback(svc, clock, call_sid, at(0, 10, 30)).outcome == "created"
    api.status("alice", "available")
    clock.advance(minutes=30)
    sweep_once(svc)
    run_attempt(twilio, twilio_standin, "no-answer")
    cb = svc.storage.get_callback(call_sid)
    assert (cb.status, local(cb.due_at).strftime("%H:%M")) == ("pending", "10:35")  # retried in the slot
    clock.advance(minutes=31)
    sweep_once(svc)
    assert svc.storage.get_callback(call_sid).status == "expired"


def test_a_time_taken_meanwhile_is_said_and_the_menu_offered_again(
        twilio, svc, clock, office, agents, api, twilio_standin):
    with_hours(svc, OFFICE, slot_capacity=1)
    call_sid = "CA" + "7" * 32
    menu = choose_a_time(twilio, call_sid)
    readback = press(twilio, menu, "1", call_sid)
    # Another caller books 10:30 while this one listens.
    svc.storage.create_callback(Callback("CA" + "8" * 32, "+12125550008", "Main Line", "Sales", clock.now(),
                                         at(0, 10, 30), 10, at(0, 10, 30), at(0, 11),
                                         window_start=at(0, 10, 30), window_end=at(0, 11)),
                                "CA" + "8" * 32, slot_capacity=1)
    again = press(twilio, readback, "1", call_sid)
    text = said(again)
    assert "Sorry, that time has just been taken." in text and "For today at 11 AM, press 1." in text
    assert "10:30" not in text
    with pytest.raises(NotFound):
        svc.storage.get_callback(call_sid)


def test_choosing_a_time_never_loops(twilio, svc, clock, office):
    call_sid = "CA" + "9" * 32
    answer_ = choose_a_time(twilio, call_sid)
    for _ in range(2):
        assert answer_.find("Gather") is not None
        answer_ = press(twilio, answer_, "", call_sid)
        assert "did not hear a choice" in said(answer_)
    answer_ = press(twilio, answer_, "", call_sid)
    assert answer_.find("Gather") is None and answer_.find("Redirect") is not None
    assert query_of(answer_.find("Redirect").text).get("offer") == "off"


def test_no_choice_of_time_where_the_ivr_takes_none(twilio, svc, clock, office):
    with_hours(svc, OFFICE, slot_capacity=0)
    offer = hold_and_offer(twilio, "CA" + "4" * 32, 120)
    assert "press 2" not in said(offer)
    assert press(twilio, offer, "2", "CA" + "4" * 32).find("Gather") is None  # back to holding


def test_the_dashboard_the_callback_page_and_the_api_show_the_booked_time(app, svc, clock, office):
    booked_callback(svc, clock, "CA" + "1" * 32, at(0, 14))
    client = app.test_client()
    assert log_in(client).status_code == 302
    board = client.get("/admin/dashboard").get_data(as_text=True)
    assert "Times chosen by callers today" in board and "14:00: 1 of 2 booked" in board
    detail = client.get(f"/admin/callbacks/{'CA' + '1' * 32}").get_data(as_text=True)
    assert "Time chosen" in detail and "Slot at 14:00" in detail
    shown = client.get(f"/api/callbacks/{'CA' + '1' * 32}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert shown.get_json()["callback"]["window"] == {"earliest": at(0, 14).isoformat(),
                                                      "latest": at(0, 14, 30).isoformat()}
