"""The wallboard's hourly counters: per queue and UTC hour, one small item of ADD-only
numbers (pk "HOURLY#<queue>", sk the hour), moved in the same transaction as the state
change they count (callback.domain.stats names them)."""
from datetime import timedelta

from callback import metrics
from callback.domain import stats
from callback.storage.client import StorageBase, _dynamodb

# The wallboard's counters that on-call also sees as metrics (and alarms on).
METRIC_OF = {stats.REQUESTED: metrics.CALLBACKS_REQUESTED, stats.COMPLETED: metrics.CALLBACKS_COMPLETED,
             stats.EXPIRED: metrics.CALLBACKS_EXPIRED, stats.CANCELED: metrics.CALLBACKS_CANCELED,
             stats.NUMBER_REFUSED: metrics.CALLBACKS_REFUSED, stats.TEXTS_SENT: metrics.TEXTS_SENT,
             stats.TEXTS_FAILED: metrics.TEXTS_FAILED}
# Hourly counters serve today and the last 24 hours; a week more leaves room to look back.
STATS_LIFETIME = timedelta(days=8)


class CounterStorage(StorageBase):
    """Counting inside a transaction, and reading a queue's hours back."""

    def _count(self, tx, queue_name, ivr_name, when, counts):
        """Add `counts` ({counter: n}) to a queue's bucket of the hour `when` falls in, as part
        of transaction `tx`: the counters move only if the state change they count is written,
        so a retried Lambda or a duplicate status callback counts nothing twice."""
        if not counts:
            return
        getattr(tx, "counted", []).append(counts)
        S = self.Stats
        tx.update(S(f"HOURLY#{queue_name}", stats.hour_key(when)),
                  actions=[S.ivr_name.set(ivr_name),
                           S.expires_ttl.set(stats.hour_of(when) + STATS_LIFETIME),
                           *(getattr(S, name).add(n) for name, n in counts.items())])

    @staticmethod
    def _counted(counts):
        """The counters a transaction moved, as CloudWatch metrics."""
        values = {METRIC_OF[name]: n for name, n in counts.items() if name in METRIC_OF}
        metrics.emit(values, event="callbacks")

    def hourly_counts(self, queue_name, since, until):
        """A queue's hourly counters from the hour of `since` to that of `until` (one Query
        of at most that many small items), as [{"hour": datetime, counter: n, …}]."""
        S = self.Stats
        with _dynamodb():
            records = S.query(f"HOURLY#{queue_name}",
                              S.sk.between(stats.hour_key(since), stats.hour_key(until)))
            return [{"hour": stats.hour_from_key(r.sk),
                     **{name: int(getattr(r, name) or 0) for name in stats.COUNTERS}}
                    for r in records]

