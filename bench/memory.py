"""Peak RSS handling a ~6 MB batch (Lambda's payload limit), next to the idle interpreter.

A fresh interpreter (``python -c``) imports the handler and reads its RSS high-water mark,
then parses the event JSON (as Lambda's runtime does) and handles it; the
difference is what one maximal batch costs on top of the loaded code.
The peak is the process's VmHWM (Linux); ``ru_maxrss`` is the fallback
elsewhere, but on Linux it carries the parent's peak across fork/exec.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench.coldstart import python
from bench.rig import Rig
from bench.workload import event_of_bytes

PAYLOAD_BYTES = 6_000_000  # just under Lambda's 6 MB (6,291,456 bytes) invocation payload

_CHILD = """
import json, resource, sys
def peak_mb():
    # VmHWM: the high-water mark of this process image. ru_maxrss would also count the
    # parent's RSS, inherited through fork/exec (Linux keeps the old mm's peak across exec).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
bare = peak_mb()
usage_maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import invalidator.handler as h
h.runtime()
imported = peak_mb()
with open(sys.argv[1], "rb") as f:
    data = f.read()
event = json.loads(data)
response = h.handler(event, None)
sys.stderr.write(json.dumps({"bare_interpreter_mb": bare, "handler_imported_mb": imported,
    "peak_after_batch_mb": peak_mb(), "ru_maxrss_at_start_mb": usage_maxrss_mb,
    "records": len(event["Records"]), "failures": len(response["batchItemFailures"])}))
"""


def run(rig: Rig) -> dict[str, Any]:
    data = event_of_bytes(rig.workload, PAYLOAD_BYTES)
    with tempfile.TemporaryDirectory(prefix="streamcache-bench-") as folder:
        path = Path(folder) / "event.json"
        path.write_bytes(data)
        done = python(["-c", _CHILD, str(path)], env=rig.env())
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    result: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    result["event_bytes"] = len(data)
    result["batch_cost_mb"] = result["peak_after_batch_mb"] - result["handler_imported_mb"]
    return result
