"""Choosing work for available agents, claiming it and ringing the agent.

A Twilio queue is strictly FIFO, so the order (priority, then place in line, from
`domain.rules.rank_work`) lives here. Work is claimed together with the agent in one
DynamoDB transaction, so two dispatchers running at once never ring one agent twice or
dial one callback twice. What the request to ring the agent says is an event of the
attempt (or offer), applied by `effects.Effects`.
"""
import logging
import uuid
from datetime import timedelta

from callback.domain import attempts as a
from callback.domain import records as m
from callback.domain import transitions
from callback.domain.answers import Offer
from callback.domain.customer_clock import waiting_reason
from callback.domain.dialing import why_not_callable
from callback.domain.hours import add_open_time, is_open, next_opening, open_between
from callback.domain.rules import CALL, CALLBACK, WorkCandidate, rank_work
from callback.storage import Conflict, NotFound
from callback.telephony.rest import AccountRefused, NumberRefused, TelephonyError, maybe_placed
from callback.work.effects import Effects
from callback.work.ledger import AGENT_LEG, CREATES_IN_FLIGHT, CUSTOMER_LEG, leg_id

log = logging.getLogger(__name__)

CANDIDATES_PER_QUEUE = 5
MAX_CLAIM_TRIES = 5


class Chooser(Effects):
    """Matches available agents with work: claims it with the agent, rings the agent."""

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
        room = CREATES_IN_FLIGHT - self.in_flight() if agents else 0
        for agent in agents:
            if len(offers) >= room:
                # Twilio queues creates past the account's pace: the rest waits for the next
                # round (a freed agent, a new request, the minute sweep).
                log.info("%d calls placed and not ringing yet: %d agents wait for the next dispatch",
                         CREATES_IN_FLIGHT, len(agents) - len(offers))
                break
            offer = self._offer_next_work(agent, skip)
            if offer:
                offers.append(offer)
                skip.add(offer.key)
        return offers

    def set_presence(self, agent_id, status, away_reason=None):
        """An agent says available or offline (with why they are away, from their own page);
        an available one is offered work at once.

        Conflict while they are reserved or on a call, NotFound for no such agent.
        """
        reason = away_reason if status == m.OFFLINE else None
        agent = self.storage.set_agent_presence(agent_id, status, self.clock.now(), away_reason=reason)
        if status == m.AVAILABLE:
            try:
                self.dispatch(agent_id=agent_id)
            except Exception:  # the agent is available; the sweep offers work if this failed
                log.exception("dispatch after agent %s became available failed", agent_id)
            agent = self.storage.get_agent(agent_id)
        return agent
    def blocked_reason(self, cb):
        """Why an open callback cannot be dialed at all, for the admin; None when it can."""
        if cb.status not in m.OPEN_STATUSES:
            return None
        ivr = self.directory.ivr(cb.ivr_name)
        if self.caller_id(ivr) is None:
            return (f"IVR {cb.ivr_name} has no phone number to call from, so nobody can be "
                    "called back: add its Twilio number. The callback keeps its place in line.")
        hours, now = (ivr.settings.hours, self.clock.now()) if ivr else (None, None)
        if cb.status == m.PENDING and hours is not None and not is_open(hours, now):
            opening = next_opening(hours, now)
            when = opening.astimezone(hours.tz).strftime("%a %b %d %H:%M %Z") if opening else "none in sight"
            return (f"IVR {cb.ivr_name} is closed: callbacks are dialed only while it is open. This one "
                    f"keeps its place in line and waits for the opening ({when}).")
        return None

    def waiting_reason(self, cb):
        """Why a pending callback is not dialed now although it may be soon, for the portal
        ("outside the customer's hours (their time 07:12)"); None when nothing holds it."""
        ivr, now = self.directory.ivr(cb.ivr_name), self.clock.now()
        if cb.status != m.PENDING or ivr is None:
            return None
        if cb.window_start is not None and now < cb.window_start:
            start = f"{cb.window_start.astimezone(ivr.settings.hours.tz):%H:%M}"
            if cb.from_api:
                return f"window from {start} ({cb.asked_through})"
            return f"slot at {start} (the caller's choice)"
        return waiting_reason(ivr.settings.customer_clock(cb.number), now)

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
            # Callbacks are never dialed while the IVR is closed: they keep their place, and
            # callers still holding at closing are still served.
            if not is_open(ivr.settings.hours, now):
                continue
            for cb in self.storage.due_callbacks(queue_name, now, limit=CANDIDATES_PER_QUEUE):
                if cb.expires_at <= now:
                    self.expire_or_extend(cb, now)
                    continue
                if not self.customer_hours_open(cb, ivr, now):
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
                # Someone else took the work, or the agent, or a number it would ring is
                # held by a live leg: fine, try the next one.
                log.info("claim of %s %s for agent %s lost", candidate.kind, candidate.key, agent.agent_id)
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
        why_not = why_not_callable(callback.number, ivr.settings.dial_rules) if ivr else None
        if why_not:
            # Stored before the IVR's rules (or the numbering data) changed: checked again
            # at the moment of dialing, and never dialed.
            log.warning("callback %s: its number is not one %s calls (%s); it ends undialed",
                        callback.callback_id, callback.ivr_name, why_not)
            self.storage.commit(callback, transitions.refuse_number(callback, now))
            raise Conflict("not worth a call")  # the agent is offered the next work
        if ivr is not None and not is_open(ivr.settings.hours, self.clock.now()):
            raise Conflict("closed")  # closed since the work was chosen: checked at the ringing
        attempt_id = uuid.uuid4().hex[:16]
        # The customer's number is held from the claim: no other attempt, of any queue,
        # rings it until this attempt's call to it (if any) has ended.
        legs = (self.new_leg(AGENT_LEG, CALLBACK, callback.callback_id, attempt_id, agent.phone, now,
                             agent.agent_id),
                self.new_leg(CUSTOMER_LEG, CALLBACK, callback.callback_id, attempt_id, callback.number, now))
        self.storage.claim_callback(agent, callback, attempt_id, now,
                                    self._deadline(a.AGENT_RINGING, ivr, now), a.AGENT_RINGING, legs)
        return self._ring_agent(agent, ivr, CALLBACK, callback.callback_id, attempt_id, self.handle)

    def _offer_call(self, agent, call, now):
        ivr = self.directory.ivr(call.ivr_name)
        offer_id = uuid.uuid4().hex[:16]
        legs = (self.new_leg(AGENT_LEG, CALL, call.call_sid, offer_id, agent.phone, now, agent.agent_id),)
        self.storage.claim_waiting_call(agent, call, now, offer_id, legs=legs)
        return self._ring_agent(agent, ivr, CALL, call.call_sid, offer_id,
                                lambda event: self.handle_offer(event, agent.agent_id))

    def _ring_agent(self, agent, ivr, kind, key, attempt_id, handle):
        """Ring the agent for the work just claimed; `handle` applies what the request says."""
        query = dict(kind=kind, key=key, attempt=attempt_id, agent=agent.agent_id)
        event = dict(callback_id=key, attempt_id=attempt_id)
        self.leg_placing(agent.phone, leg_id(AGENT_LEG, attempt_id))
        try:
            sid = self._place_agent_call(agent, ivr, query)
        except TelephonyError as exc:
            if maybe_placed(exc):
                # It may ring: the status callbacks (their URLs name the attempt), the ledger
                # or the sweep's reading of Twilio settle it. Ringing them again now could
                # ring them twice.
                log.warning("ringing agent %s for %s %s: no clear answer (%s); leg unknown", agent.agent_id,
                            kind, key, exc.status or type(exc).__name__)
                return Offer(agent.agent_id, kind, key, None)
            if isinstance(exc, AccountRefused):
                self.account_refused(exc, agent.phone)
            handle(a.Event(a.AGENT_REFUSED if isinstance(exc, NumberRefused) else a.AGENT_NOT_PLACED,
                           error_code=exc.code, **event))
            raise
        self.leg_learned(agent.phone, leg_id(AGENT_LEG, attempt_id), sid, "queued")
        handle(a.Event(a.AGENT_PLACED, call_sid=sid, **event))
        self._quietly(self.storage.set_agent_call, agent.agent_id, attempt_id, sid)
        log.info("%s %s offered to agent %s (call %s)", kind, key, agent.agent_id, sid)
        return Offer(agent.agent_id, kind, key, sid)

    def customer_hours_open(self, cb, ivr, now):
        """True when the customer may be called now; otherwise the callback is made to wait
        for their calling window (a conditional write: its place in line is kept)."""
        clock = ivr.settings.customer_clock(cb.number)
        if clock.is_open(now):
            return True
        opens = clock.next_opening(now)
        try:
            self.storage.commit(cb, transitions.wait_for_hours(cb, opens))
            log.info("callback %s waits for its customer's hours (%s)", cb.callback_id,
                     waiting_reason(clock, now))
        except Conflict:
            pass  # taken, changed or waiting already: the next round reads it again
        return False

    def expire_or_extend(self, cb, now):
        """A pending callback whose expiration time has come ends, unless less open time
        has passed since its request than its IVR's Expiration Time (the hours changed after
        it was stored: a holiday added): then it lives on until that much has. True when it
        expired."""
        ivr = self.directory.ivr(cb.ivr_name)
        hours = ivr.settings.hours if ivr else None
        try:
            # A time the caller chose ends with its slot, whatever the hours did.
            if hours is not None and not hours.always_open and cb.window_start is None:
                budget = timedelta(minutes=ivr.settings.expiration_minutes)
                later = add_open_time(hours, cb.requested_at, budget)
                if open_between(hours, cb.requested_at, now) < budget and later is not None and later > now:
                    self.storage.commit(cb, transitions.postpone_expiry(cb, later))
                    log.info("callback %s: its IVR's hours changed; it now expires at %s", cb.callback_id,
                             later.isoformat())
                    return False
            self.storage.commit(cb, transitions.expire(cb, now))
            log.info("callback %s expired", cb.callback_id)
            return True
        except Conflict:
            return False
