"""The public page's counters (pk "RATE", sk "<key>#<window start>") and its spent
challenges (pk "ONCE"), on the config table's guard items, gone by TTL after their window;
the app compares times itself, since TTL deletion lags."""
from pynamodb.exceptions import PutError, UpdateError

from callback.domain.public_limits import window_of
from callback.storage.client import CONDITION_FAILED, StorageBase, _code, _dynamodb


class RateLimitStorage(StorageBase):
    """Counters taken by one conditional atomic update, and tokens spent once."""

    def take_rate(self, limit, now):
        """Take one of `limit.limit` places in the window `now` falls in; False when all are
        taken. One conditional ADD both checks and counts, so concurrent requests get at most
        the limit between them, whatever their number."""
        G = self.Guard
        start, end = window_of(limit, now)
        with _dynamodb():
            try:
                G("RATE", f"{limit.key}#{int(start.timestamp())}").update(
                    actions=[G.count.add(1), G.expires_ttl.set(end)],
                    condition=G.sk.does_not_exist() | (G.count < limit.limit))
                return True
            except UpdateError as exc:
                if _code(exc) != CONDITION_FAILED:
                    raise
        return False

    def spend_once(self, key, now, until):
        """Mark `key` spent until `until`; False when it already was (a replayed token)."""
        G = self.Guard
        with _dynamodb():
            try:
                G("ONCE", key, expires_ttl=until).save(
                    condition=G.sk.does_not_exist() | (G.expires_ttl <= now))
                return True
            except PutError as exc:
                if _code(exc) != CONDITION_FAILED:
                    raise
        return False
