"""core/clock_jumps.py: which inputs are from before a ROS clock jump; system clock steps."""

from __future__ import annotations

from robot_policy_ros.core.clock_jumps import JumpFilter, SystemClockWatch


def test_nothing_is_from_before_a_jump_until_one_happens():
    f = JumpFilter()
    assert not f.from_before(-1e9, lambda: 0.0)
    assert not f.from_before(1e9, lambda: 0.0)


def test_backward_jump_drops_old_timeline_stamps_until_the_clock_is_back():
    f = JumpFilter()
    epoch = f.invalidate()
    f.jumped(before=1000.0, after=940.0, max_ahead_s=0.25)
    assert f.epoch == epoch == 1
    # Stamped before the jump point, or on the old timeline (ahead of the clock).
    assert f.from_before(939.9, lambda: 940.01)
    assert f.from_before(999.98, lambda: 940.01)
    assert f.from_before(940.3, lambda: 940.01)  # more than max_ahead_s ahead
    # Fresh inputs: at the clock, or a transport delay ahead of it.
    assert not f.from_before(940.0, lambda: 940.01)
    assert not f.from_before(940.02, lambda: 940.01)
    # Once the clock is past the old timeline, only the jump point matters.
    assert not f.from_before(1000.5, lambda: 1000.2)
    assert not f.from_before(1000.9, lambda: 900.0)  # window closed for good
    assert f.from_before(939.0, lambda: 1000.2)


def test_small_backward_jump_tolerance_is_half_the_jump():
    f = JumpFilter()
    f.invalidate()
    f.jumped(before=10.0, after=9.9, max_ahead_s=0.25)
    assert f.from_before(9.99, lambda: 9.9)  # 0.09 ahead > 0.05
    assert not f.from_before(9.94, lambda: 9.9)


def test_forward_jump_drops_everything_stamped_before_it():
    f = JumpFilter()
    f.invalidate()
    f.jumped(before=10.0, after=110.0, max_ahead_s=0.25)
    assert f.from_before(10.0, lambda: 110.0)
    assert f.from_before(109.99, lambda: 110.0)
    assert not f.from_before(110.0, lambda: 110.0)
    assert not f.from_before(110.2, lambda: 110.0)


def test_reset_forgets_the_jump_and_starts_a_new_epoch():
    f = JumpFilter()
    f.invalidate()
    f.jumped(before=10.0, after=110.0, max_ahead_s=0.25)
    f.reset()
    assert f.epoch == 2
    assert not f.from_before(10.0, lambda: 110.0)


class _Clocks:
    """A wall and a monotonic clock that the test moves."""

    def __init__(self) -> None:
        self.mono, self.wall = 0.0, 100.0

    def advance(self, dt: float) -> None:
        self.mono += dt
        self.wall += dt

    def check(self, watch: SystemClockWatch):
        return watch.check(lambda: self.wall, lambda: self.mono)


def test_system_clock_watch_sees_steps_not_elapsed_time():
    clocks, watch = _Clocks(), SystemClockWatch(max_forward_s=1.0)
    assert clocks.check(watch) is None  # first reading: nothing to compare with
    clocks.advance(30.0)  # however long between two checks: no jump
    assert clocks.check(watch) is None
    clocks.wall -= 5.0  # the system clock is set back
    before, after = clocks.check(watch)
    assert after == clocks.wall and abs(after - before + 5.0) < 1e-9
    clocks.wall -= 0.005  # within read jitter: not a jump
    assert clocks.check(watch) is None
    clocks.wall += 0.5  # forward, within max_forward_s
    assert clocks.check(watch) is None
    clocks.wall += 2.0
    before, after = clocks.check(watch)
    assert abs(after - before - 2.0) < 1e-9


def test_system_clock_watch_ignores_a_preempted_reading():
    watch = SystemClockWatch(max_forward_s=1.0)
    mono = iter([0.0, 0.0, 1.0, 1.05, 2.0, 2.0])
    assert watch.check(lambda: 100.0, lambda: next(mono)) is None
    # 50 ms between the two monotonic reads around the wall read: the sample is not used.
    assert watch.check(lambda: 90.0, lambda: next(mono)) is None
    before, after = watch.check(lambda: 90.0, lambda: next(mono))
    assert abs(after - before + 12.0) < 1e-9
