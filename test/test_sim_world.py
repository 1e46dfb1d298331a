"""Sim world without ROS: seeded episodes, success, command validation, timeouts, trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_policy_ros.sim.arm import ArmKinematics, load_arm_config
from robot_policy_ros.sim.commands import CommandError, build_trajectory, validate_position_command
from robot_policy_ros.sim.expert import solve_ik
from robot_policy_ros.sim.task import Episode, TaskConfig, sample_target
from robot_policy_ros.sim.world import SimWorld

CFG = load_arm_config()
NAMES = list(CFG.joint_names)


def _world(**kw) -> SimWorld:
    return SimWorld(CFG, kw.pop("task", TaskConfig()), **kw)


def test_same_seed_gives_the_same_episode_sequence():
    a = [sample_target(7, k, CFG.workspace) for k in range(20)]
    b = [sample_target(7, k, CFG.workspace) for k in range(20)]
    c = [sample_target(8, k, CFG.workspace) for k in range(20)]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert len({tuple(t) for t in a}) == 20


def test_episode_target_depends_only_on_seed_and_index():
    w = _world(seed=3)
    seq = [w.episode.target] + [w.reset().target for _ in range(4)]
    w2 = _world(seed=3)
    np.testing.assert_array_equal(w2.reset(index=4).target, seq[4])
    np.testing.assert_array_equal(seq[2], sample_target(3, 2, CFG.workspace))


def test_targets_lie_in_the_workspace_and_are_reachable_tool_down():
    ws = CFG.workspace
    for k in range(300):
        t = sample_target(11, k, ws)
        r, yaw = math.hypot(t[0], t[1]), math.atan2(t[1], t[0])
        assert ws.radius_m[0] <= r <= ws.radius_m[1]
        assert ws.yaw_rad[0] <= yaw <= ws.yaw_rad[1]
        assert t[2] == 0.0
        for height in (0.015, 0.08, 0.15):
            solve_ik(CFG, t + np.array([0.0, 0.0, height]))  # raises if out of limits


def test_success_needs_the_tip_held_in_the_goal():
    task = TaskConfig(success_radius_m=0.04, success_height_m=0.05, success_hold_s=0.3)
    ep = Episode(0, 0, np.array([0.25, 0.0, 0.0]), task)
    inside = np.array([0.27, 0.01, 0.02])
    for _ in range(10):
        ep.update(inside, 0.02)
    ep.update(np.array([0.25, 0.0, 0.08]), 0.02)  # too high: hold restarts
    assert not ep.success
    for _ in range(14):
        ep.update(inside, 0.02)
    assert not ep.success
    ep.update(inside, 0.02)
    assert ep.success and ep.done


def test_tip_outside_radius_is_not_success():
    ep = Episode(0, 0, np.array([0.25, 0.0, 0.0]), TaskConfig(success_hold_s=0.0))
    ep.update(np.array([0.25, 0.045, 0.01]), 0.01)
    assert not ep.success and not ep.done


def test_episode_times_out_as_failure():
    ep = Episode(0, 0, np.array([0.25, 0.0, 0.0]), TaskConfig(episode_timeout_s=1.0))
    for _ in range(100):
        ep.update(np.array([0.0, 0.0, 0.5]), 0.01)
    assert ep.done and not ep.success
    assert ep.as_dict() == {
        "index": 0,
        "seed": 0,
        "success": False,
        "elapsed_s": 1.0,
        "done": True,
        "wrong_disc": False,
    }


def test_world_reports_success_when_arm_holds_on_target():
    w = _world(seed=5)
    q = solve_ik(CFG, w.episode.target + np.array([0.0, 0.0, 0.015]))
    w.command_position(q, w.time)
    t = w.time
    while not w.episode.done and t < 5.0:
        t += 0.02
        w.command_position(q, t)
        w.advance_to(t)
    assert w.episode.success


@pytest.mark.parametrize(
    ("values", "message"),
    [([0.0, 0.0, 0.0], "expected 4"), ([0.0, math.nan, 0.0, 0.0], "non-finite"),
     ([0.0, 0.0, math.inf, 0.0], "non-finite")],
)  # fmt: skip
def test_bad_position_command_rejected(values, message):
    with pytest.raises(CommandError, match=message):
        validate_position_command(values, 4)


def test_advance_does_not_depend_on_call_granularity():
    a, b = _world(), _world()
    goal = CFG.home + np.array([0.8, 0.3, -0.4, 0.2])
    a.command_position(goal, 0.0)
    b.command_position(goal, 0.0)
    a.advance_to(1.0)
    t = 0.0
    while t < 1.0:
        t = min(1.0, t + 0.0137)
        b.advance_to(t)
    np.testing.assert_array_equal(a.arm.q, b.arm.q)
    assert a.time == pytest.approx(1.0)


def test_command_timeout_stops_and_holds():
    w = _world(command_timeout_s=0.3)
    start = w.arm.q.copy()
    goal = start + np.array([1.8, 0.0, 0.0, 0.0])
    w.command_position(goal, 0.0)
    w.advance_to(0.3)
    assert not w.holding
    w.advance_to(0.32)
    assert w.holding and w.timeouts == 1
    w.advance_to(1.5)
    held = w.arm.q.copy()
    w.advance_to(3.0)
    np.testing.assert_allclose(w.arm.q, held, atol=1e-9)
    assert start[0] < held[0] < goal[0] - 0.5  # stopped well short of the stale goal
    np.testing.assert_allclose(w.arm.v, 0.0, atol=1e-9)


def test_repeated_commands_keep_the_arm_moving():
    w = _world(command_timeout_s=0.3)
    goal = w.arm.q + np.array([1.5, 0.0, 0.0, 0.0])
    t = 0.0
    while t < 2.0:
        w.command_position(goal, t)
        t += 0.1
        w.advance_to(t)
    assert not w.holding
    np.testing.assert_allclose(w.arm.q, goal, atol=1e-3)


def _traj(points, stamp=0.0, now=10.0, names=NAMES, current=None):
    current = CFG.home if current is None else current
    return build_trajectory(NAMES, names, points, stamp, now, current)


def test_trajectory_interpolates_linearly_between_points():
    p1 = list(CFG.home + 0.2)
    p2 = list(CFG.home + 0.6)
    traj = _traj([(1.0, p1), (2.0, p2)], stamp=0.0, now=10.0)
    np.testing.assert_allclose(traj.setpoint(10.0)[0], CFG.home)  # entered from the current
    np.testing.assert_allclose(traj.setpoint(11.5)[0], CFG.home + 0.4)
    np.testing.assert_allclose(traj.setpoint(11.5)[1], np.full(4, 0.4))
    np.testing.assert_allclose(traj.setpoint(99.0)[0], CFG.home + 0.6)


def test_trajectory_joint_names_matched_in_any_order():
    names = list(reversed(NAMES))
    target = np.array([0.1, 0.2, 0.3, 0.4])  # in the arm's order
    traj = _traj([(0.5, list(target[::-1]))], names=names)
    np.testing.assert_allclose(traj.setpoint(11.0)[0], target)


def test_trajectory_points_in_the_past_are_skipped():
    pts = [(0.0, [0.0] * 4), (1.0, [1.0] * 4), (2.0, [2.0] * 4)]
    traj = _traj(pts, stamp=9.5, now=10.0)  # point 0 at 9.5 (past), point 1 at 10.5
    assert traj.times[0] == pytest.approx(9.5)
    np.testing.assert_allclose(traj.setpoint(10.0)[0], np.full(4, 0.5))
    np.testing.assert_allclose(traj.setpoint(11.0)[0], np.full(4, 1.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": [*NAMES[:3], "gripper"]}, "unknown \\['gripper'\\]"),
        ({"names": NAMES[:3]}, "missing \\['wrist_pitch'\\]"),
        ({"points": [(1.0, [0.0] * 3)]}, "3 positions for 4 joints"),
        ({"points": [(1.0, [0.0, math.nan, 0.0, 0.0])]}, "non-finite"),
        ({"points": [(1.0, [0.0] * 4), (1.0, [0.1] * 4)]}, "strictly increase"),
        ({"points": [(1.0, [0.0] * 4)], "stamp": 5.0}, "in the past"),
    ],
)
def test_bad_trajectory_rejected(kwargs, message):
    kwargs.setdefault("points", [(1.0, [0.0] * 4)])
    with pytest.raises(CommandError, match=message):
        _traj(**kwargs)


def test_empty_trajectory_means_stop_and_hold():
    w = _world()
    w.command_position(w.arm.q + 1.0, 0.0)
    w.advance_to(0.2)
    w.command_trajectory(_traj([], now=0.2), 0.2)
    assert w.holding
    w.advance_to(1.5)
    q = w.arm.q.copy()
    w.advance_to(2.0)
    np.testing.assert_allclose(w.arm.q, q, atol=1e-9)


def test_world_follows_a_trajectory_then_holds_its_last_point():
    w = _world(command_timeout_s=0.2)
    end = CFG.home + np.array([0.5, 0.2, -0.3, 0.1])
    mid = (CFG.home + end) / 2
    traj = build_trajectory(NAMES, NAMES, [(1.0, list(mid)), (2.0, list(end))], 0.0, 0.0,
                            w.current_setpoint())  # fmt: skip
    w.command_trajectory(traj, 0.0)
    w.advance_to(1.0)
    assert np.max(np.abs(w.arm.q - mid)) < 0.05  # tracking, a little behind
    w.advance_to(4.0)  # well past the end and the timeout: still at the last point
    np.testing.assert_allclose(w.arm.q, end, atol=1e-3)


def test_reset_snaps_the_arm_home_and_drops_commands():
    w = _world()
    w.command_position(CFG.home + 0.5, 0.0)
    w.advance_to(1.0)
    ep = w.reset()
    assert ep.index == 1
    np.testing.assert_array_equal(w.arm.q, CFG.home)
    w.advance_to(2.0)
    np.testing.assert_array_equal(w.arm.q, CFG.home)
    tip = ArmKinematics(CFG).tip(w.arm.q)
    assert tip[2] > 0.1  # home hovers above the table
