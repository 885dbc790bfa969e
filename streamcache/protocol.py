"""The cache protocol's Redis side: Lua scripts, registered once, and the calls that run them.

Scripts live in ``streamcache/lua/*.lua`` (each with a header naming its KEYS
and ARGV) and are loaded by name. Every script touches exactly one key, so
the protocol works unchanged on a Redis cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError

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
    command. When a chunk cannot be sent (connection lost, timeout), it and every
    later chunk get that error: what was not confirmed counts as not applied.
    """
    outcomes: list[Outcome] = []
    for start in range(0, len(commands), CHUNK_SIZE):
        chunk = commands[start : start + CHUNK_SIZE]
        try:
            outcomes.extend(_run_chunk(client, script, chunk, ttl_seconds))
        except RedisError as err:
            outcomes.extend([err] * (len(commands) - start))
            break
    return outcomes


def _run_chunk(client: Any, script: Script, chunk: Sequence[Command], ttl: int) -> list[Outcome]:
    outcomes = _evalsha_pipeline(client, script, chunk, ttl)
    missing = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, NoScriptError)]
    if missing:  # first use on this server, or after a restart / failover / SCRIPT FLUSH
        script.sha = client.script_load(script.script)
        retried = _evalsha_pipeline(client, script, [chunk[i] for i in missing], ttl)
        for i, outcome in zip(missing, retried, strict=True):
            outcomes[i] = outcome
    return outcomes


def _evalsha_pipeline(client: Any, script: Script, chunk: Sequence[Command], ttl: int) -> list[Outcome]:
    pipe = client.pipeline(transaction=False)
    for c in chunk:
        pipe.evalsha(script.sha, 1, c.key, c.kind, c.version, c.payload, ttl)
    return list(pipe.execute(raise_on_error=False))
