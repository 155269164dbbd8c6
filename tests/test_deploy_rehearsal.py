"""The README's deploy, rehearsed against moto's AWS: the infra stack, `zappa deploy`,
`zappa update`, `zappa undeploy`, each by Zappa's own CLI with the repo's settings (their
placeholders filled in, as an operator would) and the zip `make package` built.

moto does not check trust policies or run the function; what it shows is what Zappa
creates and deletes: the tables, role, bucket and logs stay in their own stack through
every step, no WebSocket API appears, the sweep's rule targets the function, and the
function's asynchronous invocations are bounded by the deploy itself.
"""
import json
import os
import subprocess
import urllib.request

import boto3
import pytest
from conftest import moto_server

from devtools import lambda_package

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.slow,
              # moto's CloudFormation makes no AWS::S3::BucketPolicy (the deploy bucket's TLS-only
              # rule) and no AWS::CloudWatch::Alarm (test_infra checks those), and warns; the rest
              # of the template it creates.
              pytest.mark.filterwarnings("ignore:Tried to parse AWS.+BucketPolicy:UserWarning"),
              pytest.mark.filterwarnings("ignore:Tried to parse AWS.+CloudWatch.+Alarm:UserWarning")]
ACCOUNT = "123456789012"
FUNCTION = "callback-dev"
INFRA_STACK = f"{FUNCTION}-infra"
TABLES = {f"{FUNCTION}-config", f"{FUNCTION}-waiting-calls", f"{FUNCTION}-callbacks", f"{FUNCTION}-audit"}
BUCKET = f"{FUNCTION}-deploys-{ACCOUNT}-us-east-1"


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS over HTTP on loopback, every client pointed at it."""
    with moto_server() as url:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        # moto's accounts are shared by every server of the process: start empty.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        yield env


def client(service):
    return boto3.client(service, region_name="us-east-1")


def create_infra_stack():
    """README step 1: the template, under its own stack name."""
    with open(os.path.join(ROOT, "infra", "cloudformation.json")) as f:
        template = f.read()
    client("cloudformation").create_stack(
        StackName=INFRA_STACK, TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "TablePrefix", "ParameterValue": f"{FUNCTION}-"},
                    {"ParameterKey": "FunctionName", "ParameterValue": FUNCTION},
                    {"ParameterKey": "SecretsObject", "ParameterValue": "acme-secrets/callback/dev.json"}])
    stack = client("cloudformation").describe_stacks(StackName=INFRA_STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def operator_settings(path, outputs, api_id=None):
    """zappa_settings.json with its placeholders filled from the stack's outputs."""
    with open(os.path.join(ROOT, "zappa_settings.json")) as f:
        text = f.read()
    text = text.replace(f"{FUNCTION}-deploys-REPLACE-WITH-ACCOUNT-ID-us-east-1", outputs["DeploymentBucket"])
    text = text.replace("REPLACE-WITH-PRIVATE-SECRETS-BUCKET", "acme-secrets")
    if api_id:
        text = text.replace("REPLACE-WITH-API-ID", api_id)
    settings = json.loads(text)
    # moto serves no execute-api host for Zappa's closing GET of the new API.
    settings["dev"]["touch"] = False
    path.write_text(json.dumps(settings))
    return path


# moto 5.2.5 has no ListFunctionUrlConfigs, which `zappa update` calls to delete a function
# URL this app never makes: that one call is stood in for, nothing else of Zappa's.
MOTO_GAPS = """
import zappa.core
zappa.core.Zappa.delete_lambda_function_url = lambda self, function_arn: None
"""


def zappa(aws, *args, shim=None):
    """Zappa's CLI as `make deploy` runs it: from the project root, with the Lambda's
    site-packages as its virtualenv and the hooks importable."""
    path = ROOT
    if shim is not None:
        (shim / "sitecustomize.py").write_text(MOTO_GAPS)
        path = f"{shim}{os.pathsep}{ROOT}"
    env = {**os.environ, **aws, "VIRTUAL_ENV": os.path.join(ROOT, "build", ".lambda-env-dev"), "PYTHONPATH": path}
    zappa_cli = os.path.join(ROOT, ".venv", "bin", "zappa")
    run = subprocess.run([zappa_cli, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return run.returncode, run.stdout + run.stderr


def lasting_resources_are_in_place():
    """The infra stack's tables, role, bucket and log group, all still there and its own."""
    resources = client("cloudformation").describe_stack_resources(StackName=INFRA_STACK)["StackResources"]
    assert {r.get("LogicalResourceId") for r in resources} >= {
        "ConfigTable", "WaitingCallsTable", "CallbacksTable", "AuditTable", "LambdaRole", "LogGroup",
        "DeploymentBucket"}
    assert TABLES <= set(client("dynamodb").list_tables()["TableNames"])
    assert client("iam").get_role(RoleName=f"{FUNCTION}-lambda")["Role"]["Arn"]
    groups = client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{FUNCTION}")["logGroups"]
    # The app's and its fallback function's, each kept for the set time.
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups} == {
        f"/aws/lambda/{FUNCTION}": 30, f"/aws/lambda/{FUNCTION}-fallback": 30}
    assert BUCKET in {b["Name"] for b in client("s3").list_buckets()["Buckets"]}


def test_deploy_update_and_undeploy_leave_the_lasting_resources_alone(aws, lambda_zip, tmp_path):
    outputs = create_infra_stack()
    assert outputs["DeploymentBucket"] == BUCKET
    settings = operator_settings(tmp_path / "zappa_settings.json", outputs)

    assert lambda_package.is_deployed("dev") is False, "make deploy runs `zappa deploy`"
    code, output = zappa(aws, "deploy", "dev", "--zip", lambda_zip, "-s", str(settings))
    assert code == 0, output[-4000:]
    assert lambda_package.is_deployed("dev") is True, "make deploy, run again, runs `zappa update`"
    assert "PUBLIC_BASE_URL is still a placeholder" in output
    assert "none is retried" in output, "the post-deploy hook ran"

    # Zappa's API lives in its own stack, named as Zappa names it; the infra stack is apart.
    stacks = {s["StackName"] for s in client("cloudformation").describe_stacks()["Stacks"]}
    assert stacks == {INFRA_STACK, FUNCTION}
    lasting_resources_are_in_place()
    assert {b["Name"] for b in client("s3").list_buckets()["Buckets"]} == {BUCKET}, "no zappa-<random> bucket"
    assert client("apigatewayv2").get_apis()["Items"] == [], "no WebSocket API"

    lam = client("lambda")
    function = lam.get_function_configuration(FunctionName=FUNCTION)
    assert function["Runtime"] == "python3.13" and function["Architectures"] == ["x86_64"]
    assert function["Role"] == client("iam").get_role(RoleName=f"{FUNCTION}-lambda")["Role"]["Arn"]
    invoke_config = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    assert (invoke_config["MaximumEventAgeInSeconds"], invoke_config["MaximumRetryAttempts"]) == (60, 0)

    events = client("events")
    [rule] = [r for r in events.list_rules()["Rules"] if "run_sweep" in r["Name"]]
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == function["FunctionArn"]

    # The update refuses the placeholder API URL, then takes the one the deploy made.
    code, output = zappa(aws, "update", "dev", "--zip", lambda_zip, "-s", str(settings))
    assert code != 0 and "PUBLIC_BASE_URL is still a placeholder" in output
    [api] = client("apigateway").get_rest_apis()["items"]
    settings = operator_settings(tmp_path / "zappa_settings.json", outputs, api_id=api["id"])
    code, output = zappa(aws, "update", "dev", "--zip", lambda_zip, "-s", str(settings), shim=tmp_path)
    assert code == 0, output[-4000:]
    lasting_resources_are_in_place()
    assert client("apigatewayv2").get_apis()["Items"] == []
    assert lam.get_function_event_invoke_config(FunctionName=FUNCTION)["MaximumRetryAttempts"] == 0

    code, output = zappa(aws, "undeploy", "dev", "--yes", "-s", str(settings))
    assert code == 0, output[-4000:]
    assert FUNCTION not in {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    lasting_resources_are_in_place()


def test_a_deploy_that_would_build_its_own_zip_is_refused_before_anything_is_created(aws, tmp_path):
    outputs = create_infra_stack()
    settings = operator_settings(tmp_path / "zappa_settings.json", outputs)
    code, output = zappa(aws, "deploy", "dev", "-s", str(settings))
    assert code != 0 and "make deploy" in output
    assert client("lambda").list_functions()["Functions"] == []
