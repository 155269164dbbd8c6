"""`make run`'s app in its own process, and the simulator walking whole journeys against it."""
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from callback import simulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local")
    session = workdir / "session.json"
    port, twilio_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": ROOT, "LOCAL_ADMIN_PASSWORD": "local-pass-123"}
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "callback.local", "--port", str(port), "--twilio-port", str(twilio_port),
         "--speed", "60", "--session", str(session)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=1).ok and session.exists():
                break
        except requests.RequestException:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the local run did not start: " + process.stdout.read()[-2000:])
    yield {"session": str(session), "url": f"http://127.0.0.1:{port}", "process": process}
    process.terminate()
    output = process.communicate(timeout=20)[0]
    assert "admin, password: local-pass-123" in output


def test_the_local_run_serves_the_admin_with_demo_data(local_run):
    http = requests.Session()
    login = http.get(local_run["url"] + "/login").text
    token = login.split('name="csrf_token" value="')[1].split('"')[0]
    http.post(local_run["url"] + "/login", data={"username": "admin", "password": "local-pass-123",
                                                  "csrf_token": token})
    page = http.get(local_run["url"] + "/admin/ivrs").text
    assert "Main Line" in page and "Sales (10)" in page and "Support (5)" in page
    assert "Alice" in http.get(local_run["url"] + "/admin/agents").text


def run_simulator(local_run, capsys, *args):
    assert simulator.main(["--session", local_run["session"], *args]) == 0
    return capsys.readouterr().out


def test_scripted_journey_callback_answered_after_one_no_answer(local_run, capsys):
    out = run_simulator(local_run, capsys, "--keys", "1,1,41555,2125551234,1", "--agent", "alice",
                        "--customer-answers", "no-answer,answer", "--watch", "900")
    assert "Press 1 to be called back" in out
    assert "too short" in out
    assert "We will call you back at 2 1 2, 5 5 5, 1 2 3 4" in out
    assert "Callback for Sales, to 2 1 2, 5 5 5, 1 2 3 4" in out
    assert "The callback will be retried later" in out
    assert out.rstrip().endswith(": completed")


def test_scripted_journey_holding_caller_goes_straight_to_a_free_agent(local_run, capsys):
    out = run_simulator(local_run, capsys, "--ready", "bob", "--keys", "2", "--from", "+12125550188")
    assert "is taken out of the queue" in out and "Caller from Support" in out


def test_local_data_survives_a_restart_through_the_persist_file(svc, main_line, tmp_path):
    from callback.local import export_tables, import_tables
    from callback.storage import Storage

    path = tmp_path / "db.json"
    export_tables(svc.storage, str(path))
    same = Storage(svc.config)
    for model in same.models:
        model.delete_table()
    same.create_tables()
    assert import_tables(same, str(path)) >= 1
    assert same.get_ivr("Main Line").queue("Sales").priority == 10


def test_a_caller_who_never_presses_anything_gives_up_and_is_forgotten(local_run, capsys):
    import json

    with open(local_run["session"]) as f:
        token = json.load(f)["api_token"]
    for agent_id in ("alice", "bob"):
        response = requests.put(f"{local_run['url']}/api/agents/{agent_id}/status", json={"status": "offline"},
                                headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 200, response.text
    out = run_simulator(local_run, capsys, "--keys", "1", "--patience", "45", "--from", "+12125550177")
    assert "gives up after" in out and "We will call you back" not in out


def test_the_simulator_plays_voicemail_refused_numbers_and_a_chaotic_network(local_run, capsys):
    out = run_simulator(local_run, capsys, "--keys", "1,1,2125551299,1", "--from", "+12125550166",
                        "--agent", "alice", "--agent-answers", "voicemail,answer",
                        "--customer-answers", "refused:21215", "--duplicate", "1", "--late", "20",
                        "--watch", "120")
    assert "[network] duplicate 100%, lose 0%, delay up to 20 s (reorders)" in out
    assert "[network] Twilio refuses calls to +12125551299 (error 21215)" in out
    assert "[agent Alice] voicemail answers" in out
    assert "[customer] phone rings" not in out
    assert "callback CA" in out.rstrip().splitlines()[-1]
