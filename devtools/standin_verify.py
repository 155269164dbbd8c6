"""Twilio Verify v2 in the local stand-in (devtools.standin): codes sent and checked as
Verify does it, on the stand-in's clock.

- `POST /v2/Services/{ServiceSid}/Verifications` (To, Channel): a 6-digit code for 10
  minutes; asking again while it is pending sends the same code again, 5 sends at most
  (then 429, 60203, until it expires). To must be E.164 (else 400, 60200); Channel sms, call,
  email or whatsapp (else 60200); sms to a `landline` is 400, 60205; a `blocked` number is
  refused by the fraud guard, 403, 60410.
- `POST /v2/Services/{ServiceSid}/VerificationCheck` (To, Code): the right code answers
  `approved` (valid true), once: the verification is over; a wrong one answers `pending`
  (valid false), 5 times at most, then 429, 60202; no pending verification (none, expired,
  approved) is 404, 20404.

Tests read the code sent (`last_code`), as does a person running `make run` (`GET
/_standin/verify?to=+1…`).
"""
import re
import secrets
import threading
from datetime import timedelta

from flask import jsonify, request

LIFETIME = timedelta(minutes=10)
MAX_SENDS = 5
MAX_CHECKS = 5
CHANNELS = ("sms", "call", "email", "whatsapp")
_E164 = re.compile(r"\+[1-9]\d{7,14}")


class VerifyStandIn:
    """Verifications by (service, number), with the stand-in's clock."""

    def __init__(self, now):
        self.now = now
        self.lock = threading.Lock()
        self.verifications = {}  # (ServiceSid, To) -> the latest verification
        self.landlines = set()
        self.blocked = set()
        self.sent = []  # (To, Channel, Code), every code sent

    def reset(self):
        """Forget every verification and number setting."""
        with self.lock:
            self.verifications.clear()
            self.landlines.clear()
            self.blocked.clear()
            self.sent.clear()

    def last_code(self, to):
        """The code last sent to `to`, or None."""
        with self.lock:
            return next((code for number, _channel, code in reversed(self.sent) if number == to), None)

    def channels_to(self, to):
        """The channels codes went to `to` by, in order."""
        with self.lock:
            return [channel for number, channel, _code in self.sent if number == to]

    def _live(self, service_sid, to):
        found = self.verifications.get((service_sid, to))
        if found and found["status"] == "pending" and self.now() - found["created"] < LIFETIME:
            return found
        return None

    def send(self, service_sid, to, channel):
        """(status, payload or (code, message)) of a Verifications create."""
        if not to or not _E164.fullmatch(to):
            return 400, (60200, "Invalid parameter `To`")
        if channel not in CHANNELS:
            return 400, (60200, "Invalid parameter `Channel`")
        if to in self.blocked:
            return 403, (60410, "Verification delivery attempt blocked")
        if channel == "sms" and to in self.landlines:
            return 400, (60205, "SMS is not supported by landline phone number")
        with self.lock:
            found = self._live(service_sid, to)
            if found is None:
                code = f"{secrets.randbelow(10**6):06d}"
                found = {"sid": "VE" + secrets.token_hex(16), "to": to, "code": code,
                         "created": self.now(), "status": "pending", "sends": [], "checks": 0}
                self.verifications[(service_sid, to)] = found
            if len(found["sends"]) >= MAX_SENDS:
                return 429, (60203, "Max send attempts reached")
            found["channel"] = channel
            found["sends"].append({"channel": channel, "time": self.now().isoformat()})
            self.sent.append((to, channel, found["code"]))
            return 201, found

    def check(self, service_sid, to, code):
        """(status, payload or (code, message)) of a VerificationCheck create."""
        if not to or not code:
            return 400, (60200, "Invalid parameter")
        with self.lock:
            found = self._live(service_sid, to)
            if found is None:
                return 404, (20404, "The requested resource was not found")
            if found["checks"] >= MAX_CHECKS:
                return 429, (60202, "Max check attempts reached")
            if code == found["code"]:
                found["status"] = "approved"
            else:
                found["checks"] += 1
            return 200, found


def add_routes(app, verify, error):
    """Verify's two routes, and the code for people, on the stand-in's Flask app."""

    def payload(service_sid, found):
        return {"sid": found["sid"], "service_sid": service_sid,
                "account_sid": request.authorization.username, "to": found["to"],
                "channel": found["channel"], "status": found["status"],
                "valid": found["status"] == "approved", "amount": None, "payee": None,
                "lookup": {"carrier": None}, "send_code_attempts": found["sends"],
                "date_created": found["created"].isoformat(), "date_updated": verify.now().isoformat(),
                "url": f"https://verify.twilio.com/v2/Services/{service_sid}/Verifications/{found['sid']}"}

    def answer(service_sid, status, found):
        if isinstance(found, tuple):
            return error(status, *found)
        response = jsonify(payload(service_sid, found))
        response.status_code = status
        return response

    @app.post("/v2/Services/<service_sid>/Verifications")
    def create_verification(service_sid):
        """POST /v2/Services/{Sid}/Verifications: send a code."""
        status, found = verify.send(service_sid, request.form.get("To"), request.form.get("Channel"))
        return answer(service_sid, status, found)

    @app.post("/v2/Services/<service_sid>/VerificationCheck")
    def check_verification(service_sid):
        """POST /v2/Services/{Sid}/VerificationCheck: check a code."""
        status, found = verify.check(service_sid, request.form.get("To"), request.form.get("Code"))
        return answer(service_sid, status, found)

    @app.get("/_standin/verify")
    def standin_verify():
        """The code last sent to ?to= (for a person trying the public page with `make run`)."""
        return jsonify(to=request.args.get("to"), code=verify.last_code(request.args.get("to")))
