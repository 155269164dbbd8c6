"""Which voice may speak which language: the pairs of Twilio's table (voice_table), and the
nearest documented pair to one that is not there.

A `<Say>` whose voice and language Twilio does not list together may fail, and a failed
`<Say>` is a caller hearing "an application error has occurred". So the settings accept only
documented pairs, and `nearest_pair` gives the pair to speak (and to suggest) instead of a
stored one Twilio no longer lists.
"""
import unicodedata

from callback.domain.voice_table import ROWS

DEFAULT_VOICE = "Polly.Joanna"
DEFAULT_LANGUAGE = "en-US"
BASIC_VOICES = ("man", "woman")

# voice -> the languages it speaks, in the table's order (most voices speak one).
VOICES = {}
for _language, _voice, _type, _gender in ROWS:
    VOICES[_voice] = VOICES.get(_voice, ()) + (_language,)
LANGUAGES = tuple(sorted({row[0] for row in ROWS}))
PAIRS = frozenset((voice, language) for language, voice, _type, _gender in ROWS)
KINDS = {voice: (kind, gender) for _language, voice, kind, gender in ROWS}


def documented(voice, language):
    """True when Twilio's table lists `voice` speaking `language`."""
    return (voice, language) in PAIRS


def label(voice):
    """How the portal names a voice: 'Polly.Joanna-Neural (Female, Neural)'."""
    kind, gender = KINDS.get(voice, ("", ""))
    return f"{voice} ({gender}, {kind})" if kind else voice


def _base(language):
    return (language or "").split("-")[0].lower()


def _name(voice):
    """A voice's person, without engine, accents or case: 'Polly.Mía-Generative' -> 'polly.mia'."""
    plain = unicodedata.normalize("NFKD", voice or "")
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return plain.split("-")[0]


def _engine(voice):
    """'Polly.Joanna-Neural' -> 'neural'; '' for a Standard voice."""
    return (voice or "").partition("-")[2].casefold()


def _closest_language(languages, wanted):
    """Of `languages`, `wanted` itself, else one of the same language (en-GB for en-AU),
    else the default language, else the first."""
    if wanted in languages:
        return wanted
    fallback = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in languages else languages[0]
    return next((lang for lang in languages if _base(lang) == _base(wanted)), fallback)


def _voice_for(language, voice):
    """A voice that speaks `language`: the basic voice asked for (the retired `alice` was a
    woman), the default voice, else the language's first Polly voice."""
    speakers = [v for v, langs in VOICES.items() if language in langs]
    basic = "woman" if voice == "alice" else voice
    if basic in BASIC_VOICES and basic in speakers:
        return basic
    if DEFAULT_VOICE in speakers:
        return DEFAULT_VOICE
    return next(v for v in speakers if v not in BASIC_VOICES)


def nearest_pair(voice, language):
    """The documented (voice, language) nearest to the one given; itself when documented.

    In order: the same Polly voice, in the language of its own closest to `language`; the
    same person in another engine or spelling (Polly.Mia for Polly.Mía-Generative); the same
    language (or one of its locales: en-US for en) with a voice that speaks it, the basic
    voice asked for when it does; the basic voice in a language it speaks; the default.
    A basic voice speaks several languages, so with one the language is what counts.
    """
    if documented(voice, language):
        return voice, language
    if voice in VOICES and voice not in BASIC_VOICES:
        return voice, _closest_language(VOICES[voice], language)
    # The same person, the same engine first.
    kin = sorted((v for v in VOICES if _name(v) == _name(voice) and v not in BASIC_VOICES),
                 key=lambda v: _engine(v) != _engine(voice))
    if kin:
        chosen = next((v for v in kin if language in VOICES[v]), None) or next(
            (v for v in kin if any(_base(lang) == _base(language) for lang in VOICES[v])), kin[0])
        return chosen, _closest_language(VOICES[chosen], language)
    locales = [lang for lang in LANGUAGES if lang == language] or sorted(
        (lang for lang in LANGUAGES if _base(lang) == _base(language)),
        key=lambda lang: lang != DEFAULT_LANGUAGE)
    if locales:
        return _voice_for(locales[0], voice), locales[0]
    if voice in VOICES:
        return voice, _closest_language(VOICES[voice], language)
    return DEFAULT_VOICE, DEFAULT_LANGUAGE



def voice_groups():
    """The voices as the portal lists them: Twilio's basic voices, then each language's own."""
    basic = ("Twilio Basic (several languages)", tuple((v, label(v)) for v in BASIC_VOICES))
    return (basic,) + tuple(
        (language, tuple((v, label(v)) for v, langs in VOICES.items()
                         if language in langs and v not in BASIC_VOICES))
        for language in LANGUAGES)
