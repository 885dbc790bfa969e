"""With tracing on, the reader's ports are traced subclasses that still read, lease and fill in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
import pytest

from reader import tracing
from streamcache.read.lookup import Lease


class RecordingTracer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def capture_method(self, capture_response: bool) -> Callable[[Any], Any]:
        assert capture_response is False  # responses hold item contents

        def wrap(method: Any) -> Any:
            def traced(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(method.__name__)
                return method(*args, **kwargs)

            return traced

        return wrap


@pytest.fixture
def tracer(monkeypatch: pytest.MonkeyPatch) -> RecordingTracer:
    recording = RecordingTracer()
    monkeypatch.setattr(tracing, "TRACING", True)
    monkeypatch.setattr(tracing, "tracer", lambda: recording)
    return recording


def test_traced_cache_port_keeps_batches(tracer: RecordingTracer) -> None:
    cache = tracing.cache_port(fakeredis.FakeRedis())
    assert cache.get_many(["a", "b"]) == [None, None]
    claims = cache.lease_many(["a", "b"])
    assert all(isinstance(c, Lease) for c in claims)
    assert cache.fill_many([("a", claims[0], b"", 60), ("b", claims[1], b"", 60)]) == [True, True]
    assert tracer.calls == ["get_many", "lease_many", "fill_many"]


def test_traced_table_port_keeps_batches(tracer: RecordingTracer) -> None:
    class Client:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            return {"Responses": {"t": [{"pk": {"S": "a"}}]}}

    table = tracing.table_port(Client())
    assert table.get_many("t", [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]) == [{"pk": {"S": "a"}}, None]
    assert tracer.calls == ["get_many"]
