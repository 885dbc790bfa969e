"""Which node owns each key, worked out here: no server round trip, for the writer and the reader alike.

redis-py's cluster pipeline asks the server ``COMMAND GETKEYS`` for every
``EVALSHA`` it routes (a script's keys are "movable"), one hidden round trip
per command. Every script here touches exactly one key, so its slot is
``CRC16(key) mod 16384`` (hash tags included, ``redis.crc.key_slot``) and its
owner is in the client's slot map. Keys are grouped by owning master, and each
group goes over that master's own connection (``node_pool``, ``node_pipeline``),
with MOVED and ASK followed by the caller (``node_pipeline.NodeGroup``).

On a single node everything is one group, named ``""``.

The read side uses the same two calls for a batch of keys::

    for name, indexes in routing.by_node(client, keys).items():
        pipe = routing.node_pipeline(client, name)
        ...  # queue the commands for keys[i], i in indexes; pipe.execute(raise_on_error=False)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.cluster import RedisCluster
from redis.crc import key_slot

SINGLE_NODE = ""  # the one group of a single-node client, or keys whose slot has no known owner


def is_cluster(client: Any) -> bool:
    # Asked once per class: isinstance against RedisCluster (a Protocol subclass) costs microseconds.
    cls = type(client)
    known = _CLUSTER_CLASSES.get(cls)
    if known is None:
        known = _CLUSTER_CLASSES[cls] = issubclass(cls, RedisCluster)
    return known


_CLUSTER_CLASSES: dict[type, bool] = {}


def by_node(client: Any, keys: Sequence[str], indexes: Iterable[int] | None = None) -> dict[str, list[int]]:
    """Indexes of ``keys`` (all, or those in ``indexes``) grouped by the name of the master owning each.

    A slot the client's map does not cover (a failover in progress) lands in
    group ``""``: ``node_pipeline`` sends it through redis-py's cluster
    pipeline, which resolves (or fails) it the slow way.
    """
    chosen = range(len(keys)) if indexes is None else indexes
    if not is_cluster(client):
        return {SINGLE_NODE: list(chosen)}
    slots = client.nodes_manager.slots_cache
    encode = client.encoder.encode
    groups: dict[str, list[int]] = {}
    for i in chosen:
        owners = slots.get(key_slot(encode(keys[i])))
        groups.setdefault(owners[0].name if owners else SINGLE_NODE, []).append(i)
    return groups


def node_pool(client: Any, name: str) -> Any:
    """The named master's connection pool (``""``: the single node's); None: no known owner (cluster)."""
    if not is_cluster(client):
        return client.connection_pool
    node = client.get_node(node_name=name) if name != SINGLE_NODE else None
    return None if node is None else client.get_redis_connection(node).connection_pool


def node_pipeline(client: Any, name: str) -> Any:
    """A non-transactional pipeline on the named master's own connection (``""``: the client's own)."""
    if name == SINGLE_NODE or not is_cluster(client):
        return client.pipeline(transaction=False)
    node = client.get_node(node_name=name)
    if node is None:  # dropped from the slot map since grouping (a failover): the slow way
        return client.pipeline(transaction=False)
    return client.get_redis_connection(node).pipeline(transaction=False)
