"""What a run cost at Twilio, from the model's call log: the price of a completed callback.

Twilio bills voice per call, each call's minutes rounded up (a call of 1 min 18 s is two
minutes), answered time only (ringing that nobody answers is free); a conference bills each
participant's minutes the same way, and answering-machine detection a fee per call that
uses it. The prices are Twilio's published US list prices for a local number as this was
written (volume discounts start at 500,000 minutes a month): check twilio.com/en-us/voice/pricing
before quoting them. Texts are left out here (they are counted per segment by the texts
feature).
"""
import math
from dataclasses import dataclass

OUTBOUND_PER_MINUTE = 0.014  # a call the app places to a US number
INBOUND_PER_MINUTE = 0.0085  # a caller on a local number, while they hold
CONFERENCE_PER_PARTICIPANT_MINUTE = 0.0018
MACHINE_DETECTION_PER_CALL = 0.0075


def billed_minutes(seconds):
    """Minutes Twilio bills for a call that was connected this long."""
    return math.ceil(seconds / 60) if seconds > 0 else 0


@dataclass
class RunCost:
    """Dollars by what they paid for, and the completed callbacks they bought."""

    agent_legs: float = 0.0
    customer_legs: float = 0.0
    callers_holding: float = 0.0
    conference: float = 0.0
    machine_detection: float = 0.0
    completed: int = 0

    @property
    def total(self):
        """Everything the run cost."""
        return (self.agent_legs + self.customer_legs + self.callers_holding + self.conference
                + self.machine_detection)

    @property
    def per_completed(self):
        """The cost of the run per completed callback (None without one)."""
        return self.total / self.completed if self.completed else None

    def line(self):
        """The cost as the soak prints it."""
        per = f"${self.per_completed:.3f}" if self.per_completed is not None else "n/a"
        return (f"Cost at Twilio's US list prices: ${self.total:.2f} in all, {per} per completed callback "
                f"(agents' legs ${self.agent_legs:.2f}, customers' legs ${self.customer_legs:.2f}, callers "
                f"holding ${self.callers_holding:.2f}, conference ${self.conference:.2f}, machine detection "
                f"${self.machine_detection:.2f}).")


def run_cost(records, completed, detection=True):
    """The cost of the calls in `records` (the model's CallRecords, times in simulated
    seconds), `completed` callbacks bought with it. A placed call counts from its answer
    (`answered`) to its end; an agent's and a customer's answered minutes are conference
    minutes too; a customer's call pays for detection when the app asked for it."""
    cost = RunCost(completed=completed)
    for record in records:
        answered = getattr(record, "answered", None)
        if record.direction == "inbound":
            answered = record.started
        if answered is None or record.ended is None:
            minutes = 0
        else:
            minutes = billed_minutes(record.ended - answered)
        if record.kind == "caller":
            cost.callers_holding += minutes * INBOUND_PER_MINUTE
            continue
        if record.kind == "agent":
            cost.agent_legs += minutes * OUTBOUND_PER_MINUTE
        elif record.kind == "customer":
            cost.customer_legs += minutes * OUTBOUND_PER_MINUTE
            if detection and answered is not None:
                cost.machine_detection += MACHINE_DETECTION_PER_CALL
        cost.conference += minutes * CONFERENCE_PER_PARTICIPANT_MINUTE
    return cost
