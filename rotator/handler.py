"""Rotate the password of an ElastiCache RBAC user stored in a Secrets Manager secret.

The secret is JSON ``{"username", "password", "user_arn"}`` (the shape ElastiCache's
own rotation template uses). Secrets Manager calls this function once per step:

- createSecret: a new random password as the AWSPENDING version.
- setSecret: the user accepts both the current and the pending password, so
  functions that still hold the current one keep connecting until they re-read
  the secret (they do so on WRONGPASS) or the next rotation drops it.
- testSecret: the user is active again after the change (this function runs
  outside the VPC and never connects to the cache itself).
- finishSecret: AWSPENDING becomes AWSCURRENT.

Nothing here logs a password; boto3 is the runtime's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"
PASSWORD_LENGTH = 64
ACTIVE_WAIT_SECONDS = 50


class RotationError(Exception):
    """The secret or the user is not in a state this step can act on."""


def handler(event: dict[str, Any], context: object) -> None:
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    secrets = boto3.client("secretsmanager")
    if not _needs_step(secrets, arn, token):
        return
    try:
        action = STEPS[step]
    except KeyError:
        raise RotationError(f"unknown rotation step {step!r}") from None
    action(secrets, boto3.client("elasticache"), arn, token)


def _needs_step(secrets: Any, arn: str, token: str) -> bool:
    metadata = secrets.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"{arn}: rotation is not enabled")
    stages = metadata.get("VersionIdsToStages", {})
    if token not in stages:
        raise RotationError(f"{arn}: version {token} has no stage")
    if CURRENT in stages[token]:
        return False  # already finished: a retried step is a no-op
    if PENDING not in stages[token]:
        raise RotationError(f"{arn}: version {token} is not {PENDING}")
    return True


def _value(secrets: Any, arn: str, **version: str) -> dict[str, Any]:
    value = json.loads(secrets.get_secret_value(SecretId=arn, **version)["SecretString"])
    if not isinstance(value, dict) or not isinstance(value.get("user_arn"), str):
        raise RotationError(f"{arn}: the secret JSON needs username, password and user_arn")
    return value


def create_secret(secrets: Any, cache: Any, arn: str, token: str) -> None:
    current = _value(secrets, arn, VersionStage=CURRENT)
    try:
        _value(secrets, arn, VersionId=token, VersionStage=PENDING)
        return  # created by an earlier attempt of this rotation
    except secrets.exceptions.ResourceNotFoundException:
        pass
    password = secrets.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True)
    pending = {**current, "password": password["RandomPassword"]}
    secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=[PENDING]
    )


def set_secret(secrets: Any, cache: Any, arn: str, token: str) -> None:
    current = _value(secrets, arn, VersionStage=CURRENT)
    pending = _value(secrets, arn, VersionId=token, VersionStage=PENDING)
    passwords = [current["password"], pending["password"]]
    cache.modify_user(
        UserId=user_id(pending["user_arn"]),
        AuthenticationMode={"Type": "password", "Passwords": passwords},
    )


def test_secret(secrets: Any, cache: Any, arn: str, token: str) -> None:
    pending = _value(secrets, arn, VersionId=token, VersionStage=PENDING)
    wait_until_active(cache, user_id(pending["user_arn"]))


def finish_secret(secrets: Any, cache: Any, arn: str, token: str) -> None:
    stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next(version for version, names in stages.items() if CURRENT in names)
    secrets.update_secret_version_stage(
        SecretId=arn, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
    )


def user_id(user_arn: str) -> str:
    """``arn:aws:elasticache:REGION:ACCOUNT:user:ID`` -> ``ID``."""
    parts = user_arn.split(":")
    if len(parts) != 7 or parts[5] != "user" or not parts[6]:
        raise RotationError(f"user_arn {user_arn!r} is not an ElastiCache user ARN")
    return parts[6]


def wait_until_active(cache: Any, uid: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """ModifyUser is asynchronous: the user is 'modifying' for a few seconds."""
    deadline = time.monotonic() + ACTIVE_WAIT_SECONDS
    while True:
        [user] = cache.describe_users(UserId=uid)["Users"]
        if user["Status"] == "active":
            return
        if time.monotonic() > deadline:
            raise RotationError(f"user {uid} still {user['Status']} after {ACTIVE_WAIT_SECONDS} s")
        sleep(2)


STEPS: dict[str, Callable[[Any, Any, str, str], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}
