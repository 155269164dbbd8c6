"""`make call` without a running app, its options, and what the README tells a newcomer about it."""
import json
import os
import socket

import pytest

from devtools import simulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_session_file_make_call_says_start_make_run(tmp_path, capsys):
    assert simulator.main(["--session", str(tmp_path / "none.json"), "--keys", "1"]) == 2
    err = capsys.readouterr().err
    assert "no local run found — start `make run` first" in err
    assert "Traceback" not in err


def test_with_make_run_stopped_make_call_says_so_instead_of_a_traceback(tmp_path, capsys):
    port = closed_port()
    session = tmp_path / "session.json"
    session.write_text(json.dumps({"app_url": f"http://127.0.0.1:{port}", "twilio_url": f"http://127.0.0.1:{port}",
                                   "auth_token": "t", "api_token": "a", "ivr_number": "+15005550006",
                                   "speed": 1}))
    assert simulator.main(["--session", str(session), "--keys", "1", "--speed", "30"]) == 2
    err = capsys.readouterr().err
    assert "no local run found — start `make run` first" in err
    assert "ConnectionError" not in err and "Traceback" not in err


def test_unknown_behaviours_are_refused_with_the_known_ones_named():
    with pytest.raises(SystemExit, match="unknown agent behaviour 'sleepy'.*voicemail"):
        simulator.behaviours(["sleepy"], simulator.AGENT_BEHAVIOURS, "agent")
    with pytest.raises(SystemExit, match="unknown refusal code 123"):
        simulator.refusal_code(["refused:123"])
    assert simulator.refusal_code(["answer", "refused:21215"]) == 21215
    assert simulator.refusal_code(["refused"]) == 21217
    assert simulator.entered_numbers(["1", "wait", "41555", "2125551234", "12125550000#"]) == [
        "+12125551234", "+12125550000"]


def test_the_readme_tells_how_make_call_finds_the_app_and_what_the_keys_are():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = " ".join(readme[readme.index("### Try a call"):readme.index("## How a call flows")].split())
    assert ".local-data/session.json" in section
    for meaning in ("queue menu", "callback offer", "callback number"):
        assert meaning in section, meaning
    assert "carries over" in section
    for option in ("--agent-answers", "--customer-answers", "voicemail", "decline", "refused", "--duplicate",
                   "--lose", "--late", "--rest-timeout", "--patience", "--hours", "--at"):
        assert option in section, option
