"""The holes found by attacking the portal and the API, each closed and kept closed."""
import re

import pytest
from werkzeug.security import generate_password_hash

from conftest import API_TOKEN

PASSWORD = "correct horse battery staple"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def config_overrides(config_overrides):
    return {**config_overrides, "ADMIN_USERNAME": "admin",
            "ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD)}


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html):
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def log_in(client, password=PASSWORD, username="admin", **extra):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       **extra})


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


