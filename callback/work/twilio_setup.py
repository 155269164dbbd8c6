"""Twilio set up by one command: every number of every IVR points at this deployment.

`flask twilio-setup` (and `make twilio-setup STAGE=…`) reads each IVR number through
Twilio's IncomingPhoneNumbers API and sets its Voice URL, Voice Fallback URL and status
callback (all POST) to what this deployment serves, and, for an IVR that texts its
customers, the number's SMS URL (POST), where their replies come. It prints what it changes;
`--dry-run` changes nothing; a second run changes nothing more. A number the account does
not own is a clear error. A number bound to a TwiML App (VoiceApplicationSid) or a SIP
trunk (TrunkSid) ignores its own URLs: it is left alone, and said so, unless `--take-over`
clears the binding.
"""
from dataclasses import dataclass, field

from callback.domain.numbers import for_people


@dataclass(frozen=True)
class NumberSetup:
    """What set-up found and does for one number."""

    phone_number: str
    ivr_name: str
    changes: dict = field(default_factory=dict)  # field -> (now, wanted)
    problem: str | None = None
    applied: bool = False

    def lines(self):
        """What an operator reads about this number."""
        head = f"{for_people(self.phone_number)} ({self.ivr_name})"
        if self.problem:
            return [f"{head}: {self.problem}"]
        if not self.changes:
            return [f"{head}: already set up"]
        verb = "set" if self.applied else "would set"
        return [f"{head}: {verb} {name} {before or '(empty)'} -> {after or '(cleared)'}"
                for name, (before, after) in self.changes.items()]


def wanted_settings(config):
    """The number settings this deployment needs (the fallback only when one is configured:
    it must not depend on this deployment, so the app does not invent one)."""
    wanted = {"voice_url": config.public_url("/voice/incoming"), "voice_method": "POST",
              "status_callback": config.public_url("/voice/caller/status"), "status_callback_method": "POST"}
    if config.VOICE_FALLBACK_URL:
        wanted.update(voice_fallback_url=config.VOICE_FALLBACK_URL, voice_fallback_method="POST")
    return wanted


def wanted_for_ivr(config, ivr, wanted):
    """`wanted`, plus the SMS URL when the IVR texts its customers (replies come to it); an
    IVR without texts leaves the number's SMS URL as it is."""
    if not ivr.settings.sms_enabled:
        return wanted
    return {**wanted, "sms_url": config.public_url("/sms/incoming"), "sms_method": "POST"}


def plan_number(phone_number, ivr_name, current, wanted, take_over=False):
    """What to change on one number (pure: `current` is Twilio's record, or None)."""
    if current is None:
        return NumberSetup(phone_number, ivr_name, problem="the Twilio account does not own this number")
    bindings = {name: sid for name, sid in (("voice_application_sid", current.voice_application_sid),
                                            ("trunk_sid", current.trunk_sid)) if sid}
    if bindings and not take_over:
        bound = ", ".join(f"{'TwiML App' if n == 'voice_application_sid' else 'SIP trunk'} {sid}"
                          for n, sid in bindings.items())
        return NumberSetup(phone_number, ivr_name, problem=f"bound to {bound}, so Twilio ignores its Voice URL; "
                                                           "left alone (--take-over clears the binding)")
    changes = {name: (getattr(current, name), value) for name, value in wanted.items()
               if (getattr(current, name) or "") != value}
    changes.update({name: (sid, "") for name, sid in bindings.items()})
    return NumberSetup(phone_number, ivr_name, changes)


def set_up_numbers(storage, telephony, config, dry_run=False, take_over=False):
    """Plan (and unless `dry_run`, apply) the set-up of every IVR number; returns the plans."""
    wanted = wanted_settings(config)
    results = []
    for ivr in sorted(storage.list_ivrs(), key=lambda i: i.name.lower()):
        for phone_number in ivr.numbers:
            current = telephony.incoming_number(phone_number)
            plan = plan_number(phone_number, ivr.name, current, wanted_for_ivr(config, ivr, wanted),
                               take_over)
            if plan.changes and not plan.problem and not dry_run:
                telephony.configure_number(current.sid, {name: after for name, (_, after) in plan.changes.items()})
                plan = NumberSetup(plan.phone_number, plan.ivr_name, plan.changes, applied=True)
            results.append(plan)
    return results
