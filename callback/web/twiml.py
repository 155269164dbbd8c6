"""Every TwiML document the app answers with: pure functions over VoiceResponse.

URLs arrive already absolute (built from PUBLIC_BASE_URL by the caller of these functions).
"""
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from callback.domain.estimate import spoken_wait
from callback.domain.numbers import last_four_speakable, speakable
from callback.domain.settings import DEFAULT_SPEECH

ENTRY_PROBLEMS = {
    "empty": "I did not hear any digits.",
    "not_digits": "Please use only the number keys.",
    "leading_one": "Please enter just the ten digits, without the 1.",
    "too_short": "That number is too short; I need all ten digits, starting with the area code.",
    "too_long": "That number is too long; I need exactly ten digits, starting with the area code.",
    "bad_area_code": "That area code is not valid; area codes do not start with 0 or 1.",
    "bad_exchange": "That number is not valid; the three digits after the area code "
                    "cannot start with 0 or 1.",
    # Premium-rate, a range that does not exist, or a region this IVR does not call: one
    # plain sentence for all (a caller cannot act on the difference).
    "not_callable": "That number can't be called back; please use a different number.",
}


def say(target, text, speech=DEFAULT_SPEECH):
    """Say `text` in the IVR's voice and language (`speech`)."""
    voice, language = speech
    target.say(text, voice=voice, language=language)


def render(response):
    """The document as Twilio reads it."""
    return str(response)


def goodbye(message="We are sorry, we cannot take your call right now. Please call again later. Goodbye.",
            speech=DEFAULT_SPEECH):
    """A polite message and a hang-up: the safe end of any call."""
    response = VoiceResponse()
    say(response, message, speech)
    response.hangup()
    return render(response)


def unknown_number():
    """For a call to a number no IVR owns."""
    return goodbye("Thank you for calling. This number is not in service for our contact "
                   "center. Please check the number and call again. Goodbye.")


def queue_menu(greeting, queue_names, action_url, problem=None, speech=DEFAULT_SPEECH):
    """Greeting (first time only) and 'for Sales press 1…' as a one-digit Gather."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, timeout=6, action=action_url,
                    action_on_empty_result=True)
    if problem:
        say(gather, problem, speech)
    elif greeting:
        say(gather, greeting, speech)
    options = " ".join(f"For {name}, press {i}." for i, name in enumerate(queue_names, start=1))
    say(gather, options, speech)
    response.append(gather)
    return render(response)


def enqueue(queue_name, wait_url, action_url, greeting=None, speech=DEFAULT_SPEECH):
    """Put the caller in the named Twilio queue, holding on our wait loop."""
    response = VoiceResponse()
    if greeting:
        say(response, greeting, speech)
    response.enqueue(queue_name, wait_url=wait_url, wait_url_method="POST", action=action_url,
                     method="POST")
    return render(response)


HOLD_MESSAGE = "Thank you for holding. An agent will be with you as soon as possible."
OFFER_MESSAGE = "Press 1 to be called back instead of waiting. You keep your place in line."
PICK_TIME_MESSAGE = "Or press 2 to choose a time for our call."
LEAVE_MESSAGE = "Or press 3 to leave a message, and we will call you back. You keep your place in line."
# After the offer's music a key may still come this long (the Gather's timeout).
OFFER_SECONDS = 3


def wait_sentence(ahead, estimate):
    """'There are 3 callers ahead of you, and the estimated wait is about 12 minutes.'"""
    if ahead == 0:
        position = "You are next in line"
    elif ahead == 1:
        position = "There is 1 caller ahead of you"
    else:
        position = f"There are {ahead} callers ahead of you"
    return f"{position}, and the estimated wait is {spoken_wait(estimate)}."


def _play(target, music):
    """Play each (url, times) of `music` in order; a URL played no times is left out."""
    for url, times in music:
        if times > 0:
            target.play(url, loop=times if times > 1 else None)


def hold(music, offer_url=None, loop_url=None, wait=None, message=True, speech=DEFAULT_SPEECH, opens=None,
         pick_time=False, leave_message=False):
    """Hold message and music for the wait loop, with the callback offer once it is due.

    `music` is [(url, times)], played in order: cut to last until the next prompt is due
    (callback.domain.hold), since Twilio asks for the next document only after this one.
    The offer Gather wraps the music so a caller can press 1 at any moment. `loop_url`
    ends with a Redirect to itself, so the loop keeps that URL instead of going back to the
    waitUrl (which would offer again, or read the estimate again). `wait` is (ahead,
    estimate) when an estimate is worth telling, said before the offer. `opens` ('tomorrow
    at 9 AM'): the center closes before the callback could be made, so the offer is a call
    at that opening. `pick_time`: 2 lets the caller choose a time instead; `leave_message`:
    3 leaves a message (callback.web.voice.voicemail).
    """
    response = VoiceResponse()
    if offer_url:
        gather = Gather(input="dtmf", num_digits=1, timeout=OFFER_SECONDS, action=offer_url)
        if wait is not None:
            say(gather, wait_sentence(*wait), speech)
        if opens:
            say(gather, f"We close before we could call you back today. Press 1 to be called back "
                         f"when we open, {opens}. You keep your place in line.", speech)
        else:
            say(gather, OFFER_MESSAGE, speech)
        if pick_time:
            say(gather, PICK_TIME_MESSAGE, speech)
        if leave_message:
            say(gather, LEAVE_MESSAGE, speech)
        _play(gather, music)
        response.append(gather)
    else:
        if message:
            say(response, HOLD_MESSAGE, speech)
        _play(response, music)
    if loop_url:
        response.redirect(loop_url, method="POST")
    return render(response)


def hold_music_only(music):
    """What a holding caller hears when anything went wrong: music, no database needed."""
    response = VoiceResponse()
    _play(response, music)
    return render(response)


def back_to_hold(wait_url, message=None, speech=DEFAULT_SPEECH):
    """Leave the offer or entry and go on holding (same queue, same place). Without a
    `wait_url` the caller is in no queue (theirs was full): the line is full, goodbye."""
    if wait_url is None:
        return line_full(message, speech)
    response = VoiceResponse()
    if message:
        say(response, message, speech)
    response.redirect(wait_url, method="POST")
    return render(response)


LINE_FULL = "Our line is full right now, so we cannot keep you on hold. Please call again later. Goodbye."


def line_full(message=None, speech=DEFAULT_SPEECH):
    """For a caller their full queue turned away who takes no callback: said plainly, then
    a hang-up (there is no queue to go back to)."""
    response = VoiceResponse()
    if message:
        say(response, message, speech)
    say(response, LINE_FULL, speech)
    response.hangup()
    return render(response)


def queue_full_offer(offer_url, speech=DEFAULT_SPEECH):
    """Twilio turned the caller away (their queue is full): a callback offered at once;
    silence hears that the line is full."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, timeout=CHOICE_SECONDS, action=offer_url)
    say(gather, "Sorry, our line is full right now, so we cannot keep you on hold. Press 1 and "
                 "we will call you back when it is your turn.", speech)
    response.append(gather)
    say(response, "Please call again later. Goodbye.", speech)
    response.hangup()
    return render(response)


# Number entry ends on '#' or after this much silence, never on a digit count: a count
# submits at its last digit and any further key (the ten digits of a caller who began with
# 1) would land in the next prompt, where it could make a valid wrong number.
ENTRY_SILENCE_SECONDS = 5
CHOICE_SECONDS = 6


def number_entry(action_url, problem=None, last_try=False, speech=DEFAULT_SPEECH):
    """Ask for a ten-digit callback number, area code first; the whole entry reaches the app."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", finish_on_key="#", timeout=ENTRY_SILENCE_SECONDS,
                    action=action_url, action_on_empty_result=True)
    if problem:
        say(gather, ENTRY_PROBLEMS.get(problem, "That number is not valid."), speech)
    if last_try:
        say(gather, "Last try.", speech)
    say(gather, "Please enter the ten digit number where we should call you back, area code "
                 "first, then press pound.", speech)
    response.append(gather)
    return render(response)


CHOICE_PROBLEMS = {
    "silence": "Sorry, I did not hear a choice.",
    "other": "Sorry, that is not one of the choices.",
}


def choice(action_url, text, problem, speech):
    """A one-key choice, said once (after the problem with the last answer, if any); its
    action is requested even on silence."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, timeout=CHOICE_SECONDS, action=action_url,
                    action_on_empty_result=True)
    if problem:
        say(gather, CHOICE_PROBLEMS.get(problem, CHOICE_PROBLEMS["other"]), speech)
    say(gather, text, speech)
    response.append(gather)
    return render(response)


def confirm_number(e164, action_url, problem=None, speech=DEFAULT_SPEECH):
    """Read the entered number back before anything is stored: 1 keeps it, 2 re-enters."""
    return choice(action_url, f"I have {speakable(e164)}. Press 1 if that is right, or 2 to "
                               "enter it again.", problem, speech)


def offer_caller_id(e164, action_url, problem=None, speech=DEFAULT_SPEECH):
    """Offer the number the caller is calling from: 1 takes it, 2 enters another."""
    return choice(action_url, f"Press 1 to be called back at the number ending "
                               f"{last_four_speakable(e164)}, or 2 to enter another.", problem,
                   speech)


def nothing_saved(wait_url_without_offer, speech=DEFAULT_SPEECH, holding=True):
    """No answer to a confirmation: store nothing, back to holding with the offer withdrawn
    (or, for a caller in no queue, goodbye; `holding` False: a caller of a closed center,
    on to its goodbye)."""
    if wait_url_without_offer is None:
        return line_full("I have not saved a number.", speech)
    response = VoiceResponse()
    say(response, "I have not saved a number." + (" You are still on hold and you have kept your "
                                                   "place in line." if holding else ""), speech)
    response.redirect(wait_url_without_offer, method="POST")
    return render(response)


def entry_failed(problem, wait_url_without_offer, speech=DEFAULT_SPEECH, holding=True):
    """Third failed entry: say so, back to holding with the offer withdrawn (or, for a
    caller in no queue, goodbye; `holding` False: a caller of a closed center, on to its
    goodbye)."""
    if wait_url_without_offer is None:
        return line_full(ENTRY_PROBLEMS.get(problem, "That number is not valid.") + " I could not take "
                         "a callback number.", speech)
    response = VoiceResponse()
    say(response, ENTRY_PROBLEMS.get(problem, "That number is not valid."), speech)
    say(response, "I could not take a callback number." + (" You are back on hold and you have "
                                                             "kept your place in line." if holding else ""),
         speech)
    response.redirect(wait_url_without_offer, method="POST")
    return render(response)


def callback_stored(e164, expected=None, speech=DEFAULT_SPEECH, opens=None, scheduled=None):
    """After the caller left the queue: read the number back, say when to expect the call
    (`expected`: an estimate.ExpectedCall, the range or the customer's opening; `opens`:
    'tomorrow at 9 AM' when the center is closed until then; `scheduled`: the time the
    caller chose), reassure, hang up."""
    response = VoiceResponse()
    say(response, f"Thank you. We will call you back at {speakable(e164)}.", speech)
    if scheduled:
        say(response, f"We will call you {scheduled}, within half an hour. You may hang up now. Goodbye.",
            speech)
        response.hangup()
        return render(response)
    estimate, customer_opens, closes = (expected.estimate, expected.opens, expected.closes) if expected \
        else (None, None, None)
    if opens:
        say(response, f"We are closed until then: expect our call after we open, {opens}.", speech)
        if customer_opens:
            say(response, f"We call you only after {customer_opens} your time.", speech)
    elif customer_opens:
        say(response, "It is outside our calling hours where you are, so we will call you after "
                       f"{customer_opens} your time.", speech)
    elif estimate is not None and estimate.over_cap:
        say(response, f"It may be {spoken_wait(estimate)} before we call.", speech)
    elif estimate is not None:
        say(response, f"We expect to call you in {spoken_wait(estimate)}.", speech)
    if closes and not opens:
        say(response, f"We call only until {closes} your time.", speech)
    say(response, "You keep your place in line: when it is your turn, an agent will call you. "
                   "You may hang up now. Goodbye.", speech)
    response.hangup()
    return render(response)


def already_pending(e164, speech=DEFAULT_SPEECH, in_queue=True):
    """The number already has a callback in this queue: keep it, and leave the queue (or
    hang up, for a caller in no queue)."""
    response = VoiceResponse()
    say(response, f"You already have a callback requested to {speakable(e164)}. We will keep "
                   "it, with its place in line, and call you when it is your turn.", speech)
    if in_queue:
        response.leave()
    else:
        say(response, "Goodbye.", speech)
        response.hangup()
    return render(response)



def leave_queue():
    """Take the caller out of the Twilio queue; the Enqueue action continues the call."""
    response = VoiceResponse()
    response.leave()
    return render(response)


def conference(conference_name, *, announcement=None, status_callback=None, end_on_exit=True,
               wait_url="", start_on_enter=True, speech=DEFAULT_SPEECH, hangup_on_star=False,
               play_url=None):
    """Say something, then join a conference (agent or customer side).

    The agent joins with start_on_enter=False and `wait_url` answering `ringing`: they hear
    ringing until the other party joins and starts the conference. `hangup_on_star` lets
    them leave it with star (ending it, with end_on_exit): how an agent warned of a machine
    ends the customer's call. `play_url` (a voicemail) plays before the join, so the join
    that dials the customer comes after the message.
    """
    response = VoiceResponse()
    if play_url:
        response.play(play_url)
    if announcement:
        say(response, announcement, speech)
    dial = Dial(hangup_on_star=True) if hangup_on_star else Dial()
    attrs = dict(start_conference_on_enter=start_on_enter, end_conference_on_exit=end_on_exit,
                 beep=False, wait_url=wait_url)
    if wait_url:
        attrs["wait_method"] = "POST"  # a TwiML document, signed like every webhook
    if status_callback:
        attrs.update(status_callback=status_callback, status_callback_method="POST",
                     status_callback_event="start end join leave")
    dial.conference(conference_name, **attrs)
    response.append(dial)
    return render(response)


def ringing(tone_url):
    """What an agent waiting in the conference hears: the ring cycle at `tone_url`, again
    and again. Twilio's documents promise no loop of a bare audio file at a conference's
    waitUrl, while `loop="0"` plays it up to 1,000 times: over an hour and a half of a 6 s
    cycle, past the longest any phone may ring (600 s)."""
    response = VoiceResponse()
    response.play(tone_url, loop=0)
    return render(response)


def agent_whisper(text, accept_url, speech=DEFAULT_SPEECH, accept="accept"):
    """What an agent hears on answering: the work, then 1 to accept. Any other key, or
    silence (a voicemail greeting presses nothing), goes to `accept_url` as a decline."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, timeout=8, action=accept_url,
                    action_on_empty_result=True)
    say(gather, f"{text} Press 1 to {accept}. Press any other key to decline.", speech)
    response.append(gather)
    return render(response)


def notice(message, speech=DEFAULT_SPEECH):
    """Tell someone what happened, then hang up."""
    response = VoiceResponse()
    say(response, message, speech)
    response.hangup()
    return render(response)


def spoken(message, speech=DEFAULT_SPEECH):
    """Words only, no other verb: what a conference announcement to one participant may be."""
    response = VoiceResponse()
    say(response, message, speech)
    return render(response)


def hangup():
    """Just hang up."""
    response = VoiceResponse()
    response.hangup()
    return render(response)


def empty():
    """An empty response: for status callbacks, which ignore TwiML."""
    return render(VoiceResponse())
