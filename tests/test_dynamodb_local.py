"""Starting DynamoDB Local: a clear reason when it cannot run, another port when one is taken."""
import stat

import pytest

from callback import dynamodb_local


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
