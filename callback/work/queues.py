"""Twilio's queues sized on purpose: each queue the app uses gets the MaxSize its IVR sets.

<Enqueue> creates a queue on first use with Twilio's default size (1,000) and turns away
every caller past it. So whenever an IVR is saved (the portal and the API), and whenever an
operator runs `flask --app app size-queues` or `flask --app app twilio-setup`, every queue
is created or updated through the Queues API with its own `max_size`.
"""


def size_every_queue(services):
    """Every queue of every IVR created or updated in Twilio with its MaxSize; returns each
    queue's `QueueSize` (a failure is that queue's outcome, never raised)."""
    return services.telephony.size_queues([q for ivr in services.storage.list_ivrs() for q in ivr.queues])
