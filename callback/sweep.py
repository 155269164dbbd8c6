"""The scheduled sweep: expire, retry, repair. CloudWatch runs `run` every minute.

It reads through indexes keyed by status and time, so its cost follows the number of
items that need it, not the size of the table. Every change it makes is a conditional
write, so it is safe to run twice at once and alongside the webhooks.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from . import models as m
from .config import Config
from .dispatch import MAX_CALL_LENGTH, REPAIR_MARGIN
from .storage import Conflict, WAITING_CALL_LIFETIME
from .telephony import FINAL_CALL_STATUSES, TelephonyError

log = logging.getLogger(__name__)
BATCH = 100


@dataclass
class SweepReport:
    """What one sweep did, for logs and tests."""

    expired: int = 0
    repaired_attempts: int = 0
    completed: int = 0
    released_agents: int = 0
    dropped_waiting: int = 0
    offers: int = 0
    items_read: int = 0
    errors: list = field(default_factory=list)


def sweep_once(svc):
    """One pass over everything whose time has come; returns a SweepReport."""
    report = SweepReport()
    now = svc.clock.now()
    steps = (_expire_pending, _repair_dialing, _finish_connected, _release_stuck_agents,
             _drop_stale_waiting, _dispatch)
    for step in steps:
        try:
            step(svc, now, report)
        except Exception as exc:  # one failing step must not stop the others
            log.exception("sweep step %s failed", step.__name__)
            report.errors.append(f"{step.__name__}: {type(exc).__name__}")
    return report


def _expire_pending(svc, now, report):
    for cb in svc.storage.needing_sweep(m.PENDING, now, limit=BATCH):
        report.items_read += 1
        if cb.expires_at <= now:
            try:
                svc.storage.expire_callback(cb, now)
                report.expired += 1
            except Conflict:
                pass


def _repair_dialing(svc, now, report):
    """An attempt whose status callbacks never came, long after its timeouts."""
    for cb in svc.storage.needing_sweep(m.DIALING, now, limit=BATCH):
        report.items_read += 1
        dispatcher = svc.dispatcher
        for sid in (cb.customer_call_sid, cb.agent_call_sid):
            if sid:
                try:
                    svc.telephony.hang_up(sid)
                except TelephonyError:
                    pass
        if cb.phase == m.PHASE_CUSTOMER:
            status = dispatcher.fail_counted(cb, cb.attempt_id, "no-status", now)
        else:
            status = dispatcher.fail_uncounted(cb.callback_id, cb.attempt_id, "agent-leg-lost", now)
        if status is not None:
            report.repaired_attempts += 1
            if cb.agent_id:
                svc.storage.release_agent(cb.agent_id, now=now, work_key=cb.callback_id)


def _finish_connected(svc, now, report):
    """Twilio ends calls after four hours: a callback still 'connected' is over."""
    for cb in svc.storage.needing_sweep(m.CONNECTED, now, limit=BATCH):
        report.items_read += 1
        if svc.dispatcher.complete(cb, cb.attempt_id, now):
            report.completed += 1


def _release_stuck_agents(svc, now, report):
    """Reserved agents with no live call, and busy agents whose call is long over."""
    config = svc.config
    longest_ring = timedelta(seconds=config.AGENT_RING_TIMEOUT_SECONDS + 120) + REPAIR_MARGIN
    for agent in svc.storage.list_agents():
        report.items_read += 1
        since = agent.status_changed_at
        if agent.status not in (m.RESERVED, m.BUSY) or since is None:
            continue
        limit = longest_ring if agent.status == m.RESERVED else MAX_CALL_LENGTH
        if now - since < limit:
            continue
        if agent.call_sid:
            try:
                if svc.telephony.call_status(agent.call_sid) not in FINAL_CALL_STATUSES:
                    continue
            except TelephonyError:
                continue
        if svc.storage.release_agent(agent.agent_id, now=now, work_key=agent.work_key):
            report.released_agents += 1
            if agent.work_kind == "call" and agent.work_key:
                svc.storage.waiting_call_back_in_line(agent.work_key, agent.agent_id)


def _drop_stale_waiting(svc, now, report):
    for ivr in svc.directory.ivrs():
        for queue in ivr.queues:
            stale = svc.storage.waiting_in_queue(queue.name, limit=BATCH,
                                                 joined_before=now - WAITING_CALL_LIFETIME)
            for call in stale:
                report.items_read += 1
                svc.storage.remove_waiting_call(call.call_sid)
                report.dropped_waiting += 1


def _dispatch(svc, now, report):
    report.offers += len(svc.dispatcher.dispatch())


_services = None


def run(event=None, context=None):
    """Entry point for the CloudWatch schedule (and for local runs): one sweep."""
    global _services
    from . import logs
    from .services import build_services

    if _services is None:
        config = Config.from_env()
        logs.install(config.LOG_LEVEL)
        _services = build_services(config)
    report = sweep_once(_services)
    log.info("sweep: %s", report)
    return vars(report)
