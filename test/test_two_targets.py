"""The two_targets task without ROS: seeded targets, either-target success, a failing
midpoint, a 50/50 expert that solves it, and both discs rendered; reach is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.sim.arm import load_arm_config
from robot_policy_ros.sim.expert import ExpertConfig, ExpertPlanner, choose_target
from robot_policy_ros.sim.render import TARGET, Renderer
from robot_policy_ros.sim.rollout import run_expert_episode
from robot_policy_ros.sim.task import (
    TWO_TARGETS_MIN_SEPARATION_M,
    Episode,
    TaskConfig,
    sample_target,
    sample_targets,
)
from robot_policy_ros.sim.world import SimWorld

CFG = load_arm_config()
TWO = TaskConfig(task="two_targets")


def _hold_at(ep: Episode, tip: np.ndarray, seconds: float = 1.0, dt: float = 0.002) -> None:
    for _ in range(round(seconds / dt)):
        ep.update(tip, dt)


def test_reach_targets_are_unchanged_single_targets():
    for k in range(20):
        targets = sample_targets(4, k, CFG.workspace, "reach")
        assert targets.shape == (1, 3)
        np.testing.assert_array_equal(targets[0], sample_target(4, k, CFG.workspace))


def test_two_targets_are_seeded_separated_and_keep_the_reach_target_first():
    for k in range(200):
        a = sample_targets(9, k, CFG.workspace, "two_targets")
        np.testing.assert_array_equal(a, sample_targets(9, k, CFG.workspace, "two_targets"))
        assert a.shape == (2, 3)
        np.testing.assert_array_equal(a[0], sample_target(9, k, CFG.workspace))
        assert np.hypot(*(a[1, :2] - a[0, :2])) >= TWO_TARGETS_MIN_SEPARATION_M
        assert np.all(a[:, 2] == 0.0)


@pytest.mark.parametrize("which", [0, 1])
def test_either_target_counts_as_success(which):
    targets = sample_targets(1, 3, CFG.workspace, "two_targets")
    ep = Episode(1, 3, targets, TWO)
    _hold_at(ep, targets[which] + np.array([0.0, 0.0, 0.015]))
    assert ep.success and ep.done


def test_the_midpoint_of_the_two_targets_is_a_failure():
    for k in range(50):
        targets = sample_targets(2, k, CFG.workspace, "two_targets")
        ep = Episode(2, k, targets, TaskConfig(task="two_targets", episode_timeout_s=1.0))
        mid = targets.mean(axis=0) + np.array([0.0, 0.0, 0.015])
        assert not ep.in_goal(mid)
        _hold_at(ep, mid, seconds=1.2)
        assert ep.done and not ep.success


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="task"):
        TaskConfig(task="stack_blocks")


def test_expert_choice_is_seeded_and_balanced():
    choices = [
        choose_target(sample_targets(5, k, CFG.workspace, "two_targets"), seed=0)
        for k in range(400)
    ]
    again = [
        choose_target(sample_targets(5, k, CFG.workspace, "two_targets"), seed=0)
        for k in range(400)
    ]
    other_seed = [
        choose_target(sample_targets(5, k, CFG.workspace, "two_targets"), seed=1)
        for k in range(400)
    ]
    assert choices == again
    assert choices != other_seed
    assert 0.4 < np.mean(choices) < 0.6  # each target about half the time
    assert choose_target(sample_targets(5, 0, CFG.workspace, "reach"), seed=0) == 0


def test_expert_choice_does_not_follow_which_target_is_nearer_home():
    tip_home = np.array([0.25, 0.0])
    nearer, chosen = [], []
    for k in range(400):
        targets = sample_targets(6, k, CFG.workspace, "two_targets")
        d = np.hypot(*(targets[:, :2] - tip_home).T)
        nearer.append(int(np.argmin(d)))
        chosen.append(choose_target(targets, seed=3))
    agreement = np.mean(np.asarray(nearer) == np.asarray(chosen))
    assert 0.4 < agreement < 0.6


def test_expert_solves_two_targets_in_at_least_95_percent_of_100_episodes():
    world = SimWorld(CFG, TaskConfig(task="two_targets"), seed=1000)
    planner = ExpertPlanner(CFG, ExpertConfig())
    results = [run_expert_episode(world, planner, k, seed=0) for k in range(100)]
    assert sum(r.success for r in results) >= 95
    assert {r.choice for r in results} == {0, 1}


def test_both_target_discs_are_rendered():
    r = Renderer(CFG, CFG.cameras["top"], 320, 240)
    for k in range(5):
        targets = sample_targets(3, k, CFG.workspace, "two_targets")
        img = r.render(np.zeros(4), targets)
        uv, _ = r.camera.project(targets)
        for u, v in np.round(uv).astype(int):
            np.testing.assert_array_equal(img[v, u], TARGET)


def test_single_target_render_is_unchanged_by_the_two_target_support():
    r = Renderer(CFG, CFG.cameras["front"], 160, 120)
    target = sample_target(0, 4, CFG.workspace)
    np.testing.assert_array_equal(r.render(CFG.home, target), r.render(CFG.home, target[None]))
