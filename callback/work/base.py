"""What every part of dispatch holds and shares: the services (storage, telephony, the
IVR directory, the clock, configuration), the webhooks' public URLs, the number calls come
from, and each state's deadline: how long an attempt may hear nothing before the sweep asks
Twilio what became of its calls.

The parts build on `Base`: `effects.Effects` carries out a step of the state machine;
`choose.Chooser`, `events.Events` and `reconcile.Reconciler` each feed it events;
`dispatch.Dispatcher` is all of them in one object.
"""
import logging
from datetime import timedelta

from callback import metrics
from callback.domain import attempts as a
from callback.domain.numbers import mask
from callback.storage import Conflict, StorageError
from callback.telephony.rest import MACHINE_DETECTION_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

ACCOUNT_ALERT = "twilio-account-refusal"
ACCOUNT_CODES = {
    21215: "the account's geographic permissions do not allow this destination (Console: Voice, "
           "Settings, Geo permissions)",
    21216: "the account may not call this number; every +1 call is refused this way until the "
           "account's Primary Customer Profile is approved (Console: Trust Hub)",
    21219: "a trial account may call verified numbers only: upgrade the account",
}

# How long past its own timeouts an expected event may be late before the sweep asks
# Twilio what became of the call.
EVENT_MARGIN = timedelta(seconds=30)
# Whisper, then the seconds the agent has to press a key.
WHISPER = timedelta(seconds=25)
ACCEPT_SECONDS = 8
# How often the sweep checks that a connected conversation is still going.
CONNECTED_CHECK = timedelta(minutes=2)


class Base:
    """The services one dispatcher works with, and what every part of it asks of them."""

    def __init__(self, storage, telephony, directory, clock, config):
        self.storage = storage
        self.telephony = telephony
        self.directory = directory
        self.clock = clock
        self.config = config
        # Set by wiring to the hand-off's `settle_later(numbers, after)`: legs tried again
        # within seconds. None: the sweep alone tries them again.
        self.later = None

    @property
    def ring_timeout(self):
        """Seconds an agent's phone rings."""
        return self.config.AGENT_RING_TIMEOUT_SECONDS

    def url(self, path, **query):
        """Absolute public URL for a webhook."""
        return self.config.public_url(path, **query)

    def caller_id(self, ivr):
        """The number calls for this IVR come from, or None: never a made-up one (a number
        that is not the account's makes every call fail)."""
        return ivr.caller_id if ivr is not None else None

    def account_refused(self, exc, number):
        """Twilio refused a call for a reason of the account: an admin must act. Logged as
        an error (the on-call alarm's pattern) and shown on the dashboard; never raises."""
        log.error("twilio-account-refusal: Twilio refuses calls to %s for the account (error %s): "
                  "the work is held until an admin fixes the account", mask(number), exc.code)
        metrics.emit({metrics.ACCOUNT_REFUSALS: 1}, event="twilio-account-refusal", code=exc.code)
        try:
            self.storage.note_alert(ACCOUNT_ALERT, f"Twilio error {exc.code}: {ACCOUNT_CODES.get(exc.code, '')}",
                                    self.clock.now())
        except Exception:
            log.exception("could not note the account alert")

    @staticmethod
    def _quietly(step, *args):
        """A bookkeeping step whose failure must not undo a call already placed."""
        try:
            step(*args)
        except Conflict:
            pass
        except StorageError:
            log.exception("could not record %s; the sweep will repair", step.__name__)

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
            a.MACHINE_HEARD: CONNECTED_CHECK,
        }
        return now + waits.get(state, EVENT_MARGIN)
