"""Metrics for on-call: CloudWatch Embedded Metric Format (EMF) lines on stdout.

CloudWatch turns a log event into metrics only when the event is a bare JSON object with
an `_aws` member, so these lines are written straight to stdout, never through `logging`
(whose Lambda handler prefixes every line with its level, time and request id). One line
per webhook carries its route, status, milliseconds, CallSid, callback and attempt as
properties that Logs Insights can query: ids are properties, never dimensions (each
dimension value is a metric, billed). The one dimension is the function's name, so the
stages of one account keep their figures apart.

Off by default outside Lambda (a local run's console stays readable); tests turn it on
with a sink of their own. Phone numbers never reach a metric line: properties pass through
the same redaction as the logs.
"""
import json
import sys
import threading
import time

from callback.logs import redact

NAMESPACE = "Callback"
DIMENSION = "Function"

# The metric names: the CloudFormation alarms name these (a test checks they agree).
WEBHOOK_LATENCY = "WebhookLatency"
WEBHOOK_ERRORS = "WebhookErrors"
FALLBACK_USED = "FallbackUsed"
CALLBACKS_REQUESTED = "CallbacksRequested"
CALLBACKS_COMPLETED = "CallbacksCompleted"
CALLBACKS_EXPIRED = "CallbacksExpired"
CALLBACKS_CANCELED = "CallbacksCanceled"
CALLBACKS_REFUSED = "CallbacksRefused"
ACCOUNT_REFUSALS = "TwilioAccountRefusals"
AGENTS_AVAILABLE = "AgentsAvailable"
SWEEP_RUNS = "SweepRuns"
SWEEP_DURATION = "SweepDuration"
SWEEP_ERRORS = "SweepErrors"
TEXTS_SENT = "TextsSent"
TEXTS_FAILED = "TextsFailed"
# A change was stored but its audit entry could not be written (callback.web.trail).
AUDIT_WRITE_FAILURES = "AuditWriteFailures"
NAMES = (WEBHOOK_LATENCY, WEBHOOK_ERRORS, FALLBACK_USED, CALLBACKS_REQUESTED, CALLBACKS_COMPLETED,
         CALLBACKS_EXPIRED, CALLBACKS_CANCELED, CALLBACKS_REFUSED, ACCOUNT_REFUSALS, AGENTS_AVAILABLE,
         SWEEP_RUNS, SWEEP_DURATION, SWEEP_ERRORS, TEXTS_SENT, TEXTS_FAILED, AUDIT_WRITE_FAILURES)
UNITS = {WEBHOOK_LATENCY: "Milliseconds", SWEEP_DURATION: "Milliseconds"}

_lock = threading.Lock()
_state = {"enabled": False, "function": "local", "sink": None}


def configure(enabled, function_name=None, sink=None):
    """Turn the metric lines on or off; `sink(line)` replaces stdout (tests)."""
    with _lock:
        _state.update(enabled=bool(enabled), function=function_name or "local", sink=sink)


def emit(values, **properties):
    """One EMF line: `values` ({metric name: number}) and `properties` (queryable, not
    metrics). Never raises: a metric is never the reason a webhook fails."""
    with _lock:
        enabled, function, sink = _state["enabled"], _state["function"], _state["sink"]
    if not enabled or not values:
        return
    try:
        line = {
            "_aws": {"Timestamp": int(time.time() * 1000),
                     "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]],
                                            "Metrics": [{"Name": name, "Unit": UNITS.get(name, "Count")}
                                                        for name in values]}]},
            DIMENSION: function,
            **{key: redact(str(value)) for key, value in properties.items() if value not in (None, "")},
            **values,
        }
        text = json.dumps(line, separators=(",", ":"))
        if sink is not None:
            sink(text)
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    except Exception:  # pragma: no cover - stdout closed, a value json cannot write
        pass
