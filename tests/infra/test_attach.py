"""More tables on one cache (infra/table.json) and a user's own function (infra/examples/consumer.json).

Deployed into moto after the main stack, through its exports; then the
functional side: one invalidator serving two tables with different key
schemas, the attached one learned by DescribeTable (KEY_SCHEMA lists only the
main stack's table, and attaching a table never updates the main stack).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfn_rules import refusals
from test_moto_deploy import PARAMETERS, REGION, STACK, _deploy, _upload_code, moto_copy

import invalidator.handler as invalidator_handler
from streamcache.keys import cache_key
from streamcache.local import events
from streamcache.local.inspect import holding

REPO = Path(__file__).resolve().parents[2]


def _load(path: str) -> dict[str, Any]:
    return json.loads((REPO / path).read_text())


def _create_users_table() -> str:
    """An existing table with a hash-only key, as a second team's table is."""
    table = boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="users",
        KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return str(table["LatestStreamArn"])


def _deploy_stack(name: str, body: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture
def main_stack(aws: None, template: dict[str, Any]) -> dict[str, str]:
    _upload_code()
    return _deploy(moto_copy(template, PARAMETERS), PARAMETERS)


def test_table_stack_maps_the_attached_stream_to_the_shared_invalidator(main_stack: dict[str, str]) -> None:
    stream = _create_users_table()
    given = {"MainStackName": STACK, "TableName": "users", "StreamArn": stream}
    outputs = _deploy_stack("sc-users", moto_copy(_load("infra/table.json"), given), given)
    lam = boto3.client("lambda", region_name=REGION)
    invalidator = lam.get_function_configuration(FunctionName=main_stack["InvalidatorFunctionName"])[
        "FunctionArn"
    ]
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    by_source = {m["EventSourceArn"]: m for m in mappings if m["FunctionArn"] == invalidator}
    assert set(by_source) == {main_stack["StreamArn"], stream}  # one invalidator, two tables
    attached = by_source[stream]
    assert attached["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert attached["BisectBatchOnFunctionError"] is True
    assert attached["DestinationConfig"] == by_source[main_stack["StreamArn"]]["DestinationConfig"]
    assert outputs["ConsumerTablePolicyArn"].startswith("arn:aws:iam::")


def test_table_stack_grants_the_shared_roles_this_stream_and_table(main_stack: dict[str, str]) -> None:
    stream = _create_users_table()
    given = {"MainStackName": STACK, "TableName": "users", "StreamArn": stream}
    _deploy_stack("sc-users", moto_copy(_load("infra/table.json"), given), given)
    iam = boto3.client("iam", region_name=REGION)
    granted: dict[str, set[str]] = {}
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            if name.startswith("sc-users-"):
                document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
                granted[name] = {a for s in document["Statement"] for a in s["Action"]}
    assert "dynamodb:GetRecords" in granted["sc-users-invalidator"]
    assert "dynamodb:DescribeTable" in granted["sc-users-invalidator"]  # the key schema comes from the table
    assert (
        "dynamodb:GetItem" in granted["sc-users-reader"]
        and "dynamodb:GetRecords" not in granted["sc-users-reader"]
    )
    assert "dynamodb:GetRecords" in granted["sc-users-redriver"]


def test_table_stack_refuses_a_record_age_lambda_refuses() -> None:
    table = _load("infra/table.json")
    given = {"MainStackName": "sc", "TableName": "users", "StreamArn": "x", "MaximumRecordAgeInSeconds": "30"}
    assert refusals(table, given)


def test_consumer_example_deploys_with_the_main_stack_exports(main_stack: dict[str, str]) -> None:
    layer = boto3.client("lambda", region_name=REGION).list_layers()["Layers"][0]["LatestMatchingVersion"]
    given = {"MainStackName": STACK, "LayerArn": layer["LayerVersionArn"]}
    outputs = _deploy_stack("sc-consumer", moto_copy(_load("infra/examples/consumer.json"), given), given)
    config = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=outputs["ConsumerFunctionName"]
    )
    env = config["Environment"]["Variables"]
    reader_env = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=main_stack["ReaderFunctionName"]
    )["Environment"]["Variables"]
    assert env["REDIS_URL"] == reader_env["REDIS_URL"] and env["REDIS_CLUSTER"] == reader_env["REDIS_CLUSTER"]
    assert env["TABLE_NAME"] == main_stack["TableName"]
    assert env["REDIS_AUTH_SECRET_ARN"] == main_stack["ConsumerSecretArn"]
    # moto's CloudFormation drops Layers (as it drops Architectures): the template says it instead
    assert [layer["Arn"] for layer in config.get("Layers", [])] in ([given["LayerArn"]], [])
    function = _load("infra/examples/consumer.json")["Resources"]["ConsumerFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": "LayerArn"}] and function["Architectures"] == ["arm64"]
    assert config["VpcConfig"]["SecurityGroupIds"] == [main_stack["ClientSecurityGroupId"]]
    assert ",".join(config["VpcConfig"]["SubnetIds"]) == main_stack["PrivateSubnetIds"]


def test_consumer_example_code_is_the_documented_one() -> None:
    code = _load("infra/examples/consumer.json")["Resources"]["ConsumerFunction"]["Properties"]["Code"][
        "ZipFile"
    ]
    body = code.split('"""', 2)[2].strip()
    assert body in (REPO / "docs" / "deploy.md").read_text()
    compile(code, "index.py", "exec")
    assert len(code) <= 4096  # CloudFormation's limit for inline (ZipFile) function code


# ------------------------------------------------------------------ two tables, one invalidator


@pytest.fixture
def two_tables(fake_aws: None, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="users",
            KeySchema=[
                {"AttributeName": "userId", "KeyType": "HASH"},
                {"AttributeName": "v", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "userId", "AttributeType": "S"},
                {"AttributeName": "v", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        # what the main stack sets: only its own table (pk, sk); "users" was attached later
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        invalidator_handler.reset()
        yield
        invalidator_handler.reset()


def test_one_invalidator_applies_two_tables_with_different_key_schemas(
    two_tables: None, redis_url: str
) -> None:
    import redis

    order_keys = {"pk": {"S": "u1"}, "sk": {"N": "42"}}
    # the attached table's record lists its keys range-first: only DescribeTable says which is the hash
    user_keys = {"v": {"N": "7"}, "userId": {"S": "ann"}}
    records = [
        events.record(
            "orders",
            "INSERT",
            order_keys,
            events.FIRST_SEQUENCE,
            new=events.item(order_keys, total={"N": "5"}),
        ),
        events.record(
            "users",
            "INSERT",
            user_keys,
            events.FIRST_SEQUENCE + 100,
            new=events.item(user_keys, name={"S": "Ann"}),
        ),
    ]
    response = invalidator_handler.handler(events.event(records), None)
    assert response == {"batchItemFailures": []}
    client = redis.Redis.from_url(redis_url)
    try:
        order = holding(client, cache_key("orders", order_keys, ("pk", "sk")))
        user = holding(client, cache_key("users", user_keys, ("userId", "v")))
    finally:
        client.close()
    assert order["item"]["total"] == {"N": "5"}
    assert user["item"]["name"] == {"S": "Ann"}  # keyed hash-first: users-ann-7
