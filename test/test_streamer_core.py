"""StreamerCore without ROS: every decision of the command streamer, driven by plain values.

The node (command_streamer) and the offline evaluator run this same core; these tests drive
it tick by tick with explicit ROS and monotonic clocks.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.core.streamer import (
    E_STOP_SETTLE_S,
    JUMP_QUARANTINE_S,
    ChunkRejectedError,
    EStopPublishers,
    StreamerConfig,
    StreamerCore,
)

NAMES = ("j0", "j1", "j2")
LOWER = np.array([-1.0, -2.0, -0.5])
UPPER = np.array([1.0, 0.5, 0.5])
VMAX = np.array([2.0, 1.0, 1.5])
AMAX = np.array([8.0, 4.0, 6.0])
RATE = 50.0
DT = 1.0 / RATE
NO_PUBLISHERS = EStopPublishers()


def make_core(accel: bool = True, **overrides) -> StreamerCore:
    limits = JointLimits(NAMES, LOWER, UPPER, VMAX, AMAX if accel else None)
    settings = {"rate_hz": RATE, "ramp_in_s": 0.0, "e_stop_grace_s": 0.0}
    settings.update(overrides)
    return StreamerCore(StreamerConfig(joint_names=NAMES, limits=limits, **settings))


class Clock:
    """One clock for both ROS and monotonic time, unless a test jumps the ROS one."""

    def __init__(self, t: float = 100.0) -> None:
        self.ros = t
        self.wall = t

    def advance(self, dt: float = DT) -> None:
        self.ros += dt
        self.wall += dt


def running(core: StreamerCore, clock: Clock, measured=(0.0, 0.0, 0.0)) -> StreamerCore:
    """Activate, feed a joint state, tick once (the start at the measured position)."""
    core.activate(clock.ros, clock.wall)
    core.on_joint_state(NAMES, np.asarray(measured, float), clock.ros, clock.ros, clock.wall)
    result = core.tick(clock.ros, clock.wall, NO_PUBLISHERS)
    assert result.command is not None, result.state
    return core


def chunk(core: StreamerCore, clock: Clock, positions, fps: float = 20.0, names=NAMES, stamp=None):
    positions = np.asarray(positions, dtype=float)
    offsets = np.arange(len(positions)) / fps
    core.add_chunk(
        tuple(names),
        offsets,
        positions,
        clock.ros if stamp is None else stamp,
        clock.ros,
        clock.wall,
    )


def step(core: StreamerCore, clock: Clock, measured=None):
    """Advance one period, optionally feeding a joint state first; returns the command."""
    clock.advance()
    if measured is not None:
        core.on_joint_state(NAMES, np.asarray(measured, float), clock.ros, clock.ros, clock.wall)
    return core.tick(clock.ros, clock.wall, NO_PUBLISHERS).command


# -- start -------------------------------------------------------------------------------


def test_first_command_equals_measured_position():
    clock = Clock()
    core = make_core()
    core.activate(clock.ros, clock.wall)
    measured = np.array([0.3, -0.4, 0.1])
    core.on_joint_state(NAMES, measured, clock.ros, clock.ros, clock.wall)
    np.testing.assert_array_equal(core.tick(clock.ros, clock.wall).command, measured)


def test_nothing_published_before_a_joint_state():
    clock = Clock()
    core = make_core()
    core.activate(clock.ros, clock.wall)
    result = core.tick(clock.ros, clock.wall)
    assert result.command is None and result.state == "waiting_for_joint_states"


def test_start_outside_limits_brought_in_at_bring_in_velocity():
    clock = Clock()
    core = running(make_core(bring_in_velocity=0.1), clock, measured=(1.5, 0.0, 0.0))
    chunk(core, clock, np.zeros((40, 3)))
    previous = 1.5
    for _ in range(20):
        command = step(core, clock, measured=None)
        assert previous - command[0] <= 0.1 * DT + 1e-12  # never faster than bring-in
        assert command[0] <= previous + 1e-12  # never further out
        previous = command[0]
    assert previous < 1.5


# -- joint order -------------------------------------------------------------------------


def test_chunk_mapped_to_controller_order_by_name():
    clock = Clock()
    core = running(make_core(ramp_in_s=0.0), clock)
    target = {"j0": 0.01, "j1": -0.01, "j2": 0.005}
    order = ("j2", "j0", "j1")
    chunk(core, clock, np.array([[target[n] for n in order]] * 20), names=order)
    for _ in range(10):
        command = step(core, clock, measured=(0.0, 0.0, 0.0))
    np.testing.assert_allclose(command, [target[n] for n in NAMES], atol=1e-9)


def test_chunk_missing_a_joint_rejected_with_both_lists():
    clock = Clock()
    core = running(make_core(), clock)
    with pytest.raises(ChunkRejectedError, match=r"lacks joint\(s\) \['j2'\]") as info:
        chunk(core, clock, np.zeros((5, 2)), names=("j0", "j1"))
    assert info.value.key == "missing_joints"
    assert core.chunks_rejected == {"missing_joints": 1}


def test_joint_state_with_duplicate_names_refused():
    core = make_core()
    error = core.on_joint_state(("j0", "j0", "j2"), np.zeros(3), 1.0, 1.0, 1.0)
    assert "duplicate" in error and core.measured is None


def test_joint_state_nan_refused_naming_the_joint():
    core = make_core()
    error = core.on_joint_state(NAMES, np.array([0.0, math.nan, 0.0]), 1.0, 1.0, 1.0)
    assert "j1" in error and core.measured is None


# -- chunks ------------------------------------------------------------------------------


def test_nan_chunk_rejected():
    clock = Clock()
    core = running(make_core(), clock)
    positions = np.zeros((5, 3))
    positions[2, 1] = math.nan
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, positions)
    assert info.value.key == "non_finite" and len(core.buffer) == 0


def test_chunk_beyond_point_bound_rejected():
    clock = Clock()
    core = running(make_core(max_chunk_points=10), clock)
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, np.zeros((11, 3)))
    assert info.value.key == "too_many_points"


def test_chunk_beyond_duration_bound_rejected():
    clock = Clock()
    core = running(make_core(max_chunk_duration_s=1.0), clock)
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, np.zeros((30, 3)), fps=20.0)  # 1.45 s
    assert info.value.key == "too_long"


def test_chunk_from_before_activation_rejected():
    clock = Clock()
    core = make_core()
    old_stamp = clock.ros
    clock.advance(0.1)
    running(core, clock)
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, np.zeros((40, 3)), stamp=old_stamp)
    assert info.value.key == "before_activation"


def test_chunk_far_in_future_rejected():
    clock = Clock()
    core = running(make_core(max_chunk_future_s=0.5), clock)
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, np.zeros((5, 3)), stamp=clock.ros + 1.0)
    assert info.value.key == "future"


# -- underrun, e-stop -------------------------------------------------------------------


def test_underrun_decelerates_within_acceleration_limit():
    clock = Clock()
    core = running(make_core(reanchor_tolerance=10.0), clock, measured=(-0.9, 0.0, 0.0))
    chunk(core, clock, np.array([[0.9, 0.0, 0.0]] * 8), fps=20.0)  # covers 0.35 s
    commands = [core.filter.last_command]
    for _ in range(60):
        commands.append(step(core, clock, measured=commands[-1]))
    q = np.array(commands)[:, 0]
    v = np.diff(q) / DT
    assert v.max() > 0.5  # it was moving when the chunk ran out
    assert np.all(np.abs(np.diff(v)) <= AMAX[0] * DT + 1e-9)  # never a harder stop
    assert v[-1] == 0.0  # and it stops
    assert core.underrun_events == 1


def test_underrun_without_acceleration_limits_holds():
    clock = Clock()
    core = running(make_core(accel=False, reanchor_tolerance=10.0), clock, (-0.9, 0, 0))
    chunk(core, clock, np.array([[0.9, 0.0, 0.0]] * 8), fps=20.0)
    commands = [core.filter.last_command]
    for _ in range(30):
        commands.append(step(core, clock, measured=commands[-1]))
    assert np.array_equal(commands[-1], commands[-2])


def test_e_stop_holds_at_once():
    clock = Clock()
    core = running(make_core(reanchor_tolerance=10.0), clock, measured=(-0.9, 0.0, 0.0))
    chunk(core, clock, np.array([[0.9, 0.0, 0.0]] * 40), fps=20.0)
    for _ in range(20):
        before = step(core, clock, measured=core.filter.last_command)
    assert core.on_e_stop(True, clock.ros)
    after = step(core, clock, measured=before)
    np.testing.assert_array_equal(after, before)  # zero speed on the very next tick
    assert core.state == "e_stop" and len(core.buffer) == 0


def test_e_stop_silent_publishes_nothing():
    clock = Clock()
    core = running(make_core(e_stop_behavior="silent"), clock)
    core.on_e_stop(True, clock.ros)
    assert step(core, clock, measured=(0, 0, 0)) is None


def test_reset_refused_while_e_stop_input_true():
    clock = Clock()
    core = running(make_core(), clock)
    core.on_e_stop(True, clock.ros)
    ok, message = core.reset_e_stop(clock.wall)
    assert not ok and "still true" in message
    core.on_e_stop(False, clock.ros)
    ok, _ = core.reset_e_stop(clock.wall)
    assert ok and not core.e_stop_latched


def test_chunks_before_e_stop_never_run_after_reset():
    clock = Clock()
    core = running(make_core(), clock)
    stamp = clock.ros
    core.on_e_stop(True, clock.ros + 0.001)
    core.on_e_stop(False, clock.ros + 0.001)
    core.reset_e_stop(clock.wall)
    with pytest.raises(ChunkRejectedError):
        chunk(core, clock, np.full((40, 3), 0.3), stamp=stamp)


# -- the e-stop input wait -----------------------------------------------------------------


def test_latched_publisher_waited_for_until_its_sample():
    clock = Clock()
    core = make_core(e_stop_grace_s=30.0)
    core.activate(clock.ros, clock.wall)
    latched = EStopPublishers(count=1, latched=1)
    for _ in range(100):  # 2 s with a latched publisher discovered, no sample yet
        clock.advance()
        core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
        assert core.tick(clock.ros, clock.wall, latched).command is None
    core.on_e_stop(True, clock.ros)  # the latched sample arrives late: still honoured
    clock.advance()
    result = core.tick(clock.ros, clock.wall, latched)
    assert result.command is None and result.state == "e_stop"


def test_volatile_publisher_ends_wait_after_settle():
    clock = Clock()
    core = make_core(e_stop_grace_s=30.0)
    core.activate(clock.ros, clock.wall)
    core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
    volatile = EStopPublishers(count=1, latched=0)
    assert core.tick(clock.ros, clock.wall, volatile).command is None
    clock.advance(E_STOP_SETTLE_S + 0.01)
    core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
    result = core.tick(clock.ros, clock.wall, volatile)
    assert result.command is not None and "volatile" in result.event


def test_grace_ends_wait_and_says_so():
    clock = Clock()
    core = make_core(e_stop_grace_s=1.0)
    core.activate(clock.ros, clock.wall)
    clock.advance(1.01)
    core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
    result = core.tick(clock.ros, clock.wall, NO_PUBLISHERS)
    assert result.command is not None and "e_stop_grace_s" in result.event


def test_e_stop_heard_before_reactivation_counts():
    clock = Clock()
    core = make_core(e_stop_grace_s=30.0)
    core.on_e_stop(False, clock.ros)  # the latched "not stopped" sample, heard once
    running(core, clock)
    core.deactivate()
    running(core, clock)  # no second wait for a sample that is not sent again


# -- deadman -----------------------------------------------------------------------------


def test_deadman_never_heard_publishes_nothing():
    clock = Clock()
    core = make_core(deadman_timeout_s=0.2)
    core.activate(clock.ros, clock.wall)
    core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
    result = core.tick(clock.ros, clock.wall)
    assert result.command is None and "deadman" in result.state


def test_deadman_silence_latches_e_stop():
    clock = Clock()
    core = make_core(deadman_timeout_s=0.2)
    core.on_deadman(True, clock.wall, clock.ros)
    running(core, clock)
    for _ in range(5):
        core.on_deadman(True, clock.wall, clock.ros)
        assert step(core, clock, measured=(0, 0, 0)) is not None
    held = core.filter.last_command
    for _ in range(15):  # 0.3 s of silence
        command = step(core, clock, measured=(0, 0, 0))
    assert core.e_stop_latched and "deadman" in core.e_stop_reason
    np.testing.assert_array_equal(command, held)
    ok, message = core.reset_e_stop(clock.wall)
    assert not ok and "deadman" in message
    core.on_deadman(True, clock.wall, clock.ros)
    assert core.reset_e_stop(clock.wall)[0]


def test_deadman_released_latches_at_once():
    clock = Clock()
    core = make_core(deadman_timeout_s=1.0)
    core.on_deadman(True, clock.wall, clock.ros)
    running(core, clock)
    assert core.on_deadman(False, clock.wall, clock.ros)
    assert core.e_stop_latched


# -- freshness ---------------------------------------------------------------------------


def test_freshness_judged_by_header_stamp():
    clock = Clock()
    core = running(make_core(joint_state_timeout_s=0.5), clock)
    # Arrives now, but was taken 0.6 s ago: stale although it just arrived.
    core.on_joint_state(NAMES, np.zeros(3), clock.ros - 0.6, clock.ros, clock.wall)
    clock.advance()
    assert core.tick(clock.ros, clock.wall).state == "joint_states_stale"


def test_insane_stamp_judged_by_arrival():
    clock = Clock(5000.0)
    core = running(make_core(joint_state_timeout_s=0.5, max_stamp_lag_s=5.0), clock)
    for stamp in (clock.ros - 1000.0, clock.ros + 10.0, 0.0):  # other clock, future, none
        core.on_joint_state(NAMES, np.zeros(3), stamp, clock.ros, clock.wall)
        clock.advance()
        assert core.tick(clock.ros, clock.wall).state != "joint_states_stale"
    assert core.stamp_fallbacks == 2


def test_stale_joint_states_decelerate_then_reanchor_on_return():
    clock = Clock()
    core = running(make_core(joint_state_timeout_s=0.1), clock)
    chunk(core, clock, np.array([[0.5, 0.0, 0.0]] * 40), fps=20.0)
    for _ in range(10):
        step(core, clock, measured=core.filter.last_command)
    for _ in range(20):  # joint states stop
        step(core, clock)
    assert core.state == "joint_states_stale"
    elsewhere = np.array([-0.5, -0.3, 0.2])  # the arm was moved meanwhile
    command = step(core, clock, measured=elsewhere)
    np.testing.assert_array_equal(command, elsewhere)
    assert core.reanchors == 1


def test_reanchor_when_arm_measured_away_from_command():
    clock = Clock()
    core = running(make_core(reanchor_tolerance=0.2), clock)
    step(core, clock, measured=(0, 0, 0))
    moved = np.array([0.3, 0.0, 0.0])
    np.testing.assert_array_equal(step(core, clock, measured=moved), moved)
    assert core.reanchors == 1


def test_arm_found_away_drops_chunks_planned_before_and_holds_until_a_fresh_one():
    clock = Clock()
    core = running(make_core(reanchor_tolerance=0.2), clock)
    planned_at = clock.ros
    chunk(core, clock, np.full((60, 3), 0.4), fps=20.0)  # 3 s towards 0.4
    for _ in range(3):
        step(core, clock, measured=core.filter.last_command)
    moved = np.array([-0.5, 0.0, 0.0])  # the sim reset snapped the arm elsewhere
    np.testing.assert_array_equal(step(core, clock, measured=moved), moved)
    assert core.reanchors == 1 and len(core.buffer) == 0
    for _ in range(10):  # no fresh chunk yet: it holds where the arm is
        np.testing.assert_allclose(step(core, clock, measured=moved), moved)
    with pytest.raises(ChunkRejectedError) as exc:  # in flight from before: refused
        chunk(core, clock, np.full((20, 3), 0.4), stamp=planned_at + DT)
    assert exc.value.key == "before_activation"
    chunk(core, clock, np.full((40, 3), -0.3), fps=20.0)  # observed from the new state
    for _ in range(5):
        command = step(core, clock, measured=core.filter.last_command)
    assert command[0] > moved[0]  # on its way to the fresh chunk's -0.3


# -- clock jumps -------------------------------------------------------------------------


def test_clock_jump_back_clears_buffer_and_never_replays():
    clock = Clock()
    core = running(make_core(), clock)
    chunk(core, clock, np.full((100, 3), 0.2), fps=20.0)  # 5 s of a far target
    for _ in range(5):
        step(core, clock, measured=core.filter.last_command)
    clock.ros -= 3.0  # sim reset
    here = core.filter.last_command
    clock.advance()
    result = core.tick(clock.ros, clock.wall)
    assert result.command is None and "jumped" in result.event
    assert len(core.buffer) == 0 and core.time_jumps == 1
    command = step(core, clock, measured=here)  # a fresh state after the jump: restart there
    np.testing.assert_array_equal(command, here)
    for _ in range(200):
        assert step(core, clock, measured=here) is not None
        np.testing.assert_array_equal(core.filter.last_command, here)  # nothing old runs


def test_clock_jump_forward_beyond_bound_clears_buffer():
    clock = Clock()
    core = running(make_core(max_clock_jump_s=1.0), clock)
    chunk(core, clock, np.full((100, 3), 0.2), fps=20.0)
    clock.ros += 2.0
    clock.advance()
    assert "jumped" in core.tick(clock.ros, clock.wall).event and len(core.buffer) == 0


def test_chunk_in_flight_after_clock_jump_rejected():
    clock = Clock()
    core = running(make_core(), clock)
    stamp = clock.ros
    clock.ros -= 5.0
    clock.advance()
    core.tick(clock.ros, clock.wall)
    with pytest.raises(ChunkRejectedError) as info:
        chunk(core, clock, np.zeros((40, 3)), stamp=clock.ros)
    assert info.value.key == "before_clock_jump"
    clock.wall += JUMP_QUARANTINE_S
    with pytest.raises(ChunkRejectedError):  # old timeline: ahead of the new clock
        chunk(core, clock, np.zeros((200, 3)), stamp=stamp - 4.99)
    chunk(core, clock, np.zeros((40, 3)))  # a chunk of the new timeline is taken


def test_safety_clock_step_bounded_by_two_periods():
    clock = Clock()
    core = running(make_core(ramp_in_s=0.0, max_clock_jump_s=100.0), clock)
    chunk(core, clock, np.array([[0.9, 0.0, 0.0]] * 40), fps=20.0)
    before = core.filter.last_command
    clock.ros += 0.5  # a stalled thread or a clock step: one tick, half a second
    clock.wall += 0.5
    command = core.tick(clock.ros, clock.wall).command
    assert abs(command[0] - before[0]) <= VMAX[0] * 2 * DT + 1e-12


# -- properties --------------------------------------------------------------------------

events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(1, 5)),
        st.tuples(st.just("state"), st.lists(st.floats(-3, 3), min_size=3, max_size=3)),
        st.tuples(
            st.just("chunk"),
            st.lists(
                st.lists(st.one_of(st.floats(-3, 3), st.just(math.nan)), min_size=3, max_size=3),
                min_size=1,
                max_size=40,
            ),
        ),
        st.tuples(st.just("jump"), st.floats(-5, 5)),
        st.tuples(st.just("jump"), st.floats(-0.5, 0.9)),
        st.tuples(st.just("estop"), st.booleans()),
        st.tuples(st.just("reset"), st.just(0)),
        st.tuples(st.just("silence"), st.integers(1, 40)),
    ),
    max_size=60,
)


@fuzz_settings(200)
@given(events=events, accel=st.booleans(), start=st.lists(st.floats(-3, 3), min_size=3, max_size=3))
def test_every_command_is_safe(events, accel, start):
    """Whatever happens, each command is finite, and either the measured position (a start or
    re-anchor) or within the velocity limit of the previous command; inside the limits, or
    on its way in from where the arm was measured."""
    clock = Clock()
    core = make_core(accel=accel, ramp_in_s=0.5, e_stop_grace_s=0.0)
    core.activate(clock.ros, clock.wall)
    measured = np.array(start)
    core.on_joint_state(NAMES, measured, clock.ros, clock.ros, clock.wall)
    previous = None
    latest_measured = measured

    def tick(n):
        nonlocal previous, latest_measured
        for _ in range(n):
            clock.advance()
            core.on_joint_state(NAMES, latest_measured, clock.ros, clock.ros, clock.wall)
            command = core.tick(clock.ros, clock.wall).command
            if command is None:
                continue
            assert np.all(np.isfinite(command))
            if previous is not None and not np.array_equal(command, latest_measured):
                assert np.all(np.abs(command - previous) <= VMAX * 2 * DT + 1e-9)
            outside = (command < LOWER - 1e-12) | (command > UPPER + 1e-12)
            if outside.any():  # only where it started outside, never further out
                assert np.all(
                    np.abs(command[outside]) <= np.abs(latest_measured[outside]) + 1e-9
                ) or (
                    previous is not None
                    and np.all(np.abs(command[outside]) <= np.abs(previous[outside]) + 1e-9)
                )
            previous = command
            latest_measured = command  # the arm tracks its commands (until a "state" event)

    for kind, value in events:
        if kind == "tick":
            tick(value)
        elif kind == "state":
            latest_measured = np.array(value)
        elif kind == "chunk":
            with contextlib.suppress(ChunkRejectedError):
                chunk(core, clock, np.array(value), fps=10.0)
        elif kind == "jump":
            clock.ros += value
        elif kind == "estop":
            core.on_e_stop(value, clock.ros)
        elif kind == "reset":
            core.reset_e_stop(clock.wall)
        elif kind == "silence":
            for _ in range(value):
                clock.advance()
                core.tick(clock.ros, clock.wall)
            previous = None if core.measured is None else previous
        tick(1)


@fuzz_settings(100)
@given(jump=st.floats(-10, -0.021), lead=st.floats(0.0, 0.4), ticks_before=st.integers(1, 20))
def test_chunk_from_before_a_backward_jump_rejected(jump, lead, ticks_before):
    """After a backward jump, a chunk arriving within the quarantine is dropped, and one
    stamped ahead of the new clock (the old timeline) is dropped until the clock passes the
    pre-jump time."""
    clock = Clock()
    core = running(make_core(), clock)
    for _ in range(ticks_before):
        step(core, clock, measured=(0, 0, 0))
    old = np.full((60, 3), 0.4)
    old_stamp = clock.ros - lead
    clock.ros += jump
    clock.advance()  # the net step (jump + one period) is backwards
    core.tick(clock.ros, clock.wall)
    with pytest.raises(ChunkRejectedError):
        chunk(core, clock, old, stamp=old_stamp)
    clock.wall += JUMP_QUARANTINE_S
    if old_stamp > clock.ros:
        with pytest.raises(ChunkRejectedError) as info:
            chunk(core, clock, old, stamp=old_stamp)
        assert info.value.key in ("before_clock_jump", "future")
    assert len(core.buffer) <= 1


@fuzz_settings(100)
@given(
    order=st.permutations(NAMES),
    goal=st.lists(st.floats(-0.4, 0.4), min_size=3, max_size=3),
    extra=st.booleans(),
)
def test_every_command_in_controller_joint_order(order, goal, extra):
    """Chunks and joint states in any joint order (with extra joints) drive each joint with
    its own value: the command is in the streamer's order, mapped by name."""
    clock = Clock()
    core = make_core(ramp_in_s=0.0)
    core.activate(clock.ros, clock.wall)
    by_name = dict(zip(NAMES, goal, strict=True))
    names = tuple(order) + (("gripper",) if extra else ())
    row = [by_name.get(n, 9.9) for n in names]

    def state(positions):
        mapped = {n: positions[NAMES.index(n)] for n in NAMES}
        values = np.array([mapped.get(n, -9.9) for n in names])
        core.on_joint_state(names, values, clock.ros, clock.ros, clock.wall)

    state(np.zeros(3))
    assert core.tick(clock.ros, clock.wall).command is not None
    core.add_chunk(
        names, np.arange(100) / 20.0, np.tile(row, (100, 1)), clock.ros, clock.ros, clock.wall
    )
    command = np.zeros(3)
    for _ in range(150):
        clock.advance()
        state(command)
        command = core.tick(clock.ros, clock.wall).command
    np.testing.assert_allclose(command, np.clip(goal, LOWER, UPPER), atol=1e-6)


def test_latched_publisher_discovered_late_gets_a_full_grace():
    clock = Clock()
    core = make_core(e_stop_grace_s=3.0)
    core.activate(clock.ros, clock.wall)
    clock.advance(2.5)  # discovery under load: the latched publisher shows up after 2.5 s
    core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
    latched = EStopPublishers(count=1, latched=1)
    assert core.tick(clock.ros, clock.wall, latched).command is None
    for _ in range(100):  # 2 s more: past the grace counted from activation
        clock.advance()
        core.on_joint_state(NAMES, np.zeros(3), clock.ros, clock.ros, clock.wall)
        assert core.tick(clock.ros, clock.wall, latched).command is None
    core.on_e_stop(True, clock.ros)
    clock.advance()
    assert core.tick(clock.ros, clock.wall, latched).state == "e_stop"
