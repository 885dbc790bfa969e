"""The template does what issue 6 asks, bullet by bullet (parsed JSON, no AWS)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

OfType = Callable[[str], dict[str, Any]]
Statements = list[tuple[str, dict[str, Any]]]
CONTRACT_ENV = {
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


def test_cache_accepts_6379_only_from_the_function_groups(of_type: OfType) -> None:
    ingress = [r["Properties"] for r in of_type("AWS::EC2::SecurityGroupIngress").values()]
    to_cache = [r for r in ingress if r["GroupId"] == {"Fn::GetAtt": ["CacheSecurityGroup", "GroupId"]}]
    assert {json.dumps(r["SourceSecurityGroupId"]) for r in to_cache} == {
        json.dumps({"Fn::GetAtt": [f"{fn}SecurityGroup", "GroupId"]})
        for fn in ("Invalidator", "Reader", "Checker")
    }
    assert all((r["FromPort"], r["ToPort"]) == (6379, 6379) for r in to_cache)


def test_function_egress_is_redis_and_https_only(resources: dict[str, Any]) -> None:
    for fn, count in (("Invalidator", 2), ("Reader", 3)):
        egress = resources[f"{fn}SecurityGroup"]["Properties"]["SecurityGroupEgress"]
        assert len(egress) == count
        assert egress[0]["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["CacheSecurityGroup", "GroupId"]}
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


def test_parameter_group_turns_cluster_mode_on_with_the_mode(resources: dict[str, Any]) -> None:
    props = resources["CacheParameterGroup"]["Properties"]
    assert props["Properties"]["cluster-enabled"] == {"Fn::If": ["ClusterModeEnabled", "yes", "no"]}


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
    [("InvalidatorFunction", "invalidator.handler.handler"), ("ReaderFunction", "reader.handler.handler")],
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
    assert set(props["Environment"]["Variables"]) >= CONTRACT_ENV
    assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "streamcache"


def test_reader_restricts_tables_and_cluster_flag_follows_mode(resources: dict[str, Any]) -> None:
    env = resources["ReaderFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ALLOWED_TABLES"] == env["TABLE_NAME"]
    assert env["REDIS_CLUSTER"] == {"Fn::If": ["ClusterModeEnabled", "true", "false"]}


def test_invalidator_waits_for_a_replica_when_there_is_one(resources: dict[str, Any]) -> None:
    """A write the primary acknowledged survives a failover only once a replica has it (WAIT)."""
    env = resources["InvalidatorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["REDIS_MIN_REPLICA_ACKS"] == {"Fn::If": ["HasReplicas", "1", "0"]}
    reader_env = resources["ReaderFunction"]["Properties"]["Environment"]["Variables"]
    assert "REDIS_MIN_REPLICA_ACKS" not in reader_env  # the reader writes nothing it must not lose


def test_redis_url_is_tls_and_picks_the_endpoint_by_mode(resources: dict[str, Any]) -> None:
    url = resources["InvalidatorFunction"]["Properties"]["Environment"]["Variables"]["REDIS_URL"]
    text, variables = url["Fn::Sub"]
    assert text == "rediss://${Host}:${Port}/0"
    assert variables["Host"] == {
        "Fn::If": [
            "ClusterModeEnabled",
            {"Fn::GetAtt": ["Cache", "ConfigurationEndPoint.Address"]},
            {"Fn::GetAtt": ["Cache", "PrimaryEndPoint.Address"]},
        ]
    }


def _render_key_schema(branch: dict[str, Any], table: str, names: dict[str, str]) -> str:
    text, _ = branch["Fn::Sub"]
    values = {"T": table, **names}
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def test_key_schema_is_valid_for_the_shared_core(resources: dict[str, Any]) -> None:
    settings = pytest.importorskip("streamcache.settings")
    schema = resources["ReaderFunction"]["Properties"]["Environment"]["Variables"]["KEY_SCHEMA"]
    _, with_range, hash_only = schema["Fn::If"]
    names = {"HashKeyName": "pk", "RangeKeyName": "sk"}
    assert settings.parse_key_schema(_render_key_schema(with_range, "orders", names)) == {
        "orders": ("pk", "sk")
    }
    assert settings.parse_key_schema(_render_key_schema(hash_only, "orders", names)) == {"orders": ("pk",)}


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
    assert actions["secretsmanager:GetSecretValue"] == {"Ref": "CacheAuthSecret"}
    assert actions["logs:PutLogEvents"] == {"Fn::GetAtt": ["InvalidatorLogGroup", "Arn"]}
    assert not any(a.startswith("dynamodb:GetItem") for a in actions)


def test_reader_permissions(statements: Statements) -> None:
    actions = _actions(statements, "ReaderRole")
    assert actions["dynamodb:GetItem"] == actions["dynamodb:DescribeTable"]
    assert actions["dynamodb:BatchGetItem"] == actions["dynamodb:GetItem"]  # batch reads
    assert actions["dynamodb:GetItem"]["Fn::If"][2] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert actions["secretsmanager:GetSecretValue"] == {"Ref": "CacheAuthSecret"}
    assert not any(a.startswith(("dynamodb:GetRecords", "sqs:")) for a in actions)


def test_eni_management_is_scoped_to_account_and_region(statements: Statements) -> None:
    for role in ("InvalidatorRole", "ReaderRole"):
        actions = _actions(statements, role)
        assert actions["ec2:CreateNetworkInterface"] == {
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
    assert len(of_type("AWS::CloudWatch::Alarm")) == 7  # Errors for the three functions


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
