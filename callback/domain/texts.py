"""Texts to customers (issue #33's SMS part): which numbers may get one, what a reply means,
what each text says. Plain Python; the numbering data comes from `phonenumbers`, as dialing's.

Twilio owns some words. On a long code (and on a Messaging Service without Advanced Opt-Out)
the single-word replies in OPT_OUT_WORDS block the number: Twilio answers with its own reply,
still forwards the message to the messaging webhook, and refuses every later text to that
number with error 21610 until one of OPT_IN_WORDS comes back. HELP and INFO get Twilio's own
answer too. So the word a customer replies to cancel may be none of these: "Reply CANCEL"
would opt them out of every text instead.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import PhoneNumberType

from callback.domain.estimate import spoken_wait
from callback.domain.numbers import mask_for_list

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
TWILIO_WORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS
DEFAULT_CANCEL_WORD = "C"
MAX_CANCEL_WORD = 10
_CANCEL_WORD = re.compile(r"[A-Z0-9]{1,10}")
_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")

# In the US, CA, PR, VI, GU and MP the numbering data cannot tell a mobile from a landline
# (FIXED_LINE_OR_MOBILE): a text is tried, and Twilio's 30006 says when it was a landline.
# The other +1 regions can, and their landlines (FIXED_LINE) are never texted.
_TEXTABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

# The texts, by kind (a callback gets at most one of each).
CONFIRMATION = "confirm"
ABOUT_TO_CALL = "calling"
NOT_REACHED = "missed"
KINDS = (CONFIRMATION, ABOUT_TO_CALL, NOT_REACHED)

# A text's life: due (stored, not sent yet), sending (claimed by one sender until
# `claim_until`), then one final state: sent (Twilio took it; its status callback may still
# say delivered or failed), delivered, failed (counted), or skipped (never sent: opted out,
# a number no text reaches, texts turned off since).
DUE, SENDING, SENT, DELIVERED, FAILED, SKIPPED = "due", "sending", "sent", "delivered", "failed", "skipped"
OPEN_STATES = (DUE, SENDING)
# A text is tried this many times in all (the hand-off, then the sweep), never more.
MAX_TRIES = 3
# How long one sender holds its claim: past it, the sweep may try again. A send whose answer
# was lost holds it longer, so that its status callback can say it was sent after all.
CLAIM = timedelta(minutes=2)
CLAIM_IN_DOUBT = timedelta(minutes=10)


@dataclass(frozen=True)
class Text:
    """One text of one kind about one callback, as stored."""

    callback_id: str
    kind: str
    number: str
    ivr_name: str
    queue_name: str
    created_at: datetime
    state: str = DUE
    tries: int = 0
    claim_until: datetime | None = None
    message_sid: str | None = None
    error_code: int | None = None
    detail: str | None = None

    @property
    def key(self):
        """The text's id: its callback and kind."""
        return text_key(self.callback_id, self.kind)

    def may_send(self, now):
        """True when a sender may claim it now: due, or a claim that ran out, tries left."""
        if self.tries >= MAX_TRIES:
            return False
        return self.state == DUE or (self.state == SENDING and self.claim_until is not None
                                     and self.claim_until <= now)


def text_key(callback_id, kind):
    """'<callback id>#<kind>': a text's id."""
    return f"{callback_id}#{kind}"


def split_key(key):
    """(callback id, kind) of a text id; ValueError when it is not one."""
    callback_id, _, kind = (key or "").rpartition("#")
    if not callback_id or kind not in KINDS:
        raise ValueError("not a text id")
    return callback_id, kind


# What a reply is.
REPLY_CANCEL = "cancel"      # the IVR's cancel word: cancel, confirm by text
REPLY_OPT_OUT_CANCEL = "opt-out-cancel"  # bare CANCEL: cancel and record the opt-out, no text
REPLY_OPT_OUT = "opt-out"
REPLY_OPT_IN = "opt-in"
REPLY_HELP = "help"          # Twilio answered; nothing from the app
REPLY_OTHER = "other"

# Twilio's answers to a send: the number opted out (21610), or no text can reach it.
OPTED_OUT_CODE = 21610
UNTEXTABLE_CODES = frozenset({21211, 21408, 21612, 21614, 21635, 21606})
# Message statuses that end a text; failed and undelivered count as failed sends.
FAILED_STATUSES = frozenset({"failed", "undelivered"})
FINAL_STATUSES = FAILED_STATUSES | {"delivered", "read", "canceled"}


def parse_cancel_word(value):
    """The word a customer replies to cancel: letters or digits, one to ten, upper-cased;
    ValueError when empty or a word Twilio answers itself (STOP, CANCEL, HELP …)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_CANCEL_WORD
    if not isinstance(value, str):
        raise ValueError("must be text")
    word = value.strip().upper()
    if word in TWILIO_WORDS:
        raise ValueError(f"{word} is one of the words Twilio answers itself (opt-out, opt-in or help): "
                         "a customer replying it would not reach the app as a cancel")
    if not _CANCEL_WORD.fullmatch(word):
        raise ValueError(f"must be one word of 1 to {MAX_CANCEL_WORD} letters or digits")
    return word


def parse_service_sid(value):
    """A Messaging Service SID (MG and 32 hex digits), or '' for none."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    if text and not _SERVICE_SID.fullmatch(text):
        raise ValueError("must be a Messaging Service SID: MG followed by 32 hexadecimal digits")
    return text


def textable(e164):
    """True when a text may reach the number as the numbering data says: a mobile, or a
    number that may be one; never one the data calls a landline, toll-free or anything else."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    return phonenumbers.number_type(number) in _TEXTABLE


def reply_kind(body, cancel_word):
    """What a customer's reply means: Twilio matches single words, whatever their case and
    the spaces around them, and so does this."""
    word = " ".join((body or "").split()).upper()
    if cancel_word and word == cancel_word.upper():
        return REPLY_CANCEL
    if word == "CANCEL":
        return REPLY_OPT_OUT_CANCEL
    if word in OPT_OUT_WORDS:
        return REPLY_OPT_OUT
    if word in OPT_IN_WORDS:
        return REPLY_OPT_IN
    if word in HELP_WORDS:
        return REPLY_HELP
    return REPLY_OTHER


@dataclass(frozen=True)
class TextFacts:
    """What a text says: the company, the number called, the queues, the expected wait."""

    company: str
    number: str
    queues: tuple = ()
    estimate: object = None  # callback.domain.estimate.Estimate, or None
    cancel_word: str = DEFAULT_CANCEL_WORD
    # When the clocks decide instead of the line (each 'today at 2:30 PM', '8 a.m.'): the
    # time the caller chose, the center's next opening, the customer's own opening hour.
    scheduled: str | None = None
    opens: str | None = None
    customer_opens: str | None = None


def _expected(facts):
    """The sentence saying when the call comes, as the caller heard it."""
    if facts.scheduled:
        return f" We will call you {facts.scheduled}, within half an hour."
    if facts.opens:
        return f" We are closed until then: expect our call after we open, {facts.opens}."
    if facts.customer_opens:
        return f" We will call after {facts.customer_opens} your time."
    if facts.estimate is None:
        return ""
    return (f" It may be {spoken_wait(facts.estimate)} before we call." if facts.estimate.over_cap
            else f" We expect to call within {spoken_wait(facts.estimate)}.")


def _for_queues(queues):
    return f" ({', '.join(queues)})" if queues else ""


def body(kind, facts):
    """The text of one kind. The confirmation names the opt-out words carriers expect in a
    first message; the number shows as a list shows it (a lock screen shows texts)."""
    if kind == CONFIRMATION:
        turn = "at the time you chose" if facts.scheduled else "when it is your turn"
        return (f"{facts.company}: your callback request{_for_queues(facts.queues)} is saved. We will call "
                f"{mask_for_list(facts.number)} {turn}.{_expected(facts)} "
                f"Reply {facts.cancel_word} to cancel. "
                "Reply STOP to stop texts.")
    if kind == ABOUT_TO_CALL:
        return (f"{facts.company}: an agent is about to call you back on {mask_for_list(facts.number)}. "
                "Reply STOP to stop texts.")
    if kind == NOT_REACHED:
        return (f"{facts.company}: we tried to call you back{_for_queues(facts.queues)} but could not reach "
                "you, and your request has ended. Please call us again. Reply STOP to stop texts.")
    raise ValueError(f"no text of kind {kind!r}")


def cancelled_body(company, queues):
    """The answer to the cancel word: what was cancelled, or that nothing was pending."""
    if not queues:
        return f"{company}: you have no callback waiting, so there was nothing to cancel."
    return f"{company}: your callback request{_for_queues(queues)} is cancelled. We will not call."


# The texts' settings that are text (callback.domain.settings shows and checks them with the
# others): name: (label, longest, help text, parser).
SMS_TEXT_FIELDS = {
    "sms_service_sid": ("Messaging Service SID", 34,
                        "The Twilio Messaging Service (MG…) every text is sent through; this IVR's numbers "
                        "must be in its sender pool.", parse_service_sid),
    "sms_cancel_word": ("Cancel Reply Word", MAX_CANCEL_WORD,
                        "The word a customer texts back to cancel (default C). Never STOP, CANCEL, END, "
                        "QUIT, HELP or another word Twilio answers itself.", parse_cancel_word),
}
