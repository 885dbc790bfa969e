"""streamcache: DynamoDB-stream-driven Redis cache invalidation, and reads through the cache.

Read the cache from any Python code::

    import boto3, streamcache

    orders = streamcache.CachedTable(boto3.resource("dynamodb").Table("orders"))
    orders.get_item(Key={"pk": "u1", "sk": 42})       # {"Item": {...}} or {}
    orders.get_items([{"pk": "u1", "sk": 42}, ...])   # [item or None, ...] in order

``CachedTable`` and ``Cache`` load on first use, so ``import streamcache``
stays cheap (the invalidator imports this package and never loads boto3).
Modules are named for the step they perform:

- ``settings``  environment -> frozen ``Settings`` (read once at init)
- ``numbers``   DynamoDB number canonicalisation (exact, 38 digits)
- ``keys``      the one cache-key function
- ``schema``    which key attribute is hash / range (KEY_SCHEMA or DescribeTable)
- ``entry``     the cache entry format stored in Redis
- ``records``   stream record -> cache command (pure)
- ``batch``     a batch of records -> deduplicated plan + batch response (pure)
- ``protocol``  the Lua scripts and the Redis calls that run them (I/O)
- ``connection`` one Redis client per execution environment
- ``read/``     the read side: ``Cache``, ``CachedTable``, cache-aside with leases
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Cache", "CachedTable", "__version__"]

if TYPE_CHECKING:
    from streamcache.read.cache import Cache as Cache
    from streamcache.read.table import CachedTable as CachedTable

_LAZY = {"Cache": "streamcache.read.cache", "CachedTable": "streamcache.read.table"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamcache' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
