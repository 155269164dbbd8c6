"""The call ledger: one item per phone number the app holds (config table, pk "LEG", sk the
number), written in the transaction that claims the work that will ring it and removed
only when Twilio says the call ended, or that none was placed.

An agent's leg goes with their status: the claim that reserves them puts it, and the write
that frees them deletes it, in one transaction. A number with a leg is never dialed
again, by any attempt of any queue. Every change is conditional on the leg's id (and on
its CallSid once known), so a late or repeated event about an earlier call changes nothing.
"""
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist

from callback.domain import records as m
from callback.storage.client import Conflict, StorageBase, _dynamodb, _valid_key

# A leg lives while its call does, and Twilio ends every call within hours: a day is only a
# safety net, so that no number stays held for ever by a bug.
LEG_LIFETIME = timedelta(days=1)


class LegStorage(StorageBase):
    """Reads and conditional writes of the call ledger."""

    def _leg_from(self, r):
        return m.Leg(number=r.sk, leg_id=r.leg_id, role=r.role, kind=r.kind, key=r.key,
                     attempt_id=r.attempt_id, created_at=r.created_at, agent_id=r.agent_id, state=r.state,
                     call_sid=r.call_sid, placed_at=r.placed_at, over=bool(r.over), notice=r.notice,
                     release_why=r.release_why, twilio_status=r.twilio_status, tries=int(r.tries or 0),
                     check_at=r.check_at, on_line=r.on_line)

    def leg_record(self, leg):
        """The ledger item of a new leg, for the claim transaction that takes its number."""
        return self.Leg("LEG", _valid_key(leg.number), leg_id=leg.leg_id, role=leg.role, kind=leg.kind,
                        key=leg.key, attempt_id=leg.attempt_id, created_at=leg.created_at,
                        agent_id=leg.agent_id, state=leg.state, call_sid=leg.call_sid,
                        expires_ttl=leg.created_at + LEG_LIFETIME)

    def hold_number(self, leg):
        """Put a leg for a call the app did not place (a holding caller's own); Conflict when
        the number is held already."""
        with _dynamodb(conflict=leg.number):
            self.leg_record(leg).save(condition=self.Leg.sk.does_not_exist())

    def _expired(self, record):
        return record.expires_ttl is not None and record.expires_ttl <= self.clock.now()

    def get_leg(self, number):
        """The leg holding a number, or None (a consistent read)."""
        with _dynamodb():
            try:
                record = self.Leg.get("LEG", _valid_key(number), consistent_read=True)
            except DoesNotExist:
                return None
        return None if self._expired(record) else self._leg_from(record)

    def live_legs(self):
        """Every leg the app holds: as many as calls it is placing or on, never history."""
        with _dynamodb():
            records = list(self.Leg.query("LEG", consistent_read=True))
        return [self._leg_from(r) for r in records if not self._expired(r)]

    def _leg_condition(self, leg_id, call_sid=None):
        L = self.Leg
        condition = L.leg_id == leg_id
        if call_sid:
            condition &= L.call_sid.does_not_exist() | (L.call_sid == call_sid)
        return condition

    def change_leg(self, number, leg_id, if_call_sid=None, **changes):
        """Set fields of a leg (None removes one), conditional on its id (and on its CallSid
        being unknown or `if_call_sid`); Conflict when the number is no longer held by that leg."""
        L = self.Leg
        set_ = {k: v for k, v in changes.items() if v is not None}
        remove = [k for k, v in changes.items() if v is None]
        self._update(L("LEG", _valid_key(number)), self._field_actions(L, set_, remove),
                     self._leg_condition(leg_id, if_call_sid))
        return self.get_leg(number)

    def start_placing(self, number, leg_id, now):
        """The create request for a reserved leg is about to go out: True, unless a caller
        on that number's phone called in meanwhile (`on_line`), or another leg holds it."""
        L = self.Leg
        try:
            self._update(L("LEG", _valid_key(number)), [L.state.set(m.LEG_PLACING), L.placed_at.set(now)],
                         self._leg_condition(leg_id) & L.on_line.does_not_exist())
        except Conflict:
            return False
        return True

    def mark_on_line(self, number, leg_id, caller_call_sid):
        """A caller on `number` called in while its leg was only reserved: the leg is never
        dialed. True when marked; False when its create has gone out already."""
        L = self.Leg
        try:
            self._update(L("LEG", _valid_key(number)), [L.on_line.set(caller_call_sid)],
                         self._leg_condition(leg_id) & (L.state == m.LEG_RESERVED))
        except Conflict:
            return False
        return True

    def pass_leg(self, number, leg_id, leg):
        """The number held by `leg_id` passes to `leg` in one write (no moment free); False
        when `leg_id` holds it no more."""
        try:
            with _dynamodb(conflict=number):
                self.leg_record(leg).save(condition=self._leg_condition(leg_id))
        except Conflict:
            return False
        return True

    def forget_leg(self, number, leg_id, call_sid=None):
        """The call to `number` ended (or was never placed): the number is free. True when
        this removed it; False when another leg holds it now, or none does."""
        try:
            with _dynamodb(conflict=number):
                self.Leg("LEG", _valid_key(number)).delete(condition=self._leg_condition(leg_id, call_sid))
        except Conflict:
            return False
        return True
