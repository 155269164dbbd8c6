"""The API tokens page in headless Chromium: an admin makes a token, sees it once, the API
takes it; revoking it on the page makes the API refuse it at the next request."""
import pytest
from test_browser import PASSWORD, config_overrides  # noqa: F401 (a fixture)

from callback.domain import api_tokens as t

pytestmark = pytest.mark.browser


def test_make_a_token_see_it_once_then_revoke_it(page, app, svc):
    api = app.test_client()
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto("/admin/tokens")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/tokens")
    assert page.get_by_role("link", name="API tokens").get_attribute("aria-current") == "page"

    page.get_by_label("Name").fill("Website")
    page.get_by_label("Role").select_option("integration")
    page.get_by_label("Held by").select_option("integration")
    page.get_by_label("Owner").fill("www")
    page.get_by_role("button", name="Make token").click()
    token = page.get_by_label("Token", exact=True).input_value()
    assert t.well_formed(token)
    assert page.get_by_role("heading", name="Token Website made").is_visible()
    row = page.locator("tr[data-name='Website']")
    assert "integration" in row.inner_text() and "Live" in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400

    # The API takes it, for what its role allows.
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/callbacks", headers=headers).status_code == 403
    assert api.post("/api/callbacks", json={}, headers=headers).status_code == 400  # no Idempotency-Key

    # Shown once: the page again has no trace of it.
    page.goto("/admin/tokens")
    assert token not in page.content()
    assert page.get_by_label("Token", exact=True).count() == 0

    page.get_by_role("button", name="Revoke Website").click()
    assert page.get_by_role("status").first.inner_text().startswith("Token Website revoked")
    assert "Revoked" in page.locator("tr[data-name='Website']").inner_text()
    assert page.get_by_role("button", name="Revoke Website").count() == 0
    assert api.post("/api/callbacks", json={}, headers=headers).status_code == 401
