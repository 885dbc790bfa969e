"""The benchmark's parsers and workload shapes: redis-benchmark, -X importtime, cpuinfo."""

from __future__ import annotations

import orjson
import pytest

from bench import coldstart, machine, throughput, workload
from streamcache.batch import records_of

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      2000 |      78000 | redis
import time:       300 |      31000 |   aws_lambda_powertools.metrics
import time:      5000 |      31500 | aws_lambda_powertools
import time:       900 |     132191 | invalidator.handler
"""


def test_importtime_total_is_the_cumulative_of_the_last_line() -> None:
    assert coldstart.importtime_total_us(IMPORTTIME) == 132191


def test_importtime_without_lines_is_an_error() -> None:
    with pytest.raises(ValueError, match="importtime"):
        coldstart.importtime_total_us("Traceback ...")


def test_heaviest_packages_are_top_level_only() -> None:
    assert coldstart.heaviest_packages(IMPORTTIME, 2) == [("redis", 78.0), ("aws_lambda_powertools", 31.5)]


def test_redis_benchmark_figure_is_the_last_set_line() -> None:
    output = "SET: 100000.00\rSET: 526315.81 requests per second, p50=1.2 msec\n"
    assert throughput.parse_redis_benchmark(output) == 526315.81
    assert throughput.parse_redis_benchmark("connection refused") is None


def test_cpu_model_reads_the_first_model_name() -> None:
    assert machine.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC\nmodel name\t: other\n") == "AMD EPYC"
    assert machine.cpu_model("") == "unknown"


def test_seed_key_joins_table_and_key_values_in_record_order() -> None:
    record = workload.Workload(keys=5).records(1)[0]
    index = int(record["dynamodb"]["Keys"]["sk"]["N"])
    assert throughput.seed_key(record) == f"orders-u{index % 97:03d}-{index}"


def test_items_are_about_one_kilobyte() -> None:
    assert len(orjson.dumps(workload.item(123, 4))) == workload.ITEM_BYTES


def test_workload_batches_are_valid_events_with_rising_sequence_numbers() -> None:
    load = workload.Workload(keys=10)
    template = load.records(50)
    first = [int(r["dynamodb"]["SequenceNumber"]) for r in records_of(load.restamp(template))]
    second = [int(r["dynamodb"]["SequenceNumber"]) for r in records_of(load.restamp(template))]
    assert first == sorted(first) and min(second) > max(first)
    assert {r["eventName"] for r in template} <= {"INSERT", "MODIFY", "REMOVE"}
    assert len({r["dynamodb"]["Keys"]["sk"]["N"] for r in template}) <= 10


def test_event_of_bytes_stays_just_under_the_target() -> None:
    data = workload.event_of_bytes(workload.Workload(), 200_000)
    assert 190_000 < len(data) <= 200_000
    assert records_of(orjson.loads(data))
