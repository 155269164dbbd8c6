"""The soak's request counts (issue #35): DynamoDB requests seen on the botocore session and
put down to what the thread was doing, requests served by route family, the sweep's runs
from its metric line, Twilio REST requests by kind, and the division per completed
callback and per holding caller-minute. No soak runs here."""
import json
from types import SimpleNamespace

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse

from bench.meter import HANDOFF, SWEEP, Meter, rest_kind, route_family, run_usage

ACCOUNT = "/2010-04-01/Accounts/AC" + "5" * 32
CALL = "CA" + "a" * 32
CONFERENCE = "CF" + "b" * 32


@pytest.mark.parametrize("path, family", [
    ("/voice/wait", "hold"),
    ("/voice/incoming", "voice"),
    ("/voice/agent/answer?callback=x&attempt=1", "voice"),
    ("/voice/agent/status", "status"),
    ("/voice/customer/status", "status"),
    ("/voice/voicemail/status", "status"),
    ("/voice/customer/amd", "amd"),
    ("/voice/conference", "conference"),
    ("/voice/hold-clip.wav", "audio"),
    ("/sms", "sms"),
    ("/api/agents/a00/status", "api"),
    ("/admin", "other"),
])
def test_each_route_a_request_reaches_has_a_family(path, family):
    assert route_family(path) == family


@pytest.mark.parametrize("method, path, params, kind", [
    ("POST", f"{ACCOUNT}/Calls.json", {"To": ["+1"]}, "create call"),
    ("GET", f"{ACCOUNT}/Calls/{CALL}.json", {}, "fetch call"),
    ("POST", f"{ACCOUNT}/Calls/{CALL}.json", {"Status": ["completed"]}, "hang up call"),
    ("POST", f"{ACCOUNT}/Calls/{CALL}.json", {"Url": ["https://x/voice/bye"]}, "redirect call"),
    ("POST", f"{ACCOUNT}/Calls/{CALL}.json", {"Twiml": ["<Response/>"]}, "redirect call"),
    ("DELETE", f"{ACCOUNT}/Calls/{CALL}.json", None, "delete call"),
    ("POST", f"{ACCOUNT}/Conferences/{CONFERENCE}/Participants/{CALL}.json", {},
     "update conference participant"),
    ("GET", f"{ACCOUNT}/Conferences.json", {}, "list conferences"),
    ("POST", f"{ACCOUNT}/Messages.json", {}, "send text"),
    ("POST", f"{ACCOUNT}/IncomingPhoneNumbers/PN{'c' * 32}.json", {}, "POST /IncomingPhoneNumbers/{sid}"),
    ("POST", f"/v2/Services/VA{'d' * 32}/Verifications", {}, "POST /v2/Services/{sid}/Verifications"),
])
def test_each_twilio_rest_request_is_named_for_what_it_did(method, path, params, kind):
    assert rest_kind(method, path, params) == kind


class _Answer:
    """An HTTP body botocore reads (`stream()`), for a fake DynamoDB answer."""

    def stream(self, **_):
        yield b"{}"


def test_dynamodb_requests_are_counted_on_the_session_and_put_down_to_what_the_thread_did():
    meter = Meter()
    session = botocore.session.get_session()
    meter.watch_dynamodb(session)  # before the client, as the soak's app processes do
    client = session.create_client("dynamodb", "us-east-1", aws_access_key_id="x",
                                   aws_secret_access_key="y")
    # Every request answered "{}" where it would go on the wire: nothing leaves the process.
    client.meta.events.register("before-send.dynamodb", lambda request, **_: AWSResponse(
        request.url, 200, {}, _Answer()))
    key = {"pk": {"S": "1"}}
    query = {"TableName": "t", "KeyConditionExpression": "pk = :p",
             "ExpressionAttributeValues": {":p": key["pk"]}}
    client.get_item(TableName="t", Key=key)
    with meter.source(SWEEP):
        client.query(**query)
    with meter.source(HANDOFF):
        client.query(**query)
        client.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": key}}])
    assert meter.snapshot()["dynamodb"] == {"other": {"GetItem": 1}, SWEEP: {"Query": 1},
                                            HANDOFF: {"Query": 1, "TransactWriteItems": 1}}


def test_requests_served_are_counted_by_family_and_their_dynamodb_requests_put_down_to_it():
    meter = Meter()
    seen = []

    def app(environ, start_response):
        seen.append(meter.local.source)
        meter._dynamodb_request(SimpleNamespace(name="UpdateItem"))
        start_response("200 OK", [])
        return [b""]

    served = meter.wsgi(app)
    for path in ("/voice/wait", "/voice/wait", "/voice/customer/amd"):
        served({"PATH_INFO": path}, lambda *args: None)
    snapshot = meter.snapshot()
    assert snapshot["served"] == {"hold": 2, "amd": 1}
    assert snapshot["dynamodb"] == {"webhooks: hold": {"UpdateItem": 2}, "webhooks: amd": {"UpdateItem": 1}}
    assert seen == ["webhooks: hold", "webhooks: hold", "webhooks: amd"]
    assert getattr(meter.local, "source", None) is None  # the thread's source is back as it was


def test_the_sweep_runs_are_read_from_its_metric_line_and_other_lines_are_ignored():
    meter = Meter()
    meter.metric_line(json.dumps({"_aws": {}, "event": "sweep", "SweepRuns": 1, "SweepDuration": 40}))
    meter.metric_line(json.dumps({"_aws": {}, "route": "/voice/wait", "WebhookLatency": 3}))
    meter.metric_line("not json")
    assert meter.snapshot()["sweeps"] == 1


def test_the_processes_counts_add_up_and_divide_per_completed_callback_and_holding_caller_minute():
    first = {"dynamodb": {"webhooks: hold": {"UpdateItem": 30}, SWEEP: {"Query": 40}},
             "served": {"hold": 20, "status": 10}, "handoffs": {"dispatch requested": 5, "dispatch run": 6},
             "sweeps": 4}
    second = {"dynamodb": {HANDOFF: {"TransactWriteItems": 10}, SWEEP: {"Query": 20, "GetItem": 20}},
              "served": {"hold": 10}, "handoffs": {"settle run": 2}, "sweeps": 4}
    rest = [{"method": "POST", "path": f"{ACCOUNT}/Calls.json", "params": {}},
            {"method": "POST", "path": f"{ACCOUNT}/Calls/{CALL}.json", "params": {"Status": ["completed"]}}]
    records = [SimpleNamespace(kind="caller", held=600.0), SimpleNamespace(kind="caller", held=300.0),
               SimpleNamespace(kind="agent", held=0.0)]
    usage = run_usage([first, second], rest, records, completed=4, expected=3)
    figures = usage.figures()
    assert figures["holding_caller_minutes"] == 15.0
    rows = figures["rows"]
    assert rows["DynamoDB requests: webhooks and hand-offs"] == {
        "total": 40, "per_completed_callback": 10.0, "per_holding_caller_minute": 2.67}
    assert rows["DynamoDB requests: the sweep"]["total"] == 80
    assert rows["Lambda invocations: webhooks and API requests"]["total"] == 40
    assert rows["Lambda invocations: hand-offs"]["total"] == 8  # runs, not requests
    assert rows["Lambda invocations: the sweep"]["total"] == 8
    assert rows["Twilio REST requests"] == {"total": 2, "per_completed_callback": 0.5,
                                            "per_holding_caller_minute": 0.13}
    assert figures["dynamodb_by_operation"] == {"Query": 60, "UpdateItem": 30, "GetItem": 20,
                                                "TransactWriteItems": 10}
    assert figures["dynamodb_per_sweep_run"] == 10.0
    assert figures["hold_webhooks_per_holding_caller_minute"] == 2.0
    assert figures["twilio_rest_by_kind"] == {"create call": 1, "hang up call": 1}
    text = "\n".join(usage.lines())
    assert "| Twilio REST requests | 2 | 0.5 | 0.13 |" in text
    assert "counts of 2 of 3 app processes came back" in text


def test_without_a_completed_callback_or_a_holding_minute_the_ratios_are_not_made_up():
    usage = run_usage([], [], [], completed=0)
    assert all(row["per_completed_callback"] is None and row["per_holding_caller_minute"] is None
               for row in usage.figures()["rows"].values())
    assert "| Twilio REST requests | 0 | n/a | n/a |" in usage.lines()
