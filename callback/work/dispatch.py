"""Dispatch: who gets which work next, and carrying out every step of an attempt.

A Twilio queue is strictly FIFO, so the order (priority, then place in line) lives here.
Work is claimed together with the agent in one DynamoDB transaction, so two dispatchers
running at once never ring one agent twice or dial one callback twice. What an event
does to a callback attempt is decided by the table in `attempts.py`; this module only
reads the records, writes the new state (conditional on the state as read) and carries
out the effects. A holding caller offered to an agent is the same, over the offer's
table, its record the waiting call (conditional on the offer id, phase and agent CallSid).
"""
import logging
import uuid
from dataclasses import replace
from datetime import timedelta

from callback.domain import attempts as a
from callback.domain import records as m
from callback.domain.answers import NOTICES, AgentAnswer, CustomerAnswer, Offer, Outcome
from callback.domain.numbers import mask, speakable
from callback.domain.rules import (
    CALL,
    CALLBACK,
    WorkCandidate,
    agent_after,
    decide_after_failed_attempt,
    decide_after_uncounted_attempt,
    number_refused,
    rank_work,
    settle_attempt,
)
from callback.domain.settings import DEFAULT_SPEECH
from callback.domain.views import attempt_view, caller_conference, offer_view
from callback.storage import Conflict, NotFound, StorageError
from callback.telephony.rest import (
    FINAL_CALL_STATUSES,
    MACHINE_DETECTION_TIMEOUT_SECONDS,
    CallGone,
    MaybePlaced,
    NumberRefused,
    TelephonyError,
)

log = logging.getLogger(__name__)

# How long past its own timeouts an expected event may be late before the sweep asks
# Twilio what became of the call.
EVENT_MARGIN = timedelta(seconds=30)
# Whisper, then the seconds the agent has to press a key.
WHISPER = timedelta(seconds=25)
ACCEPT_SECONDS = 8
# How often the sweep checks that a connected conversation is still going.
CONNECTED_CHECK = timedelta(minutes=2)
CANDIDATES_PER_QUEUE = 5
MAX_CLAIM_TRIES = 5


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
        agents = [ag for ag in self.storage.list_agents() if ag.status == m.AVAILABLE]
        if agent_id is not None:
            agents = [ag for ag in agents if ag.agent_id == agent_id]
        if queue_names:
            wanted = set(queue_names)
            agents = [ag for ag in agents if wanted & set(ag.queues)]
        # Longest idle first: fair to agents, and it spreads the work.
        agents.sort(key=lambda ag: (ag.status_changed_at is None, ag.status_changed_at, ag.agent_id))
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

    def caller_id(self, ivr):
        """The number calls for this IVR come from, or None: never a made-up one (a number
        that is not the account's makes every call fail)."""
        return ivr.caller_id if ivr is not None else None

    def blocked_reason(self, cb):
        """Why an open callback cannot be dialed at all, for the admin; None when it can."""
        if cb.status not in m.OPEN_STATUSES:
            return None
        ivr = self.directory.ivr(cb.ivr_name)
        if self.caller_id(ivr) is None:
            return (f"IVR {cb.ivr_name} has no phone number to call from, so nobody can be "
                    "called back: add its Twilio number. The callback keeps its place in line.")
        return None

    def candidates_for(self, agent, now):
        """Waiting callers and due callbacks in the agent's queues, with their records."""
        candidates, records = [], {}
        for queue_name in agent.queues:
            ivr, queue = self.directory.queue(queue_name)
            if queue is None:
                continue
            if self.caller_id(ivr) is None:
                log.error("IVR %s has no phone number to call from: queue %s is not dispatched",
                          ivr.name, queue_name)
                continue
            for call in self.storage.waiting_in_queue(queue_name, limit=CANDIDATES_PER_QUEUE):
                candidates.append(WorkCandidate(CALL, call.call_sid, queue_name, queue.priority,
                                                call.joined_at))
                records[(CALL, call.call_sid)] = call
            for cb in self.storage.due_callbacks(queue_name, now, limit=CANDIDATES_PER_QUEUE):
                if cb.expires_at <= now:
                    self._expire(cb, now)
                    continue
                candidates.append(WorkCandidate(CALLBACK, cb.callback_id, queue_name, cb.priority,
                                                cb.place_in_line))
                records[(CALLBACK, cb.callback_id)] = cb
        return candidates, records

    def _offer_next_work(self, agent, skip):
        now = self.clock.now()
        candidates, records = self.candidates_for(agent, now)
        tries = 0
        for candidate in rank_work(c for c in candidates if c.key not in skip):
            if tries >= MAX_CLAIM_TRIES:
                break
            tries += 1
            # A callback's id is its caller's CallSid: the same key can name both kinds.
            record = records[(candidate.kind, candidate.key)]
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

    def _place_agent_call(self, agent, ivr, query):
        return self.telephony.place_call(
            to=agent.phone, from_=self.caller_id(ivr), url=self.url("/voice/agent/answer", **query),
            status_callback=self.url("/voice/agent/status", **query), timeout=self.ring_timeout,
            fallback_url=self.url("/voice/call-fallback", leg="agent"))

    def _offer_callback(self, agent, callback, now):
        ivr = self.directory.ivr(callback.ivr_name)
        attempt_id = uuid.uuid4().hex[:16]
        self.storage.claim_callback(agent, callback, attempt_id, now,
                                    self._deadline(a.AGENT_RINGING, ivr, now), a.AGENT_RINGING)
        return self._ring_agent(agent, ivr, CALLBACK, callback.callback_id, attempt_id, self.handle)

    def _offer_call(self, agent, call, now):
        ivr = self.directory.ivr(call.ivr_name)
        offer_id = uuid.uuid4().hex[:16]
        self.storage.claim_waiting_call(agent, call, now, offer_id)
        return self._ring_agent(agent, ivr, CALL, call.call_sid, offer_id,
                                lambda event: self.handle_offer(event, agent.agent_id))

    def _ring_agent(self, agent, ivr, kind, key, attempt_id, handle):
        """Ring the agent for the work just claimed; `handle` applies what the request says."""
        query = dict(kind=kind, key=key, attempt=attempt_id, agent=agent.agent_id)
        event = dict(callback_id=key, attempt_id=attempt_id)
        try:
            sid = self._place_agent_call(agent, ivr, query)
        except MaybePlaced:
            # It may ring: the status callbacks (their URLs name the attempt) or the sweep's
            # reading of Twilio settle it. Ringing them again now could ring them twice.
            log.warning("ringing agent %s for %s %s timed out: leg unknown", agent.agent_id, kind, key)
            return Offer(agent.agent_id, kind, key, None)
        except TelephonyError as exc:
            handle(a.Event(a.AGENT_REFUSED if isinstance(exc, NumberRefused) else a.AGENT_NOT_PLACED,
                           error_code=exc.code, **event))
            raise
        handle(a.Event(a.AGENT_PLACED, call_sid=sid, **event))
        self._quietly(self.storage.set_agent_call, agent.agent_id, attempt_id, sid)
        log.info("%s %s offered to agent %s (call %s)", kind, key, agent.agent_id, sid)
        return Offer(agent.agent_id, kind, key, sid)

    @staticmethod
    def _quietly(step, *args):
        """A bookkeeping step whose failure must not undo a call already placed."""
        try:
            step(*args)
        except Conflict:
            pass
        except StorageError:
            log.exception("could not record %s; the sweep will repair", step.__name__)

    def _expire(self, cb, now):
        try:
            self.storage.expire_callback(cb, now)
            log.info("callback %s expired", cb.callback_id)
        except Conflict:
            pass

    def _deadline(self, state, ivr, now):
        """When the sweep should ask Twilio about an attempt that has heard nothing more."""
        transfer = ivr.settings.transfer_timeout_seconds if ivr else 30
        waits = {
            a.AGENT_RINGING: timedelta(seconds=self.ring_timeout) + EVENT_MARGIN,
            a.AGENT_DECIDING: WHISPER + timedelta(seconds=ACCEPT_SECONDS) + EVENT_MARGIN,
            # The agent hears a short announcement, then is in the conference.
            a.AGENT_JOINING: EVENT_MARGIN,
            a.CUSTOMER_RINGING: timedelta(seconds=transfer + MACHINE_DETECTION_TIMEOUT_SECONDS)
            + EVENT_MARGIN,
            a.CUSTOMER_ANSWERED: EVENT_MARGIN,
            a.CONNECTED: CONNECTED_CHECK,
        }
        return now + waits.get(state, EVENT_MARGIN)

    # -- the state machine, carried out -----------------------------------------------

    def handle(self, event, tell_agent=True):
        """Apply one event to its callback attempt: write the new state (conditional on the
        state it came from), then carry out the effects. A lost race reads again.

        tell_agent=False when the event comes from the agent's own webhook, which answers
        with the notice itself (a REST redirect would race that answer).
        """
        for _ in range(3):
            try:
                cb = self.storage.get_callback(event.callback_id)
            except NotFound:
                return Outcome(a.ENDED, False)
            view = attempt_view(cb, event.attempt_id)
            if view is None:
                log.info("event %s for unknown attempt %s of %s ignored", event.kind,
                         event.attempt_id, event.callback_id)
                return Outcome(a.ENDED, False)
            step = a.apply(view, event)
            if step.ignored:
                log.info("callback %s attempt %s: %s ignored (%s)", cb.callback_id, event.attempt_id,
                         event.kind, step.ignored)
                return Outcome(view.state, False, callback_status=cb.status)
            try:
                return self._carry_out(cb, view, step, event, tell_agent)
            except Conflict:
                continue
        log.warning("callback %s: %s lost three races; the sweep will look again",
                    event.callback_id, event.kind)
        return Outcome(a.ENDED, False)

    def _carry_out(self, cb, view, step, event, tell_agent):
        now = self.clock.now()
        ivr = self.directory.ivr(cb.ivr_name)
        effects = step.effects
        status = cb.status
        ending = next((e for e in effects if isinstance(e, (a.EndAttempt, a.RefuseNumber, a.Complete))),
                      None)
        if view.state != a.ENDED:
            sids = dict(agent_call_sid=step.agent_call_sid, customer_call_sid=step.customer_call_sid)
            if isinstance(ending, a.Complete):
                self.storage.complete_attempt(cb, now)
                status = m.COMPLETED
            elif isinstance(ending, a.RefuseNumber):
                status = self.storage.end_attempt(cb, outcome="number-refused", counted=False, now=now,
                                                  decision=number_refused(),
                                                  error_code=event.error_code, **sids)
            elif isinstance(ending, a.EndAttempt):
                status = self._end_attempt(cb, ending, now, event.error_code, sids)
            elif step.state != view.state or (step.agent_call_sid, step.customer_call_sid) != (
                    view.agent_call_sid, view.customer_call_sid):
                self.storage.advance_attempt(cb, phase=step.state, sweep_at=self._deadline(step.state, ivr, now),
                                             connected=step.state == a.CONNECTED, now=now, **sids)
                status = m.CONNECTED if step.state == a.CONNECTED else status
            log.info("callback %s attempt %s: %s -> %s on %s", cb.callback_id, view.attempt_id,
                     view.state, step.state, event.kind)
        freed, notice = False, None
        attempt = cb.attempt(view.attempt_id)
        for effect in effects:
            if isinstance(effect, a.HangUp):
                self._hang_up(step.agent_call_sid if effect.leg == a.AGENT else step.customer_call_sid)
            elif isinstance(effect, a.TellAgent):
                notice = effect.notice
                if notice == "result":
                    notice = "retry" if status == m.PENDING else "expired"
                if tell_agent:
                    self._tell_agent(step.agent_call_sid, notice)
            elif isinstance(effect, a.ReleaseAgent) and attempt.agent_id:
                freed = self._release(attempt.agent_id, view.attempt_id, step.agent_call_sid, effect.why)
            elif isinstance(effect, a.DialCustomer):
                dialed = self._dial_customer(cb, view.attempt_id, ivr, tell_agent)
                if not dialed.applied or dialed.state == a.ENDED:
                    return dialed
        return Outcome(step.state, True, freed, status, notice)

    def _end_attempt(self, cb, effect, now, error_code, sids):
        earlier = [h for h in cb.history if h.attempt_id != cb.attempt_id]
        settled = settle_attempt(effect.counted, effect.outcome, earlier)
        ivr = self.directory.ivr(cb.ivr_name)
        settings = ivr.settings if ivr else None
        if settled.counted:
            decision = decide_after_failed_attempt(
                failed_attempts=cb.attempts + 1, max_retries=settings.max_retries if settings else 1,
                retry_minutes=settings.retry_minutes if settings else 5, expires_at=cb.expires_at, now=now)
        else:
            decision = decide_after_uncounted_attempt(expires_at=cb.expires_at, now=now,
                                                      due_at=now + settled.delay)
        status = self.storage.end_attempt(cb, outcome=effect.outcome, counted=settled.counted, now=now,
                                          decision=decision, error_code=error_code, **sids)
        log.info("callback %s attempt %s ended (%s, %s): %s", cb.callback_id, cb.attempt_id,
                 effect.outcome, "counted" if settled.counted else "not counted", status)
        return status

    def _release(self, agent_id, attempt_id, call_sid, why):
        """Free (or set away) the agent of this attempt, once; True when this freed them."""
        try:
            agent = self.storage.get_agent(agent_id)
        except NotFound:
            return False
        if agent.attempt_id != attempt_id or agent.status not in (m.RESERVED, m.BUSY):
            return False
        after = agent_after(why, agent.misses)
        released = self.storage.release_agent(agent_id, now=self.clock.now(), attempt_id=attempt_id,
                                              call_sid=call_sid, status=after.status,
                                              away_reason=after.away_reason, misses=after.misses)
        if released and after.away_reason:
            log.info("agent %s set away: %s", agent_id, after.away_reason)
        return released

    def _hang_up(self, call_sid):
        if not call_sid:
            return
        try:
            self.telephony.hang_up(call_sid)
        except TelephonyError as exc:
            log.info("could not hang up %s: %s; the sweep will look again", call_sid, exc)

    def _tell_agent(self, agent_call_sid, notice):
        if not agent_call_sid:
            return
        try:
            self.telephony.redirect_call(agent_call_sid, self.url("/voice/notice", message=notice))
        except TelephonyError as exc:
            log.info("could not tell the agent (%s): %s", notice, exc)

    def _dial_customer(self, cb, attempt_id, ivr, tell_agent):
        """The agent is in the conference and the write to customer-ringing won: dial,
        once. Returns the outcome of what the dial request said."""
        query = dict(callback=cb.callback_id, attempt=attempt_id)
        event = dict(callback_id=cb.callback_id, attempt_id=attempt_id)
        transfer = ivr.settings.transfer_timeout_seconds if ivr else 30
        try:
            sid = self.telephony.place_call(
                to=cb.number, from_=self.caller_id(ivr), url=self.url("/voice/customer/answer", **query),
                status_callback=self.url("/voice/customer/status", **query), timeout=transfer,
                fallback_url=self.url("/voice/call-fallback", leg="customer"), machine_detection=True)
        except MaybePlaced:
            log.warning("dialing %s for callback %s timed out: leg unknown until Twilio tells",
                        mask(cb.number), cb.callback_id)
            return Outcome(a.CUSTOMER_RINGING, True)
        except NumberRefused as exc:
            log.warning("Twilio refuses %s (code %s): callback %s ends", mask(cb.number), exc.code,
                        cb.callback_id)
            return self.handle(a.Event(a.DIAL_REFUSED, error_code=exc.code, **event), tell_agent)
        except TelephonyError as exc:
            log.warning("could not dial %s for callback %s: %s", mask(cb.number), cb.callback_id, exc)
            return self.handle(a.Event(a.DIAL_FAILED, error_code=exc.code, **event), tell_agent)
        self.handle(a.Event(a.CUSTOMER_PLACED, call_sid=sid, **event))
        return Outcome(a.CUSTOMER_RINGING, True)

    # -- a holding caller's offer, carried out ------------------------------------------

    def handle_offer(self, event, agent_id, tell_agent=True):
        """Apply one event to a holding caller's offer to `agent_id`: write the new phase
        (conditional on the offer as read), then carry out the effects. A lost race reads
        again. tell_agent as for `handle`."""
        for _ in range(3):
            call = self.storage.get_waiting_call(event.callback_id)
            view = offer_view(event.callback_id, call, event.attempt_id)
            step = a.apply(view, event, a.OFFER_TABLE)
            if step.ignored:
                log.info("caller %s offer %s: %s ignored (%s)", event.callback_id, event.attempt_id,
                         event.kind, step.ignored)
                return Outcome(view.state, False)
            try:
                return self._carry_out_offer(call, view, step, event, agent_id, tell_agent)
            except Conflict:
                continue
        log.warning("caller %s: %s lost three races; the sweep will look again", event.callback_id,
                    event.kind)
        return Outcome(a.ENDED, False)

    def _carry_out_offer(self, call, view, step, event, agent_id, tell_agent):
        if view.state != a.ENDED:
            ending = next((e for e in step.effects if isinstance(e, (a.BackInLine, a.LeaveLine))), None)
            if isinstance(ending, a.BackInLine):
                self.storage.end_offer(call, back_in_line=True)
            elif ending is not None:
                # Joined the agent: counted answered once, by the removal that wins.
                self.storage.end_offer(call, back_in_line=False,
                                       answered_at=self.clock.now() if ending.why == "served" else None)
            elif (step.state, step.agent_call_sid) != (view.state, view.agent_call_sid):
                self.storage.advance_offer(call, phase=step.state, agent_call_sid=step.agent_call_sid)
            log.info("caller %s offer %s: %s -> %s on %s", call.call_sid, view.attempt_id, view.state,
                     step.state, event.kind)
        freed, notice = False, None
        for effect in step.effects:
            if isinstance(effect, a.HangUp):
                self._hang_up(step.agent_call_sid)
            elif isinstance(effect, a.TellAgent):
                notice = effect.notice
                if tell_agent:
                    self._tell_agent(step.agent_call_sid, notice)
            elif isinstance(effect, a.ReleaseAgent):
                freed = self._release(agent_id, view.attempt_id, step.agent_call_sid, effect.why)
            elif isinstance(effect, a.MoveCaller):
                return self._move_caller(call, view.attempt_id, agent_id, step.agent_call_sid, tell_agent)
        return Outcome(step.state, True, freed, notice=notice)

    def _move_caller(self, call, offer_id, agent_id, agent_call_sid, tell_agent):
        """The agent is in the conference and the write to caller-joining won: the caller
        is redirected out of the queue into it, once (the agent is busy since accepting)."""
        event = dict(callback_id=call.call_sid, attempt_id=offer_id, call_sid=call.call_sid)
        try:
            self.telephony.redirect_call(call.call_sid, self.url(
                "/voice/caller/join", conference=caller_conference(call.call_sid), agent=agent_id, attempt=offer_id))
        except CallGone:
            return self.handle_offer(a.Event(a.CALLER_GONE, **event), agent_id, tell_agent)
        except TelephonyError as exc:
            log.warning("could not move caller %s to agent %s: %s", call.call_sid, agent_id, exc)
            return self.handle_offer(a.Event(a.CALLER_NOT_MOVED, **event), agent_id, tell_agent)
        return Outcome(a.CALLER_JOINING, True)

    # -- webhooks' entry points --------------------------------------------------------

    def _conference_callback(self, kind, key, attempt_id, agent_id):
        return self.url("/voice/conference", kind=kind, key=key, attempt=attempt_id, agent=agent_id)

    def _speech_of(self, kind, key):
        """The voice of the IVR this work came through."""
        try:
            record = self.storage.get_callback(key) if kind == CALLBACK else self.storage.get_waiting_call(key)
        except NotFound:
            record = None
        return _speech(self.directory.ivr(record.ivr_name) if record else None)

    def agent_answered(self, kind, key, attempt_id, agent_id, agent_call_sid):
        """The agent's phone picked up: the whisper, and 1 to accept (in the IVR's voice)."""
        answer = self._agent_answered(kind, key, attempt_id, agent_id, agent_call_sid)
        return replace(answer, speech=self._speech_of(kind, key))

    def _agent_answered(self, kind, key, attempt_id, agent_id, agent_call_sid):
        accept = self.url("/voice/agent/accept", kind=kind, key=key, attempt=attempt_id, agent=agent_id)
        if kind == CALLBACK:
            outcome = self.handle(a.Event(a.AGENT_ANSWERED, key, attempt_id, agent_call_sid))
            if outcome.state != a.AGENT_DECIDING:
                return AgentAnswer(notice=NOTICES["stale"])
            cb = self.storage.get_callback(key)
            ivr = self.directory.ivr(cb.ivr_name)
            tries = ivr.settings.max_retries if ivr else 1
            text = (f"Callback for {cb.queue_name}, to {speakable(cb.number)}. "
                    f"Attempt {cb.attempts + 1} of {tries}.")
            return AgentAnswer(whisper=text, accept_url=accept)
        outcome = self.handle_offer(a.Event(a.AGENT_ANSWERED, key, attempt_id, agent_call_sid), agent_id)
        call = self.storage.get_waiting_call(key)
        if outcome.state != a.AGENT_DECIDING or call is None:
            return AgentAnswer(notice=NOTICES[self._offer_over(call)])
        waited = int((self.clock.now() - call.joined_at).total_seconds() // 60)
        minutes = "under a minute" if waited < 1 else f"{waited} minute{'s' if waited > 1 else ''}"
        return AgentAnswer(whisper=f"A caller waiting in {call.queue_name} for {minutes}.",
                           accept_url=accept)

    def agent_pressed(self, kind, key, attempt_id, agent_id, agent_call_sid, digits):
        """The agent pressed a key (or none) after the whisper: 1 accepts, anything else declines."""
        answer = self._agent_pressed(kind, key, attempt_id, agent_id, agent_call_sid, digits)
        return replace(answer, speech=self._speech_of(kind, key))

    def _agent_pressed(self, kind, key, attempt_id, agent_id, agent_call_sid, digits):
        event = a.Event(a.agent_pressed(digits), key, attempt_id, agent_call_sid)
        accepted = event.kind == a.AGENT_ACCEPTED
        conference_callback = self._conference_callback(kind, key, attempt_id, agent_id)
        if accepted:
            # Busy before the other party comes: the agent is on this call from now on.
            self._quietly(self.storage.agent_busy, agent_id, attempt_id, agent_call_sid,
                          self.clock.now())
        if kind == CALLBACK:
            outcome = self.handle(event, tell_agent=False)
        else:
            outcome = self.handle_offer(event, agent_id, tell_agent=False)
        if accepted and outcome.applied and outcome.state != a.ENDED:
            # Into the conference at once; the customer is dialed (the caller moved) when
            # the conference says the agent is in it.
            if kind == CALLBACK:
                return AgentAnswer(f"callback-{key}-{attempt_id}", announcement="Calling the customer now.",
                                   status_callback=conference_callback)
            call = self.storage.get_waiting_call(key)
            queue = call.queue_name if call else "the queue"
            return AgentAnswer(caller_conference(key), announcement=f"Caller from {queue}. Connecting now.",
                               status_callback=conference_callback)
        if outcome.applied and outcome.notice:
            return AgentAnswer(notice=NOTICES[outcome.notice])
        if not accepted and outcome.applied:
            return AgentAnswer(notice=NOTICES["declined"])
        if kind == CALL:
            return AgentAnswer(notice=NOTICES[self._offer_over(self.storage.get_waiting_call(key))])
        return AgentAnswer(notice=NOTICES["stale"])

    @staticmethod
    def _offer_over(call):
        """What an agent hears of an offer that is over: the caller hung up, or moved on."""
        return "caller-gone" if call is None else "stale"

    def caller_joining(self, call_sid, agent_id, offer_id):
        """A holding caller moved out of the queue: True when this offer to this agent still
        waits for them; otherwise they go back in the queue (their record keeps its place)."""
        call = self.storage.get_waiting_call(call_sid)
        return (offer_view(call_sid, call, offer_id).state == a.CALLER_JOINING
                and call.agent_id == agent_id)

    def agent_call_ended(self, kind, key, attempt_id, agent_id, agent_call_sid, call_status):
        """The agent's leg reached a final status: free or park the agent, fix the work."""
        event = a.Event(a.agent_call_ended(call_status), key, attempt_id, agent_call_sid, call_status)
        outcome = self.handle(event) if kind == CALLBACK else self.handle_offer(event, agent_id)
        return outcome.freed_agent

    def customer_answered(self, callback_id, attempt_id, call_sid, answered_by):
        """The customer's phone picked up: a person joins the agent, a machine fails the try."""
        event = a.customer_answered(answered_by)
        outcome = self.handle(a.Event(event, callback_id, attempt_id, call_sid))
        try:
            cb = self.storage.get_callback(callback_id)
        except NotFound:
            cb = None
        ivr = self.directory.ivr(cb.ivr_name) if cb else None
        if event == a.CUSTOMER_HUMAN and outcome.applied and outcome.state == a.CUSTOMER_ANSWERED:
            # The customer hears the company's name, not the IVR's internal one.
            name = ivr.settings.announced_name(cb.ivr_name) if ivr else cb.ivr_name
            return CustomerAnswer(
                f"callback-{callback_id}-{attempt_id}",
                announcement=f"Hello, this is the callback you requested from {name}. "
                             "Connecting you to an agent now.",
                status_callback=self._conference_callback(CALLBACK, callback_id, attempt_id, cb.agent_id),
                speech=_speech(ivr))
        if event == a.CUSTOMER_MACHINE:
            return CustomerAnswer(None, hang_up=True)
        return CustomerAnswer(None, announcement="We are sorry, the agent is no longer available. "
                                                 "We will call you again. Goodbye.", hang_up=True,
                              speech=_speech(ivr))

    def customer_call_ended(self, callback_id, attempt_id, call_sid, call_status):
        """The customer's leg reached a final status."""
        return self.handle(a.Event(a.customer_call_ended(call_status), callback_id, attempt_id,
                                   call_sid, call_status))

    def conference_event(self, kind, key, attempt_id, agent_id, status_event, call_sid):
        """A conference status callback: participants joining and leaving, its end."""
        if kind == CALLBACK:
            try:
                cb = self.storage.get_callback(key)
            except NotFound:
                return None
            view = attempt_view(cb, attempt_id)
            kind_of = a.conference_event(status_event, call_sid, view) if view else None
            if kind_of is None:
                return None
            return self.handle(a.Event(kind_of, key, attempt_id, call_sid))
        view = offer_view(key, self.storage.get_waiting_call(key), attempt_id)
        kind_of = a.conference_event(status_event, call_sid, view)
        if kind_of is None:
            return None
        return self.handle_offer(a.Event(kind_of, key, attempt_id, call_sid), agent_id)

    # -- Twilio as the source of truth -------------------------------------------------

    def _twilio_leg(self, sid, number, since):
        """(sid, status) of a leg as Twilio has it; status None when Twilio cannot say
        now, "not-placed" when it holds no call to that number since the attempt began."""
        if not sid and not (number and since):
            return None, None
        try:
            if sid:
                return sid, self.telephony.call_status(sid)
            calls = self.telephony.calls_to(number, since)
        except TelephonyError as exc:
            log.info("could not ask Twilio about %s: %s", sid or mask(number), exc)
            return sid, None
        if not calls:
            return None, "not-placed"
        return calls[0].sid, calls[0].status

    def reconcile(self, callback_id, attempt_id):
        """An expected event is late: ask Twilio what became of the attempt's calls and apply
        their real status as events. True when that changed the attempt."""
        now = self.clock.now()
        try:
            cb = self.storage.get_callback(callback_id)
        except NotFound:
            return False
        view = attempt_view(cb, attempt_id)
        if view is None or view.state == a.ENDED or (cb.sweep_at and cb.sweep_at > now):
            return False  # the index snapshot was stale: the attempt has moved on
        attempt = cb.attempt(attempt_id)
        event = dict(callback_id=callback_id, attempt_id=attempt_id)
        changed = False
        agent_phone = self._agent_phone(attempt.agent_id)
        sid, status = self._twilio_leg(view.agent_call_sid, agent_phone, attempt.started_at)
        if status == "not-placed" and view.state == a.AGENT_RINGING:
            changed |= self.handle(a.Event(a.AGENT_NOT_PLACED, **event)).applied
        elif status in FINAL_CALL_STATUSES:
            changed |= self.handle(a.Event(a.agent_call_ended(status), call_sid=sid, call_status=status,
                                           **event)).applied
        elif status == "in-progress" and view.state == a.AGENT_JOINING:
            kind = self._late_join(cb.conference_name, sid)
            changed |= kind is not None and self.handle(a.Event(kind, call_sid=sid, **event)).applied
        elif status == "in-progress" and view.state in (a.AGENT_RINGING, a.AGENT_DECIDING):
            changed |= self.handle(a.Event(a.AGENT_SILENT, call_sid=sid, **event)).applied
        elif sid and not view.agent_call_sid:
            changed |= self.handle(a.Event(a.AGENT_PLACED, call_sid=sid, **event)).applied
        cb = self.storage.get_callback(callback_id)
        view = attempt_view(cb, attempt_id)
        if view.state in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED, a.CONNECTED):
            sid, status = self._twilio_leg(view.customer_call_sid, cb.number, attempt.started_at)
            if status == "not-placed":
                changed |= self.handle(a.Event(a.DIAL_FAILED, **event)).applied
            elif status in FINAL_CALL_STATUSES:
                changed |= self.handle(a.Event(a.customer_call_ended(status), call_sid=sid,
                                               call_status=status, **event)).applied
            elif (status == "in-progress" and view.state != a.CONNECTED
                  and self._joined_agent(cb.conference_name, view.agent_call_sid, sid)):
                changed |= self.handle(a.Event(a.CUSTOMER_JOINED, call_sid=sid, **event)).applied
            elif sid and not view.customer_call_sid:
                changed |= self.handle(a.Event(a.CUSTOMER_PLACED, call_sid=sid, **event)).applied
        if not changed:
            cb = self.storage.get_callback(callback_id)
            view = attempt_view(cb, attempt_id)
            if view.state != a.ENDED:
                later = now + (CONNECTED_CHECK if view.state == a.CONNECTED else EVENT_MARGIN)
                try:
                    self.storage.postpone_sweep(cb, later)
                except Conflict:
                    pass
        return changed

    def _participants(self, conference_name):
        """The CallSids Twilio lists in the conference now; None when it cannot say."""
        try:
            return self.telephony.conference_participants(conference_name)
        except TelephonyError as exc:
            log.info("could not read conference %s: %s", conference_name, exc)
            return None

    def _late_join(self, conference_name, agent_call_sid):
        """The event of an agent who accepted, whose call goes on, but whose join is late:
        in the conference, that is their join (the customer is dialed, the caller moved);
        not in it long past accepting, silent (their call is ended). None when Twilio
        cannot say now: the next sweep asks again."""
        joined = self._participants(conference_name)
        if joined is None:
            return None
        return a.AGENT_JOINED if agent_call_sid in joined else a.AGENT_SILENT

    def _joined_agent(self, conference_name, agent_call_sid, customer_call_sid):
        """True when Twilio lists the customer's call (and the agent's, when known) in the
        conference now. Answered is not joined: the customer may still hear the
        announcement, or the agent may have left before they came."""
        joined = self._participants(conference_name) or frozenset()
        return customer_call_sid in joined and (agent_call_sid is None or agent_call_sid in joined)

    def _agent_phone(self, agent_id):
        try:
            return self.storage.get_agent(agent_id).phone if agent_id else None
        except NotFound:
            return None

    def reconcile_agent(self, agent):
        """A reserved or busy agent the sweep looks at: if Twilio says their call is over
        (or was never placed), apply that, so they are free within two sweeps; while it goes
        on with a holding caller, apply what Twilio says of the caller's call."""
        sid, status = self._twilio_leg(agent.call_sid, agent.phone, agent.status_changed_at)
        over = status in FINAL_CALL_STATUSES or status == "not-placed"
        if over:
            kind = a.AGENT_NOT_PLACED if status == "not-placed" else a.agent_call_ended(status)
            event = a.Event(kind, agent.work_key, agent.attempt_id, sid, status)
        elif status == "in-progress" and agent.work_kind == CALL:
            event = self._offer_on_call(agent, sid)
        else:
            event = None
        if event is not None and agent.work_key and agent.work_kind in (CALL, CALLBACK):
            outcome = (self.handle(event) if agent.work_kind == CALLBACK
                       else self.handle_offer(event, agent.agent_id))
            if outcome.freed_agent or not over:
                return outcome.freed_agent
        if not over:
            return False
        why = "available" if status in ("completed", "not-placed") else "missed"
        return self._release(agent.agent_id, agent.attempt_id, sid, why)

    def _offer_on_call(self, agent, agent_call_sid):
        """The event Twilio's record tells of a holding caller's offer while the agent's
        call goes on: silent past the whisper, the caller gone on the way or in the
        conference with the agent; None when it tells nothing new."""
        key, offer_id = agent.work_key, agent.attempt_id
        view = offer_view(key, self.storage.get_waiting_call(key), offer_id)
        if view.state in (a.AGENT_RINGING, a.AGENT_DECIDING):
            whisper_over = (agent.status_changed_at + timedelta(seconds=self.ring_timeout) + WHISPER
                            + timedelta(seconds=ACCEPT_SECONDS) + EVENT_MARGIN)
            if self.clock.now() < whisper_over:
                return None
            return a.Event(a.AGENT_SILENT, key, offer_id, agent_call_sid)
        if view.state == a.AGENT_JOINING:
            # Busy since accepting: their join is late past the same wait as a callback's.
            if self.clock.now() < self._deadline(a.AGENT_JOINING, None, agent.status_changed_at):
                return None
            kind = self._late_join(caller_conference(key), agent_call_sid)
            return a.Event(kind, key, offer_id, agent_call_sid) if kind else None
        if view.state != a.CALLER_JOINING:
            return None
        try:
            caller_status = self.telephony.call_status(key)
        except TelephonyError:
            return None
        if caller_status in FINAL_CALL_STATUSES:
            return a.Event(a.CALLER_GONE, key, offer_id, key)
        if caller_status == "in-progress" and self._joined_agent(caller_conference(key), agent_call_sid, key):
            return a.Event(a.CUSTOMER_JOINED, key, offer_id, key)
        return None
