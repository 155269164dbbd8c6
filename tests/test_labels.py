"""Plain words for stored codes: every code the app writes has one, unknown ones still read."""
import ast
import os

import pytest

from callback.domain import labels
from callback.domain import records as m
from callback.domain.numbers import for_people, mask_for_list

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "callback")
# Calls whose outcome argument is written to an attempt (EndAttempt: the attempt table's).
FAILING_CALLS = {"fail_counted", "fail_uncounted", "fail_attempt", "end_attempt", "EndAttempt"}


def written_codes():
    """Outcome and ended-reason codes as string literals in the code that writes them."""
    outcomes, reasons = set(), set()
    paths = [os.path.join(folder, name) for folder, _, names in os.walk(ROOT) for name in names]
    for path in paths:
        if not path.endswith(".py"):
            continue
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = getattr(node.func, "attr", getattr(node.func, "id", ""))
                values = [(k.arg, k.value) for k in node.keywords]
                if func in FAILING_CALLS:
                    values += [("outcome", a) for a in node.args]
                expiring = node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value is True
                if func == "RetryDecision" and expiring:
                    values += [("reason", a) for a in node.args]
                for key, value in values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        if key == "outcome":
                            outcomes.add(value.value)
                        elif key == "reason":
                            reasons.add(value.value)
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("CUSTOMER_FAILURES",
                                                                                  "FINAL_CALL_STATUSES"):
                outcomes |= {e.value for e in node.value.elts}
    # The attempt table's "{status}" stands for Twilio's final status, listed above.
    outcomes.discard("{status}")
    return outcomes, reasons


def test_every_code_the_app_writes_has_plain_words():
    outcomes, reasons = written_codes()
    assert {"dial-error", "agent-declined", "machine", "no-answer", "number-refused"} <= outcomes
    assert {"max-retries", "expiration-time", "canceled by admin"} <= reasons
    missing = sorted(outcomes - set(labels.OUTCOME_LABELS)) + sorted(reasons - set(labels.ENDED_REASON_LABELS))
    assert not missing, f"give these codes a label in callback/domain/labels.py: {missing}"
    assert set(m.CALLBACK_STATUSES) <= set(labels.CALLBACK_STATUS_LABELS)
    assert set(m.AGENT_STATUSES) <= set(labels.AGENT_STATUS_LABELS)


@pytest.mark.parametrize("code, shown", [
    ("completed", "Completed"), ("agent-leg-lost", "Agent's call was lost"), ("dial-error", "Could not dial"),
    (None, "In progress"), ("queue-closed", "Queue closed"), ("odd_code", "Odd code"), ("", "—")])
def test_outcomes_read_as_words_even_when_unknown(code, shown):
    assert labels.outcome_label(code) == shown


@pytest.mark.parametrize("number, listed, full", [
    ("+12125551234", "(212) ***-1234", "(212) 555-1234"),
    ("+442071838750", "+********8750", "+442071838750"),
    ("sip:alice@example.com", "sip:***", "sip:alice@example.com"),
    ("", "-", "—"), (None, "-", "—")])
def test_lists_show_enough_of_a_number_to_tell_it_apart_and_never_all(number, listed, full):
    assert mask_for_list(number) == listed
    assert for_people(number) == full
    if number and number.startswith("+"):
        assert number not in listed and number[-7:] not in listed.replace("-", "")
