"""Texts through Twilio's Messages API, on the REST client `rest.Telephony` owns: sending
one through a Messaging Service, and deleting a number's message logs (erasure)."""
import logging

from callback.domain.numbers import mask
from callback.domain.texts import OPTED_OUT_CODE, UNTEXTABLE_CODES
from callback.telephony.rest import CallGone, TelephonyError, maybe_placed

log = logging.getLogger(__name__)
# A number's message logs are read this many at most per direction (erasure).
MESSAGE_LIST_LIMIT = 200


class OptedOut(TelephonyError):
    """Twilio refuses the text: the number opted out (21610), perhaps before the app knew."""


class TextRefused(TelephonyError):
    """Twilio refuses the text for good: no text can reach this number (invalid, a landline
    where Twilio knows it, not a mobile)."""


def maybe_sent(exc):
    """True when a failed send may have been taken all the same (no answer, or a 5xx)."""
    return maybe_placed(exc)


class Messaging:
    """Sends texts and deletes message logs through the telephony adapter's client."""

    def __init__(self, telephony):
        self.telephony = telephony

    def _messages(self):
        return self.telephony.client.api.v2010.accounts(self.telephony.config.TWILIO_ACCOUNT_SID).messages

    def send(self, *, service_sid, to, body, status_callback):
        """Send one text through the Messaging Service (its sender pool picks the number);
        returns the MessageSid. OptedOut on 21610, TextRefused when no text reaches `to`,
        another TelephonyError otherwise (`maybe_sent` says whether it may have left)."""
        try:
            message = self.telephony._wrap(lambda: self._messages().create(
                messaging_service_sid=service_sid, to=to, body=body, status_callback=status_callback))
        except TelephonyError as exc:
            if exc.code == OPTED_OUT_CODE:
                raise OptedOut(str(exc), exc.status, exc.code) from exc
            if exc.code in UNTEXTABLE_CODES:
                raise TextRefused(str(exc), exc.status, exc.code) from exc
            raise
        return message.sid

    def delete_messages_of(self, number):
        """Delete Twilio's logs of the texts to and from `number`; returns (deleted, failed)."""
        deleted = failed = 0
        sids = set()
        for direction in ({"to": number}, {"from_": number}):
            found = self.telephony._wrap(
                lambda d=direction: self._messages().list(limit=MESSAGE_LIST_LIMIT, **d))
            sids |= {message.sid for message in found}
        for sid in sorted(sids):
            try:
                self.telephony._wrap(lambda s=sid: self._messages()(s).delete())
                deleted += 1
            except CallGone:  # a 404: gone already
                pass
            except TelephonyError as exc:
                failed += 1
                log.warning("erasure: Twilio kept message %s of %s (%s)", sid, mask(number), exc)
        return deleted, failed
