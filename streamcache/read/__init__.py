"""The read side: cache-aside over Redis with leases, used by the library and the reader alike.

- ``lookup``      the Redis calls of a read: GET, lease, wait, lease-checked fill (one key or many)
- ``dynamodb``    the DynamoDB side: consistent GetItem / BatchGetItem over a low-level client
- ``cacheaside``  Redis first, DynamoDB on a miss, fill under a lease; breaker; counters
- ``cache``       ``Cache``: one Redis connection, settings, breaker and counters
- ``values``      stream form <-> the Python values boto3's Table resource speaks
- ``table``       ``CachedTable``: a drop-in for boto3's Table resource (and its DynamoDB side)
- ``near``        the near cache: entries in process memory, kept coherent by ``tracking``
- ``tracking``    one CLIENT TRACKING connection per node: invalidation pushes, ordered confirmations

Only ``values`` and ``table`` import boto3; the reader never loads them.
"""
