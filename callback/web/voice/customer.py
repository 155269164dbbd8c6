"""The customer of a callback on the line: they picked up."""
from callback.web import twiml
from callback.web.voice.common import bp, param, services, webhook


@bp.post("/customer/answer")
@webhook(safe_twiml=lambda: twiml.goodbye("We are sorry, we could not connect your callback. "
                                          "We will try again. Goodbye."))
def customer_answer():
    """The customer picked up (Twilio already ran answering-machine detection)."""
    answer = services().dispatcher.customer_answered(param("callback"), param("attempt"),
                                                     param("CallSid"), param("AnsweredBy"))
    if answer.hang_up:
        return (twiml.notice(answer.announcement, speech=answer.speech) if answer.announcement
                else twiml.hangup())
    return twiml.conference(answer.conference, announcement=answer.announcement,
                            status_callback=answer.status_callback, speech=answer.speech)
