"""A holding caller moved to their agent: into the offer's conference, or back in line with
their place, never a goodbye (the REST redirect has already taken them out of the queue)."""
import logging

from callback.domain.rules import CALL
from callback.domain.views import caller_conference
from callback.web import twiml
from callback.web.voice.common import _joined_time, _requeue, _wait_url, bp, param, services, webhook

log = logging.getLogger(__name__)


def _back_in_queue():
    """Back in the queue the URL names, with the place it carries: the join's safe answer
    (no DynamoDB needed, and nothing the request says acted on)."""
    if not param("queue"):
        return twiml.goodbye()  # a URL naming no queue is none of ours: nowhere to put them back
    return _requeue(_joined_time())


def _not_joined():
    """The caller could not be brought to their agent, and the move has already taken them
    out of the queue: back in it with their place; the offer ends and the agent is told,
    or, if DynamoDB fails now too, the sweep does it."""
    try:
        services().dispatcher.caller_not_joined(param("CallSid"), param("agent"), param("attempt"))
    except Exception:
        log.exception("caller %s is back in the queue; their offer %s is left to the sweep",
                      param("CallSid") or "-", param("attempt") or "-")
    return _back_in_queue()


@bp.post("/caller/join")
@webhook(safe_twiml=_back_in_queue)
def caller_join():
    """A holding caller taken out of the queue: into this offer's conference, or back in
    line (same place) when the agent is no longer there for them or the join fails."""
    try:
        return _join()
    except Exception:
        log.exception("join of caller %s failed", param("CallSid") or "-")
        return _not_joined()


def _join():
    svc = services()
    call_sid, agent_id, offer_id = param("CallSid"), param("agent"), param("attempt")
    if param("conference") != caller_conference(call_sid, offer_id):
        return _not_joined()
    if not svc.dispatcher.caller_joining(call_sid, agent_id, offer_id):
        call = svc.storage.get_waiting_call(call_sid)
        if call is None:
            return twiml.goodbye()
        action = svc.config.public_url("/voice/enqueue-done", ivr=call.ivr_name, queue=call.queue_name)
        return twiml.enqueue(call.queue_name, _wait_url(call.ivr_name, call.queue_name), action,
                             greeting="Sorry, the agent is no longer available. You are back "
                                      "on hold and you have kept your place in line.")
    status_callback = svc.config.public_url("/voice/conference", kind=CALL, key=call_sid,
                                            attempt=offer_id, agent=agent_id)
    return twiml.conference(param("conference"), announcement="Connecting you to an agent now.",
                            status_callback=status_callback)
