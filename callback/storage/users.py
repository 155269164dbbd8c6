"""The portal's named users (config table, pk "USER", sk the normalised username).

Every write is one transaction conditioned on what it was computed from: a create on the
name being free, a change on the revision it read. A change that would leave no enabled
admin is refused in the same transaction by a condition check on another enabled admin, so
two admins demoting each other at once cannot both win. An agent's linked agent record is
checked to exist in that transaction too.
"""
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from callback.domain import users as u
from callback.storage.client import (
    CONDITION_FAILED,
    Conflict,
    NotFound,
    StorageBase,
    _cancel_codes,
    _dynamodb,
    _valid_key,
)
from callback.storage.tables import _meta, _Record

USER = "USER"
# Another admin checked as "still an enabled admin" may be demoted meanwhile while a third
# one is not: the change reads the users again, this many times in all.
LAST_ADMIN_TRIES = 3


def user_model(config):
    """The model of a user in the config table, bound to this configuration."""

    class UserRecord(_Record):
        """A named user of the portal (callback.domain.users.User); `revision` is the
        condition of every change, `generation` is in their sessions' tag (sessions of an
        older generation are over)."""
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True, default=USER)
        sk = UnicodeAttribute(range_key=True)
        display_name = UnicodeAttribute(null=True)
        role = UnicodeAttribute()
        agent_id = UnicodeAttribute(null=True)
        password_hash = UnicodeAttribute()
        disabled = BooleanAttribute(default=False)
        generation = NumberAttribute(default=0)
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()
        revision = NumberAttribute(default=0)

    return UserRecord


class LastAdmin(Conflict):
    """The change would leave the portal without an enabled admin."""


class UnknownAgent(Conflict):
    """The linked agent record does not exist."""


class UserTaken(Conflict):
    """A user of that name exists."""


class _Refused(Exception):
    """Which of a user write's conditions failed."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


class UserStorage(StorageBase):
    """Named users, read by key or by one Query of their partition."""

    @staticmethod
    def _user_from(r):
        return u.User(r.sk, r.display_name or "", r.role, r.password_hash, r.agent_id or None,
                      bool(r.disabled), int(r.generation or 0), r.created_at, r.updated_at,
                      int(r.revision or 0))

    def get_user(self, username):
        """A user by normalised name, or None (strongly consistent: a disable is seen at once)."""
        try:
            key = _valid_key(username)
        except NotFound:
            return None
        with _dynamodb():
            try:
                return self._user_from(self.UserRec.get(USER, key, consistent_read=True))
            except DoesNotExist:
                return None

    def list_users(self):
        """Every user, by name (one Query)."""
        with _dynamodb():
            return [self._user_from(r) for r in self.UserRec.query(USER, consistent_read=True)]

    def create_user(self, user, now):
        """Store a new user; UserTaken when the name is, UnknownAgent when the linked agent
        record does not exist. Returns the user as stored."""
        stored = user.evolve(created_at=now, updated_at=now, revision=1)
        try:
            self._write(stored, self.UserRec.sk.does_not_exist(), other_admin=None)
        except _Refused as exc:
            raise (UserTaken if exc.what == "user" else UnknownAgent)(user.username) from None
        return stored

    def save_user(self, current, changed, now):
        """Write `changed` over `current` (as read); Conflict when the user changed meanwhile,
        LastAdmin when no other enabled admin would remain, UnknownAgent when the linked agent
        record does not exist. Returns the user as stored."""
        R = self.UserRec
        stored = changed.evolve(username=current.username, created_at=current.created_at, updated_at=now,
                                revision=current.revision + 1)
        for _ in range(LAST_ADMIN_TRIES):
            other = None
            if current.enabled_admin and not stored.enabled_admin:
                others = [x for x in self.list_users() if x.enabled_admin and x.username != current.username]
                if not others:
                    raise LastAdmin(current.username)
                other = others[0].username
            try:
                self._write(stored, R.sk.exists() & (R.revision == current.revision), other_admin=other)
            except _Refused as exc:
                if exc.what == "other-admin":
                    continue
                raise (Conflict if exc.what == "user" else UnknownAgent)(current.username) from None
            return stored
        raise LastAdmin(current.username)

    def _write(self, user, condition, *, other_admin):
        """The user's put and its checks in one transaction; _Refused naming what failed."""
        R, A = self.UserRec, self.AgentRec
        checks = []
        if user.agent_id:
            checks.append(("agent", lambda tx: tx.condition_check(A, "AGENT", user.agent_id,
                                                                  condition=A.sk.exists())))
        if other_admin:
            checks.append(("other-admin", lambda tx: tx.condition_check(
                R, USER, other_admin, condition=(R.role == u.ADMIN) & (R.disabled == False))))  # noqa: E712

        def write(tx):
            # PynamoDB sends condition checks before puts: cancellation reasons come in that order.
            for _, check in checks:
                check(tx)
            tx.save(R(USER, user.username, display_name=user.display_name, role=user.role,
                      agent_id=user.agent_id, password_hash=user.password_hash, disabled=user.disabled,
                      generation=user.generation, created_at=user.created_at, updated_at=user.updated_at,
                      revision=user.revision), condition=condition)

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                codes = _cancel_codes(exc)
                names = [name for name, _ in checks] + ["user"]
                failed = [name for name, code in zip(names, codes)
                          if code in (CONDITION_FAILED, "ConditionalCheckFailed")]
                if failed:
                    # A stale read says most: the user's own condition first.
                    raise _Refused("user" if "user" in failed else failed[0]) from exc
                raise
