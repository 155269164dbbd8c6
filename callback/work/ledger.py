"""The call ledger, kept: every call the app places is owned until Twilio says it ended.

A leg is put in the ledger by the claim that reserves its number (`callback.storage.legs`),
before any request goes to Twilio. It learns its CallSid from the create's answer, or from
the `initiated` status event when that answer is lost (its URL names the attempt), or from
Twilio's list of calls to the number. When its owner (an attempt or an offer) is over, the
leg is marked over: a live call is ended (an agent hears their notice first), and the
number stays held until Twilio says the call ended. A request that fails (429, 5xx, a
timeout) is tried once more at once, then by the sweep with a growing pause: every leg
ends, and nothing is tried without a pause.
"""
import logging
import time
from datetime import timedelta

from callback.domain import records as m
from callback.domain.rules import CALL, CALLBACK
from callback.storage import Conflict, NotFound
from callback.telephony.rest import FINAL_CALL_STATUSES, CallGone, NumberRefused, TelephonyError
from callback.work.base import EVENT_MARGIN, Base

log = logging.getLogger(__name__)

AGENT_LEG, CUSTOMER_LEG = "agent", "customer"
# A holding caller's own call, which the app did not place: never hung up by the ledger.
CALLER_LEG = "caller"
# A create sent this long ago whose call Twilio does not list was never placed.
UNPLACED_AFTER = timedelta(minutes=2)
# The sweep's pause between tries of one leg: doubling from this, up to the cap.
FIRST_RETRY = timedelta(seconds=15)
LONGEST_RETRY = timedelta(minutes=5)
# A notice or hang-up Twilio refused is tried again this soon, in the background, and a
# failed try of the sweep's too, this many times: an agent is not left a minute alone in a
# conference waiting for the next sweep.
SOON = timedelta(seconds=5)
SOON_TRIES = 2
# An agent whose work is over hears their notice; this many tries, then their call is ended.
NOTICE_TRIES = 2
# Creates sent whose calls are not ringing yet (Twilio paces an account's outbound calls,
# one a second by default, and queues the rest): past this many, dispatch leaves further
# work for its next round (a freed agent, a new request, the minute sweep), so a burst
# never piles up tens of seconds of queued calls whose agents' ring time runs out.
CREATES_IN_FLIGHT = 10
IN_FLIGHT = (m.LEG_PLACING,)
QUEUED_STATUSES = ("queued",)
# A create older than this counts no more, whatever was heard of it (its ringing event
# may be lost): pacing never holds dispatch back for long.
IN_FLIGHT_FOR = timedelta(seconds=60)
RETRY_PAUSE_SECONDS = 0.3


def leg_id(role, attempt_id):
    """The id of an attempt's (or offer's) agent or customer leg."""
    return f"{role}-{attempt_id}"


def retry_after(tries, now):
    """When the sweep tries a leg again after `tries` failed tries."""
    return now + min(FIRST_RETRY * (2 ** tries), LONGEST_RETRY)


def _transient(exc):
    """A request worth sending again at once: throttled, a server error, or no answer."""
    return not isinstance(exc, (CallGone, NumberRefused)) and (exc.status is None or exc.status == 429
                                                              or exc.status >= 500)


class Ledger(Base):
    """The legs of attempts and offers: placed, learned, ended, and swept."""

    def new_leg(self, role, kind, key, attempt_id, number, now, agent_id=None):
        """A leg for the claim transaction to put: `number` held from now on."""
        return m.Leg(number=number, leg_id=leg_id(role, attempt_id), role=role, kind=kind, key=key,
                     attempt_id=attempt_id, created_at=now, agent_id=agent_id)

    def _caller_leg(self, call_sid, number):
        return m.Leg(number=number, leg_id=leg_id(CALLER_LEG, call_sid), role=CALLER_LEG, kind=CALL,
                     key=call_sid, attempt_id=call_sid, created_at=self.clock.now(), state=m.LEG_PLACED,
                     call_sid=call_sid)

    def caller_holding(self, call_sid, number):
        """A caller holds in a queue: their number is held, so no callback of theirs (in any
        queue) rings them while they are on the line, until Twilio says their call ended.
        A callback attempt that has reserved their number but not dialed it yet never will:
        the number passes to the caller when that attempt ends."""
        if not number or not number.startswith("+"):
            return
        try:
            self.storage.hold_number(self._caller_leg(call_sid, number))
        except Conflict:
            # Held already: by another of their calls (which keeps it), or by an attempt.
            try:
                held = self.storage.get_leg(number)
                if held is not None and held.role == CUSTOMER_LEG and held.state == m.LEG_RESERVED \
                        and self.storage.mark_on_line(number, held.leg_id, call_sid):
                    log.info("callback %s: its customer called in; attempt %s will not dial them",
                             held.key, held.attempt_id)
            except Exception:
                log.exception("could not mark the number of caller %s as on the line", call_sid)
        except Exception:  # a courtesy to the caller's own callbacks: never the hold loop's failure
            log.exception("could not hold the number of caller %s", call_sid)

    def _let_go_unplaced(self, leg):
        """A customer leg never dialed is over: its number is free, or passes to the caller
        who called in from it meanwhile."""
        caller = self._caller_leg(leg.on_line, leg.number) if leg.on_line else None
        if caller is not None and self.storage.pass_leg(leg.number, leg.leg_id, caller):
            log.info("leg %s ended undialed: number passed to its holding caller", leg.leg_id)
            return
        self.leg_gone(leg.number, leg.leg_id)

    def caller_hung_up(self, call_sid, number):
        """A holding caller hung up: their number is free."""
        if number and number.startswith("+"):
            try:
                self.leg_gone(number, leg_id(CALLER_LEG, call_sid), call_sid)
            except Exception:  # the sweep frees it once Twilio says the call ended
                log.exception("could not free the number of caller %s", call_sid)

    def in_flight(self):
        """Creates sent whose calls do not ring yet (queued at Twilio, or no answer yet)."""
        try:
            legs = self.storage.live_legs()
        except Exception:  # pacing is a courtesy: never the reason work is not offered
            log.exception("could not read the call ledger for pacing")
            return 0
        recent = self.clock.now() - IN_FLIGHT_FOR
        return sum(1 for leg in legs if (leg.placed_at or leg.created_at) >= recent
                   and (leg.state in IN_FLIGHT or leg.twilio_status in QUEUED_STATUSES))

    def _twilio(self, request, *args):
        """A REST request, sent again once at once when it failed for a passing reason."""
        try:
            return request(*args)
        except TelephonyError as exc:
            if not _transient(exc):
                raise
            time.sleep(RETRY_PAUSE_SECONDS)
            return request(*args)

    def _retry_soon(self, number, after):
        """Have the leg holding `number` looked at again `after` from now, in the background."""
        if self.later is not None and number:
            self.later([number], after)

    def _change(self, number, id_, if_call_sid=None, **changes):
        try:
            return self.storage.change_leg(number, id_, if_call_sid, **changes)
        except (Conflict, NotFound):
            return None

    def leg_placing(self, number, id_):
        """The create request is about to go out."""
        self._change(number, id_, state=m.LEG_PLACING, placed_at=self.clock.now())

    def customer_placing(self, number, id_):
        """A customer's create is about to go out: False when that customer called in and
        holds (their leg says `on_line`), so they must not be dialed."""
        if not number or self.storage.start_placing(number, id_, self.clock.now()):
            return True
        leg = self._leg(number, id_)
        return not (leg is not None and leg.on_line)

    def leg_learned(self, number, id_, call_sid, twilio_status=None):
        """Twilio named the leg's call (the create's answer, a status event, its list):
        recorded, and ended at once when its owner is already over."""
        if not number or not call_sid:
            return None
        leg = self._change(number, id_, call_sid, call_sid=call_sid, state=m.LEG_PLACED,
                           twilio_status=twilio_status)
        if leg is not None and leg.over:
            self.end_leg_call(leg)
        return leg

    def leg_gone(self, number, id_, call_sid=None):
        """The leg's call ended, or was never placed: its number is free."""
        if number and self.storage.forget_leg(number, id_, call_sid):
            log.info("leg %s ended: number free", id_)

    def leg_over(self, number, id_, notice=None, release_why=None):
        """The leg's owner is over: its call must end (an agent hears `notice` first). A leg
        no call was requested for is forgotten at once. Returns the leg, or None."""
        leg = self._leg(number, id_)
        if leg is None:
            return None
        if leg.state == m.LEG_RESERVED and leg.role == CUSTOMER_LEG:
            self._let_go_unplaced(leg)
            return None
        return self._change(number, id_, over=True, notice=notice or leg.notice,
                            release_why=release_why or leg.release_why,
                            check_at=self.clock.now() + EVENT_MARGIN)

    def _leg(self, number, id_):
        if not number:
            return None
        leg = self.storage.get_leg(number)
        return leg if leg is not None and leg.leg_id == id_ else None

    def end_leg_call(self, leg):
        """Hang up a leg's call, if Twilio has named it; a failure is left to the sweep."""
        if not leg.call_sid:
            return False
        try:
            self._twilio(self.telephony.hang_up, leg.call_sid)
            return True
        except TelephonyError as exc:
            log.info("could not hang up %s: %s; tried again soon", leg.call_sid, exc)
            self._change(leg.number, leg.leg_id, check_at=self.clock.now() + SOON)
            self._retry_soon(leg.number, SOON)
            return False

    def tell_agent_leg(self, leg, notice):
        """Redirect an agent's call to a notice; on failure the leg keeps the notice and the
        sweep tries again, then ends the call."""
        if not leg.call_sid:
            return False
        try:
            self._twilio(self.telephony.redirect_call, leg.call_sid, self.url("/voice/notice", message=notice))
            return True
        except CallGone:
            return True
        except TelephonyError as exc:
            log.info("could not tell agent %s (%s): %s; tried again soon", leg.agent_id, notice, exc)
            self._change(leg.number, leg.leg_id, over=True, notice=notice, check_at=self.clock.now() + SOON)
            self._retry_soon(leg.number, SOON)
            return False

    # -- the sweep: legs whose owner is over -------------------------------------------

    def _owner_open(self, leg):
        """True while the attempt or offer that holds the leg goes on (the attempt's own
        reconcile looks after its calls then)."""
        try:
            if leg.role == CALLER_LEG:
                return self.storage.get_waiting_call(leg.key) is not None
            if leg.kind == CALLBACK:
                cb = self.storage.get_callback(leg.key)
                return cb.attempt_id == leg.attempt_id and cb.status in (m.DIALING, m.CONNECTED)
            if leg.kind == CALL:
                call = self.storage.get_waiting_call(leg.key)
                return call is not None and call.offer_id == leg.attempt_id
        except NotFound:
            return False
        return False

    def sweep_leg(self, leg, now):
        """One leg the sweep looks at: when its owner is over and its pause has passed, find
        its call, end it, or free its number. True when the leg changed."""
        if leg.check_at is not None and leg.check_at > now:
            return False
        if not leg.over and self._owner_open(leg):
            return False
        if leg.state == m.LEG_RESERVED:
            if leg.role == CUSTOMER_LEG:
                self._let_go_unplaced(leg)
                return True
            return self._free(leg, None, "available")
        try:
            return self._settle(leg, now)
        except TelephonyError as exc:
            log.info("leg %s: Twilio cannot say now (%s); tried %d times", leg.leg_id, exc, leg.tries + 1)
            self._change(leg.number, leg.leg_id, tries=leg.tries + 1, check_at=retry_after(leg.tries, now))
            if leg.tries < SOON_TRIES:
                self._retry_soon(leg.number, retry_after(leg.tries, now) - now)
            return False

    def _settle(self, leg, now):
        if not leg.call_sid:
            calls = self.telephony.calls_to(leg.number, leg.placed_at or leg.created_at)
            if not calls:
                if now - (leg.placed_at or leg.created_at) < UNPLACED_AFTER:
                    self._change(leg.number, leg.leg_id, check_at=now + EVENT_MARGIN)
                    return False
                return self._free(leg, None, "available")
            leg = self.leg_learned(leg.number, leg.leg_id, calls[-1].sid, calls[-1].status) or leg
            if not leg.call_sid:
                return False
        status = self.telephony.call_status(leg.call_sid)
        if status in FINAL_CALL_STATUSES:
            return self._free(leg, leg.call_sid, "available" if status == "completed" else "missed")
        if leg.role == CALLER_LEG:
            # Still on the line (hearing that their callback is saved, say): never hung up.
            self._change(leg.number, leg.leg_id, check_at=now + EVENT_MARGIN)
            return False
        if leg.role == AGENT_LEG and leg.notice and leg.tries < NOTICE_TRIES:
            self.telephony.redirect_call(leg.call_sid, self.url("/voice/notice", message=leg.notice))
        else:
            self.telephony.hang_up(leg.call_sid)
        self._change(leg.number, leg.leg_id, over=True, tries=leg.tries + 1, check_at=retry_after(leg.tries, now))
        return True

    def _free(self, leg, call_sid, why):
        """The leg's call is over (or never was): free the number, and its agent (when they
        still hold this work: otherwise only the number)."""
        if leg.role == AGENT_LEG and leg.agent_id and self._release(
                leg.agent_id, leg.attempt_id, call_sid, leg.release_why or why, call_over=True):
            return True
        self.leg_gone(leg.number, leg.leg_id, call_sid)
        return True

    def agent_phone(self, agent_id):
        """An agent's phone number, or None."""
        try:
            return self.storage.get_agent(agent_id).phone if agent_id else None
        except NotFound:
            return None

    def _release(self, agent_id, attempt_id, call_sid, why, call_over):  # pragma: no cover - Effects
        raise NotImplementedError
