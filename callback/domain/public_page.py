"""The public callback page (issue #34): its per-IVR settings, the number a customer types,
the signed tokens the page hands out, the cheap challenge before a code is sent, and plain
words for Twilio Verify's answers. Plain Python; time and secrets are passed in.

A page that sends a code to whatever number is typed is the classic SMS-pumping target, so
nothing is sent before: the challenge is answered (below), the number passes the IVR's own
rules (valid, not premium-rate, inside its regions), and the limits per address, per number
and per hour for the IVR all have room (callback.domain.public_limits).

The challenge. A signed, expiring, single-use token; the browser answers it with a small
proof of work (a counter whose SHA-256 with the token starts with CHALLENGE_BITS zero bits:
about 65,000 hashes, a second or so in a phone's browser while the person types), sent no
sooner than MIN_FILL after the page was served. Without JavaScript the answer is a wait
instead: the form is taken FALLBACK_WAIT after the page was served. A hidden field people
never fill (a honeypot) refuses naive form-filling bots. No third-party CAPTCHA: no call to
another service from the page (none is reachable in tests) and nothing about the customer
handed to one. It is a speed bump, not a wall: a script pays a token fetch, a wait or a
little CPU per send, and the limits and Verify's fraud guard bound what it can reach.
"""
import base64
import hashlib
import hmac
import json
import secrets
from datetime import timedelta

# name: (label, help text), merged into the settings' BOOLEAN_FIELDS.
BOOLEAN_FIELDS = {
    "public_page_enabled": ("Public Callback Page",
                            "A web page (/public/<IVR name>) where customers ask for a callback without "
                            "calling: they prove their number with a code from Twilio Verify (the "
                            "deployment's TWILIO_VERIFY_SERVICE_SID). Off: the page does not exist (404)."),
}
DEFAULT_CODES_PER_HOUR = 20
# name: (label, lowest, highest, help text), merged into the settings' INTEGER_FIELDS.
INTEGER_FIELDS = {
    "public_codes_per_hour": ("Public Page Codes Per Hour", 1, 1000,
                              "The most codes the public page sends per clock hour for this IVR, "
                              "whoever asks: the bound on what a flood of requests can cost."),
}
FIELDS = (*BOOLEAN_FIELDS, *INTEGER_FIELDS)

CHALLENGE_BITS = 16
MIN_FILL = timedelta(seconds=3)
FALLBACK_WAIT = timedelta(seconds=15)
CHALLENGE_LIFETIME = timedelta(minutes=20)
# Verify's code lives 10 minutes: the page's token for entering it lives as long.
CODE_LIFETIME = timedelta(minutes=10)
HONEYPOT_FIELD = "website"

CHALLENGE = "challenge"
PENDING = "pending"

# Why a request was refused before anything was sent (the page says it in plain words).
CHALLENGE_PROBLEMS = {
    "missing": "Please try again: the form was incomplete.",
    "forged": "Please try again: the form was not the one we sent.",
    "expired": "The form was open too long. Please try again.",
    "too-soon": "Please take a moment, then send the form again.",
    "wrong": "Please try again: your browser did not finish its check.",
    "used": "That form was already sent. Please use the new one.",
    "bot": "Please try again.",
}


def page_secret(secret_key):
    """The key the page signs its tokens with: derived from SECRET_KEY for this purpose
    only, so no token of the page is ever a valid session cookie or CSRF token."""
    return hmac.new(str(secret_key).encode(), b"callback public page", hashlib.sha256).digest()


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret, purpose, payload, now):
    """`payload` (a small JSON object) signed for `purpose`, stamped with `now`."""
    body = _b64(json.dumps({**payload, "p": purpose, "t": int(now.timestamp())},
                           separators=(",", ":"), sort_keys=True).encode())
    mac = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unsign(secret, purpose, token, now, lifetime):
    """(payload, None) for a token this page signed for `purpose`, younger than `lifetime`;
    else (None, "missing" | "forged" | "expired")."""
    if not token or not isinstance(token, str) or len(token) > 2048 or token.count(".") != 1:
        return None, "missing" if not token else "forged"
    body, mac = token.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None, "forged"
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None, "forged"
    if not isinstance(payload, dict) or payload.get("p") != purpose or not isinstance(payload.get("t"), int):
        return None, "forged"
    age = now.timestamp() - payload["t"]
    if age < -60 or age > lifetime.total_seconds():
        return None, "expired"
    return payload, None


def issue_challenge(secret, ivr_name, now, bits=CHALLENGE_BITS):
    """A fresh challenge token for a form of `ivr_name`'s page."""
    return sign(secret, CHALLENGE, {"ivr": ivr_name, "n": secrets.token_hex(12), "b": int(bits)}, now)


def leading_zero_bits(digest):
    """How many zero bits `digest` starts with."""
    count = 0
    for byte in digest:
        if byte:
            return count + 8 - byte.bit_length()
        count += 8
    return count


def solves(token, answer, bits):
    """True when SHA-256 of "<token>:<answer>" starts with `bits` zero bits."""
    if not answer or len(answer) > 20 or not answer.isdigit():
        return False
    return leading_zero_bits(hashlib.sha256(f"{token}:{answer}".encode()).digest()) >= bits


def solve(token, bits):
    """The first answer to a challenge (what the page's script does, for tests and tools)."""
    answer = 0
    while not solves(token, str(answer), bits):
        answer += 1
    return str(answer)


def check_challenge(secret, ivr_name, token, answer, honeypot, now):
    """(nonce, None) for an answered challenge of this IVR's page, to be spent once; else
    (None, why) with why a key of CHALLENGE_PROBLEMS."""
    if honeypot:
        return None, "bot"
    payload, problem = unsign(secret, CHALLENGE, token, now, CHALLENGE_LIFETIME)
    if problem:
        return None, problem
    if payload.get("ivr") != ivr_name or not isinstance(payload.get("n"), str):
        return None, "forged"
    waited = now.timestamp() - payload["t"]
    if answer:
        if waited < MIN_FILL.total_seconds():
            return None, "too-soon"
        if not solves(token, answer, int(payload.get("b", CHALLENGE_BITS))):
            return None, "wrong"
    elif waited < FALLBACK_WAIT.total_seconds():
        return None, "too-soon"
    return payload["n"], None


def number_from_form(text):
    """The E.164 form of a North American number as people type it ("(212) 555-1234",
    "212.555.1234", "+1 212 555 1234", "1-212-555-1234"), or None; whether the IVR calls
    it is for the IVR's rules to say."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    kept = "".join(c for c in text.strip() if c not in " -.()\u00a0")
    if kept.startswith("+1"):
        kept = kept[2:]
    elif kept.startswith("1") and len(kept) == 11:
        kept = kept[1:]
    if len(kept) != 10 or not kept.isascii() or not kept.isdigit():
        return None
    return "+1" + kept


def code_from_form(text):
    """A Verify code as typed (4 to 10 digits, spaces ignored), or None."""
    code = "".join((text or "").split())
    return code if code.isascii() and code.isdigit() and 4 <= len(code) <= 10 else None


# Verify's answers, in the words the customer reads.
SENT = {"sms": "We texted a code to {number}.", "call": "We are calling {number} to read you a code."}
VERIFY_WORDS = {
    60200: "We can't send a code to that number. Please check it.",
    60203: "We've sent that number too many codes. Please wait 10 minutes and try again.",
    60202: "That was too many wrong codes. Please wait 10 minutes and ask for a new code.",
    60410: "We can't send a code to that number right now.",
    20404: "That code has expired or was already used. Please ask for a new one.",
}
COULD_NOT_SEND = "We couldn't send a code just now. Please try again in a few minutes."
WRONG_CODE = "That code isn't right. Please check it and try again."
