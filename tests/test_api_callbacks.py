"""POST /api/callbacks on DynamoDB Local: callbacks from a CRM or a website, with the IVR's
number rules, one pending callback per number and queue, windows inside the hours and the
customer's window, and the Idempotency-Key rules of the IETF draft (a repeat answers the
first answer, another body 422, a request still running 409, keys per token, 24 hours)."""
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from conftest import API_TOKEN, log_in, with_admin_account
from hypothesis import given
from hypothesis import strategies as st
from test_hostile_input import FAST, junk_text, settings_values
from test_open_hours import OFFICE, monday_at, with_hours

from callback.domain import slots
from callback.web import api_callbacks

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NY_NUMBER = "+12125551234"
LA_NUMBER = "+13105551234"


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


def post(client, body, key="key-1", headers=AUTH):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/api/callbacks", json=body, headers={**headers, **extra})


def stored(svc):
    return svc.storage.list_callbacks(limit=50)[0]


def iso(moment):
    return moment.isoformat()


BODY = {"queue": "Sales", "number": NY_NUMBER, "name": "Ada  Lovelace\u200b", "reason": "Invoice\n#42"}


# -- creating ----------------------------------------------------------------------------

def test_a_callback_is_created_with_its_place_in_line_now_and_shown_whole(client, svc, clock, main_line):
    response = post(client, BODY)
    assert response.status_code == 201
    cb = response.get_json()["callback"]
    now = clock.now()
    assert cb["id"].startswith("API") and cb["status"] == "pending" and cb["number"] == NY_NUMBER
    assert (cb["queue"], cb["ivr"], cb["priority"]) == ("Sales", "Main Line", 10)
    assert cb["place_in_line"] == cb["requested_at"] == cb["due_at"] == iso(now)
    assert cb["expires_at"] == iso(now + timedelta(minutes=120)) and cb["window"] is None
    # Cleaned: no control or format characters, one space between words.
    assert (cb["name"], cb["reason"]) == ("Ada Lovelace", "Invoice #42")
    [saved] = stored(svc)
    assert (saved.callback_id, saved.name, saved.reason) == (cb["id"], "Ada Lovelace", "Invoice #42")
    assert client.get(f"/api/callbacks/{cb['id']}", headers=AUTH).get_json()["callback"] == cb


def test_the_portal_shows_the_name_and_reason_escaped(client, svc, main_line):
    cb = post(client, {**BODY, "reason": "<b>late</b> invoice"}).get_json()["callback"]
    assert log_in(client).status_code == 302
    page = client.get(f"/admin/callbacks/{cb['id']}").get_data(as_text=True)
    assert "Ada Lovelace" in page and "&lt;b&gt;late&lt;/b&gt; invoice" in page
    assert "asked through the API" in page


def test_expiration_counts_open_time_as_for_a_caller(client, svc, clock, main_line):
    with_hours(svc, OFFICE)
    clock.advance(minutes=(monday_at(16, 30) - clock.now()).total_seconds() / 60)
    cb = post(client, BODY).get_json()["callback"]
    # 30 minutes left today, the other 90 from Tuesday's opening at 09:00.
    assert cb["expires_at"] == iso(monday_at(10, 30) + timedelta(days=1))


def test_outside_the_customers_window_it_waits_for_it(client, svc, clock, main_line):
    clock.advance(minutes=(monday_at(21, 0) - clock.now()).total_seconds() / 60)
    cb = post(client, {"queue": "Sales", "number": NY_NUMBER}).get_json()["callback"]
    assert cb["place_in_line"] == iso(clock.now()) and cb["due_at"] == iso(monday_at(8) + timedelta(days=1))


# -- the Idempotency-Key -------------------------------------------------------------------

def test_the_same_key_and_body_answer_the_first_answer_and_store_once(client, svc, main_line):
    first = post(client, BODY)
    again = post(client, BODY)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(stored(svc)) == 1


def test_a_refusal_is_repeated_too(client, svc, main_line):
    first = post(client, {**BODY, "number": "+19005550123"})
    again = post(client, {**BODY, "number": "+19005550123"})
    assert first.status_code == again.status_code == 400 and again.get_json() == first.get_json()


def test_the_same_key_with_another_body_is_422(client, svc, main_line):
    assert post(client, BODY).status_code == 201
    other = post(client, {**BODY, "number": LA_NUMBER})
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["fields"]
    assert [c.number for c in stored(svc)] == [NY_NUMBER]


def test_the_same_key_while_the_first_is_running_is_409(app, client, svc, main_line, monkeypatch):
    answers = []
    create = svc.storage.create_callback

    def slow_create(*args, **kwargs):
        # The repeat arrives while the first request is inside its store.
        answers.append(post(app.test_client(), BODY))
        return create(*args, **kwargs)

    monkeypatch.setattr(svc.storage, "create_callback", slow_create)
    assert post(client, BODY).status_code == 201
    [repeat] = answers
    assert repeat.status_code == 409 and repeat.get_json()["fields"] == {"Idempotency-Key": "in use"}
    assert post(client, BODY).status_code == 201  # done now: the first answer
    assert len(stored(svc)) == 1


def test_a_claim_left_by_a_request_that_died_is_run_again_with_its_callback_id(client, svc, clock, main_line,
                                                                                monkeypatch):
    def dying(*args, **kwargs):
        raise SystemExit("the Lambda was stopped")

    monkeypatch.setattr(svc.storage, "finish_key", dying)
    with pytest.raises(SystemExit):
        post(client, BODY)
    monkeypatch.undo()
    [first] = stored(svc)
    # Not released: the callback was stored and the claim is still running.
    assert post(client, BODY).status_code == 409
    clock.advance(seconds=api_callbacks.RUNNING_LEASE.total_seconds() + 1)
    rerun = post(client, BODY)
    assert rerun.status_code == 201 and rerun.get_json()["callback"]["id"] == first.callback_id
    assert len(stored(svc)) == 1


def test_a_storage_failure_frees_the_key_for_a_retry(client, svc, main_line, monkeypatch):
    from callback.storage import StorageError

    def down(*args, **kwargs):
        raise StorageError("DynamoDB is away")

    monkeypatch.setattr(svc.storage, "create_callback", down)
    assert post(client, BODY).status_code == 503
    monkeypatch.undo()
    assert post(client, BODY).status_code == 201


def test_two_keys_at_once_for_one_number_store_one_callback(app, svc, main_line):
    start = threading.Barrier(2)

    def ask(key):
        start.wait()
        return post(app.test_client(), BODY, key=key)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, ["key-a", "key-b"]))
    assert sorted(a.status_code for a in answers) == [201, 409]
    created = next(a for a in answers if a.status_code == 201).get_json()["callback"]
    refused = next(a for a in answers if a.status_code == 409).get_json()
    assert refused["callback"]["id"] == created["id"] and "number" in refused["fields"]
    assert len(stored(svc)) == 1


def test_two_keys_at_once_for_two_numbers_store_both(app, svc, main_line):
    start = threading.Barrier(2)

    def ask(key, number):
        start.wait()
        return post(app.test_client(), {"queue": "Sales", "number": number}, key=key)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, ["key-a", "key-b"], [NY_NUMBER, LA_NUMBER]))
    assert [a.status_code for a in answers] == [201, 201]
    assert len(stored(svc)) == 2


def test_keys_expire_after_24_hours(client, svc, clock, main_line):
    first = post(client, BODY).get_json()["callback"]
    client.post(f"/api/callbacks/{first['id']}/cancel", headers=AUTH)
    clock.advance(seconds=api_callbacks.KEY_LIFETIME.total_seconds() + 1)
    again = post(client, {**BODY, "number": LA_NUMBER})  # another body: a new request now
    assert again.status_code == 201 and again.get_json()["callback"]["id"] != first["id"]


def test_keys_are_scoped_to_the_token(client, svc, main_line):
    claim = svc.storage.claim_key("another-token's-hash", "key-1", "another body", svc.clock.now(),
                                  lifetime=timedelta(hours=24), lease=timedelta(seconds=60), resource_id="X")
    assert claim.outcome == "new"
    assert post(client, BODY).status_code == 201


@pytest.mark.parametrize("key, status", [(None, 400), ("", 400), ("k" * 256, 400), ("é-key", 400),
                                         ('"quoted-key"', 201)])
def test_the_key_is_required_and_bounded(client, svc, main_line, key, status):
    response = post(client, BODY, key=key)
    assert response.status_code == status
    if status == 400:
        assert "Idempotency-Key" in response.get_json()["fields"] and stored(svc) == []


# -- what is refused ---------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"number": NY_NUMBER}, "queue"),
    ({"queue": "Nowhere", "number": NY_NUMBER}, "queue"),
    ({"queue": "Sales"}, "number"),
    ({"queue": "Sales", "number": "2125551234"}, "number"),
    ({"queue": "Sales", "number": "+19005550123"}, "number"),     # premium rate
    ({"queue": "Sales", "number": "+14115550123"}, "number"),     # no such area code
    ({"queue": "Sales", "number": "+18765550123"}, "number"),     # Jamaica: not a region it calls
    ({"queue": "Sales", "number": "+5215555555555"}, "number"),   # outside the +1 plan
    ({"queue": "Sales", "number": "+15005550123"}, "number"),     # 5XX personal: off by default
    ({"queue": "Sales", "number": NY_NUMBER, "name": "x" * 101}, "name"),
    ({"queue": "Sales", "number": NY_NUMBER, "reason": 42}, "reason"),
    ({"queue": "Sales", "number": NY_NUMBER, "colour": "blue"}, "colour"),
    ({"queue": "Sales", "number": NY_NUMBER, "window": "tomorrow"}, "window"),
    ({"queue": "Sales", "number": NY_NUMBER, "window": {"earliest": "2026-05-04T14:00"}}, "window.earliest"),
])
def test_invalid_requests_answer_400_with_fields_and_store_nothing(client, svc, main_line, body, field):
    response = post(client, body)
    assert response.status_code == 400 and field in response.get_json()["fields"]
    assert set(response.get_json()) == {"error", "fields"}
    assert stored(svc) == []


def test_toll_free_numbers_follow_the_ivrs_rule(client, svc, main_line):
    assert post(client, {"queue": "Sales", "number": "+18005550199"}, key="a").status_code == 201
    with_hours(svc, svc.storage.get_ivr("Main Line").settings.hours, call_toll_free=False)
    svc.directory.invalidate()
    refused = post(client, {"queue": "Support", "number": "+18885550199"}, key="b")
    assert refused.status_code == 400 and "toll-free" in refused.get_json()["fields"]["number"]


def test_a_number_with_a_pending_callback_is_409_with_that_callback(client, svc, main_line):
    first = post(client, BODY, key="a").get_json()["callback"]
    again = post(client, {**BODY, "reason": "again"}, key="b")
    assert again.status_code == 409 and again.get_json()["callback"]["id"] == first["id"]
    # Another queue is another line.
    assert post(client, {**BODY, "queue": "Support"}, key="c").status_code == 201


def test_a_queue_without_callbacks_is_409(client, svc, main_line):
    ivr = svc.storage.get_ivr("Main Line")
    queues = (replace(ivr.queues[0], callback_enabled=False),) + ivr.queues[1:]
    svc.storage.save_ivr(ivr.evolve(queues=queues))
    svc.directory.invalidate()
    response = post(client, BODY)
    assert response.status_code == 409 and stored(svc) == []


# -- windows -------------------------------------------------------------------------------

def window(start, end):
    return {"queue": "Sales", "number": NY_NUMBER, "window": {"earliest": iso(start), "latest": iso(end)}}


def test_a_window_is_due_at_its_start_ranked_there_and_expires_at_its_end(client, svc, main_line):
    with_hours(svc, OFFICE)
    start, end = monday_at(14, 10) + timedelta(days=1), monday_at(16, 0) + timedelta(days=1)
    cb = post(client, window(start, end)).get_json()["callback"]
    assert cb["window"] == {"earliest": iso(start), "latest": iso(end)}
    assert cb["place_in_line"] == cb["due_at"] == iso(start) and cb["expires_at"] == iso(end)
    # A longer window than a half-hour books no slot.
    assert svc.storage.booked_slots("Sales", start - timedelta(hours=1), end) == {}
    # The portal says why it waits.
    assert log_in(client).status_code == 302
    page = client.get(f"/admin/callbacks/{cb['id']}").get_data(as_text=True)
    assert "Window from 14:10 (asked through the API)" in page


def test_a_half_hour_window_books_its_slot_against_the_capacity(client, svc, main_line):
    with_hours(svc, OFFICE, slot_capacity=1)
    start = monday_at(14, 30) + timedelta(days=1)
    assert post(client, window(start, start + slots.SLOT), key="a").status_code == 201
    assert svc.storage.booked_slots("Sales", start, start) == {start: 1}
    full = post(client, {**window(start, start + slots.SLOT), "number": LA_NUMBER}, key="b")
    assert full.status_code == 409 and "window" in full.get_json()["fields"]


@pytest.mark.parametrize("start, end, field", [
    (monday_at(9, 0) - timedelta(hours=1), monday_at(9, 0), "window.earliest"),        # in the past
    (monday_at(14, 0) + timedelta(days=1), monday_at(14, 20) + timedelta(days=1), "window.latest"),
    (monday_at(14, 10) + timedelta(days=1), monday_at(14, 40) + timedelta(days=1), "window"),  # not a slot
    (monday_at(16, 0) + timedelta(days=1), monday_at(18, 0) + timedelta(days=1), "window"),  # past closing
    (monday_at(10, 0) + timedelta(days=5), monday_at(12, 0) + timedelta(days=5), "window"),  # Saturday
    (monday_at(10, 0) + timedelta(days=15), monday_at(12, 0) + timedelta(days=15), "window.latest"),
])
def test_a_window_outside_the_rules_is_400(client, svc, main_line, start, end, field):
    with_hours(svc, OFFICE)
    response = post(client, window(start, end))
    assert response.status_code == 400 and field in response.get_json()["fields"], response.get_json()
    assert stored(svc) == []


def test_a_window_must_lie_in_the_customers_own_window(client, svc, main_line):
    with_hours(svc, OFFICE)
    # 09:00-10:00 in New York is 06:00-07:00 in Los Angeles: before the customer's 08:00.
    start = monday_at(9, 0) + timedelta(days=1)
    refused = post(client, {**window(start, start + timedelta(hours=1)), "number": LA_NUMBER})
    assert refused.status_code == 400 and "customer" in refused.get_json()["fields"]["window"]
    later = monday_at(11, 0) + timedelta(days=1)
    assert post(client, {**window(later, later + timedelta(hours=1)), "number": LA_NUMBER},
                key="k2").status_code == 201


def test_forgetting_a_number_forgets_the_stored_answers_that_show_it(client, svc, main_line, twilio_standin):
    assert post(client, BODY, key="a").status_code == 201
    assert post(client, {**BODY, "reason": "again"}, key="b").status_code == 409  # shows the pending one
    assert post(client, {"queue": "Sales", "number": LA_NUMBER}, key="c").status_code == 201
    assert client.post("/api/numbers/forget", json={"number": NY_NUMBER}, headers=AUTH).status_code == 200
    assert svc.storage.forget_key_answers(NY_NUMBER) == 0  # none left to forget
    # The key is new again: its request runs anew (and the number is stored again).
    again = post(client, BODY, key="a")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    # Another number's answers stay.
    kept = post(client, {"queue": "Sales", "number": LA_NUMBER}, key="c")
    assert kept.headers["Idempotent-Replayed"] == "true"


def test_a_store_whose_answer_was_lost_answers_the_callback_it_made(client, svc, main_line, monkeypatch):
    from callback.storage import StorageError
    create = svc.storage.create_callback

    def lost(*args, **kwargs):
        create(*args, **kwargs)
        raise StorageError("the answer timed out")

    monkeypatch.setattr(svc.storage, "create_callback", lost)
    first = post(client, BODY)
    assert first.status_code == 201
    monkeypatch.undo()
    assert post(client, BODY).get_json() == first.get_json() and len(stored(svc)) == 1


def test_a_store_in_doubt_keeps_the_key_for_a_rerun_under_the_same_id(client, svc, clock, main_line,
                                                                       monkeypatch):
    from callback.storage import StorageError
    create, read = svc.storage.create_callback, svc.storage.get_callback

    def lost(*args, **kwargs):
        create(*args, **kwargs)
        raise StorageError("the answer timed out")

    def unreachable(callback_id):
        raise StorageError("DynamoDB is away")

    monkeypatch.setattr(svc.storage, "create_callback", lost)
    monkeypatch.setattr(svc.storage, "get_callback", unreachable)
    assert post(client, BODY).status_code == 503
    monkeypatch.undo()
    [made] = stored(svc)
    assert post(client, BODY).status_code == 409  # its claim still runs: no second callback
    clock.advance(seconds=api_callbacks.RUNNING_LEASE.total_seconds() + 1)
    rerun = post(client, BODY)
    assert rerun.status_code == 201 and rerun.get_json()["callback"]["id"] == made.callback_id
    assert read(made.callback_id).callback_id == made.callback_id


@FAST
@given(body=st.dictionaries(
    st.sampled_from(["queue", "number", "name", "reason", "window", "bogus"]),
    st.one_of(settings_values, st.sampled_from(["Sales", NY_NUMBER, "+19005550123", "+18765550123"]),
              st.fixed_dictionaries({"earliest": junk_text, "latest": junk_text})),
    max_size=5))
def test_hostile_bodies_never_fail_with_500(app, main_line, body):
    response = post(app.test_client(), body, key=uuid.uuid4().hex)
    assert response.status_code in (201, 400, 409) and response.is_json
