"""Only voice and language pairs Twilio documents: the pinned table, the nearest pair, the
settings that accept only the table's pairs, and the report of IVRs outside it. (The model's
<Say> that fails outside the table: test_twilio_model.py.)"""
import re
from datetime import date

import pytest
from conftest import API_TOKEN, IVR_NUMBER, log_in, said, twiml, with_admin_account

from callback.domain import voice_table
from callback.domain.settings import CallbackSettings, speech_problem, validate_settings
from callback.domain.voices import LANGUAGES, PAIRS, VOICES, documented, nearest_pair

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)

# Every pair the settings accepted before the table was pinned: none may be lost.
EARLIER_PAIRS = [(f"Polly.{name}", language) for language, names in {
    "en-US": ("Joanna", "Matthew", "Salli", "Kimberly", "Kendra", "Ivy", "Joey", "Justin",
              "Joanna-Neural", "Matthew-Neural"),
    "en-GB": ("Amy", "Brian", "Emma"), "es-US": ("Lupe", "Miguel", "Penelope"), "es-MX": ("Mia",),
    "es-ES": ("Conchita", "Enrique", "Lucia"), "fr-CA": ("Chantal",), "fr-FR": ("Celine", "Lea", "Mathieu"),
    "de-DE": ("Marlene", "Vicki", "Hans"), "pt-BR": ("Camila", "Vitoria", "Ricardo")}.items()
    for name in names] + [(basic, language) for basic in ("man", "woman")
                          for language in ("en-US", "en-GB", "es-ES", "fr-FR", "de-DE")]


# -- the table ------------------------------------------------------------------------------

def test_the_table_says_where_and_when_it_was_copied():
    assert voice_table.SOURCE.startswith("https://www.twilio.com/docs/voice/twiml/say/text-speech")
    assert date.fromisoformat(voice_table.COPIED_ON) <= date.today()
    assert "Only what the app offers is pinned" in voice_table.__doc__


def test_the_table_holds_each_pair_once_in_twilios_forms():
    assert len(set(voice_table.ROWS)) == len(voice_table.ROWS) == len(PAIRS)
    for language, voice, kind, gender in voice_table.ROWS:
        assert re.fullmatch(r"[a-z]{2}-[A-Z]{2}", language), language
        assert kind in ("Basic", "Standard", "Neural", "Generative")
        assert gender.split(" ")[0] in ("Female", "Male")
        assert (voice in ("man", "woman")) == (kind == "Basic")
        assert voice in ("man", "woman") or re.fullmatch(r"Polly\.\w+(-Neural|-Generative)?", voice), voice
        assert "*" not in voice


@pytest.mark.parametrize("voice, language", EARLIER_PAIRS)
def test_every_pair_offered_before_is_in_twilios_table(voice, language):
    assert documented(voice, language)


@pytest.mark.parametrize("voice, language", [
    ("Polly.Joanna", "fr-FR"), ("Polly.Lupe", "es-MX"), ("man", "pt-BR"), ("woman", "fr-CA"),
    ("alice", "en-US"), ("Polly.Joanna", "en"), ("Google.en-US-Standard-C", "en-US")])
def test_pairs_twilio_does_not_list_are_not_documented(voice, language):
    assert not documented(voice, language)


@pytest.mark.parametrize("voice, language, nearest", [
    ("Polly.Joanna", "en-US", ("Polly.Joanna", "en-US")),
    # The same Polly voice, in its own language.
    ("Polly.Joanna", "fr-FR", ("Polly.Joanna", "en-US")),
    ("Polly.Lupe", "es-MX", ("Polly.Lupe", "es-US")),
    # The same person in another engine or spelling, the same engine first.
    ("Polly.Mia-Generative", "es-MX", ("Polly.Mía-Generative", "es-MX")),
    ("Polly.Joanna-neural", "en-US", ("Polly.Joanna-Neural", "en-US")),
    # A voice Twilio does not list: the language decides, with a voice that speaks it.
    ("Polly.Nobody", "fr-CA", ("Polly.Chantal", "fr-CA")),
    ("Google.en-US-Standard-C", "en-US", ("Polly.Joanna", "en-US")),
    # Basic voices speak several languages: the language counts, then the voice.
    ("man", "pt-BR", ("Polly.Camila", "pt-BR")),
    ("alice", "es", ("woman", "es-ES")),
    ("woman", "en-AU", ("woman", "en-US")),
    ("man", "xx-XX", ("man", "en-US")),
    ("Polly.Nobody", "xx-XX", ("Polly.Joanna", "en-US")),
])
def test_the_nearest_documented_pair(voice, language, nearest):
    assert nearest_pair(voice, language) == nearest
    assert documented(*nearest)


def test_every_voice_of_the_form_has_a_language_of_the_form():
    assert set(LANGUAGES) == {language for languages in VOICES.values() for language in languages}
    settings = CallbackSettings()
    assert settings.speech == ("Polly.Joanna", "en-US") and documented(*settings.speech)


# -- settings -----------------------------------------------------------------------------

def test_a_pair_outside_the_table_is_refused_naming_the_nearest():
    settings, errors = validate_settings({"voice": "Polly.Joanna", "language": "fr-FR"}, partial=True)
    assert settings is None
    assert errors["language"] == ("Polly.Joanna speaks en-US, not fr-FR; the nearest pair Twilio lists "
                                  "is Polly.Joanna with en-US")


def test_a_stored_pair_twilio_no_longer_lists_speaks_the_nearest_pair():
    settings = CallbackSettings(voice="Polly.Lupe", language="en-US")
    assert settings.speech == ("Polly.Lupe", "es-US")
    assert speech_problem("Polly.Lupe", "en-US").startswith("Polly.Lupe speaks es-US, not en-US")


def test_the_api_lists_the_table_it_checks_against(client, main_line):
    body = client.get("/api/voices", headers=AUTH).get_json()
    assert body["source"] == voice_table.SOURCE and body["copied_on"] == voice_table.COPIED_ON
    listed = {(v["voice"], v["language"]) for v in body["voices"]}
    assert listed == PAIRS
    amy = {"voice": "Polly.Amy", "language": "en-GB", "type": "Standard", "gender": "Female"}
    assert amy in body["voices"]
    assert client.get("/api/voices").status_code == 401


def test_a_setting_outside_the_voice_table_is_refused_and_nothing_is_saved(client, svc, main_line):
    body = {"max_retries": 5, "voice": "Polly.Vicki", "language": "fr-FR"}
    response = client.put("/api/ivrs/Main%20Line/settings", json=body, headers=AUTH)
    assert response.status_code == 400
    problem = response.get_json()["fields"]["language"]
    assert "the nearest pair Twilio lists is Polly.Vicki with de-DE" in problem
    settings = svc.storage.get_ivr("Main Line").settings
    assert (settings.voice, settings.language, settings.max_retries) == ("Polly.Joanna", "en-US", 3)


def test_the_settings_form_offers_the_tables_voices_grouped_by_language(client, main_line):
    assert log_in(client).status_code == 302
    html = client.get("/admin/ivrs/Main%20Line/settings").get_data(as_text=True)
    voices = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>',
                        html[html.index('id="voice"'):html.index('id="language"')])
    assert {value for value, _ in voices} == set(VOICES)
    assert ("Polly.Joanna-Generative", "Polly.Joanna-Generative (Female, Generative)") in voices
    assert '<optgroup label="en-GB">' in html
    assert '<optgroup label="Twilio Basic (several languages)">' in html
    assert '<option value="Polly.Joanna" selected>' in html


# -- the report ---------------------------------------------------------------------------

def store_speech(svc, ivr, voice, language):
    """Settings as a record written before the table (or by hand) may hold them: no check."""
    return svc.storage.save_ivr(ivr.evolve(settings=CallbackSettings(voice=voice, language=language)))


def test_check_voices_reports_each_ivr_outside_the_table_with_the_nearest_pair(app, svc, main_line):
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["check-voices"])
    assert clean.exit_code == 0 and "voices: 0 of 1 IVRs outside Twilio's voice table" in clean.output
    store_speech(svc, main_line, "Polly.Vicki", "fr-FR")
    found = runner.invoke(args=["check-voices"])
    assert found.exit_code == 1
    assert ("IVR Main Line: Polly.Vicki speaks de-DE, not fr-FR; the nearest pair Twilio lists is "
            "Polly.Vicki with de-DE") in found.output
    assert "voices: 1 of 1 IVRs outside Twilio's voice table" in found.output


def test_init_db_reports_the_same_and_succeeds(app, svc, main_line):
    store_speech(svc, main_line, "alice", "en-US")
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0
    assert "created: nothing, all tables exist" in result.output
    assert "IVR Main Line: alice speaks no language in Twilio's voice table" in result.output
    assert "nearest pair Twilio lists is woman with en-US" in result.output


def test_calls_of_an_ivr_outside_the_table_speak_the_nearest_pair(twilio, svc, main_line):
    store_speech(svc, main_line, "Polly.Lupe", "en-US")
    root = twiml(twilio.post("/voice/incoming", {"CallSid": "CA" + "5" * 32, "From": "+14155550123",
                                                 "To": IVR_NUMBER, "CallStatus": "ringing"}))
    assert {(s.get("voice"), s.get("language")) for s in root.iter("Say")} == {("Polly.Lupe", "es-US")}
    assert "For Sales, press 1." in said(root)
