"""Audio the app serves itself: the ringing tone an agent hears while the customer rings, and
the short hold clip whose exact length lets the hold loop cut a wait to the second."""
import io
import math
import struct
import wave
from functools import lru_cache

from callback.domain.hold import FILLER_SECONDS

RATE = 8000


@lru_cache(maxsize=1)
def ringback_wav():
    """One North American ringback cycle (440 + 480 Hz, 2 s on, 4 s off) as 8 kHz WAV,
    played in a loop by `twiml.ringing`: no Twilio document says a bare file at a
    conference's waitUrl loops."""
    on = [int(6000 * (math.sin(2 * math.pi * 440 * i / RATE) + math.sin(2 * math.pi * 480 * i / RATE)))
          for i in range(2 * RATE)]
    return _wav(on + [0] * (4 * RATE))


# The clip's tune: two arpeggiated chords (C major, then G major), half a second a note,
# over a soft low note per chord. Frequencies in Hz.
_MELODY = (523.25, 659.25, 783.99, 659.25, 493.88, 587.33, 783.99, 587.33)
_BASS = (261.63, 196.00)


def _wav(samples):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buffer.getvalue()


def _note(mix, start, seconds, frequency, level, decay):
    """Add a plucked note (fundamental and a soft octave, fading) to `mix` from `start`."""
    for i in range(int(seconds * RATE)):
        t = i / RATE
        envelope = min(1.0, t / 0.01) * math.exp(-t / decay)
        mix[start + i] += level * envelope * (math.sin(2 * math.pi * frequency * t)
                                              + 0.3 * math.sin(4 * math.pi * frequency * t))


@lru_cache(maxsize=1)
def hold_clip_wav():
    """FILLER_SECONDS of quiet music as 8 kHz WAV, silent at both ends so that it loops
    without a click: what a holding caller hears where the hold track would not fit."""
    total = int(FILLER_SECONDS * RATE)
    mix = [0.0] * total
    step = total // len(_MELODY)
    for n, frequency in enumerate(_MELODY):
        _note(mix, n * step, (total - n * step) / RATE, frequency, 1.0, 0.35)
    for n, frequency in enumerate(_BASS):
        start = n * total // len(_BASS)
        _note(mix, start, (total - start) / RATE, frequency, 0.6, 1.0)
    fade = RATE // 25
    for i in range(fade):
        mix[total - 1 - i] *= i / fade
    peak = max(abs(s) for s in mix)
    return _wav([int(9000 * s / peak) for s in mix])
