"""The admin portal in a real headless Chromium (Debian's), driven by Playwright."""
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import with_admin_account

from callback.domain.records import Callback, Ivr, Queue

pytestmark = pytest.mark.browser
PASSWORD = "browser-test-password"
# Screenshots are test artifacts: kept in the (ignored) build directory to look at afterwards.
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides, PASSWORD)


@pytest.fixture
def page(page):
    """The shared Chromium page (conftest), with somewhere to keep its screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return page


def test_admin_logs_in_changes_settings_and_cancels_a_callback(page, svc, clock, main_line):
    svc.storage.save_ivr(Ivr("Billing", numbers=("+15005550008",), queues=(Queue("Bills", "Billing"),)))
    now = clock.now()
    svc.storage.create_callback(Callback("CA" + "b" * 32, "+12125551234", "Main Line", "Sales", now, now,
                                         10, now, now + timedelta(hours=2)), "CA" + "b" * 32)

    page.goto("/admin/ivrs")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # IVRs in alphabetical order, each with its Settings link.
    page.wait_for_url("**/admin/ivrs")
    assert page.locator("tr[data-ivr]").evaluate_all("rows => rows.map(r => r.dataset.ivr)") == [
        "Billing", "Main Line"]
    page.get_by_role("link", name="Settings for Main Line").click()

    # A valid change is saved and shown again.
    page.get_by_label("Max Retries").fill("5")
    page.get_by_label("Retry Time (minutes)").fill("10")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("status").first.inner_text().startswith("Callback settings of Main Line saved")
    assert page.get_by_label("Max Retries").input_value() == "5"
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 5

    # An invalid one shows the message and saves nothing.
    page.get_by_label("Max Retries").fill("0")
    page.get_by_label("Retry Time (minutes)").fill("20")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("alert").first.inner_text().startswith("Nothing was saved")
    assert "must be between 1 and 20" in page.locator("#max_retries-error").inner_text()
    saved = svc.storage.get_ivr("Main Line").settings
    assert (saved.max_retries, saved.retry_minutes) == (5, 10)

    # A pending callback is canceled from its detail page, after saying yes to a question.
    page.get_by_role("link", name="Callbacks").click()
    assert page.locator("tr[data-callback] td").nth(1).inner_text() == "(212) ***-1234"
    page.locator("tr[data-callback] a").first.click()
    assert page.locator("#callback-status").inner_text() == "Pending"
    page.get_by_role("link", name="Cancel this callback").click()
    page.get_by_role("link", name="No, keep it").click()
    assert svc.storage.get_callback("CA" + "b" * 32).status == "pending"
    page.get_by_role("link", name="Cancel this callback").click()
    page.get_by_role("button", name="Yes, cancel the callback").click()
    assert page.locator("#callback-status").inner_text() == "Canceled: Canceled by an admin"
    assert svc.storage.get_callback("CA" + "b" * 32).status == "canceled"
    shot = ARTIFACTS / "callback-detail.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0


PORTAL_PAGES = ["/admin/ivrs", "/admin/ivrs/Main%20Line/settings", "/admin/ivrs/Main%20Line/edit",
                "/admin/queues", "/admin/agents", "/admin/agents/new", "/admin/callbacks",
                "/admin/callbacks/" + "CA" + "e" * 32, "/admin/callbacks/" + "CA" + "f" * 32 + "/cancel",
                "/login"]


def test_every_page_fits_a_narrow_screen(page, svc, clock, main_line, twilio_standin):
    """At 400 px nothing scrolls sideways; the screenshots are kept to look at."""
    now = clock.now()
    ringing, pending = "CA" + "e" * 32, "CA" + "f" * 32
    svc.storage.create_callback(Callback(ringing, "+16465550188", "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=2)), ringing)
    svc.storage.save_agent_profile("alice", name="Alice Appleseed", phone="+15005550101",
                                   queues=("Sales", "Support"), now=now, create=True)
    svc.dispatcher.set_presence("alice", "available")
    assert svc.storage.get_callback(ringing).history, "the agent was not rung"
    svc.storage.create_callback(Callback(pending, "+12125551234", "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=2)), pending)
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/ivrs")
    overflowing = {}
    for path in PORTAL_PAGES:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 400:
            overflowing[path] = width
        name = path.strip("/").replace("/", "-").replace("%20", "-")[:60] or "root"
        page.screenshot(path=str(ARTIFACTS / f"narrow-{name}.png"), full_page=True)
    assert overflowing == {}
    # The header's links are all on screen, not pushed off the right edge.
    for link in ("IVRs", "Queues", "Agents", "Callbacks"):
        box = page.get_by_role("link", name=link, exact=True).bounding_box()
        assert box and box["x"] + box["width"] <= 400
