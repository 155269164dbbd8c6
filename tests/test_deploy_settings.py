"""zappa_settings.json names a WSGI app and a sweep function that exist, with no secrets."""
import importlib
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def settings():
    with open(os.path.join(ROOT, "zappa_settings.json")) as f:
        return json.load(f)


def resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_both_stages_serve_the_wsgi_app_and_run_the_sweep_every_minute():
    stages = settings()
    assert set(stages) == {"dev", "production"}
    dev = stages["dev"]
    assert dev["app_function"] == "app.app" and callable(resolve("app.app"))
    assert dev["runtime"] == "python3.11"
    [event] = dev["events"]
    assert event == {"function": "callback.work.wiring.run_sweep", "expression": "rate(1 minute)"}
    assert re.fullmatch(r"[A-Za-z0-9_.]+", event["function"])
    assert callable(resolve(event["function"]))


def test_no_secret_values_in_the_settings():
    text = json.dumps(settings())
    for name in ("TWILIO_AUTH_TOKEN", "ADMIN_PASSWORD_HASH", "SECRET_KEY", "ADMIN_API_TOKEN"):
        assert name not in text
