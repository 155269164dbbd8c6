"""The Twilio REST client, wrapped: the only module that places or changes calls, or sizes
Twilio's call queues (texts go through the same client: `messages.py`)."""
import logging
from dataclasses import dataclass
from datetime import datetime

from twilio.base.exceptions import TwilioException, TwilioRestException

log = logging.getLogger(__name__)

# Twilio's answer when a call is no longer in progress and cannot be redirected.
CALL_NOT_IN_PROGRESS = 21220
MACHINE_DETECTION_TIMEOUT_SECONDS = 6
FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}


class TelephonyError(Exception):
    """Twilio refused or could not be reached."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.status = status
        self.code = code


class CallGone(TelephonyError):
    """The call has already ended."""


class NumberRefused(TelephonyError):
    """Twilio refuses to call this number, for good (invalid, unreachable, not permitted)."""


class AccountRefused(NumberRefused):
    """Twilio refuses the call for a reason of the account, not the number: geographic
    permissions (21215), an account not allowed to place the call (21216, also answered for
    every +1 call of an account without an approved Primary Customer Profile), a trial
    account's unverified number (21219). An admin must act; the number is not at fault."""


class MaybePlaced(TelephonyError):
    """The request was sent but no answer came back: Twilio may have placed the call."""


def maybe_placed(exc):
    """True when a failed create may still have placed its call: no answer came, or a
    server error did (the request may have been carried out before it failed)."""
    return isinstance(exc, MaybePlaced) or (exc.status is not None and exc.status >= 500)


# Create-call errors that no retry changes: the number is invalid, unreachable or not
# permitted. (21210/21212, a bad caller ID, are ours to fix, not the number's: transient.)
REFUSED_NUMBER_CODES = frozenset({
    21211,  # invalid 'To' phone number
    21214,  # 'To' phone number cannot be reached
    21217,  # phone number does not appear to be valid
    21401,  # invalid phone number
    21407,  # this phone number type is not supported
    13224,  # Twilio does not support calling this number, or it is invalid
    13225,  # forbidden phone number
})
# Refusals that describe the account, not the number: the work is held, an admin is told.
ACCOUNT_REFUSAL_CODES = frozenset({
    21215,  # geographic permission: the account may not call this destination
    21216,  # the account may not call this number (or has no approved Primary Customer Profile)
    21219,  # 'To' not verified (trial accounts call verified numbers only)
})
# Errors of requests raised after the request left, so Twilio may have acted on it. Told
# apart by name: requests is imported with the REST client, on first use, not at cold start.
_MAYBE_SENT = {"ReadTimeout", "ChunkedEncodingError"}


@dataclass(frozen=True)
class QueueSize:
    """A Twilio queue as sized: its SID, name and MaxSize, and what sizing it took:
    'created', 'updated', 'unchanged', or 'failed' (`error` says why; the SID may be None)."""

    sid: str | None
    name: str
    max_size: int
    outcome: str
    error: str = ""

    @property
    def failed(self):
        """True when Twilio's queue may still have another size than the app's."""
        return self.outcome == "failed"


# A queue list is read a page of this many at a time (Twilio's largest page).
QUEUE_PAGE_SIZE = 1000


@dataclass(frozen=True)
class CallRecord:
    """A call as Twilio's own record has it."""

    sid: str
    status: str
    created_at: datetime | None = None
    # Answering-machine detection's verdict (human, machine_*, fax, unknown); under
    # asynchronous detection Twilio keeps it on the call once the call is complete.
    answered_by: str | None = None


@dataclass(frozen=True)
class IncomingNumber:
    """One of the account's phone numbers, as Twilio has it configured."""

    sid: str
    phone_number: str
    voice_url: str | None
    voice_method: str | None
    voice_fallback_url: str | None
    voice_fallback_method: str | None
    status_callback: str | None
    status_callback_method: str | None
    # Bound to a TwiML App or a SIP trunk, a number ignores its own URLs.
    voice_application_sid: str | None
    trunk_sid: str | None
    # Where the number's incoming texts go (IVRs that text their customers).
    sms_url: str | None = None
    sms_method: str | None = None


# IncomingNumber fields and the REST API's parameters of the same setting.
NUMBER_FIELDS = ("voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method", "status_callback",
                 "status_callback_method", "voice_application_sid", "trunk_sid", "sms_url", "sms_method")


class Telephony:
    """Places, redirects and ends calls through Twilio's REST API (or a stand-in)."""

    def __init__(self, config, http_client=None):
        self.config = config
        self._http_client = http_client
        self._client = None

    @property
    def client(self):
        """The twilio REST client, built on first use: the hold loop never needs it, and
        its imports (requests above all) cost a cold start about a tenth of its CPU."""
        if self._client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            http_client = self._http_client or TwilioHttpClient(
                timeout=self.config.TWILIO_REST_TIMEOUT_SECONDS)
            client = Client(self.config.TWILIO_ACCOUNT_SID, self.config.TWILIO_AUTH_TOKEN or "unset",
                            http_client=http_client)
            # The stand-in of local runs and the contract tests sit at another base URL.
            client.api.base_url = self.config.TWILIO_API_BASE_URL.rstrip("/")
            self._client = client
        return self._client

    def _calls(self):
        return self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).calls

    def _wrap(self, action, call_sid=None):
        try:
            return action()
        except TwilioRestException as exc:
            if exc.code == CALL_NOT_IN_PROGRESS or exc.status == 404:
                raise CallGone(exc.msg, exc.status, exc.code) from exc
            if exc.code in ACCOUNT_REFUSAL_CODES:
                raise AccountRefused(exc.msg, exc.status, exc.code) from exc
            if exc.code in REFUSED_NUMBER_CODES:
                raise NumberRefused(exc.msg, exc.status, exc.code) from exc
            raise TelephonyError(exc.msg, exc.status, exc.code) from exc
        except Exception as exc:  # requests' own errors: timeouts, refused connections
            from_requests = type(exc).__module__.startswith(("requests", "urllib3"))
            if from_requests and type(exc).__name__ in _MAYBE_SENT:
                raise MaybePlaced(type(exc).__name__) from exc
            if from_requests or isinstance(exc, (TwilioException, OSError)):
                raise TelephonyError(type(exc).__name__) from exc
            raise

    def place_call(self, *, to, from_, url=None, status_callback, timeout, fallback_url=None,
                   machine_detection=False, twiml=None, amd_callback=None):
        """Dial a number; Twilio runs `twiml` (inline) or fetches `url` for TwiML when it
        answers. Returns the CallSid.

        `machine_detection`: False (none), True or "sync" (the callee waits in silence for the
        verdict, which the Url's request carries), "async" (the call runs at once; the verdict
        is posted to `amd_callback`). NumberRefused when Twilio will never call `to`;
        MaybePlaced when the request timed out after it was sent (the call may ring: its
        status callbacks will tell).
        """
        params = dict(
            to=to, from_=from_, timeout=timeout, status_callback=status_callback,
            # `initiated` brings the CallSid even when this request's answer is lost (the
            # URL names the attempt); `ringing` says the call left Twilio's pacing queue.
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            status_callback_method="POST",
        )
        # Twilio ignores Twiml when a Url is given too, so a call has one or the other; a
        # FallbackUrl stands in for a failed Url only.
        if twiml is not None:
            params.update(twiml=twiml)
        else:
            params.update(url=url)
            if fallback_url:
                params.update(fallback_url=fallback_url, fallback_method="POST")
        if machine_detection:
            # Detection keeps the callee in silence while it listens: a few seconds, not 30.
            # Asynchronous, nobody waits; the verdict still comes within the same time.
            params.update(machine_detection="Enable",
                          machine_detection_timeout=MACHINE_DETECTION_TIMEOUT_SECONDS)
        if machine_detection == "async":
            params.update(async_amd="true", async_amd_status_callback=amd_callback,
                          async_amd_status_callback_method="POST")
        call = self._wrap(lambda: self._calls().create(**params))
        return call.sid

    def calls_to(self, number, since):
        """Calls placed to `number` created at or after `since`, newest first (settles a
        create request that timed out: was the call placed after all?)."""
        calls = self._wrap(lambda: self._calls().list(to=number, limit=20))
        found = [CallRecord(c.sid, c.status, c.date_created) for c in calls
                 if c.date_created is None or c.date_created >= since.replace(microsecond=0)]
        return sorted(found, key=lambda c: c.created_at or since, reverse=True)

    def redirect_call(self, call_sid, url):
        """Make a live call run new TwiML (this also takes it out of a Twilio queue)."""
        self._wrap(lambda: self._calls()(call_sid).update(url=url, method="POST"), call_sid)

    def hang_up(self, call_sid):
        """End a call; one already over is fine."""
        try:
            self._wrap(lambda: self._calls()(call_sid).update(status="completed"), call_sid)
        except CallGone:
            pass

    def conference_participants(self, friendly_name):
        """CallSids connected now to the open conference of that name (none when no such
        conference is open): Twilio's word on who is with whom. Open is in progress, or
        `init`: an agent waiting alone (startConferenceOnEnter false) has not started it."""
        conferences = self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).conferences
        rooms = [room for status in ("init", "in-progress")
                 for room in self._wrap(lambda: conferences.list(friendly_name=friendly_name, status=status,
                                                                 limit=5))]
        joined = set()
        for room in rooms:
            participants = self._wrap(lambda: conferences(room.sid).participants.list(limit=50))
            joined |= {p.call_sid for p in participants if p.status in (None, "connected")}
        return frozenset(joined)

    def conference_ended_by(self, friendly_name):
        """The CallSid whose leaving ended the conference of that name, as Twilio's record
        says (`call_sid_ending_conference`); None while none of that name has ended."""
        conferences = self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).conferences
        rooms = self._wrap(lambda: conferences.list(friendly_name=friendly_name, status="completed", limit=5))
        return next((room.call_sid_ending_conference for room in rooms if room.call_sid_ending_conference),
                    None)

    def announce_to(self, friendly_name, call_sid, url):
        """Play `url` (TwiML of <Say>, <Play>, <Pause>) to one participant of the open
        conference of that name, the others hearing nothing of it. False when no open
        conference holds that call."""
        conferences = self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).conferences
        rooms = self._wrap(lambda: conferences.list(friendly_name=friendly_name, status="in-progress",
                                                    limit=5))
        for room in rooms:
            try:
                self._wrap(lambda: conferences(room.sid).participants(call_sid).update(
                    announce_url=url, announce_method="POST"), call_sid)
                return True
            except CallGone:
                continue
        return False

    def _numbers(self):
        return self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).incoming_phone_numbers

    def incoming_number(self, phone_number):
        """The account's number `phone_number` (E.164) as configured at Twilio, or None when
        the account does not own it."""
        found = self._wrap(lambda: self._numbers().list(phone_number=phone_number, limit=5))
        for number in found:
            if number.phone_number == phone_number:
                return IncomingNumber(number.sid, number.phone_number,
                                      **{name: getattr(number, name, None) for name in NUMBER_FIELDS})
        return None

    def configure_number(self, sid, changes):
        """Set fields of one of the account's numbers (`changes`: IncomingNumber field names;
        an empty string clears a binding)."""
        self._wrap(lambda: self._numbers()(sid).update(**changes))

    def delete_call_record(self, call_sid):
        """Delete Twilio's record of an ended call (erasure); True when deleted, False when
        Twilio holds no such call."""
        try:
            self._wrap(lambda: self._calls()(call_sid).delete(), call_sid)
        except CallGone:
            return False
        return True

    def _queues(self):
        return self.client.api.v2010.accounts(self.config.TWILIO_ACCOUNT_SID).queues

    def _queue_named(self, name):
        """The account's queue of that friendly name (the name <Enqueue> uses), or None. The
        Queues API filters nothing, so the list is read page by page."""
        return next((q for q in self._wrap(lambda: self._queues().list(page_size=QUEUE_PAGE_SIZE))
                     if q.friendly_name == name), None)

    def size_queue(self, name, max_size):
        """Give the account's queue `name` this MaxSize, creating it when it does not exist
        yet (<Enqueue> would create it with Twilio's default size instead). Returns a QueueSize."""
        queue = self._queue_named(name)
        if queue is None:
            try:
                created = self._wrap(lambda: self._queues().create(friendly_name=name, max_size=max_size))
                return QueueSize(created.sid, name, int(created.max_size), "created")
            except TelephonyError as exc:
                # Created meanwhile (another save, or a caller's <Enqueue>): size that one.
                queue = self._queue_named(name)
                if queue is None:
                    raise exc
        if int(queue.max_size or 0) == max_size:
            return QueueSize(queue.sid, name, max_size, "unchanged")
        updated = self._wrap(lambda: self._queues()(queue.sid).update(max_size=max_size))
        return QueueSize(updated.sid, name, int(updated.max_size), "updated")

    def size_queues(self, queues):
        """`size_queue` for each of `queues` (records with `name` and `max_size`); a Twilio
        failure is reported as that queue's outcome, never raised, so the others are sized."""
        done = []
        for queue in queues:
            try:
                sized = self.size_queue(queue.name, queue.max_size)
            except TelephonyError as exc:
                log.warning("could not size Twilio queue %s to %d: %s", queue.name, queue.max_size, exc)
                sized = QueueSize(None, queue.name, queue.max_size, "failed", str(exc) or type(exc).__name__)
            done.append(sized)
        return done

    def call_record(self, call_sid):
        """Twilio's record of one call (its status and AnsweredBy), or None when Twilio holds
        no such call. One GET, never retried here: a caller that needs it retries later."""
        try:
            call = self._wrap(lambda: self._calls()(call_sid).fetch(), call_sid)
        except CallGone:
            return None
        return CallRecord(call.sid, call.status, call.date_created, call.answered_by or None)

    def call_status(self, call_sid):
        """The current status of a call ('in-progress', 'completed', ...)."""
        try:
            return self._wrap(lambda: self._calls()(call_sid).fetch().status, call_sid)
        except CallGone:
            return "completed"
