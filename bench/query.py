"""The query cache: a cached page next to the bare calls, and what its markers cost the invalidator.

- a cached ``CachedTable.query`` of 10 and 100 items vs a raw Redis GET of the
  same page's bytes + decode into boto3's types, and vs the same ``Query`` on
  the local DynamoDB (moto in process);
- ``Invalidator.process`` with the table in QUERY_CACHE_TABLES (partition
  markers for the base table and one GSI, in the same pipelines) vs without,
  at 1,000 and 10,000 records (target: at most 1.5x slower).

Run alone with ``python -m bench.query [--quick]``.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.reader import _paired
from bench.rig import Rig, run_alone, timed
from bench.table import render, times
from bench.workload import TABLE, Workload

SIZES = (1000, 10000)
PAGE_ITEMS = (10, 100)
TARGET_SLOWDOWN = 1.5
DESCRIPTION = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "status", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "byStatus",
            "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


def run(rig: Rig) -> dict[str, Any]:
    return {"pages": _pages(rig), "invalidator": _invalidator(rig)}


def _pages(rig: Rig) -> dict[str, Any]:
    import boto3
    from boto3.dynamodb.conditions import Key
    from moto import mock_aws

    from streamcache.local.embedded import FAKE_AWS_ENV, patched_environ
    from streamcache.read.cache import Cache
    from streamcache.read.query import decode_page
    from streamcache.read.table import CachedTable
    from streamcache.settings import Settings

    calls = 200 if rig.quick else 2000
    results: dict[str, Any] = {}
    with patched_environ(FAKE_AWS_ENV), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="pages",
            KeySchema=DESCRIPTION["KeySchema"],
            AttributeDefinitions=DESCRIPTION["AttributeDefinitions"][:2],
            BillingMode="PAY_PER_REQUEST",
        )
        table = boto3.resource("dynamodb", region_name="us-east-1").Table("pages")
        settings = Settings.from_env({"REDIS_URL": rig.redis_url, "QUERY_CACHE_TABLES": "pages"})
        cached = CachedTable(table, cache=Cache(settings=settings))
        redis = rig.client()
        for n in PAGE_ITEMS:
            pk = f"p{n}"
            with table.batch_writer() as writer:
                for sk in range(n):
                    writer.put_item(Item={"pk": pk, "sk": sk, "status": "open", "note": "x" * 200})
            kwargs = {"KeyConditionExpression": Key("pk").eq(pk)}
            cached.query(**kwargs)  # fill
            page_key = next(k for k in redis.scan_iter(match=f"*p{n}*:*"))

            def raw(key: bytes = page_key) -> Any:
                return decode_page(redis.get(key).partition(b"|")[2])

            results[f"{n} items"] = {
                "vs raw GET+decode": _paired(lambda k=kwargs: cached.query(**k), raw, calls),
                "vs DynamoDB query": _paired(
                    lambda k=kwargs: cached.query(**k), lambda k=kwargs: table.query(**k), calls // 10
                ),
            }
        assert cached.query_counters.hits > 0
    return results


def _invalidator(rig: Rig) -> dict[str, Any]:
    from invalidator.processor import Invalidator
    from streamcache.layouts import Layouts
    from streamcache.schema import KeySchemas
    from streamcache.settings import Settings

    workload = Workload()
    client = rig.client()
    schemas = KeySchemas({TABLE: ("pk", "sk")}, None)
    results: dict[str, Any] = {}
    for size in SIZES:
        on_settings = Settings.from_env({**rig.env(), "QUERY_CACHE_TABLES": TABLE})
        off = Invalidator(Settings.from_env(rig.env()), client, schemas)
        on = Invalidator(
            on_settings,
            client,
            schemas,
            layouts=Layouts(on_settings.query_cache_tables, lambda _t: DESCRIPTION),
        )
        rounds = 3 if rig.quick or size >= 10000 else 7
        batches = [workload.records(size) for _ in range(rounds)]
        off_s, on_s = [], []
        for batch in batches:  # alternate, on the same records (restamped: every write applies)
            rig.flush()
            off_s.append(timed(lambda b=batch, f=off: f.process(workload.restamp(b))))
            rig.flush()
            on_s.append(timed(lambda b=batch, f=on: f.process(workload.restamp(b))))
        markers = on.process(workload.restamp(batches[0])).counts["markers"]
        results[str(size)] = {
            "off_records_per_s": stats.rate(size, stats.median(off_s)),
            "on_records_per_s": stats.rate(size, stats.median(on_s)),
            "slowdown": stats.ratio(stats.median(on_s), stats.median(off_s)),
            "markers_per_batch": markers,
        }
    return results


def show(result: dict[str, Any]) -> str:
    page_rows = [
        [size, name, r["p50_us"], r["baseline_p50_us"], times(r["ratio_p50"])]
        for size, pair in result["pages"].items()
        for name, r in pair.items()
    ]
    inv_rows = [
        [
            size,
            round(r["off_records_per_s"]),
            round(r["on_records_per_s"]),
            times(r["slowdown"]),
            f"<= {TARGET_SLOWDOWN}x",
            r["markers_per_batch"],
        ]
        for size, r in result["invalidator"].items()
    ]
    return "\n".join(
        [
            render(
                ["page", "cached query vs", "p50 us", "base p50 us", "ratio"],
                page_rows,
                "Cached query pages (same run)",
            ),
            render(
                ["records", "off rec/s", "on rec/s", "slowdown", "target", "markers moved"],
                inv_rows,
                "Invalidator with the query cache on vs off (same batches)",
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return run_alone("python -m bench.query", __doc__, run, show, argv)


if __name__ == "__main__":
    raise SystemExit(main())
