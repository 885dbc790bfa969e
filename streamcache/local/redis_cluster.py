"""A throwaway Redis cluster on free ports, owned by whoever started it.

``size`` masters (``redis-server --cluster-enabled yes``); the slots are split
in ``size`` with CLUSTER ADDSLOTSRANGE and the nodes introduced with CLUSTER
MEET. By default no replicas: a killed master's slots are down until it is
restarted (``cluster-require-full-coverage no`` keeps the other masters
serving), which is what the "node killed mid-batch" tests need. With
``replicas=1`` every master gets a replica (CLUSTER REPLICATE) and a killed
master fails over by itself after ``node_timeout_ms``. With ``tls`` (files
from ``streamcache.local.tls.make_tls_files``) every node speaks TLS only,
clients, cluster bus and replication alike, and announces 127.0.0.1, which
the certificate names: clients verify the host name.

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
from streamcache.local.tls import TlsFiles, TlsRedisServer, make_tls_files

SLOTS = 16384


@dataclass
class RedisClusterNodes:
    """The cluster's processes; ``nodes[i]`` is the master first given ``slot_ranges()[i]``.

    ``replica_nodes[i]`` (with ``replicas=1``) replicates ``nodes[i]``. After a
    failover the roles swap: ask ``owner(slot)`` who serves a slot now.
    """

    size: int = 3
    extra_args: Sequence[str] = ()
    replicas: int = 0
    node_timeout_ms: int = 2000
    tls: TlsFiles | None = None
    nodes: list[RedisServer] = field(default_factory=list)
    replica_nodes: list[RedisServer] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Any node's URL: redis-py discovers the others (REDIS_URL with REDIS_CLUSTER=true)."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    @property
    def all_nodes(self) -> list[RedisServer]:
        return [*self.nodes, *self.replica_nodes]

    def slot_ranges(self) -> list[tuple[int, int]]:
        step = SLOTS // self.size
        starts = [i * step for i in range(self.size)]
        return [(s, (starts[i + 1] - 1) if i + 1 < self.size else SLOTS - 1) for i, s in enumerate(starts)]

    def node_for_slot(self, slot: int) -> RedisServer:
        """The master the slot was first given to (see ``owner`` after a failover)."""
        for node, (low, high) in zip(self.nodes, self.slot_ranges(), strict=True):
            if low <= slot <= high:
                return node
        raise ValueError(f"slot {slot} is outside 0..{SLOTS - 1}")

    def owner(self, slot: int) -> RedisServer:
        """The node serving ``slot`` now, as the running nodes' CLUSTER SLOTS says."""
        live = next(n for n in self.all_nodes if n.process is not None)
        with admin(live) as client:
            for low, high, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(low) <= slot <= int(high):
                    return next(n for n in self.all_nodes if n.port == int(master[1]))
        raise LookupError(f"no node serves slot {slot}")

    def start(self, timeout: float = 10.0) -> RedisClusterNodes:
        # One at a time into the lists, so stop() finds every node started before a failure.
        for _ in range(self.size):
            self.nodes.append(self._start_node())
        for _ in range(self.size * self.replicas):
            self.replica_nodes.append(self._start_node())
        self._assign_slots()
        self._meet()
        if self.replica_nodes:
            self._wait_known(timeout)
            self._replicate()
        self.wait_ok(timeout)
        return self

    def _start_node(self) -> RedisServer:
        # Explicit bus port: the default (port + 10000) may be taken or above 65535.
        bus_port = free_port()
        self.bus_ports.append(bus_port)
        args = [*self._node_args(), "--cluster-port", str(bus_port)]
        if self.tls is None:
            return RedisServer(extra_args=args).start()
        tls_args = ["--tls-cluster", "yes", "--tls-replication", "yes"]
        return TlsRedisServer(self.tls, extra_args=[*args, *tls_args]).start()

    def _node_args(self) -> list[str]:
        return [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",  # relative to the node's own --dir
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--cluster-require-full-coverage",
            "no",
            "--repl-diskless-sync-delay",
            "0",  # a replica's first sync starts at once (the default waits 5 s for more replicas)
            *self.extra_args,
        ]

    def _assign_slots(self) -> None:
        for epoch, (node, (low, high)) in enumerate(zip(self.nodes, self.slot_ranges(), strict=True), 1):
            with admin(node) as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)

    def _meet(self) -> None:
        with admin(self.nodes[0]) as client:
            for node, bus_port in zip(self.all_nodes[1:], self.bus_ports[1:], strict=True):
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)

    def _wait_known(self, timeout: float) -> None:
        """Until every replica knows every node (CLUSTER REPLICATE needs to know its master)."""
        deadline = time.monotonic() + timeout
        total = len(self.all_nodes)
        while any(_known(n) < total for n in self.replica_nodes):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local Redis cluster's nodes did not meet within {timeout}s")
            time.sleep(0.05)

    def _replicate(self) -> None:
        for i, replica in enumerate(self.replica_nodes):
            master = self.nodes[i % self.size]
            with admin(master) as client:
                master_id = client.execute_command("CLUSTER", "MYID")
            with admin(replica) as client:
                client.execute_command("CLUSTER", "REPLICATE", master_id)

    def wait_ok(self, timeout: float = 10.0) -> None:
        """Until every running node says cluster_state:ok, knows every slot's owner, replicas synced."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [node for node in self.all_nodes if node.process is not None]
            if all(_settled(node, self.size) for node in live) and all(_synced(n) for n in live):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the local Redis cluster did not reach cluster_state:ok within {timeout}s")

    def restart(self, index: int, timeout: float = 10.0) -> None:
        """Restart one master (same port, same nodes.conf: it rejoins with its slots, empty)."""
        self.nodes[index].restart()
        self.wait_ok(timeout)

    def stop(self) -> None:
        for node in self.all_nodes:
            node.stop()
            shutil.rmtree(node.workdir, ignore_errors=True)


def admin(node: RedisServer, decode: bool = True) -> redis.Redis:
    """A client to one node alone (TLS verified when the node speaks TLS); ``decode``: str replies."""
    if isinstance(node, TlsRedisServer):
        return node.client(socket_timeout=2.0, decode_responses=decode)
    return redis.Redis(port=node.port, socket_timeout=2.0, decode_responses=decode)


def _known(node: RedisServer) -> int:
    with admin(node) as client:
        return len(str(client.execute_command("CLUSTER", "NODES")).strip().splitlines())


def _synced(node: RedisServer) -> bool:
    """A master, or a replica whose link to its master is up (a failover needs a synced replica)."""
    try:
        with admin(node) as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return info.get("role") == "master" or info.get("master_link_status") == "up"


def _settled(node: RedisServer, size: int) -> bool:
    try:
        with admin(node) as client:
            info = client.execute_command("CLUSTER", "INFO")
            slots = client.execute_command("CLUSTER", "SLOTS")
    except redis.RedisError:
        return False
    text = info if isinstance(info, str) else str(info)
    covered = sum(int(entry[1]) - int(entry[0]) + 1 for entry in slots)
    return "cluster_state:ok" in text and covered == SLOTS and len(slots) >= size


@contextmanager
def running_cluster(
    size: int = 3,
    extra_args: Sequence[str] = (),
    replicas: int = 0,
    node_timeout_ms: int = 2000,
    tls: bool = False,
) -> Iterator[RedisClusterNodes]:
    """Start a local cluster of ``size`` masters (``replicas`` each; TLS only when ``tls``).

    Yields it (``.url``, ``.startup_nodes``; ``.tls.ca_cert`` is the CA when ``tls``).
    """
    files = make_tls_files() if tls else None
    cluster = RedisClusterNodes(size, extra_args, replicas, node_timeout_ms, files)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        if files is not None:
            shutil.rmtree(files.directory, ignore_errors=True)
