"""The public callback page (issue #34): Verify as the stand-in plays it, the page's steps,
the challenge, the limits before any code is sent, and Twilio's webhooks exempt from them."""
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from conftest import IVR_NUMBER, csrf_of, log_in, twiml

from callback.domain import public_page as pp
from callback.domain.public_limits import Limit, retry_after, window_of
from callback.telephony.verify import APPROVED, PENDING, Verify, VerifyError

SERVICE = "VA" + "5" * 32
PAGE = "/public/Main%20Line"
NUMBER = "+12125550142"
ADDRESS = "203.0.113.7"


@pytest.fixture
def config_overrides(config_overrides, standin_server):
    """The test app with a Verify service on the stand-in and a quick challenge."""
    return {**config_overrides, "TWILIO_VERIFY_SERVICE_SID": SERVICE,
            "TWILIO_VERIFY_BASE_URL": standin_server.url, "PUBLIC_CHALLENGE_BITS": 6}


@pytest.fixture
def public_line(svc, main_line, twilio_standin):
    """Main Line with its public page on."""
    settings = replace(main_line.settings, public_page_enabled=True)
    return svc.storage.save_ivr(main_line.evolve(settings=settings))


def form_of(client):
    """The form's CSRF token and challenge."""
    html = client.get(PAGE).get_data(as_text=True)
    return csrf_of(html), re.search(r'name="challenge" value="([^"]+)"', html).group(1)


def verify_requests(standin):
    return [r for r in standin.requests if r["path"].startswith("/v2/")]


def ask_for_code(client, clock, number=NUMBER, address=ADDRESS, channel="sms"):
    """Fill the form as a browser with its script does; the code page (or what came instead)."""
    csrf, challenge = form_of(client)
    clock.advance(seconds=5)
    data = {"csrf_token": csrf, "challenge": challenge, "queue": "Sales", "number": number,
            "channel": channel, "answer": pp.solve(challenge, 6)}
    return client.post(PAGE + "/code", data=data, environ_base={"REMOTE_ADDR": address})


def confirm(client, response, code):
    html = response.get_data(as_text=True)
    pending = re.search(r'name="pending" value="([^"]+)"', html).group(1)
    return client.post(PAGE + "/check", data={"csrf_token": csrf_of(html), "pending": pending, "code": code})


# -- the stand-in's Verify -----------------------------------------------------------------

def test_stand_in_verify_sends_and_checks_as_verify_does(svc, clock, twilio_standin):
    verify = Verify(svc.telephony)
    assert verify.send(NUMBER) == PENDING
    code = twilio_standin.verify.last_code(NUMBER)
    assert verify.check(NUMBER, "000000" if code != "000000" else "111111") == PENDING
    assert verify.check(NUMBER, code) == APPROVED
    with pytest.raises(VerifyError) as again:  # approved once: the verification is over
        verify.check(NUMBER, code)
    assert again.value.code == 20404
    # Codes live 10 minutes.
    verify.send(NUMBER)
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(VerifyError) as expired:
        verify.check(NUMBER, twilio_standin.verify.last_code(NUMBER))
    assert expired.value.code == 20404


def test_stand_in_verify_allows_five_sends_and_five_wrong_checks(svc, clock, twilio_standin):
    verify = Verify(svc.telephony)
    for _ in range(5):
        verify.send(NUMBER)
    assert len(set(code for to, _, code in twilio_standin.verify.sent if to == NUMBER)) == 1  # the same code
    with pytest.raises(VerifyError) as sends:
        verify.send(NUMBER)
    assert (sends.value.code, sends.value.status) == (60203, 429)
    code = twilio_standin.verify.last_code(NUMBER)
    wrong = "999999" if code != "999999" else "888888"
    for _ in range(5):
        assert verify.check(NUMBER, wrong) == PENDING
    with pytest.raises(VerifyError) as checks:
        verify.check(NUMBER, code)
    assert (checks.value.code, checks.value.status) == (60202, 429)
    clock.advance(minutes=10)
    assert verify.send(NUMBER) == PENDING and twilio_standin.verify.last_code(NUMBER) is not None


@pytest.mark.parametrize("to, channel, setup, code", [
    ("2125550142", "sms", None, 60200),
    (NUMBER, "fax", None, 60200),
    (NUMBER, "sms", "landlines", 60205),
    (NUMBER, "sms", "blocked", 60410),
])
def test_stand_in_verify_refusals(svc, twilio_standin, to, channel, setup, code):
    if setup:
        getattr(twilio_standin.verify, setup).add(NUMBER)
    with pytest.raises(VerifyError) as refused:
        Verify(svc.telephony).send(to, channel)
    assert refused.value.code == code
    assert twilio_standin.verify.last_code(NUMBER) is None


# -- the page ------------------------------------------------------------------------------

def test_the_page_is_404_when_off_or_unknown(client, main_line):
    assert client.get(PAGE).status_code == 404
    assert client.get("/public/Nobody").status_code == 404
    assert client.post(PAGE + "/code", data={}).status_code in (400, 404)


def test_a_proven_number_is_stored_as_the_api_stores_it(client, svc, clock, public_line, twilio_standin):
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Thanks" not in html and "Main Line" in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    response = ask_for_code(client, clock)
    assert response.status_code == 200, response.data[:400]
    assert "We texted a code to (212) 555-0142" in response.get_data(as_text=True)
    asked_at = clock.now()
    clock.advance(seconds=30)
    done = confirm(client, response, twilio_standin.verify.last_code(NUMBER))
    assert done.status_code == 200 and "call (212) 555-0142" in done.get_data(as_text=True)
    [cb] = svc.storage.callbacks_of_number(NUMBER)
    assert (cb.queue_name, cb.number, cb.status) == ("Sales", NUMBER, "pending")
    assert cb.place_in_line == asked_at + timedelta(seconds=30)  # the time of the (proven) request
    assert cb.from_api and cb.asked_through == "asked on the public page"
    # Proven again, the number is told it is in line, and nothing more is stored.
    again = ask_for_code(client, clock, address="198.51.100.9")
    already = confirm(client, again, twilio_standin.verify.last_code(NUMBER))
    assert "already in line" in already.get_data(as_text=True)
    assert len(svc.storage.callbacks_of_number(NUMBER)) == 1


def test_the_code_page_says_nothing_about_a_pending_callback(client, clock, public_line, twilio_standin):
    first = ask_for_code(client, clock)
    confirm(client, first, twilio_standin.verify.last_code(NUMBER))
    before = ask_for_code(client, clock, number="+12125550199", address="198.51.100.1").get_data(as_text=True)
    after = ask_for_code(client, clock, address="198.51.100.2").get_data(as_text=True)
    strip = lambda html: re.sub(r'value="[^"]*"|\(212\) 555-01\d\d', "", html)  # noqa: E731
    assert strip(before) == strip(after)


def test_a_wrong_code_is_said_and_the_right_one_still_works(client, clock, public_line, twilio_standin):
    response = ask_for_code(client, clock)
    code = twilio_standin.verify.last_code(NUMBER)
    wrong = confirm(client, response, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 400 and pp.WRONG_CODE in wrong.get_data(as_text=True).replace("&#39;", "'")
    assert "We'll call you back" in confirm(client, wrong, code).get_data(as_text=True).replace("&#39;", "'")


def test_a_landline_gets_its_code_by_a_call(client, clock, public_line, twilio_standin):
    twilio_standin.verify.landlines.add(NUMBER)
    response = ask_for_code(client, clock)
    assert "We are calling (212) 555-0142" in response.get_data(as_text=True)
    assert twilio_standin.verify.channels_to(NUMBER) == ["call"]


def test_texts_the_confirmation_when_the_ivr_texts(client, svc, clock, public_line, twilio_standin):
    svc.storage.save_ivr(public_line.evolve(settings=replace(
        public_line.settings, sms_enabled=True, sms_service_sid="MG" + "1" * 32)))
    response = ask_for_code(client, clock)
    confirm(client, response, twilio_standin.verify.last_code(NUMBER))
    assert [t["to"] for t in twilio_standin.texts()] == [NUMBER]


@pytest.mark.parametrize("number", ["9005550142", "8765550142", "4115550142", "12345", "(212) 555-01"])
def test_refused_numbers_never_reach_verify(client, clock, public_line, twilio_standin, number):
    response = ask_for_code(client, clock, number=number)
    assert response.status_code == 400
    assert 'id="number-error"' in response.get_data(as_text=True)
    assert verify_requests(twilio_standin) == []


# -- the challenge ---------------------------------------------------------------------------

def forged(challenge):
    body, mac = challenge.split(".")
    return body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac


@pytest.mark.parametrize("case", ["missing", "forged", "expired", "too-soon", "wrong", "bot",
                                  "no-script-too-soon"])
def test_a_challenge_not_answered_sends_nothing(client, clock, public_line, twilio_standin, case):
    csrf, challenge = form_of(client)
    data = {"csrf_token": csrf, "challenge": challenge, "queue": "Sales", "number": NUMBER,
            "answer": pp.solve(challenge, 6)}
    clock.advance(seconds=5)
    if case == "missing":
        data["challenge"] = ""
    elif case == "forged":
        data["challenge"] = forged(challenge)
    elif case == "expired":
        clock.advance(minutes=21)
    elif case == "too-soon":
        clock.advance(seconds=-4)
    elif case == "wrong":
        data["answer"] = next(str(n) for n in range(10**6) if not pp.solves(challenge, str(n), 6))
    elif case == "bot":
        data[pp.HONEYPOT_FIELD] = "http://spam.example"
    else:
        data["answer"] = ""
    response = client.post(PAGE + "/code", data=data, environ_base={"REMOTE_ADDR": ADDRESS})
    assert response.status_code == 400
    assert verify_requests(twilio_standin) == []


def test_without_script_the_form_is_taken_after_a_wait_and_a_challenge_only_once(client, clock, public_line,
                                                                                 twilio_standin):
    csrf, challenge = form_of(client)
    clock.advance(seconds=16)
    data = {"csrf_token": csrf, "challenge": challenge, "queue": "Sales", "number": NUMBER, "answer": ""}
    assert client.post(PAGE + "/code", data=data).status_code == 200
    replayed = client.post(PAGE + "/code", data={**data, "number": "+12125550143"})
    assert replayed.status_code == 400 and len(verify_requests(twilio_standin)) == 1


@pytest.mark.parametrize("token", ["", "x", "a.b", "a.b.c"])
def test_unsign_refuses_what_it_did_not_sign(clock, token):
    assert pp.unsign(b"k", pp.CHALLENGE, token, clock.now(), pp.CHALLENGE_LIFETIME)[0] is None


# -- the limits ------------------------------------------------------------------------------

def test_a_burst_from_one_address_is_limited(client, clock, public_line, twilio_standin):
    statuses = [ask_for_code(client, clock, number=f"+1212555{n:04d}").status_code for n in range(1, 8)]
    assert statuses == [200] * 5 + [429] * 2
    limited = ask_for_code(client, clock, number="+12125559999")
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert "too many requests" in limited.get_data(as_text=True)
    assert len(verify_requests(twilio_standin)) == 5
    clock.advance(minutes=61)
    assert ask_for_code(client, clock, number="+12125559998").status_code == 200


def test_one_number_is_limited_whatever_the_address(client, clock, public_line, twilio_standin):
    statuses = [ask_for_code(client, clock, address=f"198.51.100.{n}").status_code for n in range(1, 6)]
    assert statuses == [200] * 3 + [429] * 2
    assert len(verify_requests(twilio_standin)) == 3


def test_many_addresses_meet_the_ivr_hourly_cap(client, svc, clock, public_line, twilio_standin):
    svc.storage.save_ivr(public_line.evolve(settings=replace(public_line.settings, public_codes_per_hour=4)))
    statuses = [ask_for_code(client, clock, number=f"+1212555{n:04d}", address=f"198.51.100.{n}").status_code
                for n in range(1, 8)]
    assert statuses == [200] * 4 + [429] * 3


def test_the_address_is_api_gateways_source_ip_not_x_forwarded_for(client, clock, public_line,
                                                                   twilio_standin):
    statuses = []
    for n in range(1, 8):
        csrf, challenge = form_of(client)
        clock.advance(seconds=5)
        data = {"csrf_token": csrf, "challenge": challenge, "queue": "Sales", "number": f"+1212555{n:04d}",
                "answer": pp.solve(challenge, 6)}
        event = {"requestContext": {"identity": {"sourceIp": "192.0.2.55"}}}
        statuses.append(client.post(PAGE + "/code", data=data, headers={"X-Forwarded-For": f"10.0.0.{n}"},
                                    environ_base={"lambda.event": event}).status_code)
    assert statuses == [200] * 5 + [429] * 2


def test_twilio_webhooks_are_exempt_from_the_public_limits(client, svc, clock, public_line, twilio_standin,
                                                           twilio):
    svc.storage.save_ivr(public_line.evolve(settings=replace(public_line.settings, public_codes_per_hour=1)))
    assert ask_for_code(client, clock).status_code == 200
    assert ask_for_code(client, clock, number="+12125550143", address="198.51.100.3").status_code == 429
    params = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "1" * 32, "From": "+12125550000",
              "To": IVR_NUMBER, "CallStatus": "in-progress", "Direction": "inbound"}
    for _ in range(10):
        root = twiml(twilio.client.post("/voice/incoming", data=params,
                                        headers={"X-Twilio-Signature": twilio.validator.compute_signature(
                                            "https://callback.example.com/dev/voice/incoming", params)},
                                        environ_base={"REMOTE_ADDR": ADDRESS}))
        assert root.find("Gather") is not None


def test_the_window_and_its_retry_after(clock):
    limit = Limit("ivr", "k", 3)
    start, end = window_of(limit, clock.now())
    assert start <= clock.now() < end and end - start == timedelta(hours=1)
    assert retry_after(limit, end - timedelta(seconds=1)) == 1


# -- the pure rules --------------------------------------------------------------------------

@pytest.mark.parametrize("typed, e164", [
    ("(212) 555-0142", NUMBER), ("212.555.0142", NUMBER), ("+1 212 555 0142", NUMBER),
    ("1-212-555-0142", NUMBER), ("2125550142", NUMBER), ("212555014", None), ("+44 20 7946 0018", None),
    ("２１２５５５０１４２", None), ("", None), (None, None), ("2" * 41, None),
])
def test_number_from_form(typed, e164):
    assert pp.number_from_form(typed) == e164


def test_a_solved_challenge_is_taken_once_its_minimum_time_passed(clock):
    secret = pp.page_secret("s")
    token = pp.issue_challenge(secret, "Main Line", clock.now(), bits=8)
    answer = pp.solve(token, 8)
    assert pp.check_challenge(secret, "Main Line", token, answer, "", clock.now())[1] == "too-soon"
    later = clock.now() + timedelta(seconds=4)
    nonce, problem = pp.check_challenge(secret, "Main Line", token, answer, "", later)
    assert problem is None and nonce
    assert pp.check_challenge(secret, "Other", token, answer, "", later)[1] == "forged"
    assert pp.check_challenge(pp.page_secret("t"), "Main Line", token, answer, "", later)[1] == "forged"


# -- in a browser ----------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 400])
def test_the_page_in_a_browser_from_form_to_callback(page, svc, clock, public_line, twilio_standin, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(PAGE)
    assert page.locator(".company").inner_text() == "Main Line"
    page.get_by_label("Who should call you?").select_option("Support")
    page.get_by_label("Your phone number").fill("(212) 555-0142")
    clock.advance(seconds=5)
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    assert "We texted a code to (212) 555-0142" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_label("Code", exact=True).fill(twilio_standin.verify.last_code(NUMBER))
    page.get_by_role("button", name="Confirm my callback").click()
    page.get_by_role("heading", name="We'll call you back").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    [cb] = svc.storage.callbacks_of_number(NUMBER)
    assert (cb.queue_name, cb.status) == ("Support", "pending")
    # The script answered the challenge (the plain fallback would have needed 15 s on the clock).
    [sent] = [r for r in twilio_standin.requests if r["path"].endswith("/Verifications")]
    assert sent["params"]["Channel"] == ["sms"]


def test_the_ivrs_page_links_to_a_public_page_only_when_it_is_on(client, svc, clock, main_line):
    from werkzeug.security import generate_password_hash

    from callback.domain import users
    password = "a long enough password"
    svc.storage.create_user(users.User("ada", "Ada", users.ADMIN, generate_password_hash(password)), clock.now())
    assert log_in(client, password=password, username="ada").status_code == 302
    link = 'aria-label="Public callback page of Main Line"'
    assert link not in client.get("/admin/ivrs").get_data(as_text=True)
    svc.storage.save_ivr(main_line.evolve(settings=replace(main_line.settings, public_page_enabled=True)))
    html = client.get("/admin/ivrs").get_data(as_text=True)
    assert f'href="/public/Main%20Line" {link}' in html
