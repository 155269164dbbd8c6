"""Dispatch: who gets which work next, and every step of connecting it, agent first.

A Twilio queue is strictly FIFO, so the order (priority, then place in line) lives here.
Work is claimed together with the agent in one DynamoDB transaction, so two dispatchers
running at once never ring one agent twice or dial one callback twice. Every later step
is a conditional write guarded by the attempt it belongs to, so late or repeated status
callbacks change nothing.
"""
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from . import models as m
from .numbers import mask, speakable
from .rules import (
    CALL,
    CALLBACK,
    WorkCandidate,
    decide_after_failed_attempt,
    decide_after_uncounted_attempt,
    rank_work,
)
from .settings import DEFAULT_SPEECH
from .storage import Conflict, NotFound, StorageError
from .telephony import CallGone, TelephonyError

log = logging.getLogger(__name__)

# How long after its last timeout a silent attempt is taken as lost by the sweep.
REPAIR_MARGIN = timedelta(minutes=2)
# Twilio ends every call after four hours: a callback 'connected' longer is over.
MAX_CALL_LENGTH = timedelta(hours=4, minutes=10)
CANDIDATES_PER_QUEUE = 5
MAX_CLAIM_TRIES = 5
CUSTOMER_FAILURES = {"busy", "no-answer", "failed", "canceled"}
AGENT_MISSED = {"busy", "no-answer", "failed", "canceled"}

NOTICES = {
    "retry": "The customer did not answer. The callback will be retried later. Goodbye.",
    "expired": "The customer did not answer. That was the last attempt; the callback has "
               "ended. Goodbye.",
    "caller-gone": "The caller hung up before you could be connected. Goodbye.",
    "stale": "This call is no longer waiting for you. Goodbye.",
    "dial-error": "The customer could not be dialed. The callback will be tried again. Goodbye.",
}


@dataclass(frozen=True)
class Offer:
    """Work handed to an agent: their phone is ringing."""

    agent_id: str
    kind: str
    key: str
    agent_call_sid: str


@dataclass(frozen=True)
class AgentAnswer:
    """What an agent who picked up should hear and do."""

    conference: str | None
    announcement: str | None = None
    notice: str | None = None
    status_callback: str | None = None
    speech: tuple = DEFAULT_SPEECH


@dataclass(frozen=True)
class CustomerAnswer:
    """What a customer who picked up should hear and do."""

    conference: str | None
    announcement: str | None = None
    hang_up: bool = False
    speech: tuple = DEFAULT_SPEECH


def _speech(ivr):
    """The voice and language of an IVR's prompts (the default when it is unknown)."""
    return ivr.settings.speech if ivr else DEFAULT_SPEECH


class Dispatcher:
    """Matches available agents with work and drives each attempt to its end."""

    def __init__(self, storage, telephony, directory, clock, config):
        self.storage = storage
        self.telephony = telephony
        self.directory = directory
        self.clock = clock
        self.config = config

    @property
    def ring_timeout(self):
        """Seconds an agent's phone rings."""
        return self.config.AGENT_RING_TIMEOUT_SECONDS

    def url(self, path, **query):
        """Absolute public URL for a webhook."""
        return self.config.public_url(path, **query)

    # -- choosing and claiming ---------------------------------------------------------

    def dispatch(self, queue_names=None, agent_id=None):
        """Give every matching available agent their next work; returns the offers made."""
        agents = [a for a in self.storage.list_agents() if a.status == m.AVAILABLE]
        if agent_id is not None:
            agents = [a for a in agents if a.agent_id == agent_id]
        if queue_names:
            wanted = set(queue_names)
            agents = [a for a in agents if wanted & set(a.queues)]
        # Longest idle first: fair to agents, and it spreads the work.
        agents.sort(key=lambda a: (a.status_changed_at is None, a.status_changed_at, a.agent_id))
        offers, skip = [], set()
        for agent in agents:
            offer = self._offer_next_work(agent, skip)
            if offer:
                offers.append(offer)
                skip.add(offer.key)
        return offers

    def set_presence(self, agent_id, status):
        """An agent says available or offline; an available one is offered work at once.

        Conflict while they are reserved or on a call, NotFound for no such agent.
        """
        agent = self.storage.set_agent_presence(agent_id, status, self.clock.now())
        if status == m.AVAILABLE:
            try:
                self.dispatch(agent_id=agent_id)
            except Exception:  # the agent is available; the sweep offers work if this failed
                log.exception("dispatch after agent %s became available failed", agent_id)
            agent = self.storage.get_agent(agent_id)
        return agent

    def candidates_for(self, agent, now):
        """Waiting callers and due callbacks in the agent's queues, with their records."""
        candidates, records = [], {}
        for queue_name in agent.queues:
            ivr, queue = self.directory.queue(queue_name)
            if queue is None:
                continue
            for call in self.storage.waiting_in_queue(queue_name, limit=CANDIDATES_PER_QUEUE):
                candidates.append(WorkCandidate(CALL, call.call_sid, queue_name, queue.priority,
                                                call.joined_at))
                records[call.call_sid] = call
            for cb in self.storage.due_callbacks(queue_name, now, limit=CANDIDATES_PER_QUEUE):
                if cb.expires_at <= now:
                    self._expire(cb, now)
                    continue
                candidates.append(WorkCandidate(CALLBACK, cb.callback_id, queue_name, cb.priority,
                                                cb.place_in_line))
                records[cb.callback_id] = cb
        return candidates, records

    def _offer_next_work(self, agent, skip):
        now = self.clock.now()
        candidates, records = self.candidates_for(agent, now)
        tries = 0
        for candidate in rank_work(c for c in candidates if c.key not in skip):
            if tries >= MAX_CLAIM_TRIES:
                break
            tries += 1
            record = records[candidate.key]
            try:
                if candidate.kind == CALLBACK:
                    return self._offer_callback(agent, record, now)
                return self._offer_call(agent, record, now)
            except Conflict:
                # Someone else took the work, or the agent: fine, try the next one.
                try:
                    if self.storage.get_agent(agent.agent_id).status != m.AVAILABLE:
                        return None
                except NotFound:
                    return None
            except TelephonyError as exc:
                log.warning("could not ring agent %s: %s", agent.agent_id, exc)
                return None
        return None

    def _offer_callback(self, agent, callback, now):
        ivr = self.directory.ivr(callback.ivr_name)
        transfer = ivr.settings.transfer_timeout_seconds if ivr else 60
        attempt_id = uuid.uuid4().hex[:16]
        deadline = now + timedelta(seconds=self.ring_timeout + transfer) + REPAIR_MARGIN
        self.storage.claim_callback(agent, callback, attempt_id, now, deadline)
        query = dict(kind=CALLBACK, key=callback.callback_id, attempt=attempt_id, agent=agent.agent_id)
        try:
            sid = self.telephony.place_call(
                to=agent.phone, from_=self._caller_id(ivr), url=self.url("/voice/agent/answer", **query),
                status_callback=self.url("/voice/agent/status", **query), timeout=self.ring_timeout)
        except TelephonyError:
            # Never lose the callback: back to pending at once, the agent free again.
            self.fail_uncounted(callback.callback_id, attempt_id, "dial-error", now)
            self.storage.release_agent(agent.agent_id, now=now, work_key=callback.callback_id)
            raise
        self._quietly(self.storage.set_agent_leg, callback.callback_id, attempt_id, sid)
        self._quietly(self.storage.set_agent_call, agent.agent_id, callback.callback_id, sid)
        log.info("callback %s offered to agent %s (call %s)", callback.callback_id, agent.agent_id, sid)
        return Offer(agent.agent_id, CALLBACK, callback.callback_id, sid)

    def _offer_call(self, agent, call, now):
        ivr = self.directory.ivr(call.ivr_name)
        self.storage.claim_waiting_call(agent, call, now)
        query = dict(kind=CALL, key=call.call_sid, agent=agent.agent_id)
        try:
            sid = self.telephony.place_call(
                to=agent.phone, from_=self._caller_id(ivr), url=self.url("/voice/agent/answer", **query),
                status_callback=self.url("/voice/agent/status", **query), timeout=self.ring_timeout)
        except TelephonyError:
            self.storage.waiting_call_back_in_line(call.call_sid, agent.agent_id)
            self.storage.release_agent(agent.agent_id, now=now, work_key=call.call_sid)
            raise
        self._quietly(self.storage.set_waiting_call_agent_leg, call.call_sid, agent.agent_id, sid)
        self._quietly(self.storage.set_agent_call, agent.agent_id, call.call_sid, sid)
        log.info("caller %s offered to agent %s (call %s)", call.call_sid, agent.agent_id, sid)
        return Offer(agent.agent_id, CALL, call.call_sid, sid)

    def _caller_id(self, ivr):
        if ivr and ivr.caller_id:
            return ivr.caller_id
        numbers = [n for i in self.directory.ivrs() for n in i.numbers]
        return numbers[0] if numbers else "+15005550006"

    @staticmethod
    def _quietly(step, *args):
        """A bookkeeping step whose failure must not undo a call already placed."""
        try:
            step(*args)
        except Conflict:
            pass
        except StorageError:
            log.exception("could not record %s; the sweep will repair", step.__name__)

    # -- attempt endings -----------------------------------------------------------------

    def fail_uncounted(self, callback_id, attempt_id, outcome, now, from_statuses=(m.DIALING,)):
        """End an attempt that was not the customer's to fail: no retry is used up."""
        cb = self.storage.get_callback(callback_id)
        decision = decide_after_uncounted_attempt(expires_at=cb.expires_at, now=now, due_at=now)
        try:
            return self.storage.fail_attempt(callback_id, attempt_id, outcome=outcome, counted=False,
                                             now=now, decision=decision, from_statuses=from_statuses)
        except Conflict:
            return None

    def fail_counted(self, cb, attempt_id, outcome, now):
        """End an attempt the customer did not take: retry after Retry Time, or expire."""
        ivr = self.directory.ivr(cb.ivr_name)
        settings = ivr.settings if ivr else None
        decision = decide_after_failed_attempt(
            failed_attempts=cb.attempts + 1,
            max_retries=settings.max_retries if settings else 1,
            retry_minutes=settings.retry_minutes if settings else 5,
            expires_at=cb.expires_at, now=now)
        try:
            status = self.storage.fail_attempt(cb.callback_id, attempt_id, outcome=outcome,
                                               counted=True, now=now, decision=decision)
        except Conflict:
            return None
        log.info("callback %s attempt %s failed (%s): %s", cb.callback_id, attempt_id, outcome, status)
        return status

    def _expire(self, cb, now):
        try:
            self.storage.expire_callback(cb, now)
            log.info("callback %s expired", cb.callback_id)
        except Conflict:
            pass

    def _current(self, callback_id, attempt_id, statuses=(m.DIALING,)):
        try:
            cb = self.storage.get_callback(callback_id)
        except NotFound:
            return None
        if cb.attempt_id != attempt_id or cb.status not in statuses:
            return None
        return cb

    def _tell_agent(self, agent_call_sid, notice):
        if not agent_call_sid:
            return
        try:
            self.telephony.redirect_call(agent_call_sid, self.url("/voice/notice", message=notice))
        except TelephonyError as exc:
            log.info("could not tell the agent (%s): %s", notice, exc)

    # -- agent leg -----------------------------------------------------------------------

    def agent_answered(self, kind, key, attempt_id, agent_id, agent_call_sid):
        """The agent picked up: say what is coming and bring the other party in."""
        now = self.clock.now()
        if kind == CALLBACK:
            return self._agent_answered_callback(key, attempt_id, agent_id, agent_call_sid, now)
        return self._agent_answered_call(key, agent_id, agent_call_sid, now)

    def _agent_answered_callback(self, callback_id, attempt_id, agent_id, agent_call_sid, now):
        cb = self._current(callback_id, attempt_id)
        if cb is None or cb.phase != m.PHASE_AGENT or cb.agent_id != agent_id:
            return AgentAnswer(None, notice=NOTICES["stale"])
        try:
            self.storage.agent_answered(agent_id, callback_id, agent_call_sid, now)
        except Conflict:
            return AgentAnswer(None, notice=NOTICES["stale"])
        ivr = self.directory.ivr(cb.ivr_name)
        transfer = ivr.settings.transfer_timeout_seconds if ivr else 30
        try:
            self.storage.start_customer_leg(callback_id, attempt_id,
                                            now + timedelta(seconds=transfer) + REPAIR_MARGIN)
        except Conflict:
            return AgentAnswer(None, notice=NOTICES["stale"])
        query = dict(callback=callback_id, attempt=attempt_id)
        try:
            sid = self.telephony.place_call(
                to=cb.number, from_=self._caller_id(ivr),
                url=self.url("/voice/customer/answer", **query),
                status_callback=self.url("/voice/customer/status", **query),
                timeout=transfer, machine_detection=True)
        except TelephonyError as exc:
            log.warning("could not dial customer %s for callback %s: %s", mask(cb.number), callback_id, exc)
            self.fail_uncounted(callback_id, attempt_id, "dial-error", now)
            return AgentAnswer(None, notice=NOTICES["dial-error"])
        self._quietly(self.storage.set_customer_leg, callback_id, attempt_id, sid)
        queue = cb.queue_name
        return AgentAnswer(
            cb.conference_name,
            announcement=f"Callback for {queue}, to {speakable(cb.number)}. Connecting the customer now.",
            status_callback=self.url("/voice/conference", **query), speech=_speech(ivr))

    def _agent_answered_call(self, call_sid, agent_id, agent_call_sid, now):
        call = self.storage.get_waiting_call(call_sid)
        if call is None or call.status != m.CONNECTING or call.agent_id != agent_id:
            return AgentAnswer(None, notice=NOTICES["caller-gone"])
        try:
            self.storage.agent_answered(agent_id, call_sid, agent_call_sid, now)
        except Conflict:
            return AgentAnswer(None, notice=NOTICES["stale"])
        conference = f"call-{call_sid}"
        try:
            self.telephony.redirect_call(call_sid, self.url("/voice/caller/join", conference=conference))
        except CallGone:
            self.storage.remove_waiting_call(call_sid)
            return AgentAnswer(None, notice=NOTICES["caller-gone"])
        except TelephonyError as exc:
            log.warning("could not move caller %s to agent %s: %s", call_sid, agent_id, exc)
            self.storage.waiting_call_back_in_line(call_sid, agent_id)
            return AgentAnswer(None, notice=NOTICES["stale"])
        self.storage.remove_waiting_call(call_sid)
        return AgentAnswer(conference, announcement=f"Caller from {call.queue_name}.",
                           speech=_speech(self.directory.ivr(call.ivr_name)))

    def agent_call_ended(self, kind, key, attempt_id, agent_id, agent_call_sid, call_status):
        """The agent's leg reached a final status: free or park the agent, fix the work."""
        now = self.clock.now()
        missed = call_status in AGENT_MISSED
        if kind == CALLBACK:
            cb = self._current(key, attempt_id, statuses=(m.DIALING, m.CONNECTED))
            if cb is not None and cb.agent_id == agent_id:
                if cb.status == m.CONNECTED:
                    self.complete(cb, attempt_id, now)
                else:
                    if cb.phase == m.PHASE_CUSTOMER and cb.customer_call_sid:
                        self.telephony.hang_up(cb.customer_call_sid)
                    outcome = "agent-no-answer" if missed else "agent-hung-up"
                    self.fail_uncounted(key, attempt_id, outcome, now)
        else:
            call = self.storage.get_waiting_call(key)
            if call is not None and call.status == m.CONNECTING and call.agent_id == agent_id:
                self.storage.waiting_call_back_in_line(key, agent_id)
        # An agent who did not pick up is away: offline, so they are not rung again and again.
        status = m.OFFLINE if missed else m.AVAILABLE
        released = self.storage.release_agent(agent_id, now=now, status=status, work_key=key)
        if released and missed:
            log.info("agent %s did not answer; set offline", agent_id)
        return released

    # -- customer leg --------------------------------------------------------------------

    def customer_answered(self, callback_id, attempt_id, answered_by):
        """The customer's phone picked up: a person joins the agent, a machine fails the try."""
        now = self.clock.now()
        cb = self._current(callback_id, attempt_id)
        if cb is None or cb.phase != m.PHASE_CUSTOMER:
            return CustomerAnswer(None, announcement="We are sorry, the agent is no longer "
                                  "available. We will call you again. Goodbye.", hang_up=True)
        if (answered_by or "").startswith(("machine", "fax")):
            status = self.fail_counted(cb, attempt_id, "machine", now)
            self._tell_agent(cb.agent_call_sid, "expired" if status == m.EXPIRED else "retry")
            return CustomerAnswer(None, hang_up=True)
        try:
            self.storage.mark_connected(callback_id, attempt_id, now, now + MAX_CALL_LENGTH)
        except Conflict:
            return CustomerAnswer(None, hang_up=True)
        ivr = self.directory.ivr(cb.ivr_name)
        # The customer hears the company's name, not the IVR's internal one.
        name = ivr.settings.announced_name(cb.ivr_name) if ivr else cb.ivr_name
        return CustomerAnswer(cb.conference_name,
                              announcement=f"Hello, this is the callback you requested from "
                                           f"{name}. Connecting you to an agent now.",
                              speech=_speech(ivr))

    def customer_call_ended(self, callback_id, attempt_id, call_status):
        """The customer's leg reached a final status."""
        now = self.clock.now()
        cb = self._current(callback_id, attempt_id, statuses=(m.DIALING, m.CONNECTED))
        if cb is None:
            return None
        if cb.status == m.CONNECTED:
            return self.complete(cb, attempt_id, now)
        if cb.phase != m.PHASE_CUSTOMER:
            return None
        outcome = call_status if call_status in CUSTOMER_FAILURES else "hung-up-early"
        status = self.fail_counted(cb, attempt_id, outcome, now)
        if status is not None:
            self._tell_agent(cb.agent_call_sid, "expired" if status == m.EXPIRED else "retry")
        return status

    def conference_ended(self, callback_id, attempt_id):
        """The conference is over: a connected callback is complete."""
        cb = self._current(callback_id, attempt_id, statuses=(m.CONNECTED,))
        if cb is not None:
            return self.complete(cb, attempt_id, self.clock.now())
        return None

    def complete(self, cb, attempt_id, now):
        """Mark a connected callback done (once)."""
        try:
            self.storage.mark_completed(cb.callback_id, attempt_id, now)
            log.info("callback %s completed", cb.callback_id)
            return m.COMPLETED
        except Conflict:
            return None
