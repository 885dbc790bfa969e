"""Staleness through the local loop: stream lag and invalidation delay (placeholder)."""

from __future__ import annotations

from typing import Any

from bench.rig import Rig


def run(rig: Rig) -> dict[str, Any]:
    return {"available": False, "note": "local loop not available"}
