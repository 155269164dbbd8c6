"""The TwiML of voicemail (issue #33): the prompt and <Record> a caller hears once out of the
queue, and what they hear when the message is kept or not. Pure functions, like `twiml`."""
from twilio.twiml.voice_response import VoiceResponse

from callback.domain.numbers import speakable
from callback.domain.settings import DEFAULT_SPEECH
from callback.web.twiml import render, say

# Seconds of silence that end a message (Twilio's default).
SILENCE_SECONDS = 5


def record(action_url, status_url, max_seconds, *, transcribe_url=None, speech=DEFAULT_SPEECH):
    """The prompt, then <Record>: up to `max_seconds`, # to finish, a beep first. The action
    stores the message; the status callback (and the transcription's, when asked for) report
    on it later. Should Twilio run the next verb instead (no audio at all), the caller is
    told goodbye."""
    response = VoiceResponse()
    say(response, "Please leave your message after the tone, with anything we should know when we "
                  "call you back. Press the pound key when you are done.", speech)
    attrs = dict(action=action_url, method="POST", max_length=max_seconds, finish_on_key="#",
                 play_beep=True, timeout=SILENCE_SECONDS, recording_status_callback=status_url,
                 recording_status_callback_method="POST",
                 recording_status_callback_event="completed absent")
    if transcribe_url:
        attrs.update(transcribe=True, transcribe_callback=transcribe_url)
    response.record(**attrs)
    say(response, "I did not hear a message. Please call again if you still need us. Goodbye.", speech)
    response.hangup()
    return render(response)


def message_saved(e164, speech=DEFAULT_SPEECH, scheduled=None):
    """The message is kept, with the caller's place in line: we call them back."""
    response = VoiceResponse()
    say(response, f"Thank you. Your message is saved and keeps your place in line. We will call you "
                  f"back at {speakable(e164)}. Goodbye.", speech)
    response.hangup()
    return render(response)


def nothing_recorded(speech=DEFAULT_SPEECH):
    """No message came (silence, or too short): nothing kept, goodbye."""
    response = VoiceResponse()
    say(response, "I did not hear a message, so nothing was saved. Please call again if you still "
                  "need us. Goodbye.", speech)
    response.hangup()
    return render(response)


def message_not_kept(e164=None, speech=DEFAULT_SPEECH):
    """The message could not become work: the number already has a callback (which stands),
    or storing failed."""
    response = VoiceResponse()
    if e164:
        say(response, f"You already have a callback requested to {speakable(e164)}. We will keep it, "
                      "with its place in line, and call you when it is your turn. Goodbye.", speech)
    else:
        say(response, "We are sorry, we could not save your message. Please call again later. Goodbye.",
            speech)
    response.hangup()
    return render(response)


def pending_already(e164, wait_url, speech=DEFAULT_SPEECH):
    """Pressed 3 with a callback already pending for this number: no message, back to holding."""
    response = VoiceResponse()
    say(response, f"You already have a callback requested to {speakable(e164)}, with its place in line. "
                  "You may hang up, or stay on hold.", speech)
    response.redirect(wait_url, method="POST")
    return render(response)
