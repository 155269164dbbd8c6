"""Sign-in: login throttles (pk "LOGIN") and portal sessions (pk "SESSION"), both expiring
by TTL and checked against the clock, since TTL deletion lags."""
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from callback.domain import records as m
from callback.storage.client import CONDITION_FAILED, NotFound, StorageBase, _code, _dynamodb, _valid_key


class SigninStorage(StorageBase):
    """Login throttles and admin sessions."""

    def take_login_attempt(self, key, now, window, limit):
        """Take one of `limit` login attempts for a throttle key in its window (which opens at
        its first attempt and lasts `window`); False once all are taken. Each attempt is
        granted by one conditional write that both checks and counts, so any number of
        concurrent requests get at most `limit` between them."""
        G = self.Guard
        for _ in range(2):
            with _dynamodb():
                try:
                    G("LOGIN", key).update(actions=[G.count.add(1)],
                                           condition=G.sk.exists() & (G.expires_ttl > now) & (G.count < limit))
                    return True
                except UpdateError as exc:
                    if _code(exc) != CONDITION_FAILED:
                        raise
                try:
                    G("LOGIN", key, count=1, expires_ttl=now + window).save(
                        condition=G.sk.does_not_exist() | (G.expires_ttl <= now))
                    return True
                except PutError as exc:
                    if _code(exc) != CONDITION_FAILED:
                        raise
            # Both lost: the window is full, or another request just opened a fresh one
            # between our two writes, and the next round takes a place in it.
        return False

    def clear_login_attempts(self, key):
        """Forget a throttle key's attempts after a successful login."""
        with _dynamodb():
            self.Guard("LOGIN", key).delete()

    def create_session(self, session):
        """Store a new admin session (its id is a fresh random hash: never overwritten)."""
        S = self.Session
        with _dynamodb(conflict="session id taken"):
            S("SESSION", session.key, username=session.username, password_tag=session.password_tag,
              role=session.role, created_at=session.created_at, last_seen=session.last_seen,
              expires_ttl=session.expires_at).save(condition=S.sk.does_not_exist())

    def get_session(self, key):
        """An admin session by the hash of its id, or None (one strongly consistent read, so
        a logout is seen at once)."""
        with _dynamodb():
            try:
                r = self.Session.get("SESSION", _valid_key(key), consistent_read=True)
            except (DoesNotExist, NotFound):
                return None
        return m.AdminSession(r.sk, r.username, r.password_tag, r.created_at, r.last_seen, r.expires_ttl,
                              r.role)

    def touch_session(self, key, now, expires_at):
        """Move a live session's idle deadline; Conflict if it was ended meanwhile (a touch
        must never bring back a session that logout removed)."""
        S = self.Session
        with _dynamodb(conflict="session ended"):
            S("SESSION", key).update(actions=[S.last_seen.set(now), S.expires_ttl.set(expires_at)],
                                     condition=S.sk.exists())

    def end_session(self, key):
        """Revoke an admin session."""
        with _dynamodb():
            self.Session("SESSION", _valid_key(key)).delete()
