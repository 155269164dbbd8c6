"""The web surface: Twilio's voice webhooks, the admin pages, the JSON API, sign-in, TwiML,
and the health check."""
