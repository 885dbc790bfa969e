"""What the figures were measured on: CPU, cores, Python, redis-server, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of /proc/cpuinfo text, else "unknown"."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def redis_version(binary: str = "redis-server") -> str:
    path = shutil.which(binary)
    if path is None:
        return "not installed"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=10)
    return done.stdout.strip()


def describe() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    return {
        "cpu": cpu_model(cpuinfo.read_text()) if cpuinfo.exists() else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis_server": redis_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float] | None:
    """1/5/15-minute load: on a shared 2-core machine it says how much to trust the figures."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
