"""Twilio messaging webhooks: a customer's text to an IVR number, and the status callback of
the texts the app sends. Signed like every webhook (the voice routes' check); each answers
messaging TwiML, an empty <Response/> on any failure, never an HTML 500. And the words the
portal's callback page shows a callback's texts in."""
import logging

from flask import Blueprint, request
from twilio.twiml.messaging_response import MessagingResponse

from callback.domain.texts import (
    ABOUT_TO_CALL,
    CONFIRMATION,
    DELIVERED,
    DUE,
    FAILED,
    NOT_REACHED,
    SENDING,
    SENT,
    SKIPPED,
    split_key,
)
from callback.storage import StorageError
from callback.web.voice.common import _int, param, services, webhook

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


TEXT_KINDS = {CONFIRMATION: "Confirmation", ABOUT_TO_CALL: "Agent about to call",
              NOT_REACHED: "Could not reach"}
TEXT_STATES = {DUE: "Waiting to be sent", SENDING: "Being sent", SENT: "Sent", DELIVERED: "Delivered",
               FAILED: "Failed", SKIPPED: "Not sent"}


@bp.app_template_global()
def texts_of(callback_id):
    """A callback's texts, for its page in the portal (none when DynamoDB does not answer)."""
    try:
        return services().storage.texts_of_callback(callback_id)
    except StorageError:
        log.warning("could not read the texts of callback %s", callback_id)
        return []


@bp.app_template_global()
def text_kind_label(kind):
    """A text's kind in plain words."""
    return TEXT_KINDS.get(kind, kind)


@bp.app_template_global()
def text_state_label(text):
    """How a text went, in plain words, with why it failed or was not sent."""
    words = TEXT_STATES.get(text.state, text.state)
    why = [f"Twilio error {text.error_code}"] if text.error_code else []
    why += [text.detail.replace("-", " ")] if text.detail and text.state in (FAILED, SKIPPED) else []
    return f"{words} ({', '.join(why)})" if why else words


def _nothing():
    return str(MessagingResponse())


@bp.post("/incoming")
@webhook(safe_twiml=_nothing)
def incoming():
    """A text to an IVR number: the cancel word, opt-out and opt-in words (Twilio answers
    those itself), anything else ignored; the answer is a <Message> only for the cancel word."""
    sender, to = param("From"), param("To")
    if not sender or not to:
        return _nothing()
    # The raw body: a reply is one word, and the length cap of `param` must not make one.
    reply = services().dispatcher.text_reply(to, sender, request.form.get("Body", "")[:1600])
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return str(response)


@bp.post("/status")
@webhook(safe_twiml=_nothing)
def status():
    """A text's delivery report: failed and undelivered are counted (never sent again)."""
    try:
        split_key(param("text"))
    except ValueError:
        return _nothing()
    code = _int(param("ErrorCode"), None) if param("ErrorCode") else None
    services().dispatcher.text_status(param("text"), param("MessageSid") or param("SmsSid"),
                                      param("MessageStatus") or param("SmsStatus"), code)
    return _nothing()
