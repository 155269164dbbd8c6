"""The API's OpenAPI description against the app: every route under /api is in it (and
nothing else is), its schemas are valid JSON Schema whose references resolve, it is served
without the token, and every answer of a walk through the whole API matches the schema
of its route, method and status (an undocumented status fails too)."""
import re
import sys

import pytest
from conftest import API_TOKEN
from jsonschema import Draft202012Validator

from callback.domain import api_tokens
from callback.web.api_docs import document

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
METHODS = {"get", "put", "post", "delete", "patch"}
NUMBER = "+12125551234"
JSON = "application/json"


def api_routes(app):
    """(path as OpenAPI writes it, method) of every rule of the URL map under /api."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule == "/api" or rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def documented():
    return {(path, method) for path, item in document()["paths"].items()
            for method in item if method in METHODS}


def test_every_api_route_is_described_and_nothing_else(app):
    missing = api_routes(app) - documented()
    assert not missing, f"routes under /api missing from callback/web/openapi.json: {sorted(missing)}"
    stale = documented() - api_routes(app)
    assert not stale, f"described but not routed: {sorted(stale)}"


def test_every_route_but_the_description_refuses_a_missing_token_as_described(app, main_line):
    client = app.test_client()
    for path, method in sorted(api_routes(app)):
        response = getattr(client, method)(re.sub(r"{[^}]+}", "x", path), json={})
        public = document()["paths"][path][method].get("security") == []
        assert (response.status_code == 401) != public, (method, path, response.status_code)


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(ref):
    node = document()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_document_is_valid_and_every_reference_resolves():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for ref in _refs(doc):
        assert ref.startswith("#/") and _resolve(ref) is not None, ref
    ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method, op in item.items():
            if method in METHODS:
                names = declared | {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
                assert names == set(re.findall(r"{([^}]+)}", path)), (path, method)


def test_the_document_is_served_without_a_token_and_the_key_lifetime_is_stated(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.get_json() == document()
    assert "24 hours" in document()["info"]["description"]


# -- every answer against its schema -------------------------------------------------------

class Checked:
    """A test client whose every answer under /api is checked against the description."""

    def __init__(self, app):
        self.app, self.client, self.seen = app, app.test_client(), set()

    def __getattr__(self, method):
        def call(path, **kwargs):
            response = getattr(self.client, method)(path, **kwargs)
            self.check(method, path.split("?")[0], response)
            return response
        return call

    def check(self, method, path, response):
        adapter = self.app.url_map.bind("localhost")
        rule, _args = adapter.match(path, method=method.upper(), return_rule=True)
        template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operation = document()["paths"][template][method]
        answers = operation["responses"]
        status = str(response.status_code)
        assert status in answers, f"{method.upper()} {template} answered {status}, which it does not describe"
        answer = answers[status]
        if "$ref" in answer:
            answer = _resolve(answer["$ref"])
        schema = {**answer["content"]["application/json"]["schema"], "components": document()["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(response.get_json()), key=str)
        assert not errors, (f"{method.upper()} {template} {status}: {errors[0].message} "
                            f"at {list(errors[0].path)}")
        self.seen.add((template, method, status))


def supervisor_token(svc):
    """A stored token with the supervisor role."""
    token = api_tokens.new_token()
    digest = api_tokens.key_hash(svc.config.API_TOKEN_SECRET, token)
    record = api_tokens.ApiToken(api_tokens.token_id(digest), "Floor", "floor-display", api_tokens.SYSTEM,
                                 api_tokens.SUPERVISOR, svc.clock.now(), "admin")
    svc.storage.create_api_token(record, digest)
    return token


@pytest.fixture
def api(app):
    return Checked(app)


def test_every_answer_of_a_walk_through_the_api_matches_its_schema(api, svc, main_line, twilio_standin):
    api.get("/api/openapi.json")
    for path in ("/api/agents", "/api/ivrs", "/api/voices", "/api/queues", "/api/callbacks"):
        api.get(path, headers=AUTH)
        api.get(path)  # 401
    supervisor = {"Authorization": f"Bearer {supervisor_token(svc)}"}
    api.get("/api/agents", headers=supervisor)
    api.get("/api/ivrs", headers=supervisor)  # 403
    carol = {"id": "carol", "name": "Carol", "phone": "+14155550101", "queues": ["Sales"]}
    api.post("/api/agents", json=carol, headers=AUTH)
    api.post("/api/agents", json={"id": "carol", "name": "Carol", "phone": "+14155550102"}, headers=AUTH)
    api.post("/api/agents", json={"id": "Bad Id"}, headers=AUTH)
    api.put("/api/agents/carol/status", json={"status": "offline"}, headers=AUTH)
    api.put("/api/agents/nobody/status", json={"status": "offline"}, headers=AUTH)
    api.put("/api/agents/carol/status", json={"status": "dancing"}, headers=AUTH)
    for part in ("settings", "hours"):
        api.get(f"/api/ivrs/Main%20Line/{part}", headers=AUTH)
        api.get(f"/api/ivrs/Nope/{part}", headers=AUTH)
    api.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 4}, headers=AUTH)
    api.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 0}, headers=AUTH)
    api.put("/api/ivrs/Main%20Line/hours", json={"weekly": {"sat": ""}}, headers=AUTH)
    api.put("/api/ivrs/Main%20Line/hours", json={"time_zone": "Mars/Olympus"}, headers=AUTH)
    api.post("/api/queues", json={"name": "Billing", "ivr": "Main Line"}, headers=AUTH)
    api.post("/api/queues", json={"name": "Billing", "ivr": "Main Line"}, headers=AUTH)
    api.post("/api/queues", json={"name": "", "ivr": "Main Line"}, headers=AUTH)
    key = {"Idempotency-Key": "walk-1", **AUTH}
    body = {"queue": "Sales", "number": NUMBER, "name": "Ada", "reason": "invoice"}
    cb = api.post("/api/callbacks", json=body, headers=key).get_json()["callback"]
    api.post("/api/callbacks", json=body, headers=key)  # the first answer again
    api.post("/api/callbacks", json={**body, "name": "Bob"}, headers=key)  # 422
    api.post("/api/callbacks", json=body, headers={"Idempotency-Key": "walk-2", **AUTH})  # 409, pending
    api.post("/api/callbacks", json={"queue": "Sales"}, headers={"Idempotency-Key": "walk-3", **AUTH})
    api.post("/api/callbacks", json=body)  # 401
    api.get("/api/callbacks?status=pending&limit=1", headers=AUTH)
    api.get("/api/callbacks?limit=0", headers=AUTH)
    api.get(f"/api/callbacks/{cb['id']}", headers=AUTH)
    api.get("/api/callbacks/nope", headers=AUTH)
    api.get("/api/stats", headers=AUTH)
    api.get("/api/stats?queue=Nope", headers=AUTH)
    api.post(f"/api/callbacks/{cb['id']}/cancel", headers=AUTH)
    api.post(f"/api/callbacks/{cb['id']}/cancel", headers=AUTH)  # 409
    api.post("/api/numbers/forget", json={"number": NUMBER}, headers=AUTH)
    api.post("/api/numbers/forget", json={"number": "212"}, headers=AUTH)
    # The walk's changes are in the audit trail, a page at a time.
    trail = api.get("/api/audit?limit=2", headers=AUTH).get_json()
    assert len(trail["entries"]) == 2 and trail["after"]
    api.get(f"/api/audit?kind=erasure&since=2000-01-01&after={trail['after']}", headers=AUTH)  # 400
    api.get("/api/audit?kind=presence&actor=api-token", headers=AUTH)
    succeeded = {(path, method) for path, method, status in api.seen if status.startswith("2")}
    assert documented() - succeeded == set(), "routes the walk never answered with success"
    assert {status for _p, _m, status in api.seen} >= {"200", "201", "400", "401", "403", "404", "409", "422"}


def test_the_checks_fail_on_an_answer_off_its_schema_and_on_a_missing_route(app, api, monkeypatch):
    from flask import Response
    with pytest.raises(AssertionError, match="required property"):
        api.check("get", "/api/agents", Response('{"agents": [{"id": "x"}]}', 200, mimetype=JSON))
    with pytest.raises(AssertionError, match="does not describe"):
        api.check("get", "/api/agents", Response('{"error": "x", "fields": {}}', 418, mimetype=JSON))
    trimmed = {**document(), "paths": {k: v for k, v in document()["paths"].items() if k != "/api/stats"}}
    monkeypatch.setattr(sys.modules[__name__], "document", lambda: trimmed)
    with pytest.raises(AssertionError, match="/api/stats"):
        test_every_api_route_is_described_and_nothing_else(app)
