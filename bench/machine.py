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
    }
