"""Voicemail recordings at Twilio, on the account `rest.Telephony` holds: the audio fetched
server-side with the account's credentials (accounts may require HTTP auth on media URLs, and
the app never hands Twilio's URLs out), and the recording deleted once its work is over."""
import logging
import re

from callback.telephony.rest import CallGone, TelephonyError

log = logging.getLogger(__name__)
# A recording's SID; nothing else is ever put into a media URL.
_RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
# The audio a message may weigh at most (ten minutes of Twilio's MP3 is about 2.5 MB): the
# app answers it in one response, within Lambda's 6 MB.
MAX_AUDIO_BYTES = 5 * 1024 * 1024
AUDIO_TYPE = "audio/mpeg"


def valid_sid(recording_sid):
    """True for a well-formed recording SID."""
    return bool(recording_sid) and bool(_RECORDING_SID.fullmatch(recording_sid))


class Recordings:
    """Fetches and deletes recordings through the telephony adapter's account and base URL."""

    def __init__(self, telephony, session=None):
        self.telephony = telephony
        self._session = session

    def _recordings(self):
        return self.telephony.client.api.v2010.accounts(self.telephony.config.TWILIO_ACCOUNT_SID).recordings

    def audio(self, recording_sid):
        """The recording's audio (MP3 bytes). CallGone when Twilio holds no such recording,
        TelephonyError when it cannot be fetched (or is larger than MAX_AUDIO_BYTES)."""
        if not valid_sid(recording_sid):
            raise CallGone("not a recording SID", 404)
        import requests  # with the REST client: not at cold start

        config = self.telephony.config
        url = (f"{config.TWILIO_API_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{config.TWILIO_ACCOUNT_SID}"
               f"/Recordings/{recording_sid}.mp3")
        session = self._session or requests
        try:
            # Twilio answers with a redirect to its storage; requests drops the credentials
            # when it follows one to another host.
            response = session.get(url, auth=(config.TWILIO_ACCOUNT_SID, config.TWILIO_AUTH_TOKEN or "unset"),
                                   timeout=config.TWILIO_REST_TIMEOUT_SECONDS, stream=True)
        except (requests.RequestException, OSError) as exc:
            raise TelephonyError(type(exc).__name__) from exc
        with response:
            if response.status_code == 404:
                raise CallGone(f"recording {recording_sid} not found", 404)
            if response.status_code >= 400:
                raise TelephonyError(f"recording {recording_sid}: HTTP {response.status_code}",
                                     response.status_code)
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_AUDIO_BYTES:
                    raise TelephonyError(f"recording {recording_sid} is larger than {MAX_AUDIO_BYTES} bytes")
        return bytes(body)

    def delete(self, recording_sid):
        """Delete a recording at Twilio, its transcriptions first (their text is the message's
        words); True when deleted, False when Twilio holds none (gone already: a repeated
        delete is harmless)."""
        if not valid_sid(recording_sid):
            return False
        recording = self._recordings()(recording_sid)
        try:
            # Read first: a list of a gone recording's transcriptions fails without its 404.
            self.telephony._wrap(lambda: recording.fetch())
            for transcription in self.telephony._wrap(lambda: recording.transcriptions.list(limit=20)):
                try:
                    self.telephony._wrap(lambda t=transcription: recording.transcriptions(t.sid).delete())
                except CallGone:
                    pass  # gone meanwhile
            self.telephony._wrap(lambda: recording.delete())
        except CallGone:
            return False
        return True
