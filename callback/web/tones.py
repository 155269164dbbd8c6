"""Audio the app serves itself: the ringing tone an agent hears while the customer rings."""
import io
import math
import struct
import wave
from functools import lru_cache

RATE = 8000


@lru_cache(maxsize=1)
def ringback_wav():
    """One North American ringback cycle (440 + 480 Hz, 2 s on, 4 s off) as 8 kHz WAV;
    Twilio loops a conference's wait audio, so one cycle is a continuous ring."""
    on = [int(6000 * (math.sin(2 * math.pi * 440 * i / RATE) + math.sin(2 * math.pi * 480 * i / RATE)))
          for i in range(2 * RATE)]
    samples = on + [0] * (4 * RATE)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buffer.getvalue()
