"""Agents: who they are, their presence, and the work they are reserved for.

A phone rings one agent: each agent's phone has a guard item (pk "AGENT-PHONE", sk the
phone, owner the agent), written in the transaction that gives the agent that phone and
deleted in the one that takes it away, so two agents never get one phone however many
saves race. Agents saved before the guards existed get theirs at their next save; until
then the agents' own records (one Query) refuse a second agent their phone.

Claiming work reserves an available agent and changes the work (a callback, a holding
caller) in one transaction; releasing is guarded by the attempt (and call) it was for, so a
stale or repeated event frees nobody.
"""
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from callback.domain import records as m
from callback.storage.client import (
    CONDITION_FAILED,
    Conflict,
    NotFound,
    StorageBase,
    StorageError,
    _cancel_codes,
    _dynamodb,
    _valid_key,
)

AGENT_PHONE = "AGENT-PHONE"
# A profile save computed from a read that another save made stale reads again, this many
# times in all: more means something keeps changing these agents.
PROFILE_TRIES = 3


class PhoneTaken(Conflict):
    """The phone is already another agent's (named by `agent_id` and `name`)."""

    def __init__(self, phone, agent_id, name):
        # No phone in the message: it may be logged.
        super().__init__(f"the phone is already agent {agent_id}'s")
        self.phone, self.agent_id, self.name = phone, agent_id, name


class _StaleRead(Exception):
    """A profile save's condition failed: what it was computed from has changed."""


class AgentStorage(StorageBase):
    """Agents in the config table (pk "AGENT")."""

    @staticmethod
    def _agent_from(r):
        return m.Agent(r.sk, r.name, r.phone, tuple(r.queues), r.status, r.status_changed_at,
                       r.work_kind, r.work_key, r.call_sid, r.attempt_id, r.away_reason,
                       int(r.misses or 0))

    def list_agents(self):
        """Every agent (one Query over the agents' partition)."""
        return self._agents()

    def get_agent(self, agent_id):
        """One agent by id."""
        with _dynamodb():
            try:
                return self._agent_from(self.AgentRec.get("AGENT", _valid_key(agent_id)))
            except DoesNotExist as exc:
                raise NotFound(agent_id) from exc

    def save_agent_profile(self, agent_id, *, name, phone, queues, now, create=False):
        """Create an agent (offline) or change who they are, leaving their status alone;
        PhoneTaken when another agent has that phone, Conflict when the id is taken (create)
        or unknown (change)."""
        for _ in range(PROFILE_TRIES):
            agents = {a.agent_id: a for a in self._agents(consistent_read=True)}
            current = agents.get(agent_id)
            if create == (current is not None):
                raise Conflict(agent_id)
            holder = next((a for a in agents.values() if a.phone == phone and a.agent_id != agent_id), None)
            if holder is not None:
                raise PhoneTaken(phone, holder.agent_id, holder.name)
            old_phone = current.phone if current and current.phone != phone else None
            owners = self._phone_owners(phone, old_phone)
            try:
                self._write_profile(agent_id, current, name, phone, queues, now, owners, old_phone)
            except _StaleRead:
                continue
            return self.get_agent(agent_id)
        raise StorageError(f"agent {agent_id} or the owners of its phone kept changing")

    def _agents(self, consistent_read=False):
        with _dynamodb():
            return [self._agent_from(r)
                    for r in self.AgentRec.query("AGENT", consistent_read=consistent_read)]

    def _phone_owners(self, *phones):
        """{phone: agent id} from the guards of these phones (one consistent read)."""
        keys = [(AGENT_PHONE, p) for p in phones if p]
        with _dynamodb():
            return {g.sk: g.owner for g in self.Guard.batch_get(keys, consistent_read=True)}

    def _write_profile(self, agent_id, current, name, phone, queues, now, owners, old_phone):
        """The agent, their phone's guard and the release of their old phone's guard in one
        transaction, each conditioned on exactly what was read; _StaleRead when any moved."""
        A, G = self.AgentRec, self.Guard
        owner = owners.get(phone)
        if owner is None:
            guard_as_read = G.sk.does_not_exist()
        else:
            # Ours, or left by an agent who no longer has this phone (the agent list said
            # none has it): taken over, as long as that agent still does not.
            guard_as_read = G.owner == owner

        def write(tx):
            if current is None:
                tx.save(A("AGENT", agent_id, name=name, phone=phone, queues=list(queues),
                          status=m.OFFLINE, status_changed_at=now), condition=A.sk.does_not_exist())
            else:
                tx.update(A("AGENT", agent_id),
                          actions=[A.name.set(name), A.phone.set(phone), A.queues.set(list(queues))],
                          condition=A.sk.exists() & (A.phone == current.phone))
            tx.save(G(AGENT_PHONE, phone, owner=agent_id), condition=guard_as_read)
            if owner not in (None, agent_id):
                tx.condition_check(A, "AGENT", owner,
                                   condition=A.sk.does_not_exist() | (A.phone != phone))
            # An old phone's guard another agent holds (two agents shared it before the
            # guards) stays theirs.
            if old_phone and owners.get(old_phone) == agent_id:
                tx.delete(G(AGENT_PHONE, old_phone), condition=G.owner == agent_id)

        with _dynamodb():
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if any(code in (CONDITION_FAILED, "ConditionalCheckFailed") for code in _cancel_codes(exc)):
                    raise _StaleRead() from exc
                raise

    def set_agent_presence(self, agent_id, status, now, away_reason=None):
        """Agent says available/offline (away, with their own `away_reason` when given);
        never while reserved or busy on a call."""
        A = self.AgentRec
        # Saying it themselves replaces what the app noted when it set them away.
        self._update(A("AGENT", _valid_key(agent_id)),
                     [A.status.set(status), A.status_changed_at.set(now),
                      A.away_reason.set(away_reason) if away_reason else A.away_reason.remove(),
                      A.misses.set(0)],
                     A.sk.exists() & A.status.is_in(m.OFFLINE, m.AVAILABLE))
        return self.get_agent(agent_id)

    def _agent_guard(self, attempt_id, call_sid=None):
        """Condition: the agent still holds this attempt (and this call, when both know it)."""
        A = self.AgentRec
        condition = A.status.is_in(m.RESERVED, m.BUSY)
        condition &= (A.attempt_id == attempt_id) if attempt_id else A.attempt_id.does_not_exist()
        if call_sid:
            condition &= (A.call_sid == call_sid) | A.call_sid.does_not_exist()
        return condition

    def agent_busy(self, agent_id, attempt_id, call_sid, now):
        """The agent accepted the work of this attempt: busy on it."""
        A = self.AgentRec
        self._update(A("AGENT", agent_id),
                     [A.status.set(m.BUSY), A.status_changed_at.set(now), A.call_sid.set(call_sid),
                      A.misses.set(0)],
                     self._agent_guard(attempt_id, call_sid))

    def set_agent_call(self, agent_id, attempt_id, call_sid):
        """Remember the call that rings an agent for this attempt."""
        A = self.AgentRec
        self._update(A("AGENT", agent_id), [A.call_sid.set(call_sid)],
                     self._agent_guard(attempt_id, call_sid))

    def release_agent(self, agent_id, *, now, attempt_id, call_sid=None, status=m.AVAILABLE,
                      away_reason=None, misses=0, leg=None):
        """End an agent's reservation or call for one attempt; a stale or repeated event
        (another attempt, another call) changes nothing. True when this released them.

        `leg` ((phone, leg id)): the agent's leg in the call ledger, removed in the same
        transaction (it is absent already, or another leg's, when this finds none)."""
        A = self.AgentRec
        actions = [A.status.set(status), A.status_changed_at.set(now), A.work_kind.remove(),
                   A.work_key.remove(), A.call_sid.remove(), A.attempt_id.remove(),
                   A.misses.set(misses)]
        actions.append(A.away_reason.set(away_reason) if away_reason else A.away_reason.remove())
        if leg is None:
            try:
                self._update(A("AGENT", agent_id), actions, self._agent_guard(attempt_id, call_sid))
                return True
            except Conflict:
                return False
        number, leg_id = leg
        L = self.Leg

        def write(tx):
            tx.update(A("AGENT", agent_id), actions=actions, condition=self._agent_guard(attempt_id, call_sid))
            tx.delete(L("LEG", _valid_key(number)), condition=L.sk.does_not_exist() | (L.leg_id == leg_id))
        try:
            with _dynamodb():
                self._transact(write)
        except StorageError as exc:
            if isinstance(exc.__cause__, TransactWriteError) and any(
                    code in (CONDITION_FAILED, "ConditionalCheckFailed") for code in _cancel_codes(exc.__cause__)):
                return False
            raise
        return True

    # -- claiming work: agent and work change together or not at all --------------------

    def _claim(self, agent, now, work_kind, work_key, attempt_id, work, work_actions, work_condition, legs=()):
        """Reserve an available agent for a piece of work and change the work in the same
        transaction, putting the work's `legs` in the call ledger; Conflict when the agent or
        the work has moved on, or a leg's number is held already."""
        A, L = self.AgentRec, self.Leg
        with _dynamodb():
            try:
                with self._tx() as tx:
                    tx.update(A("AGENT", agent.agent_id),
                              actions=[A.status.set(m.RESERVED), A.status_changed_at.set(now),
                                       A.work_kind.set(work_kind), A.work_key.set(work_key),
                                       A.attempt_id.set(attempt_id), A.call_sid.remove()],
                              condition=A.status == m.AVAILABLE)
                    tx.update(work, actions=work_actions, condition=work_condition)
                    for leg in legs:
                        tx.save(self.leg_record(leg), condition=L.sk.does_not_exist())
            except TransactWriteError as exc:
                # Not run again on TransactionConflict: another dispatcher holds this agent
                # or this work, so the claim is lost and the dispatcher looks elsewhere.
                if any(code in (CONDITION_FAILED, "ConditionalCheckFailed", "TransactionConflict")
                       for code in _cancel_codes(exc)):
                    raise Conflict("claim lost") from exc
                raise
