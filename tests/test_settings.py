"""Callback settings validation, shared by the form and the API."""
import pytest

from callback.domain.records import Queue
from callback.domain.settings import CallbackSettings, priority_warnings, validate_settings

VALID = {"callback_enabled": True, "offer_after_seconds": 60, "expiration_minutes": 120,
         "max_retries": 3, "priority": 10, "retry_minutes": 5, "transfer_timeout_seconds": 30,
         "entry_attempts": 3, "slot_capacity": 0}


def test_defaults_match_the_product():
    s = CallbackSettings()
    assert (s.callback_enabled, s.offer_after_seconds, s.expiration_minutes, s.max_retries,
            s.priority, s.retry_minutes, s.transfer_timeout_seconds, s.entry_attempts) == (
        True, 60, 120, 3, None, 5, 30, 3)
    assert s.priority_for(7) == 7


def test_valid_values_parse_from_json_and_form_strings():
    settings, errors = validate_settings(VALID)
    assert not errors and settings.priority == 10
    form = {k: str(v) for k, v in VALID.items()}
    form["callback_enabled"] = "on"
    settings, errors = validate_settings(form, checkbox_form=True)
    assert not errors and settings.max_retries == 3


@pytest.mark.parametrize("field, value", [
    ("max_retries", 0), ("max_retries", "three"), ("max_retries", True), ("max_retries", 2.5),
    ("expiration_minutes", -1), ("retry_minutes", "99999999999999"), ("transfer_timeout_seconds", 1),
    ("offer_after_seconds", None), ("callback_enabled", "maybe"), ("entry_attempts", 9),
])
def test_invalid_values_save_nothing_and_name_the_field(field, value):
    settings, errors = validate_settings({**VALID, field: value})
    assert settings is None and field in errors


def test_unknown_fields_are_refused():
    settings, errors = validate_settings({**VALID, "colour": "blue"})
    assert settings is None and errors == {"colour": "unknown setting"}


def test_partial_update_keeps_the_rest():
    current = CallbackSettings(max_retries=5)
    settings, errors = validate_settings({"retry_minutes": 10}, current, partial=True)
    assert not errors and settings.retry_minutes == 10 and settings.max_retries == 5


def test_blank_priority_means_the_queues_own():
    settings, _ = validate_settings({**VALID, "priority": ""})
    assert settings.priority is None


def test_priority_warning_names_queues_that_outrank_callbacks():
    queues = [Queue("Sales", "Main", 10), Queue("Support", "Main", 3)]
    warned = priority_warnings(CallbackSettings(priority=5), queues)
    assert [q.name for q in warned] == ["Sales"]
    assert priority_warnings(CallbackSettings(), queues) == []


def test_new_settings_default_to_todays_behaviour():
    s = CallbackSettings()
    assert (s.offer_caller_id, s.announce_as, s.speech) == (False, "", ("Polly.Joanna", "en-US"))
    assert s.announced_name("Main Line") == "Main Line"
    assert CallbackSettings(announce_as="Example Company").announced_name("Main Line") == "Example Company"


@pytest.mark.parametrize("raw, expected", [
    ({"announce_as": "  Example   Company "}, {"announce_as": "Example Company"}),
    ({"announce_as": "Müller & Söhne (Köln)"}, {"announce_as": "Müller & Söhne (Köln)"}),
    ({"announce_as": ""}, {"announce_as": ""}),
    ({"announce_as": None}, {"announce_as": ""}),
    ({"offer_caller_id": "on"}, {"offer_caller_id": True}),
    ({"voice": "Polly.Lupe", "language": "es-US"}, {"voice": "Polly.Lupe", "language": "es-US"}),
    ({"voice": "woman", "language": "fr-FR"}, {"voice": "woman", "language": "fr-FR"}),
    ({"voice": "Polly.Matthew"}, {"voice": "Polly.Matthew", "language": "en-US"}),
])
def test_caller_voice_settings_parse(raw, expected):
    settings, errors = validate_settings(raw, CallbackSettings(), partial=True)
    assert not errors
    assert {k: getattr(settings, k) for k in expected} == expected


@pytest.mark.parametrize("raw, field, message", [
    ({"announce_as": "x" * 65}, "announce_as", "at most 64 characters"),
    ({"announce_as": "<Say>hi</Say>"}, "announce_as", "may hold letters"),
    ({"announce_as": "-dash first"}, "announce_as", "may hold letters"),
    ({"announce_as": "Line\nbreak\x00"}, "announce_as", "may hold letters"),
    ({"announce_as": 12}, "announce_as", "must be text"),
    ({"voice": "Polly.Joana"}, "voice", "must be one of the voices offered"),
    ({"voice": ["man"]}, "voice", "must be one of the voices offered"),
    ({"language": "klingon"}, "language", "must be one of the languages offered"),
    # A Polly voice speaks exactly one language: a wrong pair would fail every <Say>.
    ({"voice": "Polly.Lupe"}, "language", "Polly.Lupe speaks es-US"),
    ({"language": "fr-FR"}, "language", "Polly.Joanna speaks en-US"),
])
def test_caller_voice_settings_refuse_what_twilio_could_not_say(raw, field, message):
    settings, errors = validate_settings(raw, CallbackSettings(), partial=True)
    assert settings is None and message in errors[field]


@pytest.mark.parametrize("field, value, message", [
    ("max_retries", "9" * 20, "must be between 1 and 20"), ("max_retries", "-" + "9" * 40, "must be between 1 and 20"),
    ("max_retries", "٣", "must be a whole number"), ("max_retries", "²", "must be a whole number"),
    ("max_retries", "+3", "must be a whole number"), ("max_retries", " 4 ", None)])
def test_form_text_follows_the_same_rules_as_json_numbers(field, value, message):
    settings, errors = validate_settings({field: value}, partial=True, checkbox_form=True)
    assert errors.get(field) == message
    if message is None:
        assert settings.max_retries == 4


@pytest.mark.parametrize("value", ["4", "", "true", [4], {"n": 4}])
def test_json_refuses_text_for_numbers(value):
    settings, errors = validate_settings({"max_retries": value}, partial=True, json=True)
    assert settings is None and errors["max_retries"].startswith("must be a whole number")


def test_json_takes_whole_numbers_booleans_and_null():
    settings, errors = validate_settings({"max_retries": 4.0, "callback_enabled": False, "priority": None},
                                         CallbackSettings(priority=7), partial=True, json=True)
    assert not errors and (settings.max_retries, settings.callback_enabled, settings.priority) == (4, False, None)
    _, errors = validate_settings({"callback_enabled": "on"}, partial=True, json=True)
    assert errors == {"callback_enabled": "must be true or false"}


def test_the_customers_hours_default_to_courtesy_in_the_ivrs_zone():
    s = CallbackSettings()
    assert (s.hours.zone, s.customer_hours_start, s.customer_hours_end) == (
        "America/New_York", "08:00", "20:00")


@pytest.mark.parametrize("raw, expected", [
    ({"customer_hours_start": "09:00", "customer_hours_end": "21:00"},
     {"customer_hours_start": "09:00", "customer_hours_end": "21:00"}),
    ({"customer_hours_start": " 10:00"}, {"customer_hours_start": "10:00", "customer_hours_end": "20:00"}),
])
def test_the_customers_hours_parse(raw, expected):
    settings, errors = validate_settings(raw, CallbackSettings(), partial=True, json=True)
    assert not errors
    assert {k: getattr(settings, k) for k in expected} == expected


@pytest.mark.parametrize("raw, field, message", [
    ({"customer_hours_start": "8am"}, "customer_hours_start", "24-hour clock"),
    ({"customer_hours_end": "24:00"}, "customer_hours_end", "24-hour clock"),
    ({"customer_hours_start": "19:00"}, "customer_hours_end", "at least 2 hours after the start"),
    ({"customer_hours_start": "20:00", "customer_hours_end": "08:00"}, "customer_hours_end",
     "at least 2 hours"),
])
def test_the_customers_hours_refused(raw, field, message):
    settings, errors = validate_settings(raw, CallbackSettings(), partial=True, json=True)
    assert settings is None and message in errors[field]
def test_machine_detection_is_asynchronous_unless_set_otherwise():
    assert CallbackSettings().machine_detection == "async"
    for mode in ("async", "sync", "off"):
        settings, errors = validate_settings({**VALID, "machine_detection": mode})
        assert not errors and settings.machine_detection == mode
    settings, errors = validate_settings({"machine_detection": " sync "}, CallbackSettings(), partial=True)
    assert not errors and settings.machine_detection == "sync"


@pytest.mark.parametrize("value", ["ASYNC", "on", "", None, True, 1, ["async"]])
def test_an_unknown_detection_mode_saves_nothing(value):
    settings, errors = validate_settings({**VALID, "machine_detection": value}, json=True)
    assert settings is None and errors == {"machine_detection": "must be one of async, sync, off"}


def test_a_client_that_does_not_send_machine_detection_keeps_its_value():
    current = CallbackSettings(machine_detection="off")
    settings, errors = validate_settings(VALID, current)
    assert not errors and settings.machine_detection == "off"
