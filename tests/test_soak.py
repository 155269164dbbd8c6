"""`make soak`: its checks find each violation in records made for the purpose, it keeps the
other sections of bench/RESULTS.md, and a short seeded run ends by itself with every count."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bench.soak import (
    Desk,
    check_agents,
    check_callbacks,
    overlapping_calls,
    soak_section,
    write_results,
)
from callback.domain.records import Agent, Attempt, Callback
from devtools.twilio_model import CallRecord

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def record(sid, number, started, ended, kind="agent", direction="outbound-api"):
    return CallRecord(sid, number, kind, direction, started, ended)


def test_two_live_calls_to_one_number_are_found_and_one_after_another_are_not():
    records = [record("CA1", "+1", 0, 30), record("CA2", "+1", 30, 60),  # back to back: fine
               record("CA3", "+2", 0, 100), record("CA4", "+2", 50, 60),  # overlap
               record("CA5", "+2", 70, None),  # still live at the end, overlaps CA3
               record("CA6", "+3", 0, 100, kind="customer"),
               record("CA7", "+3", 10, 20, kind="caller", direction="inbound")]  # their own call in
    assert overlapping_calls(records, ("agent",)) == [("+2", "CA3", "CA4"), ("+2", "CA3", "CA5")]
    assert overlapping_calls(records, ("customer",)) == []


def callback(cb_id, status="completed", attempts=0, history=(), number="+12125550100"):
    return Callback(cb_id, number, "Main Line", "Sales", T0, T0, 10, T0, T0, status=status,
                    attempts=attempts, history=tuple(history))


def attempt(outcome="busy", counted=True, ended=True):
    return Attempt("a", T0, "a00", outcome, T0 if ended else None, counted)


def test_each_callback_violation_is_counted_with_its_id():
    callbacks = {
        "ok": callback("ok", history=[attempt("busy"), attempt("completed", counted=False)], attempts=1,
                       number="+1"),
        "over": callback("over", status="expired", attempts=4, history=[attempt()] * 4, number="+2"),
        "miscounted": callback("miscounted", status="pending", attempts=2, history=[attempt()], number="+3"),
        "open": callback("open", status="pending", attempts=0, history=[attempt(None, False, False)],
                         number="+4"),
        "dialing": callback("dialing", status="dialing", number="+5"),
        "voicemail": callback("voicemail", number="+6"),
        "pending": callback("pending", status="pending", attempts=1, history=[attempt()], number="+7"),
    }
    requested = {cb_id: cb.number for cb_id, cb in callbacks.items()}
    requested["vanished"] = "+8"
    requested["told-already-pending"] = "+7"  # a second call from a number that has one
    talks = {"+1": 42.0}
    over, miscounted, unsettled, lost = check_callbacks(callbacks, requested, 3, talks)
    assert [e.split()[0] for e in over.examples] == ["over"]
    assert [e.split()[0] for e in miscounted.examples] == ["miscounted"]
    assert [e.split()[0] for e in unsettled.examples] == ["open", "dialing"]
    assert [e.split()[0] for e in lost.examples] == ["vanished", "voicemail"]


def test_agents_left_busy_or_reserved_are_counted():
    agents = [Agent("a1", "A", "+1", status="available"), Agent("a2", "B", "+2", status="busy"),
              Agent("a3", "C", "+3", status="reserved"), Agent("a4", "D", "+4", status="offline")]
    assert check_agents(agents).examples == ["a2 (busy)", "a3 (reserved)"]


def test_a_desk_break_starts_when_the_agent_goes_offline():
    from types import SimpleNamespace

    desk = Desk(SimpleNamespace(plan=SimpleNamespace(seed=1)), [])
    agent = SimpleNamespace(agent_id="a00", status="offline")
    assert desk.wanted(agent, 0) is None  # offline at the start of the day, seen once
    agent.status = "available"
    assert desk.wanted(agent, 10) is None
    # Set away much later (a decline): a whole break, not at once, so their call has ended.
    agent.status = "offline"
    assert [desk.wanted(agent, t) for t in (200, 229)] == [None, None]
    assert desk.wanted(agent, 321) == "available"
    desk.draining.set()
    agent.status = "available"
    assert desk.wanted(agent, 400) == "offline"


def test_results_keep_the_other_sections(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Webhook cost\n\nrows\n\n## Dispatch\n\nmore rows\n")
    write_results(["first run"], str(path))
    write_results(["second run"], str(path))
    text = path.read_text()
    assert text.count("## Soak") == 1 and "second run" in text and "first run" not in text
    assert "## Webhook cost\n\nrows" in text and "## Dispatch\n\nmore rows" in text
    assert soak_section(text).startswith("## Soak") and "second run" in soak_section(text)


@pytest.mark.slow
def test_a_short_seeded_soak_ends_by_itself_and_reports_every_count(tmp_path):
    out = tmp_path / "soak.json"
    result = subprocess.run([sys.executable, "-m", "bench.soak", "--smoke", "--seed", "3", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=400,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["seed"] == 3 and "seed 3" in result.stdout
    assert set(report["findings"]) == {
        "two live calls to one agent", "two live calls to one customer", "attempts over Max Retries",
        "attempts different from the counted history",
        "callbacks neither finished nor pending with a closed history", "callbacks lost",
        "agents left busy or reserved", "webhook answers that were not TwiML"}
    assert report["violations"] == sum(report["findings"].values())
    assert (result.returncode == 1) == (report["violations"] > 0)
    # Callers asked through the real IVR, and every callback asked for is accounted for.
    assert report["requested"] >= 12
    assert sum(report["statuses"].values()) + report["findings"]["callbacks lost"] >= report["requested"]


def test_an_overlap_example_says_when_each_call_lived_and_how_it_went():
    from bench.soak import _call

    live = CallRecord("CA1", "+1", "agent", "outbound-api", 75, None, behaviour="human")
    over = CallRecord("CA2", "+1", "agent", "outbound-api", 61, 140.5, outcome="no-answer", behaviour="no-answer")
    assert _call(live) == "CA1 (1:15–…, human, live)"
    assert _call(over) == "CA2 (1:01–2:20, no-answer, no-answer)"
