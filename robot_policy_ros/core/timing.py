"""Fixed-rate scheduling and period statistics, independent of ROS.

:class:`FixedRateTicker` paces a control loop with absolute deadlines on a monotonic
clock: it sleeps until shortly before the next deadline and then spins for the last
fraction of a millisecond, so the wake-up time does not depend on the sleep's slack. A
deadline overrun by more than one period is counted as missed ticks and skipped (the loop
never bursts to catch up, which would send a volley of commands to a robot).

:func:`period_summary` and :class:`PeriodTracker` turn tick times into the figures the
streamer reports: achieved rate, period error percentiles, jitter and missed ticks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodSummary:
    """Statistics of the intervals between consecutive ticks.

    Attributes:
        intervals: number of intervals measured (ticks - 1).
        rate_hz: achieved rate, intervals / elapsed time (0 with fewer than 2 ticks).
        period_mean_ms: mean interval.
        error_p50_ms / error_p99_ms / error_max_ms: percentiles of |interval - nominal|.
        jitter_ms: standard deviation of the intervals.
        missed: ticks that did not happen: an interval of k nominal periods (k >= 2, rounded)
            counts k - 1 missed ticks.
    """

    intervals: int
    rate_hz: float
    period_mean_ms: float
    error_p50_ms: float
    error_p99_ms: float
    error_max_ms: float
    jitter_ms: float
    missed: int

    def as_dict(self) -> dict[str, float]:
        """Field name -> value, for printing and diagnostics."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def __str__(self) -> str:
        return (
            f"{self.rate_hz:.2f} Hz over {self.intervals} periods, period error p50 "
            f"{self.error_p50_ms:.3f} ms p99 {self.error_p99_ms:.3f} ms max "
            f"{self.error_max_ms:.3f} ms, jitter {self.jitter_ms:.3f} ms, missed {self.missed}"
        )


EMPTY_SUMMARY = PeriodSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)


def _summary_of_intervals(intervals: np.ndarray, nominal_period: float) -> PeriodSummary:
    if intervals.size == 0:
        return EMPTY_SUMMARY
    total = float(intervals.sum())
    errors = np.abs(intervals - nominal_period)
    p50, p99 = np.percentile(errors, [50.0, 99.0])
    periods = np.rint(intervals / nominal_period)
    missed = int(np.sum(np.maximum(periods - 1.0, 0.0)))
    return PeriodSummary(
        intervals=int(intervals.size),
        rate_hz=intervals.size / total if total > 0 else 0.0,
        period_mean_ms=1e3 * total / intervals.size,
        error_p50_ms=1e3 * float(p50),
        error_p99_ms=1e3 * float(p99),
        error_max_ms=1e3 * float(errors.max()),
        jitter_ms=1e3 * float(intervals.std()),
        missed=missed,
    )


def period_summary(times: Sequence[float] | np.ndarray, nominal_period: float) -> PeriodSummary:
    """Summarise tick (or message arrival) times in seconds against ``nominal_period``."""
    if nominal_period <= 0:
        raise ValueError(f"nominal_period must be > 0, got {nominal_period}")
    stamps = np.asarray(times, dtype=np.float64)
    if stamps.ndim != 1:
        raise ValueError("times must be a 1-D sequence")
    return _summary_of_intervals(np.diff(stamps), nominal_period)


class PeriodTracker:
    """Rolling period statistics over the last ``window`` intervals; O(1) per tick.

    ``tick(t)`` is called from the control thread; ``summary()`` from any other thread
    (both take a short lock). Storage is preallocated, so ticking allocates nothing.
    """

    def __init__(self, nominal_period: float, window: int = 500) -> None:
        if nominal_period <= 0:
            raise ValueError(f"nominal_period must be > 0, got {nominal_period}")
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self.nominal_period = float(nominal_period)
        self._intervals = np.zeros(window, dtype=np.float64)
        self._count = 0
        self._next = 0
        self._last: float | None = None
        self._lock = threading.Lock()
        self.ticks_total = 0

    def tick(self, t: float) -> None:
        """Record a tick at time ``t`` (seconds)."""
        with self._lock:
            if self._last is not None:
                self._intervals[self._next] = t - self._last
                self._next = (self._next + 1) % self._intervals.size
                if self._count < self._intervals.size:
                    self._count += 1
            self._last = t
            self.ticks_total += 1

    def reset(self) -> None:
        """Forget all ticks (e.g. after the loop was paused)."""
        with self._lock:
            self._count = 0
            self._next = 0
            self._last = None

    def summary(self) -> PeriodSummary:
        """Statistics of the intervals in the window."""
        with self._lock:
            data = self._intervals[: self._count].copy()
        return _summary_of_intervals(data, self.nominal_period)


@dataclass(frozen=True)
class Tick:
    """One tick of :class:`FixedRateTicker`.

    Attributes:
        index: tick number since start (skipped ticks included).
        deadline: the scheduled time of this tick (ticker clock).
        woke: when the wait returned (ticker clock).
        missed: deadlines skipped just before this tick because the loop overran.
    """

    index: int
    deadline: float
    woke: float
    missed: int

    @property
    def lateness(self) -> float:
        """Seconds between the deadline and the wake-up (>= 0)."""
        return self.woke - self.deadline


class FixedRateTicker:
    """Absolute-deadline pacing for a control loop at ``rate_hz``.

    Deadlines are ``start + k / rate_hz``, so errors never accumulate. ``wait()`` sleeps
    until ``spin_s`` before the next deadline and busy-waits the rest. If the caller comes
    back more than one period after a deadline, the deadlines in between are counted in
    :attr:`missed_total` and skipped; the tick then runs at once, on the original grid.

    Args:
        rate_hz: tick rate.
        spin_s: final part of each wait spent spinning instead of sleeping (0 disables).
        clock / sleep: injectable for tests (default ``time.monotonic`` / ``time.sleep``).
    """

    def __init__(
        self,
        rate_hz: float,
        spin_s: float = 0.0003,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (rate_hz > 0 and math.isfinite(rate_hz)):
            raise ValueError(f"rate_hz must be a positive finite number, got {rate_hz}")
        if spin_s < 0:
            raise ValueError(f"spin_s must be >= 0, got {spin_s}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self.spin_s = float(spin_s)
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._index = 0
        self.missed_total = 0

    def start(self, t0: float | None = None) -> None:
        """Set the grid: the first tick is due at ``t0`` (default: now)."""
        self._start = self._clock() if t0 is None else float(t0)
        self._index = 0
        self.missed_total = 0

    @property
    def next_deadline(self) -> float:
        """Time of the next tick on the ticker clock."""
        if self._start is None:
            raise RuntimeError("FixedRateTicker.start() was not called")
        return self._start + self._index * self.period

    def wait(self, stop: threading.Event | None = None) -> Tick | None:
        """Block until the next deadline; returns the tick, or None if ``stop`` got set."""
        deadline = self.next_deadline
        now = self._clock()
        missed = 0
        late = now - deadline
        if late > self.period:
            # Overran by more than a period: skip the deadlines that passed, count them.
            missed = int(late // self.period)
            self._index += missed
            self.missed_total += missed
            deadline = self.next_deadline
        remaining = deadline - now
        while remaining > self.spin_s:
            if stop is not None and stop.is_set():
                return None
            # Sleep in slices of at most 50 ms so a stop request is seen promptly.
            self._sleep(min(remaining - self.spin_s, 0.05))
            now = self._clock()
            remaining = deadline - now
        while now < deadline:  # the last fraction of a millisecond: spin
            now = self._clock()
        if stop is not None and stop.is_set():
            return None
        tick = Tick(index=self._index, deadline=deadline, woke=now, missed=missed)
        self._index += 1
        return tick
