"""Background work: dispatch, reconciliation with Twilio, the sweep, the hand-off."""
