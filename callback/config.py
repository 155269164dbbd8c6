"""Configuration: one object, read from the environment once."""
import os
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlencode


def _bool(value):
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


# The default TWILIO_ACCOUNT_SID: a placeholder no Twilio account has.
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32

# What a deployment on AWS Lambda (the runtime sets AWS_LAMBDA_FUNCTION_NAME) cannot work
# without. Local runs and tests pass their own values, so off Lambda nothing is required.
#   TWILIO_AUTH_TOKEN   checks every webhook's signature and signs every REST call
#                       (TWILIO_WEBHOOK_SHARED_KEYS check only the webhooks Twilio signs with
#                       HMAC-SHA256, and never stand in for the token on the REST API);
#   TWILIO_ACCOUNT_SID  the account every REST call is made for (the default is a placeholder);
#   SECRET_KEY          signs session cookies, CSRF tokens and page cursors: a random one per
#                       container would end an admin's session on the next container.
REQUIRED_ON_LAMBDA = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SECRET_KEY")
# Of those, the ones without which no voice webhook may act: without the token no signature
# can be checked, and without the token or the Account SID no call can be placed, so no
# agent could ever take a caller off hold or call them back.
WEBHOOK_SECRETS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
# Secrets whose absence turns one feature off, not the line: name -> what is off.
OPTIONAL_ON_LAMBDA = {"ADMIN_PASSWORD_HASH": "admin sign-in is disabled",
                      "ADMIN_API_TOKEN": "the bootstrap API token is off",
                      "API_TOKEN_SECRET": "API tokens made in the portal are refused"}


@dataclass(frozen=True)
class Config:
    """Everything the app reads from its environment; tests pass overrides."""

    TWILIO_ACCOUNT_SID: str = PLACEHOLDER_ACCOUNT_SID
    TWILIO_AUTH_TOKEN: str = ""
    # Webhook signing SharedKeys, "<key id>:<secret>" separated by commas (two during a
    # rotation); used when Twilio announces HMAC-SHA256 in X-Twilio-Webhooks-Signature-Settings.
    TWILIO_WEBHOOK_SHARED_KEYS: str = ""
    TWILIO_API_BASE_URL: str = "https://api.twilio.com"
    TWILIO_REST_TIMEOUT_SECONDS: float = 5.0
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    CALLBACK_TABLE_PREFIX: str = "callback-"
    AWS_REGION: str = "us-east-1"
    AWS_ENDPOINT_URL_DYNAMODB: str = ""
    # Parameter Store path (e.g. /callback/dev/) whose parameters fill in, by their last name
    # segment, the settings the environment leaves unset: read once per process at start-up.
    CALLBACK_SECRETS_SSM_PATH: str = ""
    AWS_ENDPOINT_URL_SSM: str = ""
    # The most one DynamoDB request may take, connecting and reading, with no retry.
    DYNAMODB_TIMEOUT_SECONDS: float = 2.0
    # Seconds an agent's phone rings before the attempt to reach them is abandoned.
    AGENT_RING_TIMEOUT_SECONDS: int = 20
    # Routing configuration (IVRs, queues, numbers) is cached per Lambda container for this
    # long, so the hold loop costs at most one DynamoDB read and usually none.
    CONFIG_CACHE_SECONDS: float = 30.0
    # The hold track. Twilio asks for the next wait document only when this one has played
    # out, so a track whose length the app does not know plays only where the next prompt
    # may wait for its end; elsewhere the app cuts the wait with its own 4-second clip
    # (callback/domain/hold.py). Empty: only the app's own clip.
    HOLD_MUSIC_URL: str = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
    # The track's length in seconds (0: not known). Known, whole plays of it fill the wait
    # before a due prompt too, when they end at most a few seconds after it.
    HOLD_MUSIC_SECONDS: float = 0.0
    VALIDATE_TWILIO_SIGNATURE: bool = True
    # The bootstrap admin token of the JSON API (tokens made in the portal need none of it).
    ADMIN_API_TOKEN: str = ""
    # The key of the HMAC-SHA256 that API tokens are stored under: a secret of its own, so
    # that a new SECRET_KEY (which ends every session) leaves every integration working.
    # Changing it invalidates every token made in the portal.
    API_TOKEN_SECRET: str = ""
    ADMIN_USERNAME: str = "admin"
    ADMIN_PASSWORD_HASH: str = ""
    SECRET_KEY: str = ""
    # An admin session unused this long is over (logout and a new password end it at once).
    ADMIN_SESSION_IDLE_MINUTES: int = 30
    SESSION_COOKIE_SECURE: bool = True
    # Local runs only: how much faster than real time the app's clock runs.
    LOCAL_CLOCK_SPEED: float = 1.0
    # Where dispatch runs after a webhook hands it over: "lambda", "thread" or "inline";
    # empty picks "lambda" on AWS Lambda (AWS_LAMBDA_FUNCTION_NAME set), else "thread".
    DISPATCH_RUNNER: str = ""
    # Set by the Lambda runtime: the function that asynchronous dispatches invoke.
    AWS_LAMBDA_FUNCTION_NAME: str = ""
    AWS_ENDPOINT_URL_LAMBDA: str = ""
    LOG_LEVEL: str = "INFO"
    # How long an ended callback (its number and attempts) is kept; DynamoDB's TTL deletes it
    # after that (within about two days), and reads treat it as gone from the moment it is due.
    RETENTION_DAYS: int = 90
    # How long an audit entry is kept (DynamoDB's TTL deletes it after that): a year and a
    # month, so "who changed this" is answered through a yearly review, long after the
    # callbacks it touched are gone. Entries hold numbers only masked, and never a secret.
    AUDIT_RETENTION_DAYS: int = 400
    # Where Twilio goes when this deployment cannot answer an IVR number's call (a TwiML Bin
    # or a function of its own, never this one): set on the numbers by `flask twilio-setup`.
    VOICE_FALLBACK_URL: str = ""
    # CloudWatch metric lines (callback.metrics) on stdout: "on", "off", or empty for on
    # in AWS Lambda only.
    METRICS: str = ""
    # The public callback page (callback/web/public.py): the Twilio Verify service that proves a
    # customer's number (empty: no page sends codes), Verify's base URL (the stand-in's in local
    # runs and tests), the deployment's limits per client address and per number (codes per
    # hour), and the challenge's proof-of-work bits (callback.domain.public_page).
    TWILIO_VERIFY_SERVICE_SID: str = ""
    TWILIO_VERIFY_BASE_URL: str = "https://verify.twilio.com"
    PUBLIC_CODES_PER_ADDRESS: int = 5
    PUBLIC_CODES_PER_NUMBER: int = 3
    PUBLIC_CHALLENGE_BITS: int = 16
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """Build the configuration from environment variables, then apply overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in environ:
                continue
            raw = environ[f.name]
            if f.type in (bool, "bool"):
                values[f.name] = _bool(raw)
            elif f.type in (int, "int"):
                values[f.name] = int(raw)
            elif f.type in (float, "float"):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        config = cls(**values)
        return config.with_overrides(overrides)

    def with_overrides(self, overrides):
        """A copy with some fields replaced (unknown keys land in `extra`)."""
        known = {f.name for f in fields(self)}
        direct = {k: v for k, v in (overrides or {}).items() if k in known}
        extra = {k: v for k, v in (overrides or {}).items() if k not in known}
        config = replace(self, **direct)
        if extra:
            config = replace(config, extra={**config.extra, **extra})
        return config

    def missing_secrets(self):
        """Names of the required secrets this configuration lacks (never a value): on AWS
        Lambda any of REQUIRED_ON_LAMBDA unset, or the placeholder Account SID; elsewhere none."""
        if not self.AWS_LAMBDA_FUNCTION_NAME:
            return []
        return [name for name in REQUIRED_ON_LAMBDA if self._lacks(name)]

    def disabled_features(self):
        """One line per optional secret missing on AWS Lambda: what is off and why."""
        if not self.AWS_LAMBDA_FUNCTION_NAME:
            return []
        return [f"{effect}: {name} is not set" for name, effect in OPTIONAL_ON_LAMBDA.items()
                if self._lacks(name)]

    def _lacks(self, name):
        value = str(getattr(self, name) or "").strip()
        return not value or (name == "TWILIO_ACCOUNT_SID" and value == PLACEHOLDER_ACCOUNT_SID)

    def webhook_shared_keys(self):
        """SharedKey id -> secret, from TWILIO_WEBHOOK_SHARED_KEYS."""
        pairs = (item.partition(":") for item in self.TWILIO_WEBHOOK_SHARED_KEYS.split(","))
        return {key.strip(): secret.strip() for key, _, secret in pairs if key.strip() and secret.strip()}

    def public_url(self, path, **query):
        """An absolute URL under PUBLIC_BASE_URL, as every URL handed to Twilio must be."""
        url = self.PUBLIC_BASE_URL.rstrip("/") + path
        query = {k: v for k, v in query.items() if v is not None}
        return f"{url}?{urlencode(query)}" if query else url


def missing_secrets_message(missing):
    """The one start-up error for missing required secrets: their names, what fails meanwhile
    and where to look."""
    effects = []
    if set(missing) & set(WEBHOOK_SECRETS):
        effects.append("webhooks answer the safe TwiML")
    if "SECRET_KEY" in missing:
        effects.append("admin sign-in is refused")
    return (f"missing secrets: {', '.join(missing)} — {' and '.join(effects)} until they are set "
            "(check remote_env / CALLBACK_SECRETS_SSM_PATH, and the role's s3:GetObject, "
            "ssm:GetParametersByPath and kms:Decrypt)")
