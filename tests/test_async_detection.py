"""Asynchronous answering-machine detection, journey by journey, through the app's webhooks
and the Twilio stand-in over real HTTP: the customer's leg placed with its TwiML inline and
its verdict posted apart; a person, a machine before the join, a machine after it (the
agent warned, ending it with star), `unknown`, and verdicts lost, repeated, late or stray."""
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import IVR_NUMBER, PUBLIC, said, twiml
from test_contract import assert_in_spec
from test_dispatch import ALICE, CUSTOMER, agent_accepts, conference_event, ringing, status, store_callback

from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings
from callback.work.sweep import sweep_once
from devtools.twilio_model import RemoteBackend


@pytest.fixture
def acme(svc, clock):
    """IVR 'Main Line', announced as Acme, detection as set per test (async by default);
    Alice serves Sales, available."""
    def setup(mode="async"):
        settings = CallbackSettings(announce_as="Acme", **({"machine_detection": mode} if mode else {}))
        sales = (Queue("Sales", "Main Line", 10),)
        svc.storage.save_ivr(Ivr("Main Line", numbers=(IVR_NUMBER,), queues=sales, settings=settings))
        svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=clock.now(),
                                       create=True)
        cb_id = store_callback(svc, clock)
        svc.storage.set_agent_presence("alice", "available", clock.now())
        svc.dispatcher.dispatch()
        return cb_id
    return setup


def dialed(twilio, standin):
    """Alice accepts and is in the conference: the customer's leg is placed. Returns
    (agent leg, agent TwiML, customer leg, the create's parameters)."""
    agent_leg = ringing(standin, ALICE)
    agent_twiml = agent_accepts(twilio, agent_leg)
    customer_leg = ringing(standin, CUSTOMER)
    [create] = [r["params"] for r in standin.requests if r["path"].endswith("/Calls.json")
                and r["method"] == "POST" and r["params"]["To"] == [CUSTOMER]]
    return agent_leg, agent_twiml, customer_leg, create


def verdict(twilio, leg, answered_by, sid=None, url=None):
    response = twilio.post_url(url or leg.amd_callback, {"CallSid": sid or leg.sid, "AnsweredBy": answered_by,
                                                         "MachineDetectionDuration": "2400"})
    assert twiml(response) is not None and len(twiml(response)) == 0
    return response


def joins(twilio, standin, agent_twiml, agent_leg, customer_leg):
    """The customer's inline TwiML took them into the conference (the stand-in too)."""
    name = agent_twiml.find("Dial/Conference").text
    standin.conference_joined(name, agent_leg.sid, start_on_enter=False, end_on_exit=True)
    standin.conference_joined(name, customer_leg.sid, start_on_enter=True, end_on_exit=True)
    conference_event(twilio, agent_twiml, "participant-join", customer_leg)


def conference_ended_by(twilio, agent_twiml, ending_sid):
    conf = agent_twiml.find("Dial/Conference")
    response = twilio.post_url(conf.get("statusCallback"), {
        "StatusCallbackEvent": "conference-end", "FriendlyName": conf.text, "ConferenceSid": "CF" + "0" * 32,
        "CallSidEndingConference": ending_sid,
        "ReasonConferenceEnded": "participant-with-end-conference-on-exit-left"})
    assert response.status_code == 200


def test_the_customer_leg_carries_its_greeting_and_join_inline_and_a_signed_verdict_route(
        twilio, svc, clock, twilio_standin, acme):
    cb_id = acme(mode=None)  # the default
    agent_leg, agent_twiml, customer_leg, create = dialed(twilio, twilio_standin)
    # Twiml instead of Url (Twilio ignores Twiml beside a Url): no webhook between the answer
    # and the first word; MachineDetection with AsyncAmd and its callback.
    assert "Url" not in create and "FallbackUrl" not in create
    assert create["MachineDetection"] == ["Enable"] and create["AsyncAmd"] == ["true"]
    assert create["AsyncAmdStatusCallbackMethod"] == ["POST"]
    amd = urlsplit(create["AsyncAmdStatusCallback"][0])
    assert f"{amd.scheme}://{amd.netloc}{amd.path}" == f"{PUBLIC}/voice/customer/amd"
    attempt_id = svc.storage.get_callback(cb_id).attempt_id
    assert parse_qs(amd.query) == {"callback": [cb_id], "attempt": [attempt_id]}
    document = ET.fromstring(create["Twiml"][0])
    assert said(document) == "Hello, this is Acme returning your call, connecting you with Alice."
    conference = document.find("Dial/Conference")
    assert conference.text == agent_twiml.find("Dial/Conference").text
    assert conference.get("startConferenceOnEnter") == conference.get("endConferenceOnExit") == "true"
    assert len(create["Twiml"][0]) < 4000  # Twilio's limit
    # The agent may leave with star (how a warned agent ends a machine).
    assert agent_twiml.find("Dial").get("hangupOnStar") == "true"
    for request in twilio_standin.requests:
        assert_in_spec(request)


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_a_person_or_unknown_joins_the_agent_and_completes(twilio, svc, clock, twilio_standin, acme,
                                                           answered_by):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    verdict(twilio, customer_leg, answered_by)
    assert svc.storage.get_callback(cb_id).phase == "customer-answered"
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    assert svc.storage.get_callback(cb_id).status == "connected"
    conference_ended_by(twilio, agent_twiml, customer_leg.sid)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0


@pytest.mark.parametrize("answered_by", ["machine_start", "fax"])
def test_a_machine_before_the_join_ends_the_leg_and_counts_as_machine(twilio, svc, clock, twilio_standin,
                                                                     acme, answered_by):
    cb_id = acme()
    agent_leg, _, customer_leg, _ = dialed(twilio, twilio_standin)
    verdict(twilio, customer_leg, answered_by)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    assert twilio_standin.placed(to=CUSTOMER)[-1].status == "completed"  # hung up
    # The agent hears the result and hangs up.
    assert any("/voice/notice" in url for url in twilio_standin.placed(to=ALICE)[-1].redirects)
    # Repeated, the verdict changes nothing more.
    verdict(twilio, customer_leg, answered_by)
    again = svc.storage.get_callback(cb_id)
    assert (again.attempts, again.history) == (cb.attempts, cb.history)


def test_a_machine_after_the_join_warns_the_agent_who_ends_it_with_star(twilio, svc, clock, twilio_standin,
                                                                        acme):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "machine_start")
    cb = svc.storage.get_callback(cb_id)
    assert (cb.status, cb.phase) == ("connected", "connected-machine")
    # Never cut: nothing hung up; the agent alone hears the notice, in the conference.
    assert twilio_standin.placed(to=CUSTOMER)[-1].status != "completed"
    [notice_url] = twilio_standin.placed(to=ALICE)[-1].announcements
    assert notice_url.startswith(f"{PUBLIC}/voice/agent/machine-notice?")
    notice = twiml(twilio.post_url(notice_url, {"CallSid": agent_leg.sid}))
    assert [verb.tag for verb in notice] == ["Say"] and "press star" in said(notice).lower()
    for request in twilio_standin.requests:
        assert_in_spec(request)
    # Star: the agent leaves, which ends the conference; leaves wait for its end, which names them.
    conference_event(twilio, agent_twiml, "participant-leave", agent_leg)
    conference_event(twilio, agent_twiml, "participant-leave", customer_leg)
    assert svc.storage.get_callback(cb_id).phase == "connected-machine"
    conference_ended_by(twilio, agent_twiml, agent_leg.sid)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    status(twilio, customer_leg, "completed")
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"
    assert svc.storage.get_callback(cb_id).attempts == 1


def test_a_warned_call_the_customer_ends_is_completed(twilio, svc, clock, twilio_standin, acme):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "machine_end_other")
    conference_ended_by(twilio, agent_twiml, customer_leg.sid)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0


def reads_of(standin, call):
    """GETs of one call's record the app made (Twilio's record of who answered)."""
    return [r for r in standin.requests if r["method"] == "GET" and r["path"].endswith(f"/Calls/{call.sid}.json")]


def talked_without_a_verdict(twilio, svc, standin, acme, decided=None):
    """The customer joined, no verdict reached the app (Twilio decided `decided`, kept on its
    record of the call), and the agent ended the conversation. Returns the legs and the id."""
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, standin)
    joins(twilio, standin, agent_twiml, agent_leg, customer_leg)
    if decided:
        standin.detected(customer_leg.sid, decided)  # its callback lost on the way
    conference_ended_by(twilio, agent_twiml, agent_leg.sid)
    cb = svc.storage.get_callback(cb_id)
    # Not completed on the end of the talk: the verdict is awaited, the customer's call ended.
    assert (cb.status, cb.phase) == ("connected", "verdict-awaited")
    assert standin.placed(to=CUSTOMER)[-1].status == "completed"
    return cb_id, agent_leg, customer_leg


@pytest.mark.parametrize("decided", ["machine_start", "machine_end_beep", "fax"])
def test_a_lost_verdict_of_a_machine_is_read_from_twilio_and_counts_as_machine(twilio, svc, clock,
                                                                              twilio_standin, acme, decided):
    cb_id, agent_leg, customer_leg = talked_without_a_verdict(twilio, svc, twilio_standin, acme, decided)
    status(twilio, agent_leg, "completed")
    assert svc.storage.get_agent("alice").status == "available"  # freed without waiting for it
    assert reads_of(twilio_standin, customer_leg) == []  # nothing read before the call is over
    status(twilio, customer_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    assert len(reads_of(twilio_standin, customer_leg)) == 1
    for request in twilio_standin.requests:
        assert_in_spec(request)
    # The verdict, arriving after the read settled it, changes nothing.
    verdict(twilio, customer_leg, "human")
    verdict(twilio, customer_leg, decided)
    assert svc.storage.get_callback(cb_id) == cb


@pytest.mark.parametrize("decided", ["human", "unknown"])
def test_a_lost_verdict_of_a_person_is_read_from_twilio_and_completes(twilio, svc, clock, twilio_standin, acme,
                                                                     decided):
    cb_id, agent_leg, customer_leg = talked_without_a_verdict(twilio, svc, twilio_standin, acme, decided)
    status(twilio, customer_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0
    verdict(twilio, customer_leg, "machine_start")  # late: changes nothing, warns nobody
    assert svc.storage.get_callback(cb_id) == cb
    assert twilio_standin.placed(to=ALICE)[-1].announcements == []


def test_a_verdict_that_comes_while_awaited_settles_it_without_a_read(twilio, svc, clock, twilio_standin, acme):
    cb_id, agent_leg, customer_leg = talked_without_a_verdict(twilio, svc, twilio_standin, acme)
    verdict(twilio, customer_leg, "machine_start")
    verdict(twilio, customer_leg, "machine_start")  # repeated
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    status(twilio, customer_leg, "completed")
    assert svc.storage.get_callback(cb_id) == cb and reads_of(twilio_standin, customer_leg) == []


def test_a_persons_verdict_after_the_join_is_noted_and_the_end_completes_without_a_read(
        twilio, svc, clock, twilio_standin, acme):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "human")
    verdict(twilio, customer_leg, "human")  # repeated: nothing more
    assert svc.storage.get_callback(cb_id).answered_by == "human"
    conference_ended_by(twilio, agent_twiml, agent_leg.sid)
    status(twilio, customer_leg, "completed")
    assert svc.storage.get_callback(cb_id).status == "completed"
    assert reads_of(twilio_standin, customer_leg) == []


def test_twilios_record_names_an_asynchronous_verdict_once_the_call_is_over(twilio, svc, clock,
                                                                          twilio_standin, standin_server, acme):
    """As the stand-in plays Twilio (warning 21262: AMD results are on the /Calls resource
    once the call is complete), whether the verdict's callback was delivered or not; the
    model tells it over HTTP when it runs in another process (`make run`)."""
    acme()
    _, _, customer_leg, _ = dialed(twilio, twilio_standin)
    twilio_standin.set_status(customer_leg.sid, "in-progress")
    RemoteBackend(standin_server.url).detected(customer_leg.sid, "machine_start")
    assert svc.telephony.call_record(customer_leg.sid).answered_by is None
    twilio_standin.set_status(customer_leg.sid, "completed")
    record = svc.telephony.call_record(customer_leg.sid)
    assert (record.status, record.answered_by) == ("completed", "machine_start")
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_a_lost_verdict_whose_read_fails_is_repaired_by_the_sweep(twilio, svc, clock, twilio_standin, acme):
    cb_id, agent_leg, customer_leg = talked_without_a_verdict(twilio, svc, twilio_standin, acme)
    status(twilio, agent_leg, "completed")
    twilio_standin.fail_next(503, 20503, message="Service Unavailable")  # the read, in the webhook
    status(twilio, customer_leg, "completed")
    assert len(reads_of(twilio_standin, customer_leg)) == 1
    assert svc.storage.get_callback(cb_id).phase == "verdict-awaited"
    clock.advance(seconds=31)
    sweep_once(svc)  # Twilio's record names no verdict yet: read again later
    cb = svc.storage.get_callback(cb_id)
    assert (cb.phase, cb.verdict_reads) == ("verdict-awaited", 1)
    twilio_standin.detected(customer_leg.sid, "machine_start")
    clock.advance(seconds=30)
    sweep_once(svc)  # its pause (a minute) has not passed: not read
    assert len(reads_of(twilio_standin, customer_leg)) == 2
    clock.advance(seconds=31)
    sweep_once(svc)
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    assert len(reads_of(twilio_standin, customer_leg)) == 3


def test_a_verdict_twilio_never_names_ends_as_a_person_after_a_bounded_number_of_reads(
        twilio, svc, clock, twilio_standin, acme):
    cb_id, agent_leg, customer_leg = talked_without_a_verdict(twilio, svc, twilio_standin, acme)
    status(twilio, agent_leg, "completed")
    status(twilio, customer_leg, "completed")  # read: no AnsweredBy on the record
    pauses = [31, 61, 121, 241]  # past each pause, each twice the last
    for i, seconds in enumerate(pauses):
        assert svc.storage.get_callback(cb_id).phase == "verdict-awaited"
        clock.advance(seconds=seconds)
        sweep_once(svc)
        assert len(reads_of(twilio_standin, customer_leg)) == i + 2
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0
    clock.advance(minutes=30)
    sweep_once(svc)
    assert len(reads_of(twilio_standin, customer_leg)) == len(pauses) + 1  # over: never read again


def test_late_and_stray_verdicts_change_nothing(twilio, svc, clock, twilio_standin, acme):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    before = svc.storage.get_callback(cb_id)
    # Another CallSid, or an attempt that is not this one: ignored.
    verdict(twilio, customer_leg, "machine_start", sid="CA" + "7" * 32)
    stray = customer_leg.amd_callback.replace(f"attempt={before.attempt_id}", "attempt=0000")
    verdict(twilio, customer_leg, "machine_start", url=stray)
    assert svc.storage.get_callback(cb_id) == before
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "human")
    conference_ended_by(twilio, agent_twiml, customer_leg.sid)
    done = svc.storage.get_callback(cb_id)
    assert done.status == "completed"
    # After the attempt ended: late verdicts of either kind change nothing, announce nothing.
    verdict(twilio, customer_leg, "machine_start")
    verdict(twilio, customer_leg, "human")
    assert svc.storage.get_callback(cb_id) == done
    assert twilio_standin.placed(to=ALICE)[-1].announcements == []


def test_the_verdict_route_is_signed_and_answers_twiml_on_error(twilio, svc, clock, twilio_standin, acme,
                                                                monkeypatch):
    acme()
    _, _, customer_leg, _ = dialed(twilio, twilio_standin)
    query = customer_leg.amd_callback[len(PUBLIC):]
    path, _, qs = query.partition("?")
    unsigned = twilio.client.post(query, data={"CallSid": customer_leg.sid, "AnsweredBy": "machine_start"})
    assert unsigned.status_code == 403

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(svc.dispatcher, "customer_verdict", broken)
    root = twiml(twilio.post_url(customer_leg.amd_callback, {"CallSid": customer_leg.sid,
                                                             "AnsweredBy": "machine_start"}))
    assert len(root) == 0
    monkeypatch.setattr(svc.dispatcher, "machine_notice", broken)
    notice = twiml(twilio.post(path.replace("/customer/amd", "/agent/machine-notice"),
                               {"CallSid": "CA" + "1" * 32}, query=dict(callback="x")))
    assert [verb.tag for verb in notice] == ["Say"]


@pytest.mark.parametrize("mode, detection", [("sync", ["Enable"]), ("off", None)])
def test_sync_keeps_the_answer_webhook_and_off_detects_nothing(twilio, svc, clock, twilio_standin, acme, mode,
                                                               detection):
    acme(mode)
    agent_leg, agent_twiml, customer_leg, create = dialed(twilio, twilio_standin)
    assert create["Url"][0].startswith(f"{PUBLIC}/voice/customer/answer?")
    assert "Twiml" not in create and "AsyncAmd" not in create
    assert create.get("MachineDetection") == detection
    assert agent_twiml.find("Dial").get("hangupOnStar") is None


@pytest.mark.parametrize("first", ["customer", "agent"])
def test_after_star_a_final_status_that_comes_first_still_counts_a_machine(twilio, svc, clock, twilio_standin,
                                                                           acme, first):
    """Twilio's record of who ended the conference decides, whichever report comes first."""
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "machine_start")
    twilio_standin.conference_left(agent_twiml.find("Dial/Conference").text, agent_leg.sid)  # star
    status(twilio, customer_leg if first == "customer" else agent_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "pending" and cb.attempts == 1 and cb.history[-1].outcome == "machine"
    conference_ended_by(twilio, agent_twiml, agent_leg.sid)  # late: changes nothing more
    status(twilio, agent_leg if first == "customer" else customer_leg, "completed")
    assert svc.storage.get_callback(cb_id).attempts == 1
    assert svc.storage.get_agent("alice").status == "available"
    assert any(r["path"].endswith("/Conferences.json") and r["query"].get("Status") == ["completed"]
               for r in twilio_standin.requests)  # who ended it, asked of Twilio
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_after_the_warning_a_final_status_is_the_calls_end_when_the_customer_ended_it(
        twilio, svc, clock, twilio_standin, acme):
    cb_id = acme()
    agent_leg, agent_twiml, customer_leg, _ = dialed(twilio, twilio_standin)
    joins(twilio, twilio_standin, agent_twiml, agent_leg, customer_leg)
    verdict(twilio, customer_leg, "machine_start")
    twilio_standin.conference_left(agent_twiml.find("Dial/Conference").text, customer_leg.sid)
    status(twilio, agent_leg, "completed")
    cb = svc.storage.get_callback(cb_id)
    assert cb.status == "completed" and cb.attempts == 0
