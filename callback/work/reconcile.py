"""Twilio as the source of truth: when an expected event is late, ask Twilio what became
of the calls and apply their real status as events.

The sweep calls `reconcile` for an attempt past its deadline and `reconcile_agent` for a
reserved or busy agent, so a lost status callback delays an attempt or an agent by a sweep
or two, never for good. Each event found is applied by `effects.Effects`.
"""
import logging
from datetime import timedelta

from callback.domain import attempts as a
from callback.domain import offers, transitions
from callback.domain import twilio_words as words
from callback.domain.numbers import mask
from callback.domain.rules import CALL, CALLBACK
from callback.domain.views import attempt_view, caller_conference, offer_view
from callback.storage import Conflict, NotFound
from callback.telephony.rest import FINAL_CALL_STATUSES, TelephonyError
from callback.work.base import ACCEPT_SECONDS, CONNECTED_CHECK, EVENT_MARGIN, WHISPER
from callback.work.effects import Effects
from callback.work.ledger import CUSTOMER_LEG, leg_id

log = logging.getLogger(__name__)


class Reconciler(Effects):
    """Reads Twilio's record of an attempt's or an agent's calls and applies it."""

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
        agent_phone = self.agent_phone(attempt.agent_id)
        sid, status = self._twilio_leg(view.agent_call_sid, agent_phone, attempt.started_at)
        if status == "not-placed" and view.state == a.AGENT_RINGING:
            changed |= self.handle(a.Event(a.AGENT_NOT_PLACED, **event)).applied
        elif status in FINAL_CALL_STATUSES:
            changed |= self.handle(a.Event(words.agent_call_ended(status), call_sid=sid, call_status=status,
                                           **event)).applied
        elif status == "in-progress" and view.state == a.AGENT_JOINING:
            kind = self._late_join(cb.conference_name, sid)
            changed |= kind is not None and self.handle(a.Event(kind, call_sid=sid, **event)).applied
        elif status == "in-progress" and view.state in (a.AGENT_RINGING, a.AGENT_DECIDING):
            changed |= self.handle(a.Event(a.AGENT_SILENT, call_sid=sid, **event)).applied
        elif sid and not view.agent_call_sid:
            changed |= self.handle(a.Event(a.AGENT_PLACED, call_sid=sid, **event)).applied
        first_state = view.state
        cb = self.storage.get_callback(callback_id)
        view = attempt_view(cb, attempt_id)
        if view.state != first_state and cb.sweep_at and cb.sweep_at > now:
            # It moved on meanwhile (this pass's event, or another process's): a customer
            # dialed this instant is not in Twilio's list yet, so its state is not judged now.
            return changed
        if view.state == a.AWAITING_VERDICT:
            # The conversation is over, its verdict never came: Twilio's record of the
            # customer's call says who answered, or the sweep reads again later (bounded).
            read = self._read_verdict(callback_id, attempt_id, view.customer_call_sid)
            if read is not None:
                return changed or read.applied
            return self.verdict_not_read(callback_id, attempt_id) or changed
        if view.state in (a.CUSTOMER_RINGING, a.CUSTOMER_ANSWERED, a.CONNECTED, a.MACHINE_HEARD):
            sid, status = self._twilio_leg(view.customer_call_sid, cb.number, attempt.started_at)
            customer_leg = leg_id(CUSTOMER_LEG, attempt_id)
            if status == "not-placed":
                self.leg_gone(cb.number, customer_leg)
                changed |= self.handle(a.Event(a.DIAL_FAILED, **event)).applied
            elif status in FINAL_CALL_STATUSES:
                self.leg_gone(cb.number, customer_leg, sid)
                changed |= self.handle(a.Event(words.customer_call_ended(status), call_sid=sid,
                                               call_status=status, **event)).applied
            elif (status == "in-progress" and view.state not in (a.CONNECTED, a.MACHINE_HEARD)
                  and self._joined_agent(cb.conference_name, view.agent_call_sid, sid)):
                changed |= self.handle(a.Event(a.CUSTOMER_JOINED, call_sid=sid, **event)).applied
            elif sid and not view.customer_call_sid:
                changed |= self.handle(a.Event(a.CUSTOMER_PLACED, call_sid=sid, **event)).applied
        if not changed:
            cb = self.storage.get_callback(callback_id)
            view = attempt_view(cb, attempt_id)
            if view.state != a.ENDED:
                talking = view.state in (a.CONNECTED, a.MACHINE_HEARD)
                later = now + (CONNECTED_CHECK if talking else EVENT_MARGIN)
                try:
                    self.storage.commit(cb, transitions.postpone_sweep(cb, later))
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

    def reconcile_agent(self, agent):
        """A reserved or busy agent the sweep looks at: if Twilio says their call is over
        (or was never placed), apply that, so they are free within two sweeps; while it goes
        on with a holding caller, apply what Twilio says of the caller's call."""
        sid, status = self._twilio_leg(agent.call_sid, agent.phone, agent.status_changed_at)
        over = status in FINAL_CALL_STATUSES or status == "not-placed"
        if over:
            kind = a.AGENT_NOT_PLACED if status == "not-placed" else words.agent_call_ended(status)
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
        return self._release(agent.agent_id, agent.attempt_id, sid, why, call_over=True)

    def _offer_on_call(self, agent, agent_call_sid):
        """The event Twilio's record tells of a holding caller's offer while the agent's
        call goes on: silent past the whisper, the caller gone on the way, in the
        conference with the agent, or never in it (back in the queue after a join that
        failed); None when it tells nothing new."""
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
            kind = self._late_join(caller_conference(key, offer_id), agent_call_sid)
            return a.Event(kind, key, offer_id, agent_call_sid) if kind else None
        if view.state != offers.CALLER_JOINING:
            return None
        try:
            caller_status = self.telephony.call_status(key)
        except TelephonyError:
            return None
        if caller_status in FINAL_CALL_STATUSES:
            return a.Event(a.CALLER_GONE, key, offer_id, key)
        if caller_status != "in-progress":
            return None
        joined = self._participants(caller_conference(key, offer_id))
        if joined is None:
            return None
        if key in joined and (agent_call_sid is None or agent_call_sid in joined):
            return a.Event(a.CUSTOMER_JOINED, key, offer_id, key)
        if key not in joined and self.clock.now() >= self._deadline(offers.CALLER_JOINING, None,
                                                                    agent.status_changed_at):
            # Moved seconds after the agent accepted, yet still not in the room: their join
            # failed, and its answer put them back in the queue.
            return a.Event(a.CALLER_NOT_MOVED, key, offer_id, key)
        return None
