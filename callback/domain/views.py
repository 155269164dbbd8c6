"""The state machine's view of what storage holds: an attempt of a callback, or an offer
of a holding caller, as the `attempts.Attempt` that `attempts.apply` reads; and the name
of the conference a holding caller meets their agent in.

Plain Python: no Flask, Twilio or DynamoDB here.
"""
from callback.domain import attempts as a
from callback.domain import detection
from callback.domain import records as m

# Phases written before the attempt table existed, as its states.
_OLD_PHASES = {"agent": a.AGENT_RINGING, "customer": a.CUSTOMER_RINGING}


def attempt_view(cb, attempt_id):
    """The state machine's view of one attempt of a callback (None: no such attempt)."""
    attempt = cb.attempt(attempt_id) if attempt_id else None
    if attempt is None:
        return None
    if cb.attempt_id == attempt_id and cb.status in (m.DIALING, m.CONNECTED):
        connected = cb.phase if cb.phase in (a.MACHINE_HEARD, a.AWAITING_VERDICT) else a.CONNECTED
        state = connected if cb.status == m.CONNECTED else _OLD_PHASES.get(cb.phase, cb.phase)
        return a.Attempt(cb.callback_id, attempt_id, state, cb.agent_call_sid, cb.customer_call_sid,
                         verdict_awaited=cb.detection == detection.ASYNC and not cb.answered_by)
    return a.Attempt(cb.callback_id, attempt_id, a.ENDED, attempt.agent_call_sid,
                     attempt.customer_call_sid)


def caller_conference(call_sid, offer_id):
    """The conference a holding caller meets the agent of this offer in: one room per offer,
    so the agent of a later offer never meets the one of an earlier offer still in theirs."""
    return f"call-{call_sid}-{offer_id}"


def offer_view(call_sid, call, offer_id):
    """The state machine's view of one offer of a holding caller (ended once the caller is
    served, gone, back in line or in another offer); `call` is their record or None."""
    if call is not None and offer_id and call.offer_id == offer_id and call.status == m.CONNECTING:
        return a.Attempt(call_sid, offer_id, call.phase or a.AGENT_RINGING, call.agent_call_sid, call_sid)
    return a.Attempt(call_sid, offer_id, a.ENDED, customer_call_sid=call_sid)

