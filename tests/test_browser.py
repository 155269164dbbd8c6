"""The admin portal in a real headless Chromium (Debian's), driven by Playwright."""
import os
import shutil
import threading
from datetime import timedelta

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from callback.models import Callback, Ivr, Queue

pytestmark = pytest.mark.browser
PASSWORD = "browser-test-password"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def config_overrides(config_overrides):
    return {**config_overrides, "ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD)}


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def page(live_server):
    if not CHROMIUM:
        pytest.skip("no chromium on this machine and it could not be installed (make test tries apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(base_url=live_server)
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def test_admin_logs_in_changes_settings_and_cancels_a_callback(page, svc, clock, main_line, tmp_path):
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
    page.get_by_label("Callback - Max Retries").fill("5")
    page.get_by_label("Callback - Retry Time (minutes)").fill("10")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("status").first.inner_text().startswith("Callback settings of Main Line saved")
    assert page.get_by_label("Callback - Max Retries").input_value() == "5"
    assert svc.storage.get_ivr("Main Line").settings.max_retries == 5

    # An invalid one shows the message and saves nothing.
    page.get_by_label("Callback - Max Retries").fill("0")
    page.get_by_label("Callback - Retry Time (minutes)").fill("20")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("alert").first.inner_text().startswith("Nothing was saved")
    assert "must be between 1 and 20" in page.locator("#max_retries-error").inner_text()
    saved = svc.storage.get_ivr("Main Line").settings
    assert (saved.max_retries, saved.retry_minutes) == (5, 10)

    # A pending callback is canceled from its detail page.
    page.get_by_role("link", name="Callbacks").click()
    page.locator("tr[data-callback] a").first.click()
    assert page.locator("#callback-status").inner_text() == "pending"
    page.get_by_role("button", name="Cancel this callback").click()
    assert page.locator("#callback-status").inner_text().startswith("canceled")
    assert svc.storage.get_callback("CA" + "b" * 32).status == "canceled"
    shot = tmp_path / "callback-detail.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
