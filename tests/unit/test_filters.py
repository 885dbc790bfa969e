"""FilterCriteria for DynamoDB stream records, rule by rule, from the Lambda and EventBridge documentation.

Each case is a pattern, a record as Lambda delivers it (JSON), and whether Lambda sends it to the function.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamcache.local.filters import FilterCriteria, FilterError


def record(event_name: str = "INSERT", new: dict[str, Any] | None = None, **dynamodb: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1678831218.0,
        "Keys": {"CustomerName": {"S": "AnyCompany Industries"}, "Id": {"N": "101"}},
        "SequenceNumber": "111",
        "SizeBytes": 26,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        **dynamodb,
    }
    if new is not None:
        body["NewImage"] = new
    return {"eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": body}


IMAGE = {
    "AccountManager": {"S": "Pat Candella"},
    "PaymentTerms": {"S": "60 days"},
    "Quantity": {"N": "5"},
    "Tags": {"SS": ["red", "blue"]},
    "Active": {"BOOL": True},
    "Nothing": {"NULL": True},
    "Empty": {"S": ""},
    "Address": {"M": {"City": {"S": "Seattle"}}},
}


def matches(pattern: dict[str, Any], event: dict[str, Any], *more: dict[str, Any]) -> bool:
    return FilterCriteria.parse([json.dumps(p) for p in (pattern, *more)]).matches(event)


def new_image(attribute: str, rules: list[Any], kind: str = "S") -> dict[str, Any]:
    return {"dynamodb": {"NewImage": {attribute: {kind: rules}}}}


def test_equals_on_a_table_key() -> None:
    """AWS (with-ddb-filtering): "Suppose you want your function to process only those records where the
    primary key CustomerName is "AnyCompany Industries."" -> { "dynamodb": { "Keys": { "CustomerName":
    { "S": [ "AnyCompany Industries" ] } } } }"""
    pattern = {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}
    assert matches(pattern, record(new=IMAGE))
    assert not matches({"dynamodb": {"Keys": {"CustomerName": {"S": ["Other"]}}}}, record(new=IMAGE))


def test_or_within_a_field_and_and_across_fields() -> None:
    """AWS: Or: "PaymentType": [ "Credit", "Debit"]; And: "Location": [ "New York" ], "Day": ["Monday"]."""
    either = new_image("AccountManager", ["Pat Candella", "Shirley Rodriguez"])
    assert matches(either, record(new=IMAGE))
    both = {
        "dynamodb": {
            "NewImage": {"AccountManager": {"S": ["Pat Candella"]}, "PaymentTerms": {"S": ["30 days"]}}
        }
    }
    assert not matches(both, record(new=IMAGE))


def test_numeric_rules_never_match_n_values_which_are_strings_in_the_event() -> None:
    """AWS multi-level example: "Suppose you only wanted to handle events where the Key ID value, N, is 101"
    -> "N": [ "101" ] (a string: N values are strings in the event). EventBridge: "Numeric matching only
    works with values that are JSON numbers." So a numeric rule, or the number 101, never matches an N."""
    assert matches({"dynamodb": {"Keys": {"Id": {"N": ["101"]}}}}, record())
    assert not matches({"dynamodb": {"Keys": {"Id": {"N": [101]}}}}, record())
    assert not matches({"dynamodb": {"Keys": {"Id": {"N": [{"numeric": ["=", 101]}]}}}}, record())


def test_numeric_ranges_apply_to_json_numbers_such_as_the_creation_time() -> None:
    """AWS: Numeric (range): "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]. ApproximateCreationDateTime
    is a JSON number in the event, so numeric rules apply to it."""
    after = {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", 1678831218]}]}}
    window = {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 1678831000, "<=", 1678831100]}]}}
    assert matches(after, record()) and not matches(window, record())
    assert matches({"dynamodb": {"SizeBytes": [{"numeric": ["=", 26]}]}}, record())


def test_prefix_suffix_and_equals_ignore_case() -> None:
    """AWS: Begins with: "Region": [ {"prefix": "us-" } ]. EventBridge adds suffix and equals-ignore-case."""
    assert matches(new_image("PaymentTerms", [{"prefix": "60"}]), record(new=IMAGE))
    assert matches(new_image("PaymentTerms", [{"suffix": "days"}]), record(new=IMAGE))
    assert matches(new_image("AccountManager", [{"equals-ignore-case": "PAT CANDELLA"}]), record(new=IMAGE))
    assert not matches(new_image("PaymentTerms", [{"prefix": "30"}]), record(new=IMAGE))


def test_anything_but() -> None:
    """AWS: Not: "Weather": [ { "anything-but": [ "Raining" ] } ]."""
    assert matches(new_image("AccountManager", [{"anything-but": ["Shirley Rodriguez"]}]), record(new=IMAGE))
    assert not matches(new_image("AccountManager", [{"anything-but": "Pat Candella"}]), record(new=IMAGE))
    assert not matches(new_image("PaymentTerms", [{"anything-but": {"prefix": "60"}}]), record(new=IMAGE))
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, record())
    # the field must be there: anything-but does not match a missing attribute
    assert not matches(new_image("Missing", [{"anything-but": ["x"]}]), record(new=IMAGE))


def test_exists_true_and_false() -> None:
    """AWS: Exists: "ProductName": [ { "exists": true } ];
    Does not exist: "ProductName": [ { "exists": false } ]."""
    assert matches(new_image("AccountManager", [{"exists": True}]), record(new=IMAGE))
    assert not matches(new_image("Missing", [{"exists": True}]), record(new=IMAGE))
    assert matches(new_image("Missing", [{"exists": False}]), record(new=IMAGE))


def test_exists_false_on_an_image_field_also_matches_records_without_that_image() -> None:
    """The surprising case: a field the record lacks matches only exists:false, and a REMOVE has no NewImage,
    so a filter meant as "x is not set" also lets every delete through (and every image where x is not S)."""
    not_set = new_image("AccountManager", [{"exists": False}])
    assert matches(not_set, record("REMOVE"))  # no NewImage at all
    assert matches(
        new_image("Quantity", [{"exists": False}]), record(new=IMAGE)
    )  # Quantity is an N, not an S
    assert not matches(not_set, record(new=IMAGE))


def test_a_field_the_record_lacks_fails_every_other_rule() -> None:
    """AWS: "For Lambda to consider the event a match, the event must contain all the field names included
    in a filter." """
    assert not matches(new_image("AccountManager", ["Pat Candella"]), record("REMOVE"))
    assert not matches(
        {"dynamodb": {"OldImage": {"AccountManager": {"S": [{"prefix": ""}]}}}}, record(new=IMAGE)
    )


def test_null_empty_and_boolean_literals() -> None:
    """AWS: Null: "UserID": [ null ]; Empty: "LastName": [""]. DynamoDB's BOOL and NULL are JSON booleans."""
    assert matches(new_image("Empty", [""]), record(new=IMAGE))
    assert matches(new_image("Active", [True], kind="BOOL"), record(new=IMAGE))
    assert not matches(new_image("Active", [False], kind="BOOL"), record(new=IMAGE))
    assert matches(new_image("Nothing", [True], kind="NULL"), record(new=IMAGE))
    assert not matches(new_image("Active", [1], kind="BOOL"), record(new=IMAGE))  # 1 is not true


def test_nested_maps_and_sets() -> None:
    """Multi-level filtering reaches into M values; an array in the event matches when any element does."""
    city = {"dynamodb": {"NewImage": {"Address": {"M": {"City": {"S": ["Seattle"]}}}}}}
    assert matches(city, record(new=IMAGE))
    assert matches(new_image("Tags", ["blue"], kind="SS"), record(new=IMAGE))
    assert not matches(new_image("Tags", ["green"], kind="SS"), record(new=IMAGE))


def test_or_operator_and_several_filters() -> None:
    """AWS: "If an event satisfies any one of these five filters, Lambda sends the event to your function."
    EventBridge: "$or" matches when any of its patterns does."""
    inserts = {"eventName": ["INSERT"]}
    removes = {"eventName": ["REMOVE"]}
    assert matches(removes, record("REMOVE"), inserts) and not matches(removes, record("MODIFY"), inserts)
    either = {"$or": [{"eventName": ["REMOVE"]}, new_image("Quantity", ["5"], kind="N")]}
    assert matches(either, record(new=IMAGE)) and matches(either, record("REMOVE"))
    assert not matches(either, record("MODIFY", new={"Quantity": {"N": "6"}}))


def test_no_filters_deliver_everything() -> None:
    assert FilterCriteria.parse([]).matches(record())


@pytest.mark.parametrize(
    "pattern",
    [
        "not json",
        "[]",
        "{}",
        '{"eventName": "INSERT"}',  # a rule must be a list
        '{"eventName": []}',
        '{"eventName": [{"regex": "I.*"}]}',
        '{"dynamodb": {"SizeBytes": [{"numeric": [">", "10"]}]}}',
        '{"dynamodb": {"SizeBytes": [{"numeric": ["~", 10]}]}}',
        '{"eventName": [{"exists": "yes"}]}',
        '{"$or": [{"eventName": ["INSERT"]}]}',
    ],
)
def test_invalid_patterns_are_refused_when_the_mapping_is_made(pattern: str) -> None:
    """AWS: a non-JSON pattern makes "Lambda throw an exception at the time of the event source mapping
    creation or update" (InvalidParameterValueException "Invalid filter pattern definition.")."""
    with pytest.raises(FilterError, match="filter pattern"):
        FilterCriteria.parse([pattern])


def test_more_filters_than_lambda_allows_are_refused() -> None:
    with pytest.raises(FilterError, match="at most 10"):
        FilterCriteria.parse(['{"eventName": ["INSERT"]}'] * 11)
