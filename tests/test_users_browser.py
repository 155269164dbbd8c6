"""The Users page in headless Chromium, at desktop width and at 400 px: an admin invites an
agent with a generated password, edits, disables and enables them; the agent signs in with
that password and lands on their own page."""
import pytest
from test_browser import ARTIFACTS, PASSWORD, config_overrides  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser


def sign_in(page, username, password):
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def no_sideways_scroll(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [1280, 400])
def test_an_admin_invites_edits_and_disables_a_user(page, svc, clock, width):
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=[], now=clock.now(),
                                   create=True)
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, "admin", PASSWORD)
    page.wait_for_url("**/admin/ivrs")
    page.get_by_role("link", name="Users").click()
    page.wait_for_url("**/admin/users")
    assert page.get_by_role("link", name="Users").get_attribute("aria-current") == "page"
    assert page.locator(".who").inner_text() == "admin · Admin"

    page.get_by_role("link", name="Invite a user").click()
    no_sideways_scroll(page, width)
    page.get_by_label("Username").fill("Ann")
    page.get_by_label("Display name").fill("Ann Lee")
    page.get_by_label("Role").select_option("agent")
    page.get_by_role("button", name="Invite").click()
    # No agent chosen: nothing saved, the field says why.
    assert page.get_by_role("alert").first.inner_text().startswith("Nothing was saved")
    assert "choose which" in page.locator("#agent_id-error").inner_text()
    page.get_by_label("Agent", exact=True).select_option("alice")
    page.get_by_role("button", name="Invite").click()
    generated = page.locator("#generated-password").inner_text()
    assert len(generated) >= 20 and svc.storage.get_user("ann").agent_id == "alice"
    no_sideways_scroll(page, width)
    page.get_by_role("link", name="Back to the users").click()

    row = page.locator("tr[data-user='ann']")
    assert row.locator("[data-role]").inner_text() == "Agent"
    assert generated not in page.content()
    no_sideways_scroll(page, width)
    row.get_by_role("link", name="ann", exact=True).click()
    page.get_by_label("Display name").fill("Ann Lee-Park")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "User ann saved."
    page.get_by_role("button", name="Disable ann").click()
    assert row.locator(".status").inner_text() == "Disabled"
    assert svc.storage.get_user("ann").disabled
    page.get_by_role("button", name="Enable ann").click()
    assert row.locator(".status").inner_text() == "Enabled"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"users-{width}px.png"), full_page=True)

    page.get_by_role("button", name="Log out").click()
    sign_in(page, "ann", generated)
    # An agent lands on their agent's own page (through /me).
    page.wait_for_url("**/agents/alice/today")
    assert page.locator("h1").inner_text() == "Alice"
    assert page.locator("#presence").inner_text().startswith("Away")
    assert page.locator(".links a").all_inner_texts() == ["My page"]
    no_sideways_scroll(page, width)
    page.goto("/admin/users")
    assert page.locator("h1").inner_text() == "Not for your role"
