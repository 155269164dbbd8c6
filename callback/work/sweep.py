"""The scheduled sweep: expire, retry, repair. CloudWatch runs one every minute (through
`wiring.run_sweep`, which builds the services).

It reads through indexes keyed by status and time, so its cost follows the number of
items that need it, not the size of the table. Every change it makes is a conditional
write, so it is safe to run twice at once and alongside the webhooks.

A sweep runs inside a Lambda timeout. Past it, Lambda kills the invocation midway and
(were the function's asynchronous retries not off) runs the whole event again. So it
starts no new item once what is left of the invocation would not cover one more at its
slowest, and leaves the rest to the next minute's sweep.
"""
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from callback import metrics
from callback.domain import records as m
from callback.domain.texts import NOT_REACHED
from callback.storage import WAITING_CALL_LIFETIME, StorageError
from callback.work.recordings import sweep_recordings

log = logging.getLogger(__name__)
BATCH = 100
# An agent is looked at once their reservation or call is this old: a fresh claim is
# still placing its call.
AGENT_SETTLE = timedelta(seconds=45)


@dataclass
class SweepReport:
    """What one sweep did, for logs and tests."""

    expired: int = 0
    repaired_attempts: int = 0
    released_agents: int = 0
    settled_legs: int = 0
    dropped_waiting: int = 0
    offers: int = 0
    texts: int = 0
    recordings_deleted: int = 0
    items_read: int = 0
    errors: list = field(default_factory=list)
    # The step at which the sweep stopped for lack of time, if it did.
    stopped_at: str | None = None
    # Agents available as the sweep read them (None: not read).
    agents_available: int | None = None


class OutOfTime(Exception):
    """Not enough of the invocation is left to start one more item."""


class Budget:
    """What is left of the invocation, in seconds, against what one item may need."""

    def __init__(self, time_left=None, reserve=0.0):
        self.time_left = time_left
        self.reserve = reserve

    def check(self):
        """Raise OutOfTime when one more item might not finish in time."""
        if self.time_left is not None and self.time_left() < self.reserve:
            raise OutOfTime()


def item_reserve(config):
    """The longest one item can take: a Twilio request and a hang-up, each to its timeout,
    and two DynamoDB writes, each to theirs."""
    return 2 * config.TWILIO_REST_TIMEOUT_SECONDS + 2 * config.DYNAMODB_TIMEOUT_SECONDS


def sweep_once(svc, time_left=None):
    """One pass over everything whose time has come; returns a SweepReport.

    `time_left()`, when given, says how many seconds the invocation has left: no item is
    started once they would not cover `item_reserve`."""
    report = SweepReport()
    started = time.perf_counter()
    now = svc.clock.now()
    budget = Budget(time_left, item_reserve(svc.config))
    steps = (_expire_pending, _reconcile_attempts, _reconcile_agents, _settle_legs, _drop_stale_waiting,
             _dispatch, _send_texts, sweep_recordings)
    for step in steps:
        try:
            budget.check()
            step(svc, now, report, budget)
        except OutOfTime:
            report.stopped_at = step.__name__.lstrip("_")
            log.warning("sweep stopped at %s with %.1f s of the invocation left; the next sweep goes on",
                        report.stopped_at, time_left())
            break
        except Exception as exc:  # one failing step must not stop the others
            log.exception("sweep step %s failed", step.__name__)
            report.errors.append(f"{step.__name__}: {type(exc).__name__}")
    values = {metrics.SWEEP_RUNS: 1, metrics.SWEEP_DURATION: round((time.perf_counter() - started) * 1000),
              metrics.SWEEP_ERRORS: len(report.errors)}
    if report.agents_available is not None:
        values[metrics.AGENTS_AVAILABLE] = report.agents_available
    metrics.emit(values, event="sweep", stopped_at=report.stopped_at)
    return report


def _expire_pending(svc, now, report, budget):
    for cb in svc.storage.needing_sweep(m.PENDING, now, limit=BATCH):
        budget.check()
        report.items_read += 1
        if cb.expires_at <= now and svc.dispatcher.expire_or_extend(cb, now):
            report.expired += 1
            if cb.attempts:  # "we could not reach you" after calls that were not answered
                svc.dispatcher.text_about(cb, NOT_REACHED)


def _reconcile_attempts(svc, now, report, budget):
    """Attempts whose next event is late: Twilio's record of their calls is the truth.

    The index is a snapshot that may be stale; `reconcile` reads the callback again and
    every write it makes is conditional on the attempt exactly as read.
    """
    for status in (m.DIALING, m.CONNECTED):
        for cb in svc.storage.needing_sweep(status, now, limit=BATCH):
            budget.check()
            report.items_read += 1
            try:
                if svc.dispatcher.reconcile(cb.callback_id, cb.attempt_id):
                    report.repaired_attempts += 1
            except StorageError:
                log.exception("could not reconcile callback %s", cb.callback_id)
                report.errors.append(f"reconcile {cb.callback_id}")


def _reconcile_agents(svc, now, report, budget):
    """Reserved or busy agents whose call Twilio says is over (or was never placed): free
    within two sweeps, however many status callbacks were lost."""
    agents = svc.storage.list_agents()
    report.agents_available = sum(1 for agent in agents if agent.status == m.AVAILABLE)
    for agent in agents:
        report.items_read += 1
        since = agent.status_changed_at
        if agent.status not in (m.RESERVED, m.BUSY) or since is None or now - since < AGENT_SETTLE:
            continue
        budget.check()
        try:
            if svc.dispatcher.reconcile_agent(agent):
                report.released_agents += 1
        except StorageError:
            log.exception("could not reconcile agent %s", agent.agent_id)
            report.errors.append(f"agent {agent.agent_id}")


def _settle_legs(svc, now, report, budget):
    """Calls whose attempt or offer is over: found when their CallSid was lost, ended, their
    numbers (and agents) freed once Twilio says they ended; each failure waits longer. And
    every holding caller's number held (one whose number a callback attempt held when they
    called in is held from the sweep after that attempt let it go)."""
    legs = svc.storage.live_legs()
    held = {leg.number for leg in legs}
    for ivr in svc.directory.ivrs():
        for queue in ivr.queues:
            for call in svc.storage.waiting_in_queue(queue.name, limit=BATCH):
                if call.caller and call.caller not in held:
                    budget.check()
                    svc.dispatcher.caller_holding(call.call_sid, call.caller)
    for leg in legs:
        budget.check()
        report.items_read += 1
        try:
            if svc.dispatcher.sweep_leg(leg, now):
                report.settled_legs += 1
        except StorageError:
            log.exception("could not settle leg %s", leg.leg_id)
            report.errors.append(f"leg {leg.leg_id}")


def _drop_stale_waiting(svc, now, report, budget):
    for ivr in svc.directory.ivrs():
        for queue in ivr.queues:
            stale = svc.storage.waiting_in_queue(queue.name, limit=BATCH,
                                                 joined_before=now - WAITING_CALL_LIFETIME)
            for call in stale:
                budget.check()
                report.items_read += 1
                svc.storage.remove_waiting_call(call.call_sid)
                report.dropped_waiting += 1


def _dispatch(svc, now, report, budget):
    report.offers += len(svc.dispatcher.dispatch())


def _send_texts(svc, now, report, budget):
    """Texts not settled yet (their outbox): a lost send tried again, a bounded number of
    times (`callback.work.texts`); last, as no call waits on a text."""
    for key in svc.storage.outbox(limit=BATCH):
        budget.check()
        report.items_read += 1
        try:
            svc.dispatcher.sweep_text(key, now)
            report.texts += 1
        except StorageError:
            log.exception("could not look at text %s", key)
            report.errors.append(f"text {key}")


EVERY = timedelta(minutes=1)


def sweep_forever(svc, stop, tick=0.5, first_after=timedelta(0)):
    """Sweep every minute of app time, the first after `first_after`, until `stop` is set:
    CloudWatch's schedule for local runs and the soak's app processes.

    The wait is recomputed every `tick` real seconds from the app's clock, so a speed
    changed meanwhile (`make call --speed 60`) takes effect at once, not after a minute
    measured at the old speed. A failed sweep is logged; the next comes a minute later.
    """
    due = svc.clock.now() + first_after
    while not stop.is_set():
        if svc.clock.now() >= due:
            due = svc.clock.now() + EVERY
            try:
                sweep_once(svc)
            except Exception:  # keep sweeping, as CloudWatch would call again next minute
                log.exception("scheduled sweep failed")
        speed = max(getattr(svc.clock, "speed", 1.0), 0.01)
        left = (due - svc.clock.now()).total_seconds() / speed
        stop.wait(min(max(left, 0.01), tick))

