"""Metrics for on-call (#35): Embedded Metric Format lines, one per webhook, and the
counters, the sweep and Twilio's account refusals, as CloudWatch reads them."""
import json

import pytest
from test_caller_flow import enqueue_caller, enter_and_confirm

from callback import metrics
from callback.work.sweep import sweep_once


@pytest.fixture
def lines():
    return []


@pytest.fixture
def config_overrides(config_overrides, lines):
    return {**config_overrides, "METRICS": "on", "AWS_LAMBDA_FUNCTION_NAME": "callback-test",
            "DISPATCH_RUNNER": "inline", "metrics_sink": lines.append}


@pytest.fixture(autouse=True)
def metrics_off_afterwards():
    yield
    metrics.configure(False)


def emf(lines, **match):
    """The EMF documents written, as CloudWatch would parse them, that carry `match`."""
    out = []
    for line in lines:
        doc = json.loads(line)
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "Callback" and directive["Dimensions"] == [["Function"]]
        assert doc["Function"] == "callback-test"
        for metric in directive["Metrics"]:
            assert metric["Name"] in doc, "every named metric has its value in the document"
        if all(doc.get(k) == v for k, v in match.items()):
            out.append(doc)
    return out


def test_each_webhook_is_one_line_with_its_route_time_and_callsid_and_no_phone_number(twilio, main_line, lines):
    enqueue_caller(twilio)
    docs = emf(lines)
    assert len(docs) == len(lines) >= 1 and all(d["route"].startswith("/voice/") for d in docs)
    doc = docs[0]
    assert doc["status"] == "200" and doc["WebhookErrors"] == 0 and doc["WebhookLatency"] >= 0
    assert doc["CallSid"] == "CA" + "a" * 32
    enter_and_confirm(twilio, "2125551234")
    assert "2125551234" not in "\n".join(lines) and "5551234" not in "\n".join(lines)


def test_a_stored_callback_is_counted_once_it_landed(twilio, main_line, lines):
    enqueue_caller(twilio)
    enter_and_confirm(twilio, "2125551234")
    assert [d["CallbacksRequested"] for d in emf(lines, event="callbacks")] == [1]


def test_a_webhook_that_had_to_answer_its_safe_twiml_counts_as_an_error(twilio, main_line, lines, monkeypatch, svc):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(svc.storage, "hold_entry", broken)
    enqueue_caller(twilio)
    lines.clear()
    from test_caller_flow import enter

    enter(twilio, "2125551234")
    [doc] = emf(lines, route="/voice/number")
    assert doc["WebhookErrors"] == 1 and doc["status"] == "200"


def test_the_call_fallback_counts_as_fallback_used(twilio, main_line, lines):
    from conftest import PUBLIC

    twilio.post_url(f"{PUBLIC}/voice/call-fallback?leg=agent", {"CallSid": "CA" + "1" * 32})
    [doc] = emf(lines, route="/voice/call-fallback")
    assert doc["FallbackUsed"] == 1


def test_every_sweep_is_a_heartbeat_with_its_time_errors_and_agents_available(svc, main_line, lines):
    sweep_once(svc)
    [doc] = emf(lines, event="sweep")
    assert doc["SweepRuns"] == 1 and doc["SweepErrors"] == 0 and doc["SweepDuration"] >= 0
    assert doc["AgentsAvailable"] == 0


def test_metric_lines_are_off_outside_lambda_unless_asked(config_overrides, lines):
    from callback import create_app

    create_app({**config_overrides, "METRICS": "", "AWS_LAMBDA_FUNCTION_NAME": ""})
    metrics.emit({metrics.SWEEP_RUNS: 1})
    assert lines == []
