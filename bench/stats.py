"""A fixed-bucket latency histogram: cheap to add to at a million samples a second, exact to 0.1 ms.

Each generator process keeps its own; the orchestrator merges their bucket counts, so quantiles are
over every sample of a step, whichever process took it.
"""

from __future__ import annotations

from collections.abc import Iterable

RESOLUTION = 1e-4  # seconds per bucket
BUCKETS = 100_000  # up to 10 s; slower lands in the last bucket


class Histogram:
    """Latencies in seconds in, quantiles in milliseconds out."""

    def __init__(self) -> None:
        self.buckets = [0] * (BUCKETS + 1)
        self.total = 0

    def add(self, seconds: float, weight: int = 1) -> None:
        index = int(seconds / RESOLUTION)
        self.buckets[index if 0 <= index < BUCKETS else (0 if index < 0 else BUCKETS)] += weight
        self.total += weight

    def counts(self) -> dict[int, int]:
        """The non-empty buckets, small enough to send between processes."""
        return {index: count for index, count in enumerate(self.buckets) if count}

    @classmethod
    def merged(cls, parts: Iterable[dict[str | int, int]]) -> Histogram:
        """One histogram from the `counts()` of several (their keys may have become strings in JSON)."""
        merged = cls()
        for part in parts:
            for index, count in part.items():
                merged.buckets[int(index)] += count
                merged.total += count
        return merged

    def quantile(self, q: float) -> float:
        """The q-quantile in ms (0.0 when empty; callers show the sample count beside it)."""
        if not self.total:
            return 0.0
        rank, seen = q * self.total, 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= rank and count:
                return (index + 0.5) * RESOLUTION * 1000
        return BUCKETS * RESOLUTION * 1000
