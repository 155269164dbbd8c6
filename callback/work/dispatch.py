"""Dispatch: who gets which work next, and carrying out every step of an attempt.

`Dispatcher` is the one object the webhooks, the sweep and the hand-off use
(`services.dispatcher`); each part of it lives in the module named for its subject:

- `choose.py`: choosing work for available agents, claiming it, ringing the agent;
- `effects.py`: applying an event to an attempt or an offer and carrying out its effects;
- `events.py`: the voice webhooks' entry points (answered, pressed, ended, conference);
- `reconcile.py`: asking Twilio what became of calls whose events are late;
- `texts.py`: texts to customers (confirmation, replies, delivery reports), a part of
  `Effects`, which texts when an agent's call to the customer is placed or a callback expires;
- `base.py`: the services they share, the webhook URLs and each state's deadline.

The rules themselves are plain data and functions in `callback/domain/`: the state
machine in `attempts.py`, its view of the records in `views.py`, what dispatch answers in
`answers.py`, the order of work and retries in `rules.py`.
"""
from callback.work.choose import Chooser
from callback.work.erasure import forget_number
from callback.work.events import Events
from callback.work.reconcile import Reconciler


class Dispatcher(Chooser, Events, Reconciler):
    """Matches available agents with work and drives each attempt to its end."""

    def forget_number(self, number):
        """Erase what the app keeps of a number (`work/erasure.py`); NumberBusy (a Conflict)
        while a call to it is in progress."""
        return forget_number(self.storage, self.telephony, number, self.clock.now())
