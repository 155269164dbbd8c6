"""The Twilio model that `make call` and `make soak` play: its TwiML engine, phones,
conferences and chaotic network, against small recording apps and the real app over HTTP."""
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import API_TOKEN, AUTH_TOKEN, IVR_NUMBER, PUBLIC
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from callback.clock import ScaledClock, fixed_start
from callback.config import Config
from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings
from callback.telephony.rest import Telephony, TelephonyError
from callback.web.tones import ringback_wav
from devtools.standin import RestFaults
from devtools.twilio_model import (
    AGENT_ACCEPTED,
    MOVED,
    PLAY_LOOP_ZERO,
    Behaviour,
    Chaos,
    HangUpPlan,
    Keys,
    LocalBackend,
    Network,
    Pacing,
    Phone,
    Timeline,
    Webhooks,
)

FAST = 100_000  # simulated seconds per real second: waits take no time


class Served:
    """A WSGI app on a free loopback port, in a thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def recording_app(documents):
    """A Flask app answering TwiML by path, checking Twilio's signature, keeping every request."""
    app = Flask("recording")
    seen = []
    validator = RequestValidator(AUTH_TOKEN)

    @app.post("/<path:path>")
    def answer(path):
        url = PUBLIC + "/" + path + (("?" + request.query_string.decode()) if request.query_string else "")
        valid = validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", ""))
        seen.append({"path": "/" + path, "form": request.form.to_dict(), "valid": valid})
        body = documents.get("/" + path, "<Response/>")
        return Response(body if valid else "forbidden", status=200 if valid else 403, mimetype="text/xml")

    return app, seen


@pytest.fixture
def telephony(standin_server):
    """The app's REST client pointed at the stand-in."""

    def build(**overrides):
        config = Config(TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                        TWILIO_API_BASE_URL=standin_server.url)
        return Telephony(config.with_overrides(overrides) if overrides else config)

    return build


@pytest.fixture
def model(twilio_standin):
    """A factory: a Network over the stand-in, sending webhooks to a given app."""
    started = []

    def build(app, chaos=None, seed=1, speed=FAST, clock=None, stepped=False, **options):
        served = Served(app)
        network = Network(LocalBackend(twilio_standin), Webhooks(AUTH_TOKEN, PUBLIC, [served.url]),
                          Timeline(speed, clock, stepped), chaos=chaos, seed=seed, **options).start()
        started.append((served, network))
        return network

    yield build
    for served, network in started:
        network.stop()
        served.stop()


def wait_until(condition, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_redirect_loop_is_a_loop_not_a_recursion_and_patience_ends_it(model):
    app, seen = recording_app({"/loop": "<Response><Redirect>/loop</Redirect></Response>"})
    network = model(app)
    run = network.dial_in("+12125550100", IVR_NUMBER, Keys([]), patience=1500, incoming_path="/loop")
    # Each document stands for a second: patience (not the interpreter's stack) ended the call,
    # well past the ~1000 frames a recursive interpreter dies at.
    assert run.ending == "hung-up-by-caller"
    assert 1400 <= run.documents <= 1501
    assert all(r["valid"] for r in seen)


def test_patience_holds_while_queued_and_the_enqueue_action_hears_the_hangup(model):
    hold = "<Response><Say>Hold on.</Say><Play>https://x/m.mp3</Play></Response>"
    app, seen = recording_app({
        "/in": '<Response><Enqueue waitUrl="/wait" action="/done">Sales</Enqueue></Response>',
        "/wait": hold})
    network = model(app)
    run = network.dial_in("+12125550101", IVR_NUMBER, Keys([]), patience=100, incoming_path="/in")
    assert run.ending == "hung-up-by-caller"
    waits = [r for r in seen if r["path"] == "/wait"]
    assert [int(r["form"]["QueueTime"]) for r in waits][:3] == [0, 17, 34]
    done = [r for r in seen if r["path"] == "/done"]
    assert done and done[-1]["form"]["QueueResult"] == "hangup"


BUSY_STRINGS = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


@pytest.mark.parametrize("play, tracks, queue_times", [
    # Twilio's own track, from the model's table; a track given its length; one it has none for.
    (f"<Play>{BUSY_STRINGS}</Play>", {}, [0, 181, 362]),
    ("<Play>https://x/m.mp3</Play>", {"https://x/m.mp3": 42}, [0, 43, 86]),
    ('<Play loop="2">https://x/m.mp3</Play>', {}, [0, 31, 62]),
])
def test_a_play_lasts_its_tracks_real_length_times_its_loop(model, play, tracks, queue_times):
    app, seen = recording_app({"/in": '<Response><Enqueue waitUrl="/wait">Sales</Enqueue></Response>',
                               "/wait": f"<Response>{play}</Response>"})
    network = model(app, tracks=tracks)
    network.dial_in("+12125550102", IVR_NUMBER, Keys([]), patience=queue_times[-1] + 10, incoming_path="/in")
    assert [int(r["form"]["QueueTime"]) for r in seen if r["path"] == "/wait"][:3] == queue_times
    assert network.stats["tracks of unknown length"] == (0 if tracks or "twilio" in play else 1)


def test_play_loop_zero_repeats_a_thousand_times():
    network = Network(None, None, Timeline(FAST), tracks={"https://x/ring.wav": 6})
    forever = ET.fromstring('<Play loop="0">https://x/ring.wav</Play>')
    assert network.play_seconds(forever) == 6 * PLAY_LOOP_ZERO
    assert network.play_seconds(ET.fromstring("<Play>https://x/ring.wav</Play>")) == 6


def test_queue_parameters_come_only_with_the_wait_url_request_not_through_a_redirect(model):
    app, seen = recording_app({
        "/in": '<Response><Enqueue waitUrl="/wait">Sales</Enqueue></Response>',
        "/wait": '<Response><Gather numDigits="1" action="/key"><Say>Press 1.</Say></Gather>'
                 "<Redirect>/loop</Redirect></Response>",
        "/key": "<Response><Redirect>/loop</Redirect></Response>",
        "/loop": "<Response><Pause length=\"20\"/></Response>"})
    network = model(app)
    network.dial_in("+12125550103", IVR_NUMBER, Keys(["", "1"]), patience=100, incoming_path="/in")
    queue_params = {"QueueSid", "QueueTime", "QueuePosition", "CurrentQueueSize", "AvgQueueTime"}
    forms = {path: [r["form"] for r in seen if r["path"] == path] for path in ("/wait", "/key", "/loop")}
    assert all(queue_params <= set(form) for form in forms["/wait"]) and len(forms["/wait"]) >= 2
    assert forms["/key"] and forms["/loop"]
    assert all(not queue_params & set(form) for form in forms["/key"] + forms["/loop"])


def test_status_callbacks_are_lost_or_duplicated_as_the_chaos_says(model, twilio_standin, telephony):
    app, seen = recording_app({"/answer": "<Response><Say>Hi</Say><Hangup/></Response>"})
    lossy = model(app, chaos=Chaos(lose=1.0))
    lossy.add_phone(Phone("+14155550111", "agent", [Behaviour("human", ring_seconds=1)]))
    telephony = telephony()
    sid = telephony.place_call(to="+14155550111", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                               status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[sid].status == "completed")
    time.sleep(0.3)
    assert not [r for r in seen if r["path"] == "/status"]
    lossy.stop()

    twice = model(app, chaos=Chaos(duplicate=1.0))
    twice.add_phone(Phone("+14155550112", "agent", [Behaviour("human", ring_seconds=1)]))
    sid = telephony.place_call(to="+14155550112", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                               status_callback=PUBLIC + "/status", timeout=20)
    # The app asks for the initiated, ringing, answered and completed events: each twice.
    assert wait_until(lambda: len([r for r in seen if r["path"] == "/status"]) == 8)
    statuses = sorted((r["form"]["CallSid"], r["form"]["CallStatus"]) for r in seen if r["path"] == "/status")
    assert statuses == sorted([(sid, "initiated"), (sid, "ringing"), (sid, "in-progress"), (sid, "completed")] * 2)
    assert all(r["valid"] for r in seen)


def test_voicemail_answers_with_machine_detection_and_presses_nothing(model, twilio_standin, telephony):
    gather = ('<Response><Gather numDigits="1" action="/pressed" actionOnEmptyResult="true">'
              '<Say>Press 1 to accept.</Say></Gather></Response>')
    app, seen = recording_app({"/answer": gather, "/pressed": "<Response><Hangup/></Response>"})
    network = model(app)
    network.add_phone(Phone("+12125550120", "customer", [Behaviour("voicemail", keys="", ring_seconds=1)]))
    network.add_phone(Phone("+14155550121", "agent", [Behaviour("human", keys="1", ring_seconds=1)]))
    telephony = telephony()
    telephony.place_call(to="+12125550120", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                         status_callback=PUBLIC + "/status", timeout=30, machine_detection=True)
    telephony.place_call(to="+14155550121", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                         status_callback=PUBLIC + "/status", timeout=30)
    assert wait_until(lambda: len([r for r in seen if r["path"] == "/pressed"]) == 2)
    answers = {r["form"]["To"]: r["form"] for r in seen if r["path"] == "/answer"}
    assert answers["+12125550120"]["AnsweredBy"] == "machine_start"
    assert "AnsweredBy" not in answers["+14155550121"]
    pressed = {r["form"]["To"]: r["form"]["Digits"] for r in seen if r["path"] == "/pressed"}
    assert pressed == {"+12125550120": "", "+14155550121": "1"}


def test_conference_events_name_the_conference_and_each_participant(model, twilio_standin, telephony):
    room = ('<Response><Dial><Conference statusCallback="/conf" statusCallbackEvent="start end join leave" '
            'endConferenceOnExit="true">room-1</Conference></Dial></Response>')
    plain = "<Response><Dial><Conference>room-1</Conference></Dial></Response>"
    app, seen = recording_app({"/agent": room, "/customer": plain})
    # Deliveries run on several workers, so events due at the same instant may arrive in
    # either order (as Twilio's may). At 20x, events due at different instants are 50 ms
    # or more apart, which is what the order assertions below rely on.
    network = model(app, speed=20)
    network.add_phone(Phone("+14155550131", "agent", [Behaviour("human", ring_seconds=1, talk_seconds=30)]))
    network.add_phone(Phone("+12125550132", "customer", [Behaviour("human", ring_seconds=5, talk_seconds=300)]))
    telephony = telephony()
    agent = telephony.place_call(to="+14155550131", from_=IVR_NUMBER, url=PUBLIC + "/agent",
                                 status_callback=PUBLIC + "/status", timeout=30)
    customer = telephony.place_call(to="+12125550132", from_=IVR_NUMBER, url=PUBLIC + "/customer",
                                    status_callback=PUBLIC + "/status", timeout=30)
    assert wait_until(lambda: any(r["form"].get("StatusCallbackEvent") == "conference-end" for r in seen))
    events = [(r["form"]["StatusCallbackEvent"], r["form"].get("CallSid")) for r in seen if r["path"] == "/conf"]
    assert len(events) == 6, events
    # The agent answers first and joins alone; the conference starts when the customer joins.
    assert events[0] == ("participant-join", agent)
    assert set(events[1:3]) == {("participant-join", customer), ("conference-start", None)}
    # The agent (end-on-exit) hangs up after talking: they leave, the customer is removed,
    # the conference ends — three events of one instant.
    assert set(events[3:]) == {("participant-leave", agent), ("participant-leave", customer), ("conference-end", None)}
    forms = [r["form"] for r in seen if r["path"] == "/conf"]
    assert {f["FriendlyName"] for f in forms} == {"room-1"}
    assert len({f["ConferenceSid"] for f in forms}) == 1 and forms[0]["ConferenceSid"].startswith("CF")
    assert network.talks["+12125550132"] >= 29
    assert wait_until(lambda: twilio_standin.calls[customer].status == "completed")


def test_a_refused_number_never_rings_and_a_timed_out_create_still_rings(model, twilio_standin, telephony):
    app, _ = recording_app({"/answer": "<Response><Pause length=\"5\"/></Response>"})
    network = model(app)
    twilio_standin.refuse("+12125550140", 21215)
    telephony = telephony(TWILIO_REST_TIMEOUT_SECONDS=1)
    with pytest.raises(TelephonyError) as refused:
        telephony.place_call(to="+12125550140", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                             status_callback=PUBLIC + "/status", timeout=30)
    assert (refused.value.status, refused.value.code) == (400, 21215)
    assert not twilio_standin.placed(to="+12125550140")
    twilio_standin.time_out_after_placing(2.5)
    with pytest.raises(TelephonyError):
        telephony.place_call(to="+12125550141", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                             status_callback=PUBLIC + "/status", timeout=30)
    assert len(twilio_standin.placed(to="+12125550141")) == 1
    assert any(r.number == "+12125550141" for r in network.records)


JOURNEY_SPEED = 60  # the offer (60 s of holding) comes after a second


@pytest.fixture
def clock():
    """The app's clock runs with the model's time here: the hold loop times the offer by it.
    It starts at the fixed clock's moment (a Monday, 10:00 in New York), not the real time: a
    callback to a New York number must not wait for the customer's hours when CI runs at night."""
    clock = ScaledClock(JOURNEY_SPEED)
    clock.jump_to(fixed_start())
    return clock


def test_the_caller_journey_through_the_real_app_asks_for_a_callback(app, main_line, model, clock):
    """The engine drives the real IVR over HTTP: menu, hold, offer, number, leave."""
    from devtools.twilio_model import answering_caller

    network = model(app, speed=JOURNEY_SPEED, clock=clock)
    run = network.dial_in("+12125550150", IVR_NUMBER, Keys(responder=answering_caller("2125550150")),
                          patience=600)
    assert run.left_with == "leave" and run.ending in ("hung-up-by-app", "twiml-ended")
    callback = app.extensions["callback"].storage.get_callback(run.call.sid)
    assert callback.number == "+12125550150"


def conference_wait_app(wait_url, wait_method):
    """An agent's call into a conference that nobody else joins, waiting on `wait_url`: a
    bare WAV of one ring cycle (/ring.wav) or a TwiML document looping it (/ring)."""
    app = Flask("conference-wait")
    validator = RequestValidator(AUTH_TOKEN)
    seen = []
    room = (f'<Response><Dial><Conference startConferenceOnEnter="false" waitUrl="{wait_url}" '
            f'waitMethod="{wait_method}">room-2</Conference></Dial></Response>')

    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path):
        url = PUBLIC + "/" + path + (("?" + request.query_string.decode()) if request.query_string else "")
        signed = validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", ""))
        seen.append((request.method, "/" + path, signed))
        if path == "ring.wav":
            return Response(ringback_wav(), mimetype="audio/wav")
        if path == "ring":
            looped = f'<Response><Play loop="0">{PUBLIC}/ring.wav</Play></Response>'
            return Response(looped, mimetype="text/xml")
        return Response(room, mimetype="text/xml")

    return app, seen


@pytest.mark.parametrize("wait_url, method, silence", [("/ring.wav", "GET", 1), ("/ring", "POST", 0)],
                         ids=["bare-audio", "looped-play"])
def test_a_bare_audio_file_at_a_conference_wait_url_plays_once_and_a_looped_play_goes_on(
        model, telephony, wait_url, method, silence):
    """Twilio's documents say no bare audio file loops at a conference's waitUrl, and
    <Play loop="0"> repeats up to 1,000 times: a person who hangs up after 10 s of silence
    does so 6 s of ringing (one cycle) into the first, and never in the second."""
    app, seen = conference_wait_app(wait_url, method)
    network = model(app)
    network.add_phone(Phone("+14155550231", "agent", [Behaviour("human", ring_seconds=1, alone_seconds=60,
                                                                silence_seconds=10)]))
    telephony().place_call(to="+14155550231", from_=IVR_NUMBER, url=PUBLIC + "/agent",
                           status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: network.records and network.records[0].ended is not None)
    assert network.stats["people hanging up on silence in a conference"] == silence
    # The waitUrl is fetched as the conference says (signed, its parameters in the query
    # string for a GET); the audio a <Play> names is fetched unsigned, as Twilio does.
    assert (method, wait_url, True) in seen
    assert silence or ("GET", "/ring.wav", False) in seen


def test_an_agent_keeps_hearing_the_ring_while_the_customers_phone_rings_30_s(app, svc, model, clock):
    """The real app rings Alice for a callback; she accepts and waits in the conference
    while the customer's phone rings 30 s. She hangs up after 10 s of silence, so only a
    ring that keeps ringing keeps her there until the customer answers."""
    from test_dispatch import ALICE, CUSTOMER, store_callback

    svc.storage.save_ivr(Ivr("Main Line", numbers=(IVR_NUMBER,), greeting="Hello.",
                             queues=(Queue("Sales", "Main Line", 10, True),),
                             settings=CallbackSettings(transfer_timeout_seconds=45)))
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=clock.now(),
                                   create=True)
    cb_id = store_callback(svc, clock)
    network = model(app, speed=JOURNEY_SPEED, clock=clock)
    network.add_phone(Phone(ALICE, "agent", [Behaviour("human", keys="1", ring_seconds=2, talk_seconds=20,
                                                       silence_seconds=10)]))
    network.add_phone(Phone(CUSTOMER, "customer", [Behaviour("human", keys="", ring_seconds=30,
                                                             talk_seconds=20)]))
    answered = app.test_client().put("/api/agents/alice/status", json={"status": "available"},
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answered.get_json()["agent"]["status"] == "reserved"
    silence = "people hanging up on silence in a conference"
    assert wait_until(lambda: svc.storage.get_callback(cb_id).status == "completed" or network.stats[silence],
                      seconds=30)
    assert network.stats[silence] == 0, "Alice heard silence while the customer's phone rang"
    assert svc.storage.get_callback(cb_id).status == "completed" and network.talks[CUSTOMER] >= 15


def test_an_answer_that_is_not_twiml_is_an_application_error_and_the_fallback_url_runs(
        model, twilio_standin, standin_server):
    import requests

    app, seen = recording_app({"/answer": "this is not TwiML", "/fallback": "<Response><Hangup/></Response>"})
    network = model(app)
    network.add_phone(Phone("+14155550161", "agent", [Behaviour("human", ring_seconds=1)]))
    account = "AC" + "1" * 32
    created = requests.post(f"{standin_server.url}/2010-04-01/Accounts/{account}/Calls.json",
                            auth=(account, AUTH_TOKEN), timeout=5,
                            data={"To": "+14155550161", "From": IVR_NUMBER, "Url": PUBLIC + "/answer",
                                  "FallbackUrl": PUBLIC + "/fallback"})
    assert created.status_code == 201
    assert wait_until(lambda: any(r["path"] == "/fallback" for r in seen))
    fallback = next(r for r in seen if r["path"] == "/fallback")
    assert fallback["form"]["ErrorCode"] == "11200" and fallback["form"]["ErrorUrl"] == PUBLIC + "/answer"
    assert network.webhooks.errors and network.webhooks.errors[0][0] == PUBLIC + "/answer"


def test_a_call_the_app_hangs_up_is_over_in_the_call_log_at_once(model, twilio_standin, telephony):
    """So a call placed right after it never counts as a second live call to that phone."""
    from bench.soak_checks import overlapping_calls

    app, _ = recording_app({"/answer": "<Response><Pause length=\"600\"/></Response>"})
    network = model(app)
    network.timeline.speed = 10  # the first call must still be live when the app hangs it up
    network.add_phone(Phone("+14155550171", "agent", [Behaviour("human", ring_seconds=1)]))
    finish = network._finish

    def slow_finish(*args):
        time.sleep(0.5)  # the call's thread is busy elsewhere when the hang-up lands
        finish(*args)

    network._finish = slow_finish
    telephony = telephony()
    first = telephony.place_call(to="+14155550171", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                                 status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[first].status == "in-progress")
    telephony.hang_up(first)
    # Over when the REST API answered, not when the call's thread gets round to it.
    assert next(r for r in network.records if r.sid == first).ended is not None
    second = telephony.place_call(to="+14155550171", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                                  status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[second].status == "in-progress")
    assert overlapping_calls(network.records, ("agent",)) == []


def create_call(standin_server, to, **params):
    """A create request as any client sends it (events and all), straight to the stand-in."""
    import requests

    account = "AC" + "1" * 32
    return requests.post(f"{standin_server.url}/2010-04-01/Accounts/{account}/Calls.json",
                         auth=(account, AUTH_TOKEN), timeout=10,
                         data={"To": to, "From": IVR_NUMBER, "Url": PUBLIC + "/answer", **params})


def statuses(seen, sid):
    return [(r["form"]["CallStatus"], int(r["form"]["SequenceNumber"])) for r in seen
            if r["path"] == "/status" and r["form"]["CallSid"] == sid]


def test_every_progress_event_the_create_asks_for_arrives_with_its_sequence_number(model, standin_server):
    app, seen = recording_app({"/answer": "<Response><Say>Hi</Say><Hangup/></Response>"})
    network = model(app)
    network.add_phone(Phone("+14155550181", "agent", [Behaviour("human", ring_seconds=1)]))
    network.add_phone(Phone("+14155550182", "agent", [Behaviour("busy")]))
    every = ["initiated", "ringing", "answered", "completed"]
    answered = create_call(standin_server, "+14155550181", StatusCallback=PUBLIC + "/status",
                           StatusCallbackEvent=every).json()["sid"]
    busy = create_call(standin_server, "+14155550182", StatusCallback=PUBLIC + "/status",
                       StatusCallbackEvent=every).json()["sid"]
    assert wait_until(lambda: len(statuses(seen, answered)) == 4 and len(statuses(seen, busy)) == 2)
    assert statuses(seen, answered) == [("initiated", 0), ("ringing", 1), ("in-progress", 2),
                                        ("completed", 3)]
    # A busy phone never rings: initiated, then its final status.
    assert statuses(seen, busy) == [("initiated", 0), ("busy", 1)]
    # Without StatusCallbackEvent Twilio sends only the final status.
    plain = create_call(standin_server, "+14155550181", StatusCallback=PUBLIC + "/status").json()["sid"]
    assert wait_until(lambda: statuses(seen, plain) == [("completed", 0)])


def test_the_account_lets_calls_out_of_its_queue_at_its_pace_with_its_other_traffic(model):
    app, _ = recording_app({})
    network = model(app, pacing=Pacing(cps=2, burst_every=100, burst_size=(10, 10)))
    first_burst = network._next_burst[0]
    assert 0 <= first_burst < 100
    # Three calls created at once leave half a second apart.
    assert [network._turn(0) for _ in range(3)] == [0, 0.5, 1.0]
    # The account's other calls take ten turns (5 s) from their burst on.
    assert network._turn(first_burst + 0.1) == first_burst + 5


def test_a_call_hung_up_while_queued_is_canceled_and_never_initiated(model, standin_server, twilio_standin,
                                                                     telephony):
    app, seen = recording_app({"/answer": "<Response><Pause length=\"5\"/></Response>"})
    network = model(app, speed=100, pacing=Pacing(cps=0.01))
    for number in ("+14155550191", "+14155550192"):
        network.add_phone(Phone(number, "agent", [Behaviour("human", ring_seconds=1)]))
    every = ["initiated", "ringing", "answered", "completed"]
    first = create_call(standin_server, "+14155550191", StatusCallback=PUBLIC + "/status",
                        StatusCallbackEvent=every).json()["sid"]
    queued = create_call(standin_server, "+14155550192", StatusCallback=PUBLIC + "/status",
                         StatusCallbackEvent=every).json()["sid"]
    # The second waits 100 simulated seconds (one real second) for its turn.
    assert twilio_standin.calls[queued].status == "queued"
    telephony().hang_up(queued)
    assert wait_until(lambda: statuses(seen, queued) == [("canceled", 0)])
    assert next(r for r in network.records if r.sid == queued).outcome == "canceled"
    assert wait_until(lambda: statuses(seen, first)[:1] == [("initiated", 0)])


def test_a_phone_already_on_a_call_answers_a_second_one_busy(model, twilio_standin, telephony):
    app, _ = recording_app({"/answer": "<Response><Pause length=\"600\"/></Response>"})
    network = model(app, speed=100, one_call_per_phone=True)
    network.add_phone(Phone("+14155550201", "agent", [Behaviour("human", ring_seconds=1)]))
    telephony = telephony()
    first = telephony.place_call(to="+14155550201", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                                 status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[first].status == "in-progress")
    second = telephony.place_call(to="+14155550201", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                                  status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[second].status == "busy")
    assert twilio_standin.calls[first].status == "in-progress"
    assert network.stats["calls busy: the phone was on another call"] == 1


HOLD = {"/in": '<Response><Enqueue waitUrl="/wait" action="/done">Support</Enqueue></Response>',
        "/wait": "<Response><Play>https://x/m.mp3</Play></Response>",
        "/agent": '<Response><Gather numDigits="1" action="/accept"><Say>A caller.</Say></Gather></Response>',
        "/accept": '<Response><Pause length="30"/></Response>',
        "/join": '<Response><Dial><Conference>call-room</Conference></Dial></Response>'}


def holding_caller(network, number, plan):
    """A caller holding in a thread; returns (their CallRun holder, their CallSid)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("run", network.dial_in(
        number, IVR_NUMBER, Keys([]), patience=600, incoming_path="/in", hang_up=plan)), daemon=True)
    thread.start()
    assert wait_until(lambda: any(c.record.direction == "inbound" for c in network.live.values()))
    sid = next(sid for sid, c in network.live.items() if c.record.direction == "inbound")
    return thread, result, sid


def test_a_holding_caller_hangs_up_once_the_agent_offered_them_presses_1(model, telephony):
    app, seen = recording_app(HOLD)
    network = model(app, speed=20)
    network.add_phone(Phone("+14155550211", "agent", [Behaviour("human", keys="1", ring_seconds=1,
                                                                think_seconds=2)]))
    # Five seconds after the key: the agent's /accept (1.5 s after it) has been asked for.
    thread, result, sid = holding_caller(network, "+12125550211", HangUpPlan(AGENT_ACCEPTED, 5))
    # The agent's call names the caller (as an offer of them does); the caller hears nothing of it.
    telephony().place_call(to="+14155550211", from_=IVR_NUMBER, url=PUBLIC + f"/agent?kind=call&key={sid}",
                           status_callback=PUBLIC + "/status", timeout=20)
    thread.join(20)
    assert result["run"].ending == "hung-up-by-caller" and result["run"].call.plan_fired
    accepted = next(i for i, r in enumerate(seen) if r["path"] == "/accept")
    done = next(i for i, r in enumerate(seen) if r["path"] == "/done")
    assert done > accepted and seen[done]["form"]["QueueResult"] == "hangup"
    assert network.stats[f"callers hanging up: {AGENT_ACCEPTED}"] == 1


def test_a_holding_caller_hangs_up_as_the_app_moves_them(model, telephony):
    app, seen = recording_app(HOLD)
    network = model(app, speed=100)
    thread, result, sid = holding_caller(network, "+12125550212", HangUpPlan(MOVED))
    assert wait_until(lambda: any(r["path"] == "/wait" for r in seen))
    telephony().redirect_call(sid, PUBLIC + "/join")
    thread.join(20)
    assert result["run"].ending == "hung-up-by-caller" and result["run"].redirected_out
    assert [r["form"]["QueueResult"] for r in seen if r["path"] == "/done"] == ["redirected"]
    # The new TwiML was fetched but never ran: nobody joined the conference.
    assert any(r["path"] == "/join" for r in seen) and not network.rooms


def test_rest_faults_are_decided_per_request_by_the_seed():
    faults = RestFaults(seed=4, update_errors=0.3, update_timeouts=0.3, create_errors=0.1,
                        create_timeouts=0.1, slow_creates=0.3)
    updates = [faults.for_update(f"CA{i}", 1) for i in range(1000)]
    assert updates == [RestFaults(**{**vars(faults)}).for_update(f"CA{i}", 1) for i in range(1000)]
    kinds = [u[0] if u else None for u in updates]
    assert 250 < kinds.count("error") < 350 and 250 < kinds.count("timeout") < 350
    assert {u[1] for u in updates if u and u[0] == "error"} == {429, 500, 503}
    assert {u[1] for u in updates if u and u[0] == "timeout"} == {True, False}
    creates = [faults.for_create("+1", n) for n in range(1000)]
    assert {c[1] for c in creates if c and c[0] == "error"} == {429, 503}
    assert all(c[1] < faults.client_timeout for c in creates if c and c[0] == "late")
    assert all(c[1] > faults.client_timeout for c in creates if c and c[0] == "lost")


def test_a_failed_update_changes_nothing_and_a_timed_out_one_may_have_been_applied(model, twilio_standin,
                                                                                     telephony):
    app, _ = recording_app({"/answer": "<Response><Pause length=\"600\"/></Response>"})
    network = model(app, speed=100)
    network.add_phone(Phone("+14155550221", "agent", [Behaviour("human", ring_seconds=1)]))
    client = telephony(TWILIO_REST_TIMEOUT_SECONDS=0.5)
    sid = client.place_call(to="+14155550221", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                            status_callback=PUBLIC + "/status", timeout=20)
    assert wait_until(lambda: twilio_standin.calls[sid].status == "in-progress")
    twilio_standin.faults = RestFaults(update_errors=1.0, client_timeout=0.5)
    with pytest.raises(TelephonyError) as failed:
        client.redirect_call(sid, PUBLIC + "/elsewhere")
    assert failed.value.status in (429, 500, 503) and twilio_standin.calls[sid].redirects == []
    # A seed whose first update of this call times out after Twilio applied it.
    seed = next(n for n in range(100) if RestFaults(seed=n, update_timeouts=1.0).for_update(sid, 2)[1])
    twilio_standin.faults = RestFaults(seed=seed, update_timeouts=1.0, client_timeout=0.5)
    with pytest.raises(TelephonyError):
        client.hang_up(sid)
    assert twilio_standin.calls[sid].status == "completed"
    assert wait_until(lambda: next(r for r in network.records if r.sid == sid).ended is not None)
    assert twilio_standin.fault_counts == {"update answered " + str(failed.value.status): 1,
                                           "update timed out, applied": 1}


# -- voices: a <Say> Twilio's table does not list fails the call ----------------------------

@pytest.mark.parametrize("attributes, fails", [
    ('voice="Polly.Lupe" language="es-US"', False),
    ('voice="man" language="de-DE"', False),
    ("", False),
    ('language="fr-CA"', False),
    ('voice="Polly.Lupe" language="en-US"', True),
    ('voice="woman" language="pt-BR"', True),
    ('voice="alice"', True),
    ('language="klingon"', True),
])
def test_a_say_twilios_table_does_not_list_is_an_application_error(model, attributes, fails):
    app, seen = recording_app({"/in": f"<Response><Say {attributes}>Hola.</Say><Redirect>/next</Redirect>"
                                      "</Response>"})
    network = model(app)
    run = network.dial_in("+12125550170", IVR_NUMBER, Keys([]), patience=60, incoming_path="/in")
    assert any(r["path"] == "/next" for r in seen) is not fails
    assert (run.ending == "hung-up-by-app") is fails
    assert bool(network.stats["says refused: voice and language not in Twilio's table"]) is fails


def test_an_ivr_whose_stored_voice_twilio_dropped_still_speaks_every_prompt(app, main_line, model, clock):
    """The IVR's settings hold a pair outside Twilio's table (written before the table was
    pinned): the app speaks the nearest pair, so the journey ends with a stored callback,
    never an application error."""
    from callback.domain.settings import CallbackSettings
    from devtools.twilio_model import answering_caller

    app.extensions["callback"].storage.save_ivr(main_line.evolve(
        settings=CallbackSettings(voice="Polly.Amy", language="en-US")))
    network = model(app, speed=JOURNEY_SPEED, clock=clock)
    run = network.dial_in("+12125550171", IVR_NUMBER, Keys(responder=answering_caller("2125550171")),
                          patience=600)
    assert not network.stats["says refused: voice and language not in Twilio's table"]
    assert run.left_with == "leave"
    assert app.extensions["callback"].storage.get_callback(run.call.sid).number == "+12125550171"


# -- queues: a size, enforced -------------------------------------------------------------------

def test_a_full_queue_turns_the_next_caller_away_to_the_enqueue_action(model, twilio_standin, telephony):
    assert telephony().size_queue("Tiny", 1).outcome == "created"
    hold = "<Response><Play>https://x/m.mp3</Play><Redirect>/wait</Redirect></Response>"
    app, seen = recording_app({
        "/in": '<Response><Enqueue waitUrl="/wait" action="/done">Tiny</Enqueue></Response>',
        "/wait": hold, "/done": "<Response><Say>Sorry, we are full.</Say><Hangup/></Response>"})
    network = model(app, speed=100)
    first = threading.Thread(target=network.dial_in, args=("+12125550180", IVR_NUMBER, Keys([]), 3000),
                             kwargs={"incoming_path": "/in"}, daemon=True)
    first.start()
    assert wait_until(lambda: any(r["path"] == "/wait" for r in seen))
    wait = next(r for r in seen if r["path"] == "/wait")["form"]
    assert (wait["QueuePosition"], wait["CurrentQueueSize"], wait["MaxQueueSize"]) == ("1", "1", "1")
    assert wait["QueueSid"].startswith("QU")
    second = network.dial_in("+12125550181", IVR_NUMBER, Keys([]), patience=60, incoming_path="/in")
    turned_away = [r for r in seen if r["path"] == "/done" and r["form"]["From"] == "+12125550181"]
    assert [r["form"]["QueueResult"] for r in turned_away] == ["queue-full"]
    assert second.ending == "hung-up-by-app" and second.queue is None
    assert network.stats["callers turned away: queue full"] == 1
    network.stop()
    first.join(10)
    assert twilio_standin.queue_place("Tiny", "any")[0].members == []


def test_enqueue_creates_an_unknown_queue_with_twilios_default_size(model, twilio_standin):
    app, seen = recording_app({"/in": '<Response><Enqueue waitUrl="/wait">Fresh</Enqueue></Response>',
                               "/wait": "<Response><Hangup/></Response>"})
    network = model(app)
    network.dial_in("+12125550182", IVR_NUMBER, Keys([]), patience=60, incoming_path="/in")
    wait = next(r for r in seen if r["path"] == "/wait")["form"]
    assert wait["MaxQueueSize"] == "1000"
    assert twilio_standin.queue_place("Fresh", "x")[0].members == []


def test_async_detection_runs_inline_twiml_at_once_and_posts_the_verdict_later(model, twilio_standin,
                                                                               telephony):
    app, seen = recording_app({"/answer": "<Response><Say>Hello there.</Say></Response>"})
    network = model(app)
    # Numbers no other test calls: the stand-in answers busy for a number a call is still
    # live to, and tests run in any order.
    phones = (("+12125550750", "human"), ("+12125550751", "voicemail"), ("+12125550752", "human"))
    for number, answer in phones:
        network.add_phone(Phone(number, "customer", [Behaviour(answer, keys="", ring_seconds=1)]))
    telephony = telephony()
    # Long enough that each call is still up when its verdict comes, on a loaded machine too
    # (the model sends no verdict for a call that has ended).
    inline = "<Response><Say>Hello, this is Acme returning your call.</Say><Pause length=\"40\"/></Response>"
    for number in ("+12125550750", "+12125550751"):
        telephony.place_call(to=number, from_=IVR_NUMBER, twiml=inline, timeout=30,
                             status_callback=PUBLIC + "/status", machine_detection="async",
                             amd_callback=PUBLIC + "/amd")
    telephony.place_call(to="+12125550752", from_=IVR_NUMBER, url=PUBLIC + "/answer",
                         status_callback=PUBLIC + "/status", timeout=30, machine_detection=True)
    assert wait_until(lambda: len([r for r in seen if r["path"] == "/amd"]) == 2)
    assert wait_until(lambda: len(network.silences) == 2)
    verdicts = {r["form"]["To"]: r["form"] for r in seen if r["path"] == "/amd"}
    assert {to: f["AnsweredBy"] for to, f in verdicts.items()} == {"+12125550750": "human",
                                                                    "+12125550751": "machine_start"}
    assert all(2000 <= int(f["MachineDetectionDuration"]) <= 4000 for f in verdicts.values())
    # Inline TwiML needs no webhook: only the synchronous call fetched its Url, after its
    # detection's silence (3 s for a person) and the fetch (1 s).
    assert [r["form"]["To"] for r in seen if r["path"] == "/answer"] == ["+12125550752"]
    assert sorted(round(s, 1) for s in network.silences) == [0.0, 4.0]


def test_an_agent_warned_of_a_machine_leaves_with_star_and_ends_the_conference(model, twilio_standin,
                                                                              telephony):
    agent_doc = ('<Response><Dial hangupOnStar="true"><Conference statusCallback="/conf" '
                 'statusCallbackEvent="start end join leave" endConferenceOnExit="true">room-9</Conference>'
                 '</Dial></Response>')
    customer_doc = ('<Response><Dial><Conference endConferenceOnExit="true">room-9</Conference></Dial>'
                    '</Response>')
    notice = "<Response><Say>A machine. Press star.</Say></Response>"
    app, seen = recording_app({"/agent": agent_doc, "/notice": notice})
    network = model(app, speed=50)
    network.add_phone(Phone("+14155550153", "agent", [Behaviour("human", ring_seconds=1, talk_seconds=300)]))
    network.add_phone(Phone("+12125550154", "customer", [Behaviour("voicemail", keys="", ring_seconds=3,
                                                                   talk_seconds=300)]))
    telephony = telephony()
    agent = telephony.place_call(to="+14155550153", from_=IVR_NUMBER, url=PUBLIC + "/agent",
                                 status_callback=PUBLIC + "/status", timeout=30)
    telephony.place_call(to="+12125550154", from_=IVR_NUMBER, twiml=customer_doc, timeout=30,
                         status_callback=PUBLIC + "/status")
    def events():
        return [r["form"].get("StatusCallbackEvent") for r in seen]

    assert wait_until(lambda: events().count("participant-join") == 2)
    assert telephony.announce_to("room-9", agent, PUBLIC + "/notice")
    assert wait_until(lambda: "conference-end" in events())
    [end] = [r["form"] for r in seen if r["form"].get("StatusCallbackEvent") == "conference-end"]
    assert end["CallSidEndingConference"] == agent
    assert network.stats["agents ending a machine with star"] == 1
    assert [r["path"] for r in seen].count("/notice") == 1
    assert wait_until(lambda: network.stats["machines an agent heard"] == 1)


# -- voicemail: <Record> after <Leave>, never inside a queue's wait ----------------------------

RECORD = ('<Response><Record action="/recorded" maxLength="30" finishOnKey="#" playBeep="true" '
          'recordingStatusCallback="/status" transcribe="true" transcribeCallback="/text"/></Response>')
ENQUEUE = '<Response><Enqueue waitUrl="/wait" action="/done">Sales</Enqueue></Response>'


def test_a_record_inside_a_queues_wait_is_an_application_error(model, twilio_standin):
    app, seen = recording_app({"/incoming": ENQUEUE, "/wait": RECORD})
    network = model(app)
    run = network.dial_in("+12125550150", IVR_NUMBER, Keys([]), patience=600, incoming_path="/incoming")
    assert run.ending == "hung-up-by-app"
    assert network.stats["records refused: inside a queue's wait"] == 1
    assert "/recorded" not in [s["path"] for s in seen] and not twilio_standin.recordings


@pytest.mark.parametrize("message_seconds, recorded", [(20, "20"), (50, "30")])
def test_leave_then_record_in_the_enqueue_action_reports_the_recording(model, twilio_standin, message_seconds,
                                                                       recorded):
    app, seen = recording_app({"/incoming": ENQUEUE, "/wait": "<Response><Leave/></Response>",
                               "/done": RECORD,
                               "/recorded": "<Response><Say>Thank you.</Say><Hangup/></Response>"})
    network = model(app)
    run = network.dial_in("+12125550150", IVR_NUMBER, Keys([]), patience=600, incoming_path="/incoming",
                          message_seconds=message_seconds)
    assert run.left_with == "leave" and run.ending == "hung-up-by-app"
    assert wait_until(lambda: {"/status", "/text"} <= {s["path"] for s in seen})
    by_path = {s["path"]: s["form"] for s in seen}
    assert by_path["/done"]["QueueResult"] == "leave"
    assert (by_path["/recorded"]["RecordingDuration"], by_path["/recorded"]["Digits"]) == (recorded, "#")
    sid = by_path["/recorded"]["RecordingSid"]
    assert sid in twilio_standin.recordings and by_path["/status"]["RecordingStatus"] == "completed"
    assert by_path["/text"]["TranscriptionStatus"] == "completed" and all(s["valid"] for s in seen)


def test_a_message_left_through_the_real_app_becomes_a_voicemail(app, svc, main_line, model, clock):
    from dataclasses import replace

    ivr = svc.storage.get_ivr("Main Line")
    svc.storage.save_ivr(ivr.evolve(settings=replace(ivr.settings, voicemail_enabled=True)))
    network = model(app, speed=JOURNEY_SPEED, clock=clock)
    run = network.dial_in("+12125550150", IVR_NUMBER, Keys(["1", "3"]), patience=600, message_seconds=15)
    assert run.left_with == "leave"
    callback = svc.storage.get_callback(run.call.sid)
    assert (callback.kind, callback.number, callback.recording_seconds) == ("voicemail", "+12125550150", 15)
    assert any("Your message is saved" in text for _, text in run.heard)
