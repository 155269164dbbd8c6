"""The audit trail (table `audit`): entries are put once, on the condition that no item has
their key, and never updated or deleted by the app (the Lambda role grants neither on the
table); DynamoDB's TTL removes them after AUDIT_RETENTION_DAYS.

Keys: every entry lives in one partition (pk "AUDIT"), sorted by "<UTC time>#<entry id>", so
"newest first" is one Query read backwards, and a date range is a condition on the sort key;
the indexes `audit-by-kind` and `audit-by-actor` hold the same order under the kind of target
and under who made the change. Admins' changes are few (a busy center makes hundreds a day),
far below what one partition takes. No listing ever Scans.
"""
import json
import logging
from datetime import timedelta, timezone

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute

from callback.domain.audit import AuditEntry, dumps
from callback.storage.client import Conflict, StorageBase, StorageError, _dynamodb, _outcome_unknown
from callback.storage.tables import _meta, _Record, _time_ordered_index

log = logging.getLogger(__name__)
PARTITION = "AUDIT"


def build_audit_model(config):
    """The audit table's model, bound to this configuration (beside the code that writes it)."""

    class AuditRecord(_Record):
        """An audit entry (callback.domain.audit), put once and never changed (the role grants
        no update or delete here): newest first in one partition, and by kind of target and by
        who through two indexes in the same order; TTL removes it after the audit retention."""
        Meta = _meta(config.CALLBACK_TABLE_PREFIX + "audit", config)
        pk = UnicodeAttribute(hash_key=True, default="AUDIT")
        sk = UnicodeAttribute(range_key=True)  # "<UTC time>#<entry id>": sorts by time
        at = UTCDateTimeAttribute()
        kind = UnicodeAttribute()
        actor = UnicodeAttribute()
        via = UnicodeAttribute()
        action = UnicodeAttribute()
        target = UnicodeAttribute(null=True)
        changes = UnicodeAttribute()  # JSON texts
        detail = UnicodeAttribute()
        expires_ttl = TTLAttribute()
        by_kind = _time_ordered_index("audit-by-kind", "kind", "sk", UnicodeAttribute)
        by_actor = _time_ordered_index("audit-by-actor", "actor", "sk", UnicodeAttribute)

    return AuditRecord


def time_key(moment):
    """A moment as the sort key's text: fixed width, UTC, so text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_key(entry):
    """An entry's sort key: its time, then its id (two entries of one instant stay apart)."""
    return f"{time_key(entry.at)}#{entry.entry_id}"


class AuditStorage(StorageBase):
    """Appending to the audit trail and listing it; nothing here changes an entry."""

    def append_audit(self, entry):
        """Put a new entry; Conflict when an entry with its key exists (entries are never
        overwritten). A put whose answer was lost is sent once more: finding it then is
        proof it landed."""
        A = self.Audit
        item = A(PARTITION, entry_key(entry), at=entry.at, kind=entry.kind, actor=entry.actor, via=entry.via,
                 action=entry.action, target=entry.target or None, changes=dumps(entry.changes),
                 detail=dumps(entry.detail),
                 expires_ttl=entry.at + timedelta(days=self.config.AUDIT_RETENTION_DAYS))
        try:
            with _dynamodb(conflict="an audit entry with this key exists"):
                item.save(condition=A.sk.does_not_exist())
            return
        except Conflict:
            raise
        except StorageError as exc:
            if not _outcome_unknown(exc.__cause__):
                raise
        log.warning("an audit entry's put went unanswered: sending it again")
        try:
            with _dynamodb(conflict="landed"):
                item.save(condition=A.sk.does_not_exist())
        except Conflict:
            pass  # the first put landed

    def list_audit(self, audit_filter, *, limit=50, start_key=None):
        """Entries newest first, by the filter's kind, actor and time range (a Query on the
        table or on the index of the filter's kind or actor); returns (entries, next key)."""
        A, f = self.Audit, audit_filter
        # The sort key of an entry at `until` is "<until>#…", after "<until>": excluded.
        span = (A.sk.between(time_key(f.since) if f.since else "0", time_key(f.until) if f.until else "~")
                if f.since or f.until else None)
        kept = A.expires_ttl > self.clock.now()
        if f.kind and f.actor:
            index, key, kept = A.by_actor, f.actor, kept & (A.kind == f.kind)
        elif f.kind:
            index, key = A.by_kind, f.kind
        elif f.actor:
            index, key = A.by_actor, f.actor
        else:
            index, key = A, PARTITION
        with _dynamodb():
            results = index.query(key, span, filter_condition=kept, scan_index_forward=False,
                                  limit=limit, last_evaluated_key=start_key, page_size=limit)
            entries = [_entry_from(r) for r in results]
            return entries, results.last_evaluated_key


def _entry_from(record):
    return AuditEntry(record.sk.split("#", 1)[1], record.at, record.actor, record.via, record.kind, record.action,
                      record.target or "", json.loads(record.changes), json.loads(record.detail))
