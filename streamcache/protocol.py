"""The cache protocol's Redis side: Lua scripts, registered once, and the calls that run them.

Scripts live in ``streamcache/lua/*.lua`` (each with a header naming its KEYS
and ARGV) and are loaded by name. Every script touches exactly one key, so
the protocol works unchanged on a Redis cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError

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


def apply_commands(
    client: Any, script: Script, commands: Sequence[Command], ttl_seconds: int
) -> list[Outcome]:
    """Run ``apply.lua`` for every command, pipelined in chunks: one outcome per command.

    An outcome is APPLIED, SKIPPED, INVALIDATED, or the exception for that
    command. Commands are grouped by the node that owns their key (one group
    on a single node; one per master on a cluster, where MOVED/ASK are followed
    by redis-py). When a group cannot be sent (connection lost, timeout), its
    commands, and every later command for that node, get that error: what was
    not confirmed counts as not applied. The other nodes' commands go on.
    """
    outcomes: list[Outcome] = [SKIPPED] * len(commands)
    down: dict[str, RedisError] = {}  # node name -> why: later chunks do not wait on it again
    for start in range(0, len(commands), CHUNK_SIZE):
        chunk = range(start, min(start + CHUNK_SIZE, len(commands)))
        for name, indexes in _by_node(client, commands, chunk).items():
            group = _Group(client, script, [commands[i] for i in indexes], ttl_seconds)
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

    def run_unless_down(self, name: str, down: dict[str, RedisError]) -> list[Outcome]:
        """Outcomes, or this node's error for all when it failed earlier (remembered in ``down``)."""
        if name not in down:
            try:
                return self.run()
            except RedisError as err:
                down[name] = err
        return [down[name]] * len(self.commands)

    def run(self) -> list[Outcome]:
        outcomes = self._pipeline(self.commands)
        # READONLY: a failover demoted the node we reached; a new connection finds the new primary.
        self._redo(outcomes, ReadOnlyError, lambda: _reconnect(self.client))
        # NOSCRIPT: first use on this node, or after a restart / failover / SCRIPT FLUSH.
        self._redo(outcomes, NoScriptError, lambda: _load(self.client, self.script))
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

    def _pipeline(self, commands: Sequence[Command]) -> list[Outcome]:
        pipe = self.client.pipeline(transaction=False)
        for c in commands:
            # execute_command, not pipe.evalsha: ClusterPipeline refuses the named method.
            pipe.execute_command("EVALSHA", self.script.sha, 1, c.key, c.kind, c.version, c.payload, self.ttl)
        return list(pipe.execute(raise_on_error=False))


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
