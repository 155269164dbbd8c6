"""Admin portal through the Flask test client: login, every page, form errors, permissions."""
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from conftest import ADMIN_PASSWORD as PASSWORD
from conftest import cancel_callback, csrf_of, log_in, with_admin_account

from callback.domain.records import Callback, Ivr, Queue


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def admin(client, main_line):
    assert log_in(client).status_code == 302
    return client


def post_form(client, page, url, data):
    token = csrf_of(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


ADMIN_PAGES = ["/admin/ivrs", "/admin/ivrs/new", "/admin/ivrs/Main%20Line/edit",
               "/admin/ivrs/Main%20Line/settings", "/admin/ivrs/Main%20Line/hours",
               "/admin/queues", "/admin/agents",
               "/admin/agents/new", "/admin/callbacks"]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_login(client, main_line, page):
    response = client.get(page)
    assert response.status_code == 302 and response.location.startswith("/login")


@pytest.mark.parametrize("path", ["/admin", "/admin/"])
def test_the_admin_address_leads_to_the_portal(client, main_line, path):
    response = client.get(path)
    # Anonymous: to sign in first (each role has its own first page: /admin sends it there).
    assert response.status_code == 302 and response.location.startswith("/login")
    log_in(client)
    page = client.get(path, follow_redirects=True)
    assert page.status_code == 200 and page.request.path == "/admin/ivrs"


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_every_page_renders_with_security_headers(admin, page):
    response = admin.get(page)
    assert response.status_code == 200, page
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_httponly_and_lax(client, main_line):
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_is_refused_and_repeated_failures_lock(client, main_line):
    for _ in range(5):
        assert log_in(client, password="nope").status_code == 401
    locked = log_in(client)
    assert locked.status_code == 429 and "Too many failed attempts" in locked.get_data(as_text=True)


def test_unknown_user_is_refused(client, main_line):
    assert log_in(client, username="root").status_code == 401


def test_forms_without_csrf_token_are_refused(admin):
    response = admin.post("/admin/ivrs/Main%20Line/settings", data={"max_retries": "4"})
    assert response.status_code == 400
    response = admin.post("/admin/ivrs/Main%20Line/settings",
                          data={"max_retries": "4", "csrf_token": "forged"})
    assert response.status_code == 400


def test_login_redirect_never_leaves_the_site(client, main_line):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": token, "next": "//evil.example.com/"})
    assert response.location == "/admin/ivrs"


@pytest.mark.parametrize("page", ["/admin/callbacks", "/admin/ivrs/Main%20Line/hours", "/admin/privacy"])
def test_login_returns_to_any_portal_page_asked_for(client, main_line, page):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": token, "next": page})
    assert response.location == page


def test_logout_ends_the_session(admin):
    response = post_form(admin, "/admin/ivrs", "/logout", {})
    assert response.status_code == 302
    assert admin.get("/admin/ivrs").status_code == 302


def test_ivrs_are_alphabetical_with_a_settings_link_on_the_right(admin, svc):
    svc.storage.save_ivr(Ivr("after hours", numbers=("+15005550007",), queues=(Queue("Night", "after hours"),)))
    svc.storage.save_ivr(Ivr("Billing", numbers=("+15005550008",), queues=(Queue("Bills", "Billing"),)))
    html = admin.get("/admin/ivrs").get_data(as_text=True)
    names = re.findall(r'<tr data-ivr="([^"]+)"', html)
    assert names == ["after hours", "Billing", "Main Line"]
    row = html[html.index('data-ivr="Main Line"'):]
    row = row[:row.index("</tr>")]
    assert row.rstrip().endswith('Settings</a></td>')


SETTINGS_FORM = {"callback_enabled": "on", "offer_after_seconds": "45", "expiration_minutes": "90",
                 "max_retries": "4", "priority": "10", "retry_minutes": "7",
                 "transfer_timeout_seconds": "25", "entry_attempts": "3", "slot_capacity": "0"}


def test_settings_page_explains_each_field(admin):
    html = unescape(admin.get("/admin/ivrs/Main%20Line/settings").get_data(as_text=True))
    for label in ("Expiration Time (minutes)", "Max Retries", "Priority", "Retry Time (minutes)",
                  "Transfer Timeout (seconds)"):
        assert f">{label}</label>" in html
    assert "Callback - " not in html
    assert "The total time the system keeps trying" in html
    assert "set it to the queue's priority so callers keep their place".lower() in html.lower()
    assert 'href="/admin/queues"' in html


def test_valid_settings_are_saved(admin, svc):
    url = "/admin/ivrs/Main%20Line/settings"
    response = post_form(admin, url, url, SETTINGS_FORM)
    assert response.status_code == 302
    s = svc.storage.get_ivr("Main Line").settings
    assert (s.offer_after_seconds, s.expiration_minutes, s.max_retries, s.priority, s.retry_minutes,
            s.transfer_timeout_seconds) == (45, 90, 4, 10, 7, 25)


def test_the_regions_called_back_are_ticked_on_the_settings_page(admin, svc):
    url = "/admin/ivrs/Main%20Line/settings"
    html = unescape(admin.get(url).get_data(as_text=True))
    assert "Regions Called Back" in html and "Jamaica (JM)" in html
    form = {**SETTINGS_FORM, "call_regions_field": "1", "call_regions": ["US", "CA", "PR"]}
    assert post_form(admin, url, url, form).status_code == 302
    assert svc.storage.get_ivr("Main Line").settings.call_regions == ("US", "PR", "CA")
    page = admin.get(url).get_data(as_text=True)
    assert 'value="CA" type="checkbox"\n        checked' in page
    # None ticked: refused, nothing saved.
    response = post_form(admin, url, url, {**SETTINGS_FORM, "max_retries": "9", "call_regions_field": "1"})
    assert response.status_code == 400 and "at least one region" in response.get_data(as_text=True)
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 4


@pytest.mark.parametrize("field, value, message", [
    ("max_retries", "0", "must be between 1 and 20"),
    ("expiration_minutes", "soon", "must be a whole number"),
    ("retry_minutes", "", "must be a whole number"),
    ("transfer_timeout_seconds", "9999", "must be between 5 and 120"),
])
def test_invalid_settings_show_a_message_and_save_nothing(admin, svc, field, value, message):
    before = svc.storage.get_ivr("Main Line")
    url = "/admin/ivrs/Main%20Line/settings"
    response = post_form(admin, url, url, {**SETTINGS_FORM, field: value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and "Nothing was saved" in html
    assert svc.storage.get_ivr("Main Line") == before


def test_settings_warn_when_callback_priority_is_below_a_queue(admin, svc):
    url = "/admin/ivrs/Main%20Line/settings"
    post_form(admin, url, url, {**SETTINGS_FORM, "priority": "7"})
    html = admin.get(url).get_data(as_text=True)
    assert "below the priority of" in html and "Sales (10)" in html and "Support (5)" not in html


def test_create_and_edit_an_ivr(admin, svc):
    data = {"name": "Support Line", "numbers": "+15005550009", "greeting": "Hi.",
            "queue_rows": "2", "queue_name_0": "Tier 1", "queue_priority_0": "3",
            "queue_callback_0": "on", "queue_name_1": ""}
    assert post_form(admin, "/admin/ivrs/new", "/admin/ivrs/new", data).status_code == 302
    ivr = svc.storage.get_ivr("Support Line")
    assert ivr.numbers == ("+15005550009",) and ivr.queues[0].name == "Tier 1"
    edit = "/admin/ivrs/Support%20Line/edit"
    post_form(admin, edit, edit, {**data, "greeting": "Hello again.", "queue_priority_0": "4"})
    ivr = svc.storage.get_ivr("Support Line")
    assert ivr.greeting == "Hello again." and ivr.queues[0].priority == 4


@pytest.mark.parametrize("change, message", [
    ({"numbers": "4155550100"}, "not in E.164 form"),
    ({"numbers": "+15005550006"}, "already used by another IVR"),
    ({"queue_name_0": "Sales"}, "already belongs to another IVR"),
    ({"queue_priority_0": "high"}, "must be a whole number"),
    ({"name": "<script>"}, "IVR name must be"),
    ({"name": "Main Line"}, "an IVR with this name exists"),
])
def test_invalid_ivr_forms_save_nothing(admin, svc, change, message):
    data = {"name": "New One", "numbers": "+15005550010", "greeting": "", "queue_rows": "1",
            "queue_name_0": "Fresh", "queue_priority_0": "1", **change}
    response = post_form(admin, "/admin/ivrs/new", "/admin/ivrs/new", data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert [i.name for i in svc.storage.list_ivrs()] == ["Main Line"]


def test_queues_page_shows_waiting_callers_and_pending_callbacks(admin, svc, clock):
    now = clock.now()
    svc.storage.add_waiting_call("CA1", ivr_name="Main Line", queue_name="Sales", caller="+1",
                                 joined_at=now)
    svc.storage.create_callback(Callback("CA2", "+12125551234", "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=1)), "CA2")
    html = admin.get("/admin/queues").get_data(as_text=True)
    row = html[html.index('data-queue="Sales"'):]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row[:row.index("</tr>")])
    assert cells[-2:] == ["1", "1"]


def test_agents_can_be_added_and_set_available(admin, svc):
    data = {"id": "carol", "name": "Carol", "phone": "+14155550103", "queues": ["Sales"]}
    assert post_form(admin, "/admin/agents/new", "/admin/agents/new", data).status_code == 302
    post_form(admin, "/admin/agents", "/admin/agents/carol/status", {"status": "available"})
    assert svc.storage.get_agent("carol").status == "available"
    bad = post_form(admin, "/admin/agents/new", "/admin/agents/new", {**data, "id": "dave", "phone": "555"})
    assert bad.status_code == 400 and "phone must be E.164" in bad.get_data(as_text=True)


def test_an_agent_form_with_another_agents_phone_says_whose_it_is_and_saves_nothing(admin, svc):
    data = {"id": "carol", "name": "Carol", "phone": "+14155550103", "queues": ["Sales"]}
    post_form(admin, "/admin/agents/new", "/admin/agents/new", data)
    taken = post_form(admin, "/admin/agents/new", "/admin/agents/new", {**data, "id": "dave", "name": "Dave"})
    html = unescape(taken.get_data(as_text=True))
    assert taken.status_code == 400 and "Nothing was saved" in html
    assert re.search(r'class="field-error" id="phone-error">\(415\) 555-0103 is already the phone of '
                     r"agent Carol<", html)
    assert [a.agent_id for a in svc.storage.list_agents()] == ["carol"]

    post_form(admin, "/admin/agents/new", "/admin/agents/new",
              {**data, "id": "dave", "name": "Dave", "phone": "+14155550104"})
    edit = "/admin/agents/dave/edit"
    moved = post_form(admin, edit, edit, {"name": "David", "phone": "+14155550103", "queues": ["Sales"]})
    assert moved.status_code == 400
    assert "is already the phone of agent Carol" in unescape(moved.get_data(as_text=True))
    dave = svc.storage.get_agent("dave")
    assert (dave.name, dave.phone) == ("Dave", "+14155550104")
    # Saved again with their own phone, an agent is fine.
    kept = post_form(admin, edit, edit, {"name": "David", "phone": "+14155550104", "queues": ["Sales"]})
    assert kept.status_code == 302 and svc.storage.get_agent("dave").name == "David"


def make_callbacks(svc, clock, count):
    now = clock.now()
    for i in range(count):
        at = now + timedelta(minutes=i)
        svc.storage.create_callback(Callback(f"CA{i:03d}", f"+1212555{i:04d}", "Main Line", "Sales",
                                             at, at, 10, at, at + timedelta(hours=2)), f"CA{i:03d}")


def test_callbacks_list_newest_first_masked_and_paginated(admin, svc, clock):
    make_callbacks(svc, clock, 30)
    html = admin.get("/admin/callbacks").get_data(as_text=True)
    ids = re.findall(r'data-callback="([^"]+)"', html)
    assert ids[:3] == ["CA029", "CA028", "CA027"] and len(ids) == 25
    assert "(212) ***-0029" in html and "(212) ***-0028" in html
    assert "+12125550029" not in html and "555-0029" not in html and "5550029" not in html
    after = re.search(r'href="([^"]*after=[^"]+)"', html).group(1).replace("&amp;", "&")
    rest = re.findall(r'data-callback="([^"]+)"', admin.get(after).get_data(as_text=True))
    assert rest == ["CA004", "CA003", "CA002", "CA001", "CA000"]
    assert admin.get("/admin/callbacks?after=tampered").status_code == 400


def test_callbacks_filter_by_status(admin, svc, clock):
    make_callbacks(svc, clock, 3)
    cancel_callback(svc.storage, "CA001", clock.now())
    html = admin.get("/admin/callbacks?status=canceled").get_data(as_text=True)
    assert re.findall(r'data-callback="([^"]+)"', html) == ["CA001"]
    assert admin.get("/admin/callbacks?status=bogus").status_code == 400


def test_callback_detail_shows_the_number_and_cancels(admin, svc, clock):
    make_callbacks(svc, clock, 1)
    page = "/admin/callbacks/CA000"
    html = admin.get(page).get_data(as_text=True)
    assert "(212) 555-0000" in html and "Cancel this callback" in html
    # One click is not enough: the cancel link leads to a question, answered by a form.
    question = admin.get(page + "/cancel").get_data(as_text=True)
    assert "Cancel this callback?" in question and "(212) 555-0000" in question
    assert 'name="confirm" value="yes"' in question and "No, keep it" in question
    assert post_form(admin, page, page + "/cancel", {}).status_code == 200
    assert svc.storage.get_callback("CA000").status == "pending"
    done = post_form(admin, page, page + "/cancel", {"confirm": "yes"})
    assert done.status_code == 302 and done.location == page
    assert svc.storage.get_callback("CA000").status == "canceled"
    html = admin.get(page).get_data(as_text=True)
    assert "Cancel this callback" not in html and "Canceled by an admin" in html
    assert admin.get(page + "/cancel").status_code == 302
    assert admin.get("/admin/callbacks/CA-missing").status_code == 404


def test_settings_page_explains_the_caller_voice_fields(admin):
    html = unescape(admin.get("/admin/ivrs/Main%20Line/settings").get_data(as_text=True))
    for label in ("Offer Caller's Own Number", "Announce As", "Voice", "Language"):
        assert label in html
    assert "Leave blank to use the IVR's name" in html
    assert '<option value="Polly.Joanna" selected>' in html and '<option value="en-US" selected>' in html


def test_caller_voice_settings_are_saved_from_the_form(admin, svc):
    url = "/admin/ivrs/Main%20Line/settings"
    form = {**SETTINGS_FORM, "offer_caller_id": "on", "announce_as": "Example Company",
            "voice": "Polly.Lupe", "language": "es-US"}
    assert post_form(admin, url, url, form).status_code == 302
    s = svc.storage.get_ivr("Main Line").settings
    assert (s.offer_caller_id, s.announce_as, s.voice, s.language) == (
        True, "Example Company", "Polly.Lupe", "es-US")
    # An unchecked box turns the own-number offer off again; a blank name falls back.
    assert post_form(admin, url, url, {**SETTINGS_FORM, "announce_as": ""}).status_code == 302
    s = svc.storage.get_ivr("Main Line").settings
    assert (s.offer_caller_id, s.announce_as, s.voice) == (False, "", "Polly.Lupe")


def test_a_voice_and_language_that_do_not_go_together_save_nothing(admin, svc):
    before = svc.storage.get_ivr("Main Line")
    url = "/admin/ivrs/Main%20Line/settings"
    response = post_form(admin, url, url, {**SETTINGS_FORM, "voice": "Polly.Lupe", "language": "en-US",
                                           "announce_as": "Example Company"})
    assert response.status_code == 400
    html = unescape(response.get_data(as_text=True))
    assert "Polly.Lupe speaks es-US" in html and 'value="Example Company"' in html
    assert svc.storage.get_ivr("Main Line") == before


def test_settings_labels_share_one_style_and_keep_the_known_names():
    from callback.domain.settings import BOOLEAN_FIELDS, CHOICE_FIELDS, INTEGER_FIELDS, TEXT_FIELDS

    labels = [spec[0] for fields in (INTEGER_FIELDS, BOOLEAN_FIELDS, TEXT_FIELDS, CHOICE_FIELDS)
              for spec in fields.values()]
    for label in labels:
        words = label.split(" (")[0].split()
        assert all(w[0].isupper() for w in words), f"{label!r} is not in Title Case"
        assert not label.startswith("Callback -"), label
    for known in ("Expiration Time", "Max Retries", "Priority", "Retry Time"):
        assert any(label.split(" (")[0] == known for label in labels), known


def test_attempts_read_in_plain_words_with_compact_times(app):
    from flask import render_template

    from callback.domain.records import Attempt

    now = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)  # rendered only, never stored
    history = (Attempt("a1", now, "alice", "dial-error"), Attempt("a2", now, "alice", "agent-leg-lost"),
               Attempt("a3", now, "alice", "no-answer", counted=True, customer_call_sid="CA" + "c" * 32),
               Attempt("a4", now, "alice", "brand-new-outcome"), Attempt("a5", now, "alice", "completed"),
               Attempt("a6", now, "alice", None))
    cb = Callback("CA" + "d" * 32, "+12125551234", "Main Line", "Sales", now, now, 10, now,
                  now + timedelta(hours=2), status="completed", ended_reason="completed", history=history,
                  ended_at=now)
    with app.test_request_context("/admin/callbacks/x"):
        html = unescape(render_template("callback_detail.html", cb=cb, agents={"alice": "Alice"}))
    outcomes = re.findall(r'class="outcome"[^>]*>([^<]+)<', html)
    assert outcomes == ["Could not dial", "Agent's call was lost", "Customer did not answer",
                        "Brand new outcome", "Completed", "In progress"]
    assert 'title="dial-error"' in html  # the code is still there for whoever needs it
    assert re.search(r'id="callback-status">Completed</td>', html)
    assert "Jan 05 15:00:00" in html and "2026-01-05 15:00:00 UTC" in html


def test_an_expired_callback_says_why(app, clock):
    from flask import render_template

    now = clock.now()
    cb = Callback("CA" + "e" * 32, "+12125551234", "Main Line", "Sales", now, now, 10, now, now,
                  status="expired", ended_reason="max-retries", attempts=3, ended_at=now)
    with app.test_request_context("/admin/callbacks/x"):
        html = render_template("callback_detail.html", cb=cb, agents={})
    assert re.search(r'id="callback-status">Expired: Max Retries reached</td>', html)


def test_the_dashboard_tells_the_admin_what_to_fix_when_twilio_refuses_the_account(admin, svc, clock):
    svc.storage.note_alert("twilio-account-refusal", "Twilio error 21216: fix the profile", clock.now())
    svc.storage.note_alert("twilio-account-refusal", "Twilio error 21216: fix the profile", clock.now())
    board = admin.get("/admin/dashboard.json").get_json()["html"]
    assert "Twilio error 21216: fix the profile" in board and "Seen 2 times" in board
    assert "Callbacks are held" in unescape(admin.get("/admin/dashboard").get_data(as_text=True))


def test_machine_detection_is_chosen_on_the_settings_page(admin, svc):
    url = "/admin/ivrs/Main%20Line/settings"
    html = unescape(admin.get(url).get_data(as_text=True))
    # The fixture's IVR detects synchronously (conftest); every mode is offered.
    assert "Answering Machine Detection" in html and '<option value="sync" selected>' in html
    assert '<option value="async" >' in html and '<option value="off" >' in html
    assert post_form(admin, url, url, {**SETTINGS_FORM, "machine_detection": "off"}).status_code == 302
    assert svc.storage.get_ivr("Main Line").settings.machine_detection == "off"
