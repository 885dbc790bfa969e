"""The consistency checker's part of the stack: one contiguous, conditional block.

Given ``CheckerCodeKey``, the stack runs ``checker.handler.handler`` every
minute in the invalidator's subnets, alarms on any ``Inconsistent`` sample and
draws the nines; without it, none of that exists and the invalidator samples
nothing (``CONSISTENCY_SAMPLE_RATE`` 0).
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from tests.infra.test_moto_deploy import (
    BUCKET,
    PARAMETERS,
    REGION,
    _deploy,
    _upload_code,
    _zip,
    moto_copy,
)

BLOCK = [
    "CheckerSecurityGroup",
    "CacheIngressFromChecker",
    "EndpointIngressFromChecker",
    "CheckerLogGroup",
    "CheckerRole",
    "CheckerFunction",
    "CheckerSchedule",
    "CheckerSchedulePermission",
    "InconsistentAlarm",
    "CheckerErrorsAlarm",
    "ConsistencyDashboard",
]
CHECKER_KEY = "streamcache/abc/checker.zip"


def test_checker_resources_are_one_contiguous_conditional_block(resources: dict[str, Any]) -> None:
    names = list(resources)
    start = names.index(BLOCK[0])
    assert names[start : start + len(BLOCK)] == BLOCK
    for name in BLOCK:
        assert resources[name]["Condition"] in ("HasChecker", "CreateCheckerEndpointIngress"), name


def test_checker_runs_every_minute_one_at_a_time(resources: dict[str, Any]) -> None:
    function = resources["CheckerFunction"]["Properties"]
    assert function["Handler"] == "checker.handler.handler"
    assert function["ReservedConcurrentExecutions"] == 1
    assert resources["CheckerSchedule"]["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    permission = resources["CheckerSchedulePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"


def test_checker_role_reaches_no_table_and_no_queue(resources: dict[str, Any]) -> None:
    (policy,) = resources["CheckerRole"]["Properties"]["Policies"]
    actions = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("dynamodb:", "sqs:", "lambda:"))}, actions


def test_invalidator_and_checker_agree_on_the_delays_and_sampling_is_off_without_a_checker(
    resources: dict[str, Any],
) -> None:
    invalidator = resources["InvalidatorFunction"]["Properties"]["Environment"]["Variables"]
    checker = resources["CheckerFunction"]["Properties"]["Environment"]["Variables"]
    assert invalidator["CONSISTENCY_CHECK_DELAYS"] == checker["CONSISTENCY_CHECK_DELAYS"] == "10,60"
    assert invalidator["CONSISTENCY_SAMPLE_RATE"] == {
        "Fn::If": ["HasChecker", {"Ref": "ConsistencySampleRate"}, "0"]
    }
    assert checker["CONSISTENCY_REPAIR"] == {"Ref": "ConsistencyRepair"}


def test_alarm_fires_on_any_inconsistency(resources: dict[str, Any]) -> None:
    alarm = resources["InconsistentAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "streamcache",
        "Inconsistent",
        "Sum",
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::Sub": "${AWS::StackName}-checker"}


def test_a_checker_that_keeps_failing_alarms(resources: dict[str, Any]) -> None:
    alarm = resources["CheckerErrorsAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("Errors", 2)
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CheckerFunction"}}]


def test_dashboard_draws_the_nines(resources: dict[str, Any]) -> None:
    body = resources["ConsistencyDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    expressions = [
        m[0]["expression"] for w in widgets for m in w["properties"]["metrics"] if "expression" in m[0]
    ]
    assert expressions == ["IF(c > 0, IF(i > 0, -LOG10(i / c), LOG10(c)))"]


@pytest.fixture
def deployed_with_checker(aws: None, template: dict[str, Any]) -> dict[str, str]:
    _upload_code()
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=CHECKER_KEY, Body=_zip())
    given = {**PARAMETERS, "CheckerCodeKey": CHECKER_KEY}
    return _deploy(moto_copy(template, given), given)


def test_stack_with_the_checker_reaches_create_complete(deployed_with_checker: dict[str, str]) -> None:
    name = deployed_with_checker["CheckerFunctionName"]
    lam = boto3.client("lambda", region_name=REGION)
    env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert env["CONSISTENCY_CHECK_DELAYS"] == "10,60" and env["CONSISTENCY_REPAIR"] == "false"
    invalidator = lam.get_function_configuration(
        FunctionName=deployed_with_checker["InvalidatorFunctionName"]
    )
    assert invalidator["Environment"]["Variables"]["CONSISTENCY_SAMPLE_RATE"] == "0.01"
    rules = boto3.client("events", region_name=REGION).list_rules()["Rules"]
    assert [r["ScheduleExpression"] for r in rules] == ["rate(1 minute)"]
