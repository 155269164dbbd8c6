"""Texts to customers, carried out (the rules are `callback.domain.texts`).

A webhook that stores a callback stores its confirmation text (due) and hands the send over
(`send_later`: the hand-off's runner, a Lambda invocation on AWS): no webhook waits on
Twilio's Messages API. A sender claims the text with a conditional write before asking
Twilio, so a text is sent once however many senders try; the sweep tries again a text whose
send was lost, MAX_TRIES times in all, then counts it failed. A send whose answer was lost
keeps its claim a while: the message status callback, when the text did leave, says so.

A failed text never blocks or changes the callback; a number recorded as opted out is never
texted, and Twilio's 21610 is an opt-out learned late.
"""
import logging
from dataclasses import replace
from datetime import timedelta

from callback.domain import hours as h
from callback.domain import records as m
from callback.domain import texts as t
from callback.domain import transitions
from callback.domain.customer_clock import spoken_clock
from callback.domain.estimate import estimate_wait, history_since
from callback.domain.numbers import mask
from callback.storage import Conflict, NotFound, StorageError
from callback.telephony.messages import Messaging, OptedOut, TextRefused, maybe_sent
from callback.telephony.rest import TelephonyError
from callback.work.base import Base

log = logging.getLogger(__name__)
# "About to call you" is worth sending while the call is about to come, not later.
ABOUT_TO_CALL_WINDOW_SECONDS = 120


def _wanted(settings, kind):
    """True when the IVR's settings ask for texts of this kind."""
    if not (settings.sms_enabled and settings.sms_service_sid):
        return False
    return {t.CONFIRMATION: True, t.ABOUT_TO_CALL: settings.sms_about_to_call,
            t.NOT_REACHED: settings.sms_not_reached}[kind]


class Texter(Base):
    """Stores, sends and settles texts; answers customers' replies."""

    # Set by wiring to the hand-off's `send_texts(keys)`; None: the sweep sends them.
    send_later = None

    @property
    def messaging(self):
        """The Messages API, on the telephony adapter's client."""
        return Messaging(self.telephony)

    def text_about(self, cb, kind):
        """Store the text of `kind` about a callback when its IVR wants one, then have it sent
        off this request; never raises (a text never fails the work it tells of)."""
        try:
            ivr = self.directory.ivr(cb.ivr_name)
            if ivr is None or not _wanted(ivr.settings, kind):
                return None
            if not t.textable(cb.number):
                log.info("callback %s: %s takes no texts as the numbering data says; none sent",
                         cb.callback_id, mask(cb.number))
                return None
            text = t.Text(cb.callback_id, kind, cb.number, cb.ivr_name, cb.queue_name, self.clock.now())
            if not self.storage.queue_text(text):
                return None  # stored already (a retried webhook): its sender is on it
        except Exception:
            log.exception("could not store the %s text of callback %s", kind, cb.callback_id)
            return None
        if self.send_later is not None:
            self.send_later([text.key])
        return text.key

    def send_text(self, key):
        """Send one stored text if it is due and this sender wins its claim; returns its state
        afterwards (None when there is no such text). Never raises for Twilio's answers."""
        text = self.storage.get_text(key)
        now = self.clock.now()
        if text is None or not text.may_send(now):
            return text.state if text else None
        try:
            text = self.storage.claim_text(text, now)
        except Conflict:
            return None  # another sender has it, or it is settled
        ivr = self.directory.ivr(text.ivr_name)
        why_not = self._why_not(text, ivr, now)
        if why_not:
            return self._settle_text(text, t.SKIPPED, detail=why_not)
        facts = t.TextFacts(ivr.settings.announced_name(ivr.name), text.number, (text.queue_name,),
                            cancel_word=ivr.settings.sms_cancel_word)
        if text.kind == t.CONFIRMATION:
            facts = self._when(facts, text, ivr, now)
        try:
            sid = self.messaging.send(service_sid=ivr.settings.sms_service_sid, to=text.number,
                                      body=t.body(text.kind, facts),
                                      status_callback=self.url("/sms/status", text=text.key))
        except OptedOut as exc:
            log.info("text %s: %s opted out at Twilio (21610); recorded", text.key, mask(text.number))
            self.storage.opt_out(text.number, now)
            return self._settle_text(text, t.SKIPPED, error_code=exc.code, detail="opted-out")
        except TextRefused as exc:
            log.warning("text %s: Twilio refuses to text %s (%s)", text.key, mask(text.number), exc.code)
            return self._settle_text(text, t.FAILED, error_code=exc.code, detail="refused")
        except TelephonyError as exc:
            return self._send_failed(text, exc, now)
        log.info("text %s sent to %s: %s", text.key, mask(text.number), sid)
        return self._settle_text(text, t.SENT, message_sid=sid)

    def _why_not(self, text, ivr, now):
        """Why a claimed text is not sent after all, or None."""
        if ivr is None or not _wanted(ivr.settings, text.kind):
            return "texts-off"
        if self.storage.opted_out(text.number):
            return "opted-out"
        late = (now - text.created_at).total_seconds() > ABOUT_TO_CALL_WINDOW_SECONDS
        if text.kind == t.ABOUT_TO_CALL and late:
            return "too-late"
        if text.kind == t.CONFIRMATION:
            try:
                status = self.storage.get_callback(text.callback_id).status
            except NotFound:
                return "callback-gone"
            if status != m.PENDING:
                return f"callback-{status}"  # being called already, or over: the text would mislead
        return None

    def _send_failed(self, text, exc, now):
        """Twilio failed the send: in doubt, the claim is kept (the status callback tells
        whether it left); surely unsent, due again while tries are left, else failed."""
        if maybe_sent(exc):
            log.warning("text %s: no clear answer from Twilio (%s); the status callback or the sweep "
                        "settles it", text.key, exc.status or type(exc).__name__)
            self._quietly(self.storage.hold_claim, text, now, t.CLAIM_IN_DOUBT)
            return t.SENDING
        if text.tries >= t.MAX_TRIES:
            log.warning("text %s not sent after %d tries (%s): failed", text.key, text.tries, exc)
            return self._settle_text(text, t.FAILED, error_code=exc.code, detail="not-sent")
        log.info("text %s not sent (%s); the sweep tries again", text.key, exc)
        self._quietly(self.storage.release_text, text)
        return t.DUE

    def _settle_text(self, text, state, from_states=(t.SENDING,), **fields):
        try:
            self.storage.settle_text(text, state, self.clock.now(), from_states=from_states, **fields)
        except Conflict:
            return None  # the status callback (or another sender) got there first
        return state

    def _when(self, facts, text, ivr, now):
        """The confirmation's facts with when the call comes, as the caller heard it: the time
        they chose, the center's opening, the customer's opening hour, or the line's wait."""
        try:
            cb = self.storage.get_callback(text.callback_id)
        except (NotFound, StorageError):
            return facts
        hours = ivr.settings.hours
        if cb.window_start is not None:
            return replace(facts, scheduled=h.spoken_moment(hours, now, cb.window_start))
        estimate = self._estimate(text, cb)
        wait = timedelta(minutes=estimate.minutes) if estimate is not None else None
        opening = h.callback_time(hours, now, wait)
        if opening is not None and opening > now:
            return replace(facts, opens=h.spoken_moment(hours, now, opening))
        if cb.due_at > now:  # waiting for the customer's own calling window
            clock = ivr.settings.customer_clock(cb.number)
            return replace(facts, customer_opens=spoken_clock(clock.local_time(cb.due_at)))
        return replace(facts, estimate=estimate)

    def _estimate(self, text, cb):
        """The wait the caller heard (callback.domain.estimate), from now; None when unknown."""
        now = self.clock.now()
        try:
            place = cb.place_in_line
            history = self.storage.recent_departures(text.queue_name, history_since(now))
            ahead = (self.storage.count_waiting_before(text.queue_name, place)
                     + self.storage.count_pending_before(text.queue_name, place))
            on_duty = sum(1 for agent in self.storage.list_agents()
                          if agent.status != m.OFFLINE and text.queue_name in agent.queues)
        except StorageError:
            return None
        return estimate_wait(history, ahead, now, on_duty)

    def text_status(self, key, message_sid, status, error_code):
        """Twilio's message status callback: a failed or undelivered text is counted failed
        (21610 an opt-out learned late), never sent again; a text whose send answer was lost
        learns it left."""
        text = self.storage.get_text(key)
        if text is None or (text.message_sid and message_sid and text.message_sid != message_sid):
            return None
        if text.state == t.SENDING and status not in t.FAILED_STATUSES:
            self._settle_text(text, t.SENT, message_sid=message_sid)
        if status in t.FAILED_STATUSES:
            if error_code == t.OPTED_OUT_CODE:
                self.storage.opt_out(text.number, self.clock.now())
            log.warning("text %s to %s %s (error %s)", key, mask(text.number), status, error_code or "-")
            return self._settle_text(text, t.FAILED, from_states=(t.SENDING, t.SENT), message_sid=message_sid,
                                error_code=error_code, detail=status)
        if status in ("delivered", "read"):
            return self._settle_text(text, t.DELIVERED, from_states=(t.SENT,))
        return None

    def text_reply(self, to, from_, body):
        """A text to one of the IVRs' numbers: what it does (callback.domain.texts.reply_kind),
        and the text to answer with, or None (Twilio itself answers opt-out, opt-in and help
        words, and an unknown number or an opted-out one gets nothing)."""
        now = self.clock.now()
        ivr = self.directory.ivr_for_number(to)
        kind = t.reply_kind(body, ivr.settings.sms_cancel_word if ivr else None)
        log.info("text from %s to %s: %s", mask(from_), mask(to), kind)
        if kind in (t.REPLY_OPT_OUT, t.REPLY_OPT_OUT_CANCEL):
            self.storage.opt_out(from_, now)
        elif kind == t.REPLY_OPT_IN:
            self.storage.opt_in(from_)
        # Only an IVR that texts its customers told them a word cancels.
        cancelling = kind in (t.REPLY_CANCEL, t.REPLY_OPT_OUT_CANCEL)
        if ivr is None or not ivr.settings.sms_enabled or not cancelling:
            return None
        cancelled = self._cancel_pending(ivr, from_, now)
        if kind == t.REPLY_OPT_OUT_CANCEL or not cancelled or self.storage.opted_out(from_):
            return None
        return t.cancelled_body(ivr.settings.announced_name(ivr.name), tuple(cancelled))

    def _cancel_pending(self, ivr, number, now):
        """Cancel the number's pending callbacks in this IVR; returns their queues."""
        queues = []
        for cb in self.storage.callbacks_of_number(number):
            if cb.ivr_name != ivr.name or cb.status != m.PENDING:
                continue
            try:
                self.storage.commit(cb, transitions.cancel_by_text(cb, now))
            except Conflict:
                continue  # claimed for a call meanwhile, or ended
            log.info("callback %s cancelled by a text from %s", cb.callback_id, mask(number))
            queues.append(cb.queue_name)
        return sorted(queues)

    def sweep_text(self, key, now):
        """The sweep's look at an unsettled text: sent again when its send was lost (tries
        left), failed once it had its tries; dropped from the outbox once settled."""
        text = self.storage.get_text(key)
        if text is None or text.state not in t.OPEN_STATES:
            self._quietly(self.storage.drop_outbox, key)
            return None
        if text.may_send(now):
            return self.send_text(key)
        claim_over = text.state == t.DUE or (text.claim_until is not None and text.claim_until <= now)
        if text.tries >= t.MAX_TRIES and claim_over:
            log.warning("text %s not sent after %d tries: failed", key, text.tries)
            return self._settle_text(text, t.FAILED, from_states=(t.DUE, t.SENDING), detail="not-sent")
        return None
