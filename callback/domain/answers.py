"""What dispatch hands back: the offer made to an agent, what an event did to its attempt,
what an agent or customer who picked up hears and does, and the agent's spoken notices
(the words of the notice a step tells the agent, read by the notice webhook).

Plain Python: no Flask, Twilio or DynamoDB here.
"""
from dataclasses import dataclass

from callback.domain.settings import DEFAULT_SPEECH

# What the agent hears when a step's TellAgent, or their own webhook, ends their part.
NOTICES = {
    "retry": "The customer did not answer. The callback will be retried later. Goodbye.",
    "expired": "The customer did not answer. That was the last attempt; the callback has "
               "ended. Goodbye.",
    "caller-gone": "The caller hung up before you could be connected. Goodbye.",
    "stale": "This call is no longer waiting for you. Goodbye.",
    "caller-back-in-line": "The caller could not be connected to you, so they are back in line "
                           "with their place. Goodbye.",
    "dial-error": "The customer could not be dialed. The callback will be tried again. Goodbye.",
    "refused": "The customer's number cannot be called. The callback has ended. Goodbye.",
    "account": "Twilio would not place the call to the customer because of a setting of our "
               "account. The callback is kept and an administrator has been alerted. Goodbye.",
    "customer-on-line": "The customer has just called in and is waiting in the queue, so they "
                        "were not dialed. Their callback keeps its place. Goodbye.",
    "closed": "The contact center has closed, so the customer was not dialed. Their callback keeps "
              "its place and comes when we open. Goodbye.",
    "outside-hours": "It is now outside the customer's calling hours where they are, so they were "
                     "not dialed. Their callback keeps its place until their hours open. Goodbye.",
    "declined": "You did not accept the call, so it goes to another agent. You are now set "
                "away; set yourself available when you are ready. Goodbye.",
}


@dataclass(frozen=True)
class Offer:
    """Work handed to an agent: their phone is ringing (sid None: maybe, the request timed out)."""

    agent_id: str
    kind: str
    key: str
    agent_call_sid: str | None


@dataclass(frozen=True)
class AgentAnswer:
    """What an agent who picked up, or pressed a key, should hear and do."""

    conference: str | None = None
    announcement: str | None = None
    notice: str | None = None
    status_callback: str | None = None
    whisper: str | None = None
    accept_url: str | None = None
    speech: tuple = DEFAULT_SPEECH
    # Star leaves the conference (asynchronous detection: how a warned agent ends a machine).
    hangup_on_star: bool = False
    # A voicemail: what 1 does ("hear it and call back"), and the message played before the join.
    accept: str = "accept"
    play_url: str | None = None


@dataclass(frozen=True)
class CustomerAnswer:
    """What a customer who picked up should hear and do."""

    conference: str | None
    announcement: str | None = None
    hang_up: bool = False
    status_callback: str | None = None
    speech: tuple = DEFAULT_SPEECH


@dataclass(frozen=True)
class Outcome:
    """What an event did: the attempt's state after it, and whether an agent was freed."""

    state: str
    applied: bool
    freed_agent: bool = False
    callback_status: str | None = None
    notice: str | None = None  # what the agent was (or, in their own webhook, is to be) told

