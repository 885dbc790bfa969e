"""One node's share of a chunk of ``apply.lua`` calls, pipelined, with everything that can go wrong.

``apply_commands`` (protocol.py) splits a batch into chunks and each chunk by
owning node (``routing.by_node``: the slot is computed here, never asked of
the server); a ``NodeGroup`` sends one such group over that node's own
connection and turns what comes back into one outcome per command: READONLY
(a failover demoted the node) and NOSCRIPT (first use, restart, SCRIPT FLUSH)
are retried once; MOVED and ASK are followed here; with ``Acks.replicas`` > 0
the pipeline ends with ``WAIT`` and a shortfall turns every success into
``ReplicaAckError``. A group can be sent (``start_unless_down``) and read
(``finish_unless_down``) separately, so every node's group is on the wire
before any reply is awaited."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, NoScriptError, ReadOnlyError, RedisError, ResponseError
from redis.utils import HIREDIS_AVAILABLE

from streamcache import routing
from streamcache.errors import ReplicaAckError
from streamcache.held_connections import BORROWED, Connections, on_connection
from streamcache.records import Command

Outcome = int | Exception

if HIREDIS_AVAILABLE:
    from hiredis import pack_command as _pack


@dataclass(frozen=True)
class Acks:
    """How many replicas must confirm each pipeline's writes (0: no WAIT), and for how long."""

    replicas: int = 0
    timeout_ms: int = 100


@dataclass(frozen=True)
class Shape:
    """How a group's pipeline replies map back to its commands' outcomes."""

    acks: Acks
    waits: bool  # the last reply is WAIT's
    asking: bool  # every command was preceded by ASKING

    def outcomes(self, results: list[Any]) -> list[Outcome]:
        replies = results[:-1] if self.waits else results
        if self.asking:
            replies = replies[1::2]
        if self.acks.replicas == 0:
            return replies
        return _confirmed(replies, results[-1] if self.waits else None, self.acks)


@dataclass
class InFlight:
    """A group's commands, written on ``conn`` (from ``pool``), replies not read yet.

    ``pipe`` instead when the slot's owner was unknown: redis-py's ClusterPipeline
    routes those itself, and sends when read.
    """

    shape: Shape
    count: int  # replies to read
    pool: Any = None
    conn: Any = None
    pipe: Any = None
    connections: Connections = BORROWED

    def replies(self) -> list[Outcome]:
        if self.pipe is not None:
            return self.shape.outcomes(list(self.pipe.execute(raise_on_error=False)))
        try:
            results = _read(self.conn, self.count)
        except BaseException:
            self.connections.give(self.pool, self.conn, broken=True)
            raise
        self.connections.give(self.pool, self.conn)
        return self.shape.outcomes(results)


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
    connections: Connections = field(default=BORROWED)

    def start_unless_down(self, down: dict[str, RedisError]) -> InFlight | None:
        """Send this group (first half of ``run``); None when its node is down or the send failed.

        Sending every node's group before reading any reply is what makes a
        cluster batch cost one round trip to the slowest node, not the sum.
        """
        if self.node_name in down:
            return None
        try:
            return self._send(*self._queue(self.commands))
        except RedisError as err:
            down[self.node_name] = err
            return None

    def finish_unless_down(self, sent: InFlight | None, down: dict[str, RedisError]) -> list[Outcome]:
        """Read what ``start_unless_down`` sent, then what ``run`` does after its pipeline."""
        if sent is None:
            return [down[self.node_name]] * len(self.commands)
        return self.run_unless_down(self.node_name, down, sent)

    def run_unless_down(
        self, name: str, down: dict[str, RedisError], sent: InFlight | None = None
    ) -> list[Outcome]:
        """Outcomes, or this node's error for all when it failed earlier (remembered in ``down``).

        Replicas that did not confirm this group will not confirm the next one
        sooner: the node counts as down for the rest of the batch (no more waits).
        """
        if name not in down:
            try:
                outcomes = self.run(sent)
            except RedisError as err:
                down[name] = err
            else:
                unconfirmed = [o for o in outcomes if isinstance(o, ReplicaAckError)]
                if unconfirmed:
                    down[name] = unconfirmed[0]
                return outcomes
        return [down[name]] * len(self.commands)

    def run(self, sent: InFlight | None = None) -> list[Outcome]:
        outcomes = self._pipeline(self.commands) if sent is None else sent.replies()
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
        """On a cluster, sent on the owning master's own connection, not through ClusterPipeline.

        ClusterPipeline asks the server ``COMMAND GETKEYS`` for every EVALSHA
        (one hidden round trip each); the owner is known here (routing.by_node).
        And WAIT is keyless: only the connection that carried the writes can ask it.
        """
        return self._cluster and bool(self.node_name)

    def _pipeline(self, commands: Sequence[Command], node: Any = None, asking: bool = False) -> list[Outcome]:
        """Send and read at once, with the connection's own retry policy (none on a cluster node's)."""
        args, shape = self._queue(commands, node, asking)
        pool = self._pool(node)
        if pool is None:
            return _cluster_pipeline(self.client, args, shape).replies()
        replies = on_connection(pool, self.connections, lambda conn: write_and_read(conn, args))
        return shape.outcomes(replies)

    def _queue(
        self, commands: Sequence[Command], node: Any = None, asking: bool = False
    ) -> tuple[list[tuple[Any, ...]], Shape]:
        """The wire commands for ``commands`` (and WAIT when acks are asked)."""
        sha, ttl, margin = self.script.sha, self.ttl, self.fill_margin_ms
        args: list[tuple[Any, ...]] = []
        for c in commands:
            if asking:  # ASK: the target accepts the next command for a slot it is importing
                args.append(("ASKING",))
            args.append(apply_call(sha, c, ttl, margin))
        waits = self.acks.replicas > 0 and (node is not None or self._direct or not self._cluster)
        if waits:
            args.append(("WAIT", self.acks.replicas, self.acks.timeout_ms))
        return args, Shape(self.acks, waits, asking)

    def _send(self, args: list[tuple[Any, ...]], shape: Shape) -> InFlight:
        pool = self._pool(None)
        if pool is None:
            return _cluster_pipeline(self.client, args, shape)
        conn = self.connections.take(pool)
        try:
            _write(conn, args)
        except BaseException:
            self.connections.give(pool, conn, broken=True)
            raise
        return InFlight(shape, len(args), pool, conn, connections=self.connections)

    @property
    def _cluster(self) -> bool:
        return routing.is_cluster(self.client)

    def _pool(self, node: Any) -> Any:
        """The connection pool of ``node``, else of this group's node; None: let ClusterPipeline route."""
        if node is not None:
            return self.client.get_redis_connection(node).connection_pool
        return routing.node_pool(self.client, self.node_name if self._cluster else routing.SINGLE_NODE)

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


def apply_call(sha: str, c: Command, ttl: int, fill_margin_ms: int) -> tuple[Any, ...]:
    """The wire command that runs ``apply.lua`` (as ``sha``) for ``c``, KEYS and ARGV as its header says."""
    stored = c.kind + c.version.encode("ascii") + c.payload  # the entry, as apply.lua's ARGV[3]
    return ("EVALSHA", sha, 1, c.key, c.kind, c.version, stored, ttl, c.created_ms, fill_margin_ms)


def write_and_read(
    conn: Any, args: list[tuple[Any, ...]], meanwhile: Callable[[], object] | None = None
) -> list[Any]:
    """Send ``args`` in one write, then read one reply per command (see ``_write`` and ``_read``).

    ``meanwhile``: the caller's own work, run after the write and before the
    read, while Redis runs the commands. It runs again if the connection's
    retry sends them again, so it must be safe to repeat, and it must not
    raise (the connection would be closed with the replies unread).
    """
    _write(conn, args)
    if meanwhile is not None:
        meanwhile()
    return _read(conn, len(args))


def _write(conn: Any, args: list[tuple[Any, ...]]) -> None:
    """Send every command in one write.

    Not a redis-py pipeline's ``execute()``: that sends and reads at once, so
    the nodes of a cluster batch would be waited for one after another. With
    hiredis (what redis-py itself packs with when installed) each command is
    packed by hiredis directly: redis-py's per-command wrapper made packing a
    1,000-command chunk cost 8.3 ms instead of 2.6 ms (measured). Every
    argument here is a str, bytes or int, which is all the wrapper adds.
    """
    if HIREDIS_AVAILABLE:
        conn.send_packed_command([b"".join([_pack(command) for command in args])])
    else:
        conn.send_packed_command(conn.pack_commands(args))


def _read(conn: Any, count: int) -> list[Any]:
    """``count`` replies; a command's error reply is its outcome, as in ``execute(raise_on_error=False)``.

    (EVALSHA, ASKING and WAIT have no response callbacks in redis-py: the raw reply is the answer.)
    """
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(conn.read_response())
        except ResponseError as err:
            replies.append(err)
    return replies


def _cluster_pipeline(client: Any, args: list[tuple[Any, ...]], shape: Shape) -> InFlight:
    """Commands whose slot has no known owner (a failover in progress): ClusterPipeline resolves them."""
    pipe = client.pipeline(transaction=False)
    for command in args:
        pipe.execute_command(*command)  # not pipe.evalsha: ClusterPipeline refuses the named method
    return InFlight(shape, len(args), pipe=pipe)


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
    if not routing.is_cluster(client):
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
    if routing.is_cluster(client):
        client.nodes_manager.initialize()  # re-read the slot map
    else:
        client.connection_pool.disconnect()  # next connection re-resolves the endpoint
