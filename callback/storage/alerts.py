"""Alerts for admins (config table, pk "ALERT", sk the alert's kind): a condition only an
admin can fix, noted by the work that met it and shown on the dashboard for a day after
it was last met (TTL removes it later; reads filter by time, since TTL deletion lags)."""
from datetime import timedelta

from callback.domain.records import Alert
from callback.storage.client import StorageBase, _dynamodb

# An alert stays on the dashboard this long after it was last met.
ALERT_SHOWN_FOR = timedelta(hours=24)


class AlertStorage(StorageBase):
    """Noting and reading admins' alerts."""

    def note_alert(self, kind, detail, now):
        """Note that `kind` was met now (`detail` says what); counts how often."""
        G = self.Guard
        with _dynamodb():
            G("ALERT", kind).update(actions=[G.owner.set(detail), G.count.add(1),
                                              G.expires_ttl.set(now + ALERT_SHOWN_FOR)])

    def active_alerts(self, now):
        """Alerts met within the last day, most recent first."""
        with _dynamodb():
            records = [r for r in self.Guard.query("ALERT") if r.expires_ttl and r.expires_ttl > now]
        alerts = [Alert(r.sk, r.owner or "", int(r.count or 0), r.expires_ttl - ALERT_SHOWN_FOR)
                  for r in records]
        return sorted(alerts, key=lambda a: a.last_at, reverse=True)
