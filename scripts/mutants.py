"""A short mutation check: do the tests catch one-line mistakes a tired engineer could make?

``make mutants`` (or ``python scripts/mutants.py [NAME ...]``) copies the work
tree's files (``git ls-files``, committed or not) into a temporary directory,
then for each mutant below changes one line there, runs the smallest test set
that should notice, and puts the line back. The work tree is never written.

A mutant is *caught* when its tests fail, *survived* when they pass. A mutant
whose original line is no longer in the file exactly once is *stale*: the code
moved, so the list needs updating (it is reported, never silently skipped).
Exit status: 0 when every mutant was caught, 1 otherwise. Not part of
``make test``: it runs the listed tests once per mutant (minutes, not seconds).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # per mutant; a hang counts as caught only if the tests say so (it is reported)


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    line: str  # the original text, found exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # pytest arguments: files or node ids


M = Mutant
MUTANTS = (
    # -- the four survivors of the hand-run mutation test (issue 21)
    M("reader drops ConsistentRead", "streamcache/read/dynamodb.py",
      "get_item(TableName=table, Key=key_to_boto3(key), ConsistentRead=True)",
      "get_item(TableName=table, Key=key_to_boto3(key))", ("tests/functional/test_reader_guards.py",)),
    M("batch read drops ConsistentRead", "streamcache/read/dynamodb.py",
      '{table: {"Keys": keys, "ConsistentRead": True}}', '{table: {"Keys": keys}}',
      ("tests/functional/test_reader_guards.py",)),
    M("library fill read drops ConsistentRead", "streamcache/read/table.py",
      'self.table.get_item(Key=item_to_python(key), ConsistentRead=True).get("Item")',
      'self.table.get_item(Key=item_to_python(key)).get("Item")',
      ("tests/functional/test_reader_guards.py",)),
    M("second bisected half resets retries", "streamcache/local/esm.py",
      "Attempt(rest[middle:], attempt.retries, attempt.invocations)",
      "Attempt(rest[middle:], 0, attempt.invocations)", ("tests/functional/test_esm.py",)),
    M("first bisected half resets retries", "streamcache/local/esm.py",
      "Attempt(rest[:middle], attempt.retries, attempt.invocations)",
      "Attempt(rest[:middle], 0, attempt.invocations)", ("tests/functional/test_esm.py",)),
    M("empty allow-list allows all", "reader/request.py", "    if table not in allowed:",
      "    if allowed and table not in allowed:",
      ("tests/unit/test_reader_request.py", "tests/functional/test_reader_guards.py")),
    M("redrive acks failed writes", "streamcache/redrive.py",
      "        if isinstance(outcome, Exception):", "        if False:  # a failed write goes unreported",
      ("tests/functional/test_redrive.py",)),
    # -- Lua scripts
    M("apply compares versions as doubles", "streamcache/lua/apply.lua",
      "  if ARGV[2] <= string.sub(head, 2, 41) then",
      "  if tonumber(ARGV[2]) <= tonumber(string.sub(head, 2, 41)) then",
      ("tests/consistency/test_regressions.py",)),
    M("apply lets older records overwrite", "streamcache/lua/apply.lua",
      "  if ARGV[2] <= string.sub(head, 2, 41) then", "  if false then",
      ("tests/consistency/test_regressions.py",)),
    M("apply margin sign flipped", "streamcache/lua/apply.lua",
      "    if created_ms <= fill_ms + tonumber(ARGV[6]) then",
      "    if created_ms <= fill_ms - tonumber(ARGV[6]) then", ("tests/consistency/test_regressions.py",)),
    M("apply ignores fill mode", "streamcache/lua/apply.lua",
      "    if created_ms <= fill_ms + tonumber(ARGV[6]) then", "    if false then",
      ("tests/consistency/test_regressions.py",)),
    M("fill ignores a lost lease", "streamcache/lua/fill.lua", "if current ~= lease then", "if false then",
      ("tests/unit/test_reader_lookup.py", "tests/consistency/test_regressions.py")),
    M("lease taken over an answer", "streamcache/lua/lease.lua",
      '  if string.sub(current, 1, 1) ~= "X" then', "  if false then",
      ("tests/unit/test_reader_lookup.py",)),
    # -- keys and numbers
    M("keys skip the % escape", "streamcache/keys.py",
      '    return text.replace("%", "%25").replace("-", "%2D")', '    return text.replace("-", "%2D")',
      ("tests/unit/test_keys.py",)),
    M("keys escape in the wrong order", "streamcache/keys.py",
      '    return text.replace("%", "%25").replace("-", "%2D")',
      '    return text.replace("-", "%2D").replace("%", "%25")', ("tests/unit/test_keys.py",)),
    M("numbers keep trailing zeros", "streamcache/numbers.py",
      '    return format(value.normalize(_EXACT), "f")', '    return format(value, "f")',
      ("tests/unit/test_keys.py",)),
    # -- batch and records
    M("batch reports only the first failure", "streamcache/batch.py",
      "    failed = [] if first_failed is None else sequence_numbers[first_failed:]",
      "    failed = [] if first_failed is None else sequence_numbers[first_failed : first_failed + 1]",
      ("tests/unit/test_batch.py",)),
    M("batch keeps the older record of a key", "streamcache/batch.py",
      "        if key not in newest or version >= newest[key][0]:",
      "        if key not in newest or version <= newest[key][0]:", ("tests/unit/test_batch.py",)),
    M("a delete serves the old image", "streamcache/records.py",
      '        return entry.TOMBSTONE, b"", _remove_reason(record)',
      '        return _image_effect(record["dynamodb"].get("OldImage"))',
      ("tests/unit/test_records.py",)),
    M("records stamped 5 s late", "streamcache/records.py", "    ms = math.floor(seconds * 1000)",
      "    ms = math.floor(seconds * 1000) + 5000", ("tests/consistency/test_regressions.py",)),
    M("an invalidation answers reads", "streamcache/entry.py",
      "        return self.kind in (ITEM, TOMBSTONE, FILL)",
      "        return self.kind in (ITEM, TOMBSTONE, FILL, INVALIDATED)",
      ("tests/unit/test_entry.py", "tests/unit/test_reader_lookup.py")),
    M("one-record path skips the consistency sample", "invalidator/processor.py",
      "outcomes)\n        if applied and outcome == APPLIED:",
      "outcomes) if False else None\n        if applied and outcome == APPLIED:",
      ("tests/functional/test_one_record_path.py",)),
    M("one-record path answers 'applied' whatever Redis said", "invalidator/processor.py",
      "        if applied and outcome == APPLIED:", "        if applied:",
      ("tests/functional/test_one_record_path.py",)),
    M("the caller's work never runs during a one-record write", "streamcache/node_pipeline.py",
      "    if meanwhile is not None:\n        meanwhile()", "    if meanwhile is not None:\n        pass",
      ("tests/functional/test_one_record_path.py",)),
    M("a prepared log line written whatever its fields' types", "streamcache/logs.py",
      "        and tuple(map(type, fields.values())) == written.types", "        and True",
      ("tests/unit/test_logs.py",)),
    M("one-record path retries an unreachable Redis on the general path", "streamcache/protocol.py",
      "        return err\n    except RedisError:\n        return None",
      "        return None\n    except RedisError:\n        return None",
      ("tests/functional/test_one_record_path.py",)),
    # -- reader
    M("another reader's lease taken as ours", "streamcache/read/lookup.py",
      "Lease(raw) if found.kind == entry.LEASE and found.payload == mine else found",
      "Lease(raw) if found.kind == entry.LEASE else found", ("tests/unit/test_reader_lookup.py",)),
    M("rejected fills not reported", "streamcache/read/cacheaside.py",
      "        result.fill_rejected = not result.filled", "        result.fill_rejected = False",
      ("tests/unit/test_reader_cacheaside.py", "tests/consistency/test_regressions.py")),
    M("breaker opens one failure late", "streamcache/circuit.py",
      "            if self._state == HALF_OPEN or self._failures >= self.threshold:",
      "            if self._state == HALF_OPEN or self._failures > self.threshold:",
      ("tests/unit/test_circuit.py",)),
    # -- connection
    M("cluster nodes without credential re-reads", "streamcache/connection.py",
      "connection_pool_class=ReauthPool, **options)", "**options)",
      ("tests/unit/test_connection.py",
       "tests/functional/test_cluster.py::"
       "test_cluster_setting_gives_a_cluster_client_whose_every_node_re_reads_credentials")),
    M("reader retries a timed-out Redis", "streamcache/connection.py",
      "READER_TIMEOUTS = Timeouts(connect_s=0.05, socket_s=0.05, retries=0)",
      "READER_TIMEOUTS = Timeouts(connect_s=0.05, socket_s=0.05, retries=1)",
      ("tests/functional/test_reader_resilience.py",)),
    M("redrive range misses its last record", "streamcache/redrive.py",
      '            if int(raw["dynamodb"]["SequenceNumber"]) > int(end):',
      '            if int(raw["dynamodb"]["SequenceNumber"]) >= int(end):',
      ("tests/functional/test_redrive.py",)),
    # -- settings, emulator, template
    M("TABLE_NAME added to ALLOWED_TABLES", "streamcache/settings.py",
      "    return names if names or not table_name else frozenset({table_name})",
      "    return names | {table_name} if table_name else names",
      ("tests/unit/test_settings.py", "tests/functional/test_reader_guards.py")),
    M("emulator retries once too often", "streamcache/local/esm.py",
      "        if limit != -1 and attempt.retries >= limit:",
      "        if limit != -1 and attempt.retries > limit:",
      ("tests/functional/test_esm.py",)),
    M("template without bisect", "infra/cloudformation.json", '"BisectBatchOnFunctionError": true,',
      '"BisectBatchOnFunctionError": false,', ("tests/infra/test_structure.py",)),
)  # fmt: skip


def scratch_copy(into: Path) -> None:
    """The work tree's files as they are now (tracked or new, not ignored), never .git or .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def run_tests(scratch: Path, tests: tuple[str, ...]) -> tuple[int, float, str]:
    """pytest's exit code, the seconds it took, and the end of what it printed."""
    started = time.monotonic()
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(args, cwd=scratch, capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - started, ""
    tail = "\n".join(done.stdout.decode(errors="replace").splitlines()[-15:])
    return done.returncode, time.monotonic() - started, tail


def try_mutant(scratch: Path, mutant: Mutant) -> str:
    path = scratch / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.line) != 1:
        return f"stale ({original.count(mutant.line)} matches of the original line)"
    path.write_text(original.replace(mutant.line, mutant.mutated), encoding="utf-8")
    try:
        code, seconds, _output = run_tests(scratch, mutant.tests)
    finally:
        path.write_text(original, encoding="utf-8")
    return f"{VERDICTS.get(code, f'error (pytest exit {code})')} in {seconds:.0f}s"


# pytest's exit codes: 1 tests failed, 2 interrupted (a collection error: the mutant broke an
# import); 4 (usage) and 5 (no tests collected) mean the list is wrong, not that a test caught it.
VERDICTS = {0: "SURVIVED", 1: "caught", 2: "caught (collection error)", -1: "timed out"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only mutants whose name contains one of these")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or any(n in m.name for n in args.names)]
    with tempfile.TemporaryDirectory(prefix="streamcache-mutants-") as tmp:
        scratch = Path(tmp)
        scratch_copy(scratch)
        # A sanity run first: the unmutated copy must pass the tests the mutants use.
        baseline = sorted({t for m in chosen for t in m.tests})
        code, seconds, output = run_tests(scratch, tuple(baseline))
        if code != 0:
            print(f"the unmutated copy fails its tests (pytest exit {code}): fix them first", file=sys.stderr)
            print(output, file=sys.stderr)  # which test, and why
            return 2
        print(f"baseline: {len(baseline)} test files pass unmutated ({seconds:.0f}s)")
        verdicts: dict[str, str] = {}
        for mutant in chosen:
            verdicts[mutant.name] = try_mutant(scratch, mutant)
            print(f"  {verdicts[mutant.name]:<28} {mutant.name} ({mutant.path})", flush=True)
    caught = sum(v.startswith("caught") for v in verdicts.values())
    print(f"mutants: {caught} of {len(verdicts)} caught; not caught: {len(verdicts) - caught}")
    for name, verdict in verdicts.items():
        if not verdict.startswith("caught"):
            print(f"  {verdict}: {name}")
    return 0 if caught == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
