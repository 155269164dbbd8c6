"""Every portal route checked for its role: the URL map walked for anonymous visitors,
agents, supervisors and admins, each endpoint and method requested and its answer compared
with callback/web/roles.py. A route added without a role there fails here."""
from datetime import timedelta

import pytest
from conftest import csrf_of, log_in, with_admin_account
from test_users import PASSWORD, add_user

from callback.domain import users as u
from callback.domain.records import Callback
from callback.web import roles
from callback.web.auth import PORTAL_BLUEPRINTS

CALLBACK_ID = "CA" + "c" * 32
# A value for each URL variable of the portal's routes.
URL_VALUES = {"name": "Main Line", "agent_id": "alice", "callback_id": CALLBACK_ID, "username": "tom",
              "token_id": "ffffffffffffffff"}
# Signed in as each role (tom, a supervisor, is only ever the target of the admin's changes).
WALKERS = {u.AGENT: "ann", u.SUPERVISOR: "sue", u.ADMIN: "ada"}


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


def blueprint_of(endpoint):
    return endpoint.rpartition(".")[0] or endpoint


def portal_routes(app):
    """(endpoint, method, URL) of every portal route."""
    found = []
    for rule in app.url_map.iter_rules():
        if blueprint_of(rule.endpoint) not in PORTAL_BLUEPRINTS:
            continue
        values = {k: v for k, v in URL_VALUES.items() if k in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        found += [(rule.endpoint, method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_every_route_is_classified_and_every_entry_is_a_route(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    portal = {e for e in endpoints if blueprint_of(e) in PORTAL_BLUEPRINTS}
    assert sorted(portal - set(roles.PORTAL)) == [], "portal endpoints without a role in web/roles.py"
    assert sorted(set(roles.PORTAL) - portal) == [], "roles.py names endpoints that do not exist"
    elsewhere = {blueprint_of(e) for e in endpoints - portal}
    assert sorted(elsewhere - set(roles.OUTSIDE_PORTAL)) == [], "blueprints nobody said how they are guarded"
    assert set(roles.PORTAL.values()) <= set(u.ROLES)


def test_an_endpoint_not_classified_is_an_admins_only():
    assert roles.minimum_role("admin.a_page_added_later") == u.ADMIN
    assert not roles.may_open(u.SUPERVISOR, "admin.a_page_added_later")
    assert roles.may_open(u.ADMIN, "admin.a_page_added_later")
    assert not roles.may_open("owner", "me.page")


@pytest.fixture
def people(app, svc, clock, main_line):
    """An agent record, a callback, and a user of each role plus tom (the admin's target)."""
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                   now=clock.now(), create=True)
    now = clock.now()
    svc.storage.create_callback(Callback(CALLBACK_ID, "+12125551234", "Main Line", "Sales", now, now, 10, now,
                                         now + timedelta(hours=2)), CALLBACK_ID)
    add_user(svc, clock, "ann", u.AGENT, agent_id="alice")
    add_user(svc, clock, "sue", u.SUPERVISOR)
    add_user(svc, clock, "ada", u.ADMIN)
    add_user(svc, clock, "tom", u.SUPERVISOR)


def request(client, method, url):
    """GET, or POST with the session's CSRF token (so the answer is the role check's)."""
    if method == "GET":
        return client.get(url)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token})


def test_the_url_map_walked_for_each_role(app, people):
    routes = portal_routes(app)
    assert len(routes) > 25
    anonymous = app.test_client()
    for endpoint, method, url in routes:
        answer = request(anonymous, method, url)
        assert answer.status_code == 302 and answer.location.startswith("/login"), (endpoint, method)
    for role, username in WALKERS.items():
        client = app.test_client()
        assert log_in(client, password=PASSWORD, username=username).status_code == 302
        for endpoint, method, url in routes:
            answer = request(client, method, url)
            refused = answer.status_code == 403
            to_login = answer.status_code == 302 and answer.location.startswith("/login")
            assert not to_login, (role, endpoint, method, "signed out?")
            assert refused != u.at_least(role, roles.PORTAL[endpoint]), (role, endpoint, method,
                                                                          answer.status_code)
            if refused:
                assert "Not for your role" in answer.get_data(as_text=True)


def test_the_nav_shows_only_what_the_role_may_open(app, people):
    links = {"Dashboard", "IVRs", "Queues", "Agents", "Callbacks", "Forget a number", "Users", "API tokens",
             "Audit"}
    expected = {u.AGENT: {"My page"}, u.SUPERVISOR: {"Dashboard", "Queues", "Agents", "Callbacks"},
                u.ADMIN: links}
    for role, username in WALKERS.items():
        client = app.test_client()
        assert log_in(client, password=PASSWORD, username=username).status_code == 302
        # An agent's /me is their agent's page; the others' is who they are.
        html = client.get("/me", follow_redirects=True).get_data(as_text=True)
        start = html.index('<span class="links">')
        nav = html[start:html.index("</span>", start)]
        shown = {name for name in links | {"My page"} if f">{name}</a>" in nav}
        assert shown == expected[role], role
        assert f">{username} · {u.ROLE_LABELS[role]}<" in html


@pytest.mark.parametrize("role, lands", [(u.AGENT, "/me"), (u.SUPERVISOR, "/admin/dashboard"),
                                         (u.ADMIN, "/admin/ivrs")])
def test_each_role_lands_on_its_own_first_page(app, people, role, lands):
    client = app.test_client()
    # Asked for a page the role may not open: sent to its own first page instead.
    answer = log_in(client, password=PASSWORD, username=WALKERS[role], next="/admin/users")
    assert answer.location == ("/admin/users" if role == u.ADMIN else lands)
    assert client.get("/").location == lands


def test_an_agent_sees_only_their_own_page_and_supervisors_any(app, svc, clock, people):
    svc.storage.save_agent_profile("bob", name="Bob", phone="+14155550102", queues=["Sales"],
                                   now=clock.now(), create=True)
    ann = app.test_client()
    assert log_in(ann, password=PASSWORD, username="ann").status_code == 302
    assert ann.get("/me").location == "/agents/alice/today"
    assert ann.get("/agents/alice/today").status_code == 200
    for url in ("/agents/bob/today", "/agents/bob/today.json"):
        assert ann.get(url).status_code == 404, url
    token = csrf_of(ann.get("/login").get_data(as_text=True))
    assert ann.post("/agents/bob/today/presence", data={"csrf_token": token, "status": "available"}).status_code == 404
    assert svc.storage.get_agent("bob").status == "offline"
    sue = app.test_client()
    assert log_in(sue, password=PASSWORD, username="sue").status_code == 302
    assert sue.get("/agents/bob/today").status_code == 200
