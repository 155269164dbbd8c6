"""Texts to customers and the numbers that opted out of them (config table).

A text (pk "TEXT", sk "<callback id>#<kind>") is stored once, with an outbox item of the
same sk (pk "OUTBOX") that the sweep reads while the text is unsent: a small partition,
whatever the history. Every change is conditional: a sender claims a text (due, or a claim
that ran out, tries left) before it asks Twilio, so concurrent Lambdas and retried hand-offs
send it once; the counters of sent and failed texts move in the transaction that records
the outcome. An opt-out (pk "OPTOUT", sk the number) is kept for the retention period after
it was last learned; texts go with their callback's retention.
"""
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from callback.domain import stats
from callback.domain import texts as t
from callback.storage.client import Conflict, StorageBase, _cancel_codes, _dynamodb, _failed, _valid_key

# The outbox item outlives its text's sending by far: only a safety net.
OUTBOX_LIFETIME = timedelta(days=2)


class TextStorage(StorageBase):
    """Texts, their outbox and opt-outs."""

    @property
    def _retention(self):
        return timedelta(days=self.config.RETENTION_DAYS)

    @staticmethod
    def _text_from(r):
        callback_id, kind = t.split_key(r.sk)
        return t.Text(callback_id, kind, r.number, r.ivr_name, r.queue_name, r.created_at, r.state,
                      int(r.tries or 0), r.claim_until, r.message_sid,
                      None if r.error_code is None else int(r.error_code), r.detail)

    def queue_text(self, text):
        """Store a new text and its outbox item; False when this text exists already."""
        T = self.Text
        record = T("TEXT", _valid_key(text.key), number=text.number, ivr_name=text.ivr_name,
                   queue_name=text.queue_name, created_at=text.created_at, state=t.DUE, tries=0,
                   expires_ttl=text.created_at + self._retention)
        outbox = T("OUTBOX", text.key, created_at=text.created_at,
                   expires_ttl=text.created_at + OUTBOX_LIFETIME)
        with _dynamodb():
            def write(tx):
                tx.save(record, condition=T.sk.does_not_exist())
                tx.save(outbox, condition=T.sk.does_not_exist())
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if any(_failed(_cancel_codes(exc), i) for i in (0, 1)):
                    return False
                raise
        return True

    def get_text(self, key):
        """One text by id, or None (a consistent read)."""
        with _dynamodb():
            try:
                return self._text_from(self.Text.get("TEXT", _valid_key(key), consistent_read=True))
            except (DoesNotExist, ValueError):
                return None

    def outbox(self, limit=100):
        """Ids of texts not known to be settled, oldest first (one Query of a small partition)."""
        with _dynamodb():
            return [r.sk for r in self.Text.query("OUTBOX", limit=limit, consistent_read=True)]

    def drop_outbox(self, key):
        """The text is settled: the sweep need not look at it again."""
        with _dynamodb():
            self.Text("OUTBOX", _valid_key(key)).delete()

    def claim_text(self, text, now, claim_for=t.CLAIM):
        """Take the text for one send (tries counted); Conflict when another sender has it,
        it is settled, or it has had its tries."""
        T = self.Text
        free = (T.state == t.DUE) | ((T.state == t.SENDING) & (T.claim_until <= now))
        record = T("TEXT", _valid_key(text.key))
        self._update(record, [T.state.set(t.SENDING), T.claim_until.set(now + claim_for), T.tries.add(1)],
                     free & (T.tries == text.tries) & (T.tries < t.MAX_TRIES))
        return self._text_from(record)

    def hold_claim(self, text, now, claim_for):
        """Keep the claim longer (a send whose answer was lost: its status callback may come)."""
        T = self.Text
        self._update(T("TEXT", text.key), [T.claim_until.set(now + claim_for)],
                     (T.state == t.SENDING) & (T.tries == text.tries))

    def release_text(self, text):
        """A send that surely did not happen: due again, for the sweep (its tries stay spent)."""
        T = self.Text
        self._update(T("TEXT", text.key), [T.state.set(t.DUE), T.claim_until.remove()],
                     (T.state == t.SENDING) & (T.tries == text.tries))

    def settle_text(self, text, state, now, *, message_sid=None, error_code=None, detail=None,
                    from_states=(t.SENDING,)):
        """Record how a text ended (sent, delivered, failed, skipped), conditional on its state as
        given; a sent or failed text is counted in its queue's hour, once. Conflict when its state
        moved on; the outbox item goes (the sweep would drop it anyway)."""
        T = self.Text
        actions = [T.state.set(state), T.claim_until.remove()]
        actions += [T.message_sid.set(message_sid)] if message_sid else []
        actions += [T.error_code.set(error_code)] if error_code is not None else []
        actions += [T.detail.set(detail[:200])] if detail else []
        condition = T.state.is_in(*from_states)
        if message_sid and state != t.SENT:
            condition &= T.message_sid.does_not_exist() | (T.message_sid == message_sid)
        counts = {t.SENT: {stats.TEXTS_SENT: 1}, t.FAILED: {stats.TEXTS_FAILED: 1}}.get(state, {})
        with _dynamodb():
            def write(tx):
                tx.update(T("TEXT", _valid_key(text.key)), actions=actions, condition=condition)
                self._count(tx, text.queue_name, text.ivr_name, now, counts)
            try:
                self._transact(write)
            except TransactWriteError as exc:
                if _failed(_cancel_codes(exc), 0):
                    raise Conflict(f"text {text.key} is not {'/'.join(from_states)}") from exc
                raise
        try:
            self.drop_outbox(text.key)
        except Exception:  # the sweep drops it
            pass

    def texts_of_callback(self, callback_id):
        """The texts of one callback (for erasure)."""
        T = self.Text
        with _dynamodb():
            found = T.query("TEXT", T.sk.startswith(_valid_key(callback_id) + "#"))
            return [self._text_from(r) for r in found]

    def forget_texts(self, callback_id):
        """Delete a callback's texts and outbox items (erasure); returns their message SIDs."""
        sids = []
        for text in self.texts_of_callback(callback_id):
            sids += [text.message_sid] if text.message_sid else []
            with _dynamodb():
                self.Text("TEXT", text.key).delete()
                self.Text("OUTBOX", text.key).delete()
        return sids

    # -- opt-outs ------------------------------------------------------------------------

    def opt_out(self, number, now):
        """Record that the number wants no texts (again: its retention starts over)."""
        G = self.Guard
        with _dynamodb():
            G("OPTOUT", _valid_key(number)).update(actions=[G.owner.set(now.isoformat()), G.count.add(1),
                                                            G.expires_ttl.set(now + self._retention)])

    def opt_in(self, number):
        """The number takes texts again; True when it had opted out."""
        G = self.Guard
        try:
            with _dynamodb(conflict="no opt-out"):
                G("OPTOUT", _valid_key(number)).delete(condition=G.sk.exists())
        except Conflict:
            return False
        return True

    def opted_out(self, number):
        """True when the number opted out within the retention period (a consistent read)."""
        with _dynamodb():
            try:
                record = self.Guard.get("OPTOUT", _valid_key(number), consistent_read=True)
            except DoesNotExist:
                return False
        return record.expires_ttl is None or record.expires_ttl > self.clock.now()
