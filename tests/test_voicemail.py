"""Voicemail instead of holding (issue #33): press 3 at the offer, leave the queue (a queue's
waitUrl may not <Record>), record in the Enqueue action, the message stored as work in the
line with the caller's place; the agent hears it, then the caller is dialed as a callback
is. Recording status callbacks lost, repeated or failed; an empty message; the portal's
player; the recording deleted at Twilio after the retention and on erasure. Through signed
webhooks on DynamoDB Local and the Twilio stand-in."""
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from conftest import API_TOKEN, PUBLIC, log_in, said, twiml, with_admin_account
from test_caller_flow import CALLER, call_params, query_of
from test_caller_flow import press as caller_presses
from test_dispatch import (  # noqa: F401  (agents and api are fixtures)
    ALICE,
    agent_joins,
    agents,
    answer,
    api,
    conference_end,
    conference_event,
    press,
    ringing,
    status,
)
from test_open_hours import hold_and_offer, monday_at

from callback.clock import FixedClock
from callback.domain import transitions
from callback.domain import voicemail as vm
from callback.domain.settings import validate_settings
from callback.storage import NotFound
from callback.work.erasure import forget_number
from callback.work.sweep import sweep_once

SID = "CA" + "7" * 32
WHERE = {"ivr": "Main Line", "queue": "Sales"}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def clock():
    """Monday noon in New York: 9 AM where the caller's 415 number is, inside their window."""
    return FixedClock(monday_at(12))


def with_voicemail(svc, **settings):
    ivr = svc.storage.get_ivr("Main Line")
    values = dict(voicemail_enabled=True, **settings)
    return svc.storage.save_ivr(ivr.evolve(settings=replace(ivr.settings, **values)))


@pytest.fixture
def voicemail_line(svc, main_line):
    return with_voicemail(svc, voicemail_transcribe=True)


def leave_queue_to_record(twilio, call_sid=SID, queue_time=120):
    """Hold, hear the offer with its 3, press it, leave the queue: the Enqueue action's <Record>."""
    offer = hold_and_offer(twilio, call_sid, queue_time)
    assert "press 3 to leave a message" in said(offer)
    left = caller_presses(twilio, offer, "3", call_sid)
    assert left.find("Leave") is not None and left.find("Record") is None
    answer_ = twiml(twilio.post("/voice/enqueue-done", call_params(call_sid, QueueResult="leave"),
                                query=WHERE))
    record = answer_.find("Record")
    assert record is not None
    return record


def record_action(twilio, record, call_sid, recording_sid, seconds):
    return twiml(twilio.post_url(record.get("action"), call_params(
        call_sid, RecordingSid=recording_sid, RecordingDuration=str(seconds),
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{recording_sid}",
        Digits="#")))


def recording_status(twilio, record, call_sid, recording_sid, seconds, state="completed"):
    response = twilio.post_url(record.get("recordingStatusCallback"), call_params(
        call_sid, RecordingSid=recording_sid, RecordingStatus=state, RecordingDuration=str(seconds),
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{recording_sid}"))
    assert response.status_code == 200 and response.mimetype == "text/xml"


def hang_up(twilio, call_sid=SID):
    """The caller's own call ends (their number's status callback): their phone is free."""
    response = twilio.post("/voice/caller/status", call_params(call_sid, CallStatus="completed"))
    assert response.status_code == 200


def leave_a_message(twilio, standin, call_sid=SID, seconds=40, queue_time=120):
    """Leave a message and hang up; returns the <Record>, the recording's SID and the goodbye."""
    record = leave_queue_to_record(twilio, call_sid, queue_time)
    recording_sid = standin.add_recording(call_sid, seconds)
    saved = record_action(twilio, record, call_sid, recording_sid, seconds)
    hang_up(twilio, call_sid)
    return record, recording_sid, saved


def get_audio(app, url):
    """Fetch a URL the app handed to Twilio to <Play> (Twilio's GET, unsigned)."""
    parts = urlsplit(url)
    return app.test_client().get(parts.path[len(urlsplit(PUBLIC).path):] + "?" + parts.query)


# -- the settings -------------------------------------------------------------------------

def test_voicemail_is_off_by_default_and_its_settings_are_checked():
    settings, errors = validate_settings({}, partial=True)
    assert not settings.voicemail_enabled and settings.voicemail_max_seconds == vm.DEFAULT_MAX_SECONDS
    assert settings.voicemail_retention_days == vm.DEFAULT_RETENTION_DAYS
    assert not settings.voicemail_transcribe
    _, errors = validate_settings({"voicemail_max_seconds": "5", "voicemail_retention_days": "0"},
                                  partial=True)
    assert set(errors) == {"voicemail_max_seconds", "voicemail_retention_days"}
    settings, errors = validate_settings({"voicemail_enabled": True, "voicemail_max_seconds": 60,
                                          "voicemail_transcribe": True, "voicemail_retention_days": 7},
                                         partial=True, json=True)
    assert not errors and (settings.voicemail_max_seconds, settings.voicemail_retention_days) == (60, 7)


def test_settings_survive_storage(svc, main_line):
    with_voicemail(svc, voicemail_max_seconds=90, voicemail_retention_days=3, voicemail_transcribe=True)
    settings = svc.storage.get_ivr("Main Line").settings
    assert (settings.voicemail_enabled, settings.voicemail_max_seconds, settings.voicemail_retention_days,
            settings.voicemail_transcribe) == (True, 90, 3, True)


def test_no_3_where_the_ivr_takes_no_messages(twilio, svc, main_line):
    offer = hold_and_offer(twilio, SID, 120)
    assert "press 3" not in said(offer)
    back = caller_presses(twilio, offer, "3", SID)
    assert back.find("Leave") is None and back.find("Redirect") is not None


@pytest.mark.parametrize("caller", ["anonymous", "+442071838750", "+19005551234"])
def test_no_3_for_a_caller_whose_own_number_we_would_not_call(twilio, svc, voicemail_line, caller):
    root = twiml(twilio.post("/voice/incoming", call_params(SID, From=caller)))
    enqueued = twiml(twilio.post_url(root.find("Gather").get("action"),
                                     call_params(SID, From=caller, Digits="1")))
    offer = twiml(twilio.post_url(enqueued.find("Enqueue").get("waitUrl"),
                                  call_params(SID, From=caller, QueueTime="120", QueuePosition="1")))
    assert "press 3" not in said(offer) and "Press 1" in said(offer)
    back = caller_presses(twilio, offer, "3", SID, From=caller)
    assert back.find("Leave") is None
    assert svc.storage.get_waiting_call(SID).status == "waiting"


# -- the journey ----------------------------------------------------------------------------

def test_a_message_left_is_heard_by_the_agent_then_the_caller_is_called_back(
        app, twilio, svc, clock, voicemail_line, agents, api, twilio_standin):
    joined = clock.now() - timedelta(seconds=120)
    record = leave_queue_to_record(twilio)
    # Out of the line while recording: no agent is offered a caller who is not in the queue.
    assert svc.storage.get_waiting_call(SID).status == "recording"
    assert svc.storage.waiting_in_queue("Sales") == []
    assert (record.get("maxLength"), record.get("finishOnKey"), record.get("playBeep")) == (
        "120", "#", "true")
    assert record.get("transcribe") == "true" and record.get("transcribeCallback")
    assert record.get("recordingStatusCallback").startswith(PUBLIC + "/voice/voicemail/status?")

    recording_sid = twilio_standin.add_recording(SID, 40)
    saved = record_action(twilio, record, SID, recording_sid, 40)
    assert "Your message is saved and keeps your place in line" in said(saved)
    assert "4 1 5, 5 5 5, 0 1 2 3" in said(saved) and saved.find("Hangup") is not None
    cb = svc.storage.get_callback(SID)
    assert (cb.kind, cb.number, cb.status, cb.place_in_line) == ("voicemail", CALLER, "pending", joined)
    assert (cb.recording_sid, cb.recording_seconds, cb.priority) == (recording_sid, 40, 10)
    assert svc.storage.get_waiting_call(SID) is None
    # The caller is still on the phone, hearing goodbye: their number is not dialed yet.
    api.status("alice", "available")
    assert not twilio_standin.placed(to=ALICE)
    hang_up(twilio)
    api.status("alice", "offline")
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, agent_leg)
    assert ("Voicemail for Sales from 4 1 5, 5 5 5, 0 1 2 3, 40 seconds. Press 1 to hear it and call back."
            in said(whisper))
    agent_twiml = press(twilio, agent_leg, whisper, "1")
    # The message plays before the agent joins: the join (which dials the caller) comes after.
    assert [child.tag for child in agent_twiml][:1] == ["Play"]
    assert agent_twiml.find("Dial/Conference") is not None
    heard = get_audio(app, agent_twiml.find("Play").text)
    assert heard.status_code == 200 and heard.mimetype == "audio/mpeg"
    assert heard.data == twilio_standin.recordings[recording_sid]["audio"]
    assert "api.twilio.com" not in agent_twiml.find("Play").text
    assert not twilio_standin.placed(to=CALLER)

    agent_joins(twilio, agent_leg, agent_twiml)
    customer_leg = ringing(twilio_standin, CALLER)
    customer_twiml = answer(twilio, customer_leg, AnsweredBy="human")
    assert "calling back about your message" in said(customer_twiml)
    assert customer_twiml.find("Dial/Conference").text == agent_twiml.find("Dial/Conference").text
    conference_event(twilio, agent_twiml, "participant-join", customer_leg)
    assert svc.storage.get_callback(SID).status == "connected"
    conference_end(twilio, agent_twiml)
    status(twilio, customer_leg, "completed")
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_callback(SID).status == "completed"


def test_the_audio_url_plays_only_with_its_signature_and_not_after_it_expires(
        app, twilio, svc, clock, voicemail_line, agents, api, twilio_standin):
    leave_a_message(twilio, twilio_standin)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    url = press(twilio, agent_leg, answer(twilio, agent_leg), "1").find("Play").text
    assert get_audio(app, url).status_code == 200
    assert get_audio(app, url.replace("sig=", "sig=0")).status_code == 404
    assert get_audio(app, url.split("?")[0] + "?exp=99999999999&sig=" + "0" * 32).status_code == 404
    clock.advance(seconds=vm.AUDIO_URL_LIFETIME.total_seconds() + 1)
    assert get_audio(app, url).status_code == 404


def test_a_lost_status_callback_changes_nothing_and_a_repeated_one_is_harmless(
        twilio, svc, clock, voicemail_line, twilio_standin):
    record, recording_sid, _ = leave_a_message(twilio, twilio_standin)
    before = svc.storage.get_callback(SID)
    assert before.recording_status is None  # none came: the action's report is enough
    for _ in range(2):
        recording_status(twilio, record, SID, recording_sid, 40)
    after = svc.storage.get_callback(SID)
    assert after.recording_status == "completed"
    assert replace(after, recording_status=None) == before


def test_a_status_before_the_lost_action_stores_the_message_once(
        twilio, svc, clock, voicemail_line, twilio_standin):
    record = leave_queue_to_record(twilio)
    recording_sid = twilio_standin.add_recording(SID, 25)
    recording_status(twilio, record, SID, recording_sid, 25)
    cb = svc.storage.get_callback(SID)
    assert (cb.kind, cb.recording_sid, cb.recording_seconds) == ("voicemail", recording_sid, 25)
    # The action, late after all: the same message, stored once.
    assert "Your message is saved" in said(record_action(twilio, record, SID, recording_sid, 25))
    assert [c.callback_id for c in svc.storage.callbacks_of_number(CALLER)] == [SID]


def test_a_failed_recording_keeps_the_callback_without_playing_it(
        twilio, svc, clock, voicemail_line, agents, api, twilio_standin):
    record, recording_sid, _ = leave_a_message(twilio, twilio_standin)
    recording_status(twilio, record, SID, recording_sid, 40, state="failed")
    assert svc.storage.get_callback(SID).recording_status == "failed"
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    whisper = answer(twilio, agent_leg)
    assert "Press 1 to call back." in said(whisper)
    agent_twiml = press(twilio, agent_leg, whisper, "1")
    assert agent_twiml.find("Play") is None and agent_twiml.find("Dial/Conference") is not None


def test_a_stray_status_for_another_recording_changes_nothing(
        twilio, svc, clock, voicemail_line, twilio_standin):
    record, _recording_sid, _ = leave_a_message(twilio, twilio_standin)
    recording_status(twilio, record, SID, "RE" + "9" * 32, 3, state="failed")
    assert svc.storage.get_callback(SID).recording_status is None


@pytest.mark.parametrize("seconds, url", [(0, True), (5, False)])
def test_an_empty_message_stores_nothing_and_says_goodbye(twilio, svc, clock, voicemail_line, twilio_standin,
                                                          seconds, url):
    record = leave_queue_to_record(twilio)
    recording_sid = twilio_standin.add_recording(SID, seconds)
    params = call_params(SID, RecordingSid=recording_sid, RecordingDuration=str(seconds))
    if url:
        params["RecordingUrl"] = "https://api.twilio.com/x"
    bye = twiml(twilio.post_url(record.get("action"), params))
    assert "nothing was saved" in said(bye) and bye.find("Hangup") is not None
    with pytest.raises(NotFound):
        svc.storage.get_callback(SID)
    assert svc.storage.get_waiting_call(SID) is None  # the visit ended
    # The stray recording does not stay at Twilio.
    sweep_once(svc)
    assert recording_sid not in twilio_standin.recordings


def test_3_with_a_callback_already_pending_keeps_it_and_the_caller_holding(
        twilio, svc, clock, voicemail_line, twilio_standin):
    leave_a_message(twilio, twilio_standin, call_sid=SID)
    other = "CA" + "8" * 32
    offer = hold_and_offer(twilio, other, 120)
    back = caller_presses(twilio, offer, "3", other)
    assert "already have a callback requested to 4 1 5" in said(back)
    assert back.find("Leave") is None and back.find("Redirect") is not None
    assert svc.storage.get_waiting_call(other).status == "waiting"


def test_an_error_in_the_queue_still_puts_a_plain_leave_to_its_callback(twilio, svc, voicemail_line):
    # A caller who left with no mark and no callback hears the plain goodbye, as before.
    hold_and_offer(twilio, SID, 120)
    bye = twiml(twilio.post("/voice/enqueue-done", call_params(SID, QueueResult="leave"), query=WHERE))
    assert bye.find("Record") is None and "Goodbye." in said(bye)


def test_unsigned_voicemail_webhooks_are_refused(twilio, svc, voicemail_line):
    for path in ("/voice/voicemail/recorded", "/voice/voicemail/status", "/voice/voicemail/transcription"):
        response = twilio.post(path, call_params(SID, RecordingSid="RE" + "1" * 32), query=WHERE,
                               signature="bad")
        assert response.status_code == 403


# -- transcription and the portal -----------------------------------------------------------

def test_the_callback_page_plays_the_recording_and_shows_the_transcription(
        app, twilio, svc, clock, voicemail_line, twilio_standin):
    record, recording_sid, _ = leave_a_message(twilio, twilio_standin)
    response = twilio.post_url(record.get("transcribeCallback"), call_params(
        SID, RecordingSid=recording_sid, TranscriptionStatus="completed",
        TranscriptionText="Hi, it is about my order 1234, please call me."))
    assert response.status_code == 200
    assert svc.storage.get_callback(SID).transcription == "Hi, it is about my order 1234, please call me."
    client = app.test_client()
    assert client.get(f"/admin/callbacks/{SID}/recording.mp3").status_code in (302, 401)
    log_in(client)
    page = client.get(f"/admin/callbacks/{SID}").get_data(as_text=True)
    assert "please call me." in page and f'src="/admin/callbacks/{SID}/recording.mp3"' in page
    assert "twilio.com" not in page
    shown = client.get(f"/api/callbacks/{SID}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert shown.get_json()["callback"]["kind"] == "voicemail"
    assert shown.get_json()["callback"]["voicemail"]["transcription"].startswith("Hi, it is about")
    assert "twilio.com" not in shown.get_data(as_text=True)
    audio = client.get(f"/admin/callbacks/{SID}/recording.mp3")
    assert audio.status_code == 200 and audio.data == twilio_standin.recordings[recording_sid]["audio"]
    # Gone at Twilio: the page's player answers 404, not an error page.
    del twilio_standin.recordings[recording_sid]
    assert client.get(f"/admin/callbacks/{SID}/recording.mp3").status_code == 404


# -- deleting recordings ----------------------------------------------------------------------

def test_a_recording_is_deleted_at_twilio_after_the_retention_once_its_work_ended(
        twilio, svc, clock, voicemail_line, twilio_standin):
    with_voicemail(svc, voicemail_retention_days=2)
    _, recording_sid, _ = leave_a_message(twilio, twilio_standin)
    clock.advance(minutes=61)  # past the first look (RECHECK), before its expiry
    assert sweep_once(svc).recordings_deleted == 0
    assert recording_sid in twilio_standin.recordings  # its work is still open
    cb = svc.storage.get_callback(SID)
    svc.storage.commit(cb, transitions.cancel(cb, clock.now()))
    clock.advance(minutes=2 * 24 * 60 - 1)
    assert sweep_once(svc).recordings_deleted == 0 and recording_sid in twilio_standin.recordings
    clock.advance(seconds=61)
    assert sweep_once(svc).recordings_deleted == 1
    assert recording_sid not in twilio_standin.recordings
    assert svc.storage.get_callback(SID).recording_status == "deleted"
    assert sweep_once(svc).recordings_deleted == 0  # off the list
    deletes = [r for r in twilio_standin.requests if r["method"] == "DELETE"]
    assert [r["path"].rsplit("/", 1)[1] for r in deletes] == [f"{recording_sid}.json"]


def test_erasure_deletes_the_numbers_recordings(twilio, svc, clock, voicemail_line, twilio_standin):
    record = leave_queue_to_record(twilio)
    recording_sid = twilio_standin.add_recording(SID, 30, transcribed=True)
    record_action(twilio, record, SID, recording_sid, 30)
    hang_up(twilio)
    erased = forget_number(svc.storage, svc.telephony, CALLER, clock.now())
    assert erased.callbacks == 1 and recording_sid not in twilio_standin.recordings
    # The list item finds its callback gone: a second delete (404 at Twilio) settles it.
    clock.advance(minutes=120)
    sweep_once(svc)
    assert svc.storage.recordings_due(clock.now() + timedelta(days=400)) == []


def test_the_record_action_carries_the_callers_place(twilio, svc, clock, voicemail_line, twilio_standin):
    record = leave_queue_to_record(twilio, queue_time=300)
    joined = clock.now() - timedelta(seconds=300)
    assert int(query_of(record.get("action"))["joined"]) == int(joined.timestamp())


def test_hanging_up_while_recording_leaves_the_message_to_the_record_action(
        twilio, svc, clock, voicemail_line, twilio_standin):
    joined = clock.now() - timedelta(seconds=120)
    record = leave_queue_to_record(twilio)
    hang_up(twilio)  # the call's end is reported before the action that carries the message
    assert svc.storage.get_waiting_call(SID).status == "recording"
    recording_sid = twilio_standin.add_recording(SID, 12)
    record_action(twilio, record, SID, recording_sid, 12)
    cb = svc.storage.get_callback(SID)
    assert (cb.kind, cb.place_in_line, cb.recording_seconds) == ("voicemail", joined, 12)
    assert svc.storage.get_waiting_call(SID) is None


def test_the_sweep_waits_for_an_agent_hearing_a_long_message_before_calling_their_join_late(
        twilio, svc, clock, voicemail_line, agents, api, twilio_standin):
    leave_a_message(twilio, twilio_standin, seconds=100)
    api.status("alice", "available")
    agent_leg = ringing(twilio_standin, ALICE)
    agent_twiml = press(twilio, agent_leg, answer(twilio, agent_leg), "1")
    assert agent_twiml.find("Play") is not None
    # A callback's agent is in the conference within seconds; this one hears 100 s first.
    clock.advance(seconds=90)
    sweep_once(svc)
    assert svc.storage.get_callback(SID).phase == "agent-joining"
    assert agent_leg.status == "in-progress" and not twilio_standin.placed(to=CALLER)
    agent_joins(twilio, agent_leg, agent_twiml)
    assert ringing(twilio_standin, CALLER)
