"""Texts to customers (issue #33's SMS part), through signed webhooks on DynamoDB Local and
the Twilio stand-in: the confirmation sent once after storing, replies (the cancel word, a
bare CANCEL, STOP, START), delivery reports, opt-outs, lost and failed sends."""
import threading
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from conftest import IVR_NUMBER, PUBLIC, TwilioClient, twiml
from test_caller_flow import enqueue_caller, enter_and_confirm
from test_contract import assert_in_spec

from callback.domain import stats
from callback.domain import texts as t
from callback.domain.estimate import Estimate
from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings, validate_settings
from callback.work.sweep import sweep_once

SERVICE = "MG" + "0123456789abcdef" * 2
CUSTOMER = "+12125551234"
CALL_SID = "CA" + "a" * 32
SMS_ON = dict(sms_enabled=True, sms_service_sid=SERVICE)


@pytest.fixture
def config_overrides(config_overrides):
    from conftest import with_admin_account

    return with_admin_account(config_overrides)


@pytest.fixture
def sms_line(svc):
    """'Main Line' (queues Sales and Support) texting its customers."""
    ivr = Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Thanks for calling Example Co.",
              queues=(Queue("Sales", "Main Line", 10, True), Queue("Support", "Main Line", 5, True)),
              settings=CallbackSettings(announce_as="Example Co", **SMS_ON))
    return svc.storage.save_ivr(ivr)


def request_callback(twilio, clock, call_sid=CALL_SID, digits="2125551234", queue="Sales"):
    """A caller holds, asks for a callback and confirms their number, through signed webhooks."""
    enqueue_caller(twilio, call_sid, choice="1" if queue == "Sales" else "2")
    clock.advance(seconds=75)
    root = enter_and_confirm(twilio, digits, call_sid=call_sid, queue=queue)
    assert [e.tag for e in root] == ["Leave"]
    return call_sid


def reply(twilio, body, sender=CUSTOMER, to=IVR_NUMBER, signature=None):
    """A customer's text to an IVR number, as Twilio posts it to the SMS URL."""
    params = {"MessageSid": "SM" + "9" * 32, "SmsSid": "SM" + "9" * 32, "AccountSid": "AC" + "1" * 32,
              "MessagingServiceSid": SERVICE, "From": sender, "To": to, "Body": body, "NumMedia": "0"}
    return twilio.post("/sms/incoming", params, signature=signature)


def messages_of(response):
    """The texts a messaging TwiML answer sends back (none for an empty <Response/>)."""
    assert response.status_code == 200 and response.mimetype == "text/xml", response.data[:300]
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return [m.text for m in root.iter("Message")]


def report(twilio, text, status, error_code=None):
    """Twilio's status callback of a text, to the URL the app gave it."""
    return twilio.post_url(text["status_callback"], {
        "MessageSid": text["sid"], "SmsSid": text["sid"], "MessageStatus": status, "SmsStatus": status,
        "ErrorCode": error_code, "To": text["to"], "AccountSid": "AC" + "1" * 32})


def counted(svc, clock, queue="Sales"):
    hours = svc.storage.hourly_counts(queue, clock.now() - timedelta(hours=1), clock.now())
    return {name: sum(h[name] for h in hours) for name in (stats.TEXTS_SENT, stats.TEXTS_FAILED)}


# -- the rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("word", sorted(t.TWILIO_WORDS) + ["stop", " Cancel ", "help"])
def test_a_cancel_word_twilio_answers_itself_is_refused(word):
    with pytest.raises(ValueError, match="Twilio answers itself"):
        t.parse_cancel_word(word)
    settings, errors = validate_settings({"sms_cancel_word": word}, partial=True)
    assert settings is None and "Twilio" in errors["sms_cancel_word"]


def test_cancel_words_and_service_sids_are_checked_at_save():
    assert t.parse_cancel_word(" c ") == "C" and t.parse_cancel_word("") == t.DEFAULT_CANCEL_WORD
    assert t.parse_cancel_word("9") == "9"
    for bad in ("two words", "C!", "X" * 11):
        with pytest.raises(ValueError):
            t.parse_cancel_word(bad)
    _, errors = validate_settings({"sms_enabled": True}, partial=True)
    assert errors == {"sms_service_sid": "is needed to send texts"}
    _, errors = validate_settings({"sms_service_sid": "MG123"}, partial=True)
    assert "Messaging Service SID" in errors["sms_service_sid"]
    settings, errors = validate_settings({"sms_enabled": "on", "sms_service_sid": SERVICE,
                                          "sms_cancel_word": "x"}, partial=True)
    assert not errors and (settings.sms_enabled, settings.sms_cancel_word) == (True, "X")
    assert CallbackSettings().sms_enabled is False, "texts are off by default"


def test_reply_words_mean_what_twilio_makes_them_mean():
    assert t.reply_kind(" c ", "C") == t.REPLY_CANCEL
    assert t.reply_kind("cancel", "C") == t.REPLY_OPT_OUT_CANCEL
    words = ("STOP", "stopall", "Quit", "revoke", "OPTOUT", "end", "unsubscribe")
    assert [t.reply_kind(w, "C") for w in words] == [t.REPLY_OPT_OUT] * len(words)
    assert [t.reply_kind(w, "C") for w in ("start", "YES", "unstop")] == [t.REPLY_OPT_IN] * 3
    assert t.reply_kind("help", "C") == t.REPLY_HELP
    assert t.reply_kind("c please", "C") == t.REPLY_OTHER and t.reply_kind("stop it", "C") == t.REPLY_OTHER


def test_which_numbers_may_take_a_text():
    assert t.textable("+12125551234")  # US: fixed line or mobile, the data cannot tell
    assert t.textable("+14165551234") and t.textable("+17875551234")  # Canada, Puerto Rico
    assert t.textable("+12423591234")  # a Bahamas mobile
    assert not t.textable("+12423456789"), "a Bahamas landline: the numbering data says so"
    assert not t.textable("+18005551234") and not t.textable("+1212") and not t.textable("junk")


@pytest.mark.parametrize("clocks, said", [
    ({"scheduled": "today at 2:30 PM"},
     "at the time you chose. We will call you today at 2:30 PM, within half an hour."),
    ({"opens": "tomorrow at 9 AM"},
     "We are closed until then: expect our call after we open, tomorrow at 9 AM."),
    ({"customer_opens": "8 a.m."}, "when it is your turn. We will call after 8 a.m. your time."),
])
def test_the_confirmation_says_when_as_the_caller_heard_it(clocks, said):
    facts = t.TextFacts("Example Co", CUSTOMER, ("Sales",), Estimate(12), "C", **clocks)
    body = t.body(t.CONFIRMATION, facts)
    assert said in body and "12 minutes" not in body
    assert len(body) <= 320, "two segments at most"


def test_the_confirmation_says_who_when_how_to_cancel_and_how_to_stop():
    facts = t.TextFacts("Example Co", CUSTOMER, ("Sales",), Estimate(12), "C")
    body = t.body(t.CONFIRMATION, facts)
    assert body.startswith("Example Co:") and "(Sales)" in body and "(212) ***-1234" in body
    assert "within about 12 minutes" in body and "Reply C to cancel" in body
    assert "Reply STOP to stop texts" in body
    assert CUSTOMER not in body and "555" not in body, "the number shows as a list shows it"
    over_cap = t.TextFacts("X", CUSTOMER, (), Estimate(60, True))
    assert "more than 60 minutes" in t.body(t.CONFIRMATION, over_cap)
    assert "expect" not in t.body(t.CONFIRMATION, t.TextFacts("X", CUSTOMER))
    for kind in t.KINDS:
        assert len(t.body(kind, facts)) <= 320, "two segments at most"


# -- sending ---------------------------------------------------------------------------------

def test_a_stored_callback_gets_one_confirmation_through_the_messaging_service(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    texts = twilio_standin.texts()
    assert len(texts) == 1
    text = texts[0]
    assert (text["to"], text["messaging_service_sid"], text["from"]) == (CUSTOMER, SERVICE, None)
    assert "Example Co" in text["body"] and "Reply C to cancel" in text["body"] and "STOP" in text["body"]
    assert text["status_callback"].startswith(PUBLIC + "/sms/status?text=")
    stored = svc.storage.get_text(t.text_key(CALL_SID, t.CONFIRMATION))
    assert (stored.state, stored.tries, stored.message_sid) == (t.SENT, 1, text["sid"])
    assert counted(svc, clock) == {stats.TEXTS_SENT: 1, stats.TEXTS_FAILED: 0}
    for request in twilio_standin.requests:
        assert_in_spec(request)
    # A delivery report settles it; the sweep and a second send send nothing more.
    assert messages_of(report(twilio, text, "delivered")) == []
    assert svc.storage.get_text(stored.key).state == t.DELIVERED
    assert svc.dispatcher.send_text(stored.key) == t.DELIVERED
    sweep_once(svc)
    assert svc.storage.outbox() == [] and len(twilio_standin.texts()) == 1


def test_no_text_when_the_ivr_does_not_text(twilio, svc, clock, main_line, twilio_standin):
    request_callback(twilio, clock)
    assert twilio_standin.texts() == [] and svc.storage.outbox() == []


def test_a_retried_confirm_webhook_and_racing_senders_send_one_text(svc, clock, sms_line, twilio_standin):
    from test_dispatch import store_callback

    cb = svc.storage.get_callback(store_callback(svc, clock, number=CUSTOMER))
    svc.dispatcher.send_later = None  # hold the sends: the racers below do them
    key = svc.dispatcher.text_about(cb, t.CONFIRMATION)
    assert key and svc.dispatcher.text_about(cb, t.CONFIRMATION) is None, "stored once"
    results = []
    racers = [threading.Thread(target=lambda: results.append(svc.dispatcher.send_text(key)))
              for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(twilio_standin.texts(to=CUSTOMER)) == 1
    assert results.count(t.SENT) == 1 and svc.storage.get_text(key).tries == 1


def test_a_lost_send_is_tried_again_by_the_sweep_a_bounded_number_of_times(
        twilio, svc, clock, sms_line, twilio_standin):
    twilio_standin.fail_next(429, 20429, count=10, message="Too Many Requests")
    request_callback(twilio, clock)
    key = t.text_key(CALL_SID, t.CONFIRMATION)
    assert svc.storage.get_text(key).state == t.DUE
    sent = []
    for _ in range(6):
        clock.advance(minutes=1)
        sweep_once(svc)
        sent.append(len([r for r in twilio_standin.requests if r["path"].endswith("/Messages.json")]))
    assert sent[-1] == t.MAX_TRIES, sent
    text = svc.storage.get_text(key)
    assert (text.state, text.tries, text.detail) == (t.FAILED, t.MAX_TRIES, "not-sent")
    assert svc.storage.outbox() == [] and svc.storage.get_callback(CALL_SID).status == "pending"
    assert counted(svc, clock) == {stats.TEXTS_SENT: 0, stats.TEXTS_FAILED: 1}


def test_a_send_whose_answer_was_lost_waits_for_its_status_callback(
        twilio, svc, clock, sms_line, twilio_standin):
    twilio_standin.fail_next(503, 20503, message="Service Unavailable")
    request_callback(twilio, clock)
    key = t.text_key(CALL_SID, t.CONFIRMATION)
    assert svc.storage.get_text(key).state == t.SENDING, "a 5xx may have been taken: no resend yet"
    clock.advance(minutes=5)
    sweep_once(svc)
    assert twilio_standin.texts() == []
    clock.advance(minutes=6)
    sweep_once(svc)
    texts = twilio_standin.texts()
    assert len(texts) == 1 and svc.storage.get_text(key).state == t.SENT


def test_a_failed_delivery_is_counted_never_resent_and_leaves_the_callback(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    text = twilio_standin.texts()[0]
    assert messages_of(report(twilio, text, "undelivered", "30006")) == []
    stored = svc.storage.get_text(t.text_key(CALL_SID, t.CONFIRMATION))
    assert (stored.state, stored.error_code) == (t.FAILED, 30006)
    assert counted(svc, clock) == {stats.TEXTS_SENT: 1, stats.TEXTS_FAILED: 1}
    report(twilio, text, "undelivered", "30006")  # repeated: counted once
    assert counted(svc, clock)[stats.TEXTS_FAILED] == 1
    clock.advance(minutes=30)
    sweep_once(svc)
    assert len(twilio_standin.texts()) == 1 and svc.storage.get_callback(CALL_SID).status == "pending"


def test_a_forged_status_callback_changes_nothing(twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    text = twilio_standin.texts()[0]
    forged = twilio.client.post(text["status_callback"][len(PUBLIC):],
                                data={"MessageSid": text["sid"], "MessageStatus": "failed",
                                      "ErrorCode": "30006"},
                                headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    assert svc.storage.get_text(t.text_key(CALL_SID, t.CONFIRMATION)).state == t.SENT


def test_a_landline_by_the_numbering_data_gets_no_text(svc, clock, twilio_standin):
    from test_dispatch import store_callback

    svc.storage.save_ivr(Ivr("Main Line", numbers=(IVR_NUMBER,), queues=(Queue("Sales", "Main Line", 10),),
                             settings=CallbackSettings(call_regions=("US", "BS"), **SMS_ON)))
    cb = svc.storage.get_callback(store_callback(svc, clock, number="+12423456789"))
    assert svc.dispatcher.text_about(cb, t.CONFIRMATION) is None
    assert twilio_standin.texts() == [] and svc.storage.outbox() == []


# -- replies and opt-outs ----------------------------------------------------------------------

def test_the_cancel_word_cancels_that_numbers_pending_callbacks_and_confirms(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    request_callback(twilio, clock, call_sid="CA" + "b" * 32, queue="Support")
    other = request_callback(twilio, clock, call_sid="CA" + "d" * 32, digits="3125550199")
    answer = messages_of(reply(twilio, "c"))
    assert len(answer) == 1 and "(Sales, Support) is cancelled" in answer[0]
    assert svc.storage.get_callback(CALL_SID).status == "canceled"
    assert svc.storage.get_callback(CALL_SID).ended_reason == "canceled by text"
    assert svc.storage.get_callback("CA" + "b" * 32).status == "canceled"
    assert svc.storage.get_callback(other).status == "pending", "another number's callback stays"
    # Again: nothing left to cancel, nothing said.
    assert messages_of(reply(twilio, "C")) == []


def test_the_cancel_word_from_an_unknown_number_or_a_forged_request_changes_nothing(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    assert messages_of(reply(twilio, "C", sender="+13125550100")) == []
    forged = reply(twilio, "C", signature="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 403
    wrong_token = TwilioClient(twilio.client, token="another-token")
    assert reply(wrong_token, "C").status_code == 403
    # To a number no IVR has: nothing.
    assert messages_of(reply(twilio, "C", to="+15005550009")) == []
    assert svc.storage.get_callback(CALL_SID).status == "pending"


def test_a_bare_cancel_cancels_records_the_opt_out_and_sends_nothing(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    twilio_standin.inbound_text(CUSTOMER, IVR_NUMBER, "CANCEL")  # Twilio blocks and answers
    assert messages_of(reply(twilio, "Cancel")) == []
    assert svc.storage.get_callback(CALL_SID).status == "canceled"
    assert svc.storage.opted_out(CUSTOMER)


def test_a_stopped_number_keeps_its_callback_and_is_never_texted_until_start(
        twilio, svc, clock, sms_line, twilio_standin):
    request_callback(twilio, clock)
    assert messages_of(reply(twilio, "STOP")) == []
    assert svc.storage.opted_out(CUSTOMER) and svc.storage.get_callback(CALL_SID).status == "pending"
    assert messages_of(reply(twilio, "HELP")) == [], "Twilio answers HELP itself"
    # A later callback of that number (another queue) gets no text.
    request_callback(twilio, clock, call_sid="CA" + "b" * 32, queue="Support")
    assert len(twilio_standin.texts()) == 1
    skipped = svc.storage.get_text(t.text_key("CA" + "b" * 32, t.CONFIRMATION))
    assert (skipped.state, skipped.detail) == (t.SKIPPED, "opted-out")
    assert messages_of(reply(twilio, "start")) == [] and not svc.storage.opted_out(CUSTOMER)


def test_twilios_21610_is_an_opt_out_learned_late(twilio, svc, clock, sms_line, twilio_standin):
    twilio_standin.inbound_text(CUSTOMER, IVR_NUMBER, "STOP")  # a STOP the app never heard of
    request_callback(twilio, clock)
    text = svc.storage.get_text(t.text_key(CALL_SID, t.CONFIRMATION))
    assert (text.state, text.error_code) == (t.SKIPPED, 21610)
    assert svc.storage.opted_out(CUSTOMER) and svc.storage.get_callback(CALL_SID).status == "pending"
    assert twilio_standin.texts() == []


def test_a_broken_messaging_webhook_answers_empty_twiml(twilio, svc, sms_line, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(type(svc.dispatcher), "text_reply", broken)
    response = reply(twilio, "C")
    assert messages_of(response) == [] and response.status_code == 200


# -- set-up and erasure ------------------------------------------------------------------------

def test_twilio_setup_points_the_sms_url_of_numbers_whose_ivr_texts(svc, sms_line, twilio_standin):
    from callback.work.twilio_setup import set_up_numbers

    sid = twilio_standin.own_number(IVR_NUMBER)
    plans = set_up_numbers(svc.storage, svc.telephony, svc.config)
    assert plans[0].applied and "sms_url" in plans[0].changes
    assert twilio_standin.numbers[sid]["sms_url"] == PUBLIC + "/sms/incoming"
    assert twilio_standin.numbers[sid]["sms_method"] == "POST"
    assert not set_up_numbers(svc.storage, svc.telephony, svc.config)[0].changes
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_forgetting_a_number_forgets_its_texts_opt_out_and_twilios_message_logs(
        twilio, svc, clock, sms_line, twilio_standin):
    from conftest import API_TOKEN

    request_callback(twilio, clock)
    reply(twilio, "STOP")
    twilio_standin.inbound_text(CUSTOMER, IVR_NUMBER, "STOP")
    response = twilio.client.post("/api/numbers/forget", json={"number": CUSTOMER},
                                  headers={"Authorization": f"Bearer {API_TOKEN}"})
    body = response.get_json()
    assert response.status_code == 200 and body["texts_removed"] == 1, body
    assert svc.storage.get_text(t.text_key(CALL_SID, t.CONFIRMATION)) is None
    assert not svc.storage.opted_out(CUSTOMER) and svc.storage.outbox() == []
    with twilio_standin.lock:
        assert not [m for m in twilio_standin.messages.values() if CUSTOMER in (m["to"], m["from"])]
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_a_messaging_answer_is_twiml(twilio, sms_line):
    assert twiml(reply(twilio, "hello")) is not None


# -- the optional texts ----------------------------------------------------------------------

def test_optional_texts_when_an_agent_calls_and_when_the_customer_was_not_reached(
        twilio, svc, clock, main_line, twilio_standin):
    from dataclasses import replace

    from test_dispatch import ALICE, agent_accepts, ringing, status, store_callback

    settings = replace(main_line.settings, max_retries=1, sms_about_to_call=True, sms_not_reached=True,
                       **SMS_ON)
    svc.storage.save_ivr(main_line.evolve(settings=settings))
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=clock.now(),
                                   create=True)
    cb_id = store_callback(svc, clock, number=CUSTOMER)
    svc.storage.set_agent_presence("alice", "available", clock.now())
    svc.dispatcher.dispatch()
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    customer = ringing(twilio_standin, CUSTOMER)
    texts = twilio_standin.texts(to=CUSTOMER)
    assert len(texts) == 1 and "an agent is about to call you back" in texts[0]["body"]
    status(twilio, customer, "no-answer")
    assert svc.storage.get_callback(cb_id).status == "expired"
    texts = twilio_standin.texts(to=CUSTOMER)
    assert len(texts) == 2 and "could not reach you" in texts[1]["body"] and "STOP" in texts[1]["body"]
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_the_optional_texts_are_off_unless_asked_for(twilio, svc, clock, sms_line, twilio_standin):
    from test_dispatch import ALICE, agent_accepts, ringing, store_callback

    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=clock.now(),
                                   create=True)
    store_callback(svc, clock, number=CUSTOMER)
    svc.storage.set_agent_presence("alice", "available", clock.now())
    svc.dispatcher.dispatch()
    agent_accepts(twilio, ringing(twilio_standin, ALICE))
    ringing(twilio_standin, CUSTOMER)
    assert twilio_standin.texts() == []


def test_text_settings_round_trip_through_storage_and_the_api(app, svc, sms_line):
    from conftest import API_TOKEN

    assert svc.storage.get_ivr("Main Line").settings == sms_line.settings
    client, auth = app.test_client(), {"Authorization": f"Bearer {API_TOKEN}"}
    refused = client.put("/api/ivrs/Main Line/settings", json={"sms_cancel_word": "STOP"}, headers=auth)
    assert refused.status_code == 400 and "Twilio" in refused.get_json()["fields"]["sms_cancel_word"]
    saved = client.put("/api/ivrs/Main Line/settings", json={"sms_cancel_word": "9", "sms_not_reached": True},
                       headers=auth)
    assert saved.status_code == 200, saved.get_json()
    settings = svc.storage.get_ivr("Main Line").settings
    assert (settings.sms_cancel_word, settings.sms_not_reached) == ("9", True)
    assert settings.sms_service_sid == SERVICE
    off = client.put("/api/ivrs/Main Line/settings", json={"sms_service_sid": None}, headers=auth)
    assert off.status_code == 400
    assert off.get_json()["fields"] == {"sms_service_sid": "is needed to send texts"}


def test_the_sweep_texts_a_callback_that_expires_after_unanswered_calls(
        svc, clock, main_line, twilio_standin):
    from dataclasses import replace

    from test_dispatch import store_callback

    settings = replace(main_line.settings, sms_not_reached=True, **SMS_ON)
    svc.storage.save_ivr(main_line.evolve(settings=settings))
    tried = store_callback(svc, clock, number=CUSTOMER)
    untried = store_callback(svc, clock, call_sid="CA" + "f" * 32, number="+13125550111")
    # One unanswered attempt, as the record keeps it (the attempt's own steps are tested elsewhere).
    svc.storage.CallbackRec(tried).update(actions=[svc.storage.CallbackRec.attempts.set(1)])
    clock.advance(minutes=121)
    sweep_once(svc)
    assert {svc.storage.get_callback(cb).status for cb in (tried, untried)} == {"expired"}
    assert [m["to"] for m in twilio_standin.texts()] == [CUSTOMER], "no 'could not reach you' without a call"


def test_an_ivr_that_does_not_text_cancels_nothing_by_text_but_still_records_stop(
        twilio, svc, clock, main_line, twilio_standin):
    request_callback(twilio, clock)
    assert messages_of(reply(twilio, "C")) == [] and messages_of(reply(twilio, "CANCEL")) == []
    assert svc.storage.get_callback(CALL_SID).status == "pending"
    assert svc.storage.opted_out(CUSTOMER), "CANCEL is an opt-out at Twilio all the same"



def test_the_callback_page_shows_its_texts(app, twilio, svc, clock, sms_line, twilio_standin):
    from conftest import log_in

    request_callback(twilio, clock)
    report(twilio, twilio_standin.texts()[0], "undelivered", "30006")
    client = app.test_client()
    assert log_in(client).status_code == 302
    page = client.get(f"/admin/callbacks/{CALL_SID}").get_data(as_text=True)
    assert "<h2>Texts</h2>" in page and "Confirmation" in page
    assert "Failed (Twilio error 30006, undelivered)" in page
    other = request_callback(twilio, clock, call_sid="CA" + "b" * 32, digits="3125550199")
    assert svc.storage.forget_texts(other)
    assert "<h2>Texts</h2>" not in client.get(f"/admin/callbacks/{other}").get_data(as_text=True)
