"""Storage against DynamoDB Local: tables, conditional writes, indexes, the init-db command."""
import threading
import uuid
from datetime import timedelta

import botocore.session
import pytest
from conftest import cancel_callback

from app import create_app  # noqa: F401  (app.py must import cleanly)
from callback.config import Config
from callback.domain.records import Callback, Ivr, Queue
from callback.storage import Conflict, NotFound, Storage


def test_init_db_creates_tables_once(app):
    runner = app.test_cli_runner()
    storage = app.extensions["callback"].storage
    for model in storage.models:
        model.delete_table()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0 and "callbacks" in first.output
    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0 and "nothing, all tables exist" in second.output


def test_one_dynamodb_client_serves_every_model_and_every_transaction(dynamodb_endpoint, monkeypatch, clock):
    """PynamoDB alone opens a botocore session and client per model class (each parsing
    DynamoDB's service description again, ~0.45 s of CPU per cold container): storage makes
    one client per process and endpoint, for every model, every thread and transactions."""
    created = []
    real = botocore.session.Session.create_client

    def counting(self, service_name, *args, **kwargs):
        created.append(service_name)
        return real(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    # Client limits are part of a client: a timeout no other test uses needs a new one.
    config = Config(CALLBACK_TABLE_PREFIX=f"t{uuid.uuid4().hex[:10]}-", AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
                    DYNAMODB_TIMEOUT_SECONDS=19.25)
    storage = Storage(config)
    storage.create_tables()
    now = clock.now()
    touches = [
        lambda: storage.list_ivrs(), lambda: storage.list_agents(), lambda: storage.get_waiting_call("CA1"),
        lambda: storage.due_callbacks("Sales", now), lambda: storage.get_session("s" * 64),
        lambda: storage.held_entry("CA1", "e1", now), lambda: storage.recent_departures("Sales", now),
        lambda: storage.hourly_counts("Sales", now, now),
        lambda: storage.take_login_attempt("k", now, timedelta(minutes=1), 5),
        lambda: storage.record_waiting_call("CA2", ivr_name="M", queue_name="Sales", caller="",
                                            joined_at=now),  # a transaction
    ]
    start = threading.Barrier(len(touches))
    failures = []

    def touch(step):
        start.wait()
        try:
            step()
        except Exception as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=touch, args=(step,)) for step in touches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    Storage(config).list_agents()  # another app in the same process
    assert created == ["dynamodb"]
    models = (storage.Ivr, storage.AgentRec, storage.Guard, storage.Waiting, storage.CallbackRec, storage.Entry,
              storage.Session, storage.DeparturesRec, storage.Stats)
    clients = {id(model._get_connection().connection.client) for model in models}
    assert clients == {id(storage._connection.client)}


def test_ttl_is_enabled_on_ephemeral_records(svc):
    client = svc.storage.Ivr._get_connection().connection.client
    for model in (svc.storage.Waiting, svc.storage.Ivr):
        ttl = client.describe_time_to_live(TableName=model.Meta.table_name)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires_ttl"


def test_ivrs_list_alphabetically_in_one_query(svc, no_scans):
    for name in ("Support Line", "Main Line", "after hours"):
        svc.storage.save_ivr(Ivr(name))
    no_scans.clear()
    assert [i.name for i in svc.storage.list_ivrs()] == ["Main Line", "Support Line", "after hours"]
    assert no_scans == ["Query"]


def test_concurrent_ivr_edits_conflict(svc):
    saved = svc.storage.save_ivr(Ivr("Main Line", greeting="v1"))
    svc.storage.save_ivr(saved.evolve(greeting="v2"))
    with pytest.raises(Conflict):
        svc.storage.save_ivr(saved.evolve(greeting="stale"))
    assert svc.storage.get_ivr("Main Line").greeting == "v2"
    with pytest.raises(Conflict):
        svc.storage.save_ivr(Ivr("Main Line", greeting="a second create"))


def test_missing_records_raise_not_found(svc):
    with pytest.raises(NotFound):
        svc.storage.get_callback("CA-nope")
    with pytest.raises(NotFound):
        svc.storage.get_agent("nobody")
    assert svc.storage.get_waiting_call("CA-nope") is None


def test_waiting_calls_index_orders_by_place_and_hides_callers_being_connected(svc, clock):
    t = clock.now()
    for i, minutes in enumerate((5, 1, 3)):
        svc.storage.add_waiting_call(f"CA{i}", ivr_name="M", queue_name="Sales", caller="+1",
                                     joined_at=t - timedelta(minutes=minutes))
    assert [c.call_sid for c in svc.storage.waiting_in_queue("Sales")] == ["CA0", "CA2", "CA1"]
    svc.storage.save_agent_profile("a", name="A", phone="+14155550100", queues=["Sales"], now=t,
                                   create=True)
    svc.storage.set_agent_presence("a", "available", t)
    svc.storage.claim_waiting_call(svc.storage.get_agent("a"), svc.storage.get_waiting_call("CA0"), t)
    assert [c.call_sid for c in svc.storage.waiting_in_queue("Sales")] == ["CA2", "CA1"]
    assert svc.storage.count_waiting("Sales") == 2


def test_callbacks_leave_the_work_indexes_when_they_end(svc, clock):
    now = clock.now()
    cb = Callback("CA1", "+12125551234", "M", "Sales", now, now, 1, now, now + timedelta(minutes=1))
    svc.storage.create_callback(cb, "CA1")
    assert [c.callback_id for c in svc.storage.due_callbacks("Sales", now)] == ["CA1"]
    assert svc.storage.count_pending("Sales") == 1
    cancel_callback(svc.storage, "CA1", now)
    assert svc.storage.due_callbacks("Sales", now) == []
    assert svc.storage.needing_sweep("pending", now + timedelta(days=1)) == []
    # Its number's slot is free again: a new request for it is accepted.
    again = Callback("CA2", "+12125551234", "M", "Sales", now, now, 1, now, now + timedelta(minutes=1))
    assert svc.storage.create_callback(again, "CA2").outcome == "created"
    with pytest.raises(Conflict):
        cancel_callback(svc.storage, "CA1", now)


def test_a_callback_not_yet_due_is_not_offered(svc, clock):
    now = clock.now()
    cb = Callback("CA1", "+12125551234", "M", "Sales", now, now, 1, now + timedelta(minutes=5),
                  now + timedelta(hours=1))
    svc.storage.create_callback(cb, "CA1")
    assert svc.storage.due_callbacks("Sales", now) == []
    assert len(svc.storage.due_callbacks("Sales", now + timedelta(minutes=5))) == 1


def test_queue_records_are_kept_inside_their_ivr(svc):
    svc.storage.save_ivr(Ivr("Main Line", queues=(Queue("Sales", "Main Line", 7, False),)))
    queue = svc.storage.get_ivr("Main Line").queue("Sales")
    assert (queue.priority, queue.callback_enabled) == (7, False)
