"""A step of the state machine, carried out.

What an event does to a callback attempt, or to a holding caller's offer, is decided by
the tables in `domain/attempts.py` (`attempts.apply`); this module reads the record, writes
the new state (conditional on the state as read: an attempt's phase and CallSids; an
offer's id, phase and agent CallSid) and carries out the step's effects: end or advance
the attempt, hang up a leg, tell the agent, free the agent, dial the customer, move the
holding caller into the agent's conference. A lost race reads again.
"""
import logging
from datetime import timedelta

from callback.domain import attempts as a
from callback.domain import detection, offers, transitions
from callback.domain import records as m
from callback.domain import voicemail as vm
from callback.domain.answers import Outcome
from callback.domain.hours import is_open, next_opening
from callback.domain.numbers import mask
from callback.domain.rules import (
    agent_after,
    decide_after_failed_attempt,
    decide_after_uncounted_attempt,
    number_refused,
    settle_attempt,
    within_hours,
)
from callback.domain.texts import ABOUT_TO_CALL, NOT_REACHED
from callback.domain.views import attempt_view, caller_conference, offer_view
from callback.storage import Conflict, NotFound
from callback.telephony.rest import AccountRefused, CallGone, NumberRefused, TelephonyError, maybe_placed
from callback.work.ledger import AGENT_LEG, CUSTOMER_LEG, Ledger, leg_id
from callback.work.texts import Texter
from callback.work.verdicts import Verdicts

log = logging.getLogger(__name__)


class Effects(Ledger, Texter, Verdicts):
    """Applies events to attempts and offers, and carries out what each step says."""

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
            if view.state == a.MACHINE_HEARD and event.kind in detection.ENDINGS:
                event = self._who_ended(cb, view, event)
            step = a.apply(view, event, detection.table_for(view))
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
        # The verdict a step notes (a person's), or the one already on the attempt.
        noted = (step.answered_by if a.NoteVerdict() in effects else None) or cb.answered_by
        if view.state != a.ENDED:
            sids = dict(agent_call_sid=step.agent_call_sid, customer_call_sid=step.customer_call_sid)
            if isinstance(ending, a.Complete):
                self.storage.commit(cb, transitions.complete(cb, now))
                status = m.COMPLETED
            elif isinstance(ending, a.RefuseNumber):
                status = self.storage.commit(cb, transitions.end_attempt(
                    cb, outcome="number-refused", counted=False, now=now, decision=number_refused(),
                    error_code=event.error_code, **sids))
            elif isinstance(ending, a.EndAttempt):
                status = self._end_attempt(cb, ending, now, event.error_code, sids)
            elif step.state != view.state or (step.agent_call_sid, step.customer_call_sid) != (
                    view.agent_call_sid, view.customer_call_sid) or noted != cb.answered_by:
                # An agent joining after a voicemail hears it first: their join comes that much later.
                later = vm.joining_time(cb) if step.state == a.AGENT_JOINING else timedelta(0)
                dialing = step.state == a.CUSTOMER_RINGING and view.state != step.state
                self.storage.commit(cb, transitions.advance(
                    cb, phase=step.state, sweep_at=self._deadline(step.state, ivr, now) + later,
                    connected=step.state == a.CONNECTED, now=now, answered_by=noted,
                    detection=self.leg_detection(ivr) if dialing else None, **sids))
                status = m.CONNECTED if step.state == a.CONNECTED else status
            log.info("callback %s attempt %s: %s -> %s on %s", cb.callback_id, view.attempt_id,
                     view.state, step.state, event.kind)
        freed, notice = False, None
        attempt = cb.attempt(view.attempt_id)
        for effect in effects:
            if isinstance(effect, a.HangUp):
                customer = effect.leg == a.CUSTOMER
                number = cb.number if customer else self.agent_phone(attempt.agent_id)
                self._hang_up_leg(number, view.attempt_id, CUSTOMER_LEG if customer else AGENT_LEG,
                                  step.customer_call_sid if customer else step.agent_call_sid)
            elif isinstance(effect, a.TellAgent):
                notice = effect.notice
                if notice == "result":
                    notice = "retry" if status == m.PENDING else "expired"
                self._tell_agent(self.agent_phone(attempt.agent_id), view.attempt_id, step.agent_call_sid,
                                 notice, tell_agent)
            elif isinstance(effect, a.ReleaseAgent) and attempt.agent_id:
                freed = self._release(attempt.agent_id, view.attempt_id, step.agent_call_sid, effect.why,
                                      effect.call_over)
            elif isinstance(effect, a.WarnAgent):
                self._warn_agent(cb, view.attempt_id, step.agent_call_sid)
            elif isinstance(effect, a.ReadVerdict):
                read = self._read_verdict(cb.callback_id, view.attempt_id, step.customer_call_sid, tell_agent)
                if read is not None:
                    return read
            elif isinstance(effect, a.DialCustomer):
                dialed = self._dial_customer(cb, view.attempt_id, ivr, tell_agent)
                if not dialed.applied or dialed.state == a.ENDED:
                    return dialed
        if step.state == a.ENDED and view.state != a.ENDED and a.HangUp(a.CUSTOMER) not in effects:
            # Ending an attempt ends its legs: the customer's call is ended (or their number
            # freed, never dialed); it stays held until Twilio says that call ended.
            self._hang_up_leg(cb.number, view.attempt_id, CUSTOMER_LEG, None)
        return Outcome(step.state, True, freed, status, notice)

    def _end_attempt(self, cb, effect, now, error_code, sids):
        earlier = [h for h in cb.history if h.attempt_id != cb.attempt_id]
        settled = settle_attempt(effect.counted, effect.outcome, earlier)
        ivr = self.directory.ivr(cb.ivr_name)
        settings = ivr.settings if ivr else None
        hours = settings.hours if settings else None
        if settled.counted:
            decision = decide_after_failed_attempt(
                failed_attempts=cb.attempts + 1, max_retries=settings.max_retries if settings else 1,
                retry_minutes=settings.retry_minutes if settings else 5, expires_at=cb.expires_at, now=now,
                hours=hours)
        else:
            # Due again after its pause, and not before the IVR opens (the record says when).
            due = now + settled.delay
            due = (next_opening(hours, due) or due) if hours is not None else due
            decision = decide_after_uncounted_attempt(expires_at=cb.expires_at, now=now, due_at=due)
        if settings and not decision.expire:
            # The next try waits for the customer's calling window; past the expiration time
            # it would never happen.
            opens = settings.customer_clock(cb.number).next_opening(decision.due_at)
            decision = within_hours(decision, opens, cb.expires_at)
        status = self.storage.commit(cb, transitions.end_attempt(
            cb, outcome=effect.outcome, counted=settled.counted, now=now, decision=decision,
            error_code=error_code, **sids))
        log.info("callback %s attempt %s ended (%s, %s): %s", cb.callback_id, cb.attempt_id,
                 effect.outcome, "counted" if settled.counted else "not counted", status)
        if status == m.EXPIRED:
            self.text_about(cb, NOT_REACHED)  # when the IVR asks for it; never fails this
        return status

    def _release(self, agent_id, attempt_id, call_sid, why, call_over):
        """Free (or set away) the agent of this attempt, once, when their call is over; while
        it goes on, note why on their leg, which frees them when Twilio says it ended.
        True when this freed them."""
        try:
            agent = self.storage.get_agent(agent_id)
        except NotFound:
            return False
        if agent.attempt_id != attempt_id or agent.status not in (m.RESERVED, m.BUSY):
            return False
        id_ = leg_id(AGENT_LEG, attempt_id)
        if not call_over:
            self.leg_over(agent.phone, id_, release_why=why)
            return False
        leg = self._leg(agent.phone, id_)
        if leg is not None and leg.release_why and why in (a.AVAILABLE, a.MISSED):
            why = leg.release_why  # what ended their work while they were still on the line
        after = agent_after(why, agent.misses)
        released = self.storage.release_agent(agent_id, now=self.clock.now(), attempt_id=attempt_id,
                                              call_sid=call_sid, status=after.status,
                                              away_reason=after.away_reason, misses=after.misses,
                                              leg=(agent.phone, id_))
        if released and after.away_reason:
            log.info("agent %s set away: %s", agent_id, after.away_reason)
        return released

    def _hang_up_leg(self, number, attempt_id, role, call_sid):
        """End one leg of an attempt or offer: marked over in the ledger (so a CallSid learned
        later is hung up at once), then hung up when its CallSid is known."""
        leg = self.leg_over(number, leg_id(role, attempt_id))
        if leg is None:
            if call_sid:  # not in the ledger (placed before it existed)
                self._hang_up(call_sid)
            return
        if not leg.call_sid and call_sid:
            leg = self.leg_learned(number, leg.leg_id, call_sid) or leg
        self.end_leg_call(leg)

    def _hang_up(self, call_sid):
        if not call_sid:
            return
        try:
            self._twilio(self.telephony.hang_up, call_sid)
        except TelephonyError as exc:
            log.info("could not hang up %s: %s; the sweep will look again", call_sid, exc)

    def _tell_agent(self, number, attempt_id, agent_call_sid, notice, now=True):
        """The agent's work is over: their leg is marked over with the notice, and they are
        told now (or by their own webhook's answer, `now` False); the sweep tells them again,
        then ends the call, if this fails."""
        leg = self.leg_over(number, leg_id(AGENT_LEG, attempt_id), notice=notice)
        if not now:
            return
        if leg is None:
            if agent_call_sid:  # not in the ledger (placed before it existed)
                try:
                    self._twilio(self.telephony.redirect_call, agent_call_sid,
                                 self.url("/voice/notice", message=notice))
                except TelephonyError as exc:
                    log.info("could not tell the agent (%s): %s", notice, exc)
            return
        if not leg.call_sid and agent_call_sid:
            leg = self.leg_learned(number, leg.leg_id, agent_call_sid) or leg
        self.tell_agent_leg(leg, notice)

    def _dial_customer(self, cb, attempt_id, ivr, tell_agent):
        """The agent is in the conference and the write to customer-ringing won: dial,
        once. Returns the outcome of what the dial request said."""
        query = dict(callback=cb.callback_id, attempt=attempt_id)
        event = dict(callback_id=cb.callback_id, attempt_id=attempt_id)
        transfer = ivr.settings.transfer_timeout_seconds if ivr else 30
        customer_leg = leg_id(CUSTOMER_LEG, attempt_id)
        if ivr is not None and not is_open(ivr.settings.hours, self.clock.now()):
            # Hours are checked again at the moment of dialing: the agent accepted just as
            # the IVR closed. Never dialed; the callback waits for the opening, uncounted.
            log.info("callback %s: the IVR closed before its customer was dialed", cb.callback_id)
            return self.handle(a.Event(a.CENTER_CLOSED, **event), tell_agent)
        if ivr and not ivr.settings.customer_clock(cb.number).is_open(self.clock.now()):
            # Checked again at the moment of dialing: the window may have closed since the
            # work was chosen. Their leg, reserved and never placed, is let go with the attempt.
            log.info("callback %s: outside its customer's hours now; not dialed", cb.callback_id)
            return self.handle(a.Event(a.OUTSIDE_HOURS, **event), tell_agent)
        if not self.customer_placing(cb.number, customer_leg):
            log.info("callback %s: its customer holds in a queue now; not dialed", cb.callback_id)
            return self.handle(a.Event(a.CUSTOMER_ON_LINE, **event), tell_agent)
        try:
            sid = self.telephony.place_call(
                to=cb.number, from_=self.caller_id(ivr), timeout=transfer,
                status_callback=self.url("/voice/customer/status", **query),
                **self._customer_leg(cb, attempt_id, ivr))
        except AccountRefused as exc:
            self.account_refused(exc, cb.number)
            self.leg_gone(cb.number, customer_leg)
            return self.handle(a.Event(a.DIAL_HELD, error_code=exc.code, **event), tell_agent)
        except NumberRefused as exc:
            log.warning("Twilio refuses %s (code %s): callback %s ends", mask(cb.number), exc.code,
                        cb.callback_id)
            self.leg_gone(cb.number, customer_leg)
            return self.handle(a.Event(a.DIAL_REFUSED, error_code=exc.code, **event), tell_agent)
        except TelephonyError as exc:
            if maybe_placed(exc):
                log.warning("dialing %s for callback %s: no clear answer (%s); leg unknown until Twilio "
                            "tells", mask(cb.number), cb.callback_id, exc.status or type(exc).__name__)
                return Outcome(a.CUSTOMER_RINGING, True)
            log.warning("could not dial %s for callback %s: %s", mask(cb.number), cb.callback_id, exc)
            self.leg_gone(cb.number, customer_leg)
            return self.handle(a.Event(a.DIAL_FAILED, error_code=exc.code, **event), tell_agent)
        # Learned before the attempt hears of it: if the attempt ended meanwhile (the agent
        # hung up while this request was out), the leg is over and the call is ended now.
        self.leg_learned(cb.number, customer_leg, sid, "queued")
        self.handle(a.Event(a.CUSTOMER_PLACED, call_sid=sid, **event))
        self.text_about(cb, ABOUT_TO_CALL)  # the first attempt's call only: one text of a kind
        return Outcome(a.CUSTOMER_RINGING, True)

    # -- a holding caller's offer, carried out ------------------------------------------

    def handle_offer(self, event, agent_id, tell_agent=True):
        """Apply one event to a holding caller's offer to `agent_id`: write the new phase
        (conditional on the offer as read), then carry out the effects. A lost race reads
        again. tell_agent as for `handle`."""
        for _ in range(3):
            call = self.storage.get_waiting_call(event.callback_id)
            view = offer_view(event.callback_id, call, event.attempt_id)
            step = a.apply(view, event, offers.OFFER_TABLE)
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
            # Ended: back in line, or out of it (joined the agent: counted answered once, by
            # the removal that wins), with the agent's log entry.
            ending = transitions.offer_ending(call, step.effects, self.clock.now())
            if ending is not None:
                self.storage.commit_offer(call, ending)
            elif (step.state, step.agent_call_sid) != (view.state, view.agent_call_sid):
                self.storage.commit_offer(call, transitions.advance_offer(
                    call, phase=step.state, agent_call_sid=step.agent_call_sid))
            log.info("caller %s offer %s: %s -> %s on %s", call.call_sid, view.attempt_id, view.state,
                     step.state, event.kind)
        freed, notice = False, None
        for effect in step.effects:
            if isinstance(effect, a.HangUp):
                self._hang_up_leg(self.agent_phone(agent_id), view.attempt_id, AGENT_LEG,
                                  step.agent_call_sid)
            elif isinstance(effect, a.TellAgent):
                notice = effect.notice
                self._tell_agent(self.agent_phone(agent_id), view.attempt_id, step.agent_call_sid, notice,
                                 tell_agent)
            elif isinstance(effect, a.ReleaseAgent):
                freed = self._release(agent_id, view.attempt_id, step.agent_call_sid, effect.why,
                                      effect.call_over)
            elif isinstance(effect, a.MoveCaller):
                return self._move_caller(call, view.attempt_id, agent_id, step.agent_call_sid, tell_agent)
        return Outcome(step.state, True, freed, notice=notice)

    def _move_caller(self, call, offer_id, agent_id, agent_call_sid, tell_agent):
        """The agent is in the conference and the write to caller-joining won: the caller
        is redirected out of the queue into it, once (the agent is busy since accepting).
        The URL names their queue and place, so a join that fails puts them back without
        DynamoDB."""
        event = dict(callback_id=call.call_sid, attempt_id=offer_id, call_sid=call.call_sid)
        try:
            self.telephony.redirect_call(call.call_sid, self.url(
                "/voice/caller/join", conference=caller_conference(call.call_sid, offer_id), agent=agent_id,
                attempt=offer_id, ivr=call.ivr_name, queue=call.queue_name,
                joined=int(call.joined_at.timestamp())))
        except CallGone:
            return self.handle_offer(a.Event(a.CALLER_GONE, **event), agent_id, tell_agent)
        except TelephonyError as exc:
            log.warning("could not move caller %s to agent %s: %s", call.call_sid, agent_id, exc)
            return self.handle_offer(a.Event(a.CALLER_NOT_MOVED, **event), agent_id, tell_agent)
        return Outcome(offers.CALLER_JOINING, True)
