"""Lambda entry point: ``checker.handler.handler``, run by an EventBridge schedule.

Thin adapter: build the runtime once per execution environment, run one
check of the due consistency samples (``streamcache.ops.checker``), publish
metrics and logs. Metrics: ``ConsistencyChecked`` / ``Inconsistent`` at the
last delay (the alarmed figure: "wrong"), ``ConsistencyCheckedEarly`` /
``InconsistentEarly`` at the earlier delays ("slow"), ``ConsistencyRepaired``.
Logs name each inconsistent key with the versions, never item contents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.errors import ConfigError
from streamcache.logs import powertools_logger
from streamcache.ops.checker import Checker, RepairOptions, Report
from streamcache.ops.sampling import SamplingConfig
from streamcache.ops.verdict import nines_text
from streamcache.settings import Settings

CONSISTENCY_REPAIR = "CONSISTENCY_REPAIR"

logger = powertools_logger("streamcache-checker")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "streamcache"))

_checker: Checker | None = None


def repair_enabled(env: Mapping[str, str]) -> bool:
    raw = env.get(CONSISTENCY_REPAIR, "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ConfigError(f"{CONSISTENCY_REPAIR}={raw!r} is not true or false")
    return raw in ("true", "1", "yes")


def build(settings: Settings, env: Mapping[str, str]) -> Checker:
    client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    repair = None
    if repair_enabled(env):
        repair = RepairOptions(settings.cache_ttl_seconds, settings.apply_options)
    return Checker(client, SamplingConfig.from_env(env), repair)


def runtime() -> Checker:
    global _checker
    if _checker is None:
        _checker = build(Settings.from_env(), os.environ)
    return _checker


def reset() -> None:
    global _checker
    _checker = None


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = runtime().run()
    _publish(report)
    return {
        "checked": report.final_checked,
        "inconsistent": report.final_inconsistent,
        "checked_early": report.early_checked,
        "inconsistent_early": report.early_inconsistent,
        "repaired": report.repaired,
    }


def _publish(report: Report) -> None:
    for name, value in (
        ("ConsistencyChecked", report.final_checked),
        ("Inconsistent", report.final_inconsistent),
        ("ConsistencyCheckedEarly", report.early_checked),
        ("InconsistentEarly", report.early_inconsistent),
        ("ConsistencyRepaired", report.repaired),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    last = report.delays_s[-1]
    for finding in report.findings:
        fields = {
            "cache_key": finding.sample.key,
            "record_version": finding.sample.version.lstrip("0") or "0",
            "held": finding.verdict.held,
            "after_s": finding.delay_s,
        }
        if finding.delay_s == last:
            logger.warning("inconsistent key", extra=fields)
        else:
            logger.info("key behind at an early check", extra=fields)
    logger.info(
        "consistency checked",
        extra={
            "checked": report.final_checked,
            "inconsistent": report.final_inconsistent,
            "nines": nines_text(report.final_checked, report.final_inconsistent),
            "checked_early": report.early_checked,
            "inconsistent_early": report.early_inconsistent,
            "repaired": report.repaired,
        },
    )
