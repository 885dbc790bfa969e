"""Cold start: import time of each handler, first-call init time, and zipped package size.

Every figure comes from a fresh interpreter (a subprocess), as a new Lambda
execution environment would start; the import time is the cumulative figure
``python -X importtime`` prints for the handler module (its last line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import stats
from bench.rig import Rig

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("invalidator.handler", "reader.handler")

# Run in a fresh interpreter: time building the runtime and the first and second calls.
_INIT_INVALIDATOR = """
import json, sys, time
import invalidator.handler as h
from streamcache.local import events
keys = {"pk": {"S": "u1"}, "sk": {"N": "1"}}
def event(seq):
    return events.event([events.record("orders", "INSERT", keys, seq, new=events.item(keys))])
t0 = time.perf_counter(); h.runtime(); t1 = time.perf_counter()
h.handler(event(events.FIRST_SEQUENCE), None); t2 = time.perf_counter()
h.handler(event(events.FIRST_SEQUENCE + 1), None); t3 = time.perf_counter()
sys.stderr.write(json.dumps({"runtime_build_ms": (t1 - t0) * 1000,
    "first_call_ms": (t2 - t1) * 1000, "warm_call_ms": (t3 - t2) * 1000}))
"""


def importtime_total_us(stderr: str) -> int:
    """Cumulative microseconds from the last ``import time:`` line of ``-X importtime`` output."""
    lines = [line for line in stderr.splitlines() if line.startswith("import time:")]
    if not lines:
        raise ValueError("no 'import time:' line in the output (was -X importtime passed?)")
    fields = lines[-1].removeprefix("import time:").split("|")
    return int(fields[1].strip())


def heaviest_packages(stderr: str, count: int) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import ms (each counted where first imported)."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        name = fields[2].strip()
        if fields[1].strip().isdigit() and "." not in name:
            found[name] = max(found.get(name, 0.0), int(fields[1]) / 1000)
    return sorted(found.items(), key=lambda kv: kv[1], reverse=True)[:count]


def python(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=120,
        check=False,
    )


def import_ms(module: str, runs: int) -> dict[str, Any]:
    totals, stderr = [], ""
    for _ in range(runs):
        done = python(["-X", "importtime", "-c", f"import {module}"])
        if done.returncode != 0:
            return {"available": False, "error": done.stderr.strip().splitlines()[-1]}
        stderr = done.stderr
        totals.append(importtime_total_us(stderr) / 1000)
    return {
        "available": True,
        "median_ms": stats.median(totals),
        "runs_ms": totals,
        "heaviest_packages_ms": heaviest_packages(stderr, 6),
        "boto3_imported": boto3_loaded(module),
    }


def boto3_loaded(module: str) -> bool | None:
    done = python(["-c", f"import sys, {module}; print('boto3' in sys.modules)"])
    return None if done.returncode != 0 else done.stdout.strip() == "True"


def invalidator_init(rig: Rig) -> dict[str, Any]:
    done = python(["-c", _INIT_INVALIDATOR], env=rig.env())
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return dict(json.loads(done.stderr.strip().splitlines()[-1]))


def package_sizes(dist: Path = ROOT / "dist") -> dict[str, Any]:
    zips = sorted(dist.glob("*.zip"))
    if not zips:
        return {"available": False, "note": "run make package"}
    return {"available": True, "bytes": {z.stem: z.stat().st_size for z in zips}}


def run(rig: Rig, reader_init: dict[str, Any] | None = None) -> dict[str, Any]:
    runs = 3 if rig.quick else 5
    return {
        "import_ms": {module: import_ms(module, runs) for module in HANDLERS},
        "init": {"invalidator": invalidator_init(rig), "reader": reader_init},
        "package": package_sizes(),
    }
