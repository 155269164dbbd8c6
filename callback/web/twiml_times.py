"""TwiML of the clock: a call to a closed center, and the choice of a time for a callback
(pure functions over VoiceResponse, as in `twiml`)."""
from twilio.twiml.voice_response import Gather, VoiceResponse

from callback.domain.settings import DEFAULT_SPEECH
from callback.web.twiml import CHOICE_SECONDS, choice, goodbye, render, say


def closed(greeting, week, opens, action_url=None, queue_names=(), speech=DEFAULT_SPEECH):
    """A call while the center is closed: the hours and when it opens, then (with
    `action_url`) the offer of a callback at that opening, by queue when there are several;
    without it, goodbye."""
    response = VoiceResponse()
    target = response
    if action_url:
        target = Gather(input="dtmf", num_digits=1, timeout=CHOICE_SECONDS, action=action_url,
                        action_on_empty_result=True)
    if greeting:
        say(target, greeting, speech)
    said = "We are closed now." + (f" {week}" if week else "")
    say(target, said + (f" We open again {opens}." if opens else ""), speech)
    if not action_url:
        say(response, "Please call again when we are open. Goodbye.", speech)
        response.hangup()
        return render(response)
    if len(queue_names) > 1:
        choices = " ".join(f"For {name}, press {i}." for i, name in enumerate(queue_names, start=1))
        say(target, f"To be called back when we open, choose a department. {choices}", speech)
    else:
        say(target, "To be called back when we open, press 1. Otherwise, you may hang up.", speech)
    response.append(target)
    return render(response)


def closed_goodbye(message=None, speech=DEFAULT_SPEECH):
    """The end of a call to a closed center."""
    return goodbye((message + " " if message else "") + "Please call again when we are open. Goodbye.",
                   speech=speech)


def slot_menu(spoken_slots, action_url, problem=None, notice=None, speech=DEFAULT_SPEECH):
    """The times a caller may choose for their callback, one key each ("today at 2:30 PM"),
    after `notice` (why they hear the menu again) when there is one."""
    choices = " ".join(f"For {when}, press {key}." for key, when in enumerate(spoken_slots, start=1))
    text = f"We can call you back at these times. {choices}"
    return choice(action_url, f"{notice} {text}" if notice else text, problem, speech)


def slot_readback(spoken_slot, action_url, problem=None, speech=DEFAULT_SPEECH):
    """Read the chosen time back before anything is stored: 1 keeps it, 2 chooses again."""
    return choice(action_url, f"We will call you {spoken_slot}, within half an hour. Press 1 if that is "
                              "right, or 2 to choose another time.", problem, speech)
