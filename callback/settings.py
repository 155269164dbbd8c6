"""Per-IVR callback settings: defaults, meaning and validation, shared by form and API."""
import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CallbackSettings:
    """How an IVR offers, keeps and retries callbacks."""

    callback_enabled: bool = True
    offer_after_seconds: int = 60
    expiration_minutes: int = 120
    max_retries: int = 3
    # None: each callback takes the priority of the queue it was requested from.
    priority: int | None = None
    retry_minutes: int = 5
    transfer_timeout_seconds: int = 30
    entry_attempts: int = 3

    def as_dict(self):
        """Plain dict, as the API shows it."""
        return asdict(self)

    def priority_for(self, queue_priority):
        """The priority a callback from a queue of that priority gets."""
        return queue_priority if self.priority is None else self.priority


# name: (label, lowest, highest, help text)
INTEGER_FIELDS = {
    "offer_after_seconds": ("Offer after (seconds of waiting)", 0, 3600,
                            "How long a caller holds before hearing the callback offer."),
    "expiration_minutes": ("Callback - Expiration Time (minutes)", 1, 10080,
                           "The total time the system keeps trying to reach the caller, "
                           "counted from the request; after it the callback expires."),
    "max_retries": ("Callback - Max Retries", 1, 20,
                    "How many failed attempts (no answer, busy, voicemail) before the "
                    "callback expires."),
    "priority": ("Callback - Priority", -1000, 1000,
                 "Set it to the queue's priority so callers keep their place; lower means "
                 "callbacks only when no calls are waiting. Leave blank to use the queue's."),
    "retry_minutes": ("Callback - Retry Time (minutes)", 1, 1440,
                      "Minutes between attempts after the customer did not answer."),
    "transfer_timeout_seconds": ("Transfer Timeout (seconds)", 5, 120,
                                 "How long the customer's phone rings before the attempt "
                                 "counts as failed."),
    "entry_attempts": ("Number-entry attempts", 1, 5,
                       "Tries a caller gets to key in a valid number before going back to "
                       "the queue."),
}
BOOLEAN_FIELDS = {
    "callback_enabled": ("Callback enabled", "Offer callbacks to callers holding in this IVR's queues."),
}
FIELD_NAMES = tuple(BOOLEAN_FIELDS) + tuple(INTEGER_FIELDS)


def parse_bool(value):
    """True/false from JSON or a form ('on', 'true', '1', 'yes'; empty is false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "on", "1", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "off", "0", "no", "n", ""}:
        return False
    raise ValueError("must be true or false")


_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")


def parse_int(value, low, high):
    """A whole number within [low, high] from JSON or a form; ValueError says what is wrong."""
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: int() also reads other scripts' digits ("١٢" is 12).
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValueError("must be a whole number")
        value = int(text)
    if not isinstance(value, (int, float)):
        raise ValueError("must be a whole number")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def validate_settings(raw, current=None, *, partial=False, checkbox_form=False):
    """Parse and check raw values; returns (settings, errors) and settings only if no error.

    `partial` keeps current values for absent fields (API PUT of a few fields);
    `checkbox_form` reads an absent callback_enabled as unchecked (HTML forms).
    """
    current = current or CallbackSettings()
    values = current.as_dict()
    errors = {}
    if not isinstance(raw, dict):
        return None, {"_": "settings must be an object"}
    unknown = sorted(set(raw) - set(FIELD_NAMES))
    for name in unknown:
        errors[name] = "unknown setting"
    for name in BOOLEAN_FIELDS:
        if name in raw:
            try:
                values[name] = parse_bool(raw[name])
            except ValueError as exc:
                errors[name] = str(exc)
        elif checkbox_form:
            values[name] = False
        elif not partial:
            errors[name] = "is required"
    for name, (_label, low, high, _help) in INTEGER_FIELDS.items():
        if name not in raw:
            if not partial and name != "priority":
                errors[name] = "is required"
            continue
        value = raw[name]
        if name == "priority" and (value is None or (isinstance(value, str) and not value.strip())):
            values[name] = None
            continue
        try:
            values[name] = parse_int(value, low, high)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        return None, errors
    return CallbackSettings(**values), {}


def priority_warnings(settings, queues):
    """Queues whose callers would outrank this IVR's callbacks."""
    if settings.priority is None:
        return []
    return [q for q in queues if q.priority > settings.priority]
