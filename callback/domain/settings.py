"""Per-IVR callback settings: defaults, meaning and validation, shared by form and API."""
import re
from dataclasses import dataclass, field, fields

from callback.domain import public_page as pp
from callback.domain import voicemail as vm
from callback.domain.customer_clock import (
    DEFAULT_END,
    DEFAULT_START,
    check_window,
    customer_clock,
    parse_clock_time,
)
from callback.domain.detection import DEFAULT_MODE, MODES
from callback.domain.dialing import DEFAULT_REGIONS, NANP_REGION_NAMES, DialRules, parse_regions
from callback.domain.hours import OpenHours
from callback.domain.texts import DEFAULT_CANCEL_WORD, SMS_TEXT_FIELDS
from callback.domain.voices import (
    DEFAULT_LANGUAGE,
    DEFAULT_VOICE,
    LANGUAGES,
    VOICES,
    documented,
    nearest_pair,
    voice_groups,
)

DEFAULT_SPEECH = (DEFAULT_VOICE, DEFAULT_LANGUAGE)
MAX_ANNOUNCE_AS = 64
# Letters of any alphabet, digits, spaces and the punctuation company names use.
_ANNOUNCE_AS = re.compile(r"[^\W_][\w &'.,()!-]*")


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
    # Callbacks a queue takes per half-hour slot a caller may choose (callback.domain.slots);
    # 0: callers are not offered a choice of time.
    slot_capacity: int = 0
    offer_caller_id: bool = False
    # Blank: the IVR's own name.
    announce_as: str = ""
    voice: str = DEFAULT_VOICE
    language: str = DEFAULT_LANGUAGE
    # Which numbers this IVR calls back (see callback.domain.dialing): +1 regions, and
    # whether toll-free and 5XX personal numbers are called.
    call_regions: tuple = DEFAULT_REGIONS
    call_toll_free: bool = True
    call_personal_numbers: bool = False
    # When the IVR takes calls, in its time zone (callback.domain.hours); edited on a page
    # and an API resource of their own, so not among the fields validate_settings reads.
    hours: OpenHours = field(default_factory=OpenHours)
    # The customer's calling window, in their local time (see callback.domain.customer_clock).
    customer_hours_start: str = DEFAULT_START
    customer_hours_end: str = DEFAULT_END
    # Texts to customers (callback.domain.texts), all off by default.
    sms_enabled: bool = False
    sms_service_sid: str = ""
    sms_cancel_word: str = DEFAULT_CANCEL_WORD
    sms_about_to_call: bool = False
    sms_not_reached: bool = False
    # Answering-machine detection on the customer's leg (callback.domain.detection).
    machine_detection: str = DEFAULT_MODE
    # Voicemail instead of holding (callback.domain.voicemail), off by default.
    voicemail_enabled: bool = False
    voicemail_max_seconds: int = vm.DEFAULT_MAX_SECONDS
    voicemail_transcribe: bool = False
    voicemail_retention_days: int = vm.DEFAULT_RETENTION_DAYS
    # The public callback page (callback.domain.public_page), off by default.
    public_page_enabled: bool = False
    public_codes_per_hour: int = pp.DEFAULT_CODES_PER_HOUR

    def customer_clock(self, number):
        """The calling window of the customer at `number`, in their local time (the IVR's zone
        stands in for a number that does not tell its own)."""
        return customer_clock(number, time_zone=self.hours.zone, start=self.customer_hours_start,
                              end=self.customer_hours_end)

    @property
    def dial_rules(self):
        """The rules a number must pass to be stored and dialed for this IVR."""
        return DialRules(self.call_regions, self.call_toll_free, self.call_personal_numbers)

    @property
    def speech(self):
        """(voice, language) for every <Say> on this IVR's calls: the pair set, or, when
        Twilio's voice table no longer lists it, the nearest one it does (never a failed <Say>)."""
        return nearest_pair(self.voice, self.language)

    def announced_name(self, ivr_name):
        """The name a customer hears when called back."""
        return self.announce_as or ivr_name

    def as_dict(self):
        """Plain dict, as the API shows it (the open hours apart: see hours_input.hours_json)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hours"}
        return {**values, "call_regions": list(self.call_regions)}

    def priority_for(self, queue_priority):
        """The priority a callback from a queue of that priority gets."""
        return queue_priority if self.priority is None else self.priority


# name: (label, lowest, highest, help text). Labels are the names admins know from the
# original settings (Expiration Time, Max Retries, Priority, Retry Time), all in one style:
# Title Case, no "Callback -" prefix (the page is already about callbacks), unit in brackets.
INTEGER_FIELDS = {
    "offer_after_seconds": ("Offer After (seconds on hold)", 0, 3600,
                            "How long a caller holds before hearing the callback offer."),
    "expiration_minutes": ("Expiration Time (minutes)", 1, 10080,
                           "The total time the system keeps trying to reach the caller, "
                           "counted from the request; after it the callback expires."),
    "max_retries": ("Max Retries", 1, 20,
                    "How many failed attempts (no answer, busy, voicemail) before the "
                    "callback expires."),
    "priority": ("Priority", -1000, 1000,
                 "Set it to the queue's priority so callers keep their place; lower means "
                 "callbacks only when no calls are waiting. Leave blank to use the queue's."),
    "retry_minutes": ("Retry Time (minutes)", 1, 1440,
                      "Minutes between attempts after the customer did not answer."),
    "transfer_timeout_seconds": ("Transfer Timeout (seconds)", 5, 120,
                                 "How long the customer's phone rings before the attempt "
                                 "counts as failed."),
    "entry_attempts": ("Number Entry Attempts", 1, 5,
                       "Tries a caller gets to key in a valid number before going back to "
                       "the queue."),
    "slot_capacity": ("Callbacks Per Half Hour", 0, 100,
                      "Callers may also press 2 at the offer to choose a half-hour for their "
                      "callback (today and the next open day, inside the open hours and their own "
                      "calling hours); each queue takes at most this many callbacks per half-hour. "
                      "0: no choice of time."),
}
BOOLEAN_FIELDS = {
    "callback_enabled": ("Callback Enabled", "Offer callbacks to callers holding in this IVR's queues."),
    "offer_caller_id": ("Offer Caller's Own Number",
                        "When the caller's number is a valid ten-digit North American number, "
                        "offer it first (\"Press 1 to be called back at the number ending 1 2 3 4, "
                        "or 2 to enter another\"). Off: every caller keys in a number."),
    "call_toll_free": ("Call Toll-Free Numbers",
                       "Call back numbers such as 800 or 888 numbers. They cost the same as any "
                       "call, but are rarely a person's own line."),
    "call_personal_numbers": ("Call Personal Numbers (5XX)",
                              "Call back 500, 533 and other 5XX personal-communication numbers "
                              "(follow-me and machine-to-machine services). Off by default."),
    **{  # Texts (issue #33): one block, with SMS_TEXT_FIELDS below.
        "sms_enabled": ("Text Confirmations",
                        "After a callback is stored, text the customer once: the company name, the "
                        "number we will call, the expected time, the reply that cancels and \"Reply STOP "
                        "to stop texts\". Needs a Messaging Service holding this IVR's numbers."),
        "sms_about_to_call": ("Text When Agent Calls", "Also text \"an agent is about to call you back\" "
                              "when an agent accepts the callback (texts must be on)."),
        "sms_not_reached": ("Text When Not Reached", "Also text \"we could not reach you\" when the callback "
                            "expires unanswered (texts must be on)."),
    },
}
# The +1 plan's regions this IVR may call back (premium-rate numbers never are).
REGIONS_FIELD = ("Regions Called Back",
                 "Only numbers of the ticked regions are accepted from callers and dialed. "
                 "The Caribbean countries share the +1 plan but are billed as international "
                 "calls, the classic toll-fraud destinations: tick one only if callers there "
                 "are expected.")
# name: (label, longest, help text)
TEXT_FIELDS = {
    "announce_as": ("Announce As", MAX_ANNOUNCE_AS,
                    "The company name customers hear when called back (\"this is the callback "
                    "you requested from Example Company\"). Leave blank to use the IVR's name."),
    "customer_hours_start": ("Customer's Hours From", 5,
                             "Callbacks are dialed only between these two times in the customer's "
                             "own time zone (from their number; the IVR's, on its Hours page, for "
                             "toll-free and 5XX numbers); otherwise they wait, keeping their "
                             "place in line. 24-hour clock, such as 08:00."),
    "customer_hours_end": ("Customer's Hours Until", 5,
                           "The end of the customer's calling window, such as 20:00. A callback "
                           "requested for a customer who never asked (a CRM's list) may need "
                           "stricter hours: see the README."),
}
# How each text field is read (a ValueError says what is wrong).
_TEXT_PARSERS = {
    "announce_as": lambda value: parse_announce_as(value),
    "customer_hours_start": lambda value: f"{parse_clock_time(value):%H:%M}",
    "customer_hours_end": lambda value: f"{parse_clock_time(value):%H:%M}",
}
TEXT_FIELDS.update({name: spec[:3] for name, spec in SMS_TEXT_FIELDS.items()})
SMS_FIELDS = ("sms_enabled", "sms_about_to_call", "sms_not_reached", *SMS_TEXT_FIELDS)
INTEGER_FIELDS.update(**vm.INTEGER_FIELDS, **pp.INTEGER_FIELDS)
BOOLEAN_FIELDS.update(**vm.BOOLEAN_FIELDS, **pp.BOOLEAN_FIELDS)


class GroupedChoices(tuple):
    """Choices a form shows in groups: `groups` is ((group label, ((value, text), ...)), ...)."""

    def __new__(cls, values, groups):
        choices = super().__new__(cls, values)
        choices.groups = groups
        return choices


# name: (label, choices, help text)
CHOICE_FIELDS = {
    "voice": ("Voice", GroupedChoices(VOICES, voice_groups()),
              "The text-to-speech voice of every prompt on this IVR's calls, including what "
              "agents and called-back customers hear. Only the voices of Twilio's voice table "
              "are offered; Generative voices are a Twilio beta and cost more."),
    "language": ("Language", LANGUAGES,
                 "The language the voice speaks: each Amazon Polly voice speaks exactly one; "
                 "man and woman speak several."),
    "machine_detection": ("Answering Machine Detection", MODES,
                          "How the app tells a person from voicemail on the customer's call. async "
                          "(recommended): the customer hears a greeting at once and joins the agent; "
                          "voicemail found before the join is hung up and retried, found later the "
                          "agent is told and may end it with star. sync: the customer hears silence "
                          "for a few seconds while Twilio listens. off: every answer is taken as a "
                          "person."),
}
FIELD_NAMES = tuple(BOOLEAN_FIELDS) + tuple(INTEGER_FIELDS) + tuple(TEXT_FIELDS) + tuple(CHOICE_FIELDS) + (
    "call_regions",)
# Added after the first release: a client that does not send them keeps their value.
OPTIONAL_FIELDS = {"offer_caller_id", "call_toll_free", "call_personal_numbers", "call_regions",
                   *TEXT_FIELDS, *CHOICE_FIELDS, *SMS_FIELDS, *vm.FIELDS, *pp.FIELDS}
REGION_CHOICES = tuple(NANP_REGION_NAMES.items())


# Whole numbers in text: ASCII digits only (str.isdigit would take '²' or Arabic-Indic digits).
_WHOLE = re.compile(r"-?[0-9]+")
# More digits than this is beyond every bound we set, and not worth converting to find out.
_MAX_DIGITS = 12
NOT_TEXT = "(a JSON number, not a string)"


def parse_bool(value, *, json=False):
    """True/false from JSON (true/false only) or a form ('on', 'true', '1', 'yes'; empty is false)."""
    if isinstance(value, bool):
        return value
    if not json and isinstance(value, str):
        if value.strip().lower() in {"true", "on", "1", "yes", "y"}:
            return True
        if value.strip().lower() in {"false", "off", "0", "no", "n", ""}:
            return False
    raise ValueError("must be true or false")


def parse_int(value, low, high, *, json=False):
    """A whole number within [low, high]; ValueError says what is wrong.

    Form and API share these rules and their messages. Only the carrier differs: a form
    sends text, while JSON has numbers, so with `json` a string is refused, not guessed at.
    """
    out_of_range = f"must be between {low} and {high}"
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a whole number")
    if isinstance(value, str):
        if json:
            raise ValueError(f"must be a whole number {NOT_TEXT}")
        text = value.strip()
        if not _WHOLE.fullmatch(text):
            raise ValueError("must be a whole number")
        if len(text.lstrip("-")) > _MAX_DIGITS:
            raise ValueError(out_of_range)
        value = int(text)
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        value = int(value)
    elif not isinstance(value, int):
        raise ValueError("must be a whole number")
    if not low <= value <= high:
        raise ValueError(out_of_range)
    return value


def parse_announce_as(value):
    """A company name to speak, or '' for the IVR's own name."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = " ".join(value.split())
    if len(text) > MAX_ANNOUNCE_AS:
        raise ValueError(f"must be at most {MAX_ANNOUNCE_AS} characters")
    if text and not _ANNOUNCE_AS.fullmatch(text):
        raise ValueError("may hold letters, digits, spaces and & ' . , ( ) ! - only")
    return text


def validate_settings(raw, current=None, *, partial=False, checkbox_form=False, json=False):
    """Parse and check raw values; returns (settings, errors) and settings only if no error.

    `partial` keeps current values for absent fields (API PUT of a few fields);
    `checkbox_form` reads an absent checkbox as unchecked (HTML forms); `json` takes JSON's
    own types only: numbers as numbers, true/false, null. OPTIONAL_FIELDS are never
    required: absent, they keep their current value.
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
                values[name] = parse_bool(raw[name], json=json)
            except ValueError as exc:
                errors[name] = str(exc)
        elif checkbox_form:
            values[name] = False
        elif not partial and name not in OPTIONAL_FIELDS:
            errors[name] = "is required"
    for name, (_label, low, high, _help) in INTEGER_FIELDS.items():
        if name not in raw:
            if not partial and name != "priority" and name not in OPTIONAL_FIELDS:
                errors[name] = "is required"
            continue
        value = raw[name]
        blank = value is None if json else (value is None or (isinstance(value, str) and not value.strip()))
        if name == "priority" and blank:
            values[name] = None
            continue
        try:
            values[name] = parse_int(value, low, high, json=json)
        except ValueError as exc:
            errors[name] = str(exc)
    for name, parse in _TEXT_PARSERS.items():
        if name in raw:
            try:
                values[name] = parse(raw[name])
            except ValueError as exc:
                errors[name] = str(exc)
    if "customer_hours_start" not in errors and "customer_hours_end" not in errors:
        short = check_window(values["customer_hours_start"], values["customer_hours_end"])
        if short:
            errors["customer_hours_end"] = short
    for name, spec in SMS_TEXT_FIELDS.items():
        if name in raw:
            try:
                values[name] = spec[3](raw[name])
            except ValueError as exc:
                errors[name] = str(exc)
    if values["sms_enabled"] and not values["sms_service_sid"] and "sms_service_sid" not in errors:
        errors["sms_service_sid"] = "is needed to send texts"
    if "call_regions" in raw:
        try:
            values["call_regions"] = parse_regions(raw["call_regions"])
        except ValueError as exc:
            errors["call_regions"] = str(exc)
    for name, (_label, choices, _help) in CHOICE_FIELDS.items():
        if name not in raw:
            continue
        value = raw[name].strip() if isinstance(raw[name], str) else raw[name]
        if value in choices:
            values[name] = value
        else:
            # A short list is named; the voices and languages are too many to.
            errors[name] = (f"must be one of {', '.join(choices)}" if len(choices) <= 5
                            else f"must be one of the {name}s offered")
    if "voice" not in errors and "language" not in errors:
        problem = speech_problem(values["voice"], values["language"])
        if problem:
            errors["language"] = problem
    if errors:
        return None, errors
    return CallbackSettings(**{**values, "call_regions": tuple(values["call_regions"]),
                               "hours": current.hours}), {}


def speech_problem(voice, language):
    """Why Twilio may fail a <Say> with this voice and language, naming the nearest pair
    its voice table lists; None when it lists this one."""
    if documented(voice, language):
        return None
    near_voice, near_language = nearest_pair(voice, language)
    spoken = ", ".join(VOICES.get(voice, ())) or "no language in Twilio's voice table"
    return (f"{voice} speaks {spoken}, not {language}; the nearest pair Twilio lists is "
            f"{near_voice} with {near_language}")


def priority_warnings(settings, queues):
    """Queues whose callers would outrank this IVR's callbacks."""
    if settings.priority is None:
        return []
    return [q for q in queues if q.priority > settings.priority]


def speech_of(ivr):
    """The voice and language of an IVR's prompts (the default when the IVR is unknown)."""
    return ivr.settings.speech if ivr else DEFAULT_SPEECH
