"""Every REST request the app sends exists in Twilio's OpenAPI description."""
import json
import os
import re
from datetime import timedelta
from functools import lru_cache

import pytest

from callback.telephony.rest import CallGone, MaybePlaced, NumberRefused, Telephony, TelephonyError

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "twilio", "twilio_api_v2010.json")


@lru_cache(maxsize=1)
def operations():
    """(compiled path regex, method) -> allowed form parameter names."""
    if not os.path.exists(SPEC):
        pytest.skip("Twilio's OpenAPI description is not beside the repository")
    with open(SPEC) as f:
        spec = json.load(f)
    ops = {}
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", re.escape(path).replace(r"\{", "{")
                                          .replace(r"\}", "}")) + "$")
        for method, op in item.items():
            if method not in ("get", "post", "delete"):
                continue
            schema = (op.get("requestBody", {}).get("content", {})
                      .get("application/x-www-form-urlencoded", {}).get("schema", {}))
            query = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            ops[(pattern, method.upper())] = (set(schema.get("properties", {})), set(schema.get("required", [])),
                                              query)
    return ops


def assert_in_spec(request):
    for (pattern, method), (allowed, required, query) in operations().items():
        if method == request["method"] and pattern.match(request["path"]):
            sent = set(request["params"])
            assert sent <= allowed, f"{request['path']}: not in the spec: {sorted(sent - allowed)}"
            assert required <= sent, f"{request['path']}: missing {sorted(required - sent)}"
            asked = set(request.get("query") or ())
            assert asked <= query, f"{request['path']}: query not in the spec: {sorted(asked - query)}"
            return
    raise AssertionError(f"{request['method']} {request['path']} is not in Twilio's API")


def test_every_telephony_call_matches_the_spec(app, twilio_standin):
    telephony = Telephony(app.extensions["callback"].config)
    since = twilio_standin.clock.now() - timedelta(seconds=5)
    sid = telephony.place_call(to="+14155550101", from_="+15005550006",
                               url="https://x.example/voice/a", status_callback="https://x.example/s",
                               timeout=20, fallback_url="https://x.example/f")
    telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x.example/voice/c",
                         status_callback="https://x.example/s", timeout=30, machine_detection=True,
                         fallback_url="https://x.example/f")
    customer = twilio_standin.placed(to="+12125551234")[0]
    assert customer.machine_detection == "Enable"
    assert twilio_standin.requests[1]["params"]["MachineDetectionTimeout"] == ["6"]
    assert twilio_standin.requests[1]["params"]["FallbackUrl"] == ["https://x.example/f"]
    telephony.redirect_call(sid, "https://x.example/voice/notice")
    assert telephony.call_status(sid) == "queued"
    assert [c.sid for c in telephony.calls_to("+14155550101", since)] == [sid]
    telephony.hang_up(sid)
    with pytest.raises(CallGone):
        telephony.redirect_call(sid, "https://x.example/voice/notice")
    twilio_standin.fail_next(500, 20500)
    with pytest.raises(TelephonyError):
        telephony.hang_up(sid)
    assert len(twilio_standin.requests) == 8
    for request in twilio_standin.requests:
        assert_in_spec(request)


@pytest.mark.parametrize("code", [21211, 21214, 21215, 21216, 21217])
def test_a_refused_number_is_told_apart_from_a_passing_failure(app, twilio_standin, code):
    telephony = Telephony(app.extensions["callback"].config)
    twilio_standin.fail_next(400, code)
    with pytest.raises(NumberRefused) as refused:
        telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x/a",
                             status_callback="https://x/s", timeout=20, fallback_url="https://x/f")
    assert refused.value.code == code
    twilio_standin.fail_next(400, 21210)  # our caller ID, not their number
    with pytest.raises(TelephonyError) as other:
        telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x/a",
                             status_callback="https://x/s", timeout=20, fallback_url="https://x/f")
    assert not isinstance(other.value, NumberRefused)


def test_a_timed_out_create_is_maybe_placed(app, twilio_standin):
    """The request left; Twilio may have placed the call: not the same as 'not placed'."""
    config = app.extensions["callback"].config.with_overrides({"TWILIO_REST_TIMEOUT_SECONDS": 0.5})
    twilio_standin.delay_next(1.5)
    with pytest.raises(MaybePlaced):
        Telephony(config).place_call(to="+12125551234", from_="+15005550006", url="https://x/a",
                                     status_callback="https://x/s", timeout=20,
                                     fallback_url="https://x/f")
    # The stand-in goes on serving it and places the call, within this test, not the next.
    assert twilio_standin.wait_idle(timeout=30)
    assert len(twilio_standin.placed(to="+12125551234")) == 1


def test_a_whole_dispatch_journey_sends_only_spec_requests(twilio, svc, clock, twilio_standin):
    from test_dispatch import ALICE, CUSTOMER, agent_accepts, ringing, status, store_callback

    from callback.domain.records import Ivr, Queue
    from callback.domain.settings import CallbackSettings

    svc.storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",), queues=(Queue("Sales", "Main Line", 10),),
                             settings=CallbackSettings(machine_detection="sync")))
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"],
                                   now=clock.now(), create=True)
    store_callback(svc, clock)
    svc.storage.set_agent_presence("alice", "available", clock.now())
    svc.dispatcher.dispatch()
    agent_leg = ringing(twilio_standin, ALICE)
    agent_accepts(twilio, agent_leg)
    status(twilio, ringing(twilio_standin, CUSTOMER), "no-answer")
    assert len(twilio_standin.requests) >= 3
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_unreachable_twilio_is_a_telephony_error(app):
    config = app.extensions["callback"].config.with_overrides(
        {"TWILIO_API_BASE_URL": "http://127.0.0.1:9", "TWILIO_REST_TIMEOUT_SECONDS": 1})
    with pytest.raises(TelephonyError):
        Telephony(config).place_call(to="+14155550101", from_="+15005550006", url="https://x/a",
                                     status_callback="https://x/s", timeout=20,
                                     fallback_url="https://x/f")


def test_the_standin_reads_calls_and_conferences_as_twilio_does(app, twilio_standin):
    """GET of a call through its lifecycle, the calls list by To and StartTime, conferences and
    participants: read with the twilio client, every request in the spec."""
    from datetime import timedelta

    from callback.clock import FixedClock

    clock = twilio_standin.clock = FixedClock()
    telephony = Telephony(app.extensions["callback"].config)
    calls = telephony.client.api.v2010.accounts(app.extensions["callback"].config.TWILIO_ACCOUNT_SID).calls
    first = telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x.example/c",
                                 status_callback="https://x.example/s", timeout=30, fallback_url="https://x.example/f")
    clock.advance(minutes=5)
    since = clock.now()
    second = telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x.example/c",
                                  status_callback="https://x.example/s", timeout=30, fallback_url="https://x.example/f")
    telephony.place_call(to="+14155550101", from_="+15005550006", url="https://x.example/a",
                         status_callback="https://x.example/s", timeout=20, fallback_url="https://x.example/f")
    assert [c.sid for c in calls.list(to="+12125551234")] == [second, first]
    assert [c.sid for c in calls.list(to="+12125551234", start_time_after=since)] == [second]
    assert [c.sid for c in calls.list(to="+12125551234", start_time_before=since - timedelta(seconds=1))] == [first]

    for step in ("ringing", "in-progress", "completed"):
        assert twilio_standin.set_status(second, step, answered_by="human" if step == "in-progress" else None)
        fetched = calls(second).fetch()
        assert fetched.status == step
        assert fetched.answered_by == (None if step == "ringing" else "human")
    assert not twilio_standin.set_status(second, "busy"), "a final status is never left"
    assert calls(second).fetch().status == "completed"
    assert [c.sid for c in calls.list(status="completed")] == [second]

    conferences = telephony.client.api.v2010.accounts(app.extensions["callback"].config.TWILIO_ACCOUNT_SID).conferences
    room = twilio_standin.conference_joined("callback-x-1", first, end_on_exit=True)
    twilio_standin.conference_joined("callback-x-1", second)
    assert conferences(room.sid).fetch().status == "in-progress"
    assert [c.sid for c in conferences.list(friendly_name="callback-x-1", status="in-progress")] == [room.sid]
    assert sorted(p.call_sid for p in conferences(room.sid).participants.list()) == sorted([first, second])
    assert conferences(room.sid).participants(first).fetch().end_conference_on_exit is True
    assert telephony.conference_participants("callback-x-1") == {first, second}
    assert telephony.conference_participants("callback-x-2") == frozenset()
    assert twilio_standin.conference_left("callback-x-1", first)[1] is True
    assert conferences(room.sid).fetch().status == "completed"
    assert conferences(room.sid).participants.list() == []
    assert telephony.conference_participants("callback-x-1") == frozenset()
    # An agent waiting alone (not starting the conference) is in it, not yet in progress.
    alone = twilio_standin.conference_joined("callback-x-3", first, start_on_enter=False)
    assert conferences(alone.sid).fetch().status == "init"
    assert telephony.conference_participants("callback-x-3") == {first}
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_sizing_queues_sends_only_spec_requests_and_reads_pages(app, twilio_standin):
    """List (page by page: the Queues API filters nothing), create, update, unchanged: every
    request as Twilio's OpenAPI file describes it."""
    telephony = Telephony(app.extensions["callback"].config)
    for n in range(3):
        twilio_standin.queue_join(f"Other {n}", f"CA{n}")
    assert telephony.size_queue("Sales", 100).outcome == "created"
    assert telephony.size_queue("Sales", 100).outcome == "unchanged"
    assert telephony.size_queue("Other 2", 7).outcome == "updated"
    with twilio_standin.lock:
        assert {q.friendly_name: q.max_size for q in twilio_standin.queues.values()} == {
            "Other 0": 1000, "Other 1": 1000, "Other 2": 7, "Sales": 100}
    lists = [r for r in twilio_standin.requests if r["method"] == "GET"]
    assert lists and all(r["query"]["PageSize"] == ["1000"] for r in lists)
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_a_queue_found_on_a_later_page_is_updated_not_created(app, twilio_standin, monkeypatch):
    from callback.telephony import rest

    monkeypatch.setattr(rest, "QUEUE_PAGE_SIZE", 2)
    telephony = Telephony(app.extensions["callback"].config)
    for n in range(5):
        twilio_standin.queue_join(f"Q{n}", f"CA{n}")
    assert telephony.size_queue("Q4", 9).outcome == "updated"
    assert len(twilio_standin.queues) == 5
    pages = [r["query"].get("Page", ["0"])[0] for r in twilio_standin.requests if r["method"] == "GET"]
    assert pages == ["0", "1", "2"]
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_texts_send_and_erase_with_spec_requests_only(app, twilio_standin):
    """Messages.create through a Messaging Service (MessagingServiceSid, To, Body,
    StatusCallback, and no From: the service's sender pool picks it); the list and delete of
    erasure; Twilio's 21610 and refusals told apart from a passing failure."""
    from callback.telephony.messages import Messaging, OptedOut, TextRefused, maybe_sent

    messaging = Messaging(Telephony(app.extensions["callback"].config))
    service = "MG" + "0" * 32
    sid = messaging.send(service_sid=service, to="+12125551234", body="Hello",
                         status_callback="https://x.example/sms/status?text=CA1%23confirm")
    sent = twilio_standin.requests[0]
    assert sent["params"] == {"MessagingServiceSid": [service], "To": ["+12125551234"], "Body": ["Hello"],
                              "StatusCallback": ["https://x.example/sms/status?text=CA1%23confirm"]}
    assert sid.startswith("SM") and twilio_standin.texts()[0]["sid"] == sid
    twilio_standin.fail_next(400, 21610, message="Attempt to send to unsubscribed recipient")
    with pytest.raises(OptedOut):
        messaging.send(service_sid=service, to="+12125551234", body="x", status_callback="https://x/s")
    twilio_standin.fail_next(400, 21614, message="'To' number is not a valid mobile number")
    with pytest.raises(TextRefused):
        messaging.send(service_sid=service, to="+12125551234", body="x", status_callback="https://x/s")
    twilio_standin.fail_next(500, 20500)
    with pytest.raises(TelephonyError) as failed:
        messaging.send(service_sid=service, to="+12125551234", body="x", status_callback="https://x/s")
    assert maybe_sent(failed.value) and not isinstance(failed.value, (OptedOut, TextRefused))
    twilio_standin.inbound_text("+12125551234", "+15005550006", "hi")
    assert messaging.delete_messages_of("+12125551234") == (2, 0)
    assert twilio_standin.messages == {}
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_recording_requests_match_the_spec_and_the_media_url(app, twilio_standin):
    from callback.telephony.recordings import Recordings

    recordings = Recordings(Telephony(app.extensions["callback"].config))
    sid = twilio_standin.add_recording("CA" + "1" * 32, 30, transcribed=True)
    assert recordings.audio(sid) == twilio_standin.recordings[sid]["audio"]
    assert recordings.delete(sid) is True  # its transcription first, then the recording
    assert recordings.delete(sid) is False  # gone already: a repeated delete is harmless
    with pytest.raises(CallGone):
        recordings.audio(sid)
    assert recordings.delete("../Calls/CA" + "1" * 32) is False and len(twilio_standin.requests) == 7
    media = [r for r in twilio_standin.requests if r["path"].endswith(".mp3")]
    rest = [r for r in twilio_standin.requests if not r["path"].endswith(".mp3")]
    assert [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in rest] == [
        ("GET", "Recordings"), ("GET", sid), ("DELETE", "Transcriptions"), ("DELETE", "Recordings"),
        ("GET", "Recordings")]
    for request in rest:
        assert_in_spec(request)
    # The media URL is not an API operation: it is the Recording resource's URI, .mp3 for .json.
    for request in media:
        assert request["method"] == "GET"
        assert_in_spec({**request, "path": request["path"][:-len(".mp3")] + ".json"})
