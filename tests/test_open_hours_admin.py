"""Open hours in the admin portal and the JSON API: edited, validated (an invalid form saves
nothing), stored, shown on the IVR page; the portal's times and "today" by the center's clock."""
from datetime import date, timedelta
from html import unescape
from pathlib import Path

import pytest
from conftest import API_TOKEN, csrf_of, log_in, with_admin_account

from callback.domain.hours import Closure
from callback.domain.records import Callback

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
HOURS_PAGE = "/admin/ivrs/Main%20Line/hours"
WEEKDAYS_9_TO_5 = {f"weekly.{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def admin(client, main_line):
    assert log_in(client).status_code == 302
    return client


def save_form(admin, **fields):
    token = csrf_of(admin.get(HOURS_PAGE).get_data(as_text=True))
    form = {"time_zone": "America/New_York", "weekly.sat": "", "weekly.sun": "", "holidays": "",
            "closures": "", "closed_callbacks": "on", **WEEKDAYS_9_TO_5, **fields}
    return admin.post(HOURS_PAGE, data={**form, "csrf_token": token})


def test_anonymous_visitors_are_sent_to_login(client, main_line):
    response = client.get(HOURS_PAGE)
    assert response.status_code == 302 and response.location.startswith("/login")


def test_an_admin_sets_hours_holidays_and_closures(admin, svc):
    response = save_form(admin, holidays="2027-12-24 Christmas Eve\n2027-12-25 Christmas Day",
                         closures="2027-08-02 to 2027-08-06 Summer shutdown", time_zone="America/Chicago")
    assert response.status_code == 302 and response.location.endswith(HOURS_PAGE)
    hours = svc.storage.get_ivr("Main Line").settings.hours
    assert hours.zone == "America/Chicago" and hours.weekly[0] == ((540, 1020),) and hours.weekly[5] == ()
    assert hours.holidays[1] == Closure(date(2027, 12, 25), date(2027, 12, 25), "Christmas Day")
    assert hours.closures == (Closure(date(2027, 8, 2), date(2027, 8, 6), "Summer shutdown"),)
    page = unescape(admin.get(HOURS_PAGE).get_data(as_text=True))
    assert "Open hours of Main Line saved" in page
    assert "Monday to Friday</th><td>09:00-17:00" in page and "Saturday and Sunday</th><td>closed" in page
    assert "Closure 2027-08-02 to 2027-08-06" in page and 'value="America/Chicago"' in page


def test_an_invalid_form_saves_nothing_and_keeps_what_was_typed(admin, svc):
    before = svc.storage.get_ivr("Main Line").settings.hours
    response = save_form(admin, **{"weekly.mon": "17:00-09:00", "weekly.tue": "10:00-16:00"},
                         time_zone="Mars/Olympus", holidays="2027-02-30 Nope")
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and "Nothing was saved" in page
    assert "Monday: 17:00-09:00 closes before it opens" in page
    assert "IANA time zone" in page and "2027-02-30 is not a date" in page
    # What was typed stays in the form; nothing of it, not even the valid Tuesday, is stored.
    assert 'value="17:00-09:00"' in page and 'value="10:00-16:00"' in page and 'value="Mars/Olympus"' in page
    assert svc.storage.get_ivr("Main Line").settings.hours == before


def test_the_ivr_page_says_whether_each_ivr_is_open_by_its_own_clock(admin, svc, clock):
    # The test clock is a Monday 15:00 UTC: 10:00 in New York, 16:00 in Paris.
    assert "Open around the clock" in admin.get("/admin/ivrs").get_data(as_text=True)
    save_form(admin)
    assert "Open until 17:00" in admin.get("/admin/ivrs").get_data(as_text=True)
    save_form(admin, time_zone="Europe/Paris", **{"weekly.mon": "08:00-12:00"})
    page = unescape(admin.get("/admin/ivrs").get_data(as_text=True))
    assert "Closed until Tue" in page and "09:00" in page and "(Europe/Paris)" in page


def test_callback_times_are_shown_in_the_centers_zone(admin, svc, clock):
    now = clock.now()
    svc.storage.create_callback(Callback("CA" + "b" * 32, "+12125551234", "Main Line", "Sales", now, now,
                                         10, now, now + timedelta(hours=2)), "CA" + "b" * 32)
    listing = unescape(admin.get("/admin/callbacks").get_data(as_text=True))
    local = now - timedelta(hours=5)  # New York in January
    assert local.strftime("%b %d %H:%M") in listing and "Requested (center time)" in listing
    detail = unescape(admin.get(f"/admin/callbacks/{'CA' + 'b' * 32}").get_data(as_text=True))
    assert local.strftime("%Y-%m-%d %H:%M:%S EST") in detail and "UTC" not in detail


def test_the_dashboard_counts_today_from_the_centers_midnight(admin, svc, clock):
    board = admin.get("/admin/dashboard.json").get_json()
    sales = board["stats"]["queues"][0]
    assert sales["center"]["zone"] == "America/New_York"
    assert "Today (America/New_York)" in board["html"] and "Today (UTC)" not in board["html"]
    # The hourly charts are labelled by the center's clock: the last hour is 10:00 there.
    assert sales["hours"][-1]["local_hour"] == "10:00"


def test_the_api_reads_and_changes_hours_and_refuses_invalid_ones(client, svc, main_line):
    body = client.get("/api/ivrs/Main%20Line/hours", headers=AUTH).get_json()
    assert body["hours"]["weekly"]["mon"] == "24h" and body["hours"]["time_zone"] == "America/New_York"
    changed = client.put("/api/ivrs/Main%20Line/hours", headers=AUTH, json={
        "weekly": {"mon": "09:00-17:00", "sat": "closed"},
        "holidays": [{"date": "2027-12-25", "name": "Xmas"}]})
    assert changed.status_code == 200, changed.get_json()
    hours = svc.storage.get_ivr("Main Line").settings.hours
    assert hours.weekly[0] == ((540, 1020),) and hours.weekly[5] == () and hours.weekly[1] == ((0, 1440),)
    assert changed.get_json()["hours"]["holidays"] == [{"date": "2027-12-25", "name": "Xmas"}]
    bad = client.put("/api/ivrs/Main%20Line/hours", headers=AUTH,
                     json={"weekly": {"tue": "10:00-09:00"}, "closed_callbacks": "no", "time_zone": "EST5"})
    assert bad.status_code == 400
    assert set(bad.get_json()["fields"]) == {"weekly.tue", "closed_callbacks", "time_zone"}
    assert svc.storage.get_ivr("Main Line").settings.hours == hours
    assert client.get("/api/ivrs/Nope/hours", headers=AUTH).status_code == 404
    assert client.get("/api/ivrs/Main%20Line/hours").status_code == 401
    listed = client.get("/api/ivrs", headers=AUTH).get_json()["ivrs"][0]
    assert listed["hours"]["weekly"]["mon"] == "09:00-17:00" and "hours" not in listed["settings"]


def test_settings_saved_elsewhere_keep_the_hours(admin, svc):
    save_form(admin)
    client_put = admin.put("/api/ivrs/Main%20Line/settings", headers=AUTH, json={"max_retries": 4})
    assert client_put.status_code == 200
    saved = svc.storage.get_ivr("Main Line").settings
    assert saved.max_retries == 4 and saved.hours.weekly[0] == ((540, 1020),)


@pytest.mark.browser
def test_the_hours_form_in_a_browser(page, svc, main_line):
    from conftest import ADMIN_PASSWORD

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto("/admin/ivrs")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/ivrs")
    page.get_by_role("link", name="Hours of Main Line").click()

    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        page.get_by_label(day, exact=True).fill("09:00-17:00")
    page.get_by_label("Saturday", exact=True).fill("closed")
    page.get_by_label("Sunday", exact=True).fill("")
    page.get_by_label("Holidays").fill("2027-12-25 Christmas Day")
    page.get_by_role("button", name="Save hours").click()
    assert page.get_by_role("status").first.inner_text().startswith("Open hours of Main Line saved")
    assert page.locator("#week").inner_text().count("09:00-17:00") == 1
    assert svc.storage.get_ivr("Main Line").settings.hours.weekly[4] == ((540, 1020),)

    # An invalid change shows what is wrong, next to the field, and saves nothing.
    page.get_by_label("Friday", exact=True).fill("18:00-08:00")
    page.get_by_label("Time Zone").fill("Atlantis/Capital")
    page.get_by_role("button", name="Save hours").click()
    assert page.get_by_role("alert").first.inner_text().startswith("Nothing was saved")
    assert "closes before it opens" in page.locator("#weekly-fri-error").inner_text()
    assert page.get_by_label("Friday", exact=True).get_attribute("aria-invalid") == "true"
    assert svc.storage.get_ivr("Main Line").settings.hours.weekly[4] == ((540, 1020),)
    page.set_viewport_size({"width": 400, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "hours-form-400px.png"), full_page=True)


def test_a_pending_callback_of_a_closed_ivr_says_what_it_waits_for(admin, svc, clock):
    save_form(admin, **{"weekly.mon": "closed"})  # the test clock's Monday
    now = clock.now()
    svc.storage.create_callback(Callback("CA" + "c" * 32, "+12125551234", "Main Line", "Sales", now, now,
                                         10, now, now + timedelta(hours=30)), "CA" + "c" * 32)
    detail = unescape(admin.get(f"/admin/callbacks/{'CA' + 'c' * 32}").get_data(as_text=True))
    tuesday = (now + timedelta(days=1)).strftime("%a %b %d")
    assert f"waits for the opening ({tuesday} 09:00 EST)" in detail
    body = admin.get(f"/api/callbacks/{'CA' + 'c' * 32}", headers=AUTH).get_json()
    assert "Main Line is closed" in body["callback"]["blocked"]
