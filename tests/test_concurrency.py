"""Many dispatchers and sweeps at once against DynamoDB Local: nothing twice, nothing lost."""
import threading
from collections import Counter
from datetime import timedelta

from callback import create_app
from callback.domain.records import Callback, Ivr, Queue
from callback.storage import Conflict
from callback.work.sweep import sweep_once
from devtools.local import start_dynamodb

AGENTS = [f"agent{i}" for i in range(5)]


def seed(svc, clock, callbacks):
    svc.storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",),
                             queues=(Queue("Sales", "Main Line", 10),)))
    for i, agent_id in enumerate(AGENTS):
        svc.storage.save_agent_profile(agent_id, name=agent_id, phone=f"+1415555{i:04d}",
                                       queues=["Sales"], now=clock.now(), create=True)
    now = clock.now()
    for i in range(callbacks):
        sid = f"CA{i:032d}"
        cb = Callback(sid, f"+1212555{i:04d}", "Main Line", "Sales", now,
                      now - timedelta(seconds=i), 10, now, now + timedelta(hours=2))
        svc.storage.create_callback(cb, sid)
    for agent_id in AGENTS:
        svc.storage.set_agent_presence(agent_id, "available", now)


def run_threads(count, target):
    barrier = threading.Barrier(count)
    errors = []

    def worker(i):
        try:
            barrier.wait()
            target(i)
        except Exception as exc:  # collected so the test can fail on it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_two_dispatchers_racing_for_one_agent_and_one_callback(svc, clock, twilio_standin):
    svc.storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",),
                             queues=(Queue("Sales", "Main Line", 10),)))
    svc.storage.save_agent_profile("solo", name="Solo", phone="+14155550199", queues=["Sales"],
                                   now=clock.now(), create=True)
    now = clock.now()
    svc.storage.create_callback(Callback("CA" + "1" * 32, "+12125551234", "Main Line", "Sales",
                                         now, now, 10, now, now + timedelta(hours=2)), "CA" + "1" * 32)
    svc.storage.set_agent_presence("solo", "available", now)
    offers = []
    run_threads(2, lambda i: offers.extend(svc.dispatcher.dispatch()))
    assert len(offers) == 1
    assert len(twilio_standin.placed(to="+14155550199")) == 1
    assert len(svc.storage.get_callback("CA" + "1" * 32).history) == 1


def test_eight_threads_of_dispatch_and_sweep_over_hundreds_of_callbacks(svc, clock, twilio_standin):
    seed(svc, clock, callbacks=200)
    run_threads(8, lambda i: svc.dispatcher.dispatch() if i % 2 else sweep_once(svc))

    placed = twilio_standin.placed()
    rung = Counter(call.to for call in placed)
    assert len(placed) == len(AGENTS), "each available agent gets exactly one piece of work"
    assert all(count == 1 for count in rung.values()), rung
    agents = svc.storage.list_agents()
    assert {a.status for a in agents} == {"reserved"}
    claimed = [a.work_key for a in agents]
    assert len(set(claimed)) == len(AGENTS), "no callback went to two agents"

    pending, dialing = [], []
    for i in range(200):
        cb = svc.storage.get_callback(f"CA{i:032d}")
        assert len(cb.history) <= 1
        (dialing if cb.status == "dialing" else pending).append(cb)
    assert len(dialing) == len(AGENTS) and len(pending) == 200 - len(AGENTS)
    # The earliest places in line were served first.
    assert sorted(c.callback_id for c in dialing) == sorted(f"CA{i:032d}" for i in range(195, 200))


def claim_races(svc, clock, races=40):
    """Two-way races for fresh agent/callback pairs: exactly one claim wins, and it stands."""
    now = clock.now()
    for i in range(races):
        agent_id, cb_id = f"racer{i}", f"CA{i:032d}"
        svc.storage.save_agent_profile(agent_id, name="Racer", phone=f"+1415556{i:04d}", queues=["Sales"],
                                       now=now, create=True)
        svc.storage.set_agent_presence(agent_id, "available", now)
        svc.storage.create_callback(Callback(cb_id, f"+1212555{i:04d}", "Main Line", "Sales", now, now, 10,
                                             now, now + timedelta(hours=1)), cb_id)
        agent, callback = svc.storage.get_agent(agent_id), svc.storage.get_callback(cb_id)
        winners = []

        def claim(n):
            try:
                svc.storage.claim_callback(agent, callback, f"attempt{n}", now, now + timedelta(minutes=3))
                winners.append(f"attempt{n}")
            except Conflict:
                pass

        run_threads(2, claim)
        after = svc.storage.get_callback(cb_id)
        assert len(winners) == 1
        assert (after.status, after.attempt_id, len(after.history)) == ("dialing", winners[0], 1)
        assert svc.storage.get_agent(agent_id).work_key == cb_id


def test_a_won_claim_is_never_undone_by_the_losing_one(svc, clock):
    claim_races(svc, clock)


def test_make_runs_moto_keeps_claims_atomic(config_overrides, clock):
    """`make run` serves from moto, patched by serialize_moto_writes; without the patch moto
    lets both claims win, or neither, in about one race in four."""
    endpoint, server = start_dynamodb()
    try:
        app = create_app({**config_overrides, "AWS_ENDPOINT_URL_DYNAMODB": endpoint})
        svc = app.extensions["callback"]
        svc.storage.create_tables()
        claim_races(svc, clock)
    finally:
        server.stop()
