"""`make soak`: its checks find each violation in records made for the purpose, it keeps the
other sections of bench/RESULTS.md, and a short seeded run ends by itself with every count."""
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from bench.soak import Desk, StormyHandoff, soak_section, write_results
from bench.soak_checks import (
    Owner,
    Sighting,
    available_while_on_call,
    calls_no_attempt_owns,
    check_agents,
    check_callbacks,
    overlapping_calls,
    owner_named,
    rung_outside_hours,
    rung_while_live,
    warned_callbacks,
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


def test_a_phone_rung_while_a_call_to_or_from_it_is_live_is_found_whoever_it_is():
    records = [
        # An agent's phone: a call placed over one still ringing, then one after it ended.
        record("CA1", "+1", 0, 30), record("CA2", "+1", 20, 40), record("CA3", "+1", 40, 50),
        # A customer holding in a queue (their own call in) is rung back meanwhile.
        record("CA4", "+2", 0, 100, kind="caller", direction="inbound"),
        record("CA5", "+2", 60, 70, kind="customer"),
        # A call still live at the end, and one placed over it.
        record("CA6", "+3", 0, None, kind="customer"), record("CA7", "+3", 500, 510, kind="customer"),
        # Two calls in from one number overlap: nobody was rung.
        record("CA8", "+4", 0, 50, kind="caller", direction="inbound"),
        record("CA9", "+4", 10, 20, kind="caller", direction="inbound"),
    ]
    assert rung_while_live(records) == [("+1", "CA1", "CA2"), ("+2", "CA4", "CA5"), ("+3", "CA6", "CA7")]


def test_calls_one_after_another_on_every_phone_pass():
    records = [record("CA1", "+1", 0, 30), record("CA2", "+1", 30, 60),
               record("CA3", "+2", 0, 10, kind="caller", direction="inbound"),
               record("CA4", "+2", 10, 90, kind="customer"), record("CA5", "+3", 0, 20, kind="customer")]
    assert rung_while_live(records) == []


AGENT_URL = "https://x/voice/agent/answer?kind=callback&key=CB1&attempt=a1&agent=a00"
CUSTOMER_STATUS = "https://x/voice/customer/status?callback=CB1&attempt=a1"
OFFER_STATUS = "https://x/voice/agent/status?kind=call&key=CAcaller&attempt=o1&agent=a01"


def test_the_attempt_or_offer_a_placed_call_belongs_to_is_read_from_its_urls():
    assert owner_named(AGENT_URL, None) == Owner("callback", "CB1", "a1")
    assert owner_named("https://x/voice/customer/answer?leg=L1", CUSTOMER_STATUS) == Owner("callback", "CB1",
                                                                                              "a1")
    assert owner_named(None, OFFER_STATUS) == Owner("call", "CAcaller", "o1")
    assert owner_named("https://x/voice/notice?message=retry", "https://x/voice/agent/status?leg=L2") is None


def test_a_placed_call_outliving_its_attempt_alone_or_live_at_the_drain_is_owned_by_nothing():
    sightings = [
        # Stranded: its attempt ended at 100, the agent still alone in the conference at 170.
        *(Sighting(t, "CAstranded", t < 100) for t in range(0, 175, 5)),
        # Its attempt ended, the leg hung up 30 s later: within the grace.
        *(Sighting(t, "CAnotice", t < 100) for t in range(0, 135, 5)),
        # The offer ended when the caller joined the agent; talking since, so owned.
        *(Sighting(t, "CAtalking", True) for t in range(0, 300, 5)),
        # Unowned for 50 s, then owned again (a late read), then ended: never 60 s on end.
        *(Sighting(t, "CAflicker", not 10 <= t <= 60) for t in range(0, 120, 5)),
    ]
    found = dict(calls_no_attempt_owns(sightings, grace=60, live_at_drain=["CAleft"]))
    assert set(found) == {"CAstranded", "CAleft"}
    assert found["CAstranded"].startswith("live 60 s after its attempt or offer ended")
    assert found["CAleft"] == "still live when the soak drained"


def test_placed_calls_that_all_end_with_their_attempts_pass():
    sightings = [Sighting(t, sid, t < 100) for sid in ("CA1", "CA2") for t in range(0, 150, 10)]
    assert calls_no_attempt_owns(sightings, grace=60) == []


def test_an_agent_available_while_a_call_to_their_phone_is_live_all_along_is_found():
    agents = [Agent("a1", "A", "+1", status="available"), Agent("a2", "B", "+2", status="available"),
              Agent("a3", "C", "+3", status="busy"), Agent("a4", "D", "+4", status="available")]
    before = {"CA1": record("CA1", "+1", 0, None), "CA3": record("CA3", "+3", 0, None),
              "CA4": record("CA4", "+4", 0, None)}
    # CA2 was placed after the agents were read (the dispatch that rang a2): not a finding.
    # CA4 ended while they were read: the app may have seen it end.
    after = {"CA1": before["CA1"], "CA2": record("CA2", "+2", 5, None), "CA3": before["CA3"]}
    assert available_while_on_call(agents, before, after) == [("a1", "CA1")]


def test_agents_available_with_no_call_or_on_a_call_and_busy_pass():
    agents = [Agent("a1", "A", "+1", status="available"), Agent("a2", "B", "+2", status="busy")]
    live = {"CA2": record("CA2", "+2", 0, None)}
    assert available_while_on_call(agents, live, live) == []


def test_a_stormy_hand_off_runs_dispatch_late_twice_or_never_as_its_seed_says():
    from types import SimpleNamespace

    ran = []
    dispatcher = SimpleNamespace(dispatch=lambda queue_names=None: ran.append(queue_names))
    svc = SimpleNamespace(dispatcher=dispatcher)
    twice = StormyHandoff(seed=1, index=0, speed=1000, late=1, twice=1.0, lost=0.0)
    twice.svc = svc
    twice.submit(["Sales"])
    never = StormyHandoff(seed=1, index=1, speed=1000, late=1, twice=0.0, lost=1.0)
    never.svc = svc
    never.submit(["Support"])
    deadline = time.time() + 5
    while len(ran) < 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert ran == [["Sales"], ["Sales"]]


def test_the_books_of_a_run_name_each_finding_with_the_calls_it_saw():
    from collections import Counter
    from types import SimpleNamespace

    from bench.soak import check

    def placed(sid, number, kind, started, ended, url):
        return CallRecord(sid, number, kind, "outbound-api", started, ended, url=url)

    sales = "https://x/voice/customer/answer?callback=CBsales&attempt=a1"
    support = "https://x/voice/customer/answer?callback=CBsupport&attempt=b1"
    records = [placed("CA1", "+12125550100", "customer", 0, 60, sales),
               placed("CA2", "+12125550100", "customer", 30, 40, support),
               placed("CA3", "+14155550001", "agent", 0, 200, AGENT_URL)]
    from callback.domain.settings import CallbackSettings

    storage = SimpleNamespace(list_callbacks=lambda **kwargs: ([], None), list_agents=lambda: [],
                              get_ivr=lambda name: SimpleNamespace(settings=CallbackSettings()))
    network = SimpleNamespace(records=records, talks={}, stats={}, longest_queued=0,
                              webhooks=SimpleNamespace(errors=[], sent=0))
    watch = SimpleNamespace(sightings=[Sighting(t, "CA3", t < 100) for t in range(0, 200, 10)],
                            available={("a00", "CA3"): 150.0}, samples=20)
    run = SimpleNamespace(svc=SimpleNamespace(storage=storage), network=network, watch=watch,
                          plan=SimpleNamespace(max_retries=3, unowned_grace=30), live_at_drain={},
                          requested={}, refused={}, worker_logs=[],
                          standin=SimpleNamespace(fault_counts=Counter(), requests=[]))
    findings = {f.name: f.examples for f in check(run)["findings"]}
    # One number, a callback in each queue: each call names its own.
    assert findings["two live calls to one customer"] == [
        "customer 0100 (callback CBsales / CBsupport): CA1 (0:00–1:00, None, live) / "
        "CA2 (0:30–0:40, None, live)"]
    assert findings["phones rung while a call to them was live"][0].startswith("customer 0100: CA2")
    assert findings["placed calls no attempt or offer owns"] == [
        "agent 0001: CA3 (0:00–3:20, None, live) (callback CB1 a1): live 30 s after its attempt or offer "
        "ended, talking with nobody"]
    assert findings["agents available while on a call"] == [
        "a00 at 2:30 during CA3 (0:00–3:20, None, live)"]


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
    assert lost.examples[-1].endswith("never warned of a machine)")
    warned = warned_callbacks([{"params": {"AnnounceUrl": [
        "https://x.example/voice/agent/machine-notice?callback=voicemail&attempt=A1"]}}, {"params": {}},
        {"params": {"AnnounceUrl": ["https://x.example/voice/other?callback=pending"]}}])
    assert warned == {"voicemail"}
    *_, lost_warned = check_callbacks(callbacks, requested, 3, talks, warned)
    assert lost_warned.examples[-1].endswith("the line hung up before their star)")
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


def test_an_eager_agent_sets_themselves_available_right_after_declining_until_the_app_agrees():
    from types import SimpleNamespace

    fast = SimpleNamespace(timeline=SimpleNamespace(real=lambda seconds: seconds / 1000))
    run = SimpleNamespace(plan=SimpleNamespace(seed=1), eager_agents={"+1": "a01"}, network=fast)
    desk = Desk(run, [])
    asked, answers = [], iter([409, 200])  # still on the call at first
    desk.set_status = lambda agent_id, status: asked.append((agent_id, status)) or next(answers)
    desk.key_pressed(SimpleNamespace(number="+1", calls=3), "2")
    desk.key_pressed(SimpleNamespace(number="+1", calls=4), "1")  # accepting: nothing to do
    desk.key_pressed(SimpleNamespace(number="+2", calls=1), "2")  # not an eager agent
    deadline = time.time() + 5
    while len(asked) < 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert asked == [("a01", "available")] * 2


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
        "two live calls to one agent", "two live calls to one customer",
        "phones rung while a call to them was live", "customers rung outside their hours",
        "placed calls no attempt or offer owns",
        "agents available while on a call", "attempts over Max Retries",
        "attempts different from the counted history",
        "callbacks neither finished nor pending with a closed history", "callbacks lost",
        "agents left busy or reserved", "webhook answers that were not TwiML"}
    assert report["violations"] == sum(report["findings"].values())
    assert (result.returncode == 1) == (report["violations"] > 0)
    # Callers asked through the real IVR, and every callback asked for is accounted for.
    assert report["requested"] >= 12
    assert sum(report["statuses"].values()) + report["findings"]["callbacks lost"] >= report["requested"]


def test_an_overlap_example_says_when_each_call_lived_and_how_it_went():
    from bench.soak_checks import call_summary

    live = CallRecord("CA1", "+1", "agent", "outbound-api", 75, None, behaviour="human")
    over = CallRecord("CA2", "+1", "agent", "outbound-api", 61, 140.5, outcome="no-answer", behaviour="no-answer")
    assert call_summary(live) == "CA1 (1:15–…, human, live)"
    assert call_summary(over) == "CA2 (1:01–2:20, no-answer, no-answer)"


def test_a_customer_rung_outside_their_hours_is_found_and_one_inside_them_is_not():
    """The model's log says when Twilio took each call; the customer's window says whether
    that was in their hours (08:00-20:00 where their number is)."""
    from callback.domain.settings import CallbackSettings

    def placed(sid, number, at, kind="customer"):
        return CallRecord(sid, number, kind, "outbound-api", 0, 1, placed_at=at)

    seven_in_sf = T0 + timedelta(hours=1)  # 15:00 UTC: 07:00 in San Francisco, 10:00 in New York
    records = [placed("CA1", "+14155550188", seven_in_sf), placed("CA2", "+12125550100", seven_in_sf),
               placed("CA3", "+14155550188", T0 + timedelta(hours=2)),
               placed("CA4", "+14155550101", seven_in_sf, kind="agent")]
    found = rung_outside_hours(records, CallbackSettings().customer_clock)
    assert [r.sid for r in found] == ["CA1"]
