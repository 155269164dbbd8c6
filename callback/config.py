"""Configuration: one object, read from the environment once."""
import os
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlencode


def _bool(value):
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    """Everything the app reads from its environment; tests pass overrides."""

    TWILIO_ACCOUNT_SID: str = "AC00000000000000000000000000000000"
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
    # The most one DynamoDB request may take, connecting and reading, with no retry.
    DYNAMODB_TIMEOUT_SECONDS: float = 2.0
    # Seconds an agent's phone rings before the attempt to reach them is abandoned.
    AGENT_RING_TIMEOUT_SECONDS: int = 20
    # Routing configuration (IVRs, queues, numbers) is cached per Lambda container for this
    # long, so the hold loop costs at most one DynamoDB read and usually none.
    CONFIG_CACHE_SECONDS: float = 30.0
    HOLD_MUSIC_URL: str = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
    VALIDATE_TWILIO_SIGNATURE: bool = True
    ADMIN_API_TOKEN: str = ""
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

    def webhook_shared_keys(self):
        """SharedKey id -> secret, from TWILIO_WEBHOOK_SHARED_KEYS."""
        pairs = (item.partition(":") for item in self.TWILIO_WEBHOOK_SHARED_KEYS.split(","))
        return {key.strip(): secret.strip() for key, _, secret in pairs if key.strip() and secret.strip()}

    def public_url(self, path, **query):
        """An absolute URL under PUBLIC_BASE_URL, as every URL handed to Twilio must be."""
        url = self.PUBLIC_BASE_URL.rstrip("/") + path
        query = {k: v for k, v in query.items() if v is not None}
        return f"{url}?{urlencode(query)}" if query else url
