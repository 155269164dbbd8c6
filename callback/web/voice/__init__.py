"""Twilio voice webhooks: thin handlers that read the request, call the domain, answer TwiML.

One blueprint (`bp`, named "voice", under /voice), its routes in modules named for who is
on the line: `caller` (incoming call to confirmed number), `slots` (a time the caller
chooses), `storing` (the confirmed callback stored), `closed` (a call while the IVR is closed),
`voicemail` and `voicemail_hooks` (a message instead of holding), `agent`, `customer`, `events`
(Twilio's status callbacks) and `status` (the IVR numbers' own status callback). `common`
holds what they share: the signature check, the safe-TwiML error handler, parameters and
routing.
"""
from callback.web.voice import (  # noqa: F401 (routes)
    agent,
    caller,
    closed,
    customer,
    events,
    join,
    slots,
    status,
    voicemail_hooks,
)
from callback.web.voice.common import bp

__all__ = ["bp"]
