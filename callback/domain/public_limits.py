"""The public page's limits before any code is sent: per client address, per number, and per
hour overall for the IVR. Plain Python: which counters a request takes, in which window, and
how long a refused one must wait. Storage counts them (callback.storage.rate_limits).

Each limit is a fixed window (the clock hour since the epoch, by default): a counter per key
and window, taken by one conditional atomic update while it is below its limit, gone by TTL
after its window. A fixed window lets up to twice the limit through across a window's edge,
which is within what the limits are for: a bound on cost, not a precise rate. Keys are keyed
hashes, so no address or number is stored in the clear. Only the public page's routes take
them: Twilio's signed webhooks never do (Twilio reads a 429 as a failed webhook, error 11217,
and plays the fallback to the caller).
"""
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

# The limits themselves are the deployment's (Config's PUBLIC_CODES_PER_ADDRESS, 5: a person's
# few tries; PUBLIC_CODES_PER_NUMBER, 3: a code, a resend and a call) and the IVR's (its
# Public Page Codes Per Hour setting, callback.domain.public_page).
WINDOW = timedelta(hours=1)

ADDRESS, NUMBER, IVR = "address", "number", "ivr"
# Checked in this order: one address cannot use up a number's or the IVR's hour.
ORDER = (ADDRESS, NUMBER, IVR)


@dataclass(frozen=True)
class Limit:
    """One counter a request takes: its kind, stored key, limit and window."""

    kind: str
    key: str
    limit: int
    window: timedelta = WINDOW


def _keyed(secret, *parts):
    return hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:40]


def limits_for(secret, ivr_name, address, number, *, per_address, per_number, per_hour):
    """The counters a code sent to `number` for a request from `address` takes, in ORDER."""
    return [Limit(ADDRESS, _keyed(secret, ADDRESS, address), per_address),
            Limit(NUMBER, _keyed(secret, NUMBER, number), per_number),
            Limit(IVR, _keyed(secret, IVR, ivr_name), per_hour)]


def window_of(limit, now):
    """(start, end) of the window `now` falls in, as aware datetimes."""
    seconds = int(limit.window.total_seconds())
    start = int(now.timestamp()) // seconds * seconds
    begin = now - timedelta(seconds=now.timestamp() - start)
    return begin, begin + limit.window


def retry_after(limit, now):
    """Whole seconds until `limit`'s window ends (at least 1): the Retry-After of a refusal."""
    return max(1, int((window_of(limit, now)[1] - now).total_seconds() + 0.999))


def minutes_text(seconds):
    """'1 minute', '12 minutes': a wait in the words of the page."""
    minutes = max(1, (seconds + 59) // 60)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")
