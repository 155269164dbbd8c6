"""Answering-machine detection, carried out (`callback.domain.detection`): how the
customer's call is placed (under asynchronous detection, the greeting and the join inline
on the create), the agent warned of a late machine verdict, who ended a warned
conversation, and a verdict that never came, read from Twilio's record of the customer's
call once that call is over.

A part of `effects.Effects`, which holds the services and `handle` used here.
"""
import logging
from datetime import timedelta

from callback.domain import attempts as a
from callback.domain import detection, transitions
from callback.domain.rules import CALLBACK
from callback.domain.settings import speech_of
from callback.domain.views import attempt_view
from callback.storage import Conflict, NotFound, StorageError
from callback.telephony.rest import TelephonyError

log = logging.getLogger(__name__)

# The sweep's first pause before it reads a lost verdict again; each later one doubles.
VERDICT_READ_PAUSE = timedelta(minutes=1)


class Verdicts:
    """Detection's part of carrying out a step."""

    # twiml.conference, handed over by the package that wires web and work together
    # (callback/__init__.py): the customer's first TwiML goes inline on the create.
    conference_twiml = None

    def leg_detection(self, ivr):
        """The detection the customer's call is placed with, by the IVR's setting:
        asynchronous only where its inline document can be made."""
        mode = ivr.settings.machine_detection if ivr else detection.DEFAULT_MODE
        return detection.SYNC if mode == detection.ASYNC and self.conference_twiml is None else mode

    def _customer_leg(self, cb, attempt_id, ivr):
        """How the customer's call starts, by the IVR's detection setting: asynchronous, the
        greeting and the join inline (an answer waits for no webhook) and the verdict posted
        apart; synchronous or off, the answer webhook (with the verdict, or without)."""
        query = dict(callback=cb.callback_id, attempt=attempt_id)
        mode = self.leg_detection(ivr)
        if mode == detection.ASYNC:
            company = ivr.settings.announced_name(cb.ivr_name) if ivr else cb.ivr_name
            document = self.conference_twiml(
                cb.conference_name, announcement=detection.greeting(company, self._agent_name(cb.agent_id),
                                                                    message=cb.kind == "voicemail"),
                status_callback=self.url("/voice/conference", kind=CALLBACK, key=cb.callback_id,
                                         attempt=attempt_id, agent=cb.agent_id),
                speech=speech_of(ivr))
            return dict(twiml=document, machine_detection=detection.ASYNC,
                        amd_callback=self.url("/voice/customer/amd", **query))
        return dict(url=self.url("/voice/customer/answer", **query),
                    fallback_url=self.url("/voice/call-fallback", leg="customer"),
                    machine_detection=mode != detection.OFF)

    def _agent_name(self, agent_id):
        """The agent's name, for the customer's greeting (None when it cannot be read)."""
        try:
            return self.storage.get_agent(agent_id).name if agent_id else None
        except (NotFound, StorageError):  # a greeting without the name beats no call
            log.info("no name of agent %s for the greeting", agent_id)
            return None

    def _warn_agent(self, cb, attempt_id, agent_call_sid):
        """A late machine verdict: the agent alone hears it, in the conference, with how to
        end the call (star). A failure is logged: the conversation goes on as it was."""
        url = self.url("/voice/agent/machine-notice", callback=cb.callback_id, attempt=attempt_id)
        try:
            if not self._twilio(self.telephony.announce_to, cb.conference_name, agent_call_sid, url):
                log.info("callback %s: no conference to warn agent %s in", cb.callback_id, cb.agent_id)
        except TelephonyError as exc:
            log.info("could not warn agent %s of a machine: %s", cb.agent_id, exc)

    def _who_ended(self, cb, view, event):
        """A warned conversation ends: whichever of the conference's end and the legs' final
        statuses comes first, Twilio's record of who ended the conference decides (the agent,
        with star: `machine`). When Twilio cannot say, it is the conversation's end."""
        try:
            ending = self._twilio(self.telephony.conference_ended_by, cb.conference_name)
        except TelephonyError as exc:
            log.info("callback %s: who ended the conference is unknown (%s)", cb.callback_id, exc)
            return event
        kind = detection.conference_end_event(view, ending, event.kind)
        if kind == event.kind:
            return event
        return a.Event(kind, event.callback_id, event.attempt_id, ending)

    def _read_verdict(self, callback_id, attempt_id, call_sid, tell_agent=True):
        """No verdict came and the customer's call is over: Twilio's record of that call says
        who answered. Returns the outcome of the verdict it stands for, or None when it
        cannot say now (the sweep reads again). One GET, bounded by the REST client's
        timeout and not retried here: it runs only for an attempt whose verdict was lost."""
        if not call_sid:
            return None
        try:
            record = self.telephony.call_record(call_sid)
        except TelephonyError as exc:
            log.info("callback %s: Twilio's record of %s cannot be read (%s); the sweep reads again",
                     callback_id, call_sid, exc)
            return None
        kind = detection.recorded_verdict(record.status, record.answered_by) if record else None
        if kind is None:
            log.info("callback %s: Twilio's record of %s names no verdict yet", callback_id, call_sid)
            return None
        log.info("callback %s attempt %s: no verdict came; Twilio's record says %s", callback_id, attempt_id,
                 record.answered_by)
        return self.handle(a.Event(kind, callback_id, attempt_id, call_sid, answered_by=record.answered_by),
                           tell_agent)

    def verdict_not_read(self, callback_id, attempt_id):
        """The sweep could not learn the verdict an attempt awaits: it reads again later, each
        pause twice the last; after `detection.VERDICT_READS` reads the customer counts as a
        person. True when that settled the attempt."""
        cb = self.storage.get_callback(callback_id)
        view = attempt_view(cb, attempt_id)
        if view is None or view.state != a.AWAITING_VERDICT:
            return False
        if cb.verdict_reads + 1 >= detection.VERDICT_READS:
            log.warning("callback %s attempt %s: Twilio named no verdict in %d reads; taken for a person",
                        callback_id, attempt_id, cb.verdict_reads + 1)
            return self.handle(a.Event(a.CUSTOMER_HUMAN, callback_id, attempt_id, view.customer_call_sid,
                                       answered_by="unknown")).applied
        later = self.clock.now() + VERDICT_READ_PAUSE * 2 ** cb.verdict_reads
        try:
            self.storage.commit(cb, transitions.verdict_unread(cb, later))
        except Conflict:
            pass  # it moved on meanwhile
        return False
