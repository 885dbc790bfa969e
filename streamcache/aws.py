"""boto3 clients, imported lazily and made once per execution environment.

The invalidator never imports this module's boto3 unless a table is missing
from KEY_SCHEMA or an AUTH secret must be read; import cost matters there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from streamcache.errors import ConfigError


@lru_cache(maxsize=8)
def client(service: str, endpoint_url: str | None = None) -> Any:
    import boto3  # lazy: ~170 ms of cold start
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    try:
        return boto3.client(service, endpoint_url=endpoint_url, config=config)
    except NoRegionError as err:
        raise ConfigError(
            f"no AWS region for the {service} client: set AWS_REGION or AWS_DEFAULT_REGION "
            "(Lambda sets AWS_REGION itself)"
        ) from err
