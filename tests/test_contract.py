"""Every REST request the app sends exists in Twilio's OpenAPI description."""
import json
import os
import re
from functools import lru_cache

import pytest

from callback.telephony import CallGone, Telephony, TelephonyError

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "twilio", "twilio_api_v2010.json")


@lru_cache(maxsize=1)
def operations():
    """(compiled path regex, method) -> allowed form parameter names."""
    if not os.path.exists(SPEC):
        pytest.skip("Twilio's OpenAPI description is not beside the repository")
    with open(SPEC) as f:
        spec = json.load(f)
    ops = {}
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", re.escape(path).replace(r"\{", "{")
                                          .replace(r"\}", "}")) + "$")
        for method, op in item.items():
            if method not in ("get", "post", "delete"):
                continue
            schema = (op.get("requestBody", {}).get("content", {})
                      .get("application/x-www-form-urlencoded", {}).get("schema", {}))
            ops[(pattern, method.upper())] = (set(schema.get("properties", {})), set(schema.get("required", [])))
    return ops


def assert_in_spec(request):
    for (pattern, method), (allowed, required) in operations().items():
        if method == request["method"] and pattern.match(request["path"]):
            sent = set(request["params"])
            assert sent <= allowed, f"{request['path']}: not in the spec: {sorted(sent - allowed)}"
            assert required <= sent, f"{request['path']}: missing {sorted(required - sent)}"
            return
    raise AssertionError(f"{request['method']} {request['path']} is not in Twilio's API")


def test_every_telephony_call_matches_the_spec(app, twilio_standin):
    telephony = Telephony(app.extensions["callback"].config)
    sid = telephony.place_call(to="+14155550101", from_="+15005550006",
                               url="https://x.example/voice/a", status_callback="https://x.example/s",
                               timeout=20)
    telephony.place_call(to="+12125551234", from_="+15005550006", url="https://x.example/voice/c",
                         status_callback="https://x.example/s", timeout=30, machine_detection=True)
    telephony.redirect_call(sid, "https://x.example/voice/notice")
    assert telephony.call_status(sid) == "queued"
    telephony.hang_up(sid)
    with pytest.raises(CallGone):
        telephony.redirect_call(sid, "https://x.example/voice/notice")
    twilio_standin.fail_next(500, 20500)
    with pytest.raises(TelephonyError):
        telephony.hang_up(sid)
    assert len(twilio_standin.requests) == 7
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_a_whole_dispatch_journey_sends_only_spec_requests(twilio, svc, clock, twilio_standin):
    from test_dispatch import ALICE, CUSTOMER, answer, ringing, status, store_callback

    from callback.models import Ivr, Queue

    svc.storage.save_ivr(Ivr("Main Line", numbers=("+15005550006",), queues=(Queue("Sales", "Main Line", 10),)))
    svc.storage.save_agent_profile("alice", name="Alice", phone=ALICE, queues=["Sales"],
                                   now=clock.now(), create=True)
    store_callback(svc, clock)
    svc.storage.set_agent_presence("alice", "available", clock.now())
    svc.dispatcher.dispatch()
    agent_leg = ringing(twilio_standin, ALICE)
    answer(twilio, agent_leg)
    status(twilio, ringing(twilio_standin, CUSTOMER), "no-answer")
    assert len(twilio_standin.requests) >= 3
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_unreachable_twilio_is_a_telephony_error(app):
    config = app.extensions["callback"].config.with_overrides(
        {"TWILIO_API_BASE_URL": "http://127.0.0.1:9", "TWILIO_REST_TIMEOUT_SECONDS": 1})
    with pytest.raises(TelephonyError):
        Telephony(config).place_call(to="+14155550101", from_="+15005550006", url="https://x/a",
                                     status_callback="https://x/s", timeout=20)
