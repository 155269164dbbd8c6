"""The caller flow through signed webhooks: menu, hold, offer, number entry, stored callback."""
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from callback.models import Ivr, Queue
from callback.settings import CallbackSettings
from conftest import IVR_NUMBER, PUBLIC, said, twiml

CALLER = "+14155550123"


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def call_params(call_sid="CA" + "a" * 32, **extra):
    return {"CallSid": call_sid, "AccountSid": "AC" + "1" * 32, "From": CALLER, "To": IVR_NUMBER,
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


def enqueue_caller(twilio, call_sid="CA" + "a" * 32, choice="1"):
    root = twiml(twilio.post("/voice/incoming", call_params(call_sid)))
    action = root.find("Gather").get("action")
    return twiml(twilio.post_url(action, call_params(call_sid, Digits=choice)))


def wait_url(queue="Sales", offer=True):
    url = f"{PUBLIC}/voice/wait?ivr=Main+Line&queue={queue}"
    return url if offer else url + "&offer=off"


def enter(twilio, digits, attempt=1, call_sid="CA" + "a" * 32, queue="Sales"):
    url = f"{PUBLIC}/voice/number?ivr=Main+Line&queue={queue}&attempt={attempt}"
    return twiml(twilio.post_url(url, call_params(call_sid, Digits=digits)))


# -- incoming and the queue menu -------------------------------------------------------

def test_unknown_number_gets_a_polite_message_and_a_hangup(twilio, main_line):
    root = twiml(twilio.post("/voice/incoming", call_params(To="+15550009999")))
    assert "not in service" in said(root)
    assert root[-1].tag == "Hangup"


def test_incoming_greets_and_offers_the_queues(twilio, main_line):
    root = twiml(twilio.post("/voice/incoming", call_params()))
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC}/voice/menu?ivr=Main+Line&attempt=1"
    text = said(root)
    assert "Thanks for calling Example Co." in text
    assert "For Sales, press 1." in text and "For Support, press 2." in text


def test_choosing_a_queue_enqueues_and_records_the_place_in_line(twilio, main_line, svc, clock):
    root = enqueue_caller(twilio, choice="2")
    enqueue = root.find("Enqueue")
    assert enqueue.text == "Support"
    assert enqueue.get("waitUrl") == wait_url("Support")
    assert enqueue.get("action") == f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Support"
    waiting = svc.storage.get_waiting_call("CA" + "a" * 32)
    assert (waiting.queue_name, waiting.caller, waiting.joined_at) == ("Support", CALLER, clock.now())


def test_invalid_menu_choices_ask_again_then_take_the_first_queue(twilio, main_line):
    root = twiml(twilio.post("/voice/incoming", call_params()))
    for attempt, digits in ((1, "9"), (2, "")):
        root = twiml(twilio.post_url(root.find("Gather").get("action"), call_params(Digits=digits)))
        assert "Sorry" in said(root)
        assert root.find("Gather").get("action").endswith(f"attempt={attempt + 1}")
    root = twiml(twilio.post_url(root.find("Gather").get("action"), call_params(Digits="*")))
    assert root.find("Enqueue").text == "Sales"


def test_an_ivr_with_one_queue_enqueues_straight_away(twilio, svc):
    svc.storage.save_ivr(Ivr("Solo", numbers=(IVR_NUMBER,), greeting="Hello.",
                             queues=(Queue("Only", "Solo", 1),)))
    root = twiml(twilio.post("/voice/incoming", call_params()))
    assert root.find("Enqueue").text == "Only" and said(root) == "Hello."


def test_a_second_enqueue_of_the_same_call_keeps_its_first_place(twilio, main_line, svc, clock):
    enqueue_caller(twilio)
    first = svc.storage.get_waiting_call("CA" + "a" * 32).joined_at
    clock.advance(minutes=3)
    enqueue_caller(twilio)
    assert svc.storage.get_waiting_call("CA" + "a" * 32).joined_at == first


# -- the hold loop and the offer --------------------------------------------------------

def hold(twilio, queue_time, url=None):
    return twiml(twilio.post_url(url or wait_url(), call_params(QueueTime=str(queue_time),
                                                                QueuePosition="1")))


def test_hold_plays_music_without_offer_before_the_delay(twilio, main_line):
    root = hold(twilio, 59)
    assert root.find("Gather") is None and root.find("Play") is not None


@pytest.mark.parametrize("queue_time", [60, 999, 1500, 14400])
def test_offer_comes_once_the_caller_waited_long_enough(twilio, main_line, queue_time):
    root = hold(twilio, queue_time)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales"
    assert "Press 1 to be called back" in said(root) and "keep your place" in said(root)
    assert gather.find("Play") is not None


@pytest.mark.parametrize("ivr_enabled, queue_enabled", [(False, True), (True, False)])
def test_no_offer_when_callbacks_are_off(twilio, svc, main_line, ivr_enabled, queue_enabled):
    svc.storage.save_ivr(main_line.evolve(
        settings=CallbackSettings(callback_enabled=ivr_enabled),
        queues=(Queue("Sales", "Main Line", 10, queue_enabled),)))
    assert hold(twilio, 600).find("Gather") is None


def test_wait_loop_reads_at_most_one_item_from_dynamodb(twilio, main_line, svc, monkeypatch):
    calls = []
    real = svc.storage.list_ivrs
    monkeypatch.setattr(svc.storage, "list_ivrs", lambda: calls.append(1) or real())
    svc.directory._ttl = 30
    for queue_time in (0, 30, 60, 90):
        hold(twilio, queue_time)
    assert len(calls) == 1


def test_pressing_another_key_goes_back_to_holding(twilio, main_line):
    root = twiml(twilio.post_url(f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales",
                                 call_params(Digits="5")))
    assert root.find("Redirect").text == wait_url()


def test_pressing_1_asks_for_ten_digits(twilio, main_line):
    root = twiml(twilio.post_url(f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales",
                                 call_params(Digits="1")))
    gather = root.find("Gather")
    assert gather.get("numDigits") == "10" and gather.get("actionOnEmptyResult") == "true"
    assert query_of(gather.get("action")) == {"ivr": "Main Line", "queue": "Sales", "attempt": "1"}
    assert "area code" in said(root) and "Do not dial a 1" in said(root)


# -- number entry ----------------------------------------------------------------------

@pytest.mark.parametrize("digits, message", [
    ("", "did not hear any digits"),
    ("212555123", "too short"),
    ("21255512345", "too long"),
    ("12125551234", "do not dial a 1"),
    ("1212555123", "do not dial a 1"),
    ("0125551234", "area codes do not start with 0 or 1"),
    ("2120551234", "cannot start with 0 or 1"),
    ("2121551234", "cannot start with 0 or 1"),
    ("212*551234", "only the number keys"),
    ("212#551234", "only the number keys"),
    ("9" * 10_000, "too long"),
])
def test_bad_entry_says_what_is_wrong_and_asks_again(twilio, main_line, svc, digits, message):
    root = enter(twilio, digits)
    assert message in said(root)
    assert query_of(root.find("Gather").get("action"))["attempt"] == "2"
    assert svc.storage.list_callbacks()[0] == []


def test_missing_digits_parameter_counts_as_no_entry(twilio, main_line):
    url = f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1"
    root = twiml(twilio.post_url(url, {"CallSid": "CA" + "a" * 32}))
    assert "did not hear" in said(root)


def test_third_failure_goes_back_to_the_queue_without_a_new_offer(twilio, main_line, svc):
    enqueue_caller(twilio)
    root = enter(twilio, "123", attempt=3)
    assert "back on hold" in said(root) and "kept your place" in said(root)
    assert root.find("Redirect").text == wait_url(offer=False)
    loop = hold(twilio, 900, url=wait_url(offer=False))
    assert loop.find("Gather") is None
    assert loop.find("Redirect").text == wait_url(offer=False)
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is not None


def test_a_valid_number_stores_the_callback_and_leaves_the_queue(twilio, main_line, svc, clock):
    enqueue_caller(twilio)
    joined = clock.now()
    clock.advance(seconds=75)
    root = enter(twilio, "2125551234")
    assert [e.tag for e in root] == ["Leave"]
    cb = svc.storage.get_callback("CA" + "a" * 32)
    assert cb.status == "pending" and cb.number == "+12125551234"
    assert (cb.ivr_name, cb.queue_name, cb.priority, cb.attempts) == ("Main Line", "Sales", 10, 0)
    assert cb.place_in_line == joined and cb.requested_at == clock.now() == cb.due_at
    assert cb.expires_at == clock.now() + timedelta(minutes=120)
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is None

    done = twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="leave")))
    assert "2 1 2, 5 5 5, 1 2 3 4" in said(done) and "keep your place" in said(done)
    assert done[-1].tag == "Hangup"


def test_callback_priority_setting_overrides_the_queue_priority(twilio, main_line, svc):
    svc.storage.save_ivr(main_line.evolve(settings=CallbackSettings(priority=2)))
    enqueue_caller(twilio)
    enter(twilio, "2125551234")
    assert svc.storage.get_callback("CA" + "a" * 32).priority == 2


def test_the_same_call_submitting_twice_creates_one_callback(twilio, main_line, svc):
    enqueue_caller(twilio)
    assert enter(twilio, "2125551234")[0].tag == "Leave"
    assert enter(twilio, "2125551234")[0].tag == "Leave"
    assert len(svc.storage.list_callbacks()[0]) == 1


def test_a_number_with_a_pending_callback_keeps_the_existing_one(twilio, main_line, svc, clock):
    enqueue_caller(twilio, "CA" + "1" * 32)
    enter(twilio, "2125551234", call_sid="CA" + "1" * 32)
    clock.advance(minutes=5)
    enqueue_caller(twilio, "CA" + "2" * 32)
    root = enter(twilio, "2125551234", call_sid="CA" + "2" * 32)
    assert "already have a callback" in said(root) and root[-1].tag == "Leave"
    items, _ = svc.storage.list_callbacks()
    assert [c.callback_id for c in items] == ["CA" + "1" * 32]
    # Another queue is another line: a callback there is its own.
    enqueue_caller(twilio, "CA" + "3" * 32, choice="2")
    assert enter(twilio, "2125551234", call_sid="CA" + "3" * 32, queue="Support")[0].tag == "Leave"
    assert len(svc.storage.list_callbacks()[0]) == 2


def test_hangup_in_the_queue_forgets_the_waiting_call(twilio, main_line, svc):
    enqueue_caller(twilio)
    root = twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="hangup")))
    assert root.find("Hangup") is not None
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is None


# -- signatures and failures -------------------------------------------------------------

@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/wait", "/voice/number",
                                  "/voice/enqueue-done", "/voice/agent/status"])
def test_unsigned_and_wrongly_signed_requests_are_refused(twilio, main_line, path):
    assert twilio.post(path, call_params(), signature="").status_code == 403
    assert twilio.post(path, call_params(), signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    other_url = "https://attacker.example.com" + path
    assert twilio.post(path, call_params(), url=other_url).status_code == 403


def test_a_signature_over_other_parameters_is_refused(twilio, main_line):
    signature = twilio.validator.compute_signature(PUBLIC + "/voice/incoming", call_params())
    response = twilio.post("/voice/incoming", call_params(From="+19995550000"), signature=signature)
    assert response.status_code == 403


def test_storage_failure_during_incoming_answers_a_polite_goodbye(twilio, svc, caplog):
    for model in svc.storage.models:
        model.delete_table()
    with caplog.at_level(logging.ERROR):
        root = twiml(twilio.post("/voice/incoming", call_params()))
    assert "sorry" in said(root).lower() and root[-1].tag == "Hangup"
    assert "CA" + "a" * 32 in caplog.text
    assert CALLER not in caplog.text and "5550123" not in caplog.text


def test_storage_failure_in_the_wait_loop_keeps_the_caller_holding(twilio, main_line, svc):
    svc.directory.invalidate()
    for model in svc.storage.models:
        model.delete_table()
    root = hold(twilio, 90)
    assert [e.tag for e in root] == ["Play"]


def test_storage_failure_while_storing_keeps_the_caller_in_the_queue(twilio, main_line, svc):
    svc.storage.CallbackRec.delete_table()
    root = enter(twilio, "2125551234")
    assert "could not save your number" in said(root) and "kept your place" in said(root)
    assert root.find("Redirect").text == wait_url(offer=False)


# -- the whole journey ----------------------------------------------------------------

def test_caller_journey_offer_two_bad_entries_then_a_callback_with_the_original_place(
        twilio, main_line, svc, clock):
    call_sid = "CA" + "f" * 32
    # The caller picks Sales and holds.
    root = enqueue_caller(twilio, call_sid, choice="1")
    wait = root.find("Enqueue").get("waitUrl")
    joined = clock.now()

    # After a minute the hold loop offers a callback; they press 1.
    clock.advance(seconds=60)
    offer = twiml(twilio.post_url(wait, call_params(call_sid, QueueTime="60")))
    entry = twiml(twilio.post_url(offer.find("Gather").get("action"), call_params(call_sid, Digits="1")))

    # Two bad entries: a leading 1, then too few digits.
    retry = twiml(twilio.post_url(entry.find("Gather").get("action"),
                                  call_params(call_sid, Digits="1415555012")))
    assert "do not dial a 1" in said(retry)
    retry = twiml(twilio.post_url(retry.find("Gather").get("action"),
                                  call_params(call_sid, Digits="41555")))
    assert "too short" in said(retry) and "Last try" in said(retry)

    # The third is good: the callback is stored and the caller leaves the queue.
    clock.advance(seconds=20)
    done = twiml(twilio.post_url(retry.find("Gather").get("action"),
                                 call_params(call_sid, Digits="4155550199")))
    assert done[0].tag == "Leave"
    goodbye = twiml(twilio.post_url(root.find("Enqueue").get("action"),
                                    call_params(call_sid, QueueResult="leave")))
    assert "4 1 5, 5 5 5, 0 1 9 9" in said(goodbye)

    callback = svc.storage.get_callback(call_sid)
    assert callback.status == "pending"
    assert callback.number == "+14155550199"
    assert callback.place_in_line == joined
    assert callback.requested_at == joined + timedelta(seconds=80)
