"""The reader Lambda: cache-aside lookups that never fill a stale item."""
