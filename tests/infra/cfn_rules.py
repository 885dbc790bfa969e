"""Evaluate a template's Conditions and Rules for given parameter values, as CloudFormation does.

Only the functions the templates use: Ref (parameters, with defaults), Condition,
Fn::Equals/Not/And/Or, Fn::Contains, Fn::EachMemberIn, Fn::Join. Values compare as strings,
as in CloudFormation (a Number parameter is its text); a CommaDelimitedList is a
list. Anything else raises, so a template using more fails the tests loudly.
"""

from __future__ import annotations

from typing import Any

Template = dict[str, Any]


def parameter_values(template: Template, given: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        raw = given.get(name, spec.get("Default"))
        if raw is None:
            raw = ""
        values[name] = (
            [v for v in str(raw).split(",") if v] if spec["Type"] == "CommaDelimitedList" else str(raw)
        )
    unknown = set(given) - set(values)
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    return values


_LOGIC = {
    "Fn::Equals": lambda args: args[0] == args[1],
    "Fn::Not": lambda args: not args[0],
    "Fn::And": all,
    "Fn::Or": any,
    "Fn::Contains": lambda args: args[1] in args[0],
    "Fn::EachMemberIn": lambda args: all(member in args[1] for member in args[0]),
    "Fn::Join": lambda args: args[0].join(args[1]),
}


def evaluate(node: Any, template: Template, values: dict[str, Any]) -> Any:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return [evaluate(item, template, values) for item in node]
    [(fn, arg)] = node.items()
    if fn == "Ref":
        return values[arg]
    if fn == "Condition":
        return evaluate(template["Conditions"][arg], template, values)
    if fn not in _LOGIC:
        raise NotImplementedError(fn)
    return _LOGIC[fn]([evaluate(a, template, values) for a in arg])


def evaluate_condition(template: Template, name: str, given: dict[str, str]) -> bool:
    return bool(evaluate(template["Conditions"][name], template, parameter_values(template, given)))


def refusals(template: Template, given: dict[str, str]) -> list[str]:
    """AssertDescriptions of every Rule assertion these parameters fail (empty: accepted)."""
    values = parameter_values(template, given)
    failed = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], template, values):
            continue
        failed += [
            a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], template, values)
        ]
    return failed


def resolve(node: Any, template: Template, given: dict[str, str]) -> Any:
    """``node`` with every Fn::If replaced by the branch these parameters choose."""
    if isinstance(node, list):
        return [resolve(item, template, given) for item in node]
    if not isinstance(node, dict):
        return node
    if "Fn::If" in node:
        name, yes, no = node["Fn::If"]
        return resolve(yes if evaluate_condition(template, name, given) else no, template, given)
    return {key: resolve(value, template, given) for key, value in node.items()}
