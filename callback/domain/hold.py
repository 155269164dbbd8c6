"""The hold loop's timetable: when a holding caller hears a prompt, and what plays until then.

Twilio asks for the next wait document only when the last one has played out, so a prompt
can only come between two pieces of audio: a <Play> of a three-minute track delays whatever
follows it by three minutes. Each document is therefore cut to last until the next prompt
is due, from audio whose length the app knows: whole plays of the hold track when its length
is known and they fit, then the app's own short clip (FILLER_SECONDS) for what is left. A
track of unknown length is played only after a prompt whose next one may wait for its end.
Plain Python: the caller of these functions measures the time and builds the TwiML.
"""
import math
from dataclasses import dataclass

# Once no prompt is due sooner (after the offer, or with callbacks off), the next one comes
# after about this much of the hold track: the number of whole plays of a known track that
# comes closest, at least one (so one play of a longer track or one of unknown length).
PROMPT_EVERY_SECONDS = 60
# Whole plays of the track may run past a due prompt by this much; the rest of a gap is cut
# finer with the app's own clip. Twilio's request for the next document adds about a second.
LATE_SECONDS = 5
# The length of the app's own clip (web/tones.py makes it): the finest cut of a gap.
FILLER_SECONDS = 4
# Twilio's text-to-speech pace, for what a document says before its music.
WORDS_PER_SECOND = 2.5
# The hold message is said before a gap at least this much longer than the message itself:
# not right before a prompt that is due in a few seconds.
MESSAGE_ROOM_SECONDS = 10


@dataclass(frozen=True)
class HoldTrack:
    """The hold music as the app knows it: its URL ('' for none: the app's own clip only)
    and its length in seconds (None when not known)."""

    url: str
    seconds: float | None = None

    @property
    def known(self):
        """The track's whole length is known, so it can be fitted before a due prompt."""
        return bool(self.url) and bool(self.seconds) and self.seconds > 0


@dataclass(frozen=True)
class HoldAudio:
    """What one wait document plays: the hold message or not, `plays` whole plays of the
    hold track, then `fillers` plays of the app's own clip."""

    message: bool
    plays: int
    fillers: int


def speech_seconds(text):
    """About how long Twilio takes to say `text`."""
    return len(text.split()) / WORDS_PER_SECOND


def until_due(seconds, track, message_seconds):
    """Audio for a gap of `seconds` until a prompt is due: it ends no earlier than that and
    at most LATE_SECONDS (whole plays) or FILLER_SECONDS (the app's clip) after it."""
    message = seconds >= message_seconds + MESSAGE_ROOM_SECONDS
    left = seconds - (message_seconds if message else 0)
    if left <= 0:
        return HoldAudio(message, 0, 0)
    plays = 0
    if track.known:
        plays = int(left // track.seconds)
        if (plays + 1) * track.seconds - left <= LATE_SECONDS:
            plays += 1
        left -= plays * track.seconds
    return HoldAudio(message, plays, math.ceil(left / FILLER_SECONDS) if left > 0 else 0)


def between_prompts(track, message=True):
    """Audio between two prompts when none is due sooner: about PROMPT_EVERY_SECONDS of
    the track in whole plays, at least one (the app's clip when there is no track)."""
    if not track.url:
        return HoldAudio(message, 0, math.ceil(PROMPT_EVERY_SECONDS / FILLER_SECONDS))
    if not track.known:
        return HoldAudio(message, 1, 0)
    return HoldAudio(message, max(1, round(PROMPT_EVERY_SECONDS / track.seconds)), 0)
