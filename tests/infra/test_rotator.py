"""rotator.handler: the four Secrets Manager rotation steps against in-memory fakes.

Fakes, because moto's ElastiCache has no ModifyUser and its Secrets Manager
rotation invokes a real Lambda. The fakes keep the parts the rotator relies on:
version stages, AWSPENDING/AWSCURRENT moves, the user's password list.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from rotator import handler as rotator

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sc-reader-AbCdEf"
USER_ARN = "arn:aws:elasticache:us-east-1:123456789012:user:sc-1a2b3c4d-reader"


class NotFound(Exception):
    pass


class FakeSecrets:
    class exceptions:
        ResourceNotFoundException = NotFound

    def __init__(self, value: dict[str, Any]) -> None:
        self.versions: dict[str, str] = {"v1": json.dumps(value)}
        self.stages: dict[str, list[str]] = {"v1": ["AWSCURRENT"]}

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        return {"RotationEnabled": True, "VersionIdsToStages": {k: list(v) for k, v in self.stages.items()}}

    def get_secret_value(
        self, SecretId: str, VersionStage: str, VersionId: str | None = None
    ) -> dict[str, str]:
        for version, names in self.stages.items():
            if VersionStage in names and VersionId in (None, version) and version in self.versions:
                return {"SecretString": self.versions[version]}
        raise NotFound(VersionStage)

    def get_random_password(self, PasswordLength: int, ExcludePunctuation: bool) -> dict[str, str]:
        return {"RandomPassword": uuid.uuid4().hex * 2}

    def put_secret_value(
        self, SecretId: str, ClientRequestToken: str, SecretString: str, VersionStages: list[str]
    ) -> None:
        self.versions[ClientRequestToken] = SecretString
        self.stages[ClientRequestToken] = list(VersionStages)

    def update_secret_version_stage(
        self, SecretId: str, VersionStage: str, MoveToVersionId: str, RemoveFromVersionId: str
    ) -> None:
        self.stages[RemoveFromVersionId].remove(VersionStage)
        self.stages[MoveToVersionId] = [VersionStage]

    def begin(self, token: str) -> None:
        """What Secrets Manager does before calling createSecret: label the new version AWSPENDING."""
        self.stages[token] = ["AWSPENDING"]


class FakeCache:
    def __init__(self, password: str) -> None:
        self.passwords = [password]
        self.modified: list[str] = []

    def modify_user(self, UserId: str, AuthenticationMode: dict[str, Any]) -> None:
        self.modified.append(UserId)
        self.passwords = list(AuthenticationMode["Passwords"])

    def describe_users(self, UserId: str) -> dict[str, Any]:
        return {"Users": [{"UserId": UserId, "Status": "active"}]}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeSecrets, FakeCache]:
    secrets = FakeSecrets({"username": "sc-1a2b3c4d-reader", "password": "old" * 8, "user_arn": USER_ARN})
    cache = FakeCache("old" * 8)
    clients = {"secretsmanager": secrets, "elasticache": cache}
    monkeypatch.setattr(rotator.boto3, "client", lambda name: clients[name])
    return secrets, cache


def _rotate(secrets: FakeSecrets, token: str) -> None:
    secrets.begin(token)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotator.handler({"SecretId": ARN, "ClientRequestToken": token, "Step": step}, None)


def test_rotation_gives_a_new_current_password_the_user_accepts(fakes: tuple[FakeSecrets, FakeCache]) -> None:
    secrets, cache = fakes
    _rotate(secrets, "v2")
    current = json.loads(secrets.get_secret_value(ARN, VersionStage="AWSCURRENT")["SecretString"])
    assert current["password"] != "old" * 8 and len(current["password"]) >= 16
    assert (current["username"], current["user_arn"]) == ("sc-1a2b3c4d-reader", USER_ARN)
    # the old password keeps working until the next rotation: functions re-read on WRONGPASS
    assert cache.passwords == ["old" * 8, current["password"]]
    assert cache.modified == ["sc-1a2b3c4d-reader"]


def test_second_rotation_drops_the_oldest_password(fakes: tuple[FakeSecrets, FakeCache]) -> None:
    secrets, cache = fakes
    _rotate(secrets, "v2")
    second = json.loads(secrets.get_secret_value(ARN, VersionStage="AWSCURRENT")["SecretString"])["password"]
    _rotate(secrets, "v3")
    third = json.loads(secrets.get_secret_value(ARN, VersionStage="AWSCURRENT")["SecretString"])["password"]
    assert cache.passwords == [second, third]


def test_a_retried_step_after_finish_changes_nothing(fakes: tuple[FakeSecrets, FakeCache]) -> None:
    secrets, cache = fakes
    _rotate(secrets, "v2")
    rotator.handler({"SecretId": ARN, "ClientRequestToken": "v2", "Step": "setSecret"}, None)
    assert cache.modified == ["sc-1a2b3c4d-reader"]


def test_a_retried_create_keeps_the_pending_password(fakes: tuple[FakeSecrets, FakeCache]) -> None:
    secrets, _ = fakes
    secrets.begin("v2")
    event = {"SecretId": ARN, "ClientRequestToken": "v2", "Step": "createSecret"}
    rotator.handler(event, None)
    first = secrets.versions["v2"]
    rotator.handler(event, None)
    assert secrets.versions["v2"] == first


def test_unknown_step_and_bad_user_arn_are_refused_by_name(fakes: tuple[FakeSecrets, FakeCache]) -> None:
    secrets, _ = fakes
    secrets.begin("v2")
    with pytest.raises(rotator.RotationError, match="'rewindSecret'"):
        rotator.handler({"SecretId": ARN, "ClientRequestToken": "v2", "Step": "rewindSecret"}, None)
    with pytest.raises(rotator.RotationError, match="not-an-arn"):
        rotator.user_id("not-an-arn")
