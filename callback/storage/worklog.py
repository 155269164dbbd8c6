"""Each agent's work of the last few days (callback.domain.worklog): one small item per
piece of work an agent ended (pk "WORK#<agent id>", sk "<UTC end time>#<attempt or offer
id>"), added to the transaction that ends the work, so it lands exactly when the ending
does; read back by one Query of the agent's partition from the start of their day."""
from datetime import timezone

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute

from callback.domain import worklog
from callback.storage.client import StorageBase, _dynamodb, _valid_key
from callback.storage.tables import _meta, _Record

# Fixed width and UTC, so the sort keys order as the times do.
_SK_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _partition(agent_id):
    return f"WORK#{agent_id}"


def _time_key(moment):
    return moment.astimezone(timezone.utc).strftime(_SK_TIME)


def build_work_model(config):
    """The work log's model, over the config table of this configuration."""

    class WorkRecord(_Record):
        """A piece of work an agent ended (callback.domain.worklog): pk "WORK#<agent id>", sk
        "<UTC end time>#<attempt or offer id>"; gone by TTL a few days later."""
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "config", config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        kind = UnicodeAttribute()
        ivr_name = UnicodeAttribute(null=True)
        queue_name = UnicodeAttribute(null=True)
        number = UnicodeAttribute(null=True)  # masked
        outcome = UnicodeAttribute(null=True)
        started_at = UTCDateTimeAttribute(null=True)
        ended_at = UTCDateTimeAttribute()
        talk_seconds = NumberAttribute(null=True)
        expires_ttl = TTLAttribute()

    return WorkRecord


class WorkLogStorage(StorageBase):
    """The agents' work logs, in the config table."""

    def _log_work(self, tx, done):
        """Add `done` (a worklog.WorkDone, or None: nothing) to transaction `tx`. An update
        rather than a put, so the items a transaction's cancellation codes are read by keep
        their places (updates come last, in the order added)."""
        if done is None:
            return
        K = self.Work
        values = {"kind": done.kind, "ivr_name": done.ivr_name, "queue_name": done.queue_name,
                  "number": done.number, "outcome": done.outcome, "started_at": done.started_at,
                  "ended_at": done.ended_at, "talk_seconds": done.talk_seconds,
                  "expires_ttl": done.ended_at + worklog.LIFETIME}
        actions = [getattr(K, name).set(value) for name, value in values.items() if value is not None]
        tx.update(K(_partition(done.agent_id), f"{_time_key(done.ended_at)}#{done.work_id}"), actions=actions)

    def work_since(self, agent_id, since):
        """The work an agent ended from `since` on, oldest first (one Query)."""
        K = self.Work
        with _dynamodb():
            records = list(K.query(_partition(_valid_key(agent_id)), K.sk >= _time_key(since)))
        return [worklog.WorkDone(agent_id, r.kind, r.sk.partition("#")[2], r.ivr_name, r.queue_name,
                                 r.number, r.outcome, r.started_at, r.ended_at,
                                 None if r.talk_seconds is None else int(r.talk_seconds))
                for r in records]
