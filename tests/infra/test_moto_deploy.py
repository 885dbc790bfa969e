"""Deploy the template into moto's CloudFormation, minus what moto cannot create.

moto has no ElastiCache, Secrets Manager secret, Function URL, alarm or SQS
queue policy support in CloudFormation, and no ``Fn::Cidr``. The test's copy
drops those resources and replaces every reference to them with a literal;
the template itself is never changed. moto also passes Number parameters on
as strings (real CloudFormation converts them), so the copy inlines them as
integers. What is left (VPC, subnets, endpoints,
security groups, table, queue, roles, log groups, functions, the stream
mapping, the dashboard) must reach CREATE_COMPLETE with the settings the
contract relies on.
"""

from __future__ import annotations

import copy
import io
import ipaddress
import json
import re
import zipfile
from typing import Any

import boto3
import pytest
from cfn_rules import evaluate_condition
from moto.cloudformation.parsing import resource_class_from_type

REGION = "us-east-1"
BUCKET = "streamcache-code"
STACK = "sc-test"
STUB_ATTRS = {
    "ConfigurationEndPoint.Address": "stub-config.cache.amazonaws.com",
    "PrimaryEndPoint.Address": "stub-primary.cache.amazonaws.com",
    "ConfigurationEndPoint.Port": "6379",
    "PrimaryEndPoint.Port": "6379",
    "FunctionUrl": "https://stub.lambda-url.us-east-1.on.aws/",
    "DnsEntries": ["Z7HUB22UULQXV:vpce-0stub-1a2b.streams.dynamodb.us-east-1.vpce.amazonaws.com"],
}
PARAMETERS = {
    "CodeBucket": BUCKET,
    "InvalidatorCodeKey": "streamcache/abc/invalidator.zip",
    "ReaderCodeKey": "streamcache/abc/reader.zip",
    "RedriverCodeKey": "streamcache/abc/redriver.zip",
    "RotatorCodeKey": "streamcache/abc/rotator.zip",
    "LayerCodeKey": "streamcache/abc/streamcache-layer.zip",
    "HashKeyName": "pk",
    "RangeKeyName": "sk",
    "RangeKeyType": "N",
    "TtlAttributeName": "expires_at",
}


# ------------------------------------------------------------------ the copy


def stub_ref(name: str) -> str:
    """A literal standing in for ``Ref`` of a resource moto cannot create."""
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:stub-{name}"


def stub_getatt(name: str, attr: str) -> Any:
    return STUB_ATTRS.get(attr, f"stub-{name}-{attr}")


def _sub_text(text: str, removed: set[str]) -> str:
    def literal(match: re.Match[str]) -> str:
        name, _, attr = match.group(1).partition(".")
        if name not in removed:
            return match.group(0)
        return stub_getatt(name, attr) if attr else stub_ref(name)

    text = re.sub(r"\$\{([A-Za-z0-9.]+)\}", literal, text)
    return re.sub(r"\{\{resolve:[^}]*\}\}", "stub-resolved-secret", text)


def _cidrs(spec: list[Any], params: dict[str, Any]) -> list[str]:
    block, count, bits = spec
    if isinstance(block, dict):
        block = params[block["Ref"]]["Default"]
    net = ipaddress.ip_network(block)
    return [str(s) for s in list(net.subnets(new_prefix=net.max_prefixlen - int(bits)))[: int(count)]]


def _numbers(params: dict[str, Any], given: dict[str, str]) -> dict[str, int]:
    """Number parameters resolved to ints (given value, else default)."""
    return {
        name: int(given.get(name, spec.get("Default", 0)))
        for name, spec in params.items()
        if spec["Type"] == "Number"
    }


def _replace(node: Any, removed: set[str], params: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_replace(item, removed, params) for item in node if not _absent(item, params)]
    if isinstance(node, dict):
        return _replace_dict(node, removed, params)
    if isinstance(node, str) and "{{resolve:" in node:
        return _sub_text(node, removed)
    return node


def _absent(item: Any, params: dict[str, Any]) -> bool:
    """A list item ``Fn::If [cond, x, AWS::NoValue]`` whose condition is false: CloudFormation drops
    it from the list, moto leaves a null behind (a managed policy then fails to parse)."""
    if not (isinstance(item, dict) and "Fn::If" in item and item["Fn::If"][2] == {"Ref": "AWS::NoValue"}):
        return False
    return not params["__condition__"](item["Fn::If"][0])


def _replace_dict(node: dict[str, Any], removed: set[str], params: dict[str, Any]) -> Any:
    ref = node.get("Ref")
    if ref in removed:
        return stub_ref(ref)
    if ref in params["__numbers__"]:
        return params["__numbers__"][ref]
    if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] in removed | params["__no_attributes__"]:
        return stub_getatt(*node["Fn::GetAtt"])
    if "Fn::Cidr" in node:
        return _cidrs(node["Fn::Cidr"], params)
    if "Fn::Sub" in node:
        return {"Fn::Sub": _replace_sub(node["Fn::Sub"], removed, params)}
    return {key: _replace(value, removed, params) for key, value in node.items()}


def _replace_sub(spec: Any, removed: set[str], params: dict[str, Any]) -> Any:
    if isinstance(spec, str):
        return _sub_text(spec, removed)
    text, variables = spec
    return [_sub_text(text, removed), _replace(variables, removed, params)]


def moto_copy(template: dict[str, Any], given: dict[str, str] | None = None) -> dict[str, Any]:
    """The template without what moto's CloudFormation cannot create."""
    copied = copy.deepcopy(template)
    copied.pop("Rules", None)  # moto does not evaluate Rules
    resources = copied["Resources"]
    removed = {name for name, res in resources.items() if not resource_class_from_type(res["Type"])}
    for name in removed:
        del resources[name]
    # created by moto but without Fn::GetAtt support (the VPC endpoints): their attributes become literals
    no_attributes = {
        name
        for name, res in resources.items()
        if not hasattr(resource_class_from_type(res["Type"]), "get_cfn_attribute")
    }
    for res in resources.values():
        depends = res.get("DependsOn")
        if isinstance(depends, list):
            res["DependsOn"] = [d for d in depends if d not in removed]
    params = dict(copied["Parameters"], __numbers__=_numbers(copied["Parameters"], given or {}))
    params["__no_attributes__"] = no_attributes
    params["__condition__"] = lambda name: evaluate_condition(template, name, given or {})
    return _replace(copied, removed, params)


# ------------------------------------------------------------------ the deploy


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _upload_code() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    for key in [v for k, v in PARAMETERS.items() if k.endswith("CodeKey")]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=_zip())


def _deploy(body: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture
def deployed(aws: None, template: dict[str, Any]) -> dict[str, str]:
    _upload_code()
    return _deploy(moto_copy(template, PARAMETERS), PARAMETERS)


# ------------------------------------------------------------------ the tests


def test_moto_copy_removes_only_unsupported_resources(template: dict[str, Any]) -> None:
    copied = moto_copy(template)
    dropped = set(template["Resources"]) - set(copied["Resources"])
    assert {"Cache", "ReaderUrl", "InvalidatorCacheSecret", "CacheUserGroup"} <= dropped
    assert {"Table", "InvalidatorFunction", "ReaderFunction", "InvalidatorEventSourceMapping"} <= set(
        copied["Resources"]
    )
    assert "{{resolve:" not in json.dumps(copied)


def test_stack_reaches_create_complete_with_outputs(deployed: dict[str, str]) -> None:
    assert deployed["TableName"]
    assert ":table/" in deployed["StreamArn"] and "/stream/" in deployed["StreamArn"]
    # names are generated by CloudFormation (<= 64 characters for any stack name)
    assert deployed["InvalidatorFunctionName"].startswith(f"{STACK}-InvalidatorFunction-")
    assert deployed["ReaderFunctionName"].startswith(f"{STACK}-ReaderFunction-")
    assert deployed["RedisEndpoint"] == "stub-primary.cache.amazonaws.com:6379"
    # moto renders Ref of a LayerVersion as an object repr and ignores LayerName: check it through the API
    [layer] = boto3.client("lambda", region_name=REGION).list_layers()["Layers"]
    assert layer["LatestMatchingVersion"]["CompatibleRuntimes"] == ["python3.12"]


def test_table_streams_new_and_old_images(deployed: dict[str, str]) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName=deployed["TableName"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == deployed["StreamArn"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_event_source_mapping_bisects_and_reports_item_failures(deployed: dict[str, str]) -> None:
    lam = boto3.client("lambda", region_name=REGION)
    mappings = lam.list_event_source_mappings(FunctionName=deployed["InvalidatorFunctionName"])
    [esm] = mappings["EventSourceMappings"]
    assert esm["EventSourceArn"] == deployed["StreamArn"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BatchSize"] == 100
    queue_name = deployed["FailureQueueUrl"].rsplit("/", 1)[1]
    assert esm["DestinationConfig"]["OnFailure"]["Destination"].endswith(":" + queue_name)


def _env(function_name: str) -> dict[str, str]:
    config = boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=function_name)
    # moto's CloudFormation drops Architectures; the structure tests check arm64.
    assert config["Runtime"] == "python3.12"
    return config["Environment"]["Variables"]


@pytest.mark.parametrize("function", ["InvalidatorFunctionName", "ReaderFunctionName"])
def test_functions_get_the_contract_environment(deployed: dict[str, str], function: str) -> None:
    env = _env(deployed[function])
    table = deployed["TableName"]
    assert env["REDIS_URL"] == "rediss://stub-primary.cache.amazonaws.com:6379/0"
    assert env["REDIS_CLUSTER"] == "false"
    assert env["REDIS_AUTH_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert json.loads(env["KEY_SCHEMA"]) == {table: ["pk", "sk"]}
    assert env["TABLE_NAME"] == table
    # str(): the copy inlines Number parameters as ints (see the module docstring)
    assert str(env["CACHE_TTL_SECONDS"]) == "3600" and str(env["NEGATIVE_CACHE_TTL_SECONDS"]) == "60"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "streamcache"
    assert env["POWERTOOLS_SERVICE_NAME"] == f"{STACK}-{function.removesuffix('FunctionName').lower()}"


def test_reader_may_read_only_the_stack_table(deployed: dict[str, str]) -> None:
    env = _env(deployed["ReaderFunctionName"])
    assert env["ALLOWED_TABLES"] == deployed["TableName"]


def test_failure_queue_is_encrypted(deployed: dict[str, str]) -> None:
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=deployed["FailureQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attrs.get("SqsManagedSseEnabled") == "true"


def test_network_has_two_private_subnets_in_two_azs_and_endpoints(deployed: dict[str, str]) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:Stack", "Values": [STACK]}])["Subnets"]
    assert len(subnets) == 2
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    types = {e["ServiceName"].rsplit(".", 1)[1]: e["VpcEndpointType"] for e in endpoints}
    assert types == {"dynamodb": "Gateway", "secretsmanager": "Interface", "dynamodb-streams": "Interface"}
    assert not ec2.describe_nat_gateways()["NatGateways"]


def test_redriver_consumes_the_failure_queue_within_its_visibility_timeout(deployed: dict[str, str]) -> None:
    lam = boto3.client("lambda", region_name=REGION)
    name = deployed["RedriverFunctionName"]
    [esm] = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    queue_name = deployed["FailureQueueUrl"].rsplit("/", 1)[1]
    assert esm["EventSourceArn"].endswith(":" + queue_name)
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=deployed["FailureQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    timeout = lam.get_function_configuration(FunctionName=name)["Timeout"]
    # Lambda refuses an SQS mapping whose queue hides a message for less than the function may run
    assert int(attrs["VisibilityTimeout"]) >= 6 * int(timeout)
    assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        ":" + deployed["UnredrivableQueueUrl"].rsplit("/", 1)[1]
    )
    env = _env(name)
    assert env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == (
        "https://vpce-0stub-1a2b.streams.dynamodb.us-east-1.vpce.amazonaws.com"
    )


# ------------------------------------------------------------------ the other cache choices


def _existing_network() -> dict[str, str]:
    """A VPC with two private subnets and a cache security group, as a team that already runs a cache has."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    group = ec2.create_security_group(GroupName="their-cache", Description="their cache", VpcId=vpc)[
        "GroupId"
    ]
    return {
        "CreateVpc": "false",
        "VpcId": vpc,
        "PrivateSubnetIds": ",".join(subnets),
        "PrivateRouteTableIds": table,
        "CacheType": "existing",
        "ExistingCacheEndpoint": "their-cache.abc123.use1.cache.amazonaws.com",
        "ExistingCacheSecurityGroupId": group,
        "ExistingCacheSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:their-cache-AbCdEf",
        "ExistingCacheCluster": "true",
        "RedriveStreamsAccess": "nat",
    }


def test_serverless_cache_stack_deploys(aws: None, template: dict[str, Any]) -> None:
    _upload_code()
    given = {**PARAMETERS, "CacheType": "serverless"}
    outputs = _deploy(moto_copy(template, given), given)
    env = _env(outputs["InvalidatorFunctionName"])
    assert (
        env["REDIS_URL"]
        == "rediss://stub-ServerlessCache-Endpoint.Address:stub-ServerlessCache-Endpoint.Port/0"
    )
    assert env["REDIS_CLUSTER"] == "true"


def test_existing_cache_stack_adds_only_ingress_to_its_group(aws: None, template: dict[str, Any]) -> None:
    _upload_code()
    network = _existing_network()
    given = {**PARAMETERS, **network}
    outputs = _deploy(moto_copy(template, given), given)
    env = _env(outputs["ReaderFunctionName"])
    assert env["REDIS_URL"] == f"rediss://{network['ExistingCacheEndpoint']}:6379/0"
    assert (
        env["REDIS_CLUSTER"] == "true" and env["REDIS_AUTH_SECRET_ARN"] == network["ExistingCacheSecretArn"]
    )
    ec2 = boto3.client("ec2", region_name=REGION)
    [group] = ec2.describe_security_groups(GroupIds=[network["ExistingCacheSecurityGroupId"]])[
        "SecurityGroups"
    ]
    sources = {pair["GroupId"] for rule in group["IpPermissions"] for pair in rule["UserIdGroupPairs"]}
    assert len(sources) == 4  # invalidator, reader, redriver, client group
    assert {rule["FromPort"] for rule in group["IpPermissions"]} == {6379}
    assert (
        "ConsumerSecretArn" in outputs and outputs["ConsumerSecretArn"] == network["ExistingCacheSecretArn"]
    )
