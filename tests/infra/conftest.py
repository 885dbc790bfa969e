"""Fixtures shared by the template tests: the parsed template and lookups into it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "infra" / "cloudformation.json"

Template = dict[str, Any]


@pytest.fixture(scope="session")
def template_path() -> Path:
    return TEMPLATE_PATH


@pytest.fixture(scope="session")
def template() -> Template:
    return json.loads(TEMPLATE_PATH.read_text())


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def of_type(resources: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    """``of_type("AWS::Lambda::Function")`` -> {logical id: resource}."""

    def pick(type_: str) -> dict[str, Any]:
        return {name: res for name, res in resources.items() if res["Type"] == type_}

    return pick


@pytest.fixture(scope="session")
def statements(of_type: Callable[[str], dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every (role or managed policy logical id, IAM statement), both branches of a conditional one."""
    found = list(_role_statements(of_type("AWS::IAM::Role")))
    for name, policy in of_type("AWS::IAM::ManagedPolicy").items():
        found += [(name, s) for s in _expand(policy["Properties"]["PolicyDocument"]["Statement"])]
    return found


def _role_statements(roles: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in roles.items():
        for policy in role["Properties"].get("Policies", []):
            for statement in _expand(policy["PolicyDocument"]["Statement"]):
                yield name, statement


def _expand(statements: list[Any]) -> Iterator[dict[str, Any]]:
    """A statement list with each ``Fn::If`` statement replaced by its real branches."""
    for statement in statements:
        if "Fn::If" in statement:
            yield from _expand([b for b in statement["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}])
        else:
            yield statement


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, fake_aws: None) -> Iterator[None]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield
