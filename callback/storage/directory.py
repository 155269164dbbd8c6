"""The routing directory: IVRs, their numbers and queues, cached for a short time.

Every IVR lives in one DynamoDB partition, so a refresh is a single Query. Between
refreshes (CONFIG_CACHE_SECONDS, 30 s by default) the hold loop reads nothing at all; an
admin's change reaches every Lambda container within that time, and the container that
saved it at once.
"""
import threading
import time


class Directory:
    """Looks up IVRs by number or name and queues by name, from a cached snapshot."""

    def __init__(self, storage, ttl_seconds, monotonic=time.monotonic):
        self._storage = storage
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._loaded_at = None
        self._ivrs = ()
        self._by_number = {}
        self._by_name = {}
        self._queues = {}

    def _snapshot(self):
        with self._lock:
            fresh = self._loaded_at is not None and self._monotonic() - self._loaded_at < self._ttl
            if not fresh:
                ivrs = tuple(self._storage.list_ivrs())
                self._ivrs = ivrs
                self._by_name = {ivr.name: ivr for ivr in ivrs}
                self._by_number = {n: ivr for ivr in ivrs for n in ivr.numbers}
                self._queues = {q.name: (ivr, q) for ivr in ivrs for q in ivr.queues}
                self._loaded_at = self._monotonic()
            return self

    def invalidate(self):
        """Forget the snapshot: the next lookup reloads."""
        with self._lock:
            self._loaded_at = None

    def ivrs(self):
        """Every IVR, alphabetically."""
        return self._snapshot()._ivrs

    def ivr_for_number(self, number):
        """The IVR a Twilio number belongs to, or None."""
        return self._snapshot()._by_number.get(number)

    def ivr(self, name):
        """An IVR by name, or None."""
        return self._snapshot()._by_name.get(name)

    def queue(self, name):
        """(ivr, queue) for a queue name, or (None, None)."""
        return self._snapshot()._queues.get(name, (None, None))
