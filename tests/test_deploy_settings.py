"""zappa_settings.json, read as Zappa 0.63 reads it, for every stage the repo deploys: a WSGI
app and a sweep that exist, no secrets, the runtime's Python, a bucket of its own, and
nothing that makes a first `zappa deploy` fail or publish what nobody asked for."""
import importlib
import json
import os
import re
from types import SimpleNamespace

import pytest

from devtools import lambda_package

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = os.path.join(ROOT, "zappa_settings.json")
# Lambda runtimes on Amazon Linux 2023 and supported past 2028 (python3.11 and older run on
# Amazon Linux 2, whose end of life was 2026-06-30).
SUPPORTED_RUNTIMES = {"python3.12", "python3.13"}


def settings():
    with open(SETTINGS) as f:
        return json.load(f)


# The app's stages, and beside each the minimal function Twilio falls back to.
STAGES = sorted(s for s in settings() if not s.endswith("-fallback"))
FALLBACKS = sorted(s for s in settings() if s.endswith("-fallback"))


def stage(name):
    return lambda_package.stage_config(SETTINGS, name)


def function_name(name):
    """Zappa's function and API stack name: `<project_name>-<stage>`, slugified."""
    return f"{stage(name)['project_name']}-{name}"


def resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_stages_are_dev_and_production_each_with_its_fallback():
    assert STAGES == ["dev", "production"]
    assert FALLBACKS == ["dev-fallback", "production-fallback"]


@pytest.mark.parametrize("name", FALLBACKS)
def test_a_fallback_stage_is_the_same_package_reading_nothing_and_running_no_sweep(name):
    """A second function from the same package, with no secrets, no tables, no schedule:
    it stands when the app's storage, secrets or code do not; its FallbackUsed metric
    counts under the app's function, where the alarm looks."""
    app_stage = name.removesuffix("-fallback")
    config, parent = stage(name), stage(app_stage)
    assert config["app_function"] == "callback.web.fallback.app" and callable(resolve(config["app_function"]))
    assert config["events"] == [] and not config.get("remote_env")
    env = config["environment_variables"]
    assert "CALLBACK_TABLE_PREFIX" not in env and "PUBLIC_BASE_URL" not in env
    assert env["METRICS_FUNCTION"] == function_name(app_stage)
    for key in ("runtime", "architecture", "s3_bucket", "role_name", "callbacks", "exclude", "exclude_glob",
                "manage_roles", "debug"):
        assert config[key] == parent[key], key
    assert lambda_package.settings_problems("deploy", True, {**config, "s3_bucket": "b", "role_name": "r"},
                                            None) == []


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_serves_the_wsgi_app_and_runs_the_sweep_every_minute(name):
    config = stage(name)
    assert config["app_function"] == "app.app" and callable(resolve("app.app"))
    [event] = config["events"]
    assert event == {"function": "callback.work.wiring.run_sweep", "expression": "rate(1 minute)"}
    assert re.fullmatch(r"[A-Za-z0-9_.]+", event["function"])
    assert callable(resolve(event["function"]))


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_runs_a_supported_runtime_on_the_architecture_the_package_is_built_for(name):
    config = stage(name)
    assert config["runtime"] in SUPPORTED_RUNTIMES
    assert config["architecture"] == "x86_64"
    with open(os.path.join(ROOT, "Makefile")) as f:
        makefile = f.read()
    assert "--platform manylinux2014_x86_64" in makefile


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_uploads_to_its_own_bucket_from_the_infra_stack(name):
    config = stage(name)
    # The template's DeploymentBucket: <function>-deploys-<account>-<region>.
    assert config["s3_bucket"] == f"{function_name(name)}-deploys-REPLACE-WITH-ACCOUNT-ID-{config['aws_region']}"
    assert len({stage(other)["s3_bucket"] for other in STAGES}) == len(STAGES)


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_uses_the_infra_role_and_keeps_secrets_out_of_its_logs(name):
    config = stage(name)
    assert config["manage_roles"] is False and config["role_name"] == f"{function_name(name)}-lambda"
    assert config["debug"] is False and config["log_level"] == "INFO"
    assert config["environment_variables"]["PUBLIC_BASE_URL"].endswith(f"/{name}")
    assert config["environment_variables"]["CALLBACK_TABLE_PREFIX"] in {f"callback-{name}-", "callback-prod-"}


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_packages_only_through_the_hooks_that_check_it(name):
    config = stage(name)
    assert config["callbacks"] == {"settings": "devtools.lambda_package.check_settings",
                                   "zip": "devtools.lambda_package.finish_zip",
                                   "post": "devtools.lambda_package.after_deploy"}
    for dotted in config["callbacks"].values():
        assert callable(resolve(dotted))
    # Zappa matches `exclude` against every file and folder name at any depth (so "build"
    # once stripped twilio/rest/serverless/v1/service/build): only bytecode is excluded.
    assert config["exclude"] == ["*.pyc", "__pycache__"]
    assert config["use_precompiled_packages"] is False, "the Makefile installs the runtime's wheels"
    assert config["keep_warm"] is False and config["slim_handler"] is False
    assert config["touch_path"] == "/health"


def test_no_secret_values_in_the_settings():
    text = json.dumps(settings())
    for name in ("TWILIO_AUTH_TOKEN", "ADMIN_PASSWORD_HASH", "SECRET_KEY", "ADMIN_API_TOKEN"):
        assert name not in text


def hook_cli(command, zip_path=None, websocket=None, **config):
    base = stage("dev")
    base.update(config)
    return SimpleNamespace(command=command, vargs={"zip": zip_path}, stage_config=base, use_websocket=websocket)


def filled(config):
    """A stage with its placeholders filled in, as an operator would."""
    text = json.dumps(config).replace("REPLACE-WITH-ACCOUNT-ID", "123456789012")
    text = text.replace("REPLACE-WITH-PRIVATE-SECRETS-BUCKET", "acme-secrets")
    return json.loads(text.replace("REPLACE-WITH-API-ID", "abc123defg"))


def test_the_settings_hook_refuses_a_websocket_api_a_self_built_zip_and_placeholders():
    import click

    problems = lambda_package.settings_problems
    ready = filled(stage("dev"))
    assert problems("package", False, stage("dev"), None) == []
    assert problems("deploy", True, ready, None) == []
    assert problems("update", True, ready, None) == []

    [websocket] = problems("package", False, ready, "build.lambda-venv.lib.python3.11.site-packages.zappa.handler")
    assert "WebSocket" in websocket
    [own_zip] = problems("deploy", False, ready, None)
    assert "make deploy" in own_zip
    placeholders = problems("deploy", True, stage("dev"), None)
    assert [p.split(" ")[0] for p in placeholders] == ["s3_bucket", "remote_env"]
    # The first deploy makes the API's URL; the update after it must carry it.
    assert problems("deploy", True, {**ready, "environment_variables": stage("dev")["environment_variables"]},
                    None) == []
    assert ["PUBLIC_BASE_URL" in p for p in problems(
        "update", True, {**ready, "environment_variables": stage("dev")["environment_variables"]}, None)] == [True]
    [no_bucket] = problems("deploy", True, {k: v for k, v in ready.items() if k != "s3_bucket"}, None)
    assert "zappa-<random>" in no_bucket

    with pytest.raises(click.ClickException, match="WebSocket"):
        lambda_package.check_settings(hook_cli("package", websocket="pkg.ws"))
    lambda_package.check_settings(hook_cli("package"))


def test_the_post_deploy_hook_bounds_the_functions_asynchronous_invocations():
    calls = []
    client = SimpleNamespace(put_function_event_invoke_config=lambda **kw: calls.append(kw))
    lambda_package.after_deploy(SimpleNamespace(lambda_name="callback-dev", zappa=SimpleNamespace(lambda_client=client)))
    assert calls == [{"FunctionName": "callback-dev", "MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}]

