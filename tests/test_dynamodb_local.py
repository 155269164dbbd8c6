"""Starting DynamoDB Local: a clear reason when it cannot run, another port when one is taken;
its TTL deletion, which runs by the real time, never takes what tests write by their clock."""
import stat
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import serve_dynamodb_local

from callback import create_app
from callback.clock import fixed_start
from callback.domain.records import AdminSession
from callback.storage import WAITING_CALL_LIFETIME
from devtools import dynamodb_local


def fake_java(tmp_path, script):
    """A `java` that runs the given shell script instead of the JVM."""
    path = tmp_path / "java"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def home(tmp_path):
    """An installation directory with a (fake) jar in it."""
    emulator = tmp_path / "home" / "package" / "emulator"
    emulator.mkdir(parents=True)
    (emulator / "DynamoDBLocal.jar").write_bytes(b"")
    return str(tmp_path / "home")


def test_the_session_runs_on_dynamodb_local_and_says_so(dynamodb_endpoint):
    assert dynamodb_local._answers(dynamodb_endpoint)
    assert dynamodb_local.describe().startswith("Amazon DynamoDB Local from npm amplify-dynamodb-simulator@")


@pytest.mark.parametrize("today", ["2026-12-01", "2026-12-28T15:00", "2026-12-29", "2027-01-04",
                                   "2027-07-15", "2028-12-31T23:59"])
def test_the_test_clock_starts_a_week_ahead_on_a_january_monday_at_three(today):
    today = datetime.fromisoformat(today).replace(tzinfo=timezone.utc)
    start = fixed_start(today)
    assert (start.weekday(), start.month, start.time()) == (0, 1, datetime.min.time().replace(hour=15))
    assert start.day <= 7  # the first Monday of its January
    assert today + timedelta(days=7) <= start < today + timedelta(days=7 + 366)


@pytest.fixture(scope="module")
def own_dynamodb_local():
    """A DynamoDB Local of its own: the session's holds every test's tables, and its TTL
    deletion, which scans them all, takes minutes to come round once the suite is under way."""
    yield from serve_dynamodb_local()


def test_ttl_deletion_by_the_real_time_leaves_what_the_test_clock_wrote(config_overrides, own_dynamodb_local):
    """DynamoDB Local deletes items whose TTL is past by the real time, every ten seconds or
    so. Items dated by the test clock must outlive that, or sessions and lines vanish mid-test."""
    storage = create_app({**config_overrides, "AWS_ENDPOINT_URL_DYNAMODB": own_dynamodb_local}
                         ).extensions["callback"].storage
    storage.create_tables()
    now = config_overrides["clock"].now()
    storage.create_session(AdminSession("s" * 64, "admin", "tag", now, now, now + timedelta(minutes=30)))
    storage.add_waiting_call("CA" + "1" * 32, ivr_name="Main Line", queue_name="Sales", caller="+1",
                             joined_at=now)
    # Witnesses dated by the real time, past their TTL in both TTL tables: once both are
    # gone, DynamoDB Local's deletion has been over these tables.
    real_past = datetime.now(timezone.utc) - timedelta(minutes=5)
    storage.take_login_attempt("witness", real_past, timedelta(minutes=1), limit=5)
    storage.add_waiting_call("CA" + "2" * 32, ivr_name="Main Line", queue_name="Sales", caller="+1",
                             joined_at=real_past - WAITING_CALL_LIFETIME)
    deadline = time.monotonic() + 300
    while storage.get_waiting_call("CA" + "2" * 32) or any(storage.Guard.query("LOGIN", storage.Guard.sk == "witness")):
        assert time.monotonic() < deadline, "DynamoDB Local's TTL deletion did not run within 300 s"
        time.sleep(0.5)
    assert storage.get_session("s" * 64) is not None
    assert storage.get_waiting_call("CA" + "1" * 32) is not None


def test_not_installed_says_how_to_get_it(tmp_path):
    with pytest.raises(dynamodb_local.Unavailable, match="make dynamodb-local"):
        dynamodb_local.DynamoDBLocal(home=str(tmp_path)).start()
    assert "make dynamodb-local" in dynamodb_local.describe(str(tmp_path))


def test_no_java_says_so(home):
    server = dynamodb_local.DynamoDBLocal(home=home)
    server.java = None
    with pytest.raises(dynamodb_local.Unavailable, match="no `java`"):
        server.start()


def test_a_jvm_that_dies_is_reported_with_its_output(home, tmp_path):
    java = fake_java(tmp_path, "echo 'Error: Could not find or load main class'; exit 1\n")
    with pytest.raises(dynamodb_local.Unavailable, match="Could not find or load main class"):
        dynamodb_local.DynamoDBLocal(home=home, java=java).start(timeout=30)


def test_a_taken_port_is_retried_on_another_then_given_up(home, tmp_path):
    ports = tmp_path / "ports"
    java = fake_java(tmp_path, f'echo "$@" >> {ports}\n'
                               "echo 'Caused by: java.net.BindException: Address already in use'\n"
                               "exec sleep 60\n")
    with pytest.raises(dynamodb_local.Unavailable, match="no free port"):
        dynamodb_local.DynamoDBLocal(home=home, java=java).start(timeout=30)
    assert [line.split()[-2] for line in ports.read_text().splitlines()] == ["-port"] * 3
