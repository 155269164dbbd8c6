"""Twilio messaging webhooks: a customer's text to an IVR number, and the status callback of
the texts the app sends. Signed like every webhook (the voice routes' check); each answers
messaging TwiML, an empty <Response/> on any failure, never an HTML 500."""
import logging

from flask import Blueprint, request
from twilio.twiml.messaging_response import MessagingResponse

from callback.domain.texts import split_key
from callback.web.voice.common import _int, param, services, webhook

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


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
