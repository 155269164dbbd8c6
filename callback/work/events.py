"""What the voice webhooks ask of dispatch: an agent answered or pressed a key, the
customer answered, a leg ended, the conference reported a participant, a holding caller is
on the way in. Each is an event applied by `effects.Effects`; the answer says what the
caller of the webhook hears and does next (the whisper, the conference, a notice).
"""
from dataclasses import replace

from callback.domain import attempts as a
from callback.domain import detection, offers
from callback.domain import twilio_words as words
from callback.domain import voicemail as vm
from callback.domain.answers import NOTICES, AgentAnswer, CustomerAnswer
from callback.domain.numbers import speakable
from callback.domain.rules import CALL, CALLBACK
from callback.domain.settings import speech_of
from callback.domain.views import attempt_view, caller_conference, offer_view
from callback.storage import NotFound
from callback.work.effects import Effects
from callback.work.ledger import AGENT_LEG, CUSTOMER_LEG, leg_id


class Events(Effects):
    """The webhooks' entry points into an attempt or an offer."""

    def _conference_callback(self, kind, key, attempt_id, agent_id):
        return self.url("/voice/conference", kind=kind, key=key, attempt=attempt_id, agent=agent_id)

    def _speech_of(self, kind, key):
        """The voice of the IVR this work came through."""
        try:
            record = self.storage.get_callback(key) if kind == CALLBACK else self.storage.get_waiting_call(key)
        except NotFound:
            record = None
        return speech_of(self.directory.ivr(record.ivr_name) if record else None)

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
            if cb.kind == vm.VOICEMAIL:
                text = vm.whisper(cb.queue_name, cb.number, cb.recording_seconds or 0, cb.attempts + 1, tries)
                return AgentAnswer(whisper=text, accept_url=accept,
                                   accept=("hear it and call back" if vm.playable(cb) else "call back"))
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
        event = a.Event(words.agent_pressed(digits), key, attempt_id, agent_call_sid)
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
                # A message plays first: the agent's join, which dials the customer, follows it.
                return AgentAnswer(f"callback-{key}-{attempt_id}", announcement="Calling the customer now.",
                                   status_callback=conference_callback,
                                   hangup_on_star=self._detection_of(key) == detection.ASYNC,
                                   play_url=self._message_url(key))
            call = self.storage.get_waiting_call(key)
            queue = call.queue_name if call else "the queue"
            return AgentAnswer(caller_conference(key, attempt_id),
                               announcement=f"Caller from {queue}. Connecting now.",
                               status_callback=conference_callback)
        if outcome.applied and outcome.notice:
            return AgentAnswer(notice=NOTICES[outcome.notice])
        if not accepted and outcome.applied:
            return AgentAnswer(notice=NOTICES["declined"])
        if kind == CALL:
            return AgentAnswer(notice=NOTICES[self._offer_over(self.storage.get_waiting_call(key))])
        return AgentAnswer(notice=NOTICES["stale"])

    def _detection_of(self, callback_id):
        """The detection setting of the IVR a callback came through."""
        try:
            ivr = self.directory.ivr(self.storage.get_callback(callback_id).ivr_name)
        except NotFound:
            ivr = None
        return ivr.settings.machine_detection if ivr else detection.DEFAULT_MODE

    def _message_url(self, callback_id):
        """The app's URL of a voicemail's audio, signed for a short while; None for a plain
        callback, or a message that cannot be played."""
        try:
            cb = self.storage.get_callback(callback_id)
        except NotFound:
            return None
        secret = self.config.SECRET_KEY or self.config.TWILIO_AUTH_TOKEN
        if not vm.playable(cb) or not secret:
            return None
        expires = int((self.clock.now() + vm.AUDIO_URL_LIFETIME).timestamp())
        return self.url(f"/voice/voicemail/audio/{callback_id}", exp=expires,
                        sig=vm.audio_signature(secret, callback_id, cb.recording_sid, expires))

    @staticmethod
    def _offer_over(call):
        """What an agent hears of an offer that is over: the caller hung up, or moved on."""
        return "caller-gone" if call is None else "stale"

    def caller_joining(self, call_sid, agent_id, offer_id):
        """A holding caller moved out of the queue: True when this offer to this agent still
        waits for them; otherwise they go back in the queue (their record keeps its place)."""
        call = self.storage.get_waiting_call(call_sid)
        return (offer_view(call_sid, call, offer_id).state == offers.CALLER_JOINING
                and call.agent_id == agent_id)

    def caller_not_joined(self, call_sid, agent_id, offer_id):
        """A holding caller moved out of the queue could not join the agent and is back in
        the queue: the offer ends with them in line, their place kept, and the agent is told."""
        return self.handle_offer(a.Event(a.CALLER_NOT_MOVED, call_sid, offer_id, call_sid), agent_id)

    def agent_call_progress(self, kind, key, attempt_id, agent_id, agent_call_sid, call_status):
        """A status of the agent's leg before its end (initiated, ringing, answered): the
        ledger and the attempt learn its CallSid, even when the create's answer was lost."""
        self.leg_learned(self.agent_phone(agent_id), leg_id(AGENT_LEG, attempt_id), agent_call_sid, call_status)
        event = a.Event(a.AGENT_PLACED, key, attempt_id, agent_call_sid)
        return self.handle(event) if kind == CALLBACK else self.handle_offer(event, agent_id)

    def agent_call_ended(self, kind, key, attempt_id, agent_id, agent_call_sid, call_status):
        """The agent's leg reached a final status: free or park the agent, fix the work."""
        event = a.Event(words.agent_call_ended(call_status), key, attempt_id, agent_call_sid, call_status)
        outcome = self.handle(event) if kind == CALLBACK else self.handle_offer(event, agent_id)
        if outcome.freed_agent:
            return True
        # Twilio says their call is over, whatever the work made of the event: the agent
        # still held by this attempt is free (their leg leaves the ledger with them).
        why = a.AVAILABLE if call_status == "completed" else a.MISSED
        return self._release(agent_id, attempt_id, agent_call_sid, why, call_over=True)

    def customer_answered(self, callback_id, attempt_id, call_sid, answered_by):
        """The customer's phone picked up: a person joins the agent, a machine fails the try."""
        event = detection.answered_by_event(answered_by)
        outcome = self.handle(a.Event(event, callback_id, attempt_id, call_sid,
                                      answered_by=answered_by or None))
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
                announcement=(f"Hello, this is {name}, calling back about your message. "
                              if cb.kind == vm.VOICEMAIL else
                              f"Hello, this is the callback you requested from {name}. ")
                + "Connecting you to an agent now.",
                status_callback=self._conference_callback(CALLBACK, callback_id, attempt_id, cb.agent_id),
                speech=speech_of(ivr))
        if event == a.CUSTOMER_MACHINE:
            return CustomerAnswer(None, hang_up=True)
        return CustomerAnswer(None, announcement="We are sorry, the agent is no longer available. "
                                                 "We will call you again. Goodbye.", hang_up=True,
                              speech=speech_of(ivr))

    def customer_verdict(self, callback_id, attempt_id, call_sid, answered_by):
        """Twilio's asynchronous verdict on the customer's leg: a machine before the join
        ends the leg, after it the agent is warned; a person changes nothing but the state.
        A verdict for another call or an attempt that is over changes nothing; one after the
        conversation, whose verdict was awaited, settles the attempt (if Twilio's record of the
        call has not already)."""
        return self.handle(a.Event(detection.answered_by_event(answered_by), callback_id, attempt_id,
                                   call_sid, answered_by=answered_by or None))

    def machine_notice(self, callback_id):
        """What the agent hears of a late machine verdict, in the IVR's voice."""
        return detection.MACHINE_NOTICE, self._speech_of(CALLBACK, callback_id)

    def customer_call_progress(self, callback_id, attempt_id, call_sid, call_status):
        """A status of the customer's leg before its end: the ledger and the attempt learn
        its CallSid (and a leg whose attempt is over is hung up at once)."""
        number = self._number_of(callback_id)
        self.leg_learned(number, leg_id(CUSTOMER_LEG, attempt_id), call_sid, call_status)
        return self.handle(a.Event(a.CUSTOMER_PLACED, callback_id, attempt_id, call_sid))

    def customer_call_ended(self, callback_id, attempt_id, call_sid, call_status):
        """The customer's leg reached a final status: their number is free, then the attempt
        hears of it."""
        self.leg_gone(self._number_of(callback_id), leg_id(CUSTOMER_LEG, attempt_id), call_sid)
        return self.handle(a.Event(words.customer_call_ended(call_status), callback_id, attempt_id,
                                   call_sid, call_status))

    def _number_of(self, callback_id):
        try:
            return self.storage.get_callback(callback_id).number
        except NotFound:
            return None

    def caller_left_queue(self, call_sid):
        """A holding caller's time in the queue is over (hung up, or Twilio ended it). With an
        offer open, that goes through the offer (the agent is told, and freed when their call
        ends); True then. False when no offer holds them: the caller simply leaves the line."""
        call = self.storage.get_waiting_call(call_sid)
        if call is None or not call.offer_id or not call.agent_id:
            return False
        outcome = self.handle_offer(a.Event(a.CALLER_GONE, call_sid, call.offer_id, call_sid), call.agent_id)
        return outcome.applied

    def conference_event(self, kind, key, attempt_id, agent_id, status_event, call_sid, ending_call_sid=None):
        """A conference status callback: participants joining and leaving, its end (and
        whose leaving ended it, `ending_call_sid`)."""
        if kind == CALLBACK:
            try:
                cb = self.storage.get_callback(key)
            except NotFound:
                return None
            view = attempt_view(cb, attempt_id)
            kind_of = words.conference_event(status_event, call_sid, view) if view else None
            if kind_of == a.CONFERENCE_ENDED:
                kind_of = detection.conference_end_event(view, ending_call_sid)
                call_sid = ending_call_sid if kind_of == a.AGENT_ENDED_MACHINE else call_sid
            if kind_of is None:
                return None
            return self.handle(a.Event(kind_of, key, attempt_id, call_sid))
        view = offer_view(key, self.storage.get_waiting_call(key), attempt_id)
        kind_of = words.conference_event(status_event, call_sid, view)
        if kind_of is None:
            return None
        return self.handle_offer(a.Event(kind_of, key, attempt_id, call_sid), agent_id)
