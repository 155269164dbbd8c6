"""The DynamoDB tables and the PynamoDB models over them, bound to one configuration.

Tables (each name prefixed by CALLBACK_TABLE_PREFIX):
- `config`, by pk: IVRs ("IVR", queues and settings inside; one partition, so the routing
  directory loads with one Query), agents ("AGENT"), guards: one agent per phone, one pending
  callback per number ("AGENT-PHONE", "PENDING"), login throttles ("LOGIN"), portal sessions
  ("SESSION"), named users ("USER"; model in users.py), numbers keyed in ("ENTRY"), departures
  per queue and five minutes ("STATS#<queue>"), pending dispatches ("DISPATCH"), the
  wallboard's counters ("HOURLY#<queue>"), the call ledger ("LEG", sk a number the app
  holds), texts and opt-outs ("TEXT", "OUTBOX", "OPTOUT"), recordings at Twilio ("RECORDING"),
  the public page's counters and challenges ("RATE", "ONCE"), API tokens ("API-TOKEN",
  "API-TOKEN-NAME"; model in api_tokens.py), agents' recent work ("WORK#<agent id>"; model in
  worklog.py). Short-lived kinds expire by TTL; texts and opt-outs within the retention period.
- `waiting-calls`: callers holding, by CallSid; sparse index of who waits in each queue.
- `callbacks`: callbacks, by id; sparse indexes of pending work per queue and of what the
  sweep must look at, by status and time; listing indexes. `audit`: the trail (model in audit.py).

Every model talks to DynamoDB through the process's one client (client.SharedConnection).
"""
from types import SimpleNamespace

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from callback.domain import records as m
from callback.domain import stats
from callback.storage.client import SharedConnection, _client_limits


class _Record(Model):
    """A model whose connection uses the process's shared botocore client: PynamoDB builds
    its table connection (schema, key names), then its own client is never opened."""

    @classmethod
    def _get_connection(cls):
        table = super()._get_connection()
        if not isinstance(table.connection, SharedConnection):
            meta = cls.Meta
            shared = SharedConnection(meta.region, meta.host, connect_timeout_seconds=meta.connect_timeout_seconds,
                                      read_timeout_seconds=meta.read_timeout_seconds,
                                      max_retry_attempts=meta.max_retry_attempts,
                                      max_pool_connections=meta.max_pool_connections)
            shared.add_meta_table(table.connection.get_meta_table(meta.table_name))
            table.connection = shared
        return table


class QueueMap(MapAttribute):
    name = UnicodeAttribute()
    priority = NumberAttribute(default=0)
    callback_enabled = BooleanAttribute(default=True)
    # Absent on queues saved before it existed: Twilio's maximum (records.Queue).
    max_size = NumberAttribute(null=True)


class SettingsMap(MapAttribute):
    callback_enabled = BooleanAttribute(default=True)
    offer_after_seconds = NumberAttribute(default=60)
    expiration_minutes = NumberAttribute(default=120)
    max_retries = NumberAttribute(default=3)
    priority = NumberAttribute(null=True)
    retry_minutes = NumberAttribute(default=5)
    transfer_timeout_seconds = NumberAttribute(default=30)
    entry_attempts = NumberAttribute(default=3)
    slot_capacity = NumberAttribute(null=True)
    offer_caller_id = BooleanAttribute(default=False)
    announce_as = UnicodeAttribute(null=True)
    voice = UnicodeAttribute(null=True)
    language = UnicodeAttribute(null=True)
    # None on IVRs saved before these settings: the defaults apply.
    call_regions = ListAttribute(of=UnicodeAttribute, null=True)
    call_toll_free = BooleanAttribute(null=True)
    call_personal_numbers = BooleanAttribute(null=True)
    # Open hours, as text (callback.domain.hours_input); None before an IVR had hours:
    # open around the clock.
    time_zone = UnicodeAttribute(null=True)
    weekly_hours = ListAttribute(of=UnicodeAttribute, null=True)
    holidays = ListAttribute(of=UnicodeAttribute, null=True)
    closures = ListAttribute(of=UnicodeAttribute, null=True)
    closed_callbacks = BooleanAttribute(null=True)
    # The customer's calling window (callback.domain.customer_clock); None: the defaults.
    customer_hours_start = UnicodeAttribute(null=True)
    customer_hours_end = UnicodeAttribute(null=True)
    # Texts (issue #33); absent on IVRs saved before them: off.
    sms_enabled = BooleanAttribute(null=True)
    sms_service_sid = UnicodeAttribute(null=True)
    sms_cancel_word = UnicodeAttribute(null=True)
    sms_about_to_call = BooleanAttribute(null=True)
    sms_not_reached = BooleanAttribute(null=True)
    # None on IVRs saved before it: the default (asynchronous).
    machine_detection = UnicodeAttribute(null=True)
    # Voicemail (issue #33); absent on IVRs saved before it: off, with the defaults.
    voicemail_enabled = BooleanAttribute(null=True)
    voicemail_max_seconds = NumberAttribute(null=True)
    voicemail_transcribe = BooleanAttribute(null=True)
    voicemail_retention_days = NumberAttribute(null=True)
    # The public callback page (issue #34); absent on IVRs saved before it: off, the default cap.
    public_page_enabled = BooleanAttribute(null=True)
    public_codes_per_hour = NumberAttribute(null=True)


class AttemptMap(MapAttribute):
    attempt_id = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    agent_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    ended_at = UTCDateTimeAttribute(null=True)
    counted = BooleanAttribute(default=False)
    agent_call_sid = UnicodeAttribute(null=True)
    customer_call_sid = UnicodeAttribute(null=True)
    error_code = NumberAttribute(null=True)
    connected_at = UTCDateTimeAttribute(null=True)


def _meta(table_name, config):
    attrs = {"table_name": table_name, "region": config.AWS_REGION, "billing_mode": "PAY_PER_REQUEST",
             **_client_limits(config)}
    if config.AWS_ENDPOINT_URL_DYNAMODB:
        attrs["host"] = config.AWS_ENDPOINT_URL_DYNAMODB
    return type("Meta", (), attrs)


def _time_ordered_index(index_name, hash_name, range_name, range_type=UTCDateTimeAttribute):
    """A global secondary index keyed by a string and ordered by a UTC time (or a text that
    starts with one), all attributes projected (every index here answers whole records)."""
    meta = type("Meta", (), {"index_name": index_name, "projection": AllProjection()})
    return type(f"Index_{index_name.replace('-', '_')}", (GlobalSecondaryIndex,), {
        "Meta": meta, hash_name: UnicodeAttribute(hash_key=True), range_name: range_type(range_key=True)})()


def _number_index():
    """Callbacks by number, keys only: erasure finds a number's callbacks without a Scan,
    and the index copies nothing but the number and the id (both go with the record)."""
    meta = type("Meta", (), {"index_name": "by-number", "projection": KeysOnlyProjection()})
    return type("Index_by_number", (GlobalSecondaryIndex,), {
        "Meta": meta, "number": UnicodeAttribute(hash_key=True)})()


def build_models(config):
    """Model classes bound to this configuration's table names and endpoint, as Storage names them."""
    prefix = config.CALLBACK_TABLE_PREFIX
    config_table = prefix + "config"

    class IvrRecord(_Record):
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="IVR")
        sk = UnicodeAttribute(range_key=True)
        numbers = ListAttribute(of=UnicodeAttribute, default=list)
        greeting = UnicodeAttribute(default="")
        queues = ListAttribute(of=QueueMap, default=list)
        settings = SettingsMap(default=SettingsMap)
        version = VersionAttribute()

    class AgentRecord(_Record):
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="AGENT")
        sk = UnicodeAttribute(range_key=True)
        name = UnicodeAttribute()
        phone = UnicodeAttribute()
        queues = ListAttribute(of=UnicodeAttribute, default=list)
        status = UnicodeAttribute(default=m.OFFLINE)
        status_changed_at = UTCDateTimeAttribute(null=True)
        work_kind = UnicodeAttribute(null=True)
        work_key = UnicodeAttribute(null=True)
        call_sid = UnicodeAttribute(null=True)
        attempt_id = UnicodeAttribute(null=True)
        away_reason = UnicodeAttribute(null=True)
        misses = NumberAttribute(default=0)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update

    class GuardRecord(_Record):
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        owner = UnicodeAttribute(null=True)
        count = NumberAttribute(default=0)
        expires_ttl = TTLAttribute(null=True)

    class LegRecord(_Record):
        """The call ledger: one item per phone number the app holds (pk "LEG", sk the
        number), from the claim of the work until Twilio says the call ended."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="LEG")
        sk = UnicodeAttribute(range_key=True)
        leg_id = UnicodeAttribute()
        role = UnicodeAttribute()
        kind = UnicodeAttribute()
        key = UnicodeAttribute()
        attempt_id = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        agent_id = UnicodeAttribute(null=True)
        state = UnicodeAttribute(default=m.LEG_RESERVED)
        call_sid = UnicodeAttribute(null=True)
        placed_at = UTCDateTimeAttribute(null=True)
        over = BooleanAttribute(default=False)
        notice = UnicodeAttribute(null=True)
        release_why = UnicodeAttribute(null=True)
        twilio_status = UnicodeAttribute(null=True)
        tries = NumberAttribute(default=0)
        check_at = UTCDateTimeAttribute(null=True)
        on_line = UnicodeAttribute(null=True)
        # A safety net only: a leg lives while its call does (Twilio ends calls within hours).
        expires_ttl = TTLAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update

    class TextRecord(_Record):
        """Texts to customers (callback.domain.texts): one item per callback and kind (pk
        "TEXT", sk "<callback id>#<kind>"), kept as long as the callback; while a text is not
        sent, an outbox item of the same sk (pk "OUTBOX") is what the sweep reads."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="TEXT")
        sk = UnicodeAttribute(range_key=True)
        number = UnicodeAttribute(null=True)
        ivr_name = UnicodeAttribute(null=True)
        queue_name = UnicodeAttribute(null=True)
        created_at = UTCDateTimeAttribute(null=True)
        state = UnicodeAttribute(null=True)
        tries = NumberAttribute(default=0)
        claim_until = UTCDateTimeAttribute(null=True)
        message_sid = UnicodeAttribute(null=True)
        error_code = NumberAttribute(null=True)
        detail = UnicodeAttribute(null=True)
        expires_ttl = TTLAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update

    class RecordingRecord(_Record):
        """A voicemail's recording still at Twilio (pk "RECORDING", sk "<check time>#<callback
        id>"): the sweep reads those whose time has come, deletes the recording once its work
        has ended and the IVR's retention passed, or files it again under a later time."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="RECORDING")
        sk = UnicodeAttribute(range_key=True)
        callback_id = UnicodeAttribute()
        recording_sid = UnicodeAttribute()
        ivr_name = UnicodeAttribute(null=True)

    class WaitingCallRecord(_Record):
        Meta = _meta(prefix + "waiting-calls", config)
        call_sid = UnicodeAttribute(hash_key=True)
        ivr_name = UnicodeAttribute()
        queue_name = UnicodeAttribute()
        caller = UnicodeAttribute(default="")
        joined_at = UTCDateTimeAttribute()
        status = UnicodeAttribute(default=m.WAITING)
        waiting_queue = UnicodeAttribute(null=True)
        agent_id = UnicodeAttribute(null=True)
        agent_call_sid = UnicodeAttribute(null=True)
        offer_id = UnicodeAttribute(null=True)
        phase = UnicodeAttribute(null=True)
        offered_at = UTCDateTimeAttribute(null=True)
        expires_ttl = TTLAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update
        by_queue = _time_ordered_index("waiting-by-queue", "waiting_queue", "joined_at")

    class CallbackRecord(_Record):
        Meta = _meta(prefix + "callbacks", config)
        callback_id = UnicodeAttribute(hash_key=True)
        number = UnicodeAttribute()
        ivr_name = UnicodeAttribute()
        queue_name = UnicodeAttribute()
        requested_at = UTCDateTimeAttribute()
        place_in_line = UTCDateTimeAttribute()
        priority = NumberAttribute()
        due_at = UTCDateTimeAttribute()
        expires_at = UTCDateTimeAttribute()
        status = UnicodeAttribute()
        attempts = NumberAttribute(default=0)
        attempt_id = UnicodeAttribute(null=True)
        phase = UnicodeAttribute(null=True)
        agent_id = UnicodeAttribute(null=True)
        agent_call_sid = UnicodeAttribute(null=True)
        customer_call_sid = UnicodeAttribute(null=True)
        history = ListAttribute(of=AttemptMap, default=list)
        ended_reason = UnicodeAttribute(null=True)
        ended_at = UTCDateTimeAttribute(null=True)
        list_key = UnicodeAttribute(default="CB")
        pending_queue = UnicodeAttribute(null=True)
        sweep_status = UnicodeAttribute(null=True)
        sweep_at = UTCDateTimeAttribute(null=True)
        # A callback for a time the caller chose: its slot (callback.domain.slots).
        window_start = UTCDateTimeAttribute(null=True)
        window_end = UTCDateTimeAttribute(null=True)
        # Who and what about, when a CRM asked for it through the API.
        name = UnicodeAttribute(null=True)
        reason = UnicodeAttribute(null=True)
        # A voicemail (callback.domain.voicemail): its recording at Twilio, and its words.
        kind = UnicodeAttribute(null=True)
        recording_sid = UnicodeAttribute(null=True)
        recording_url = UnicodeAttribute(null=True)
        recording_seconds = NumberAttribute(null=True)
        recording_status = UnicodeAttribute(null=True)
        transcription = UnicodeAttribute(null=True)
        # The current attempt's detection, its verdict, the sweep's reads of a lost one.
        detection = UnicodeAttribute(null=True)
        answered_by = UnicodeAttribute(null=True)
        verdict_reads = NumberAttribute(null=True)
        # Set when the callback ends: the record (number, history) goes after the retention.
        expires_ttl = TTLAttribute(null=True)
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update
        by_pending = _time_ordered_index("pending-by-queue", "pending_queue", "place_in_line")
        by_sweep = _time_ordered_index("sweep-by-status", "sweep_status", "sweep_at")
        by_status = _time_ordered_index("by-status", "status", "requested_at")
        by_requested = _time_ordered_index("by-requested", "list_key", "requested_at")
        by_number = _number_index()

    class EntryRecord(_Record):
        """A keyed-in number awaiting the caller's confirmation, by CallSid: kept out of URLs
        (and so out of every access log) and forgotten within minutes."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="ENTRY")
        sk = UnicodeAttribute(range_key=True)
        entry_id = UnicodeAttribute()
        number = UnicodeAttribute()
        expires_ttl = TTLAttribute()

    class IdempotencyRecord(_Record):
        """An API request's Idempotency-Key (pk "IDEM", sk "<hash of the caller's token>#<key>"):
        its body's fingerprint, running or done, then the answer it gave; the request's number,
        for erasure."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        fingerprint = UnicodeAttribute()
        state = UnicodeAttribute()
        owner = UnicodeAttribute()
        started_at = UTCDateTimeAttribute()
        resource_id = UnicodeAttribute(null=True)
        number = UnicodeAttribute(null=True)
        status = NumberAttribute(null=True)
        body = UnicodeAttribute(null=True)
        # The app compares expires_at itself: DynamoDB's TTL deletion can lag by a day.
        expires_at = UTCDateTimeAttribute()
        expires_ttl = TTLAttribute()
        last_write = UnicodeAttribute(null=True)  # see StorageBase._update

    class SessionRecord(_Record):
        """Admin sessions (pk "SESSION", sk the SHA-256 of the session id), removed by their
        TTL once idle; the app checks the times itself, as TTL deletion can lag by a day."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True, default="SESSION")
        sk = UnicodeAttribute(range_key=True)
        username = UnicodeAttribute()
        password_tag = UnicodeAttribute()
        # The role at sign-in, for the record: each request reads the user's role afresh.
        role = UnicodeAttribute(null=True)
        created_at = UTCDateTimeAttribute()
        last_seen = UTCDateTimeAttribute()
        expires_ttl = TTLAttribute()

    class DeparturesRecord(_Record):
        """How many pieces of work agents took from a queue's line in one bucket: counted by
        atomic ADDs, read by one Query of a few items."""
        Meta = _meta(config_table, config)
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        bucket_start = UTCDateTimeAttribute()
        departures = NumberAttribute(default=0)
        expires_ttl = TTLAttribute()

    # One queue's counters for one UTC hour: a number attribute per counted transition and
    # per time-to-connected histogram bucket, each changed only by ADD.
    StatsRecord = type("StatsRecord", (_Record,), {
        "Meta": _meta(config_table, config),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "ivr_name": UnicodeAttribute(null=True),
        "expires_ttl": TTLAttribute(null=True),
        **{name: NumberAttribute(null=True) for name in stats.COUNTERS},
    })

    return SimpleNamespace(Ivr=IvrRecord, AgentRec=AgentRecord, Guard=GuardRecord, Leg=LegRecord,
                           Text=TextRecord, Recording=RecordingRecord, Waiting=WaitingCallRecord,
                           CallbackRec=CallbackRecord, Entry=EntryRecord, Session=SessionRecord,
                           DeparturesRec=DeparturesRecord, Stats=StatsRecord, Idem=IdempotencyRecord)
