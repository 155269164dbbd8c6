"""DynamoDB storage through PynamoDB: the only package that knows tables exist.

One module per aggregate, each a part of `Storage`: `directory` (IVRs, and the cached
routing directory), `agents`, `line` (holding callers and their offers, departures,
dispatch marks, keyed-in numbers), `callbacks` (callbacks, attempts, pending-number
slots), `idempotency` (the API's Idempotency-Keys), `legs` (the call ledger: the numbers
the app holds), `texts` (texts to customers and opt-outs), `voicemail` (callers leaving to
record, recordings to delete), `counters` (the wallboard's hourly counters), `signin`
(login throttles, portal sessions), `users` (the portal's named users), `audit` (the audit trail, only ever added to), `worklog`
(each agent's work of the day), `rate_limits` (the public page's counters) and `api_tokens`
(the API's tokens, by keyed hash); `tables` defines the tables and models, `client` the one
DynamoDB client and the safe ways to write. Every state change is a conditional write;
failed conditions become `Conflict`. Beside them, `parameter_store` reads the secrets from
SSM Parameter Store at start-up, on the same botocore session.
"""
from callback.storage.agents import AgentStorage, PhoneTaken
from callback.storage.alerts import AlertStorage
from callback.storage.api_tokens import ApiTokenStorage, TokenNameTaken, build_token_model
from callback.storage.audit import AuditStorage, build_audit_model
from callback.storage.callbacks import MAX_GUARD_TRIES, CallbackStorage, CreateResult
from callback.storage.client import (
    CONDITION_FAILED,
    CONFLICT_ATTEMPTS,
    Conflict,
    NotFound,
    StorageBase,
    StorageError,
    _client_limits,
)
from callback.storage.counters import STATS_LIFETIME, CounterStorage
from callback.storage.directory import IvrStorage
from callback.storage.idempotency import IdempotencyStorage, KeyClaim
from callback.storage.legs import LegStorage
from callback.storage.line import DEPARTURES_LIFETIME, ENTRY_LIFETIME, WAITING_CALL_LIFETIME, LineStorage
from callback.storage.rate_limits import RateLimitStorage
from callback.storage.signin import SigninStorage
from callback.storage.tables import build_models
from callback.storage.texts import TextStorage
from callback.storage.users import LastAdmin, UnknownAgent, UserStorage, UserTaken, user_model
from callback.storage.voicemail import VoicemailStorage
from callback.storage.worklog import WorkLogStorage, build_work_model

__all__ = [
    "CONDITION_FAILED", "CONFLICT_ATTEMPTS", "DEPARTURES_LIFETIME", "ENTRY_LIFETIME", "MAX_GUARD_TRIES",
    "STATS_LIFETIME", "WAITING_CALL_LIFETIME", "Conflict", "CreateResult", "KeyClaim", "LastAdmin",
    "NotFound", "PhoneTaken", "Storage", "StorageError", "TokenNameTaken", "UnknownAgent", "UserTaken",
    "_client_limits",
]


class Storage(IvrStorage, AgentStorage, LineStorage, CallbackStorage, LegStorage, CounterStorage,
              SigninStorage, AlertStorage, TextStorage, IdempotencyStorage, VoicemailStorage,
              RateLimitStorage, ApiTokenStorage, WorkLogStorage, AuditStorage, UserStorage,
              StorageBase):
    """Records in DynamoDB, read and changed only through keyed reads, index queries and
    conditional writes; each aggregate's methods live in its module."""

    def __init__(self, config):
        super().__init__(config)
        models = build_models(config)
        (self.Ivr, self.AgentRec, self.Guard, self.Leg, self.Waiting, self.CallbackRec, self.Entry,
 self.Session, self.DeparturesRec, self.Stats, self.Text, self.Idem, self.Recording) = (
            models.Ivr, models.AgentRec, models.Guard, models.Leg, models.Waiting, models.CallbackRec,
            models.Entry, models.Session, models.DeparturesRec, models.Stats, models.Text, models.Idem,
            models.Recording)
        self.ApiTokenRec = build_token_model(config)
        self.Work = build_work_model(config)
        self.Audit = build_audit_model(config)
        self.UserRec = user_model(config)

    @property
    def models(self):
        """Every model class, one per table shape (config shares one table)."""
        return (self.Ivr, self.Waiting, self.CallbackRec, self.Audit)

    def create_tables(self):
        """Create the tables that do not exist yet (idempotent); return their names."""
        created = []
        for model in self.models:
            if not model.exists():
                model.create_table(wait=True)
                created.append(model.Meta.table_name)
        self._enable_ttl()
        return created

    def _enable_ttl(self):
        client = self.Ivr._get_connection().connection.client
        for model in self.models:
            name = model.Meta.table_name
            current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                continue
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_ttl"},
            )

    def table_names(self):
        """The names of the tables this storage uses."""
        return [model.Meta.table_name for model in self.models]
