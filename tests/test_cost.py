"""The soak's bill: Twilio's per-call rounding, answered time only, and the price of a
completed callback."""
from types import SimpleNamespace

import pytest

from bench.cost import (
    CONFERENCE_PER_PARTICIPANT_MINUTE,
    INBOUND_PER_MINUTE,
    MACHINE_DETECTION_PER_CALL,
    OUTBOUND_PER_MINUTE,
    billed_minutes,
    run_cost,
)


@pytest.mark.parametrize("seconds, minutes", [(0, 0), (-3, 0), (1, 1), (60, 1), (61, 2), (78, 2)])
def test_each_call_is_billed_in_whole_minutes_rounded_up(seconds, minutes):
    assert billed_minutes(seconds) == minutes


def call(kind, started, ended, answered=None, direction="outbound-api"):
    return SimpleNamespace(kind=kind, started=started, ended=ended, answered=answered, direction=direction)


def test_a_completed_callback_costs_its_answered_minutes_and_ringing_nobody_answered_is_free():
    records = [
        call("caller", 0, 90, direction="inbound"),   # held 1.5 min: 2 inbound minutes
        call("agent", 100, 190, answered=105),        # 85 s answered: 2 minutes, in the conference
        call("customer", 110, 180, answered=115),     # 65 s: 2 minutes, in the conference, detected
        call("customer", 300, 330),                   # rang, nobody answered: free
    ]
    cost = run_cost(records, completed=1)
    assert cost.callers_holding == pytest.approx(2 * INBOUND_PER_MINUTE)
    assert cost.agent_legs == pytest.approx(2 * OUTBOUND_PER_MINUTE)
    assert cost.customer_legs == pytest.approx(2 * OUTBOUND_PER_MINUTE)
    assert cost.conference == pytest.approx(4 * CONFERENCE_PER_PARTICIPANT_MINUTE)
    assert cost.machine_detection == pytest.approx(MACHINE_DETECTION_PER_CALL)
    assert cost.per_completed == pytest.approx(cost.total)
    assert "per completed callback" in cost.line()
    assert run_cost(records, completed=0).per_completed is None
