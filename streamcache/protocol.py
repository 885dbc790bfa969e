"""The cache protocol's Redis side: Lua scripts, registered once, and the calls that run them.

Scripts live in ``streamcache/lua/*.lua`` (each with a header naming its KEYS
and ARGV) and are loaded by name. Every script touches exactly one key, so
the protocol works unchanged on a Redis cluster.

Replication is asynchronous: a primary that acknowledges a write and dies
before its replica has it loses that write in the failover. With
``min_replica_acks`` > 0 every pipeline ends with ``WAIT`` on the same
connection (no extra round trip); when fewer replicas confirm, its commands
count as not applied (``ReplicaAckError``) and Lambda re-delivers them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamcache import routing
from streamcache.errors import ReplicaAckError
from streamcache.held_connections import BORROWED, Connections, on_connection
from streamcache.node_pipeline import Acks, NodeGroup, Outcome, apply_call, write_and_read
from streamcache.records import Command

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# Cluster clients that lost a node: a failover may move its slots, so the next
# call re-reads the slot map first (now would be too early: the promotion
# takes a second or two, by which time this invocation has reported).
_STALE_SLOT_MAPS: weakref.WeakSet[Any] = weakref.WeakSet()

__all__ = ["APPLIED", "CHUNK_SIZE", "INVALIDATED", "SKIPPED", "Outcome", "ReplicaAckError", "Scripts"]

# Commands per pipeline: large enough to amortise round trips, small enough
# that one chunk's reply stays a few MB and a failure loses little progress.
CHUNK_SIZE = 1000

APPLIED, SKIPPED, INVALIDATED = 1, 0, 2

SCRIPT_NAMES = ("apply", "lease", "fill")  # streamcache/lua/<name>.lua, in Scripts' field order


def lua_source(name: str) -> str:
    return files("streamcache").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@dataclass
class Scripts:
    """The protocol's scripts, registered on one client (SHA computed locally)."""

    apply: Script
    lease: Script
    fill: Script

    @classmethod
    def register(cls, client: Any) -> Scripts:
        return cls(*(client.register_script(lua_source(n)) for n in SCRIPT_NAMES))


def apply_commands(
    client: Any,
    script: Script,
    commands: Sequence[Command],
    ttl_seconds: int,
    *,
    min_replica_acks: int = 0,
    replica_ack_timeout_ms: int = 100,
    fill_margin_ms: int = 1000,
    connections: Connections = BORROWED,
) -> list[Outcome]:
    """Run ``apply.lua`` for every command, pipelined in chunks: one outcome per command.

    An outcome is APPLIED, SKIPPED, INVALIDATED, or the exception for that
    command. Commands are grouped by the node that owns their key (one group
    on a single node; one per master on a cluster, found from the key's slot
    without asking the server, each sent on that master's own connection,
    MOVED/ASK followed). When a group cannot be sent (connection lost, timeout), its
    commands, and every later command for that node, get that error: what was
    not confirmed counts as not applied. The other nodes' commands go on.

    With ``min_replica_acks`` > 0, a group is confirmed only when that many
    replicas acknowledged it (WAIT); else its commands get ``ReplicaAckError``.

    ``fill_margin_ms`` (``FILL_CLOCK_MARGIN_MS``): how much later than a reader's
    fill a record must be created to end the key's fill mode (see apply.lua).
    ``connections``: ``held_connections.Held()`` for a caller that never calls from
    two threads at once (it keeps one connection per node between calls).
    """
    acks = Acks(min_replica_acks, replica_ack_timeout_ms)
    _refresh_if_stale(client)
    keys = [c.key for c in commands]
    outcomes: dict[int, Outcome] = {}
    down: dict[str, RedisError] = {}  # node name -> why: later chunks do not wait on it again
    for start in range(0, len(commands), CHUNK_SIZE):
        chunk = range(start, min(start + CHUNK_SIZE, len(commands)))
        by_node = routing.by_node(client, keys, chunk)
        groups = [
            NodeGroup(
                client,
                script,
                [commands[i] for i in indexes],
                ttl_seconds,
                acks,
                name,
                fill_margin_ms,
                connections,
            )
            for name, indexes in by_node.items()
        ]
        for indexes, results in zip(by_node.values(), run_groups(groups, down), strict=True):
            outcomes.update(zip(indexes, results, strict=True))
    if any(isinstance(err, _UNREACHABLE) for err in down.values()) and routing.is_cluster(client):
        _STALE_SLOT_MAPS.add(client)
    return [outcomes[i] for i in range(len(commands))]  # KeyError, never a silent default


def apply_one(
    client: Any,
    script: Script,
    command: Command,
    ttl_seconds: int,
    *,
    fill_margin_ms: int = 1000,
    connections: Connections = BORROWED,
    meanwhile: Callable[[], object] | None = None,
) -> Outcome | None:
    """``apply_commands`` for one command on a single node without replica acks, or None.

    The common case of a quiet stream (one record a batch) in one round trip
    and none of the general path's grouping and chunking. ``meanwhile`` runs
    while Redis runs the script (see ``write_and_read``). The outcome is
    APPLIED, SKIPPED or INVALIDATED, or the error when Redis stayed
    unreachable through the connection's retries: what ``apply_commands``
    would answer. None for everything ``apply_commands`` recovers from
    (NOSCRIPT, READONLY, a refused write, any other error): the caller runs
    the general path, which sends the write again, harmlessly (it is versioned).
    """
    assert not routing.is_cluster(client), "a cluster's commands go through apply_commands"
    call = [apply_call(script.sha, command, ttl_seconds, fill_margin_ms)]
    try:
        (reply,) = on_connection(
            client.connection_pool, connections, lambda conn: write_and_read(conn, call, meanwhile)
        )
    except _UNREACHABLE as err:
        return err
    except RedisError:
        return None
    return reply if type(reply) is int and reply in (APPLIED, SKIPPED, INVALIDATED) else None


def run_groups(groups: Sequence[NodeGroup], down: dict[str, RedisError]) -> list[list[Outcome]]:
    """Every group's outcomes; with several nodes, all are sent before any reply is read.

    So a chunk costs one round trip to the slowest node, not one per node,
    and a node that stalls delays only the reading, never the other nodes'
    writes. A thread per node measured no faster on local 3- and 16-master
    clusters (within run-to-run noise, either way), and this needs no threads.
    """
    if len(groups) == 1:
        return [groups[0].run_unless_down(groups[0].node_name, down)]
    sent = [group.start_unless_down(down) for group in groups]
    return [group.finish_unless_down(s, down) for group, s in zip(groups, sent, strict=True)]


def _refresh_if_stale(client: Any) -> None:
    if client in _STALE_SLOT_MAPS:
        try:
            client.nodes_manager.initialize()
        except RedisError:
            return  # still failing over: try again next call
        _STALE_SLOT_MAPS.discard(client)
