"""The fallback function: what Twilio hears when the app cannot answer.

Twilio requests a number's Voice Fallback URL "in the event of a fatal error while
executing your call": the app's answer failed, was not TwiML, or took over 15 s. So the
fallback cannot be the app itself: it is deployed as a second, minimal function from the
same package (the `*-fallback` stages of zappa_settings.json, `app_function`
`callback.web.fallback.app`). It reads nothing (no DynamoDB, no secret, no Twilio REST
call) and answers at once, so it stands when the app's storage, secrets or code do not:

- a caller whose hold loop or callback entry failed (Twilio's `ErrorUrl` names their
  queue) goes back into that queue: Twilio's own hold music, the app's record of their
  place in line untouched, so an agent the app offers them to still finds them;
- anyone else hears an apology, then the contact center's backup line when one is set
  (`FALLBACK_DIAL_NUMBER`), else goodbye.

Every request is counted (`FallbackUsed`, the alarm "Fallback used"). A request that is
not Twilio's gets the same harmless TwiML: answering it makes Twilio do nothing.
"""
import os
from urllib.parse import parse_qs, urlsplit

from flask import Flask, Response, request
from twilio.twiml.voice_response import VoiceResponse

from callback import metrics

APOLOGY = "We are sorry, we are having trouble right now."
BACK_IN_LINE = "You are still in line and you have kept your place. Please hold."
# The app's routes of a caller on hold or keying in a callback number (their queue known).
HOLDING_ROUTES = ("/voice/wait", "/voice/offer", "/voice/number", "/voice/confirm", "/voice/enqueue-done",
                  "/voice/caller/join")
MAX_NAME = 64


def queue_of(error_url):
    """The queue a failed request of the hold loop named, or None."""
    parts = urlsplit(error_url or "")
    if not parts.path.endswith(HOLDING_ROUTES):
        return None
    name = (parse_qs(parts.query).get("queue") or [""])[0].strip()
    return name if 0 < len(name) <= MAX_NAME else None


def fallback_twiml(error_url, backup_number=None):
    """Back into the caller's queue when their hold loop failed; else an apology and the
    backup line (or goodbye)."""
    response = VoiceResponse()
    queue = queue_of(error_url)
    if queue:
        response.say(f"{APOLOGY} {BACK_IN_LINE}")
        response.enqueue(queue)
        return str(response)
    if backup_number:
        response.say(f"{APOLOGY} Connecting you to another line.")
        response.dial(backup_number)
        return str(response)
    response.say(f"{APOLOGY} Please call again in a few minutes. Goodbye.")
    response.hangup()
    return str(response)


def create_fallback_app(environ=None):
    """The fallback function's app: one route for every path Twilio may request."""
    environ = os.environ if environ is None else environ
    app = Flask(__name__)
    backup = environ.get("FALLBACK_DIAL_NUMBER", "").strip() or None
    # Counted under the main function's name, where the alarm looks.
    on_lambda = bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    metrics.configure(environ.get("METRICS") == "on" or (on_lambda and environ.get("METRICS") != "off"),
                      environ.get("METRICS_FUNCTION") or environ.get("AWS_LAMBDA_FUNCTION_NAME"))

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path):
        """Safe TwiML for whatever failed."""
        error_url = request.values.get("ErrorUrl", "")
        metrics.emit({metrics.FALLBACK_USED: 1}, route="fallback", ErrorCode=request.values.get("ErrorCode"),
                     CallSid=request.values.get("CallSid", "")[:64], failed=urlsplit(error_url).path)
        return Response(fallback_twiml(error_url, backup), mimetype="text/xml")

    return app


app = create_fallback_app()
