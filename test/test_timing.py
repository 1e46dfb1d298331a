"""Timing helpers: period statistics, absolute-deadline ticker, latency/rate trackers."""

import math
import threading
import time

import numpy as np
import pytest

from robot_policy_ros.core.diagnostics import RateTracker, WindowStats
from robot_policy_ros.core.timing import FixedRateTicker, PeriodTracker, period_summary


class FakeClock:
    """A clock that only moves when someone sleeps (or the test advances it)."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt


def test_perfect_ticks_have_zero_error_and_exact_rate():
    s = period_summary(np.arange(101) * 0.02, 0.02)
    assert s.intervals == 100
    assert s.rate_hz == pytest.approx(50.0)
    assert s.error_max_ms == pytest.approx(0.0, abs=1e-9)
    assert s.missed == 0


def test_period_error_percentiles_and_jitter():
    times = np.cumsum([0.0] + [0.020] * 98 + [0.023])  # one interval 3 ms long
    s = period_summary(times, 0.02)
    assert s.error_max_ms == pytest.approx(3.0)
    assert s.error_p50_ms == pytest.approx(0.0, abs=1e-9)
    assert s.jitter_ms > 0
    assert s.missed == 0


def test_gap_of_three_periods_counts_two_missed_ticks():
    times = [0.0, 0.02, 0.04, 0.10, 0.12]
    assert period_summary(times, 0.02).missed == 2


def test_summary_of_too_few_ticks_is_empty():
    assert period_summary([1.0], 0.02).intervals == 0
    with pytest.raises(ValueError):
        period_summary([0.0, 1.0], 0.0)


def test_period_tracker_keeps_only_its_window():
    tracker = PeriodTracker(0.01, window=10)
    t = 0.0
    tracker.tick(t)
    t += 0.05  # an early big gap that falls out of the window
    tracker.tick(t)
    for _ in range(20):
        t += 0.01
        tracker.tick(t)
    s = tracker.summary()
    assert s.intervals == 10 and s.missed == 0
    assert s.rate_hz == pytest.approx(100.0)
    assert tracker.ticks_total == 22
    tracker.reset()
    assert tracker.summary().intervals == 0


def test_ticker_wakes_on_absolute_deadlines_without_drift():
    clock = FakeClock()
    ticker = FixedRateTicker(50.0, spin_s=0.0, clock=clock, sleep=clock.sleep)
    ticker.start()
    ticks = []
    for _ in range(5):
        tick = ticker.wait()
        ticks.append(tick)
        clock.t += 0.007  # work inside the tick does not shift the grid
    assert [t.deadline - 100.0 for t in ticks] == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08])
    assert [t.index for t in ticks] == [0, 1, 2, 3, 4]
    assert ticker.missed_total == 0


def test_ticker_skips_and_counts_missed_deadlines_instead_of_bursting():
    clock = FakeClock()
    ticker = FixedRateTicker(100.0, spin_s=0.0, clock=clock, sleep=clock.sleep)
    ticker.start()
    ticker.wait()
    clock.t += 0.035  # overran: deadlines at +10, +20, +30 ms have passed
    tick = ticker.wait()
    assert tick.missed == 2 and ticker.missed_total == 2
    assert tick.deadline == pytest.approx(100.03)  # runs now, on the original grid
    nxt = ticker.wait()
    assert nxt.deadline == pytest.approx(100.04) and nxt.missed == 0
    assert nxt.woke == pytest.approx(100.04)  # it waited: no burst


def test_slightly_late_tick_is_late_not_missed():
    clock = FakeClock()
    ticker = FixedRateTicker(100.0, spin_s=0.0, clock=clock, sleep=clock.sleep)
    ticker.start()
    ticker.wait()
    clock.t += 0.015  # 5 ms past the next deadline: less than one period
    tick = ticker.wait()
    assert tick.missed == 0 and tick.lateness == pytest.approx(0.005)


def test_ticker_stops_promptly_when_asked():
    ticker = FixedRateTicker(1.0)
    ticker.start(time.monotonic() + 10.0)
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    t0 = time.monotonic()
    assert ticker.wait(stop) is None
    assert time.monotonic() - t0 < 1.0


def test_ticker_real_clock_spins_to_the_deadline():
    ticker = FixedRateTicker(200.0, spin_s=0.001)
    ticker.start()
    for _ in range(3):
        tick = ticker.wait()
        assert tick.woke >= tick.deadline


def test_ticker_rejects_bad_rate():
    with pytest.raises(ValueError, match="rate_hz"):
        FixedRateTicker(0.0)
    with pytest.raises(RuntimeError, match="start"):
        _ = FixedRateTicker(10.0).next_deadline


def test_window_stats_median_and_p95_of_recent_values():
    stats = WindowStats(window=100)
    assert math.isnan(stats.median())
    for v in range(1000):  # only the last 100 (900..999) count
        stats.add(float(v))
    assert stats.median() == pytest.approx(949.5)
    assert stats.p95() == pytest.approx(994.05)
    assert stats.max() == 999.0 and stats.last == 999.0 and stats.total == 1000
    stats.clear()
    assert len(stats) == 0 and math.isnan(stats.p95())


def test_rate_tracker_measures_rate_and_decays_when_events_stop():
    rate = RateTracker(window_s=1.0)
    for i in range(21):
        rate.add(10.0 + i * 0.05)  # 20 Hz until t=11.0
    assert rate.rate(11.0) == pytest.approx(20.0)
    assert rate.rate(11.5) < 15.0  # stopped half a second ago
    assert rate.rate(20.0) == 0.0
    rate.clear()
    assert rate.rate(11.0) == 0.0
