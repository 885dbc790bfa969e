"""The read side: cache-aside over Redis with leases, used by the library and the reader alike.

- ``lookup``      the Redis calls of a read: GET, lease, wait, lease-checked fill
- ``dynamodb``    the DynamoDB side: consistent GetItem / BatchGetItem
- ``cacheaside``  Redis first, DynamoDB on a miss, fill under a lease; breaker
- ``cache``       ``Cache``: one Redis connection, settings, breaker and counters
- ``table``       ``CachedTable``: a drop-in for boto3's Table resource
"""
