"""Latency and rate trackers for node diagnostics, independent of ROS.

Both keep a fixed, preallocated window so recording a value is O(1) and allocates
nothing; statistics are computed only when a diagnostics message or a status line is
built (a few times per second at most). Thread-safe: one thread records, another reads.
"""

from __future__ import annotations

import math
import threading

import numpy as np


class WindowStats:
    """Median / p95 / max of the last ``window`` values (e.g. inference latencies)."""

    def __init__(self, window: int = 200) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._values = np.zeros(window, dtype=np.float64)
        self._count = 0
        self._next = 0
        self._lock = threading.Lock()
        self.total = 0
        self.last = math.nan

    def add(self, value: float) -> None:
        """Record one value."""
        with self._lock:
            self._values[self._next] = value
            self._next = (self._next + 1) % self._values.size
            self._count = min(self._count + 1, self._values.size)
            self.total += 1
            self.last = float(value)

    def clear(self) -> None:
        """Forget all values."""
        with self._lock:
            self._count = 0
            self._next = 0
            self.total = 0
            self.last = math.nan

    def __len__(self) -> int:
        return self._count

    def _window(self) -> np.ndarray:
        with self._lock:
            return self._values[: self._count].copy()

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the window; nan when empty."""
        data = self._window()
        return float(np.percentile(data, q)) if data.size else math.nan

    def median(self) -> float:
        """Median of the window; nan when empty."""
        return self.percentile(50.0)

    def p95(self) -> float:
        """95th percentile of the window; nan when empty."""
        return self.percentile(95.0)

    def max(self) -> float:
        """Largest value in the window; nan when empty."""
        data = self._window()
        return float(data.max()) if data.size else math.nan


class RateTracker:
    """Event rate over the last ``window_s`` seconds from the last ``capacity`` events."""

    def __init__(self, window_s: float = 2.0, capacity: int = 2048) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.window_s = float(window_s)
        self._times = np.full(capacity, -np.inf, dtype=np.float64)
        self._next = 0
        self._lock = threading.Lock()
        self.total = 0

    def add(self, t: float) -> None:
        """Record an event at time ``t`` (seconds, monotonic)."""
        with self._lock:
            self._times[self._next] = t
            self._next = (self._next + 1) % self._times.size
            self.total += 1

    def clear(self) -> None:
        """Forget all events."""
        with self._lock:
            self._times.fill(-np.inf)
            self._next = 0
            self.total = 0

    def rate(self, now: float) -> float:
        """Events per second within the window ending at ``now`` (0 with < 2 events)."""
        with self._lock:
            times = self._times.copy()
        recent = np.sort(times[times > now - self.window_s])
        if recent.size < 2:
            return 0.0
        span = recent[-1] - recent[0]
        if span <= 0:
            return 0.0
        # (n - 1) intervals over their span; if the last event is older than a typical
        # interval the source slowed down or stopped: stretch the span to now.
        span = max(span, now - recent[0] - span / (recent.size - 1))
        return (recent.size - 1) / span
