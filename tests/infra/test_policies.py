"""Security policy rules over the template, cfn-guard style, in plain Python.

They hold whether or not checkov is installed (see test_checkov.py): no open
ingress, least-privilege IAM, encryption in transit and at rest, logs kept,
and no suppression without a written reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
# Actions that have no resource-level permissions: Resource "*" is the only form.
STAR_RESOURCE_ALLOWED = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:ListStreams",
    "secretsmanager:GetRandomPassword",
}
WRITE_ACTIONS = ("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "dynamodb:BatchWrite")
OfType = Callable[[str], dict[str, Any]]
Statements = list[tuple[str, dict[str, Any]]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> Iterator[Any]:
    """Both branches of an Fn::If (recursively), else the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _branches(branch)
    else:
        yield value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _ingress_rules(of_type: OfType) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sg in of_type("AWS::EC2::SecurityGroup").items():
        for rule in sg["Properties"].get("SecurityGroupIngress", []):
            yield name, rule
    for name, res in of_type("AWS::EC2::SecurityGroupIngress").items():
        yield name, res["Properties"]


def _egress_rules(of_type: OfType) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sg in of_type("AWS::EC2::SecurityGroup").items():
        for rule in sg["Properties"].get("SecurityGroupEgress", []):
            yield name, rule


def test_no_ingress_is_open_to_the_internet(of_type: OfType) -> None:
    for name, rule in _ingress_rules(of_type):
        cidrs = {rule.get("CidrIp"), rule.get("CidrIpv6")}
        assert not cidrs & OPEN_CIDRS, name
        assert "SourceSecurityGroupId" in rule, f"{name}: ingress only from a security group"


def test_every_security_group_rule_has_a_description(of_type: OfType) -> None:
    rules = [*_ingress_rules(of_type), *_egress_rules(of_type)]
    assert rules
    for name, rule in rules:
        assert rule.get("Description"), name


def test_no_egress_allows_every_port(of_type: OfType) -> None:
    for name, rule in _egress_rules(of_type):
        if rule["IpProtocol"] == "-1":
            assert rule["CidrIp"] == "127.0.0.1/32", f"{name}: only the no-egress placeholder may use -1"
        else:
            assert rule["FromPort"] == rule["ToPort"], name
            # the cache port is 6379, or the existing cache's own port (CacheType=existing)
            ports = {_text(port) for port in _branches(rule["FromPort"])}
            assert ports <= {"443", "6379", '{"Ref": "ExistingCachePort"}'}, name


def test_no_statement_allows_a_wildcard_action(statements: Statements) -> None:
    for role, statement in statements:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{role}: {action}"
        assert "NotAction" not in statement and "NotResource" not in statement, role


def test_resource_star_only_for_actions_without_resource_types(statements: Statements) -> None:
    for role, statement in statements:
        resources = [r for value in _as_list(statement["Resource"]) for r in _branches(value)]
        if "*" in resources:
            assert set(_as_list(statement["Action"])) <= STAR_RESOURCE_ALLOWED, (role, statement["Sid"])


def test_every_statement_is_an_allow_with_a_sid(statements: Statements) -> None:
    assert statements
    for role, statement in statements:
        assert statement["Effect"] == "Allow" and statement.get("Sid"), role


def test_no_role_can_write_the_table(statements: Statements) -> None:
    for role, statement in statements:
        for action in _as_list(statement["Action"]):
            assert not action.startswith(WRITE_ACTIONS), f"{role}: {action}"


def test_roles_use_no_managed_policies(of_type: OfType) -> None:
    for name, role in of_type("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], name


def test_cache_is_encrypted_in_transit_and_at_rest_with_rbac_users(resources: dict[str, Any]) -> None:
    props = resources["Cache"]["Properties"]
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    assert props["UserGroupIds"] == [{"Ref": "CacheUserGroup"}]
    assert "AuthToken" not in props  # one shared token would give every function every command


@pytest.mark.parametrize("secret", ["InvalidatorCacheSecret", "ReaderCacheSecret"])
def test_user_passwords_satisfy_elasticache_rules(resources: dict[str, Any], secret: str) -> None:
    generate = resources[secret]["Properties"]["GenerateSecretString"]
    assert generate["ExcludePunctuation"] is True  # no @ " / (ElastiCache rejects them)
    assert 16 <= generate["PasswordLength"] <= 128  # ElastiCache user password length
    assert generate["GenerateStringKey"] == "password"


def test_data_at_rest_is_encrypted(resources: dict[str, Any]) -> None:
    table = resources["Table"]["Properties"]
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resources["FailureQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def test_failure_queue_refuses_plain_http(resources: dict[str, Any]) -> None:
    [statement] = resources["FailureQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_no_secret_reaches_an_environment_variable(of_type: OfType) -> None:
    for name, fn in of_type("AWS::Lambda::Function").items():
        text = json.dumps(fn["Properties"]["Environment"])
        assert "{{resolve:" not in text and "AUTH_TOKEN" not in text, name


def test_function_url_requires_iam(of_type: OfType) -> None:
    urls = of_type("AWS::Lambda::Url")
    assert urls and all(u["Properties"]["AuthType"] == "AWS_IAM" for u in urls.values())


def test_log_groups_have_retention(of_type: OfType) -> None:
    groups = of_type("AWS::Logs::LogGroup")
    assert len(groups) == len(of_type("AWS::Lambda::Function"))
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def _suppressions(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in resources.items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            yield name, skip


def test_every_checkov_skip_has_a_reason(resources: dict[str, Any]) -> None:
    skips = list(_suppressions(resources))
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV") and len(skip.get("comment", "")) >= 40, name


@pytest.mark.parametrize("check", ["CKV_AWS_23", "CKV_AWS_24", "CKV_AWS_260", "CKV_AWS_258"])
def test_network_and_url_checks_are_never_skipped(resources: dict[str, Any], check: str) -> None:
    assert check not in {skip["id"] for _, skip in _suppressions(resources)}


def test_cfn_lint_suppressions_are_only_the_documented_w1030(resources: dict[str, Any]) -> None:
    for name, res in resources.items():
        config = res.get("Metadata", {}).get("cfn-lint", {}).get("config", {})
        assert set(config.get("ignore_checks", [])) <= {"W1030"}, name
