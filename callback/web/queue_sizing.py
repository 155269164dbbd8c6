"""Right after an IVR is saved in the portal: its Twilio queues sized (MaxSize), and the admin
told about any queue Twilio did not size."""
from flask import current_app, flash


def saved_with_queues_sized(ivr):
    """Say the IVR is saved, then create or update Twilio's queue of each of its queues with
    its size; a queue Twilio did not size is flashed as an error (the IVR is saved either way)."""
    flash(f"IVR {ivr.name} saved.", "ok")
    sized = current_app.extensions["callback"].telephony.size_queues(ivr.queues)
    for queue in sized:
        if queue.failed:
            flash(f"Twilio did not take the size of queue {queue.name} ({queue.error}): it keeps "
                  "its old size until the IVR is saved again or `flask --app app size-queues` runs.",
                  "error")
    return sized
