"""What a cold start imports: what the first request needs, and not the REST stack,
which only a request that places or changes a call needs (built on first use)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REST_STACK = {"requests", "twilio.rest", "twilio.http.http_client"}


def loaded_after(code):
    """Modules in sys.modules after `code` runs in a fresh interpreter."""
    report = "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code + report], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_importing_the_app_leaves_the_rest_client_to_its_first_use():
    assert loaded_after("import app") & REST_STACK == set()


def test_the_first_rest_call_brings_it():
    loaded = loaded_after("import app\napp.app.extensions['callback'].telephony.client")
    assert REST_STACK <= loaded
