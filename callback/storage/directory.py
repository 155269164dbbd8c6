"""The routing directory: IVRs, their numbers and queues, stored and cached for a short time.

Every IVR lives in one DynamoDB partition, so a refresh is a single Query. Between
refreshes (CONFIG_CACHE_SECONDS, 30 s by default) the hold loop reads nothing at all; an
admin's change reaches every Lambda container within that time, and the container that
saved it at once. An IVR is saved whole, its queues and settings inside, under its version:
a concurrent edit loses (Conflict) instead of overwriting.
"""
import threading
import time

from pynamodb.exceptions import DoesNotExist

from callback.domain import public_page as pp
from callback.domain import records as m
from callback.domain import voicemail as vm
from callback.domain.customer_clock import DEFAULT_END, DEFAULT_START
from callback.domain.detection import DEFAULT_MODE
from callback.domain.dialing import DEFAULT_REGIONS
from callback.domain.hours_input import hours_from_record, hours_record
from callback.domain.settings import DEFAULT_LANGUAGE, DEFAULT_VOICE, CallbackSettings
from callback.domain.texts import DEFAULT_CANCEL_WORD
from callback.storage.client import NotFound, StorageBase, _dynamodb, _valid_key
from callback.storage.tables import QueueMap, SettingsMap


class IvrStorage(StorageBase):
    """IVRs in the config table (pk "IVR"), all in one partition."""

    @staticmethod
    def _ivr_from(record):
        s = record.settings
        settings = CallbackSettings(
            callback_enabled=bool(s.callback_enabled),
            offer_after_seconds=int(s.offer_after_seconds),
            expiration_minutes=int(s.expiration_minutes),
            max_retries=int(s.max_retries),
            priority=None if s.priority is None else int(s.priority),
            retry_minutes=int(s.retry_minutes),
            transfer_timeout_seconds=int(s.transfer_timeout_seconds),
            entry_attempts=int(s.entry_attempts),
            slot_capacity=int(s.slot_capacity or 0),
            offer_caller_id=bool(s.offer_caller_id),
            announce_as=s.announce_as or "",
            voice=s.voice or DEFAULT_VOICE,
            language=s.language or DEFAULT_LANGUAGE,
            call_regions=tuple(s.call_regions) if s.call_regions else DEFAULT_REGIONS,
            call_toll_free=True if s.call_toll_free is None else bool(s.call_toll_free),
            call_personal_numbers=bool(s.call_personal_numbers),
            hours=hours_from_record(s.time_zone, s.weekly_hours, s.holidays, s.closures, s.closed_callbacks),
            customer_hours_start=s.customer_hours_start or DEFAULT_START,
            customer_hours_end=s.customer_hours_end or DEFAULT_END,
            sms_enabled=bool(s.sms_enabled), sms_service_sid=s.sms_service_sid or "",
            sms_cancel_word=s.sms_cancel_word or DEFAULT_CANCEL_WORD,
            sms_about_to_call=bool(s.sms_about_to_call), sms_not_reached=bool(s.sms_not_reached),
            machine_detection=s.machine_detection or DEFAULT_MODE,
            voicemail_enabled=bool(s.voicemail_enabled), voicemail_transcribe=bool(s.voicemail_transcribe),
            voicemail_max_seconds=int(s.voicemail_max_seconds or vm.DEFAULT_MAX_SECONDS),
            voicemail_retention_days=int(s.voicemail_retention_days or vm.DEFAULT_RETENTION_DAYS),
            public_page_enabled=bool(s.public_page_enabled),
            public_codes_per_hour=int(s.public_codes_per_hour or pp.DEFAULT_CODES_PER_HOUR),
        )
        queues = tuple(
            m.Queue(q.name, record.sk, int(q.priority), bool(q.callback_enabled),
                    int(q.max_size) if q.max_size is not None else m.TWILIO_MAX_QUEUE_SIZE)
            for q in record.queues
        )
        return m.Ivr(record.sk, tuple(record.numbers), record.greeting, queues, settings, record.version)

    def list_ivrs(self):
        """Every IVR, alphabetically, in one Query."""
        with _dynamodb():
            return [self._ivr_from(r) for r in self.Ivr.query("IVR")]

    def get_ivr(self, name):
        """One IVR by name."""
        with _dynamodb():
            try:
                return self._ivr_from(self.Ivr.get("IVR", _valid_key(name)))
            except DoesNotExist as exc:
                raise NotFound(name) from exc

    def save_ivr(self, ivr):
        """Create (version None) or update an IVR; a concurrent edit raises Conflict."""
        record = self.Ivr(
            "IVR",
            ivr.name,
            numbers=list(ivr.numbers),
            greeting=ivr.greeting,
            queues=[QueueMap(name=q.name, priority=q.priority, callback_enabled=q.callback_enabled,
                             max_size=q.max_size) for q in ivr.queues],
            settings=SettingsMap(**{**ivr.settings.as_dict(), **hours_record(ivr.settings.hours),
                                    "announce_as": ivr.settings.announce_as or None,
                                    "sms_service_sid": ivr.settings.sms_service_sid or None}),
        )
        if ivr.version is not None:
            record.version = ivr.version
        with _dynamodb(conflict=f"IVR {ivr.name} was changed by someone else"):
            record.save()
        return self._ivr_from(record)


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
