"""The template does what issue 6 asks, bullet by bullet (parsed JSON, no AWS)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfn_rules import evaluate_condition, refusals, resolve

from streamcache.settings import parse_key_schema

REPO = Path(__file__).resolve().parents[2]

OfType = Callable[[str], dict[str, Any]]
Statements = list[tuple[str, dict[str, Any]]]
DOCUMENTED_ENV = {
    "REDIS_URL",
    "REDIS_CLUSTER",
    "REDIS_AUTH_SECRET_ARN",
    "CACHE_TTL_SECONDS",
    "NEGATIVE_CACHE_TTL_SECONDS",
    "CACHE_KEY_PREFIX",
    "KEY_SCHEMA",
    "TABLE_NAME",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}


def _actions(statements: Statements, role: str) -> dict[str, Any]:
    """action -> Resource, for one role."""
    return {a: s["Resource"] for r, s in statements if r == role for a in s["Action"]}


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("CreateVpc", "true"),
        ("CacheEngine", "valkey"),
        ("CacheNodeType", "cache.t4g.micro"),
        ("CacheReplicaCount", "0"),
        ("CacheClusterMode", "disabled"),
        ("InvalidatorTimeout", "30"),
        ("LogRetentionDays", "30"),
        ("StartingPosition", "TRIM_HORIZON"),
        ("TableDeletionProtection", "true"),
        ("ExistingStreamArn", ""),
        ("RangeKeyName", ""),
        ("TtlAttributeName", ""),
        ("InvalidatorReservedConcurrency", "-1"),
    ],
)
def test_parameter_defaults(template: dict[str, Any], name: str, default: str) -> None:
    assert template["Parameters"][name]["Default"] == default


def test_engine_and_replica_choices(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert set(params["CacheEngine"]["AllowedValues"]) == {"redis", "valkey"}
    assert params["CacheReplicaCount"]["AllowedValues"] == [str(n) for n in range(6)]
    assert set(params["StartingPosition"]["AllowedValues"]) == {"TRIM_HORIZON", "LATEST"}


def test_every_parameter_is_described_and_grouped(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [p for g in groups for p in g["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert all(p["Description"] for p in template["Parameters"].values())


# ------------------------------------------------------------------ network


def test_new_vpc_has_two_private_subnets_in_two_azs(resources: dict[str, Any]) -> None:
    azs = [resources[f"PrivateSubnet{s}"]["Properties"]["AvailabilityZone"] for s in "AB"]
    assert azs == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in (0, 1)]
    for s in "AB":
        assert resources[f"PrivateSubnet{s}"]["Condition"] == "CreateVpc"
        assert resources[f"PrivateSubnet{s}"]["Properties"]["MapPublicIpOnLaunch"] is False


def test_no_nat_or_internet_gateway(resources: dict[str, Any]) -> None:
    types = {r["Type"] for r in resources.values()}
    assert not types & {"AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"}


def test_dynamodb_gateway_and_secrets_manager_interface_endpoints(resources: dict[str, Any]) -> None:
    ddb = resources["DynamoDbEndpoint"]["Properties"]
    assert ddb["VpcEndpointType"] == "Gateway"
    assert ddb["RouteTableIds"]["Fn::If"][2] == {"Ref": "PrivateRouteTableIds"}
    sm = resources["SecretsManagerEndpoint"]["Properties"]
    assert sm["VpcEndpointType"] == "Interface" and sm["PrivateDnsEnabled"] is True
    assert sm["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"}


CACHE_SG = {
    "Fn::If": [
        "UseExistingCache",
        {"Ref": "ExistingCacheSecurityGroupId"},
        {"Fn::GetAtt": ["CacheSecurityGroup", "GroupId"]},
    ]
}
CACHE_PORT = {"Fn::If": ["UseExistingCache", {"Ref": "ExistingCachePort"}, 6379]}


def test_cache_accepts_its_port_only_from_the_function_and_client_groups(of_type: OfType) -> None:
    ingress = [r["Properties"] for r in of_type("AWS::EC2::SecurityGroupIngress").values()]
    to_cache = [r for r in ingress if r["GroupId"] == CACHE_SG]
    assert {json.dumps(r["SourceSecurityGroupId"]) for r in to_cache} == {
        json.dumps({"Fn::GetAtt": [f"{fn}SecurityGroup", "GroupId"]})
        for fn in ("Invalidator", "Reader", "Redriver", "Checker", "CacheClient")
    }
    assert all(r["FromPort"] == r["ToPort"] == CACHE_PORT for r in to_cache)


def test_function_egress_is_redis_and_https_only(resources: dict[str, Any]) -> None:
    for fn, count in (("Invalidator", 3), ("Reader", 3), ("Redriver", 4), ("CacheClient", 3)):
        egress = resources[f"{fn}SecurityGroup"]["Properties"]["SecurityGroupEgress"]
        assert len(egress) == count
        assert egress[0]["DestinationSecurityGroupId"] == CACHE_SG and egress[0]["FromPort"] == CACHE_PORT
        assert {e["FromPort"] for e in egress[1:]} == {443}


# ------------------------------------------------------------------ redis


def test_replication_group_follows_the_mode_parameters(resources: dict[str, Any]) -> None:
    props = resources["Cache"]["Properties"]
    assert props["ClusterMode"] == {"Ref": "CacheClusterMode"}
    assert props["NumNodeGroups"]["Fn::If"][0] == "ClusterModeEnabled"
    assert props["MultiAZEnabled"] == {"Fn::If": ["HasReplicas", True, False]}
    assert props["AutomaticFailoverEnabled"] == {"Fn::If": ["AutomaticFailover", True, False]}
    assert props["CacheNodeType"] == {"Ref": "CacheNodeType"}
    assert props["Engine"] == {"Ref": "CacheEngine"}


def test_parameter_group_is_the_engine_default_for_the_mode(template: dict[str, Any]) -> None:
    props = template["Resources"]["Cache"]["Properties"]
    assert props["CacheParameterGroupName"]["Fn::If"][0] == "ClusterModeEnabled"
    for engine, names in template["Mappings"]["EngineMap"].items():
        assert names["ClusterParameterGroup"] == names["ParameterGroup"] + ".cluster.on", engine


def test_replica_map_counts_the_primary(template: dict[str, Any]) -> None:
    counts = {k: v["NumCacheClusters"] for k, v in template["Mappings"]["ReplicaMap"].items()}
    assert counts == {str(n): n + 1 for n in range(6)}


# ------------------------------------------------------------------ table


def test_table_streams_both_images_with_pitr_and_optional_range_and_ttl(resources: dict[str, Any]) -> None:
    table = resources["Table"]
    props = table["Properties"]
    assert table["Condition"] == "CreateTable"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["KeySchema"]["Fn::If"][0] == "HasRangeKey"
    assert props["TimeToLiveSpecification"]["Fn::If"][0] == "HasTtl"
    assert props["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}


def test_existing_table_switch_uses_the_given_stream(template: dict[str, Any]) -> None:
    assert template["Conditions"]["CreateTable"] == {"Fn::Not": [{"Condition": "UseExistingTable"}]}
    esm = template["Resources"]["InvalidatorEventSourceMapping"]["Properties"]
    assert esm["EventSourceArn"]["Fn::If"][:2] == ["UseExistingTable", {"Ref": "ExistingStreamArn"}]


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize(
    ("name", "handler"),
    [
        ("InvalidatorFunction", "invalidator.handler.handler"),
        ("ReaderFunction", "reader.handler.handler"),
        ("RedriverFunction", "redriver.handler.handler"),
    ],
)
def test_functions_run_arm64_python312_in_the_vpc_with_tracing(
    resources: dict[str, Any], name: str, handler: str
) -> None:
    props = resources[name]["Properties"]
    assert props["Handler"] == handler
    assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert set(props["VpcConfig"]) == {"SubnetIds", "SecurityGroupIds"}
    assert set(props["Code"]) == {"S3Bucket", "S3Key"}
    assert set(props["Environment"]["Variables"]) >= DOCUMENTED_ENV
    assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "streamcache"


EXISTING_CACHE = {
    "CacheType": "existing",
    "CreateVpc": "false",
    "ExistingCacheEndpoint": "cache.example.internal",
    "ExistingCacheSecurityGroupId": "sg-0123abcd",
    "ExistingCacheSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cache-AbCdEf",
}
CACHE_CHOICES = [
    ({"CacheType": "provisioned"}, "false", {"Fn::GetAtt": ["Cache", "PrimaryEndPoint.Address"]}),
    (
        {"CacheType": "provisioned", "CacheClusterMode": "enabled"},
        "true",
        {"Fn::GetAtt": ["Cache", "ConfigurationEndPoint.Address"]},
    ),
    ({"CacheType": "serverless"}, "true", {"Fn::GetAtt": ["ServerlessCache", "Endpoint.Address"]}),
    (EXISTING_CACHE, "false", {"Ref": "ExistingCacheEndpoint"}),
    ({**EXISTING_CACHE, "ExistingCacheCluster": "true"}, "true", {"Ref": "ExistingCacheEndpoint"}),
]


@pytest.mark.parametrize(("given", "cluster", "host"), CACHE_CHOICES)
@pytest.mark.parametrize("function", ["InvalidatorFunction", "ReaderFunction", "RedriverFunction"])
def test_each_cache_choice_gives_the_functions_its_endpoint_and_protocol(
    template: dict[str, Any], function: str, given: dict[str, str], cluster: str, host: dict[str, Any]
) -> None:
    env = resolve(template["Resources"][function]["Properties"]["Environment"]["Variables"], template, given)
    assert env["REDIS_CLUSTER"] == cluster
    text, variables = env["REDIS_URL"]["Fn::Sub"]
    assert text == "rediss://${Host}:${Port}/0"  # TLS for every choice (serverless is TLS-only)
    assert variables["Host"] == host
    secret = env["REDIS_AUTH_SECRET_ARN"]
    own = {"Ref": function.replace("Function", "CacheSecret")}
    assert secret == ({"Ref": "ExistingCacheSecretArn"} if given["CacheType"] == "existing" else own)


@pytest.mark.parametrize(
    ("given", "created"),
    [
        ({"CacheType": "provisioned"}, {"Cache", "CacheUserGroup", "RotatorFunction", "CacheSecurityGroup"}),
        (
            {"CacheType": "serverless"},
            {"ServerlessCache", "CacheUserGroup", "RotatorFunction", "CacheSecurityGroup"},
        ),
        (EXISTING_CACHE, set()),
    ],
)
def test_each_cache_choice_creates_only_its_own_cache_resources(
    template: dict[str, Any], given: dict[str, str], created: set[str]
) -> None:
    cache_side = {"Cache", "ServerlessCache", "CacheUserGroup", "RotatorFunction", "CacheSecurityGroup",
                  "InvalidatorCacheUser", "ConsumerCacheSecret"}  # fmt: skip
    made = {
        name
        for name in cache_side
        if "Condition" not in template["Resources"][name]
        or evaluate_condition(
            template, template["Resources"][name]["Condition"], {"CodeBucket": "b", **given}
        )
    }
    assert made >= created and not (made - created) & {"Cache", "ServerlessCache"}
    if given["CacheType"] == "existing":
        assert made == set()  # only ingress rules on the existing cache's group


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"CacheType": "existing", "CreateVpc": "false"}, "ExistingCacheEndpoint"),
        ({**EXISTING_CACHE, "ExistingCacheSecretArn": ""}, "ExistingCacheSecretArn"),
        ({**EXISTING_CACHE, "CreateVpc": "true"}, "CreateVpc=false"),
        ({"CacheType": "provisioned", "ExistingCacheEndpoint": "x.example"}, "ExistingCache"),
        ({"CacheType": "serverless", "CacheEngine": "redis"}, "valkey"),
        ({"CacheType": "serverless", "CacheReplicaCount": "2"}, "CacheReplicaCount"),
    ],
)
def test_rules_refuse_cache_choices_that_cannot_work(
    template: dict[str, Any], given: dict[str, str], refused: str
) -> None:
    vpc = {"VpcId": "vpc-1", "PrivateSubnetIds": "subnet-1,subnet-2", "PrivateRouteTableIds": "rtb-1"}
    extra = vpc if given.get("CreateVpc") == "false" else {}
    found = refusals(template, {"CodeBucket": "b", **extra, **given})
    assert any(refused in text for text in found), found


@pytest.mark.parametrize("given", [{"CacheType": "provisioned"}, {"CacheType": "serverless"}, EXISTING_CACHE])
def test_every_cache_choice_with_its_parameters_is_accepted(
    template: dict[str, Any], given: dict[str, str]
) -> None:
    vpc = {"VpcId": "vpc-1", "PrivateSubnetIds": "subnet-1,subnet-2", "PrivateRouteTableIds": "rtb-1"}
    extra = vpc if given.get("CreateVpc") == "false" else {}
    assert refusals(template, {"CodeBucket": "b", **extra, **given}) == []


def test_reader_serves_the_stack_table_and_the_listed_attached_ones(template: dict[str, Any]) -> None:
    env = template["Resources"]["ReaderFunction"]["Properties"]["Environment"]["Variables"]
    assert resolve(env["ALLOWED_TABLES"], template, {}) == resolve(env["TABLE_NAME"], template, {})
    joined = resolve(env["ALLOWED_TABLES"], template, {"ReaderExtraTables": "users,carts"})
    assert joined["Fn::Join"][1][1] == {"Fn::Join": [",", {"Ref": "ReaderExtraTables"}]}


def test_invalidator_waits_for_a_replica_only_when_a_failover_leaves_one(template: dict[str, Any]) -> None:
    """WAIT 1 with one replica blocks every batch while that replica is replaced (minutes): ask
    for an ack only with two or more replicas, where losing one still leaves one to answer."""
    env = template["Resources"]["InvalidatorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["REDIS_MIN_REPLICA_ACKS"] == {"Fn::If": ["AckReplicas", "1", "0"]}
    counts = template["Parameters"]["CacheReplicaCount"]["AllowedValues"]
    acking = {c for c in counts if evaluate_condition(template, "AckReplicas", {"CacheReplicaCount": c})}
    assert acking == {c for c in counts if int(c) - 1 >= 1}  # a replica survives losing one
    resources = template["Resources"]
    reader_env = resources["ReaderFunction"]["Properties"]["Environment"]["Variables"]
    assert "REDIS_MIN_REPLICA_ACKS" not in reader_env  # the reader writes nothing it must not lose


def _render_key_schema(branch: dict[str, Any], table: str, names: dict[str, str]) -> str:
    text, _ = branch["Fn::Sub"]
    values = {"T": table, **names}
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def test_key_schema_is_valid_for_the_shared_core(resources: dict[str, Any]) -> None:
    schema = resources["ReaderFunction"]["Properties"]["Environment"]["Variables"]["KEY_SCHEMA"]
    _, with_range, hash_only = schema["Fn::If"]
    names = {"HashKeyName": "pk", "RangeKeyName": "sk"}
    assert parse_key_schema(_render_key_schema(with_range, "orders", names)) == {"orders": ("pk", "sk")}
    assert parse_key_schema(_render_key_schema(hash_only, "orders", names)) == {"orders": ("pk",)}


def test_stream_mapping_settings(resources: dict[str, Any]) -> None:
    props = resources["InvalidatorEventSourceMapping"]["Properties"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["FailureQueue", "Arn"]}}
    }
    for key in ("BatchSize", "MaximumBatchingWindowInSeconds", "StartingPosition", "MaximumRetryAttempts"):
        assert props[key] == {"Ref": key}
    assert props["ParallelizationFactor"] == {"Ref": "ParallelizationFactor"}
    assert props["MaximumRecordAgeInSeconds"] == {"Ref": "MaximumRecordAgeInSeconds"}


def test_log_groups_match_function_names(resources: dict[str, Any]) -> None:
    for fn in ("invalidator", "reader"):
        group = resources[f"{fn.capitalize()}LogGroup"]["Properties"]["LogGroupName"]
        assert group == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{fn}"}
        logging = resources[f"{fn.capitalize()}Function"]["Properties"]["LoggingConfig"]
        assert logging == {"LogGroup": {"Ref": f"{fn.capitalize()}LogGroup"}}


# ------------------------------------------------------------------ IAM


def test_one_role_per_function(resources: dict[str, Any]) -> None:
    assert resources["InvalidatorFunction"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["InvalidatorRole", "Arn"]
    }
    assert resources["ReaderFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["ReaderRole", "Arn"]}


def test_invalidator_permissions(statements: Statements) -> None:
    actions = _actions(statements, "InvalidatorRole")
    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert actions[action]["Fn::If"][0] == "UseExistingTable"
    assert actions["dynamodb:ListStreams"] == "*"
    assert actions["sqs:SendMessage"] == {"Fn::GetAtt": ["FailureQueue", "Arn"]}
    assert actions["secretsmanager:GetSecretValue"] == {
        "Fn::If": ["UseExistingCache", {"Ref": "ExistingCacheSecretArn"}, {"Ref": "InvalidatorCacheSecret"}]
    }
    assert actions["kms:Decrypt"] == {"Ref": "TableKmsKeyArn"}
    assert actions["logs:PutLogEvents"] == {"Fn::GetAtt": ["InvalidatorLogGroup", "Arn"]}
    assert not any(a.startswith("dynamodb:GetItem") for a in actions)


def test_reader_permissions(statements: Statements) -> None:
    actions = _actions(statements, "ReaderRole")
    assert actions["dynamodb:GetItem"] == actions["dynamodb:DescribeTable"]
    assert actions["dynamodb:BatchGetItem"] == actions["dynamodb:GetItem"]  # batch reads
    assert actions["dynamodb:GetItem"]["Fn::If"][2] == {"Fn::GetAtt": ["Table", "Arn"]}
    table, indexes = actions["dynamodb:Query"]  # queries: the table and its indexes, nothing else
    assert table == actions["dynamodb:GetItem"]
    assert indexes["Fn::If"][2] == {"Fn::Sub": "${Table.Arn}/index/*"}
    assert actions["secretsmanager:GetSecretValue"] == {
        "Fn::If": ["UseExistingCache", {"Ref": "ExistingCacheSecretArn"}, {"Ref": "ReaderCacheSecret"}]
    }
    assert actions["kms:Decrypt"] == {"Ref": "TableKmsKeyArn"}
    assert not any(a.startswith(("dynamodb:GetRecords", "sqs:")) for a in actions)


def test_eni_management_is_scoped_to_account_and_region(statements: Statements) -> None:
    for role in ("InvalidatorRole", "ReaderRole"):
        actions = _actions(statements, role)
        assert actions["ec2:DeleteNetworkInterface"] == {
            "Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*"
        }
        assert actions["ec2:DescribeNetworkInterfaces"] == "*"


# ------------------------------------------------------------------ observability


def test_alarms_cover_lag_errors_failures(of_type: OfType) -> None:
    alarms = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in of_type("AWS::CloudWatch::Alarm").values()
    }
    assert alarms == {
        ("AWS/Lambda", "IteratorAge"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("streamcache", "RecordsFailed"),
        ("streamcache", "Inconsistent"),  # the consistency checker (tests/infra/test_checker_stack.py)
    }
    # Errors for the invalidator, reader and checker; Inconsistent; failure and unredrivable queues
    assert len(of_type("AWS::CloudWatch::Alarm")) == 8


def test_alarm_actions_only_with_a_topic(of_type: OfType) -> None:
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"


def test_dashboard_shows_lag_throughput_hit_ratio_errors(resources: dict[str, Any]) -> None:
    body = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    text = json.dumps(body)
    for metric in ("IteratorAge", "StreamLagMs", "RecordsApplied", "Errors", "RedisError"):
        assert metric in text
    assert "100 * hit / (hit + miss)" in text


def test_outputs(template: dict[str, Any]) -> None:
    expected = {"ReaderUrl", "TableName", "StreamArn", "RedisEndpoint", "FailureQueueUrl"}
    assert expected | {"InvalidatorFunctionName", "ReaderFunctionName"} <= set(template["Outputs"])


def test_every_parameter_and_output_is_documented(template: dict[str, Any]) -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    for name in [*template["Parameters"], *template["Outputs"]]:
        assert f"`{name}`" in doc, name


def test_redriver_reads_the_stream_consumes_the_queue_and_nothing_else(statements: Statements) -> None:
    actions = _actions(statements, "RedriverRole")
    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert actions[action]["Fn::If"][0] == "UseExistingTable"
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert actions[action] == {"Fn::GetAtt": ["FailureQueue", "Arn"]}
    assert actions["secretsmanager:GetSecretValue"]["Fn::If"][2] == {"Ref": "RedriverCacheSecret"}
    assert not any(a.startswith(("dynamodb:GetItem", "dynamodb:Query", "sqs:SendMessage")) for a in actions)


def test_redriver_mapping_reports_item_failures(resources: dict[str, Any]) -> None:
    props = resources["RedriverEventSourceMapping"]["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["FailureQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_redriver_can_be_switched_off_and_nat_needs_an_existing_vpc(template: dict[str, Any]) -> None:
    off = {"RedriveStreamsAccess": "off", "CodeBucket": "b"}
    assert not evaluate_condition(template, "RedriverEnabled", off)
    redriver = [
        n
        for n, r in template["Resources"].items()
        if r.get("Condition") in ("RedriverEnabled", "RedriverOwnUser")
    ]
    assert template["Conditions"]["RedriverOwnUser"]["Fn::And"][0] == {"Condition": "RedriverEnabled"}
    assert {"RedriverFunction", "RedriverRole", "RedriverCacheUser", "RedriverEventSourceMapping"} <= set(
        redriver
    )
    assert refusals(template, {"RedriveStreamsAccess": "nat", "CodeBucket": "b"})
    assert not refusals(
        template,
        {
            "RedriveStreamsAccess": "nat",
            "CreateVpc": "false",
            "VpcId": "vpc-1",
            "PrivateSubnetIds": "subnet-1,subnet-2",
            "PrivateRouteTableIds": "rtb-1",
            "CodeBucket": "b",
        },
    )
