"""Twilio Verify v2 on the REST client `rest.Telephony` owns: a code sent to a number
(`POST /v2/Services/{ServiceSid}/Verifications`, To and Channel) and a code checked
(`POST /v2/Services/{ServiceSid}/VerificationCheck`, To and Code). Verify keeps the code, its
10-minute life, its 5 checks and 5 sends, and its fraud guard; the public page asks only
after the number passed the IVR's own rules (Verify's geographic permissions come second)."""
import logging

from callback.domain.numbers import mask
from callback.telephony.rest import TelephonyError

log = logging.getLogger(__name__)

SMS, CALL = "sms", "call"
# Verify's statuses of a verification: a check answers APPROVED for the right code and
# PENDING for a wrong one (valid false); the others end it.
PENDING, APPROVED, CANCELED = "pending", "approved", "canceled"
# Verify's errors that say something about the request, not an outage.
INVALID_PARAMETER = 60200        # To (or Channel) not acceptable
MAX_CHECK_ATTEMPTS = 60202       # 5 wrong codes: the verification is over
MAX_SEND_ATTEMPTS = 60203        # 5 sends to the number within its 10 minutes
LANDLINE = 60205                 # SMS is not supported by landline phone number: call instead
FRAUD_GUARD = 60410              # Verify's fraud guard (or geo permissions) blocked delivery
NOT_FOUND = 20404                # no pending verification: expired, approved already, never sent


class VerifyError(TelephonyError):
    """Verify refused the request; `code` says why (one of the codes above, or another)."""


class Verify:
    """Sends and checks codes through the telephony adapter's client."""

    def __init__(self, telephony):
        self.telephony = telephony

    def _service(self):
        config = self.telephony.config
        client = self.telephony.client
        # The stand-in of local runs and tests serves Verify too, at its own base URL.
        client.verify.base_url = config.TWILIO_VERIFY_BASE_URL.rstrip("/")
        return client.verify.v2.services(config.TWILIO_VERIFY_SERVICE_SID)

    def _call(self, action):
        try:
            return self.telephony._wrap(action)
        except TelephonyError as exc:
            if exc.code is not None:
                raise VerifyError(str(exc), exc.status, exc.code) from exc
            raise

    def send(self, to, channel=SMS):
        """Send a code to `to` by `channel` (sms or call); returns Verify's status (pending).
        VerifyError with Verify's code when it refuses; TelephonyError when it cannot be reached."""
        verification = self._call(lambda: self._service().verifications.create(to=to, channel=channel))
        log.info("verify: code sent to %s by %s (%s)", mask(to), channel, verification.status)
        return verification.status

    def check(self, to, code):
        """Check the code typed for `to`: APPROVED, or PENDING for a wrong code. VerifyError
        20404 when no verification is pending (expired, approved already), 60202 after 5 wrong."""
        result = self._call(lambda: self._service().verification_checks.create(to=to, code=code))
        log.info("verify: code checked for %s: %s", mask(to), result.status)
        return result.status
