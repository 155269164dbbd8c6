"""What an agent's own page shows, as plain data: their presence, the work being offered
to them now, and their day (the work they ended since the center's midnight, with counts).
Times are in the center's zone, as the portal shows them.

How much of the customer an agent sees: the work offered now shows the number in full,
with the name and reason a CRM gave — the agent is about to speak to that person (the
whisper reads the number out too) and may need to greet them or confirm who they are.
The day's history shows numbers masked, as the logs do: it is a list of what was done,
kept on a phone's screen, and its store never holds a full number.
"""
from callback.domain import labels, worklog
from callback.domain import records as m
from callback.domain.numbers import for_people

# The reasons an agent gives for stepping away, offered as a list; "Other" asks for words.
AWAY_REASONS = ("Break", "Lunch", "Meeting", "Training", "Coaching", "End of shift")
OTHER = "Other"
REASON_MAX_LENGTH = 60


def away_reason(choice, text):
    """(the away reason to store, None) from the list's choice and the free text, or
    (None, error message) when they make no reason."""
    printable = "".join(c if c.isprintable() else " " for c in str(text or "")[:1000])
    words = " ".join(printable.split())[:REASON_MAX_LENGTH]
    if choice in AWAY_REASONS:
        return (f"{choice}: {words}" if words else choice), None
    if choice == OTHER:
        return (words, None) if words else (None, "Say why you are away, in a few words.")
    return None, "Choose why you are away."


def _clock(moment, tz):
    return moment.astimezone(tz).strftime("%H:%M") if moment else None


def presence(agent, tz):
    """The agent's presence as their page says it."""
    away = agent.status == m.OFFLINE
    return {"agent_id": agent.agent_id, "name": agent.name, "status": agent.status,
            "label": "Away" if away else labels.agent_status_label(agent.status),
            "away_reason": agent.away_reason if away else None,
            "since": _clock(agent.status_changed_at, tz), "queues": list(agent.queues)}


def callback_work(agent, cb, max_retries, tz):
    """A callback (or voicemail) the agent is rung for or on: who, which try, the tries before."""
    earlier = [{"outcome": labels.outcome_label(a.outcome), "started": _clock(a.started_at, tz),
                "ended": _clock(a.ended_at, tz), "by_you": a.agent_id == agent.agent_id}
               for a in cb.history if a.attempt_id != agent.attempt_id]
    return {"kind": worklog.VOICEMAIL if cb.kind == worklog.VOICEMAIL else worklog.CALLBACK,
            "queue": cb.queue_name, "number": for_people(cb.number), "name": cb.name, "reason": cb.reason,
            "attempt": cb.attempts + 1, "of": max_retries, "requested": _clock(cb.requested_at, tz),
            "recording_seconds": cb.recording_seconds, "earlier": earlier}


def holding_work(call, now, tz):
    """A holding caller the agent is rung for: their queue, number and how long they waited."""
    if call is None:  # moved into the agent's conference: the line keeps no record of them
        return {"kind": worklog.HOLDING, "queue": None, "number": None, "waited_seconds": None}
    return {"kind": worklog.HOLDING, "queue": call.queue_name, "number": for_people(call.caller),
            "waited_seconds": max(0, int((now - call.joined_at).total_seconds())),
            "joined": _clock(call.joined_at, tz)}


def day(entries, tz):
    """The day's work, newest first, and its counts."""
    counts = worklog.day_counts(entries)
    rows = [{"kind": e.kind, "queue": e.queue_name, "number": e.number, "outcome": e.outcome,
             "outcome_label": (worklog.OFFER_OUTCOME_LABELS.get(e.outcome, labels.readable(e.outcome))
                               if e.kind == worklog.HOLDING else labels.outcome_label(e.outcome)),
             "started": _clock(e.started_at, tz), "ended": _clock(e.ended_at, tz),
             "talk_seconds": e.talk_seconds}
            for e in sorted(entries, key=lambda e: e.ended_at, reverse=True)]
    return {"work": rows,
            "counts": [{"name": name, "label": worklog.COUNT_LABELS[name], "count": counts[name]}
                       for name in worklog.COUNTS]}
