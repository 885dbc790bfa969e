"""streamcache: DynamoDB-stream-driven Redis cache invalidation (shared core).

Both Lambda functions import this package; they never import each other.
Modules are named for the step they perform:

- ``settings``  environment -> frozen ``Settings`` (read once at init)
- ``numbers``   DynamoDB number canonicalisation (exact, 38 digits)
- ``keys``      the one cache-key function (CONTRACT section 1)
- ``schema``    which key attribute is hash / range (KEY_SCHEMA or DescribeTable)
- ``entry``     the cache entry format stored in Redis
- ``records``   stream record -> cache command (pure)
- ``batch``     a batch of records -> deduplicated plan + batch response (pure)
- ``protocol``  the Lua scripts and the Redis calls that run them (I/O)
- ``connection`` one Redis client per execution environment
"""

__version__ = "0.1.0"
