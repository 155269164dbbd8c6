"""API tokens on DynamoDB Local: made, found by their keyed hash (no token at rest), used
(last use noted at most once a minute), revoked (refused from the next request); the
bootstrap token; the roles, walked over every /api route of the URL map; the portal page
without a browser (test_api_tokens_browser.py drives it in Chromium)."""
import re
from datetime import timedelta

import pytest
from conftest import API_TOKEN, log_in, with_admin_account
from flask import g

from callback.domain import api_tokens as t
from callback.domain import users as u
from callback.storage import Conflict, NotFound, TokenNameTaken
from callback.web import api_access

SECRET = "test-api-token-secret"  # conftest's API_TOKEN_SECRET
NUMBER = "+12125551234"


def make_token(svc, name, role, owner="crm", owner_kind=t.SYSTEM):
    """A stored token of `role`; returns (the token, its record). A person's token needs the
    person: a named user of that name is made when there is none."""
    if owner_kind == t.USER and owner != "admin" and svc.storage.get_user(owner) is None:
        svc.storage.create_user(u.User(owner, owner.title(), role if role in u.ROLES else u.SUPERVISOR,
                                       "scrypt:x"), svc.clock.now())
    token = t.new_token()
    digest = t.key_hash(svc.config.API_TOKEN_SECRET, token)
    record = t.ApiToken(t.token_id(digest), name, owner, owner_kind, role, svc.clock.now(), "admin")
    svc.storage.create_api_token(record, digest)
    return token, record


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- the token's form and hash ---------------------------------------------------------------

def test_a_token_has_the_prefix_a_checksum_and_enough_randomness():
    tokens = {t.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("cbk_") and len(token) == 50 and t.well_formed(token)
    token = tokens.pop()
    body = token[4:44]
    other = "a" if body[0] != "a" else "b"
    assert not t.well_formed(token[:4] + other + token[5:]), "one changed character must fail the checksum"
    for bad in ("", "cbk_", token + "x", token[:-1], token.replace("cbk_", "cbx_"), None, 42):
        assert not t.well_formed(bad)


def test_the_keyed_hash_depends_on_the_secret_and_names_the_token_id():
    token = t.new_token()
    digest = t.key_hash(SECRET, token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest != t.key_hash("another secret", token)
    assert t.token_id(digest) == digest[:16]


@pytest.mark.parametrize("data, field", [
    ({"name": "", "owner": "crm", "owner_kind": "integration", "role": "admin"}, "name"),
    ({"name": "x" * 65, "owner": "crm", "owner_kind": "integration", "role": "admin"}, "name"),
    ({"name": "CRM", "owner": " ", "owner_kind": "integration", "role": "admin"}, "owner"),
    ({"name": "CRM", "owner": "crm", "owner_kind": "robot", "role": "admin"}, "owner_kind"),
    ({"name": "CRM", "owner": "crm", "owner_kind": "integration", "role": "agent"}, "role"),
    ({"name": "CRM\x00", "owner": "crm", "owner_kind": "integration", "role": "admin"}, "name"),
])
def test_a_new_token_must_say_its_name_owner_and_role(data, field):
    _fields, errors = t.check_new_token(data)
    assert set(errors) == {field}


# -- storage ------------------------------------------------------------------------------

def test_a_token_is_found_by_its_keyed_hash_and_no_token_is_at_rest(svc):
    token, record = make_token(svc, "CRM production", t.INTEGRATION)
    digest = t.key_hash(SECRET, token)
    assert svc.storage.api_token_by_hash(digest) == record
    assert svc.storage.api_token_by_hash(t.key_hash("another secret", token)) is None
    # The raw items in the table: the hash and the name, never the token or its secret part.
    client = svc.storage.ApiTokenRec._get_connection().connection.client
    items = client.query(TableName=svc.storage.ApiTokenRec.Meta.table_name, ConsistentRead=True,
                         KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": "API-TOKEN"}})["Items"]
    assert [item["sk"]["S"] for item in items] == [digest]
    stored = repr(items)
    assert token not in stored and token[4:44] not in stored


def test_names_are_unique_in_any_spelling_and_revoked_tokens_keep_theirs(svc, clock):
    _token, record = make_token(svc, "CRM production", t.INTEGRATION)
    with pytest.raises(TokenNameTaken):
        make_token(svc, "crm  Production", t.ADMIN)
    svc.storage.revoke_api_token(record.token_id, clock.now(), "admin")
    with pytest.raises(TokenNameTaken):
        make_token(svc, "CRM production", t.INTEGRATION)
    assert [tok.name for tok in svc.storage.list_api_tokens()] == ["CRM production"]


def test_revoking_is_once_and_by_id(svc, clock):
    _token, record = make_token(svc, "Wallboard", t.SUPERVISOR, owner="dana", owner_kind=t.USER)
    clock.advance(minutes=5)
    revoked = svc.storage.revoke_api_token(record.token_id, clock.now(), "admin")
    assert (revoked.revoked_at, revoked.revoked_by) == (clock.now(), "admin")
    with pytest.raises(Conflict):
        svc.storage.revoke_api_token(record.token_id, clock.now(), "admin")
    for unknown in ("0" * 16, "nope", record.token_id[:8], ""):
        with pytest.raises(NotFound):
            svc.storage.revoke_api_token(unknown, clock.now(), "admin")


def test_tokens_are_listed_newest_first(svc, clock):
    make_token(svc, "First", t.ADMIN)
    clock.advance(minutes=1)
    make_token(svc, "Second", t.SUPERVISOR)
    assert [tok.name for tok in svc.storage.list_api_tokens()] == ["Second", "First"]


# -- the API: who is calling ------------------------------------------------------------------

def test_a_stored_token_authenticates_and_names_its_caller(app, svc):
    person, _ = make_token(svc, "Dana's wallboard", t.SUPERVISOR, owner="dana", owner_kind=t.USER)
    system, record = make_token(svc, "CRM", t.ADMIN)
    client = app.test_client()
    with client:
        assert client.get("/api/agents", headers=bearer(person)).status_code == 200
        assert g.api_actor == "dana" and g.api_caller.role == t.SUPERVISOR
    with client:
        assert client.get("/api/agents", headers=bearer(system)).status_code == 200
        assert g.api_actor == "token:CRM" and g.api_caller.token_id == record.token_id


def test_the_bootstrap_token_is_an_admin(app):
    client = app.test_client()
    with client:
        assert client.get("/api/ivrs", headers=bearer(API_TOKEN)).status_code == 200
        assert g.api_actor == "token:ADMIN_API_TOKEN" and g.api_caller.role == t.ADMIN


def test_wrong_unknown_and_foreign_tokens_are_refused_without_a_read(app, svc, no_scans):
    client = app.test_client()
    for header in ({}, {"Authorization": "Basic x"}, bearer("nope"), bearer(API_TOKEN + "x"),
                   bearer(t.new_token()[:-1] + "!")):
        no_scans.clear()
        response = client.get("/api/agents", headers=header)
        assert response.status_code == 401 and response.get_json()["fields"] == {}
        assert "GetItem" not in no_scans, header
    # Of a token's form but made elsewhere (or under another secret): one read, then 401.
    assert client.get("/api/agents", headers=bearer(t.new_token())).status_code == 401


def test_without_api_token_secret_only_the_bootstrap_token_works(config_overrides, svc):
    from callback import create_app
    token, _ = make_token(svc, "CRM", t.ADMIN)
    client = create_app({**config_overrides, "API_TOKEN_SECRET": ""}).test_client()
    assert client.get("/api/agents", headers=bearer(token)).status_code == 401
    assert client.get("/api/agents", headers=bearer(API_TOKEN)).status_code == 200


def test_a_revoked_token_is_refused_at_once(app, svc, clock):
    token, record = make_token(svc, "CRM", t.ADMIN)
    client = app.test_client()
    assert client.get("/api/agents", headers=bearer(token)).status_code == 200
    svc.storage.revoke_api_token(record.token_id, clock.now(), "admin")
    response = client.get("/api/agents", headers=bearer(token))
    assert response.status_code == 401 and "revoked" in response.get_json()["error"]


def test_last_use_is_noted_at_most_once_a_minute(app, svc, clock, no_scans):
    token, record = make_token(svc, "CRM", t.ADMIN)
    digest = t.key_hash(SECRET, token)
    client = app.test_client()
    assert svc.storage.api_token_by_hash(digest).last_used_at is None
    first = clock.now()
    no_scans.clear()
    client.get("/api/agents", headers=bearer(token))
    assert no_scans.count("UpdateItem") == 1
    assert svc.storage.api_token_by_hash(digest).last_used_at == first
    clock.advance(seconds=59)
    no_scans.clear()
    for _ in range(3):
        assert client.get("/api/agents", headers=bearer(token)).status_code == 200
    assert "UpdateItem" not in no_scans, "a use within the minute writes nothing"
    assert svc.storage.api_token_by_hash(digest).last_used_at == first
    clock.advance(seconds=1)
    client.get("/api/agents", headers=bearer(token))
    assert svc.storage.api_token_by_hash(digest).last_used_at == clock.now()


def test_noting_last_use_is_conditional(svc, clock):
    token, record = make_token(svc, "CRM", t.ADMIN)
    digest = t.key_hash(SECRET, token)
    svc.storage.mark_api_token_used(digest, clock.now())
    # Another request noted it a moment ago: this one loses, and changes nothing.
    with pytest.raises(Conflict):
        svc.storage.mark_api_token_used(digest, clock.now() + timedelta(seconds=30))
    svc.storage.revoke_api_token(record.token_id, clock.now(), "admin")
    with pytest.raises(Conflict):
        svc.storage.mark_api_token_used(digest, clock.now() + timedelta(minutes=5))
    assert svc.storage.api_token_by_hash(digest).last_used_at == clock.now()


def test_idempotency_keys_are_scoped_per_token(app, svc, main_line):
    one, _ = make_token(svc, "CRM", t.INTEGRATION)
    two, _ = make_token(svc, "Website", t.INTEGRATION)
    client = app.test_client()

    def ask(token, number):
        return client.post("/api/callbacks", json={"queue": "Sales", "number": number},
                           headers={**bearer(token), "Idempotency-Key": "same-key"})

    assert ask(one, NUMBER).status_code == 201
    # The same key from another token is another request, not a replay or a mismatch.
    assert ask(two, "+12125559876").status_code == 201
    assert ask(one, "+12125559876").status_code == 422
    replay = ask(one, NUMBER)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"


# -- roles over the whole URL map -----------------------------------------------------------

def api_endpoints(app):
    """(endpoint, rule) of every route under /api."""
    return [(rule.endpoint, rule) for rule in app.url_map.iter_rules()
            if rule.rule == "/api" or rule.rule.startswith("/api/")]


def unlisted(app):
    """Endpoints under /api missing from the role table (or listed there but not routed)."""
    routed = {endpoint for endpoint, _rule in api_endpoints(app)}
    listed = set(api_access.ENDPOINT_ROLES) | api_access.PUBLIC_ENDPOINTS
    return routed ^ listed


def test_every_api_endpoint_is_in_the_role_table(app):
    assert unlisted(app) == set(), "add each /api endpoint to callback.web.api_access.ENDPOINT_ROLES"


def test_the_check_fails_on_an_endpoint_missing_from_the_table(app, monkeypatch):
    trimmed = {k: v for k, v in api_access.ENDPOINT_ROLES.items() if k != "api.get_stats"}
    monkeypatch.setattr(api_access, "ENDPOINT_ROLES", trimmed)
    assert unlisted(app) == {"api.get_stats"}
    # At run time an unlisted endpoint is the admin's alone.
    assert api_access.may(t.ADMIN, "api.get_stats") and not api_access.may(t.SUPERVISOR, "api.get_stats")


def test_every_role_on_every_api_route(app, svc, main_line):
    tokens = {role: make_token(svc, f"{role} token", role)[0] for role in t.ROLES}
    client = app.test_client()
    walked = set()
    for endpoint, rule in api_endpoints(app):
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role, token in tokens.items():
                response = client.open(path, method=method, json={}, headers=bearer(token))
                if endpoint in api_access.PUBLIC_ENDPOINTS:
                    assert response.status_code == 200, (method, path)
                    continue
                allowed = role in api_access.ENDPOINT_ROLES[endpoint]
                assert response.status_code not in (401, 500), (role, method, path, response.status_code)
                assert (response.status_code == 403) != allowed, (role, method, path, response.status_code)
                if not allowed:
                    assert response.get_json() == {
                        "error": f"a token with the {role} role may not use this route", "fields": {}}
                walked.add((endpoint, role))
    assert len(walked) == len(api_access.ENDPOINT_ROLES) * len(t.ROLES)


def test_the_roles_are_as_the_readme_says():
    staff = {e for e, roles in api_access.ENDPOINT_ROLES.items() if t.SUPERVISOR in roles}
    assert staff == {"api.get_stats", "api.list_callbacks", "api.get_callback", "api.cancel_callback",
                     "api.create_callback", "api.list_agents", "api.set_agent_status"}
    assert {e for e, roles in api_access.ENDPOINT_ROLES.items() if t.INTEGRATION in roles} == {
        "api.create_callback"}
    assert all(t.ADMIN in roles for roles in api_access.ENDPOINT_ROLES.values())


def test_a_supervisor_sets_presence_and_cancels_but_changes_no_settings(app, svc, main_line, clock):
    token, _ = make_token(svc, "Floor", t.SUPERVISOR, owner="sam", owner_kind=t.USER)
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                   now=clock.now(), create=True)
    client = app.test_client()
    headers = bearer(token)
    response = client.put("/api/agents/alice/status", json={"status": "available"}, headers=headers)
    assert response.status_code == 200 and svc.storage.get_agent("alice").status == "available"
    response = client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 5}, headers=headers)
    assert response.status_code == 403
    assert svc.storage.get_ivr("Main Line").settings.max_retries != 5


# -- the portal page, without a browser ----------------------------------------------------------

@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


def test_the_page_needs_a_signed_in_admin(client):
    response = client.get("/admin/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/admin/tokens/0123456789abcdef/revoke").status_code in (302, 400)


def test_the_page_makes_a_token_shown_once_and_not_cached(client, svc):
    log_in(client)
    page = client.get("/admin/tokens").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/admin/tokens", data={"name": "CRM", "role": "integration",
                                                  "owner_kind": "integration", "owner": "crm", "csrf_token": csrf})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token-value"[^>]*value="([^"]+)"', response.get_data(as_text=True)).group(1)
    assert t.well_formed(token)
    [stored] = svc.storage.list_api_tokens()
    assert (stored.name, stored.role, stored.owner, stored.created_by) == (
        "CRM", "integration", "crm", "admin")
    again = client.get("/admin/tokens").get_data(as_text=True)
    assert token not in again and stored.token_id in again
    taken = client.post("/admin/tokens", data={"name": "crm", "role": "admin", "owner_kind": "user",
                                               "owner": "admin", "csrf_token": csrf})
    assert taken.status_code == 400 and "has this name" in taken.get_data(as_text=True)
    assert client.post("/admin/tokens/ffffffffffffffff/revoke", data={"csrf_token": csrf}).status_code == 404


def test_the_page_makes_no_token_without_the_secret(config_overrides):
    from callback import create_app
    app = create_app({**config_overrides, "API_TOKEN_SECRET": ""})
    app.extensions["callback"].storage.create_tables()
    client = app.test_client()
    log_in(client)
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert "API_TOKEN_SECRET is not set" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/admin/tokens", data={"name": "CRM", "role": "admin", "owner_kind": "user",
                                                  "owner": "admin", "csrf_token": csrf})
    assert response.status_code == 400 and app.extensions["callback"].storage.list_api_tokens() == []


def test_a_named_users_token_ends_with_their_access_and_the_environment_accounts_does_not(app, svc, clock):
    svc.storage.create_user(u.User("sue", "Sue", u.SUPERVISOR, "scrypt:x"), clock.now())
    sue_token, _ = make_token(svc, "Sue's desk", t.SUPERVISOR, owner="sue", owner_kind=t.USER)
    admin_token, _ = make_token(svc, "Admin's script", t.ADMIN, owner="admin", owner_kind=t.USER)
    client = app.test_client()
    assert client.get("/api/stats", headers=bearer(sue_token)).status_code == 200
    sue = svc.storage.get_user("sue")
    svc.storage.save_user(sue, sue.evolve(disabled=True, generation=sue.generation + 1), clock.now())
    assert client.get("/api/stats", headers=bearer(sue_token)).status_code == 401
    assert client.get("/api/stats", headers=bearer(admin_token)).status_code == 200
