"""BatchGetItem: 100 keys per call, unprocessed keys asked again with backoff, order restored."""

from __future__ import annotations

from typing import Any

import pytest
from redis.backoff import ExponentialBackoff

from streamcache.errors import UnprocessedKeysError
from streamcache.read.dynamodb import BatchReader, DynamoTable


def stream_key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"u{n}"}, "sk": {"N": str(n)}}


class ThrottlingClient:
    """A low-level client whose BatchGetItem leaves ``unprocessed`` keys for the first ``throttled`` calls."""

    def __init__(self, throttled: int, unprocessed: int = 2) -> None:
        self.throttled, self.unprocessed = throttled, unprocessed
        self.calls: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        assert request["ConsistentRead"] is True
        keys = request["Keys"]
        self.calls.append(len(keys))
        done, left = keys, []
        if len(self.calls) <= self.throttled:
            done, left = keys[self.unprocessed :], keys[: self.unprocessed]
        found = [{**k, "v": {"S": "x"}} for k in reversed(done) if k["sk"]["N"] != "13"]  # 13 is absent
        response: dict[str, Any] = {"Responses": {table: found}, "UnprocessedKeys": {}}
        if left:
            response["UnprocessedKeys"] = {table: {"Keys": left, "ConsistentRead": True}}
        return response


def reader(sleeps: list[float], attempts: int = 8) -> BatchReader:
    return BatchReader(ExponentialBackoff(cap=1.0, base=0.01), attempts, sleep=sleeps.append)


def test_unprocessed_keys_are_asked_again_with_growing_pauses() -> None:
    client, sleeps = ThrottlingClient(throttled=3), []
    keys = [stream_key(n) for n in range(20)]
    items = DynamoTable(client, reader(sleeps)).get_many("orders", keys)
    assert client.calls == [20, 2, 2, 2]
    assert sleeps == [0.01, 0.02, 0.04]
    assert [i and i["sk"]["N"] for i in items] == [None if n == 13 else str(n) for n in range(20)]


def test_keys_are_sent_100_per_call() -> None:
    client = ThrottlingClient(throttled=0)
    items = DynamoTable(client, reader([])).get_many("orders", [stream_key(n) for n in range(250)])
    assert client.calls == [100, 100, 50]
    assert sum(i is not None for i in items) == 249


def test_still_unprocessed_after_every_attempt_raises_naming_the_table() -> None:
    client, sleeps = ThrottlingClient(throttled=100), []
    with pytest.raises(UnprocessedKeysError, match="'orders' left 2 key") as err:
        DynamoTable(client, reader(sleeps, attempts=4)).get_many("orders", [stream_key(1), stream_key(2)])
    assert (err.value.table, err.value.pending, err.value.attempts) == ("orders", 2, 4)
    assert len(client.calls) == 4 and len(sleeps) == 3


def test_number_keys_match_whatever_text_dynamodb_answers_with() -> None:
    class Normalising:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            return {"Responses": {"t": [{"pk": {"S": "a"}, "sk": {"N": "1.5"}}]}}

    items = DynamoTable(Normalising(), reader([])).get_many("t", [{"pk": {"S": "a"}, "sk": {"N": "1.50"}}])
    assert items == [{"pk": {"S": "a"}, "sk": {"N": "1.5"}}]
