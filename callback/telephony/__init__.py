"""The Twilio adapter: the only code that talks to Twilio's REST API."""
