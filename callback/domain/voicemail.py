"""Voicemail instead of holding (issue #33): what a message is, which callers may leave one,
the settings that govern it, and when its recording is deleted. Plain Python.

A message is a callback record of kind VOICEMAIL: the same line, place and priority, the same
attempts and expiry; the agent hears it before the customer (its caller) is dialed.
"""
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from callback.domain.numbers import caller_id_number, speakable

VOICEMAIL = "voicemail"
# The key that leaves a message at the offer (1 is a callback, 2 a chosen time).
KEY = "3"
# A recording shorter than this is a hang-up or a stray key, not a message: nothing is stored.
MIN_SECONDS = 1
# Twilio transcribes recordings of up to two minutes only; a longer one gets no text.
TRANSCRIBE_MAX_SECONDS = 120
# A recording still at Twilio is looked at again this often while its work is open.
RECHECK = timedelta(hours=1)

DEFAULT_MAX_SECONDS = 120
DEFAULT_RETENTION_DAYS = 30

# name: (label, lowest, highest, help text), merged into the settings' INTEGER_FIELDS.
INTEGER_FIELDS = {
    "voicemail_max_seconds": ("Voicemail Max Length (seconds)", 10, 600,
                              "The longest message a caller may leave; they press # to finish sooner."),
    "voicemail_retention_days": ("Recording Retention (days)", 1, 365,
                                 "Days a message's recording is kept at Twilio after its callback ends; "
                                 "then it is deleted there (the callback record keeps the transcription "
                                 "until its own retention)."),
}
# name: (label, help text), merged into the settings' BOOLEAN_FIELDS.
BOOLEAN_FIELDS = {
    "voicemail_enabled": ("Voicemail Enabled",
                          "At the offer, callers whose own number we call back may also press 3 to leave "
                          "a message instead of holding; it keeps their place in line, and the agent hears "
                          "it before the caller is called back."),
    "voicemail_transcribe": ("Transcribe Voicemail",
                             "Ask Twilio for a transcription of each message (English, messages of up to two "
                             "minutes, billed per minute); shown on the callback's page."),
}
FIELDS = (*BOOLEAN_FIELDS, *INTEGER_FIELDS)


@dataclass(frozen=True)
class Message:
    """A recorded message, as the Record action (or its status callback) reports it."""

    recording_sid: str
    recording_url: str
    duration: int


def message_from(recording_sid, recording_url, duration):
    """The message a Record request reports, or None when there is nothing worth keeping
    (no recording, or one shorter than MIN_SECONDS: an empty or silent message)."""
    try:
        seconds = int(duration)
    except (TypeError, ValueError):
        return None
    if not recording_sid or not recording_url or seconds < MIN_SECONDS:
        return None
    return Message(recording_sid, recording_url, seconds)


def number_for(caller, settings):
    """The number a message is called back on: the caller's own, when this IVR calls it;
    None when it may not be offered (withheld, foreign or a number the IVR does not call)."""
    if not settings.voicemail_enabled:
        return None
    return caller_id_number(caller, settings.dial_rules)


def whisper(queue_name, number, seconds, attempt, tries):
    """What the agent hears on answering a message's call."""
    text = (f"Voicemail for {queue_name} from {speakable(number)}, "
            f"{seconds} second{'s' if seconds != 1 else ''}.")
    if attempt > 1:
        text += f" Attempt {attempt} of {tries}."
    return text


def playable(cb):
    """True for a voicemail whose recording the agent can hear (no status said it failed)."""
    return cb.kind == VOICEMAIL and bool(cb.recording_sid) and cb.recording_status in (None, "completed")


# The agent's join is late past the usual margin by the message they hear first, and by
# this much more: Twilio fetches the audio from the app, which fetches it from Twilio.
PLAY_MARGIN = timedelta(seconds=15)


def joining_time(cb):
    """How much longer than a callback's an agent who accepted takes to join: the message
    they hear before the conference (nothing for a plain callback)."""
    if not playable(cb):
        return timedelta(0)
    return timedelta(seconds=cb.recording_seconds or 0) + PLAY_MARGIN


def transcribe(settings, max_seconds):
    """True when Twilio should transcribe: asked for, and within its two-minute limit."""
    return settings.voicemail_transcribe and max_seconds <= TRANSCRIBE_MAX_SECONDS


def delete_after(ended_at, retention_days):
    """When an ended message's recording is deleted at Twilio."""
    return ended_at + timedelta(days=retention_days)


def next_check(now: datetime, ended_at, retention_days):
    """When the sweep looks at a recording again: at its deletion time once its work has
    ended, otherwise after RECHECK."""
    if ended_at is None:
        return now + RECHECK
    return max(now, delete_after(ended_at, retention_days))


# The agent hears a message through a URL of the app's own (Twilio fetches what it plays
# unsigned): it names the callback and carries an expiry and an HMAC, so it plays for
# a short while only and cannot be forged or turned to another recording.
AUDIO_URL_LIFETIME = timedelta(hours=1)


def audio_signature(secret, callback_id, recording_sid, expires):
    """The HMAC that lets the message of `callback_id` be played until `expires` (a Unix time)."""
    message = f"{callback_id}:{recording_sid}:{int(expires)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def audio_allowed(secret, callback_id, recording_sid, expires, signature, now):
    """True when `signature` is that of this message and `expires` has not passed."""
    try:
        expires = int(expires)
    except (TypeError, ValueError):
        return False
    if not secret or not signature or expires < now.timestamp():
        return False
    return hmac.compare_digest(audio_signature(secret, callback_id, recording_sid, expires), signature)
