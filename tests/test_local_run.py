"""`make run`'s app in its own process, and the simulator walking whole journeys against it."""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import requests

from devtools import simulator

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
    log = workdir / "run.log"
    port, twilio_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": ROOT, "LOCAL_ADMIN_PASSWORD": "local-pass-123"}
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    # Output goes to a file, not a pipe nobody reads until the end: a full pipe would
    # block the app mid-test.
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.local", "--port", str(port), "--twilio-port", str(twilio_port),
             "--speed", "60", "--session", str(session)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if (requests.get(f"http://127.0.0.1:{port}/login", timeout=1).ok and session.exists()
                    and "Stop with Ctrl-C" in log.read_text()):
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the local run did not start: " + log.read_text()[-2000:])
    with open(session) as f:
        token = json.load(f)["api_token"]
    yield {"session": str(session), "url": f"http://127.0.0.1:{port}", "process": process,
           "banner": log.read_text(), "token": token}
    process.terminate()
    process.wait(timeout=20)


def local_api(local_run, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {local_run['token']}"}
    return requests.request(method, local_run["url"] + path, headers=headers, timeout=5, **kwargs)


def test_the_printed_admin_url_opens_the_portal(local_run):
    url = re.search(r"Admin portal: +(\S+)", local_run["banner"]).group(1)
    assert "(user: admin, password: local-pass-123)" in local_run["banner"]
    for address in (url, url + "/"):
        response = requests.get(address, timeout=5)
        # Signed out, straight to the login; signed in, /admin leads to the role's first page.
        assert response.status_code == 200
        assert response.url.endswith(("/login?next=/admin", "/login?next=/admin/"))
        assert 'name="password"' in response.text


def test_the_start_up_banner_gives_the_api_token_and_a_curl_line_that_works(local_run):
    assert f"bearer token: {local_run['token']}" in local_run["banner"]
    line = next(l for l in local_run["banner"].splitlines() if l.strip().startswith("curl "))
    words = shlex.split(line)
    header, url = words[words.index("-H") + 1], words[-1]
    name, _, value = header.partition(": ")
    response = requests.get(url, headers={name: value}, timeout=5)
    assert response.status_code == 200 and "callbacks" in response.json()


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
    # The watch ends as soon as the callback is final: its length is only a ceiling, and the
    # app's real seconds of work count against it at 60 simulated seconds each on a loaded machine.
    out = run_simulator(local_run, capsys, "--keys", "1,1,41555,2125551234,1", "--agent", "alice",
                        "--customer-answers", "no-answer,answer", "--watch", "2400")
    assert "Press 1 to be called back" in out
    assert "too short" in out
    assert "We will call you back at 2 1 2, 5 5 5, 1 2 3 4" in out
    assert "Callback for Sales, to 2 1 2, 5 5 5, 1 2 3 4" in out
    assert "The callback will be retried later" in out, out
    # The demo detects asynchronously: the greeting, inline on the create, names "announce as"
    # and the agent.
    assert "this is Example Company returning your call, connecting you with Alice" in out
    assert out.rstrip().endswith(": completed")


def sign_out_agents(local_run, deadline_seconds=30):
    """Every demo agent offline. One still on a call from an earlier test (tests run in any
    order) cannot sign out until it ends: 409, so ask again until the call is over."""
    deadline = time.time() + deadline_seconds
    for agent_id in ("alice", "bob"):
        while local_api(local_run, "PUT", f"/api/agents/{agent_id}/status",
                        json={"status": "offline"}).status_code == 409 and time.time() < deadline:
            time.sleep(0.3)
    states = {a["id"]: a["status"] for a in local_api(local_run, "GET", "/api/agents").json()["agents"]}
    assert set(states.values()) == {"offline"}, states


def test_scripted_journey_a_caller_chooses_a_time(local_run, capsys):
    # Sales, 2 (a time), the number, 1 (right), the first slot offered, 1 (right). The slot
    # is 15 to 45 minutes away: the callback waits for it (its call in the slot is the
    # journey test's in test_slots.py, on a clock walked by hand). Nobody takes the caller
    # from hold meanwhile: the agents are signed out until the caller is done.
    sign_out_agents(local_run)
    out = run_simulator(local_run, capsys, "--keys", "1,2,2125551277,1,1,1", "--from", "+12125550177",
                        "--agent", "alice", "--watch", "60")
    assert "Or press 2 to choose a time for our call." in out
    assert "We can call you back at these times. For " in out
    assert "within half an hour. Press 1 if that is right" in out
    assert "[agent Alice] phone rings" not in out
    callback_id = out.rstrip().rsplit(" ", 2)[-2].rstrip(":")
    assert out.rstrip().endswith(f"callback {callback_id}: pending")
    window = local_api(local_run, "GET", f"/api/callbacks/{callback_id}").json()["callback"]["window"]
    assert window["earliest"] and window["latest"]


def test_scripted_journey_a_caller_leaves_a_message_heard_then_called_back(local_run, capsys):
    # Sales, then 3 at the offer: the caller leaves the queue, records 25 s, hangs up; the
    # agent hears the whisper and the message, then the caller's own number is called back.
    # Agents signed out first: the run's agents outlive each test, and one free would take
    # the caller from hold before the offer (--agent signs Alice in once the caller is done).
    for agent_id in ("alice", "bob"):
        local_api(local_run, "PUT", f"/api/agents/{agent_id}/status", json={"status": "offline"})
    out = run_simulator(local_run, capsys, "--voicemail", "25", "--keys", "1,3", "--from", "+12125550166",
                        "--agent", "alice", "--watch", "2400")
    assert "Or press 3 to leave a message" in out and "leaves the queue" in out
    assert "leaves a message of 25 s" in out and "Your message is saved" in out
    assert "Voicemail for Sales from 2 1 2, 5 5 5, 0 1 6 6, 25 seconds. Press 1 to hear it" in out
    heard = out[out.index("Press 1 to hear it"):]
    # The message plays to the agent before the customer's phone rings.
    assert "/voice/voicemail/audio/" in heard
    assert heard.index("/voice/voicemail/audio/") < heard.index("[customer] phone rings")
    assert "calling back about your message" in out
    assert out.rstrip().endswith(": completed")
    local_api(local_run, "PUT", "/api/ivrs/Main%20Line/settings", json={"voicemail_enabled": False})


def test_scripted_journey_holding_caller_goes_straight_to_a_free_agent(local_run, capsys):
    out = run_simulator(local_run, capsys, "--ready", "bob", "--keys", "2", "--from", "+12125550188")
    assert "is taken out of the queue" in out and "Caller from Support" in out


def test_an_agent_who_took_a_holding_caller_is_free_once_make_call_returns(local_run, capsys):
    out = run_simulator(local_run, capsys, "--ready", "bob", "--keys", "2", "--from", "+12125550199",
                        "--late", "30", "--seed", "3")
    assert "is taken out of the queue" in out
    deadline = time.time() + 10
    while (status := local_api(local_run, "GET", "/api/agents").json()["agents"]) and time.time() < deadline:
        if next(a for a in status if a["id"] == "bob")["status"] == "available":
            break
        time.sleep(0.3)
    assert next(a for a in status if a["id"] == "bob")["status"] == "available", status


def test_local_data_survives_a_restart_through_the_persist_file(svc, main_line, tmp_path):
    from callback.storage import Storage
    from devtools.local import export_tables, import_tables

    path = tmp_path / "db.json"
    export_tables(svc.storage, str(path))
    same = Storage(svc.config)
    for model in same.models:
        model.delete_table()
    same.create_tables()
    assert import_tables(same, str(path)) >= 1
    assert same.get_ivr("Main Line").queue("Sales").priority == 10


def set_offline_once_free(local_run, agent_id, seconds=60):
    """Set an agent offline; one still busy with an earlier test's call (its final status
    or conference end still on the way) is refused with 409 until that call is over."""
    deadline = time.monotonic() + seconds
    while True:
        response = local_api(local_run, "PUT", f"/api/agents/{agent_id}/status", json={"status": "offline"})
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_a_caller_who_never_presses_anything_gives_up_and_is_forgotten(local_run, capsys):
    for agent_id in ("alice", "bob"):
        response = set_offline_once_free(local_run, agent_id)
        assert response.status_code == 200, response.text
    threads = set(threading.enumerate())
    out = run_simulator(local_run, capsys, "--keys", "1", "--patience", "45", "--from", "+12125550177")
    assert "gives up after" in out and "We will call you back" not in out
    # Its phones are put down too: a simulator thread left running would go on answering
    # the next run's calls in the same process.
    left = [t for t in threading.enumerate() if t not in threads]
    for thread in left:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in left)


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


def test_a_speed_asked_for_by_one_call_ends_with_that_call(local_run, capsys):
    for agent_id in ("alice", "bob"):
        local_api(local_run, "PUT", f"/api/agents/{agent_id}/status", json={"status": "offline"})
    run_simulator(local_run, capsys, "--keys", "wait", "--patience", "30", "--speed", "300",
                  "--from", "+12125550155")
    clock = local_api(local_run, "GET", "/_local/clock").json()
    assert clock["speed"] == clock["run_speed"] == 60


def test_make_call_runs_the_clock_across_closing_time(local_run, capsys):
    """The IVR closes at 16:59 and opens again at 17:20: the caller holds from 16:58, is
    offered a callback at the opening, and is called back only then."""
    for agent_id in ("alice", "bob"):
        local_api(local_run, "PUT", f"/api/agents/{agent_id}/status", json={"status": "offline"})
    try:
        out = run_simulator(local_run, capsys, "--hours", "00:00-16:59,17:20-24:00", "--at", "16:58",
                            "--keys", "1,1,2125550188,1", "--from", "+12125550166", "--agent", "alice",
                            "--speed", "120", "--watch", "3600")
        assert "the app's clock jumps to" in out and "16:58" in out
        assert "Press 1 to be called back when we open, today at 5:20 PM" in out
        assert "expect our call after we open, today at 5:20 PM" in out
        assert out.rstrip().endswith(": completed")
        callback = [c for c in local_api(local_run, "GET", "/api/callbacks").json()["callbacks"]
                    if c["number"] == "+12125550188"][0]
        started = datetime.fromisoformat(callback["history"][0]["started_at"])
        assert started.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") >= "17:20"
    finally:
        local_api(local_run, "PUT", "/api/ivrs/Main%20Line/hours", json={"weekly": {
            day: "24h" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})


def test_the_local_clock_controls_need_the_token_and_a_sane_speed(local_run):
    assert requests.get(local_run["url"] + "/_local/clock", timeout=5).status_code == 401
    for speed in (0, 5000, "60", True, None):
        assert local_api(local_run, "POST", "/_local/clock", json={"speed": speed}).status_code == 400
    for at in ("tomorrow", "2026-01-05T16:58", 1700000000):
        assert local_api(local_run, "POST", "/_local/clock", json={"at": at}).status_code == 400
    before = datetime.fromisoformat(local_api(local_run, "GET", "/_local/clock").json()["now"])
    local_api(local_run, "POST", "/_local/clock", json={"at": "2001-01-01T00:00:00+00:00"})
    assert datetime.fromisoformat(local_api(local_run, "GET", "/_local/clock").json()["now"]) >= before
    assert local_api(local_run, "GET", "/_local/clock").json()["speed"] == 60


class Sweeps:
    """Counts the sweeps sweep_forever runs, and lets a test wait for the next one."""

    def __init__(self):
        self.count, self.ran = 0, threading.Event()

    def __call__(self, svc):
        self.count += 1
        self.ran.set()

    def wait_for_one(self):
        self.ran.clear()
        return self.ran.wait(timeout=30)


def test_the_local_sweep_follows_the_clock_speed_as_it_changes(monkeypatch):
    from callback.clock import ScaledClock
    from callback.work import sweep
    from devtools import local

    sweeps = Sweeps()
    monkeypatch.setattr(sweep, "sweep_once", sweeps)
    svc = SimpleNamespace(clock=ScaledClock(1))
    stop = threading.Event()
    thread = threading.Thread(target=local.sweep_forever, args=(svc, stop), daemon=True)
    sweeps.ran.clear()
    thread.start()
    try:
        assert sweeps.ran.wait(timeout=30), "no sweep at start-up"
        # A minute of app time at x600 is a tenth of a second: the next sweep must not
        # wait for the minute measured at the old speed.
        svc.clock.set_speed(600)
        assert sweeps.wait_for_one() and sweeps.wait_for_one()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_local_sweep_keeps_going_after_a_failed_run(monkeypatch, caplog):
    from callback.clock import FixedClock
    from callback.work import sweep
    from devtools import local

    calls = Sweeps()

    def failing(svc):
        calls(svc)
        raise RuntimeError("DynamoDB went away")

    monkeypatch.setattr(sweep, "sweep_once", failing)
    svc = SimpleNamespace(clock=FixedClock())
    stop = threading.Event()
    thread = threading.Thread(target=local.sweep_forever, args=(svc, stop), kwargs={"tick": 0.05}, daemon=True)
    thread.start()
    try:
        assert calls.ran.wait(timeout=30)
        svc.clock.advance(seconds=61)
        assert calls.wait_for_one()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert calls.count == 2 and "scheduled sweep failed" in caplog.text


def test_make_run_passes_its_args_to_the_local_run():
    out = subprocess.run(["make", "-n", "run", "ARGS=--speed 30 --port 5400"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m devtools.local --speed 30 --port 5400" in out


def test_the_readme_documents_every_setting_of_app_and_local_run():
    import ast
    from dataclasses import fields

    from callback.config import Config

    names = {f.name for f in fields(Config) if f.name != "extra"}
    for module in ("local.py",):
        tree = ast.parse(open(os.path.join(ROOT, "devtools", module)).read())
        names |= {node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get"
                  and getattr(node.func.value, "attr", "") == "environ"
                  and node.args and isinstance(node.args[0], ast.Constant)}
    readme = open(os.path.join(ROOT, "README.md")).read()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.M))
    assert {"PORT", "TWILIO_STANDIN_PORT", "LOCAL_CLOCK_SPEED", "LOCAL_PERSIST_FILE"} <= names
    assert names - documented == set()


def test_make_call_shows_the_confirmation_text_and_a_reply_of_the_cancel_word_cancels(local_run, capsys):
    # No agent takes the callback before the reply: an earlier test may have left one available.
    for agent_id in ("alice", "bob"):
        local_api(local_run, "PUT", f"/api/agents/{agent_id}/status", json={"status": "offline"})
    out = run_simulator(local_run, capsys, "--keys", "1,1,3125550142,1", "--from", "+12125550190",
                        "--sms-reply", "C", "--watch", "60")
    assert "[customer's phone] text: Example Company: your callback request (Sales) is saved" in out
    assert "Reply C to cancel. Reply STOP to stop texts." in out and "text delivered" in out
    assert "texts back: C" in out and "(Sales) is cancelled" in out
    assert out.rstrip().endswith(": canceled")
