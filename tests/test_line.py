"""The line holds only callers who are in it: recorded from the first waitUrl request,
never offered to an agent before that, never both in line and holding a callback."""
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import PUBLIC, said, twiml
from test_caller_flow import QUEUE_SID, call_params, enqueue_caller, enter_and_confirm, hold, wait_url
from test_dispatch import ALICE, agents, ringing  # noqa: F401 (agents is a fixture)

from callback.domain import records as m
from callback.storage import NotFound, StorageError

CALL = "CA" + "a" * 32
DONE = f"{PUBLIC}/voice/enqueue-done?ivr=Main+Line&queue=Sales"


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_caller_who_hangs_up_during_the_greeting_is_never_offered_to_an_agent(
        twilio, svc, agents, twilio_standin):  # noqa: F811
    menu = twiml(twilio.post("/voice/incoming", call_params()))
    enqueue = twiml(twilio.post_url(menu.find("Gather").get("action"), call_params(Digits="1")))
    assert enqueue.find("Enqueue") is not None
    # The caller hangs up before Twilio runs the <Enqueue>: no waitUrl request ever comes.
    svc.dispatcher.set_presence("alice", "available")
    assert twilio_standin.placed() == []
    assert svc.storage.waiting_in_queue("Sales") == []
    assert svc.storage.get_agent("alice").status == "available"


def test_the_first_wait_request_records_the_caller_from_queue_time_and_rings_a_free_agent(
        twilio, svc, agents, clock, twilio_standin):  # noqa: F811
    svc.dispatcher.set_presence("alice", "available")
    menu = twiml(twilio.post("/voice/incoming", call_params()))
    enqueue = twiml(twilio.post_url(menu.find("Gather").get("action"), call_params(Digits="1")))
    assert twilio_standin.placed() == []
    clock.advance(seconds=5)
    twiml(twilio.post_url(enqueue.find("Enqueue").get("waitUrl"),
                          call_params(QueueSid=QUEUE_SID, QueueTime="3")))
    call = svc.storage.get_waiting_call(CALL)
    assert call.joined_at == clock.now() - timedelta(seconds=3) and call.status == m.CONNECTING
    ringing(twilio_standin, ALICE)


def test_the_hold_loop_of_a_recorded_caller_makes_no_dynamodb_request(twilio, svc, main_line, clock,
                                                                      no_scans):
    svc.directory._ttl = 3600  # the cached directory, as in a warm container
    first = hold(twilio, 0)
    loop = first.find("Redirect").text
    assert query_of(loop) == {"ivr": "Main Line", "queue": "Sales",
                              "joined": str(int(clock.now().timestamp()))}
    answers, reads, url = [], [], loop
    for _ in range(4):
        clock.advance(seconds=20)
        before = len(no_scans)
        # A redirected request need not carry QueueTime: the marker dates the wait.
        answers.append(twiml(twilio.post_url(url, call_params())))
        reads.append(no_scans[before:])
        url = answers[-1].find("Redirect").text
    # Only the request that first makes the offer reads: the wait estimate, with the callers
    # holding before this one counted from the app's own line (no QueuePosition here).
    assert reads == [[], [], ["Query"] * 4, []]
    assert [a.find("Gather") is not None for a in answers] == [False, False, True, True]
    assert [a.find("Redirect").text for a in answers] == [loop, loop] + [
        loop.replace("&joined=", "&offered=1&joined=")] * 2
    offer = answers[-1].find("Gather").get("action")
    assert query_of(offer)["joined"] == query_of(loop)["joined"]


def test_a_caller_taken_by_an_agent_while_typing_their_number_gets_no_callback(
        twilio, svc, agents, twilio_standin):  # noqa: F811
    enqueue_caller(twilio)
    # While the caller types, Alice frees up and is rung for them.
    svc.dispatcher.set_presence("alice", "available")
    ringing(twilio_standin, ALICE)
    root = enter_and_confirm(twilio, "2125551234")
    assert "agent is about to answer" in said(root)
    assert root.find("Redirect").text == wait_url(offer=False)
    assert root.find("Leave") is None
    with pytest.raises(NotFound):
        svc.storage.get_callback(CALL)
    assert svc.storage.get_waiting_call(CALL).status == m.CONNECTING


def test_storing_never_deletes_a_caller_an_agent_was_just_given(svc, agents, clock):  # noqa: F811
    now = clock.now()
    svc.storage.add_waiting_call(CALL, ivr_name="Main Line", queue_name="Sales", caller="+14155550123",
                                 joined_at=now)
    waiting = svc.storage.get_waiting_call(CALL)  # the webhook read it: still waiting
    svc.storage.set_agent_presence("alice", "available", now)
    svc.storage.claim_waiting_call(svc.storage.get_agent("alice"), waiting, now)
    callback = m.Callback(CALL, "+12125551234", "Main Line", "Sales", now, waiting.joined_at, 10, now,
                          now + timedelta(hours=2))
    assert svc.storage.create_callback(callback, CALL).outcome == "agent-connecting"
    assert svc.storage.get_waiting_call(CALL).status == m.CONNECTING
    with pytest.raises(NotFound):
        svc.storage.get_callback(CALL)
    # Nothing was half written: the number's slot is still free for another call.
    other = m.Callback("CA" + "b" * 32, "+12125551234", "Main Line", "Sales", now, now, 10, now,
                       now + timedelta(hours=2))
    assert svc.storage.create_callback(other, "CA" + "b" * 32).outcome == "created"


def test_queue_result_error_puts_the_caller_back_in_line_with_their_place(twilio, svc, main_line, clock):
    enqueue_caller(twilio)
    joined = clock.now()
    clock.advance(minutes=3)
    done = DONE
    for requeue in (1, 2):
        result = "error" if requeue == 1 else "system-error"
        root = twiml(twilio.post_url(done, call_params(QueueResult=result)))
        enqueue = root.find("Enqueue")
        assert enqueue.text == "Sales" and "still in line" in said(root)
        assert query_of(enqueue.get("waitUrl"))["joined"] == str(int(joined.timestamp()))
        done = enqueue.get("action")
        assert query_of(done)["requeue"] == str(requeue)
        assert svc.storage.get_waiting_call(CALL).joined_at == joined
    # Twilio keeps failing: a bounded number of tries, then a polite goodbye.
    root = twiml(twilio.post_url(done, call_params(QueueResult="error")))
    assert root.find("Enqueue") is None and root[-1].tag == "Hangup"
    assert svc.storage.get_waiting_call(CALL) is None


def test_a_caller_put_back_before_being_recorded_is_recorded_by_the_new_wait_loop(twilio, svc, main_line):
    root = twiml(twilio.post_url(DONE, call_params(QueueResult="error")))
    wait = root.find("Enqueue").get("waitUrl")
    assert "joined" not in query_of(wait)
    twiml(twilio.post_url(wait, call_params(QueueSid=QUEUE_SID, QueueTime="0")))
    assert svc.storage.get_waiting_call(CALL).status == m.WAITING


def test_a_holding_call_whose_callback_is_stored_leaves_the_queue_for_it(twilio, svc, main_line):
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    # Twilio still requests the bare waitUrl (the <Leave> was lost): the caller leaves again.
    root = hold(twilio, 90)
    assert [e.tag for e in root] == ["Leave"]
    assert svc.storage.get_waiting_call(CALL) is None


def test_already_pending_only_while_the_pending_callback_really_exists(twilio, svc, main_line, clock):
    first, second = "CA" + "1" * 32, "CA" + "2" * 32
    enqueue_caller(twilio, first)
    enter_and_confirm(twilio, "2125551234", call_sid=first)
    # The first callback ends, but its guard is left behind (as a crash between two writes
    # or an older version could leave it).
    C = svc.storage.CallbackRec
    C(first).update(actions=[C.status.set(m.COMPLETED), C.pending_queue.remove()])
    enqueue_caller(twilio, second)
    root = enter_and_confirm(twilio, "2125551234", call_sid=second)
    assert [e.tag for e in root] == ["Leave"] and "already" not in said(root)
    assert svc.storage.get_callback(second).status == m.PENDING
    # Now the number does have a live callback: the next caller keeps it.
    third = "CA" + "3" * 32
    enqueue_caller(twilio, third)
    root = enter_and_confirm(twilio, "2125551234", call_sid=third)
    assert "already have a callback" in said(root)
    with pytest.raises(NotFound):
        svc.storage.get_callback(third)


def test_a_caller_recorded_again_through_a_redirect_without_queue_time_keeps_their_wait(
        twilio, svc, main_line, clock, monkeypatch):
    """A store that failed sends the caller back to the bare wait URL through <Redirect>,
    where Twilio need not send QueueTime: their wait then dates from the app's own record of
    them, or, that record gone, from the join time the loop's URLs carried."""
    enqueue_caller(twilio)
    joined = clock.now()
    clock.advance(minutes=2)
    entry = f"{PUBLIC}/voice/number?ivr=Main+Line&queue=Sales&attempt=1&joined={int(joined.timestamp())}"
    read_back = twiml(twilio.post_url(entry, call_params(Digits="2125551234")))

    def failing(*args, **kwargs):
        raise StorageError("DynamoDB did not answer")

    monkeypatch.setattr(svc.storage, "create_callback", failing)
    back = twiml(twilio.post_url(read_back.find("Gather").get("action"), call_params(Digits="1")))
    assert "could not save your number" in said(back)
    monkeypatch.undo()
    svc.storage.remove_waiting_call(CALL)  # however the record went meanwhile
    twiml(twilio.post_url(back.find("Redirect").text, call_params()))
    assert svc.storage.get_waiting_call(CALL).joined_at == joined
