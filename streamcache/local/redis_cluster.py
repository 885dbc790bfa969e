"""A throwaway 3-master Redis cluster on free ports, owned by whoever started it.

Three ``redis-server --cluster-enabled yes`` processes; the slots are split
in three with CLUSTER ADDSLOTSRANGE and the nodes introduced with CLUSTER
MEET. No replicas: a killed master's slots are down until it is restarted
(``cluster-require-full-coverage no`` keeps the other masters serving), which
is what the "node killed mid-batch" tests need.

    with running_cluster() as cluster:
        client = redis.cluster.RedisCluster.from_url(cluster.url)
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from streamcache.local.redis_server import RedisServer, free_port

SLOTS = 16384


@dataclass
class RedisClusterNodes:
    """The cluster's master processes; ``nodes[i]`` serves ``slot_ranges()[i]``."""

    size: int = 3
    extra_args: Sequence[str] = ()
    nodes: list[RedisServer] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Any node's URL: redis-py discovers the others (REDIS_URL with REDIS_CLUSTER=true)."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    def slot_ranges(self) -> list[tuple[int, int]]:
        step = SLOTS // self.size
        starts = [i * step for i in range(self.size)]
        return [(s, (starts[i + 1] - 1) if i + 1 < self.size else SLOTS - 1) for i, s in enumerate(starts)]

    def node_for_slot(self, slot: int) -> RedisServer:
        for node, (low, high) in zip(self.nodes, self.slot_ranges(), strict=True):
            if low <= slot <= high:
                return node
        raise ValueError(f"slot {slot} is outside 0..{SLOTS - 1}")

    def start(self, timeout: float = 10.0) -> RedisClusterNodes:
        for _ in range(self.size):
            # Explicit bus port: the default (port + 10000) may be taken or above 65535.
            bus_port = free_port()
            self.bus_ports.append(bus_port)
            node = RedisServer(extra_args=[*self._node_args(), "--cluster-port", str(bus_port)])
            self.nodes.append(node)
            node.start()
        self._assign_slots()
        self._meet()
        self.wait_ok(timeout)
        return self

    def _node_args(self) -> list[str]:
        return [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",  # relative to the node's own --dir
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no",
            *self.extra_args,
        ]

    def _assign_slots(self) -> None:
        for epoch, (node, (low, high)) in enumerate(zip(self.nodes, self.slot_ranges(), strict=True), 1):
            with _admin(node) as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)

    def _meet(self) -> None:
        with _admin(self.nodes[0]) as client:
            for node, bus_port in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)

    def wait_ok(self, timeout: float = 10.0) -> None:
        """Until every running node says cluster_state:ok and knows every slot's owner."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_settled(node, self.size) for node in self.nodes if node.process is not None):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the local Redis cluster did not reach cluster_state:ok within {timeout}s")

    def restart(self, index: int, timeout: float = 10.0) -> None:
        """Restart one node (same port, same nodes.conf: it rejoins with its slots, empty)."""
        self.nodes[index].restart()
        self.wait_ok(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
            shutil.rmtree(node.workdir, ignore_errors=True)


def _admin(node: RedisServer) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=2.0, decode_responses=True)


def _settled(node: RedisServer, size: int) -> bool:
    try:
        with _admin(node) as client:
            info = client.execute_command("CLUSTER", "INFO")
            slots = client.execute_command("CLUSTER", "SLOTS")
    except redis.RedisError:
        return False
    text = info if isinstance(info, str) else str(info)
    covered = sum(int(entry[1]) - int(entry[0]) + 1 for entry in slots)
    return "cluster_state:ok" in text and covered == SLOTS and len(slots) >= size


@contextmanager
def running_cluster(size: int = 3, extra_args: Sequence[str] = ()) -> Iterator[RedisClusterNodes]:
    """Start a local cluster of ``size`` masters; yields it (``.url``, ``.startup_nodes``)."""
    cluster = RedisClusterNodes(size=size, extra_args=extra_args)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
