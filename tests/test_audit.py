"""The audit trail (#34): the diff, masking and secrets as pure rules; the append-only store
and its filters on DynamoDB Local; an entry for each kind of change through the portal and
through the API, none for an invalid form; a lost entry leaves the change and says so; the
page and `GET /api/audit`."""
import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from conftest import API_TOKEN, csrf_of, log_in, with_admin_account

from callback import metrics
from callback.domain import api_tokens as t
from callback.domain import audit
from callback.domain.records import Callback
from callback.storage import Conflict, StorageError

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CUSTOMER = "+12125551234"
AGENT_PHONE = "+14155550188"


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


def entries(svc, **filters):
    """Every entry of the trail, newest first (one page is all a test makes)."""
    found, _ = svc.storage.list_audit(audit.AuditFilter(**filters), limit=200)
    return found


def only(svc, **filters):
    [entry] = entries(svc, **filters)
    return entry


def store_callback(svc, clock, callback_id="CA" + "c" * 32, number=CUSTOMER):
    now = clock.now()
    svc.storage.create_callback(Callback(callback_id, number, "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=2)), callback_id)
    return callback_id


def raw_items(svc):
    """The trail's items as DynamoDB holds them, every attribute as text."""
    return " ".join(json.dumps(item.attribute_values, default=str) for item in svc.storage.Audit.query("AUDIT"))


# -- the rules, pure -------------------------------------------------------------------------

def test_changes_hold_only_the_fields_that_differ_compared_before_masking():
    before = {"max_retries": 3, "call_regions": ("US", "CA"), "voice": "Polly.Joanna", "phone": "+14155550101"}
    after = {"max_retries": 4, "call_regions": ["US", "CA"], "voice": "Polly.Joanna", "phone": "+14155559901"}
    assert audit.changes(before, after) == {
        "max_retries": {"before": 3, "after": 4},
        # Two numbers that mask alike still differ: the change is there, neither number is.
        "phone": {"before": "+*********01", "after": "+*********01"}}


@pytest.mark.parametrize("value, shown", [
    ("+12125551234", "+*********34"),
    ("Call (212) 555-1234 or 212.555.9876 today", "Call (********34 or ********76 today"),
    ("sip:+14155550101@pbx.example.com", "sip:***"),
    ("Queue 42, room 7", "Queue 42, room 7"),
    (["+12125551234", {"phone": "+12125559876"}], ["+*********34", {"phone": "+*********76"}]),
])
def test_numbers_are_masked_as_in_the_logs_at_any_depth(value, shown):
    assert audit.changes({}, {"field": value})["field"]["after"] == shown


def test_secrets_say_only_that_they_changed():
    hashed = "scrypt:32768:8:1$salt$0123abcd"
    diff = audit.changes({"password_hash": "old", "token_hash": None, "name": "x", "token_name": "crm"},
                         {"password_hash": "new", "token_hash": "abc", "name": "y", "token_name": "crm2",
                          "note": hashed, "profile": {"api_key": "k-123"}})
    assert diff["password_hash"] == {"before": audit.HIDDEN, "after": audit.HIDDEN}
    assert diff["token_hash"] == {"before": None, "after": audit.HIDDEN}
    assert diff["token_name"] == {"before": "crm", "after": "crm2"}
    assert diff["note"]["after"] == audit.HIDDEN and diff["profile"]["after"] == {"api_key": audit.HIDDEN}
    assert "old" not in json.dumps(diff) and "k-123" not in json.dumps(diff) and "0123abcd" not in json.dumps(diff)


def test_an_entry_is_made_only_when_something_changed_or_is_said(clock):
    common = dict(now=clock.now(), actor="admin", via=audit.PORTAL, kind=audit.SETTINGS, action="changed",
                  target="Main Line")
    assert audit.new_entry(before={"a": 1}, after={"a": 1}, **common) is None
    assert audit.new_entry(before={"a": 1}, after={"a": 2}, **common).changes == {"a": {"before": 1, "after": 2}}
    assert audit.new_entry(detail={"callbacks_removed": 0}, **{**common, "kind": audit.ERASURE}) is not None
    with pytest.raises(ValueError):
        audit.new_entry(before={}, after={"a": 1}, **{**common, "kind": "weather"})


@pytest.mark.parametrize("args, field", [
    ({"kind": "weather"}, "kind"), ({"since": "yesterday"}, "since"), ({"until": "2025-13-01"}, "until"),
    ({"since": "2025-02-01", "until": "2025-01-31"}, "until"),
])
def test_invalid_filters_are_refused(args, field):
    audit_filter, errors = audit.read_filter(args)
    assert audit_filter is None and field in errors


def test_a_date_filter_covers_whole_utc_days():
    audit_filter, errors = audit.read_filter({"since": "2025-01-30", "until": "2025-01-31", "actor": " admin "})
    assert not errors and audit_filter.actor == "admin"
    assert audit_filter.since == datetime(2025, 1, 30, tzinfo=timezone.utc)
    assert audit_filter.until == datetime(2025, 2, 1, tzinfo=timezone.utc)


# -- the store ---------------------------------------------------------------------------------

def entry(clock, minutes=0, **fields):
    values = dict(now=clock.now() + timedelta(minutes=minutes), actor="admin", via=audit.PORTAL,
                  kind=audit.SETTINGS, action="changed", target="Main Line", before={"n": -1}, after={"n": minutes})
    return audit.new_entry(**{**values, **fields})


def test_entries_are_append_only_a_second_write_of_the_same_id_fails(svc, clock):
    first = entry(clock)
    svc.storage.append_audit(first)
    with pytest.raises(Conflict):
        svc.storage.append_audit(replace(first, actor="mallory", changes={"n": {"before": -1, "after": 99}}))
    assert only(svc) == first


def test_the_trail_is_listed_newest_first_by_kind_by_who_and_by_dates_without_a_scan(svc, clock, no_scans):
    made = [entry(clock, 0), entry(clock, 1, kind=audit.HOURS), entry(clock, 2, actor="api-token", via=audit.API),
            entry(clock, 3, kind=audit.HOURS, actor="api-token", via=audit.API), entry(clock, 60 * 24 + 5)]
    for item in made:
        svc.storage.append_audit(item)
    ids = lambda found: [e.entry_id for e in found]  # noqa: E731
    assert ids(entries(svc)) == ids(reversed(made))
    assert ids(entries(svc, kind=audit.HOURS)) == [made[3].entry_id, made[1].entry_id]
    assert ids(entries(svc, actor="api-token")) == [made[3].entry_id, made[2].entry_id]
    assert ids(entries(svc, kind=audit.HOURS, actor="admin")) == [made[1].entry_id]
    start = clock.now()
    assert ids(entries(svc, since=start + timedelta(minutes=1), until=start + timedelta(minutes=3))) == [
        made[2].entry_id, made[1].entry_id]
    assert ids(entries(svc, since=start + timedelta(days=1))) == [made[4].entry_id]
    # A page at a time: the key of the last entry of a page starts the next.
    page, key = svc.storage.list_audit(audit.AuditFilter(), limit=2)
    rest, end = svc.storage.list_audit(audit.AuditFilter(), limit=10, start_key=key)
    assert ids(page + rest) == ids(reversed(made)) and end is None
    assert "Scan" not in no_scans and "Query" in no_scans


def test_an_entry_is_kept_for_the_audit_retention_then_gone(svc, clock):
    svc.storage.append_audit(entry(clock))
    item = next(iter(svc.storage.Audit.query("AUDIT")))
    assert item.expires_ttl == clock.now() + timedelta(days=svc.config.AUDIT_RETENTION_DAYS)
    clock.advance(minutes=60 * 24 * svc.config.AUDIT_RETENTION_DAYS)
    assert entries(svc) == []


# -- each kind of change, through the portal ---------------------------------------------------

# The form as the page shows the defaults, but Max Retries 5.
SETTINGS_FORM = {"callback_enabled": "on", "call_toll_free": "on", "offer_after_seconds": "60", "expiration_minutes": "120",
                 "max_retries": "5", "retry_minutes": "5", "transfer_timeout_seconds": "30",
                 "entry_attempts": "3", "slot_capacity": "0"}


def test_portal_settings_record_who_and_only_the_fields_that_changed(admin, svc, clock):
    url = "/admin/ivrs/Main%20Line/settings"
    assert post_form(admin, url, url, SETTINGS_FORM).status_code == 302
    saved = only(svc)
    assert (saved.actor, saved.via, saved.kind, saved.action, saved.target) == (
        "admin", "portal", "settings", "changed", "Main Line")
    assert saved.at == clock.now()
    assert saved.changes == {"max_retries": {"before": 3, "after": 5}}


@pytest.mark.parametrize("form_change", [{"max_retries": "0"}, {"retry_minutes": "many"}])
def test_an_invalid_settings_form_saves_nothing_and_records_nothing(admin, svc, form_change):
    url = "/admin/ivrs/Main%20Line/settings"
    assert post_form(admin, url, url, {**SETTINGS_FORM, **form_change}).status_code == 400
    assert entries(svc) == []


def test_portal_hours_record_the_days_that_changed_and_an_invalid_form_nothing(admin, svc):
    url = "/admin/ivrs/Main%20Line/hours"
    form = {"time_zone": "America/Chicago", "holidays": "", "closures": "", "closed_callbacks": "on",
            **{f"weekly.{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    assert post_form(admin, url, url, {**form, "time_zone": "Mars/Olympus"}).status_code == 400
    assert entries(svc) == []
    assert post_form(admin, url, url, form).status_code == 302
    saved = only(svc, kind=audit.HOURS)
    assert saved.changes["time_zone"] == {"before": "America/New_York", "after": "America/Chicago"}
    assert saved.changes["weekly"]["after"]["mon"] == "09:00-17:00" and saved.actor == "admin"


def test_portal_ivr_form_records_the_ivr_and_its_queues_apart(admin, svc, clock):
    data = {"name": "Support Line", "numbers": "+15005550009", "greeting": "Hi.", "queue_rows": "1",
            "queue_name_0": "Tier 1", "queue_priority_0": "3", "queue_callback_0": "on"}
    assert post_form(admin, "/admin/ivrs/new", "/admin/ivrs/new", {**data, "numbers": "555"}).status_code == 400
    assert entries(svc) == []
    assert post_form(admin, "/admin/ivrs/new", "/admin/ivrs/new", data).status_code == 302
    created = only(svc, kind=audit.IVR)
    assert created.action == "created" and created.changes["numbers"] == {"before": None, "after": ["+*********09"]}
    assert only(svc, kind=audit.QUEUE).changes == {
        "Tier 1": {"before": None, "after": {"priority": 3, "callback_enabled": True, "max_size": 5000}}}
    edit = "/admin/ivrs/Support%20Line/edit"
    clock.advance(seconds=1)
    assert post_form(admin, edit, edit, {**data, "queue_priority_0": "4"}).status_code == 302
    queues = entries(svc, kind=audit.QUEUE)[0]
    assert queues.changes["Tier 1"]["before"]["priority"] == 3 and queues.changes["Tier 1"]["after"]["priority"] == 4
    assert len(entries(svc, kind=audit.IVR)) == 1, "numbers and greeting did not change: no IVR entry"


def test_portal_agents_record_creation_edits_and_presence_set_by_an_admin(admin, svc, clock):
    data = {"id": "carol", "name": "Carol", "phone": AGENT_PHONE, "queues": ["Sales"]}
    assert post_form(admin, "/admin/agents/new", "/admin/agents/new", {**data, "phone": "555"}).status_code == 400
    assert entries(svc) == []
    assert post_form(admin, "/admin/agents/new", "/admin/agents/new", data).status_code == 302
    created = only(svc, kind=audit.AGENT)
    assert created.action == "created" and created.changes["phone"] == {"before": None, "after": "+*********88"}
    edit = "/admin/agents/carol/edit"
    clock.advance(seconds=1)
    assert post_form(admin, edit, edit, {**data, "name": "Carol King"}).status_code == 302
    assert entries(svc, kind=audit.AGENT)[0].changes == {"name": {"before": "Carol", "after": "Carol King"}}
    post_form(admin, "/admin/agents", "/admin/agents/carol/status", {"status": "available"})
    presence = only(svc, kind=audit.PRESENCE)
    assert (presence.target, presence.changes) == ("carol", {"status": {"before": "offline", "after": "available"}})
    assert AGENT_PHONE not in raw_items(svc) and AGENT_PHONE[2:] not in raw_items(svc)


def test_portal_cancellation_is_recorded_with_the_number_masked(admin, svc, clock):
    callback_id = store_callback(svc, clock)
    page = f"/admin/callbacks/{callback_id}"
    assert post_form(admin, page, page + "/cancel", {"confirm": "yes"}).status_code == 302
    canceled = only(svc, kind=audit.CALLBACK)
    assert (canceled.action, canceled.target) == ("canceled", callback_id)
    assert canceled.changes == {"status": {"before": "pending", "after": "canceled"}}
    assert canceled.detail == {"ivr": "Main Line", "queue": "Sales", "number": "+*********34"}
    assert "5551234" not in raw_items(svc)


def test_portal_erasure_records_its_counts_and_never_the_number(admin, svc, clock, twilio_standin):
    store_callback(svc, clock)
    url = "/admin/privacy"
    assert post_form(admin, url, url, {"number": CUSTOMER}).status_code == 400  # not confirmed
    assert entries(svc) == []
    assert post_form(admin, url, url, {"number": CUSTOMER, "confirm": "yes"}).status_code == 302
    erased = only(svc, kind=audit.ERASURE)
    assert erased.detail["callbacks_removed"] == 1 and erased.detail["callbacks_canceled"] == 1
    assert erased.actor == "admin" and erased.changes == {}
    assert "34" not in erased.target and "1234" not in raw_items(svc)


# -- each kind of change, through the API -------------------------------------------------------

def test_api_changes_are_recorded_as_the_api_token_and_invalid_ones_not_at_all(client, svc, main_line, clock,
                                                                              twilio_standin):
    tick = lambda: clock.advance(seconds=1)  # noqa: E731  (newest first is by time)
    bad = [client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 0}, headers=AUTH),
           client.put("/api/ivrs/Main%20Line/hours", json={"time_zone": "Mars/Olympus"}, headers=AUTH),
           client.post("/api/queues", json={"name": "", "ivr": "Main Line"}, headers=AUTH),
           client.post("/api/agents", json={"id": "Bad Id"}, headers=AUTH),
           client.post("/api/numbers/forget", json={"number": "212"}, headers=AUTH)]
    assert [r.status_code for r in bad] == [400] * 5 and entries(svc) == []

    assert client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 6}, headers=AUTH).status_code == 200
    tick()
    assert client.put("/api/ivrs/Main%20Line/hours", json={"weekly": {"sat": ""}}, headers=AUTH).status_code == 200
    tick()
    assert client.post("/api/queues", json={"name": "Billing", "ivr": "Main Line", "priority": 2},
                       headers=AUTH).status_code == 201
    carol = {"id": "carol", "name": "Carol", "phone": AGENT_PHONE, "queues": ["Sales"]}
    tick()
    assert client.post("/api/agents", json=carol, headers=AUTH).status_code == 201
    tick()
    assert client.put("/api/agents/carol/status", json={"status": "available"}, headers=AUTH).status_code == 200
    callback_id = store_callback(svc, clock)
    tick()
    assert client.post(f"/api/callbacks/{callback_id}/cancel", headers=AUTH).status_code == 200
    tick()
    assert client.post("/api/numbers/forget", json={"number": CUSTOMER}, headers=AUTH).status_code == 200

    found = entries(svc)
    assert {(e.actor, e.via) for e in found} == {("token:ADMIN_API_TOKEN", "api")}
    assert [e.kind for e in found] == ["erasure", "callback", "presence", "agent", "queue", "hours", "settings"]
    by_kind = {e.kind: e for e in found}
    assert by_kind["settings"].changes == {"max_retries": {"before": 3, "after": 6}}
    assert set(by_kind["hours"].changes) == {"weekly"} and by_kind["hours"].changes["weekly"]["after"]["sat"] == ""
    assert list(by_kind["queue"].changes) == ["Billing"] and by_kind["queue"].target == "Main Line"
    assert by_kind["queue"].changes["Billing"]["before"] is None
    assert by_kind["queue"].changes["Billing"]["after"]["priority"] == 2
    assert by_kind["presence"].changes == {"status": {"before": "offline", "after": "available"}}
    assert by_kind["erasure"].detail["callbacks_removed"] == 1
    assert "5551234" not in raw_items(svc) and "5550188" not in raw_items(svc)
    # A request refused (the callback is gone with its number) changed nothing: no entry either.
    assert client.post(f"/api/callbacks/{callback_id}/cancel", headers=AUTH).status_code == 404
    assert len(entries(svc)) == len(found)


def test_the_api_actor_is_who_the_apis_authentication_names(client, svc, main_line):
    token = t.new_token()
    digest = t.key_hash(svc.config.API_TOKEN_SECRET, token)
    svc.storage.create_api_token(t.ApiToken(t.token_id(digest), "crm", "crm", t.SYSTEM, t.ADMIN,
                                            svc.clock.now(), "admin"), digest)
    assert client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 7},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert only(svc, actor="token:crm").via == "api"


# -- an entry that cannot be written --------------------------------------------------------------

def test_portal_tokens_record_creation_and_revocation_and_never_the_token(admin, svc, clock):
    page = "/admin/tokens"
    made = post_form(admin, page, page, {"name": "CRM", "role": "integration",
                                         "owner_kind": "integration", "owner": "crm"})
    assert made.status_code == 201
    token = re.search(r'id="new-token-value"[^>]*value="([^"]+)"', made.get_data(as_text=True)).group(1)
    [stored] = svc.storage.list_api_tokens()
    clock.advance(minutes=1)
    revoked = post_form(admin, page, f"/admin/tokens/{stored.token_id}/revoke", {})
    assert revoked.status_code == 302
    assert post_form(admin, page, f"/admin/tokens/{stored.token_id}/revoke", {}).status_code == 302
    found = entries(svc, kind=audit.TOKEN)
    assert [(e.action, e.target, e.actor) for e in found] == [("revoked", "CRM", "admin"), ("created", "CRM", "admin")]
    assert found[1].changes["role"] == {"before": None, "after": "integration"}
    assert token not in raw_items(svc)


def test_portal_users_record_each_change_and_never_a_password(admin, svc, clock):
    page = "/admin/users/new"
    made = post_form(admin, page, page, {"username": "sue", "display_name": "Sue", "role": "supervisor",
                                         "agent_id": "", "password": "a long enough secret"})
    assert made.status_code == 302
    clock.advance(minutes=1)
    edit = "/admin/users/sue/edit"
    assert post_form(admin, edit, edit, {"display_name": "Sue B", "role": "supervisor", "agent_id": ""}).status_code == 302
    clock.advance(minutes=1)
    assert post_form(admin, "/admin/users", "/admin/users/sue/disable", {}).status_code == 302
    clock.advance(minutes=1)
    reset = "/admin/users/sue/password"
    assert post_form(admin, reset, reset, {"password": "another long secret"}).status_code == 302
    found = entries(svc, kind=audit.USER)
    assert [e.action for e in found] == ["password set", "disabled", "changed", "created"]
    assert {e.target for e in found} == {"sue"} and {e.actor for e in found} == {"admin"}
    assert found[2].changes == {"display_name": {"before": "Sue", "after": "Sue B"}}
    assert found[1].changes["disabled"] == {"before": False, "after": True}
    assert found[0].changes["password_hash"] == {"before": audit.HIDDEN, "after": audit.HIDDEN}
    assert "scrypt:" not in raw_items(svc) and "secret" not in raw_items(svc)


def test_a_lost_entry_keeps_the_change_logs_loudly_and_counts_a_metric(admin, svc, monkeypatch, caplog):
    lines = []
    metrics.configure(True, "callback-test", sink=lines.append)

    def refuse(entry):
        raise StorageError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(svc.storage, "append_audit", refuse)
    url = "/admin/ivrs/Main%20Line/settings"
    try:
        with caplog.at_level(logging.ERROR, logger="callback.web.trail"):
            response = post_form(admin, url, url, SETTINGS_FORM)
    finally:
        metrics.configure(False)
    assert response.status_code == 302, "the change happened: the admin is told it was saved"
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 5
    assert any(r.levelno == logging.ERROR and "AUDIT ENTRY LOST" in r.getMessage() for r in caplog.records)
    [line] = [json.loads(x) for x in lines if "AuditWriteFailures" in x]
    assert line["AuditWriteFailures"] == 1 and line["kind"] == "settings" and line["actor"] == "admin"


# -- reading the trail ------------------------------------------------------------------------------

def test_get_api_audit_filters_and_pages(client, svc, clock):
    for minutes in range(3):
        svc.storage.append_audit(entry(clock, minutes))
    svc.storage.append_audit(entry(clock, 5, kind=audit.HOURS, actor="api-token", via=audit.API))
    first = client.get("/api/audit?limit=2", headers=AUTH).get_json()
    assert [e["changes"]["n"]["after"] for e in first["entries"]] == [5, 2] and first["after"]
    rest = client.get(f"/api/audit?limit=3&after={first['after']}", headers=AUTH).get_json()
    assert [e["changes"]["n"]["after"] for e in rest["entries"]] == [1, 0] and rest["after"] is None
    hours = client.get("/api/audit?kind=hours", headers=AUTH).get_json()["entries"]
    assert [(e["kind"], e["actor"], e["via"]) for e in hours] == [("hours", "api-token", "api")]
    assert [e["target"] for e in client.get("/api/audit?actor=admin", headers=AUTH).get_json()["entries"]] == [
        "Main Line"] * 3
    day = clock.now().date().isoformat()
    assert len(client.get(f"/api/audit?since={day}&until={day}", headers=AUTH).get_json()["entries"]) == 4
    assert client.get(f"/api/audit?until={day}T00:00:00Z", headers=AUTH).get_json()["entries"] == []
    # A cursor of one filter is not a key of another's index.
    assert client.get(f"/api/audit?kind=hours&after={first['after']}", headers=AUTH).status_code == 400
    assert client.get("/api/audit?kind=weather", headers=AUTH).get_json()["fields"]["kind"].startswith("one of")
    assert client.get("/api/audit").status_code == 401


def test_the_portal_page_is_for_signed_in_admins_and_filters(client, admin, svc, clock):
    svc.storage.append_audit(entry(clock, 0))
    svc.storage.append_audit(entry(clock, 1, kind=audit.HOURS, actor="api-token", via=audit.API))
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert html.count("data-entry=") == 2 and 'href="/admin/audit"' in html
    hours = admin.get("/admin/audit?kind=hours").get_data(as_text=True)
    assert hours.count("data-entry=") == 1 and 'data-kind="hours"' in hours
    assert admin.get("/admin/audit?actor=nobody").get_data(as_text=True).count("data-entry=") == 0
    assert admin.get("/admin/audit?since=soon").status_code == 400
    admin.post("/logout", data={"csrf_token": csrf_of(html)})
    response = client.get("/admin/audit")
    assert response.status_code == 302 and response.location.startswith("/login")


@pytest.mark.browser
def test_an_admin_reads_the_trail_in_a_browser_filters_it_and_it_fits_400_px(page, svc, clock, main_line):
    from conftest import ADMIN_PASSWORD

    page.goto("/admin/ivrs/Main%20Line/settings")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Max Retries").fill("5")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("status").first.inner_text().startswith("Callback settings of Main Line saved")
    clock.advance(minutes=1)
    svc.storage.append_audit(entry(clock, 1, kind=audit.HOURS, actor="api-token", via=audit.API))

    page.get_by_role("link", name="Audit").click()
    page.wait_for_url("**/admin/audit")
    rows = page.locator("tr[data-entry]")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.kind)") == ["hours", "settings"]
    change = page.locator('tr[data-kind="settings"] li[data-field="max_retries"]')
    assert change.locator(".before").inner_text() == "3" and change.locator(".after").inner_text() == "5"
    assert "admin" in page.locator('tr[data-kind="settings"] td[data-label="Who"]').inner_text()

    page.get_by_label("Kind").select_option(label="Callback Settings")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/audit?kind=settings*")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.kind)") == ["settings"]
    page.get_by_label("Kind").select_option(value="")
    page.get_by_label("Who").fill("api-token")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**actor=api-token*")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.kind)") == ["hours"]
    day = clock.now().date()
    page.get_by_label("Who").fill("")
    page.get_by_label("From").fill((day + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**since=*")
    assert page.get_by_text("No entries match.").is_visible()

    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/admin/audit")
    assert rows.count() == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 400


def test_a_flask_command_records_as_the_cli(app, svc):
    from callback.web.trail import record

    with app.app_context():
        saved = record(audit.USER, "created", "root", None, {"username": "root", "password_hash": "scrypt:1$x$y"})
    assert only(svc, actor="cli") == saved
    assert saved.via == "cli" and saved.changes["password_hash"] == {"before": None, "after": audit.HIDDEN}


@pytest.mark.parametrize("landed", [True, False])
def test_a_put_whose_answer_was_lost_is_sent_again_and_lands_once(svc, clock, monkeypatch, landed):
    from botocore.exceptions import ReadTimeoutError
    from pynamodb.exceptions import PutError

    real, tries = svc.storage.Audit.save, []

    def lost_answer(item, *args, **kwargs):
        tries.append(item.sk)
        if len(tries) == 1 and not landed:
            raise PutError("timed out before DynamoDB had it", cause=ReadTimeoutError(endpoint_url="local"))
        result = real(item, *args, **kwargs)
        if len(tries) == 1:
            raise PutError("timed out after DynamoDB stored it", cause=ReadTimeoutError(endpoint_url="local"))
        return result

    monkeypatch.setattr(svc.storage.Audit, "save", lost_answer)
    made = entry(clock)
    svc.storage.append_audit(made)
    assert len(tries) == 2 and only(svc) == made
