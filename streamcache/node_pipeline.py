"""One node's share of a chunk of ``apply.lua`` calls, pipelined, with everything that can go wrong.

``apply_commands`` (protocol.py) splits a batch into chunks and each chunk by
owning node; a ``NodeGroup`` sends one such group and turns what comes back
into one outcome per command: READONLY (a failover demoted the node) and
NOSCRIPT (first use, restart, SCRIPT FLUSH) are retried once; on a cluster
with replica acks the group goes over the master's own connection, so MOVED
and ASK are followed here; with ``Acks.replicas`` > 0 the pipeline ends with
``WAIT`` and a shortfall turns every success into ``ReplicaAckError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, NoScriptError, ReadOnlyError, RedisError

from streamcache.errors import ReplicaAckError
from streamcache.records import Command

Outcome = int | Exception


@dataclass(frozen=True)
class Acks:
    """How many replicas must confirm each pipeline's writes (0: no WAIT), and for how long."""

    replicas: int = 0
    timeout_ms: int = 100


@dataclass
class NodeGroup:
    """The commands of one chunk that one node owns."""

    client: Any
    script: Script
    commands: Sequence[Command]
    ttl: int
    acks: Acks = Acks()
    node_name: str = ""  # cluster: the owning master ("" when the slot map did not say)
    fill_margin_ms: int = 1000  # apply.lua's ARGV[6], see settings.FILL_CLOCK_MARGIN_MS

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
            argv = (c.kind, c.version, c.payload, self.ttl, c.created_ms, self.fill_margin_ms)
            pipe.execute_command("EVALSHA", self.script.sha, 1, c.key, *argv)
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
