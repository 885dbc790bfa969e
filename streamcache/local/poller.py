"""Lambda's poller for a live pipeline, and the lag figures it yields.

``poll_while_writing`` runs the emulated event source mapping while writes
are still happening (as Lambda does: 4 polls a second), so stream lag is that
of a running pipeline rather than of a backlog; ``FoldedProgress`` keeps its
progress readable; the two measurement helpers turn deliveries into stream lag
and invalidation delay.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence

from streamcache.local import esm

Say = Callable[[str], None]
Key = tuple[str, int]


def poll_while_writing(mapping: esm.EventSourceMapping, writes_done: threading.Event) -> esm.Stats:
    """Lambda's poller: read the stream to its end every ``poll_interval_s``, until caught up.

    Caught up means a poll that began after the last write found nothing new
    (checking ``writes_done`` before the poll is what makes that sound), and
    every open shard has given several empty pages in a row (``mapping.caught_up``):
    one empty GetRecords page does not prove the shard has nothing more.
    """
    timing = mapping.timing
    while True:
        started = timing.clock()
        writing_over = writes_done.is_set()
        if not mapping.poll_once() and writing_over and mapping.caught_up():
            return mapping.stats
        timing.sleep(max(0.0, timing.poll_interval_s - (timing.clock() - started)))


class FoldedProgress:
    """The mapping's progress lines, with ``delivered`` lines folded into one per ``every_s``.

    Polling while writing gives a small batch every few milliseconds; a line
    for each would bury the fault handling. Any other line (bisect, retry,
    discard) first flushes what was delivered before it, so the order holds.
    """

    def __init__(self, say: Say, every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._say, self._every_s, self._clock = say, every_s, clock
        self._lock = threading.Lock()  # the mapping's thread folds, the main thread may flush
        self._records = self._invocations = 0
        self._first = self._last = ""
        self._since = clock()

    def __call__(self, line: str) -> None:
        parts = line.split()  # "delivered N record(s) FIRST..LAST"
        with self._lock:
            if len(parts) != 4 or parts[0] != "delivered" or not parts[1].isdigit() or ".." not in parts[3]:
                self._flush()
                self._say(f"      {line}")
                return
            first, last = parts[3].split("..", 1)
            self._records += int(parts[1])
            self._invocations += 1
            self._first, self._last = self._first or first, last
            if self._clock() - self._since >= self._every_s:
                self._flush()

    def say(self, line: str) -> None:
        """A line of the demo's own, printed after anything delivered before it."""
        with self._lock:
            self._flush()
            self._say(line)

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._invocations:
            self._say(
                f"      delivered {self._records} record(s) in {self._invocations} invocation(s) "
                f"{self._first}..{self._last}"
            )
        self._records = self._invocations = 0
        self._first = self._last = ""
        self._since = self._clock()


def invalidation_delays_ms(
    writes: Sequence[tuple[Key, float]], stream: Sequence[tuple[str, Key]], applied: Mapping[str, float]
) -> list[float]:
    """Per applied record: its batch's success time minus the time its write call returned.

    ``stream`` is (sequence number, key) in stream order. With one writer and
    one shard, a key's n-th stream record is that key's n-th write.
    """
    returned: dict[Key, deque[float]] = defaultdict(deque)
    for key, at in writes:
        returned[key].append(at)
    delays = []
    for sequence_number, key in stream:
        written = returned[key].popleft() if returned[key] else None
        if written is not None and sequence_number in applied:
            # Never negative: the record can be applied before the writer has parsed moto's reply.
            delays.append(max(0.0, (applied[sequence_number] - written) * 1000.0))
    return delays


def creation_resolution(deliveries: Sequence[esm.Delivery]) -> str:
    """How precise ApproximateCreationDateTime was: AWS rounds it down to the second."""
    created = [d.created_s for d in deliveries if d.created_s is not None]
    if not created:
        return "no ApproximateCreationDateTime"
    if all(c == int(c) for c in created):
        return "ApproximateCreationDateTime in whole seconds: up to 1 s high"
    return "ApproximateCreationDateTime to the ms"
