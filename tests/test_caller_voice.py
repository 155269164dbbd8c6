"""What the caller and the called-back customer hear: their own number offered, the
company's name, the IVR's voice, and an honest wait estimate."""
from datetime import timedelta

import pytest
from conftest import PUBLIC, said, twiml
from test_caller_flow import (
    CALLER,
    QUEUE_SID,
    call_params,
    enqueue_caller,
    enter_and_confirm,
    press,
    query_of,
    wait_url,
)
from test_dispatch import agent_accepts, agents, answer, api, ringing, store_callback  # noqa: F401 (fixtures)

from callback.domain.estimate import BUCKET
from callback.domain.settings import CallbackSettings

OFFER = f"{PUBLIC}/voice/offer?ivr=Main+Line&queue=Sales"


def with_settings(svc, main_line, **changes):
    # The fixture's detection stays (synchronous: the customer's answer is a webhook here).
    return svc.storage.save_ivr(main_line.evolve(settings=CallbackSettings(
        **{"machine_detection": main_line.settings.machine_detection, **changes})))


def press_1_at_the_offer(twilio, caller=CALLER):
    return twiml(twilio.post_url(OFFER, call_params(Digits="1", From=caller)))


# -- the caller's own number -------------------------------------------------------------

def test_the_callers_own_number_is_not_offered_by_default(twilio, main_line):
    root = press_1_at_the_offer(twilio)
    assert "Please enter the ten digit number" in said(root) and "ending" not in said(root)


def test_the_callers_own_number_is_offered_when_the_ivr_says_so(twilio, svc, main_line):
    with_settings(svc, main_line, offer_caller_id=True)
    enqueue_caller(twilio)
    root = press_1_at_the_offer(twilio)
    assert said(root) == ("Press 1 to be called back at the number ending 0 1 2 3, or 2 to "
                          "enter another.")
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and CALLER[2:] not in gather.get("action")
    assert [e.tag for e in press(twilio, root, "1", From=CALLER)] == ["Leave"]
    assert svc.storage.get_callback("CA" + "a" * 32).number == CALLER


def test_pressing_2_at_the_own_number_offer_enters_another(twilio, svc, main_line):
    with_settings(svc, main_line, offer_caller_id=True)
    enqueue_caller(twilio)
    entry = press(twilio, press_1_at_the_offer(twilio), "2", From=CALLER)
    assert "Please enter the ten digit number" in said(entry)
    assert query_of(entry.find("Gather").get("action"))["attempt"] == "1"
    confirm = press(twilio, entry, "2125551234", From=CALLER)
    assert [e.tag for e in press(twilio, confirm, "1", From=CALLER)] == ["Leave"]
    assert svc.storage.get_callback("CA" + "a" * 32).number == "+12125551234"


def test_silence_at_the_own_number_offer_asks_once_more_then_holds(twilio, svc, main_line):
    with_settings(svc, main_line, offer_caller_id=True)
    enqueue_caller(twilio)
    again = press(twilio, press_1_at_the_offer(twilio), "", From=CALLER)
    assert "did not hear a choice" in said(again) and "ending 0 1 2 3" in said(again)
    back = press(twilio, again, "", From=CALLER)
    assert "not saved a number" in said(back) and back.find("Redirect").text == wait_url(offer=False)
    assert svc.storage.list_callbacks()[0] == []


@pytest.mark.parametrize("caller", ["+442071234567", "anonymous", "", "+11235550123",
                                    "+12120550123", "+1212555012", "sip:someone@example.com"])
def test_a_caller_id_that_is_not_a_ten_digit_number_is_never_offered(twilio, svc, main_line, caller):
    with_settings(svc, main_line, offer_caller_id=True)
    root = press_1_at_the_offer(twilio, caller)
    assert "Please enter the ten digit number" in said(root)
    # Nor can a crafted confirmation store it.
    url = f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&source=caller"
    stored = twiml(twilio.post_url(url, call_params(Digits="1", From=caller)))
    assert stored.find("Leave") is None and svc.storage.list_callbacks()[0] == []


def test_an_own_number_offer_made_before_the_setting_was_turned_off_stores_nothing(
        twilio, svc, main_line):
    ivr = with_settings(svc, main_line, offer_caller_id=True)
    root = press_1_at_the_offer(twilio)
    svc.storage.save_ivr(ivr.evolve(settings=CallbackSettings(offer_caller_id=False)))
    assert press(twilio, root, "1", From=CALLER).find("Leave") is None


# -- voice and language --------------------------------------------------------------------

def says(root):
    return [(e.get("voice"), e.get("language")) for e in root.iter("Say")]


def test_every_prompt_uses_the_default_voice_as_before(twilio, main_line):
    root = twiml(twilio.post("/voice/incoming", call_params()))
    assert set(says(root)) == {("Polly.Joanna", "en-US")}


def test_every_prompt_of_the_caller_flow_speaks_the_ivrs_voice_and_language(twilio, svc, main_line):
    with_settings(svc, main_line, voice="Polly.Lupe", language="es-US", offer_caller_id=True)
    params = call_params(QueueTime="90", QueuePosition="1")
    documents = [twiml(twilio.post("/voice/incoming", call_params())), enqueue_caller(twilio),
                 twiml(twilio.post_url(wait_url(), params)), press_1_at_the_offer(twilio)]
    entry = press(twilio, documents[-1], "2", From=CALLER)
    documents += [entry, press(twilio, entry, "123"), press(twilio, entry, "2125551234"),
                  press(twilio, press(twilio, entry, "2125551234"), "")]
    spoken = [pair for root in documents for pair in says(root)]
    assert len(spoken) >= 8 and set(spoken) == {("Polly.Lupe", "es-US")}


# -- the customer hears the company's name -------------------------------------------------

def customer_hears(twilio, svc, clock, twilio_standin, api):  # noqa: F811
    store_callback(svc, clock)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, "+14155550101"))
    return answer(twilio, ringing(twilio_standin, "+12125551234"), AnsweredBy="human")


def test_the_customer_hears_the_announce_as_name_in_the_ivrs_voice(
        twilio, svc, clock, main_line, agents, api, twilio_standin):  # noqa: F811
    with_settings(svc, main_line, announce_as="Example Company", voice="Polly.Amy", language="en-GB")
    root = customer_hears(twilio, svc, clock, twilio_standin, api)
    assert said(root) == ("Hello, this is the callback you requested from Example Company. "
                          "Connecting you to an agent now.")
    assert set(says(root)) == {("Polly.Amy", "en-GB")}


def test_with_async_detection_the_inline_greeting_speaks_in_the_ivrs_voice(
        twilio, svc, clock, main_line, agents, api, twilio_standin):  # noqa: F811
    import xml.etree.ElementTree as ET

    with_settings(svc, main_line, announce_as="Example Company", voice="Polly.Amy", language="en-GB",
                  machine_detection="async")
    store_callback(svc, clock)
    api.status("alice", "available")
    agent_accepts(twilio, ringing(twilio_standin, "+14155550101"))
    root = ET.fromstring(ringing(twilio_standin, "+12125551234").twiml)
    assert said(root) == "Hello, this is Example Company returning your call, connecting you with Alice."
    assert set(says(root)) == {("Polly.Amy", "en-GB")}


def test_without_announce_as_the_customer_hears_the_ivr_name(
        twilio, svc, clock, main_line, agents, api, twilio_standin):  # noqa: F811
    root = customer_hears(twilio, svc, clock, twilio_standin, api)
    assert "the callback you requested from Main Line." in said(root)


# -- the wait estimate ----------------------------------------------------------------------

def history(svc, clock, per_bucket, buckets=6, queue="Sales"):
    """Agents took `per_bucket` pieces of work from the queue in each recent bucket."""
    for i in range(buckets):
        for _ in range(per_bucket):
            svc.storage.count_departure(queue, clock.now() - i * BUCKET)


def first_offer(twilio, position, queue_time=60, call_sid="CA" + "a" * 32):
    return twiml(twilio.post_url(wait_url(), call_params(call_sid, QueueTime=str(queue_time),
                                                         QueuePosition=str(position))))


def on_duty(svc, clock, queue="Sales"):
    """An agent of the queue signed in (on a call, so dispatch gives them nothing)."""
    svc.storage.save_agent_profile("carol", name="Carol", phone="+14155550103", queues=[queue],
                                   now=clock.now(), create=True)
    svc.storage.set_agent_presence("carol", "available", clock.now())
    svc.storage.AgentRec("AGENT", "carol").update(actions=[svc.storage.AgentRec.status.set("busy")])


def test_the_offer_tells_the_wait_and_how_many_are_ahead(twilio, svc, main_line, clock):
    on_duty(svc, clock)
    clock.advance(minutes=2, seconds=30)  # 15:02:30: the window spans 32.5 minutes
    history(svc, clock, per_bucket=5, buckets=7)  # 35 departures: 0.93 minutes each
    store_callback(svc, clock, joined_minutes_ago=10)  # a callback ahead of the caller
    root = first_offer(twilio, position=4)  # three callers holding ahead
    text = said(root)
    # Five departures to wait for, one every 0.93 minutes: 4.6 on average, and a range from
    # the 10th to the 95th percentile of such a wait.
    assert text.startswith("There are 4 callers ahead of you, and the estimated wait is 2 to 9 "
                           "minutes. Press 1 to be called back")


def test_the_estimate_is_said_on_a_redirected_request_without_queue_parameters(twilio, svc, main_line, clock):
    """The offer is made on a request of the loop, reached through <Redirect>: Twilio
    documents QueuePosition only on the waitUrl request, so the app counts the line itself."""
    on_duty(svc, clock)
    clock.advance(minutes=2, seconds=30)
    history(svc, clock, per_bucket=5, buckets=7)  # 35 departures: 0.93 minutes each
    store_callback(svc, clock, joined_minutes_ago=10)  # a callback ahead of the caller
    ahead = "CA" + "e" * 32  # a caller holding since before them
    twiml(twilio.post_url(wait_url(), call_params(ahead, QueueTime="30", QueueSid=QUEUE_SID,
                                                  QueuePosition="1")))
    first = twiml(twilio.post_url(wait_url(), call_params(QueueTime="0", QueueSid=QUEUE_SID,
                                                          QueuePosition="2")))
    clock.advance(seconds=60)
    offer = twiml(twilio.post_url(first.find("Redirect").text, call_params()))
    # Three departures to wait for: 2.8 minutes on average, said as its range.
    assert said(offer).startswith("There are 2 callers ahead of you, and the estimated wait is 1 to 7 "
                                  "minutes. Press 1 to be called back")


@pytest.mark.parametrize("per_bucket, buckets, agent", [(1, 3, True), (5, 7, False)])
def test_the_offer_says_nothing_about_the_wait_without_history_or_agents(
        twilio, svc, main_line, clock, per_bucket, buckets, agent):
    if agent:
        on_duty(svc, clock)
    history(svc, clock, per_bucket=per_bucket, buckets=buckets)
    root = first_offer(twilio, position=2)
    assert said(root).startswith("Press 1 to be called back") and "estimated wait" not in said(root)


def test_the_hold_loop_reads_for_the_estimate_once_per_call(twilio, svc, main_line, clock, no_scans):
    history(svc, clock, per_bucket=3)
    svc.directory._ttl = 3600
    svc.directory.ivrs()
    root = enqueue_caller(twilio)  # the first waitUrl request recorded the caller
    first = twiml(twilio.post_url(root.find("Enqueue").get("waitUrl"),
                                  call_params(QueueTime="0", QueuePosition="2")))
    loop = first.find("Redirect").text
    reads = []
    for queue_time in range(30, 600, 30):
        clock.advance(seconds=30)
        before = len(no_scans)
        page = twiml(twilio.post_url(loop, call_params(QueueTime=str(queue_time), QueuePosition="2")))
        reads.append(len(no_scans) - before)
        redirect = page.find("Redirect")
        loop = redirect.text if redirect is not None else loop
    # Three reads (history, callbacks ahead, agents) when the offer is first made, at 60 s;
    # none on any other request of the loop.
    assert reads[1] == 3 and sum(reads) == 3
    assert "offered=1" in loop


def test_after_storing_the_caller_hears_when_to_expect_the_call(twilio, svc, main_line, clock):
    on_duty(svc, clock)
    history(svc, clock, per_bucket=2, buckets=7)  # 14 in 30 minutes: 2.1 minutes each
    store_callback(svc, clock, call_sid="CA" + "1" * 32, number="+13125550100", joined_minutes_ago=9)
    enqueue_caller(twilio)
    clock.advance(seconds=70)
    enter_and_confirm(twilio, "2125551234")
    done = twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="leave")))
    # Two departures to wait for, one every 2.1 minutes: a promise the call keeps 19 times in 20.
    assert "We expect to call you in 1 to 11 minutes." in [say.text for say in done.iter("Say")]


def test_after_storing_nothing_is_promised_without_history(twilio, svc, main_line, clock):
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    done = twiml(twilio.post_url(f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales",
                                 call_params(QueueResult="leave")))
    assert "We will call you back at" in said(done) and "expect" not in said(done)


def test_agents_taking_work_count_departures(svc, main_line, clock, agents, api, twilio_standin):  # noqa: F811
    store_callback(svc, clock)
    api.status("alice", "available")
    assert ringing(twilio_standin, "+14155550101")
    [bucket] = svc.storage.recent_departures("Sales", clock.now() - timedelta(minutes=5))
    assert bucket.count == 1


def test_the_agent_hears_the_whisper_in_the_ivrs_voice(
        twilio, svc, clock, main_line, agents, api, twilio_standin):  # noqa: F811
    with_settings(svc, main_line, voice="Polly.Amy", language="en-GB")
    store_callback(svc, clock)
    api.status("alice", "available")
    whisper = answer(twilio, ringing(twilio_standin, "+14155550101"))
    assert "Press 1 to accept" in said(whisper)
    assert set(says(whisper)) == {("Polly.Amy", "en-GB")}


@pytest.mark.parametrize("caller", ["+19005550123", "+18765550123", "+16135550123"])
def test_a_caller_id_the_ivr_does_not_call_is_never_offered(twilio, svc, main_line, caller):
    """Premium-rate (900), Jamaica (876) and Canada (by default) are not called back."""
    with_settings(svc, main_line, offer_caller_id=True)
    assert "Please enter the ten digit number" in said(press_1_at_the_offer(twilio, caller))
    url = f"{PUBLIC}/voice/confirm?ivr=Main+Line&queue=Sales&attempt=1&source=caller"
    twiml(twilio.post_url(url, call_params(Digits="1", From=caller)))
    assert svc.storage.list_callbacks()[0] == []


def test_canada_is_called_back_once_the_ivr_ticks_it(twilio, svc, main_line):
    with_settings(svc, main_line, offer_caller_id=True, call_regions=("US", "CA"))
    assert "ending 0 1 2 3" in said(press_1_at_the_offer(twilio, "+16135550123"))
