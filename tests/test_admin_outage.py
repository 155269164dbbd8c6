"""The admin portal while DynamoDB throttles or cannot be reached (the failing endpoint of
test_faults in front of DynamoDB Local): every page answers a plain 503 in the portal's
layout with Retry-After, never a bare 500; a form whose write failed saved nothing; and
nobody signs in while the throttle or the session store cannot be read or written."""
import logging
from datetime import timedelta

import pytest
from conftest import ADMIN_PASSWORD, csrf_of, log_in, with_admin_account
from test_faults import FaultyEndpoint

from callback import create_app
from callback.domain.records import Callback
from callback.storage import NotFound

OPERATIONS = ["Query", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"]
CUSTOMER = "+12125551234"
ALICE = "+14155550101"
CALLBACK = "CA" + "7" * 32

# Every admin page that reads DynamoDB beyond the session check (all but the new-IVR form).
PAGES = ["/admin/ivrs", "/admin/ivrs/Main%20Line/edit", "/admin/ivrs/Main%20Line/settings", "/admin/queues",
         "/admin/dashboard", "/admin/dashboard.json", "/admin/agents", "/admin/agents/new",
         "/admin/agents/alice/edit", "/admin/callbacks", "/admin/callbacks?status=pending",
         f"/admin/callbacks/{CALLBACK}", f"/admin/callbacks/{CALLBACK}/cancel"]


@pytest.fixture(scope="module")
def faulty(dynamodb_endpoint):
    endpoint = FaultyEndpoint(dynamodb_endpoint)
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def config_overrides(config_overrides, faulty):
    faulty.reset()
    return with_admin_account({**config_overrides, "AWS_ENDPOINT_URL_DYNAMODB": faulty.url})


@pytest.fixture
def app(app):
    # As in production: an error no handler answers would be Werkzeug's 500, not an exception.
    app.config["TESTING"] = False
    return app


@pytest.fixture
def portal(svc, main_line, clock):
    """An agent and a pending callback to show, and nothing failing yet."""
    now = clock.now()
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"], now=now, create=True)
    svc.storage.create_callback(Callback(CALLBACK, CUSTOMER, "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=2)), CALLBACK)


@pytest.fixture
def admin(client, portal):
    assert log_in(client).status_code == 302
    return client


def outage(faulty, kind="throttle", spare_session_read=False):
    """Fail every DynamoDB request from now on; with spare_session_read, all but the first
    GetItem (the session check every admin page starts with), so the page's own reads fail."""
    for operation in OPERATIONS:
        faulty.fail(operation, kind, after=1 if spare_session_read and operation == "GetItem" else 0)


def assert_unavailable(response):
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    html = response.get_data(as_text=True)
    assert "<h1>Temporarily unavailable</h1>" in html and "Try again" in html
    assert "Internal Server Error" not in html
    assert 'href="/static/admin.css"' in html, "the portal's own layout"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("page", PAGES)
def test_every_admin_page_says_unavailable_when_its_reads_fail(admin, faulty, page):
    outage(faulty, spare_session_read=True)
    assert_unavailable(admin.get(page))
    assert faulty.failures > 0


@pytest.mark.parametrize("page", ["/", "/admin/ivrs/new", *PAGES])
def test_every_admin_page_says_unavailable_when_the_session_cannot_be_checked(admin, faulty, page):
    outage(faulty)
    assert_unavailable(admin.get(page))


def test_the_outage_is_logged_with_its_exception_and_no_phone_number(admin, faulty, caplog):
    outage(faulty, spare_session_read=True)
    with caplog.at_level(logging.ERROR, logger="callback"):
        assert_unavailable(admin.get(f"/admin/callbacks/{CALLBACK}"))
    [record] = [r for r in caplog.records if "storage unavailable" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info
    assert "ThrottlingException" in caplog.text
    assert CUSTOMER not in caplog.text and CUSTOMER[2:] not in caplog.text


def post(client, page, data, url=None):
    """Fetch the form while DynamoDB answers, then post it (CSRF token and all)."""
    token = csrf_of(client.get(page).get_data(as_text=True))
    return lambda: client.post(url or page, data={**data, "csrf_token": token})


def test_a_new_agent_whose_save_failed_is_not_saved_at_all(admin, svc, faulty):
    send = post(admin, "/admin/agents/new", {"id": "bob", "name": "Bob", "phone": "+14155550102",
                                             "queues": ["Sales"]})
    faulty.fail("TransactWriteItems", "error")
    assert_unavailable(send())
    faulty.clear()
    with pytest.raises(NotFound):
        svc.storage.get_agent("bob")
    # Neither the agent nor their phone's guard: the phone is free for the next try.
    assert svc.storage.save_agent_profile("carol", name="Carol", phone="+14155550102", queues=[],
                                          now=svc.clock.now(), create=True).phone == "+14155550102"


def test_an_agent_change_whose_save_failed_changes_nothing(admin, svc, faulty):
    before = svc.storage.get_agent("alice")
    send = post(admin, "/admin/agents/alice/edit", {"name": "Alicia", "phone": "+14155550109",
                                                    "queues": ["Support"]})
    faulty.fail("TransactWriteItems", "throttle")
    assert_unavailable(send())
    faulty.clear()
    assert svc.storage.get_agent("alice") == before


def test_settings_whose_save_failed_change_nothing(admin, svc, faulty):
    before = svc.storage.get_ivr("Main Line")
    url = "/admin/ivrs/Main%20Line/settings"
    send = post(admin, url, {"callback_enabled": "on", "offer_after_seconds": "45",
                             "expiration_minutes": "90", "max_retries": "4", "priority": "10",
                             "retry_minutes": "7", "transfer_timeout_seconds": "25", "entry_attempts": "3", "slot_capacity": "0"})
    faulty.fail("PutItem", "throttle")
    assert_unavailable(send())
    faulty.clear()
    assert svc.storage.get_ivr("Main Line") == before


def test_a_cancel_whose_write_failed_leaves_the_callback_pending(admin, svc, faulty):
    page = f"/admin/callbacks/{CALLBACK}/cancel"
    send = post(admin, page, {"confirm": "yes"})
    faulty.fail("TransactWriteItems", "throttle")
    assert_unavailable(send())
    faulty.clear()
    assert svc.storage.get_callback(CALLBACK).status == "pending"


def test_setting_an_agent_available_during_the_outage_says_unavailable(admin, svc, faulty):
    send = post(admin, "/admin/agents", {"status": "available"}, url="/admin/agents/alice/status")
    faulty.fail("UpdateItem", "throttle")
    assert_unavailable(send())
    faulty.clear()
    assert svc.storage.get_agent("alice").status == "offline"


def test_logout_during_the_outage_says_unavailable(admin, faulty):
    send = post(admin, "/admin/ivrs", {}, url="/logout")
    outage(faulty)
    assert_unavailable(send())


@pytest.mark.parametrize("operation, after", [
    ("UpdateItem", 0),  # the throttle cannot be checked: fail closed
    ("PutItem", 0),  # nor opened
    ("DeleteItem", 0),  # the right password, but its throttle cannot be cleared
    ("PutItem", 1),  # the throttle is fine, the session cannot be stored
])
def test_nobody_signs_in_while_the_throttle_or_the_session_store_fails(client, portal, faulty,
                                                                       operation, after):
    page = client.get("/login")
    assert page.status_code == 200, "the login form needs no DynamoDB"
    token = csrf_of(page.get_data(as_text=True))
    faulty.fail(operation, "throttle", after=after)
    answer = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                         "csrf_token": token})
    faulty.clear()
    assert faulty.failures > 0
    assert_unavailable(answer)
    assert "Set-Cookie" not in answer.headers
    refused = client.get("/admin/ivrs")
    assert refused.status_code == 302 and refused.location.startswith("/login")
    # Once DynamoDB answers again, the same password signs in.
    assert log_in(client).status_code == 302 and client.get("/admin/ivrs").status_code == 200


def test_a_login_while_dynamodb_cannot_be_reached_at_all_signs_nobody_in(config_overrides):
    app = create_app({**config_overrides, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9",
                      "DYNAMODB_TIMEOUT_SECONDS": 0.5})
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                         "csrf_token": token})
    assert_unavailable(answer)
    assert "Set-Cookie" not in answer.headers
