"""The JSON API: bearer token, same validation as the forms, JSON errors only."""
from datetime import timedelta

import pytest
from conftest import API_TOKEN

from callback.domain.records import Callback, Ivr, Queue

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("method, path", [
    ("get", "/api/ivrs"), ("get", "/api/ivrs/Main%20Line/settings"), ("put", "/api/ivrs/Main%20Line/settings"),
    ("get", "/api/queues"), ("post", "/api/queues"), ("get", "/api/agents"), ("post", "/api/agents"),
    ("put", "/api/agents/alice/status"), ("get", "/api/callbacks"), ("post", "/api/callbacks/CA1/cancel")])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}])
def test_every_route_refuses_a_missing_or_wrong_token(client, main_line, method, path, headers):
    response = getattr(client, method)(path, json={}, headers=headers)
    assert response.status_code == 401 and response.get_json()["error"]


def test_ivrs_and_settings(client, main_line):
    ivrs = client.get("/api/ivrs", headers=AUTH).get_json()["ivrs"]
    assert [i["name"] for i in ivrs] == ["Main Line"]
    settings = client.get("/api/ivrs/Main%20Line/settings", headers=AUTH).get_json()["settings"]
    assert settings["max_retries"] == 3 and settings["priority"] is None


def test_put_settings_changes_only_what_it_names(client, svc, main_line):
    response = client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 5, "priority": 10},
                          headers=AUTH)
    assert response.status_code == 200
    s = svc.storage.get_ivr("Main Line").settings
    assert (s.max_retries, s.priority, s.retry_minutes) == (5, 10, 5)


@pytest.mark.parametrize("body", [{"max_retries": 0}, {"max_retries": "x"}, {"retry_minutes": None},
                                  {"colour": "blue"}, {"callback_enabled": "perhaps"}])
def test_invalid_settings_answer_400_with_fields_and_save_nothing(client, svc, main_line, body):
    before = svc.storage.get_ivr("Main Line")
    response = client.put("/api/ivrs/Main%20Line/settings", json=body, headers=AUTH)
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == set(body)
    assert svc.storage.get_ivr("Main Line") == before


def test_non_json_and_unknown_ivr(client, main_line):
    assert client.put("/api/ivrs/Main%20Line/settings", data="x", headers=AUTH).status_code == 400
    response = client.get("/api/ivrs/Nope/settings", headers=AUTH)
    assert response.status_code == 404 and response.is_json


def test_queues_can_be_listed_and_added(client, main_line):
    response = client.post("/api/queues", json={"name": "Billing", "ivr": "Main Line", "priority": 3},
                           headers=AUTH)
    assert response.status_code == 201
    names = [q["name"] for q in client.get("/api/queues", headers=AUTH).get_json()["queues"]]
    assert names == ["Sales", "Support", "Billing"]
    dup = client.post("/api/queues", json={"name": "Sales", "ivr": "Main Line"}, headers=AUTH)
    assert dup.status_code == 409
    bad = client.post("/api/queues", json={"name": "", "ivr": "Main Line"}, headers=AUTH)
    assert bad.status_code == 400 and "name" in bad.get_json()["fields"]


def test_agents_can_be_added_once(client, main_line):
    body = {"id": "carol", "name": "Carol", "phone": "sip:carol@pbx.example.com", "queues": ["Sales"]}
    assert client.post("/api/agents", json=body, headers=AUTH).status_code == 201
    assert client.post("/api/agents", json=body, headers=AUTH).status_code == 409
    bad = client.post("/api/agents", json={**body, "id": "dave", "queues": ["Nowhere"]}, headers=AUTH)
    assert bad.status_code == 400 and "queues" in bad.get_json()["fields"]


@pytest.mark.parametrize("phone, message", [
    ("+19005550123", "premium rate"), ("+14115550123", "does not exist")])
def test_an_agent_phone_nobody_should_dial_is_refused_naming_why(client, main_line, phone, message):
    body = {"id": "carol", "name": "Carol", "phone": phone, "queues": ["Sales"]}
    response = client.post("/api/agents", json=body, headers=AUTH)
    assert response.status_code == 400 and message in response.get_json()["fields"]["phone"]
    abroad = client.post("/api/agents", json={**body, "phone": "+442071838750"}, headers=AUTH)
    assert abroad.status_code == 201, "an agent may work from any country"


def test_an_ivr_calls_back_the_regions_it_lists_and_refuses_others(client, main_line):
    response = client.put("/api/ivrs/Main Line/settings", json={"call_regions": ["US", "CA"]}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["settings"]["call_regions"] == ["US", "CA"]
    bad = client.put("/api/ivrs/Main Line/settings", json={"call_regions": ["US", "GB"],
                                                           "call_toll_free": False}, headers=AUTH)
    assert bad.status_code == 400 and "GB" in bad.get_json()["fields"]["call_regions"]
    settings = client.get("/api/ivrs/Main Line/settings", headers=AUTH).get_json()["settings"]
    assert (settings["call_regions"], settings["call_toll_free"]) == (["US", "CA"], True), "nothing half saved"


def test_an_agent_with_another_agents_phone_is_409_naming_the_field(client, svc, main_line):
    body = {"id": "carol", "name": "Carol", "phone": "+14155550103", "queues": ["Sales"]}
    assert client.post("/api/agents", json=body, headers=AUTH).status_code == 201
    taken = client.post("/api/agents", json={**body, "id": "dave", "name": "Dave"}, headers=AUTH)
    assert taken.status_code == 409 and taken.is_json
    message = "(415) 555-0103 is already the phone of agent Carol (carol)"
    assert taken.get_json() == {"error": "another agent has this phone", "fields": {"phone": message}}
    assert [a["id"] for a in client.get("/api/agents", headers=AUTH).get_json()["agents"]] == ["carol"]


def test_callbacks_list_and_cancel(client, svc, clock, main_line):
    now = clock.now()
    for i in range(3):
        at = now + timedelta(minutes=i)
        svc.storage.create_callback(Callback(f"CA{i}", f"+121255500{i:02d}", "Main Line", "Sales", at, at,
                                             10, at, at + timedelta(hours=1)), f"CA{i}")
    page = client.get("/api/callbacks?limit=2", headers=AUTH).get_json()
    assert [c["id"] for c in page["callbacks"]] == ["CA2", "CA1"] and page["after"]
    rest = client.get(f"/api/callbacks?limit=2&after={page['after']}", headers=AUTH).get_json()
    assert [c["id"] for c in rest["callbacks"]] == ["CA0"]
    assert client.post("/api/callbacks/CA1/cancel", headers=AUTH).get_json()["callback"]["status"] == "canceled"
    assert client.post("/api/callbacks/CA1/cancel", headers=AUTH).status_code == 409
    assert client.post("/api/callbacks/CA9/cancel", headers=AUTH).status_code == 404
    canceled = client.get("/api/callbacks?status=canceled", headers=AUTH).get_json()["callbacks"]
    assert [c["id"] for c in canceled] == ["CA1"]
    for query in ("status=bogus", "limit=0", "limit=x", "after=forged"):
        response = client.get(f"/api/callbacks?{query}", headers=AUTH)
        assert response.status_code == 400 and response.is_json


def test_put_caller_voice_settings(client, svc, main_line):
    body = {"offer_caller_id": True, "announce_as": "Example Company", "voice": "Polly.Amy",
            "language": "en-GB"}
    response = client.put("/api/ivrs/Main%20Line/settings", json=body, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["settings"] == {
        **response.get_json()["settings"], **body}
    s = svc.storage.get_ivr("Main Line").settings
    assert (s.offer_caller_id, s.announce_as, s.voice, s.language) == (
        True, "Example Company", "Polly.Amy", "en-GB")
    response = client.put("/api/ivrs/Main%20Line/settings", json={"voice": "Polly.Lupe"}, headers=AUTH)
    assert response.status_code == 400 and "language" in response.get_json()["fields"]
    assert svc.storage.get_ivr("Main Line").settings.voice == "Polly.Amy"


@pytest.mark.parametrize("method, path, status", [
    ("delete", "/api/agents/carol", 404), ("get", "/api/callbacks/CA1%2Fx", 404),
    ("get", "/api/ivrs/Main%2FLine/settings", 404), ("post", "/api/callbacks/a%2Fb/cancel", 404),
    ("get", "/api", 404), ("get", "/api/", 404), ("get", "/api/nothing/here", 404),
    ("patch", "/api/agents", 405), ("delete", "/api/queues", 405), ("get", "/api/agents/alice/status", 405)])
@pytest.mark.parametrize("headers", [AUTH, {}])
def test_every_answer_under_api_is_json(client, main_line, method, path, status, headers):
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == status and response.is_json, response.data[:200]
    assert response.get_json()["error"] and response.get_json()["fields"] == {}
    if status == 405:
        assert response.headers["Allow"]


def test_pages_outside_the_api_keep_their_own_errors(client, main_line):
    assert not client.get("/nothing").is_json
    assert client.get("/apiary").status_code == 404 and not client.get("/apiary").is_json


def test_an_unexpected_error_in_the_api_is_json_and_logged(client, svc, main_line, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(svc.storage, "list_agents", broken)
    client.application.config["TESTING"] = False
    response = client.get("/api/agents", headers=AUTH)
    assert response.status_code == 500 and response.is_json and "a bug" not in response.get_data(as_text=True)
    assert "RuntimeError: a bug" in caplog.text


@pytest.mark.parametrize("body, field", [
    ({"max_retries": "4"}, "max_retries"), ({"priority": "10"}, "priority"), ({"priority": ""}, "priority"),
    ({"callback_enabled": "true"}, "callback_enabled"), ({"callback_enabled": 1}, "callback_enabled")])
def test_json_takes_json_numbers_and_booleans_only(client, svc, main_line, body, field):
    before = svc.storage.get_ivr("Main Line")
    response = client.put("/api/ivrs/Main%20Line/settings", json=body, headers=AUTH)
    assert response.status_code == 400 and field in response.get_json()["fields"]
    assert svc.storage.get_ivr("Main Line") == before
    assert client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 4, "priority": None,
                                                               "callback_enabled": False},
                      headers=AUTH).status_code == 200


def test_form_and_api_give_the_same_message_for_the_same_mistake(client, main_line):
    from callback.domain.settings import validate_settings

    _, form_errors = validate_settings({"max_retries": "9" * 20}, partial=True, checkbox_form=True)
    response = client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 10**20}, headers=AUTH)
    assert response.get_json()["fields"]["max_retries"] == form_errors["max_retries"] == "must be between 1 and 20"
    _, form_errors = validate_settings({"max_retries": "2.5"}, partial=True, checkbox_form=True)
    response = client.put("/api/ivrs/Main%20Line/settings", json={"max_retries": 2.5}, headers=AUTH)
    assert response.get_json()["fields"]["max_retries"] == form_errors["max_retries"] == "must be a whole number"


def test_a_new_queue_is_checked_before_it_can_conflict(client, svc, main_line):
    bad = client.post("/api/queues", json={"name": "Sales", "ivr": "Main Line", "priority": "high"}, headers=AUTH)
    assert bad.status_code == 400 and set(bad.get_json()["fields"]) == {"priority"}
    text = client.post("/api/queues", json={"name": "Billing", "ivr": "Main Line", "priority": "3"}, headers=AUTH)
    assert text.status_code == 400 and "JSON number" in text.get_json()["fields"]["priority"]
    svc.storage.save_ivr(Ivr("Billing", numbers=("+15005550008",), queues=(Queue("Bills", "Billing"),)))
    for name in ("Sales", "Bills"):
        taken = client.post("/api/queues", json={"name": name, "ivr": "Main Line", "priority": 3}, headers=AUTH)
        assert taken.status_code == 409 and "already exists" in taken.get_json()["fields"]["name"]
    assert [q.name for q in svc.storage.get_ivr("Main Line").queues] == ["Sales", "Support"]


def test_put_machine_detection(client, svc, main_line):
    response = client.put("/api/ivrs/Main%20Line/settings", json={"machine_detection": "off"}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["settings"]["machine_detection"] == "off"
    assert svc.storage.get_ivr("Main Line").settings.machine_detection == "off"
    response = client.put("/api/ivrs/Main%20Line/settings", json={"machine_detection": "maybe"}, headers=AUTH)
    assert response.status_code == 400 and "machine_detection" in response.get_json()["fields"]
    assert svc.storage.get_ivr("Main Line").settings.machine_detection == "off"
