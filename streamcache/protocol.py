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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, NoScriptError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamcache.errors import StreamCacheError
from streamcache.records import Command

# Commands per pipeline: large enough to amortise round trips, small enough
# that one chunk's reply stays a few MB and a failure loses little progress.
CHUNK_SIZE = 1000

APPLIED, SKIPPED, INVALIDATED = 1, 0, 2


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
        return cls(*(client.register_script(lua_source(n)) for n in ("apply", "lease", "fill")))


Outcome = int | Exception


class ReplicaAckError(StreamCacheError, RedisTimeoutError):
    """Fewer replicas than REDIS_MIN_REPLICA_ACKS confirmed a write within the timeout.

    The primary applied it, but a failover now could lose it: it counts as not
    applied, and Lambda re-delivers it (harmless: writes are versioned). A
    Redis ``TimeoutError``, so the invalidator treats it like an unreachable
    node (report, retry later), not like a refused write.
    """


@dataclass(frozen=True)
class Acks:
    """How many replicas must confirm each pipeline's writes (0: no WAIT), and for how long."""

    replicas: int = 0
    timeout_ms: int = 100


def apply_commands(
    client: Any,
    script: Script,
    commands: Sequence[Command],
    ttl_seconds: int,
    *,
    min_replica_acks: int = 0,
    replica_ack_timeout_ms: int = 100,
) -> list[Outcome]:
    """Run ``apply.lua`` for every command, pipelined in chunks: one outcome per command.

    An outcome is APPLIED, SKIPPED, INVALIDATED, or the exception for that
    command. Commands are grouped by the node that owns their key (one group
    on a single node; one per master on a cluster, where MOVED/ASK are followed
    by redis-py). When a group cannot be sent (connection lost, timeout), its
    commands, and every later command for that node, get that error: what was
    not confirmed counts as not applied. The other nodes' commands go on.

    With ``min_replica_acks`` > 0, a group is confirmed only when that many
    replicas acknowledged it (WAIT); else its commands get ``ReplicaAckError``.
    """
    acks = Acks(min_replica_acks, replica_ack_timeout_ms)
    outcomes: list[Outcome] = [SKIPPED] * len(commands)
    down: dict[str, RedisError] = {}  # node name -> why: later chunks do not wait on it again
    for start in range(0, len(commands), CHUNK_SIZE):
        chunk = range(start, min(start + CHUNK_SIZE, len(commands)))
        for name, indexes in _by_node(client, commands, chunk).items():
            group = _Group(client, script, [commands[i] for i in indexes], ttl_seconds, acks, name)
            results = group.run_unless_down(name, down)
            for i, outcome in zip(indexes, results, strict=True):
                outcomes[i] = outcome
    return outcomes


def _by_node(client: Any, commands: Sequence[Command], chunk: range) -> dict[str, list[int]]:
    """Chunk indexes grouped by owning node's name (cluster), or all in one group (single node)."""
    if not isinstance(client, RedisCluster):
        return {"": list(chunk)}
    groups: dict[str, list[int]] = {}
    for i in chunk:
        try:
            name = client.get_node_from_key(commands[i].key).name
        except RedisError:  # slot map incomplete: the pipeline resolves it (or fails the command)
            name = ""
        groups.setdefault(name, []).append(i)
    return groups


@dataclass
class _Group:
    """The commands of one chunk that one node owns."""

    client: Any
    script: Script
    commands: Sequence[Command]
    ttl: int
    acks: Acks = Acks()
    node_name: str = ""  # cluster: the owning master ("" when the slot map did not say)

    def run_unless_down(self, name: str, down: dict[str, RedisError]) -> list[Outcome]:
        """Outcomes, or this node's error for all when it failed earlier (remembered in ``down``).

        Replicas that did not confirm this group will not confirm the next one
        sooner: the node counts as down for the rest of the batch (no more waits).
        """
        if name not in down:
            try:
                outcomes = self.run()
            except RedisError as err:
                down[name] = err
            else:
                unconfirmed = [o for o in outcomes if isinstance(o, ReplicaAckError)]
                if unconfirmed:
                    down[name] = unconfirmed[0]
                return outcomes
        return [down[name]] * len(self.commands)

    def run(self) -> list[Outcome]:
        outcomes = self._pipeline(self.commands)
        # READONLY: a failover demoted the node we reached; a new connection finds the new primary.
        self._redo(outcomes, ReadOnlyError, lambda: _reconnect(self.client))
        # NOSCRIPT: first use on this node, or after a restart / failover / SCRIPT FLUSH.
        self._redo(outcomes, NoScriptError, lambda: _load(self.client, self.script))
        if self._direct:
            self._follow_redirects(outcomes)
        return outcomes

    def _redo(self, outcomes: list[Outcome], error: type[RedisError], prepare: Callable[[], None]) -> None:
        """Run again, once, the commands whose outcome is ``error``, after ``prepare()``."""
        redo = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, error)]
        if not redo:
            return
        try:
            prepare()
            again = self._pipeline([self.commands[i] for i in redo])
        except RedisError as err:
            again = [err] * len(redo)
        for i, outcome in zip(redo, again, strict=True):
            outcomes[i] = outcome

    @property
    def _direct(self) -> bool:
        """Sent on the owning master's own connection (cluster + WAIT), not through ClusterPipeline.

        WAIT is keyless: ClusterPipeline would route it to some node, not to the
        connection that carried this group's writes, which is the one WAIT covers.
        """
        return self.acks.replicas > 0 and isinstance(self.client, RedisCluster) and bool(self.node_name)

    def _pipeline(self, commands: Sequence[Command], node: Any = None, asking: bool = False) -> list[Outcome]:
        pipe = self._new_pipeline(node)
        for c in commands:
            if asking:  # ASK: the target accepts the next command for a slot it is importing
                pipe.execute_command("ASKING")
            # execute_command, not pipe.evalsha: ClusterPipeline refuses the named method.
            pipe.execute_command("EVALSHA", self.script.sha, 1, c.key, c.kind, c.version, c.payload, self.ttl)
        waits = self.acks.replicas > 0 and (node is not None or self._direct or not self._cluster)
        if waits:
            pipe.execute_command("WAIT", self.acks.replicas, self.acks.timeout_ms)
        results = list(pipe.execute(raise_on_error=False))
        replies = results[:-1] if waits else results
        if asking:
            replies = replies[1::2]
        if self.acks.replicas == 0:
            return replies
        return _confirmed(replies, results[-1] if waits else None, self.acks)

    @property
    def _cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def _new_pipeline(self, node: Any) -> Any:
        if node is None and self._direct:
            node = self.client.get_node(node_name=self.node_name)
        if node is None:
            return self.client.pipeline(transaction=False)
        return self.client.get_redis_connection(node).pipeline(transaction=False)

    def _follow_redirects(self, outcomes: list[Outcome]) -> None:
        """What redis-py's ClusterPipeline does for MOVED/ASK, once, on the direct path."""
        redirected = [i for i, o in enumerate(outcomes) if isinstance(o, MovedError | AskError)]
        if not redirected:
            return
        if any(isinstance(outcomes[i], MovedError) for i in redirected):
            _reconnect(self.client)  # the slot map is stale: later chunks go to the new owner
        targets: dict[tuple[str, bool], list[int]] = {}
        for i in redirected:
            err = outcomes[i]
            assert isinstance(err, MovedError | AskError)
            targets.setdefault((f"{err.host}:{err.port}", isinstance(err, AskError)), []).append(i)
        for (address, asking), indexes in targets.items():
            try:
                node = self.client.get_node(node_name=address)
                if node is None:
                    raise RedisError(f"redirected to {address}, a node not in the slot map")
                again = self._redirected([self.commands[i] for i in indexes], node, asking)
            except RedisError as err:
                again = [err] * len(indexes)
            for i, outcome in zip(indexes, again, strict=True):
                outcomes[i] = outcome

    def _redirected(self, commands: Sequence[Command], node: Any, asking: bool) -> list[Outcome]:
        """Send to the node a redirect named; NOSCRIPT there (first use) loads and sends once more."""
        outcomes = self._pipeline(commands, node, asking)
        missing = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, NoScriptError)]
        if missing:
            _load(self.client, self.script)
            again = self._pipeline([commands[i] for i in missing], node, asking)
            for i, outcome in zip(missing, again, strict=True):
                outcomes[i] = outcome
        return outcomes


def _confirmed(replies: list[Outcome], wait_reply: Any, acks: Acks) -> list[Outcome]:
    """``replies``, with each success turned into ``ReplicaAckError`` when WAIT fell short."""
    if isinstance(wait_reply, int) and wait_reply >= acks.replicas:
        return replies
    if isinstance(wait_reply, int):
        why = f"{wait_reply} replica(s) confirmed within {acks.timeout_ms} ms"
    else:  # no WAIT sent (cluster slot map did not name the owner) or WAIT itself failed
        why = "no replica confirmation (WAIT not answered)"
    error = ReplicaAckError(f"REDIS_MIN_REPLICA_ACKS={acks.replicas}: {why}; the writes count as not applied")
    return [r if isinstance(r, Exception) else error for r in replies]


def _load(client: Any, script: Script) -> None:
    if not isinstance(client, RedisCluster):
        script.sha = client.script_load(script.script)
        return
    # Every primary, one by one: a MOVED/ASK target needs the script too, and a
    # master that is down (it cannot run the script anyway) must not stop the others.
    errors: list[RedisError] = []
    for primary in client.get_primaries():
        try:
            client.get_redis_connection(primary).script_load(script.script)
        except RedisError as err:
            errors.append(err)
    if len(errors) == len(client.get_primaries()):
        raise errors[0]


def _reconnect(client: Any) -> None:
    if isinstance(client, RedisCluster):
        client.nodes_manager.initialize()  # re-read the slot map
    else:
        client.connection_pool.disconnect()  # next connection re-resolves the endpoint
