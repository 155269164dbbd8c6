"""Wallboard counters on DynamoDB over HTTP: each transition counted once (duplicates and
retries count nothing), figures from index reads only, and GET /api/stats."""
import math
from datetime import timedelta

import pytest
from conftest import API_TOKEN, cancel_callback
from hypothesis import given
from hypothesis import strategies as st

from callback.domain import stats, transitions
from callback.domain.offers import CALLER_JOINING
from callback.domain.records import Callback
from callback.domain.rules import number_refused
from callback.storage import Conflict

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CUSTOMER = "+12125551234"


def request_callback(svc, clock, call_sid, number=CUSTOMER, queue="Sales", held_minutes=2):
    """A caller holding for `held_minutes` asks for a callback; returns the storage outcome."""
    now = clock.now()
    svc.storage.add_waiting_call(call_sid, ivr_name="Main Line", queue_name=queue, caller=number,
                                 joined_at=now - timedelta(minutes=held_minutes))
    cb = Callback(call_sid, number, "Main Line", queue, now, now - timedelta(minutes=held_minutes),
                  10, now, now + timedelta(minutes=120))
    return svc.storage.create_callback(cb, call_sid)


def connect(svc, clock, callback_id, agent_id="alice"):
    """Claim the callback for an agent and mark it connected (twice: a duplicate event)."""
    storage = svc.storage
    storage.set_agent_presence(agent_id, "available", clock.now())
    cb = storage.get_callback(callback_id)
    storage.claim_callback(storage.get_agent(agent_id), cb, "att1", clock.now(),
                           clock.now() + timedelta(minutes=5))
    dialing = storage.get_callback(callback_id)
    for _ in range(2):  # the second is a duplicate event, computed from the same read
        try:
            storage.commit(dialing, transitions.advance(dialing, phase="connected",
                                                        sweep_at=clock.now() + timedelta(hours=4),
                                                        connected=True, now=clock.now()))
        except Conflict:
            pass
    assert storage.get_callback(callback_id).status == "connected"


def complete(svc, clock, callback_id):
    """The conversation ends; its status callback arrives twice."""
    connected = svc.storage.get_callback(callback_id)
    svc.storage.commit(connected, transitions.complete(connected, clock.now()))
    with pytest.raises(Conflict):
        svc.storage.commit(connected, transitions.complete(connected, clock.now()))


def refuse_number(svc, clock, callback_id, agent_id="alice"):
    """Twilio refuses the customer's number on the first attempt: the callback ends failed.
    The refusal is handled twice from the same read (a retried Lambda)."""
    storage = svc.storage
    storage.set_agent_presence(agent_id, "available", clock.now())
    storage.claim_callback(storage.get_agent(agent_id), storage.get_callback(callback_id), "att1",
                           clock.now(), clock.now() + timedelta(minutes=5))
    dialing = storage.get_callback(callback_id)
    for _ in range(2):
        try:
            storage.commit(dialing, transitions.end_attempt(dialing, outcome="number-refused", counted=False,
                                                            now=clock.now(), decision=number_refused(),
                                                            error_code=21217))
        except Conflict:
            pass
    assert storage.get_callback(callback_id).status == "failed"
    storage.release_agent(agent_id, now=clock.now(), attempt_id="att1")


def answer_from_hold(svc, clock, call_sid, agent_id):
    """An agent takes a recorded holding caller, who joins their conference; Twilio sends
    the participant-join event twice."""
    storage = svc.storage
    storage.set_agent_presence(agent_id, "available", clock.now())
    storage.claim_waiting_call(storage.get_agent(agent_id), storage.get_waiting_call(call_sid), clock.now(),
                               offer_id="offer1")
    # The agent accepted: the caller is on the way to their conference.
    call = storage.get_waiting_call(call_sid)
    storage.commit_offer(call, transitions.advance_offer(call, phase=CALLER_JOINING))
    for _ in range(2):
        svc.dispatcher.conference_event("call", call_sid, "offer1", agent_id, "participant-join", call_sid)
    assert storage.get_waiting_call(call_sid) is None


def record_holding(svc, clock, call_sid, number=CUSTOMER, held_seconds=30):
    """The wait URL's first request records the caller (the second finds them recorded)."""
    for _ in range(2):
        svc.storage.record_waiting_call(call_sid, ivr_name="Main Line", queue_name="Sales", caller=number,
                                        joined_at=clock.now() - timedelta(seconds=held_seconds))


@pytest.fixture
def alice(svc, main_line, clock):
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                   now=clock.now(), create=True)


def sales_hour(svc, clock):
    buckets = svc.storage.hourly_counts("Sales", clock.now(), clock.now())
    assert len(buckets) <= 1
    return buckets[0] if buckets else {}


def test_each_transition_counts_once_however_often_it_is_retried(svc, clock, alice):
    storage = svc.storage
    a, b, c = "CA" + "a" * 32, "CA" + "b" * 32, "CA" + "c" * 32
    assert request_callback(svc, clock, a).outcome == "created"
    assert request_callback(svc, clock, a).outcome == "same-call"  # the confirm webhook, retried
    # Another call from the same number while the first is pending: not stored, counted once.
    assert request_callback(svc, clock, b).outcome == "number-pending"
    retried = Callback(b, CUSTOMER, "Main Line", "Sales", clock.now(), clock.now(), 10, clock.now(),
                       clock.now() + timedelta(minutes=120))
    assert storage.create_callback(retried, b).outcome == "number-pending"  # the webhook, retried
    clock.advance(minutes=4)
    connect(svc, clock, a)
    complete(svc, clock, a)
    # A caller who joins the line and hangs up while holding: Twilio's action callback
    # arrives twice.
    record_holding(svc, clock, c)
    storage.remove_waiting_call(c, event=stats.ABANDONED, now=clock.now())
    storage.remove_waiting_call(c, event=stats.ABANDONED, now=clock.now())

    counts = sales_hour(svc, clock)
    assert {e: counts[e] for e in stats.EVENTS} == {
        "requested": 1, "completed": 1, "expired": 0, "canceled": 0, "number_refused": 0,
        "already_pending": 1, "joined": 1, "answered": 0, "abandoned": 1,
        "connected": 1, "first_attempt_connected": 1, "texts_sent": 0, "texts_failed": 0}
    # Four minutes from request to connected: the "at most 5 minutes" bucket, once.
    assert counts["wait_2"] == 1 and sum(counts[w] for w in stats.WAIT_BUCKETS) == 1


def test_a_number_twilio_refuses_is_an_ending_of_its_own_counted_once(svc, clock, alice):
    a, b = "CA" + "a" * 32, "CA" + "b" * 32
    request_callback(svc, clock, a)
    assert request_callback(svc, clock, b).outcome == "number-pending"
    refuse_number(svc, clock, a)
    counts = sales_hour(svc, clock)
    assert (counts["requested"], counts["number_refused"], counts["already_pending"]) == (1, 1, 1)
    assert counts["completed"] == counts["expired"] == counts["canceled"] == counts["connected"] == 0
    # The pending slot is free again: the same number may ask anew.
    assert request_callback(svc, clock, "CA" + "c" * 32).outcome == "created"


def test_holding_callers_count_once_as_they_join_and_are_answered(svc, clock, alice):
    holding = "CA" + "h" * 32
    record_holding(svc, clock, holding, held_seconds=0)
    clock.advance(minutes=61)  # answered in the next hour: each move counts in its own hour
    answer_from_hold(svc, clock, holding, "alice")
    joined_hour, answered_hour = svc.storage.hourly_counts("Sales", clock.now() - timedelta(hours=2),
                                                           clock.now())
    assert (joined_hour["joined"], joined_hour["answered"]) == (1, 0)
    assert (answered_hour["joined"], answered_hour["answered"]) == (0, 1)
    assert answered_hour["abandoned"] == joined_hour["abandoned"] == 0
    figures = stats.collect(svc.storage, svc.storage.list_ivrs(), clock.now())
    sales = next(q for q in figures["queues"] if q["name"] == "Sales")
    assert [(h["joined"], h["answered"]) for h in sales["hours"][-2:]] == [(1, 0), (0, 1)]
    assert (sales["last_24h"]["joined"], sales["last_24h"]["answered"]) == (1, 1)


def test_a_caller_who_already_has_a_callback_is_not_counted_joining(svc, clock, main_line):
    sid = "CA" + "a" * 32
    request_callback(svc, clock, sid)
    outcome, _ = svc.storage.record_waiting_call(sid, ivr_name="Main Line", queue_name="Sales",
                                                 caller=CUSTOMER, joined_at=clock.now())
    assert outcome == "has-callback"
    assert sales_hour(svc, clock)["joined"] == 0


def test_expired_and_canceled_count_once(svc, clock, main_line):
    a, b = "CA" + "a" * 32, "CA" + "b" * 32
    request_callback(svc, clock, a)
    request_callback(svc, clock, b, number="+12125559876")
    cancel_callback(svc.storage, b, clock.now())
    with pytest.raises(Conflict):
        cancel_callback(svc.storage, b, clock.now())
    clock.advance(minutes=121)
    cb = svc.storage.get_callback(a)
    svc.storage.commit(cb, transitions.expire(cb, clock.now()))
    with pytest.raises(Conflict):
        svc.storage.commit(cb, transitions.expire(cb, clock.now()))
    first, later = svc.storage.hourly_counts("Sales", clock.now() - timedelta(hours=3), clock.now())
    assert (first["requested"], first["canceled"], first["expired"]) == (2, 1, 0)
    assert (later["requested"], later["canceled"], later["expired"]) == (0, 0, 1)
    assert later["hour"] - first["hour"] == timedelta(hours=2)


def test_counters_are_hourly_items_that_expire(svc, clock, main_line):
    request_callback(svc, clock, "CA" + "a" * 32)
    record = svc.storage.Stats.get("HOURLY#Sales", stats.hour_key(clock.now()))
    assert record.ivr_name == "Main Line"
    assert record.expires_ttl == stats.hour_of(clock.now()) + timedelta(days=8)


def test_figures_come_from_a_bounded_number_of_reads_whatever_the_history(svc, clock, alice, no_scans):
    def reads():
        no_scans.clear()
        stats.collect(svc.storage, svc.storage.list_ivrs(), clock.now())
        return len(no_scans)

    baseline = reads()
    for i in range(12):
        request_callback(svc, clock, f"CA{i:032d}", number=f"+1212555{i:04d}")
        cancel_callback(svc.storage, f"CA{i:032d}", clock.now())
        clock.advance(minutes=30)
    assert reads() == baseline
    # IVRs, agents, dialing callbacks, and per queue: two counts, two first-in-line reads,
    # one Query of hourly buckets.
    assert baseline == 3 + 2 * 5
    assert set(no_scans) <= {"Query"}


def test_now_figures_per_queue(svc, clock, alice):
    storage = svc.storage
    storage.add_waiting_call("CA" + "1" * 32, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                             joined_at=clock.now() - timedelta(minutes=7))
    storage.add_waiting_call("CA" + "2" * 32, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                             joined_at=clock.now() - timedelta(minutes=1))
    request_callback(svc, clock, "CA" + "3" * 32, held_minutes=3)
    request_callback(svc, clock, "CA" + "4" * 32, number="+12125559876", held_minutes=9)
    storage.set_agent_presence("alice", "available", clock.now())
    storage.claim_callback(storage.get_agent("alice"), storage.get_callback("CA" + "3" * 32), "att1",
                           clock.now(), clock.now() + timedelta(minutes=5))
    figures = stats.collect(storage, storage.list_ivrs(), clock.now())
    sales = next(q for q in figures["queues"] if q["name"] == "Sales")
    assert sales["now"] == {"holding": 2, "longest_hold_seconds": 420, "pending_callbacks": 1,
                            "oldest_pending_seconds": 540, "dialing": 1,
                            "agents": {"available": 0, "on_call": 1, "away": 0}}
    support = next(q for q in figures["queues"] if q["name"] == "Support")
    assert support["now"]["holding"] == 0 and support["now"]["longest_hold_seconds"] is None


@given(st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=60))
def test_percentiles_from_the_histogram_bound_the_true_ones(waits):
    histogram = [0] * len(stats.WAIT_BUCKETS)
    for w in waits:
        histogram[stats.WAIT_BUCKETS.index(stats.wait_bucket(w))] += 1
    for fraction in (0.5, 0.9):
        true = sorted(waits)[math.ceil(fraction * len(waits) - 1e-9) - 1]  # nearest rank
        bound = stats.percentile(histogram, fraction)
        if bound is None:
            assert true > stats.WAIT_BOUNDS[-1]
        else:
            assert true <= bound
            smaller = [b for b in stats.WAIT_BOUNDS if b < bound]
            assert not smaller or true > smaller[-1]


def test_percentile_of_nothing_is_none():
    assert stats.percentile([0] * len(stats.WAIT_BUCKETS), 0.5) is None


# -- the API -----------------------------------------------------------------------------

@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_stats_needs_the_token(client, main_line, headers):
    response = client.get("/api/stats", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"]


def test_stats_api_gives_the_figures_per_queue_and_ivr(client, svc, clock, main_line):
    request_callback(svc, clock, "CA" + "a" * 32)
    clock.advance(minutes=10)
    body = client.get("/api/stats", headers=AUTH).get_json()
    assert body["generated_at"] == clock.now().isoformat()
    assert [q["name"] for q in body["queues"]] == ["Sales", "Support"]
    sales = body["queues"][0]
    assert sales["now"]["pending_callbacks"] == 1 and sales["now"]["oldest_pending_seconds"] == 720
    assert sales["today"]["requested"] == sales["last_24h"]["requested"] == 1
    assert len(sales["hours"]) == 24 and sales["hours"][-1]["requested"] == 1
    assert body["ivrs"] == [{"name": "Main Line", "center": sales["center"], "today": sales["today"],
                             "last_24h": sales["last_24h"]}]
    # The test clock's Monday 15:00 UTC is 10:00 in New York, whose day began at 05:00 UTC.
    assert sales["center"] == {"zone": "America/New_York", "open": True,
                               "today_since": clock.now().replace(hour=5, minute=0).isoformat()}
    only = client.get("/api/stats?queue=Support", headers=AUTH).get_json()
    assert [q["name"] for q in only["queues"]] == ["Support"]


@pytest.mark.parametrize("query", ["queue=Nope", "ivr=Nope"])
def test_stats_api_names_an_unknown_filter(client, main_line, query):
    response = client.get(f"/api/stats?{query}", headers=AUTH)
    assert response.status_code == 404 and response.get_json()["fields"]


def test_callbacks_requested_at_once_are_all_stored_and_all_counted(svc, clock, main_line):
    """Many Lambdas count into the same hourly item at once: DynamoDB cancels transactions
    that meet on it, and those are tried again, so no request is lost and none counted twice."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(
            lambda i: request_callback(svc, clock, f"CA{i:032d}", number=f"+1212555{i:04d}").outcome,
            range(16)))
    assert outcomes == ["created"] * 16
    assert sales_hour(svc, clock)["requested"] == 16
