"""The CloudFormation template and the PynamoDB models agree; the role is least privilege
and usable where Zappa uses it; cfn-lint finds nothing; the README deploys it under a stack
name of its own."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from callback.config import Config
from callback.storage import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def template():
    with open(os.path.join(ROOT, "infra", "cloudformation.json")) as f:
        return json.load(f)


def tables(template):
    return {r["Properties"]["TableName"]["Fn::Sub"].replace("${TablePrefix}", ""): r["Properties"]
            for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"}


def keys(schema):
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def test_every_model_table_is_in_the_template_with_the_same_keys_and_indexes(template):
    declared = tables(template)
    storage = Storage(Config(CALLBACK_TABLE_PREFIX=""))
    assert set(declared) == set(storage.table_names())
    for model in storage.models:
        schema, props = model._get_schema(), declared[model.Meta.table_name]
        assert keys(props["KeySchema"]) == keys(schema["key_schema"])
        assert ({a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
                == {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]})
        model_indexes = {g["index_name"]: (keys(g["key_schema"]), g["projection"]["ProjectionType"])
                         for g in schema["global_secondary_indexes"]}
        template_indexes = {g["IndexName"]: (keys(g["KeySchema"]), g["Projection"]["ProjectionType"])
                            for g in props.get("GlobalSecondaryIndexes", [])}
        assert template_indexes == model_indexes


def test_tables_are_on_demand_recoverable_and_ttl_on_ephemeral_records(template):
    declared = tables(template)
    for name, props in declared.items():
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True,
                                                             "RecoveryPeriodInDays": {"Ref": "BackupRecoveryDays"}}
    assert template["Parameters"]["BackupRecoveryDays"]["MaxValue"] == 35
    # Callbacks too: an ended one (its number, its attempts) goes after RETENTION_DAYS.
    # The audit trail too: an entry goes after AUDIT_RETENTION_DAYS.
    for name in ("config", "waiting-calls", "callbacks", "audit"):
        assert declared[name]["TimeToLiveSpecification"] == {"AttributeName": "expires_ttl", "Enabled": True}


def policies(template):
    """Every policy granted to the Lambda role: its inline ones, and the policy resources
    attached to it (each as granted when its condition holds)."""
    resources = template["Resources"]
    attached = [r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::IAM::Policy" and {"Ref": "LambdaRole"} in r["Properties"]["Roles"]]
    return resources["LambdaRole"]["Properties"]["Policies"] + attached


def test_the_lambda_role_grants_only_what_the_app_uses(template):
    statements = [s for p in policies(template) for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert actions == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
                       "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
                       "dynamodb:Query", "s3:GetObject", "ssm:GetParametersByPath", "lambda:InvokeFunction"}
    assert not any("*" in a for a in actions)
    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    for statement in dynamo:
        assert statement["Resource"] != "*"
    # Dispatch runs in an asynchronous invocation of the same function (or, with provisioned
    # concurrency or SnapStart, an alias Zappa points API Gateway at), and only that.
    invoke = [s for s in statements if "lambda:InvokeFunction" in s["Action"]]
    assert [s["Action"] for s in invoke] == [["lambda:InvokeFunction"]]
    function = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${FunctionName}"
    assert invoke[0]["Resource"] == [{"Fn::Sub": function}, {"Fn::Sub": function + ":*"}]


def test_the_app_may_only_add_to_the_audit_trail_and_read_it(template):
    """Entries are never edited: the role grants no update or delete on the audit table, and
    nothing else grants anything on it (TTL, not the app, removes old entries)."""
    statements = [s for p in policies(template) for s in p["PolicyDocument"]["Statement"]]
    on_audit = [s for s in statements if "AuditTable" in json.dumps(s["Resource"])]
    assert [sorted(s["Action"]) for s in on_audit] == [["dynamodb:DescribeTable", "dynamodb:PutItem",
                                                        "dynamodb:Query"]]
    assert on_audit[0]["Resource"] == [{"Fn::GetAtt": ["AuditTable", "Arn"]},
                                       {"Fn::Sub": "${AuditTable.Arn}/index/*"}]


def test_the_secrets_grant_follows_where_the_stage_keeps_them(template):
    """The remote_env object, or the Parameter Store path (GetParametersByPath is authorized
    against the path requested), each only when its parameter is set."""
    resources = template["Resources"]
    obj, store = resources["SecretsObjectPolicy"], resources["SecretsParameterStorePolicy"]
    assert (obj["Condition"], store["Condition"]) == ("UseSecretsObject", "UseParameterStore")
    assert template["Conditions"]["UseParameterStore"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SecretsParameterPath"}, ""]}]}
    [statement] = store["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["ssm:GetParametersByPath"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SecretsParameterPath}"}
    [statement] = obj["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["s3:GetObject"]


def test_the_role_is_trusted_by_exactly_the_services_zappa_hands_it_to(template):
    """With manage_roles false Zappa passes the role to Lambda, as the API Gateway
    integration's credentials, and as the sweep rule's RoleArn (PutRule refuses a role
    events.amazonaws.com cannot assume)."""
    [statement] = template["Resources"]["LambdaRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert set(statement["Principal"]) == {"Service"}
    assert sorted(statement["Principal"]["Service"]) == [
        "apigateway.amazonaws.com", "events.amazonaws.com", "lambda.amazonaws.com"]


def test_the_functions_logs_are_kept_for_a_set_time(template):
    group = template["Resources"]["LogGroup"]
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_zappas_uploads_go_to_a_private_bucket_of_the_stage(template):
    bucket = template["Resources"]["DeploymentBucket"]
    assert bucket["Properties"]["BucketName"] == {"Fn::Sub": "${FunctionName}-deploys-${AWS::AccountId}-${AWS::Region}"}
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    assert bucket["DeletionPolicy"] == "Retain"


def test_cfn_lint_finds_nothing():
    cfn_lint = shutil.which("cfn-lint", path=os.path.dirname(sys.executable)) or shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is in requirements-dev.txt"
    run = subprocess.run([cfn_lint, os.path.join(ROOT, "infra", "cloudformation.json")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_readme_deploys_the_template_under_a_stack_name_zappa_never_uses():
    """Zappa creates and updates a stack named `<project>-<stage>` for the API; the tables
    and role in that stack would be deleted or orphaned by `zappa deploy`/`undeploy`."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(ROOT, "zappa_settings.json")) as f:
        stages = json.load(f)
    zappa_stacks = {f"callback-{stage}" for stage in stages}
    named = re.findall(r"--stack-name\s+(\S+)", readme)
    assert named, "the README's deploy steps create the infra stack"
    for name in named:
        assert name not in zappa_stacks and name.endswith("-infra"), name


def test_zappa_uses_the_templates_role():
    with open(os.path.join(ROOT, "zappa_settings.json")) as f:
        dev = json.load(f)["dev"]
    assert dev["manage_roles"] is False and dev["role_name"] == "callback-dev-lambda"
    assert dev["debug"] is False and dev["log_level"] == "INFO"
    assert dev["s3_bucket"].startswith("callback-dev-deploys-")


def test_every_alarm_watches_a_metric_the_code_emits_or_lambda_reports(template):
    from callback import metrics

    alarms = {name: r["Properties"] for name, r in template["Resources"].items()
              if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = set()
    for name, alarm in alarms.items():
        [dimension] = alarm["Dimensions"]
        assert dimension["Value"] == {"Ref": "FunctionName"}, name
        if alarm["Namespace"] == metrics.NAMESPACE:
            assert alarm["MetricName"] in metrics.NAMES, name
            assert dimension["Name"] == metrics.DIMENSION, name
        else:
            assert (alarm["Namespace"], dimension["Name"]) == ("AWS/Lambda", "FunctionName"), name
        assert alarm["AlarmActions"] == alarm["OKActions"], name
        watched.add(alarm["MetricName"])
    assert {metrics.WEBHOOK_ERRORS, metrics.FALLBACK_USED, metrics.SWEEP_RUNS, metrics.SWEEP_ERRORS,
            metrics.CALLBACKS_EXPIRED, metrics.ACCOUNT_REFUSALS, "Throttles"} <= watched
    # A heartbeat: no sweep at all must alarm, not read as "no data, fine".
    [heartbeat] = [a for a in alarms.values() if a["MetricName"] == metrics.SWEEP_RUNS]
    assert heartbeat["TreatMissingData"] == "breaching" and heartbeat["ComparisonOperator"] == "LessThanThreshold"


def test_every_alarm_has_a_runbook_entry_in_the_readme(template):
    readme = open(os.path.join(ROOT, "README.md")).read()
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            entry = resource["Properties"]["AlarmDescription"].split("Runbook: '")[-1].split("'")[0]
            assert f"**{entry}**" in readme, f"{name}: no runbook entry '{entry}' in the README"
