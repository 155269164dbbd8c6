"""The Twilio REST client, wrapped: the only module that places or changes calls."""
import logging

from twilio.base.exceptions import TwilioException, TwilioRestException

log = logging.getLogger(__name__)

# Twilio's answer when a call is no longer in progress and cannot be redirected.
CALL_NOT_IN_PROGRESS = 21220
FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}


class TelephonyError(Exception):
    """Twilio refused or could not be reached."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.status = status
        self.code = code


class CallGone(TelephonyError):
    """The call has already ended."""


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
            raise TelephonyError(exc.msg, exc.status, exc.code) from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(type(exc).__name__) from exc
        except Exception as exc:  # requests' own errors (timeouts, refused connections)
            if type(exc).__module__.startswith(("requests", "urllib3")):
                raise TelephonyError(type(exc).__name__) from exc
            raise

    def place_call(self, *, to, from_, url, status_callback, timeout, machine_detection=False):
        """Dial a number; Twilio fetches `url` for TwiML when it answers. Returns the CallSid."""
        params = dict(
            to=to, from_=from_, url=url, timeout=timeout, status_callback=status_callback,
            status_callback_event=["answered", "completed"], status_callback_method="POST",
        )
        if machine_detection:
            params["machine_detection"] = "Enable"
        call = self._wrap(lambda: self._calls().create(**params))
        return call.sid

    def redirect_call(self, call_sid, url):
        """Make a live call run new TwiML (this also takes it out of a Twilio queue)."""
        self._wrap(lambda: self._calls()(call_sid).update(url=url, method="POST"), call_sid)

    def hang_up(self, call_sid):
        """End a call; one already over is fine."""
        try:
            self._wrap(lambda: self._calls()(call_sid).update(status="completed"), call_sid)
        except CallGone:
            pass

    def call_status(self, call_sid):
        """The current status of a call ('in-progress', 'completed', ...)."""
        try:
            return self._wrap(lambda: self._calls()(call_sid).fetch().status, call_sid)
        except CallGone:
            return "completed"
