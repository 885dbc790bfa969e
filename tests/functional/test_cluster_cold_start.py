"""A Redis cluster that no node answers when a function starts (cold start during an outage).

``RedisCluster`` reads the slot map when it is built, so unlike a single-node
client it raises at construction. The reader must still answer from DynamoDB
and the invalidator must report the batch (nothing lost); both recover once
the cluster is back, without a new execution environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import invalidator.handler as invalidator_handler
import reader.runtime as reader_runtime
from streamcache.local import events
from streamcache.local.redis_cluster import RedisClusterNodes, running_cluster
from tests.functional.readerkit import boto3_item
from tests.functional.test_reader_races import PLAIN_KEY, V1, plain

SEQ = events.FIRST_SEQUENCE


@pytest.fixture
def down_cluster() -> Iterator[RedisClusterNodes]:
    """A 3-master cluster whose nodes are all stopped (same ports and nodes.conf kept for restart)."""
    with running_cluster() as cluster:
        for node in cluster.nodes:
            node.stop()
        yield cluster


def bring_back(cluster: RedisClusterNodes) -> None:
    for node in cluster.nodes:
        node.start()
    cluster.wait_ok()


@pytest.fixture
def invalidator_env(
    invalidator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, down_cluster: RedisClusterNodes
) -> dict[str, str]:
    cluster = {"REDIS_URL": down_cluster.url, "REDIS_CLUSTER": "true"}
    for name, value in cluster.items():
        monkeypatch.setenv(name, value)
    invalidator_handler.reset()
    return {**invalidator_env, **cluster}


def test_invalidator_reports_the_batch_then_recovers(invoke: Any, down_cluster: RedisClusterNodes) -> None:
    keys = [{"pk": {"S": f"u{i}"}, "sk": {"N": "1"}} for i in range(6)]
    batch = events.event(
        [events.record("orders", "INSERT", k, SEQ + i, new=events.item(k)) for i, k in enumerate(keys)]
    )
    # GIVEN no cluster node answers WHEN a batch arrives THEN every record is reported
    response = invoke(batch)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [str(SEQ + i) for i in range(6)]
    # WHEN the cluster is back THEN the re-delivered batch applies in the same execution environment
    bring_back(down_cluster)
    assert invoke(batch) == {"batchItemFailures": []}


def test_reader_answers_from_dynamodb_then_uses_the_cluster_again(
    read: Any, dynamodb: Any, down_cluster: RedisClusterNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_runtime, "BREAKER_COOLDOWN_S", 0.001)  # probe again at once once it is back
    reader_runtime.reset()
    dynamodb.put_item(TableName="orders", Item=boto3_item(V1))
    # GIVEN the cluster is down at cold start THEN reads answer from DynamoDB, never an error
    for _ in range(2):
        assert read(PLAIN_KEY) == {"found": True, "item": plain(V1), "source": "dynamodb"}
    # WHEN it is back THEN the same runtime builds its client, fills, and serves hits
    bring_back(down_cluster)
    assert read(PLAIN_KEY)["source"] == "dynamodb"  # miss: lease, GetItem, fill
    assert read(PLAIN_KEY) == {"found": True, "item": plain(V1), "source": "cache"}
