"""The caller flow through signed webhooks: menu, hold, offer, number entry, stored callback."""
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import IVR_NUMBER, PUBLIC, said, twiml

from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings
from callback.storage import NotFound

CALLER = "+14155550123"


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def call_params(call_sid="CA" + "a" * 32, **extra):
    return {"CallSid": call_sid, "AccountSid": "AC" + "1" * 32, "From": CALLER, "To": IVR_NUMBER,
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


QUEUE_SID = "QU" + "0" * 32


def enqueue_caller(twilio, call_sid="CA" + "a" * 32, choice="1"):
    """Menu choice, then Twilio's first waitUrl request (which records the caller);
    returns the menu's answer (the <Enqueue>)."""
    root = twiml(twilio.post("/voice/incoming", call_params(call_sid)))
    action = root.find("Gather").get("action")
    enqueued = twiml(twilio.post_url(action, call_params(call_sid, Digits=choice)))
    twiml(twilio.post_url(enqueued.find("Enqueue").get("waitUrl"),
                          call_params(call_sid, QueueSid=QUEUE_SID, QueueTime="0", QueuePosition="1")))
    return enqueued


def wait_url(queue="Sales", offer=True):
    url = f"{PUBLIC}/voice/wait?ivr=Main+Line&queue={queue}"
    return url if offer else url + "&offer=off"


def enter(twilio, digits, attempt=1, call_sid="CA" + "a" * 32, queue="Sales"):
    url = f"{PUBLIC}/voice/number?ivr=Main+Line&queue={queue}&attempt={attempt}"
    return twiml(twilio.post_url(url, call_params(call_sid, Digits=digits)))


def press(twilio, root, digits, call_sid="CA" + "a" * 32, **extra):
    """Answer the Gather of a TwiML document as the caller would."""
    return twiml(twilio.post_url(root.find("Gather").get("action"),
                                 call_params(call_sid, Digits=digits, **extra)))


def enter_and_confirm(twilio, digits, call_sid="CA" + "a" * 32, queue="Sales"):
    """Key in a number, hear it read back, press 1."""
    confirm = enter(twilio, digits, call_sid=call_sid, queue=queue)
    assert "Press 1 if that is right" in said(confirm), said(confirm)
    return press(twilio, confirm, "1", call_sid)


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
                                                                QueuePosition="1", QueueSid=QUEUE_SID)))


def test_hold_plays_music_without_offer_before_the_delay(twilio, main_line):
    root = hold(twilio, 59)
    assert root.find("Gather") is None and root.find("Play") is not None


@pytest.mark.parametrize("queue_time", [60, 999, 1500, 14400])
def test_offer_comes_once_the_caller_waited_long_enough(twilio, main_line, clock, queue_time):
    root = hold(twilio, queue_time)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    joined = str(int(clock.now().timestamp()) - queue_time)
    assert gather.get("action") == f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales&joined={joined}"
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
    # Back on the loop that keeps offering, without reading the wait estimate again.
    assert root.find("Redirect").text == wait_url() + "&offered=1"
    loop = hold(twilio, 300, url=root.find("Redirect").text)
    # The loop goes on marked with the caller's join time (recorded by this request).
    assert loop.find("Gather") is not None
    assert loop.find("Redirect").text.startswith(wait_url() + "&offered=1&joined=")


def test_pressing_1_asks_for_the_whole_number_ended_by_pound_or_a_pause(twilio, main_line):
    root = twiml(twilio.post_url(f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales",
                                 call_params(Digits="1")))
    gather = root.find("Gather")
    # No digit count: Twilio would submit at the last counted digit and the next key would
    # land in the following prompt. The entry ends on '#' or a pause instead.
    assert gather.get("numDigits") is None
    assert (gather.get("finishOnKey"), gather.get("timeout")) == ("#", "5")
    assert gather.get("actionOnEmptyResult") == "true"
    assert query_of(gather.get("action")) == {"ivr": "Main Line", "queue": "Sales", "attempt": "1"}
    assert "area code" in said(root) and "press pound" in said(root)


# -- number entry ----------------------------------------------------------------------

@pytest.mark.parametrize("digits, message", [
    ("", "did not hear any digits"),
    ("212555123", "too short"),
    ("21255512345", "too long"),
    ("12125551234", "Please enter just the ten digits, without the 1."),
    ("1212555123", "Please enter just the ten digits, without the 1."),
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


def test_a_leading_1_entry_reaches_the_app_whole_is_explained_and_counts_as_a_try(
        twilio, main_line, svc):
    enqueue_caller(twilio)
    root = enter(twilio, "12125551234", attempt=2)
    assert said(root).startswith("Please enter just the ten digits, without the 1.")
    assert "Last try" in said(root)
    root = enter(twilio, "12125551234", attempt=3)
    assert "without the 1" in said(root) and "back on hold" in said(root)
    assert root.find("Redirect").text == wait_url(offer=False)
    assert svc.storage.list_callbacks()[0] == []


def run_gather(gather, keys):
    """What Twilio does with keys typed at a Gather: (submitted digits, keys left over for
    whatever prompt comes next). It stops at numDigits or at finishOnKey."""
    limit = int(gather.get("numDigits") or 10_000)
    finish = gather.get("finishOnKey", "#")
    digits = ""
    for i, key in enumerate(keys):
        if finish and key == finish:
            return digits, keys[i + 1:]
        digits += key
        if len(digits) == limit:
            return digits, keys[i + 1:]
    return digits, ""


@pytest.mark.parametrize("keys", ["12125551234", "12125551234#", "2125551234", "212555123456789"])
def test_no_key_of_an_entry_leaks_into_the_next_prompt(twilio, main_line, keys):
    first = twiml(twilio.post_url(f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales",
                                  call_params(Digits="1")))
    again = enter(twilio, "123")
    reentry = press(twilio, enter(twilio, "2125551234"), "2")
    for prompt in (first, again, reentry):
        submitted, leaked = run_gather(prompt.find("Gather"), keys)
        assert leaked == "" and submitted == keys.rstrip("#")
    if keys.startswith("1"):
        # The app hears the whole entry: a leading 1 is named, not cut to ten digits.
        assert "without the 1" in said(enter(twilio, keys.rstrip("#")))


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
    marked = loop.find("Redirect").text
    assert marked.startswith(wait_url(offer=False) + "&joined=")
    again = hold(twilio, 930, url=marked)
    assert again.find("Gather") is None and again.find("Redirect").text == marked
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is not None


def test_a_valid_number_is_read_back_and_nothing_is_stored_before_the_caller_confirms(
        twilio, main_line, svc):
    enqueue_caller(twilio)
    root = enter(twilio, "2125551234")
    assert said(root) == ("I have 2 1 2, 5 5 5, 1 2 3 4. Press 1 if that is right, or 2 to "
                          "enter it again.")
    gather = root.find("Gather")
    assert (gather.get("numDigits"), gather.get("actionOnEmptyResult")) == ("1", "true")
    action = gather.get("action")
    assert action.startswith(f"{PUBLIC}/voice/confirm?") and "2125551234" not in action
    assert svc.storage.list_callbacks()[0] == []
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is not None


def test_a_confirmed_number_stores_the_callback_and_leaves_the_queue(twilio, main_line, svc, clock):
    enqueue_caller(twilio)
    joined = clock.now()
    clock.advance(seconds=75)
    root = enter_and_confirm(twilio, "2125551234")
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


def test_pressing_2_enters_again_without_using_up_a_try(twilio, main_line, svc):
    enqueue_caller(twilio)
    confirm = enter(twilio, "2125551299", attempt=3)
    reentry = press(twilio, confirm, "2")
    gather = reentry.find("Gather")
    assert query_of(gather.get("action"))["attempt"] == "3"
    assert "Last try" not in said(reentry) and "Please enter the ten digit number" in said(reentry)
    assert svc.storage.list_callbacks()[0] == []
    # The corrected number is read back, and only it can be confirmed and stored.
    corrected = press(twilio, reentry, "2125551234")
    assert "I have 2 1 2, 5 5 5, 1 2 3 4." in said(corrected)
    assert press(twilio, confirm, "1")[0].tag != "Leave"
    assert [e.tag for e in press(twilio, corrected, "1")] == ["Leave"]
    assert svc.storage.get_callback("CA" + "a" * 32).number == "+12125551234"


def test_re_entering_is_bounded(twilio, main_line, svc):
    enqueue_caller(twilio)
    root = enter(twilio, "2125551234")
    for _ in range(3):
        root = press(twilio, press(twilio, root, "2"), "2125551234")
        assert "Press 1 if that is right" in said(root)
    root = press(twilio, root, "2")
    assert "not saved a number" in said(root) and root.find("Redirect").text == wait_url(offer=False)
    assert svc.storage.list_callbacks()[0] == []


@pytest.mark.parametrize("first, second", [("", ""), ("7", ""), ("", "*"), ("9", "9")])
def test_no_answer_to_the_read_back_asks_once_more_then_holds_with_nothing_stored(
        twilio, main_line, svc, first, second):
    enqueue_caller(twilio)
    confirm = enter(twilio, "2125551234")
    again = press(twilio, confirm, first)
    problem = "did not hear a choice" if not first else "not one of the choices"
    assert problem in said(again) and "I have 2 1 2, 5 5 5, 1 2 3 4." in said(again)
    back = press(twilio, again, second)
    assert "not saved a number" in said(back) and "kept your place" in said(back)
    assert back.find("Redirect").text == wait_url(offer=False)
    assert back.find("Leave") is None
    assert svc.storage.list_callbacks()[0] == []
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is not None


def test_a_read_back_confirms_only_for_its_own_call(twilio, main_line, svc):
    enqueue_caller(twilio)
    confirm = enter(twilio, "2125551234")
    other = press(twilio, confirm, "1", call_sid="CA" + "b" * 32)
    assert "could not save your number" in said(other) and other.find("Leave") is None
    assert svc.storage.list_callbacks()[0] == []


def test_an_unconfirmed_number_is_forgotten_after_ten_minutes(twilio, main_line, svc, clock):
    enqueue_caller(twilio)
    confirm = enter(twilio, "2125551234")
    clock.advance(minutes=10)
    root = press(twilio, confirm, "1")
    assert root.find("Leave") is None and svc.storage.list_callbacks()[0] == []


def test_callback_priority_setting_overrides_the_queue_priority(twilio, main_line, svc):
    svc.storage.save_ivr(main_line.evolve(settings=CallbackSettings(priority=2)))
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    assert svc.storage.get_callback("CA" + "a" * 32).priority == 2


def test_the_same_call_submitting_twice_creates_one_callback(twilio, main_line, svc):
    enqueue_caller(twilio)
    assert enter_and_confirm(twilio, "2125551234")[0].tag == "Leave"
    assert enter_and_confirm(twilio, "2125551234")[0].tag == "Leave"
    assert len(svc.storage.list_callbacks()[0]) == 1


def test_a_number_with_a_pending_callback_keeps_the_existing_one(twilio, main_line, svc, clock):
    enqueue_caller(twilio, "CA" + "1" * 32)
    enter_and_confirm(twilio, "2125551234", call_sid="CA" + "1" * 32)
    clock.advance(minutes=5)
    enqueue_caller(twilio, "CA" + "2" * 32)
    root = enter_and_confirm(twilio, "2125551234", call_sid="CA" + "2" * 32)
    assert "already have a callback" in said(root) and root[-1].tag == "Leave"
    items, _ = svc.storage.list_callbacks()
    assert [c.callback_id for c in items] == ["CA" + "1" * 32]
    # Another queue is another line: a callback there is its own.
    enqueue_caller(twilio, "CA" + "3" * 32, choice="2")
    assert enter_and_confirm(twilio, "2125551234", call_sid="CA" + "3" * 32,
                             queue="Support")[0].tag == "Leave"
    assert len(svc.storage.list_callbacks()[0]) == 2


def test_hangup_in_the_queue_forgets_the_waiting_call(twilio, main_line, svc):
    enqueue_caller(twilio)
    root = twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="hangup")))
    assert root.find("Hangup") is not None
    assert svc.storage.get_waiting_call("CA" + "a" * 32) is None


@pytest.mark.parametrize("path", ["/voice/number", "/voice/confirm"])
def test_an_entry_step_for_a_queue_deleted_mid_call_goes_back_to_hold_without_the_offer(
        twilio, main_line, svc, path):
    root = twiml(twilio.post_url(f"{PUBLIC}{path}?ivr=Main+Line&queue=Gone&attempt=1",
                                 call_params(Digits="2125551234")))
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == wait_url("Gone", offer=False)
    with pytest.raises(NotFound):
        svc.storage.get_callback("CA" + "a" * 32)


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
    confirm = enter(twilio, "2125551234")
    svc.storage.CallbackRec.delete_table()
    root = press(twilio, confirm, "1")
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

    # Two bad entries: a leading 1 (all eleven keys reach the app), then too few digits.
    retry = press(twilio, entry, "14155550199", call_sid)
    assert "without the 1" in said(retry)
    retry = press(twilio, retry, "41555", call_sid)
    assert "too short" in said(retry) and "Last try" in said(retry)

    # The third is valid but mistyped: read back, the caller presses 2 and enters it again.
    confirm = press(twilio, retry, "4155550198", call_sid)
    assert "I have 4 1 5, 5 5 5, 0 1 9 8." in said(confirm)
    confirm = press(twilio, press(twilio, confirm, "2", call_sid), "4155550199", call_sid)

    # Confirmed: the callback is stored and the caller leaves the queue.
    clock.advance(seconds=20)
    done = press(twilio, confirm, "1", call_sid)
    assert done[0].tag == "Leave"
    goodbye = twiml(twilio.post_url(root.find("Enqueue").get("action"),
                                    call_params(call_sid, QueueResult="leave")))
    assert "4 1 5, 5 5 5, 0 1 9 9" in said(goodbye)

    callback = svc.storage.get_callback(call_sid)
    assert callback.status == "pending"
    assert callback.number == "+14155550199"
    assert callback.place_in_line == joined
    assert callback.requested_at == joined + timedelta(seconds=80)


@pytest.mark.parametrize("digits", ["9005551234", "2469761234", "8765551234", "8095551234",
                                    "4115551234", "5555551234", "6135551234"])
def test_a_number_nobody_should_dial_is_refused_in_plain_words_and_counts_as_a_try(
        twilio, main_line, svc, digits):
    """Premium-rate (900, Barbados 246-976), Caribbean (876, 809), no such area code (411,
    555) and, by default, Canada: refused at entry, never read back or stored."""
    enqueue_caller(twilio)
    root = enter(twilio, digits)
    assert said(root).startswith("That number can't be called back; please use a different number.")
    assert query_of(root.find("Gather").get("action"))["attempt"] == "2"
    root = enter(twilio, digits, attempt=3)
    assert "can't be called back" in said(root) and "back on hold" in said(root)
    assert root.find("Redirect").text == wait_url(offer=False)
    assert svc.storage.list_callbacks()[0] == []
