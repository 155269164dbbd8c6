"""The fallback function (#35): what Twilio hears when the app cannot answer. It reads
nothing, so it answers with the app, its tables and its secrets all down."""
import json
import xml.etree.ElementTree as ET

import pytest
from conftest import PUBLIC

from callback import metrics
from callback.web.fallback import create_fallback_app, fallback_twiml


def parse(text):
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


@pytest.mark.parametrize("route", ["/voice/wait", "/voice/offer", "/voice/number", "/voice/confirm",
                                   "/voice/enqueue-done"])
def test_a_caller_whose_hold_loop_failed_goes_back_into_their_queue(route):
    root = parse(fallback_twiml(f"{PUBLIC}{route}?ivr=Main+Line&queue=Sales&joined=1700000000"))
    assert [e.tag for e in root] == ["Say", "Enqueue"]
    assert root.find("Enqueue").text == "Sales" and "kept your place" in root.find("Say").text
    assert root.find("Enqueue").get("waitUrl") is None, "Twilio's own hold music: nothing of the app's"


@pytest.mark.parametrize("error_url", [f"{PUBLIC}/voice/incoming", f"{PUBLIC}/voice/menu?ivr=Main+Line", "",
                                       f"{PUBLIC}/voice/wait?ivr=x", f"{PUBLIC}/voice/wait?queue=" + "x" * 65])
def test_anyone_else_hears_an_apology_then_the_backup_line_or_goodbye(error_url):
    assert [e.tag for e in parse(fallback_twiml(error_url))] == ["Say", "Hangup"]
    root = parse(fallback_twiml(error_url, "+12125550100"))
    assert [e.tag for e in root] == ["Say", "Dial"] and root.find("Dial").text == "+12125550100"


def test_the_fallback_app_answers_with_nothing_configured_and_counts_each_request():
    lines = []
    app = create_fallback_app({"AWS_LAMBDA_FUNCTION_NAME": "callback-dev-fallback",
                               "METRICS_FUNCTION": "callback-dev"})
    metrics.configure(True, "callback-dev", lines.append)
    try:
        response = app.test_client().post("/", data={"CallSid": "CA" + "1" * 32, "ErrorCode": "11200",
                                                     "ErrorUrl": f"{PUBLIC}/voice/wait?queue=Support"})
    finally:
        metrics.configure(False)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert parse(response.get_data(as_text=True)).find("Enqueue").text == "Support"
    [line] = [json.loads(line) for line in lines]
    assert line["FallbackUsed"] == 1 and line["Function"] == "callback-dev" and line["ErrorCode"] == "11200"
    assert line["failed"] == "/dev/voice/wait"
