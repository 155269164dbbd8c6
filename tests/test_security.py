"""The holes found by attacking the portal and the API, each closed and kept closed."""
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from conftest import ADMIN_PASSWORD as PASSWORD
from conftest import (
    API_TOKEN,
    AUTH_TOKEN,
    IVR_NUMBER,
    PUBLIC,
    TwilioClient,
    csrf_of,
    log_in,
    twiml,
    with_admin_account,
)
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.security import generate_password_hash
from werkzeug.wrappers import Response

from callback import create_app
from callback.domain.records import Ivr, Queue
from callback.domain.settings import parse_int
from callback.web.api import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth
from callback.web.auth import client_address

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


# -- 1. no open redirect after login -------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/\t/evil.example.com", "/%09/evil.example.com", "/\n/evil.example.com", "/\r/evil.example.com",
    "/\nSet-Cookie: x=1", "//evil.example.com", "/\\evil.example.com", "https://evil.example.com/admin/ivrs",
    "javascript:alert(1)", "/admin/../..//evil.example.com", "/login", "/logout", "/api/ivrs",
    "/admin/nowhere", "admin/ivrs", "", "/\x00"])
def test_login_never_redirects_off_the_admin_pages(client, main_line, target):
    response = log_in(client, next=target)
    assert response.status_code == 302, response.data[:300]
    assert response.location == "/admin/ivrs"


@pytest.mark.parametrize("target, expected", [
    ("/admin/agents", "/admin/agents"),
    ("/admin/ivrs/Main Line/settings", "/admin/ivrs/Main%20Line/settings"),
    ("/admin/callbacks/CA123", "/admin/callbacks/CA123"),
])
def test_login_returns_to_the_admin_page_asked_for(client, main_line, target, expected):
    assert log_in(client, next=target).location == expected


def test_login_required_round_trip_lands_on_the_page(client, main_line):
    asked = client.get("/admin/ivrs/Main%20Line/settings")
    html = client.get(asked.location).get_data(as_text=True)
    next_value = re.search(r'name="next" value="([^"]*)"', html).group(1)
    assert log_in(client, next=next_value).location == "/admin/ivrs/Main%20Line/settings"


# -- 2. login throttle: atomic, per account and client address ------------------------------

API_HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"


def lambda_request(app, method, path, *, source_ip, headers=None, body=""):
    """Run a request through the WSGI environ Zappa's Lambda handler builds from an API
    Gateway proxy event (its own code: create_wsgi_request, then lambda.event and https)."""
    from zappa.handler import LambdaHandler

    event = {"httpMethod": method, "path": path, "body": body, "isBase64Encoded": False,
             "headers": {"Host": API_HOST, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
                         **(headers or {})},
             "queryStringParameters": None, "requestContext": {
                 "stage": "dev", "path": "/dev" + path, "httpMethod": method, "requestId": "r-1",
                 "identity": {"sourceIp": source_ip}}}
    settings = SimpleNamespace(BINARY_SUPPORT=False, CONTEXT_HEADER_MAPPINGS={}, BASE_PATH=None)
    environ = LambdaHandler._create_lambda_wsgi_environ(SimpleNamespace(trailing_slash=False), event,
                                                        None, "/dev", settings)
    return environ, Response.from_app(app, environ)


def lambda_log_in(app, source_ip, forwarded_for, username="admin", password="nope"):
    """GET the form and POST it, both through Zappa's environ, as one browser would."""
    _, page = lambda_request(app, "GET", "/login", source_ip=source_ip)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    form = urlencode({"username": username, "password": password,
                      "csrf_token": csrf_of(page.get_data(as_text=True))})
    _, answer = lambda_request(app, "POST", "/login", source_ip=source_ip, body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
        "Referer": f"https://{API_HOST}/dev/login", "X-Forwarded-For": forwarded_for})
    return answer


def test_the_client_address_is_api_gateways_source_ip_not_x_forwarded_for(app):
    environ, page = lambda_request(app, "GET", "/login", source_ip="198.51.100.7",
                                   headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7, 70.132.1.1"})
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"  # Lambda is https
    assert environ["REMOTE_ADDR"] == "198.51.100.7"  # Zappa took the second to last: here, right
    spoofed, _ = lambda_request(app, "GET", "/login", source_ip="198.51.100.7",
                                headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.7"})
    assert spoofed["REMOTE_ADDR"] == "192.0.2.1"  # ... and here the client's own words
    with app.request_context(spoofed):
        assert client_address() == "198.51.100.7"
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.9"},
                                  headers={"X-Forwarded-For": "192.0.2.1"}):
        assert client_address() == "127.0.0.9"


def test_attempts_from_elsewhere_cannot_lock_the_admin_out(app, main_line):
    attacker, admin_ip = "203.0.113.66", "198.51.100.7"
    statuses = [lambda_log_in(app, attacker, f"10.0.0.{i}, {attacker}").status_code for i in range(8)]
    assert statuses == [401] * 5 + [429] * 3, "a new X-Forwarded-For each time must not reset the count"
    assert lambda_log_in(app, attacker, f"{admin_ip}, {attacker}", password=PASSWORD).status_code == 429
    assert lambda_log_in(app, admin_ip, admin_ip, password=PASSWORD).status_code == 302


@pytest.mark.parametrize("spelling", ["ADMIN ", " Admin", "ａｄｍｉｎ", "admin\t", "Ａdmin"])
def test_usernames_are_one_account_in_any_spelling(client, main_line, spelling):
    for _ in range(5):
        assert log_in(client, username=spelling, password="nope").status_code == 401
    assert log_in(client).status_code == 429, "the same account from the same address is locked"
    elsewhere = log_in(client, environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert elsewhere.status_code == 302


def test_the_admin_signs_in_with_any_spelling_of_the_name(client, main_line):
    assert log_in(client, username=" ＡＤＭＩＮ ").status_code == 302


def test_a_successful_login_clears_the_count(client, main_line):
    for _ in range(4):
        log_in(client, password="nope")
    assert log_in(client).status_code == 302
    for _ in range(5):
        assert log_in(client, password="nope").status_code == 401


def test_the_lock_lifts_after_the_window(client, main_line, clock):
    for _ in range(5):
        log_in(client, password="nope")
    clock.advance(minutes=14)
    assert log_in(client).status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert log_in(client).status_code == 302


def test_forty_concurrent_wrong_passwords_get_five_tries(app, main_line):
    """Threads race through the app against DynamoDB over HTTP: the check and the count are
    one conditional write, so exactly five reach the password check."""
    clients = [app.test_client() for _ in range(40)]
    tokens = [csrf_of(c.get("/login").get_data(as_text=True)) for c in clients]
    barrier = threading.Barrier(len(clients))

    def attempt(pair):
        c, token = pair
        barrier.wait()
        return c.post("/login", data={"username": "admin", "password": "nope", "csrf_token": token}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(attempt, zip(clients, tokens)))
    assert sorted(statuses) == [401] * 5 + [429] * 35


# -- 3. sessions end server-side -------------------------------------------------------------

def session_cookie(client):
    return client.get_cookie("session").value


def replay(app, cookie, path="/admin/ivrs"):
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get(path)


def test_a_cookie_replayed_after_logout_is_refused(client, app, main_line):
    assert log_in(client).status_code == 302
    cookie = session_cookie(client)
    assert replay(app, cookie).status_code == 200
    token = csrf_of(client.get("/admin/ivrs").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    answer = replay(app, cookie)
    assert answer.status_code == 302 and answer.location.startswith("/login")


def test_a_new_password_ends_every_session(client, app, config_overrides, main_line):
    log_in(client)
    cookie = session_cookie(client)
    same = create_app(config_overrides)  # another Lambda container, same secrets and tables
    assert replay(same, cookie).status_code == 200
    changed = create_app({**config_overrides, "ADMIN_PASSWORD_HASH": generate_password_hash("new one")})
    assert replay(changed, cookie).status_code == 302
    assert replay(same, cookie).status_code == 302, "the stale session is gone from the store too"


def test_an_idle_session_ends_and_activity_keeps_one_alive(client, app, main_line, clock):
    log_in(client)
    for _ in range(3):
        clock.advance(minutes=29)
        assert client.get("/admin/ivrs").status_code == 200
    clock.advance(minutes=30, seconds=1)
    assert client.get("/admin/ivrs").status_code == 302


def test_no_session_outlives_its_lifetime(client, app, main_line, clock):
    log_in(client)
    for _ in range(16):
        clock.advance(minutes=29)
        assert client.get("/admin/ivrs").status_code == 200
    clock.advance(minutes=25)
    assert client.get("/admin/ivrs").status_code == 302


def test_a_forged_or_foreign_session_id_is_refused(app, main_line):
    other = app.test_client()
    with other.session_transaction() as forged:
        forged["sid"], forged["admin"] = "made-up", "admin"
    assert other.get("/admin/ivrs").status_code == 302


def test_an_admin_page_costs_one_session_read_and_webhooks_none(client, svc, main_line, no_scans,
                                                               monkeypatch):
    log_in(client)
    reads = []
    real = svc.storage.get_session
    monkeypatch.setattr(svc.storage, "get_session", lambda key: reads.append(key) or real(key))
    no_scans.clear()
    client.get("/admin/agents")
    assert len(reads) == 1 and no_scans.count("UpdateItem") == 0
    reads.clear()
    TwilioClient(client).post("/voice/incoming", {"CallSid": "CA1", "From": "+14155550123", "To": IVR_NUMBER})
    assert reads == []


def test_expired_sessions_are_kept_only_until_their_ttl(svc, client, main_line, clock):
    log_in(client)
    [record] = list(svc.storage.Session.query("SESSION"))
    assert record.expires_ttl == clock.now() + timedelta(minutes=30)
    assert len(record.sk) == 64 and record.sk != session_cookie(client)


# -- 4. the API bounds what it parses --------------------------------------------------------

def put_settings(client, body, content_type="application/json"):
    return client.put("/api/ivrs/Main%20Line/settings", data=body, content_type=content_type, headers=AUTH)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200, 5_000])
def test_deeply_nested_json_is_a_json_400(client, main_line, depth):
    body = '{"max_retries": ' + "[" * depth + "]" * depth + "}"
    response = put_settings(client, body)
    assert response.status_code == 400 and response.is_json
    assert "nests deeper" in response.get_json()["error"]


def test_oversized_json_is_refused_as_json(client, main_line, svc):
    body = json.dumps({"max_retries": 4, "pad": "x" * MAX_BODY_BYTES})
    response = put_settings(client, body)
    assert response.status_code == 413 and response.is_json
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 3


@pytest.mark.parametrize("body, content_type", [
    (b"\xff\xfe{}", "application/json"), (b"{", "application/json"), (b"[1]", "application/json"),
    (b'{"max_retries": 4}', "text/plain"), (b"1" * 5000, "application/json")])
def test_malformed_bodies_are_a_json_400(client, main_line, body, content_type):
    response = put_settings(client, body, content_type)
    assert response.status_code == 400 and response.is_json


def test_brackets_inside_strings_are_not_nesting(client, main_line):
    key = "[[[[{{{{\\\"[[[[[[[[" * 4
    response = put_settings(client, json.dumps({"max_retries": 4, key: 1}))
    assert response.status_code == 400 and response.get_json()["fields"] == {key: "unknown setting"}


@given(value=st.recursive(st.none() | st.integers() | st.text(alphabet='[]{}"\\ ab', max_size=6),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), inner, max_size=3)))
def test_json_depth_counts_what_the_parser_would_nest(value):
    def depth(v):
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0
    assert json_depth(json.dumps(value)) == depth(value)


@pytest.mark.parametrize("text", ["١٢", "１２", "²", "1٢", "12\u0661", "⑫", "-٣"])
def test_parse_int_takes_ascii_digits_only(text):
    with pytest.raises(ValueError, match="whole number"):
        parse_int(text, -1000, 1000)


def test_non_ascii_digits_are_not_saved_through_the_api(client, main_line, svc):
    response = put_settings(client, json.dumps({"max_retries": "١٢"}))
    assert response.status_code == 400 and "max_retries" in response.get_json()["fields"]
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 3
    assert client.get("/api/callbacks?limit=١٢", headers=AUTH).status_code == 400


# -- 5. security headers on every HTML answer -----------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/admin/nowhere", "/login?next=/%09/evil.example.com"])
def test_html_answers_outside_the_admin_pages_carry_the_headers(client, main_line, path):
    response = client.get(path)
    assert response.mimetype == "text/html"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_when_served_over_https(client, main_line):
    response = client.get("/login", base_url="https://callback.example.com")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    api = client.get("/api/ivrs", base_url="https://callback.example.com", headers=AUTH)
    assert api.headers["Strict-Transport-Security"] and api.headers["X-Content-Type-Options"] == "nosniff"


# -- 6. Twilio's HMAC-SHA256 webhook signing, next to the classic scheme ---------------------

SHARED_KEY_ID, SHARED_SECRET = "webhooks_sharedkey_0123abcd", "shared-secret-for-tests"
CALL = {"CallSid": "CA" + "5" * 32, "From": "+14155550123", "To": IVR_NUMBER}


@pytest.fixture
def signed_app(config_overrides):
    overrides = {**config_overrides,
                 "TWILIO_WEBHOOK_SHARED_KEYS": f"webhooks_sharedkey_old:old-secret, {SHARED_KEY_ID}:{SHARED_SECRET}"}
    app = create_app(overrides)
    app.extensions["callback"].storage.create_tables()
    app.extensions["callback"].storage.save_ivr(
        Ivr("Main Line", numbers=(IVR_NUMBER,), queues=(Queue("Sales", "Main Line", 10),)))
    return app


def post_incoming(app, secret, settings_header=None, algorithm=None):
    url = PUBLIC + "/voice/incoming"
    headers = {"X-Twilio-Signature": RequestValidator(secret).compute_signature(url, CALL, algorithm)}
    if settings_header is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    return app.test_client().post("/voice/incoming", data=CALL, headers=headers)


def test_hmac_sha256_signed_webhooks_are_accepted(signed_app):
    response = post_incoming(signed_app, SHARED_SECRET, f"key={SHARED_KEY_ID},algorithm=HMAC_SHA256",
                             "HMAC_SHA256")
    assert twiml(response).find("Enqueue") is not None
    rotated = post_incoming(signed_app, "old-secret", "key=webhooks_sharedkey_old,algorithm=HMAC_SHA256",
                            "HMAC_SHA256")
    assert rotated.status_code == 200


def test_classic_auth_token_signatures_still_work(signed_app):
    assert post_incoming(signed_app, AUTH_TOKEN).status_code == 200
    assert post_incoming(signed_app, AUTH_TOKEN, "").status_code == 200


@pytest.mark.parametrize("secret, header, algorithm", [
    (AUTH_TOKEN, f"key={SHARED_KEY_ID},algorithm=HMAC_SHA256", "HMAC_SHA256"),  # the wrong secret
    (SHARED_SECRET, f"key={SHARED_KEY_ID},algorithm=HMAC_SHA256", None),  # SHA-1 passed off as SHA-256
    (SHARED_SECRET, "key=webhooks_sharedkey_unknown,algorithm=HMAC_SHA256", "HMAC_SHA256"),
    (SHARED_SECRET, f"key={SHARED_KEY_ID},algorithm=HMAC_MD5", "HMAC_SHA256"),
    (AUTH_TOKEN, "algorithm=HMAC_SHA256", None),  # SHA-1 signature, SHA-256 announced
    (SHARED_SECRET, None, "HMAC_SHA256"),  # nothing announced: only the Auth Token's SHA-1 counts
])
def test_a_wrong_scheme_key_or_secret_is_refused(signed_app, secret, header, algorithm):
    assert post_incoming(signed_app, secret, header, algorithm).status_code == 403
