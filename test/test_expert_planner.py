"""Scripted expert planner: IK round trips, minimum-jerk profile, limits, success."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from robot_policy_ros.sim.arm import (
    ArmKinematics,
    arm_config_from_dict,
    default_arm_config_path,
    load_arm_config,
)
from robot_policy_ros.sim.expert import (
    TOOL_DOWN,
    ExpertConfig,
    ExpertPlanner,
    IKError,
    min_jerk,
    min_jerk_velocity,
    solve_ik,
)
from robot_policy_ros.sim.task import TaskConfig, sample_target
from robot_policy_ros.sim.world import SimWorld

CFG = load_arm_config()
KIN = ArmKinematics(CFG)


def test_ik_round_trips_through_fk_with_the_tool_pointing_down():
    rng = np.random.default_rng(0)
    for _ in range(300):
        r, yaw, z = rng.uniform(0.15, 0.35), rng.uniform(-1.0, 1.0), rng.uniform(0.0, 0.2)
        p = np.array([r * math.cos(yaw), r * math.sin(yaw), z])
        q = solve_ik(CFG, p)
        np.testing.assert_allclose(KIN.tip(q), p, atol=1e-9)
        assert KIN.tool_angle(q) == pytest.approx(TOOL_DOWN)
        assert np.all(q >= CFG.lower) and np.all(q <= CFG.upper)


def test_ik_recovers_the_home_pose():
    q = solve_ik(CFG, KIN.tip(CFG.home), tool_angle=KIN.tool_angle(CFG.home))
    np.testing.assert_allclose(q, CFG.home, atol=1e-9)


@pytest.mark.parametrize("point", [[0.9, 0.0, 0.0], [0.0, 0.0, 0.9], [0.3, 0.0, -0.5]])
def test_ik_out_of_reach_raises(point):
    with pytest.raises(IKError):
        solve_ik(CFG, np.array(point))


def test_numeric_ik_handles_a_five_joint_arm():
    data = yaml.safe_load(default_arm_config_path().read_text())
    data["joints"].insert(
        3, {"name": "elbow2", "lower": -2.0, "upper": 2.0, "max_velocity": 1.8,
            "max_acceleration": 8.0},
    )  # fmt: skip
    data["links"]["lengths"] = [0.18, 0.14, 0.12, 0.08]
    data["home"] = [0.0, 0.2, 0.8, 0.8, 1.2]
    cfg5 = arm_config_from_dict(data)
    kin5 = ArmKinematics(cfg5)
    for k in range(20):
        p = sample_target(1, k, cfg5.workspace) + np.array([0.0, 0.0, 0.03])
        q = solve_ik(cfg5, p)
        np.testing.assert_allclose(kin5.tip(q), p, atol=1e-4)
        assert kin5.tool_angle(q) == pytest.approx(TOOL_DOWN, abs=1e-3)


def test_min_jerk_boundary_conditions():
    q0, q1, dur = np.array([0.0, 1.0]), np.array([2.0, -1.0]), 2.0
    np.testing.assert_allclose(min_jerk(q0, q1, 0.0), q0)
    np.testing.assert_allclose(min_jerk(q0, q1, 1.0), q1)
    np.testing.assert_allclose(min_jerk(q0, q1, 0.5), (q0 + q1) / 2)
    np.testing.assert_allclose(min_jerk_velocity(q0, q1, 0.0, dur), 0.0)
    np.testing.assert_allclose(min_jerk_velocity(q0, q1, 1.0, dur), 0.0)
    # Acceleration zero at both ends (finite differences of the velocity).
    h = 1e-5
    acc0 = (min_jerk_velocity(q0, q1, h, dur) - min_jerk_velocity(q0, q1, 0.0, dur)) / (h * dur)
    acc1 = (min_jerk_velocity(q0, q1, 1.0, dur) - min_jerk_velocity(q0, q1, 1 - h, dur)) / (h * dur)
    np.testing.assert_allclose(acc0, 0.0, atol=1e-3)
    np.testing.assert_allclose(acc1, 0.0, atol=1e-3)
    # Peak speed 1.875 * distance / duration at the middle.
    np.testing.assert_allclose(min_jerk_velocity(q0, q1, 0.5, dur), 1.875 * (q1 - q0) / dur)


def test_plan_stays_within_the_speed_fraction_of_the_limits():
    planner = ExpertPlanner(CFG, ExpertConfig(speed=0.5))
    for k in range(20):
        plan = planner.plan(CFG.home, sample_target(4, k, CFG.workspace), 0.0)
        ts = np.linspace(plan.start_time, plan.end_time, 2000)
        v = np.array([plan.velocity(t) for t in ts])
        assert np.all(np.abs(v) <= 0.5 * CFG.max_velocity + 1e-9)
        q = np.array([plan.sample(t) for t in ts])
        assert np.all(np.abs(np.diff(q, axis=0)) < 0.01)  # smooth, no jumps
        np.testing.assert_allclose(plan.sample(plan.start_time), CFG.home)


def test_plan_ends_touching_the_target_and_starts_above_it():
    planner = ExpertPlanner(CFG)
    target = sample_target(4, 0, CFG.workspace)
    plan = planner.plan(CFG.home, target, 5.0)
    np.testing.assert_allclose(KIN.tip(plan.final), target + np.array([0, 0, 0.015]), atol=1e-9)
    hover = KIN.tip(plan.segments[-1].q0)
    np.testing.assert_allclose(hover, target + np.array([0, 0, 0.08]), atol=1e-9)
    assert plan.start_time == 5.0


def test_plan_from_a_low_pose_lifts_first():
    planner = ExpertPlanner(CFG)
    low = solve_ik(CFG, sample_target(4, 0, CFG.workspace) + np.array([0, 0, 0.015]))
    plan = planner.plan(low, sample_target(4, 1, CFG.workspace), 0.0)
    assert len(plan.segments) == 3
    assert KIN.tip(plan.segments[0].q1)[2] == pytest.approx(0.08)


def _run_expert(seed: int, episodes: int, noise_std: float = 0.0) -> tuple[int, list]:
    world = SimWorld(CFG, TaskConfig(), seed=seed)
    planner = ExpertPlanner(CFG, ExpertConfig(noise_std=noise_std))
    wins, finals = 0, []
    for k in range(episodes):
        world.reset(index=k)
        t = world.time
        rng = np.random.default_rng([seed, k])
        plan = planner.plan(world.arm.q, world.episode.target, t, rng)
        while not world.episode.done:
            world.command_position(CFG.clamp(plan.sample(t)), t)
            t += 0.02
            world.advance_to(t)
        wins += world.episode.success
        finals.append(plan.final)
    return wins, finals


def test_expert_succeeds_on_seeded_episodes():
    wins, _ = _run_expert(seed=123, episodes=25)
    assert wins == 25


def test_noisy_expert_varies_its_motion_and_still_succeeds():
    wins, noisy = _run_expert(seed=5, episodes=10, noise_std=0.02)
    _, clean = _run_expert(seed=5, episodes=10)
    assert wins == 10
    assert not np.allclose(noisy, clean)
