"""Keys written on the command line (generate-event, inspect, up): types, order, one clear error."""

from __future__ import annotations

import pytest

from streamcache.local.keyargs import KeyArgumentError, local_key_schema, parse_key
from streamcache.schema import TableKeys


def test_numbers_are_n_and_text_is_s_unless_a_type_is_written() -> None:
    assert parse_key(["pk=u1,sk=42"]) == {"pk": {"S": "u1"}, "sk": {"N": "42"}}
    assert parse_key(["pk:S=007", "sk:N=1.50"]) == {"pk": {"S": "007"}, "sk": {"N": "1.5"}}
    assert parse_key(["id:B=AAE="]) == {"id": {"B": "AAE="}}


def test_the_table_schema_orders_the_key_hash_first_and_types_it() -> None:
    schema = TableKeys(("pk", "sk"), ("S", "N"))
    assert list(parse_key(["sk=42,pk=7"], schema)) == ["pk", "sk"]
    assert parse_key(["sk=42,pk=7"], schema)["pk"] == {"S": "7"}


def test_a_json_key_keeps_commas_and_typed_numbers() -> None:
    assert parse_key(['{"pk": "a,b", "sk": 42}']) == {"pk": {"S": "a,b"}, "sk": {"N": "42"}}


@pytest.mark.parametrize(
    ("parts", "schema", "message"),
    [
        ([""], None, "no key given"),
        (["pk"], None, "'pk' is not name=value"),
        (["pk:X=1"], None, "type 'X' is not S, N or B"),
        (["pk=1,pk=2"], None, "written twice"),
        (["sk:N=abc"], None, "'sk': 'abc' is not a valid N"),
        (["id:B=@@"], None, "'id': '@@' is not a valid B"),
        (["a=1,b=2,c=3"], None, "one or two attributes, not 3"),
        (["pk=u1"], TableKeys(("pk", "sk")), "do not match the table's key schema ['pk', 'sk']"),
        (["{nope"], None, "is not valid JSON"),
        (['{"pk": true}'], None, "True is not a string or a number"),
    ],
)
def test_bad_keys_name_the_value(parts: list[str], schema: TableKeys | None, message: str) -> None:
    with pytest.raises(KeyArgumentError, match=None) as err:
        parse_key(parts, schema)
    assert message in str(err.value)


def test_key_schema_comes_from_the_environment_else_the_sample_tables() -> None:
    assert local_key_schema({"KEY_SCHEMA": '{"t": ["id"]}'}) == {"t": ("id",)}
    assert local_key_schema({})["orders"] == ("pk", "sk")
