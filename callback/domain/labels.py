"""Plain words for the codes the app stores: what an admin reads instead of 'dial-error'.

The API keeps the codes; the portal shows these labels. A code missing here still reads
as words ('new-code' becomes 'New code'), so a new outcome never breaks a page, but give
it a label here when you add it. The state machines' tables are written out here too, in
the same plain words, for the README.
"""
from callback.domain import attempts as a

CALLBACK_STATUS_LABELS = {
    "pending": "Pending",
    "dialing": "Calling now",
    "connected": "Connected",
    "completed": "Completed",
    "expired": "Expired",
    "canceled": "Canceled",
    "failed": "Failed",
}

AGENT_STATUS_LABELS = {
    "offline": "Offline",
    "available": "Available",
    "reserved": "Being rung",
    "busy": "On a call",
}

# How an attempt ended (Attempt.outcome).
OUTCOME_LABELS = {
    None: "In progress",
    "connected": "Connected",
    "completed": "Completed",
    "no-answer": "Customer did not answer",
    "busy": "Customer's line was busy",
    "failed": "Call to the customer failed",
    "canceled": "Call to the customer was canceled",
    "machine": "Voicemail answered",
    "hung-up-early": "Customer hung up before the agent joined",
    "no-status": "Customer's call was lost",
    "agent-no-answer": "Agent did not answer",
    "agent-hung-up": "Agent hung up first",
    "agent-leg-lost": "Agent's call was lost",
    "dial-error": "Could not dial",
    "customer-on-line": "Not dialed: the customer was calling in",
    "closed": "Not dialed: the IVR had closed",
    "outside-hours": "Not dialed: outside the customer's hours",
    "account-refused": "Held: Twilio refused the call for the account (see the dashboard)",
    "agent-declined": "Agent did not accept (other key, no key or voicemail)",
    "agent-phone-refused": "Twilio refuses the agent's phone number",
    "number-refused": "Twilio refuses this number",
}

# Why a callback ended (Callback.ended_reason).
ENDED_REASON_LABELS = {
    "completed": "Completed",
    "max-retries": "Max Retries reached",
    "expiration-time": "Expiration Time passed",
    "canceled by admin": "Canceled by an admin",
    "canceled by text": "Canceled by the customer's text reply",
    "number-refused": "Twilio refuses this number",
    "number-not-allowed": ("Not a number this IVR calls (premium rate, no such range, or a region it "
                           "does not call)"),
}

# The wallboard's counters (callback.domain.stats), as the dashboard names them: a number Twilio
# refuses ends a callback; a request for a number already pending is simply not stored.
FIGURE_LABELS = {
    "requested": "Callbacks requested",
    "completed": "Completed",
    "expired": "Expired",
    "canceled": "Canceled",
    "number_refused": "Number refused by Twilio",
    "already_pending": "Not stored: already pending",
    "joined": "Callers who joined the line",
    "answered": "Answered from hold",
    "abandoned": "Hung up while holding",
    "connected": "Connected",
    "first_attempt_connected": "Connected at the first attempt",
    "texts_sent": "Texts sent",
    "texts_failed": "Texts failed (refused, failed or undelivered)",
}


def readable(code):
    """Any code as words: 'agent-leg-lost' → 'Agent leg lost'."""
    text = str(code).replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "—"


def _label(table, code):
    return table[code] if code in table else readable(code)


def status_label(code):
    """A callback's status for people."""
    return _label(CALLBACK_STATUS_LABELS, code)


def outcome_label(code):
    """How an attempt ended, for people."""
    return _label(OUTCOME_LABELS, code)


def ended_reason_label(code):
    """Why a callback ended, for people."""
    return _label(ENDED_REASON_LABELS, code)


def agent_status_label(code):
    """An agent's presence for people."""
    return _label(AGENT_STATUS_LABELS, code)


def figure_label(code):
    """A wallboard counter for people."""
    return _label(FIGURE_LABELS, code)


def _effect_text(effect):
    name = type(effect).__name__
    if isinstance(effect, a.EndAttempt):
        counted = {True: "counted", False: "not counted", None: "counted after a few"}[effect.counted]
        return f"end attempt: {effect.outcome}, {counted}"
    if isinstance(effect, a.HangUp):
        return f"hang up {effect.leg}"
    if isinstance(effect, a.TellAgent):
        return f"tell agent: {effect.notice}"
    if isinstance(effect, a.ReleaseAgent):
        return f"release agent: {effect.why}"
    if isinstance(effect, a.LeaveLine):
        return f"caller leaves the line: {effect.why}"
    return {"DialCustomer": "dial customer", "RefuseNumber": "end callback: number refused",
            "Connect": "connected", "Complete": "completed", "MoveCaller": "move caller to agent",
            "BackInLine": "caller back in line, same place",
            "WarnAgent": "warn agent: maybe a machine, star ends it", "NoteVerdict": "note the verdict",
            "ReadVerdict": "read who answered from Twilio's record of the call"}[name]


def table_markdown(table=a.TABLE):
    """A state-machine table (attempts.TABLE, offers.OFFER_TABLE) as Markdown, for the README
    (a test keeps the two the same)."""
    lines = ["| state | event | next state | effects |", "| --- | --- | --- | --- |"]
    for (state, event), (following, effects) in table.items():
        shown = "; ".join(_effect_text(e) for e in effects)
        if not shown:
            shown = "learn its CallSid" if following == state else "—"
        lines.append(f"| {state} | {event} | {following} | {shown} |")
    return "\n".join(lines)
