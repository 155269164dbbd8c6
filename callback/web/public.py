"""The public callback page (issue #34): `/public/<IVR name>`, where a customer asks for a
callback without calling, on IVRs whose "Public Callback Page" setting is on (404 otherwise).

Three steps: the form (queue, number, optional name) with its challenge; a code sent by
Twilio Verify (`/code`), only once the challenge is answered, the number passes the IVR's own
rules and the limits have room; the code checked (`/check`), and then the callback stored
through the API's own create path (`api_callbacks.create_checked`: same rules, one pending
callback per number and queue, place in line = the time of the request, the confirmation
text when the IVR texts). The number is said to be in line already only after it is proven.
Only these routes take the public limits: Twilio's webhooks never do.
"""
import logging
import uuid
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, render_template, request

from callback.domain import hours as h
from callback.domain import public_limits as limits
from callback.domain import public_page as pp
from callback.domain import records as m
from callback.domain.callback_requests import check_request
from callback.domain.numbers import for_people, mask
from callback.storage import StorageError
from callback.telephony.rest import TelephonyError
from callback.telephony.verify import APPROVED, CALL, LANDLINE, SMS, Verify, VerifyError
from callback.web.api import ApiError
from callback.web.api_callbacks import create_checked
from callback.web.auth import client_address

log = logging.getLogger(__name__)
bp = Blueprint("public", __name__, url_prefix="/public")

# The admin pages' policy, with one script of our own: the challenge's proof of work.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
RETRY_AFTER_SECONDS = 60
NUMBER_PROBLEM = "We can't call that number back. Please check it, or enter another ten-digit number."


def services():
    """The app's wired services."""
    return current_app.extensions["callback"]


@bp.before_request
def refuse_without_secret_key():
    """No SECRET_KEY, no CSRF tokens and no signed challenges: the page says it is unavailable."""
    if not current_app.secret_key:
        return _message(None, "This page is not available right now.", 503)
    return None


@bp.after_request
def page_policy(response):
    """The page's own Content Security Policy (its challenge script), before the app's default."""
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.errorhandler(StorageError)
def storage_unavailable(exc):
    """DynamoDB failed (throttled, unreachable): nothing is sent; try again shortly."""
    log.exception("public page: storage unavailable")
    return _message(None, "Something went wrong on our side. Please try again in a minute.", 503,
                    {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _ivr(name):
    """The IVR whose page this is; 404 when there is none or its page is off."""
    ivr = services().directory.ivr(name)
    if ivr is None or not ivr.settings.public_page_enabled:
        abort(404)
    return ivr


def _queues(ivr):
    """The queues a customer may ask to be called back from."""
    return [q for q in ivr.queues if q.callback_enabled] if ivr.settings.callback_enabled else []


def _secret():
    return pp.page_secret(current_app.secret_key)


def _message(ivr, text, status=200, headers=None, again=False):
    return render_template("public_message.html", ivr=ivr, company=_company(ivr), text=text,
                           again=again), status, headers or {}


def _company(ivr):
    return ivr.settings.announced_name(ivr.name) if ivr else ""


def _hours_note(ivr, now):
    """(open for requests, what the page says about the hours), from the IVR's open hours."""
    hours = ivr.settings.hours
    if h.is_open(hours, now):
        return True, None
    opening = h.next_opening(hours, now)
    when = h.spoken_moment(hours, now, opening) if opening else None
    if not hours.closed_callbacks or opening is None:
        return False, f"We're closed now{f'. We open again {when}' if when else ''}. Please come back then."
    return True, f"We're closed now: we'll call you after we open, {when}."


def _form(ivr, values=None, errors=None, status=200):
    """The request form, with a fresh challenge."""
    svc = services()
    now = svc.clock.now()
    open_now, note = _hours_note(ivr, now)
    if not open_now:
        return _message(ivr, note)
    return render_template(
        "public_request.html", ivr=ivr, company=_company(ivr), queues=_queues(ivr), note=note,
        values=values or {}, errors=errors or {}, honeypot=pp.HONEYPOT_FIELD,
        challenge=pp.issue_challenge(_secret(), ivr.name, now, svc.config.PUBLIC_CHALLENGE_BITS)), status


def _code_page(ivr, pending, number, channel, error=None, status=200):
    """The page where the code is typed, and where another can be asked for by a call."""
    svc = services()
    challenge = pp.issue_challenge(_secret(), ivr.name, svc.clock.now(), svc.config.PUBLIC_CHALLENGE_BITS)
    return render_template(
        "public_code.html", ivr=ivr, company=_company(ivr), pending=pending, error=error, challenge=challenge,
        sent=pp.SENT[channel].format(number=for_people(number)), honeypot=pp.HONEYPOT_FIELD), status


@bp.get("/<name>")
def request_form(name):
    """The form: which queue (when several take callbacks), the number, a name."""
    ivr = _ivr(name)
    if not _queues(ivr):
        return _message(ivr, "Callbacks are not available right now. Please call us instead.")
    return _form(ivr)


def _asked(ivr, form):
    """(body for the create path, values to show again, errors) of the form's fields."""
    queues = _queues(ivr)
    queue = form.get("queue") or (queues[0].name if len(queues) == 1 else "")
    values = {"queue": queue, "number": (form.get("number") or "")[:40],
              "name": (form.get("name") or "")[:100]}
    errors = {}
    if queue not in {q.name for q in queues}:
        errors["queue"] = "Please choose who should call you back."
    number = pp.number_from_form(values["number"])
    if number is None:
        errors["number"] = "Please enter a ten-digit phone number, area code first."
    body = {"queue": queue, "number": number, **({"name": values["name"]} if values["name"].strip() else {})}
    if not errors:
        _checked, problems = check_request(body, [ivr], services().clock.now())
        if "number" in problems:
            errors["number"] = NUMBER_PROBLEM
        elif "name" in problems:
            errors["name"] = "Please shorten your name."
        elif problems:
            errors["queue"] = "Please choose who should call you back."
    return body, values, errors


@bp.post("/<name>/code")
def send_code(name):
    """Send a code to the number, by text (a landline: by a call), or by a call when asked."""
    ivr, svc = _ivr(name), services()
    now, secret = svc.clock.now(), _secret()
    resend = request.form.get("pending")
    if resend:
        body, problem = pp.unsign(secret, pp.PENDING, resend, now, pp.CODE_LIFETIME)
        if problem or body.get("ivr") != ivr.name:
            return _message(ivr, "That page has expired. Please start again.", 400, again=True)
        body = {k: body[k] for k in ("queue", "number", "name") if body.get(k)}
        values, errors = {}, {}
    else:
        body, values, errors = _asked(ivr, request.form)
    nonce, problem = pp.check_challenge(secret, ivr.name, request.form.get("challenge"),
                                        request.form.get("answer"), request.form.get(pp.HONEYPOT_FIELD), now)
    if problem:
        log.info("public page %s: challenge refused (%s)", ivr.name, problem)
        errors = {**errors, "form": pp.CHALLENGE_PROBLEMS[problem]}
    if errors:
        if resend:
            return _message(ivr, errors["form"], 400, again=True)
        return _form(ivr, values, errors, 400)
    if not svc.config.TWILIO_VERIFY_SERVICE_SID:
        log.error("public page %s: TWILIO_VERIFY_SERVICE_SID is not set, no code can be sent", ivr.name)
        return _message(ivr, pp.COULD_NOT_SEND, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if not svc.storage.spend_once(f"challenge#{nonce}", now, now + pp.CHALLENGE_LIFETIME):
        return _form(ivr, values, {"form": pp.CHALLENGE_PROBLEMS["used"]}, 400)
    refused = _take_limits(ivr, body["number"], now)
    if refused:
        return refused
    channel = CALL if request.form.get("channel") == CALL else SMS
    try:
        channel = _send(body["number"], channel)
    except VerifyError as exc:
        log.warning("public page %s: Verify refused %s (%s)", ivr.name, mask(body["number"]), exc.code)
        return _message(ivr, pp.VERIFY_WORDS.get(exc.code, pp.COULD_NOT_SEND), 400, again=True)
    except TelephonyError:
        log.exception("public page %s: Verify unreachable", ivr.name)
        return _message(ivr, pp.COULD_NOT_SEND, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}, again=True)
    pending = pp.sign(secret, pp.PENDING, {"ivr": ivr.name, **body}, now)
    return _code_page(ivr, pending, body["number"], channel)


def _take_limits(ivr, number, now):
    """None when every limit had room (each now counts this code); else the 429 page."""
    svc, config = services(), services().config
    for limit in limits.limits_for(_secret(), ivr.name, client_address(), number,
                                   per_address=config.PUBLIC_CODES_PER_ADDRESS,
                                   per_number=config.PUBLIC_CODES_PER_NUMBER,
                                   per_hour=ivr.settings.public_codes_per_hour):
        if not svc.storage.take_rate(limit, now):
            wait = limits.retry_after(limit, now)
            log.warning("public page %s: %s limit reached (%s)", ivr.name, limit.kind, mask(number))
            text = (f"We've had too many requests. Please try again in {limits.minutes_text(wait)}, "
                    "or call us.")
            return _message(ivr, text, 429, {"Retry-After": str(wait)})
    return None


def _send(number, channel):
    """Send the code; a landline that cannot take a text gets a call instead. The channel used."""
    verify = Verify(services().telephony)
    try:
        verify.send(number, channel)
    except VerifyError as exc:
        if exc.code != LANDLINE or channel != SMS:
            raise
        verify.send(number, CALL)
        return CALL
    return channel


@bp.post("/<name>/check")
def check_code(name):
    """Check the code; proven, the callback is stored (or the caller told they are in line)."""
    ivr, svc = _ivr(name), services()
    now = svc.clock.now()
    pending = request.form.get("pending")
    body, problem = pp.unsign(_secret(), pp.PENDING, pending, now, pp.CODE_LIFETIME)
    if problem or body.get("ivr") != ivr.name:
        return _message(ivr, pp.VERIFY_WORDS[20404], 400, again=True)
    body = {k: body[k] for k in ("queue", "number", "name") if body.get(k)}
    code = pp.code_from_form(request.form.get("code"))
    channel = CALL if request.form.get("channel") == CALL else SMS
    if code is None:
        return _code_page(ivr, pending, body["number"], channel, "Please type the code we sent you.", 400)
    try:
        status = Verify(svc.telephony).check(body["number"], code)
    except VerifyError as exc:
        return _message(ivr, pp.VERIFY_WORDS.get(exc.code, pp.COULD_NOT_SEND), 400, again=True)
    except TelephonyError:
        log.exception("public page %s: Verify unreachable", ivr.name)
        return _message(ivr, pp.COULD_NOT_SEND, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if status != APPROVED:
        return _code_page(ivr, pending, body["number"], channel, pp.WRONG_CODE, 400)
    return _store(ivr, body, now)


def _store(ivr, body, now):
    """Store the proven request through the API's own create path, and say what comes next."""
    try:
        _status, payload = create_checked(body, m.PUBLIC_PAGE_ID_PREFIX + uuid.uuid4().hex, now, ivrs=[ivr])
    except ApiError as exc:
        if "number" in exc.fields and exc.status == 409:
            return render_template("public_done.html", ivr=ivr, company=_company(ivr), already=True,
                                   number=for_people(body["number"]), when=None)
        log.warning("public page %s: not stored (%s: %s)", ivr.name, exc.status, exc.message)
        return _message(ivr, "We couldn't take your request just now. Please call us instead.", 409)
    log.info("public page %s: callback %s for %s", ivr.name, payload["callback"]["id"], mask(body["number"]))
    return render_template("public_done.html", ivr=ivr, company=_company(ivr), already=False,
                           number=for_people(body["number"]), when=_when(ivr, payload["callback"], now))


def _when(ivr, callback, now):
    """When the customer should expect the call, when it is not soon: 'tomorrow at 9 AM'."""
    due = datetime.fromisoformat(callback["due_at"])
    if due <= now + timedelta(minutes=1):
        return None
    return h.spoken_moment(ivr.settings.hours, now, due)
