"""The cued_targets task: three discs, one cued in green for the first CUE_VISIBLE_S; only
the cued disc counts and touching another fails; the expert holds at home until after the
cue is gone and then solves it; the cue is drawn only while visible. Plus the sim_robot and
scripted_expert nodes running it over real DDS."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.demo.config import demo_sizes, family_train_args
from robot_policy_ros.sim.arm import load_arm_config
from robot_policy_ros.sim.expert import ExpertConfig, ExpertPlanner, choose_target
from robot_policy_ros.sim.render import CUE, TARGET, Renderer
from robot_policy_ros.sim.rollout import run_expert_episode
from robot_policy_ros.sim.task import (
    CUE_VISIBLE_S,
    CUED_EXPERT_WAIT_S,
    CUED_TARGETS_COUNT,
    TWO_TARGETS_MIN_SEPARATION_M,
    Episode,
    TaskConfig,
    expert_start_delay_s,
    sample_layout,
    sample_target,
)
from robot_policy_ros.sim.world import SimWorld
from robot_policy_ros.training.train_cli import parse_overrides

CFG = load_arm_config()
CUED = TaskConfig(task="cued_targets")
TOUCH = np.array([0.0, 0.0, 0.015])


def _hold_at(ep: Episode, tip: np.ndarray, seconds: float = 1.0, dt: float = 0.002) -> None:
    for _ in range(round(seconds / dt)):
        ep.update(tip, dt)


def _episode(seed: int, k: int, config: TaskConfig = CUED) -> tuple[Episode, np.ndarray, int]:
    layout = sample_layout(seed, k, CFG.workspace, "cued_targets")
    goals = layout.discs[list(layout.goals)]
    return Episode(seed, k, goals, config, layout.discs, layout.cue), layout.discs, layout.cue


def test_layout_is_seeded_three_separated_discs_with_the_reach_target_first():
    for k in range(200):
        a = sample_layout(9, k, CFG.workspace, "cued_targets")
        b = sample_layout(9, k, CFG.workspace, "cued_targets")
        np.testing.assert_array_equal(a.discs, b.discs)
        assert a.cue == b.cue and a.goals == (a.cue,)
        assert a.discs.shape == (CUED_TARGETS_COUNT, 3)
        np.testing.assert_array_equal(a.discs[0], sample_target(9, k, CFG.workspace))
        for i in range(3):
            for j in range(i):
                assert np.hypot(*(a.discs[i, :2] - a.discs[j, :2])) >= TWO_TARGETS_MIN_SEPARATION_M


def test_cue_is_balanced_and_not_a_geometric_rule():
    """Over episodes each disc is cued about a third of the time, whatever its bearing (so
    the leftmost or nearest disc is no better a guess than any other)."""
    cues, ranks, nearest = [], [], []
    for k in range(600):
        layout = sample_layout(7777, k, CFG.workspace, "cued_targets")
        yaw = np.arctan2(layout.discs[:, 1], layout.discs[:, 0])
        cues.append(layout.cue)
        ranks.append(int(np.argsort(np.argsort(yaw))[layout.cue]))
        dist = np.hypot(*(layout.discs[:, :2] - np.array([0.25, 0.0])).T)
        nearest.append(int(np.argmin(dist)) == layout.cue)
    for counts in (np.bincount(cues, minlength=3), np.bincount(ranks, minlength=3)):
        assert np.all(np.abs(counts / 600 - 1 / 3) < 0.07), counts
    assert abs(np.mean(nearest) - 1 / 3) < 0.07


def test_only_the_cued_disc_is_a_success():
    ep, discs, cue = _episode(1, 3)
    _hold_at(ep, discs[cue] + TOUCH)
    assert ep.success and ep.done and not ep.wrong_disc


@pytest.mark.parametrize("offset", [1, 2])
def test_touching_another_disc_ends_the_episode_as_a_failure(offset):
    ep, discs, cue = _episode(1, 3)
    wrong = discs[(cue + offset) % 3] + TOUCH
    assert not ep.in_goal(wrong)
    _hold_at(ep, wrong, seconds=CUED.success_hold_s + 0.1)
    assert ep.done and not ep.success and ep.wrong_disc
    assert ep.as_dict()["wrong_disc"] is True
    _hold_at(ep, discs[cue] + TOUCH)  # too late: the episode is over
    assert not ep.success


def test_passing_over_another_disc_is_not_a_failure():
    ep, discs, cue = _episode(1, 4)
    _hold_at(ep, discs[(cue + 1) % 3] + TOUCH, seconds=CUED.success_hold_s * 0.5)
    _hold_at(ep, discs[cue] + TOUCH)
    assert ep.success and not ep.wrong_disc


def test_reach_and_two_targets_have_no_wrong_disc_and_no_cue():
    for task in ("reach", "two_targets"):
        layout = sample_layout(2, 5, CFG.workspace, task)
        assert layout.cue is None and layout.goals == tuple(range(len(layout.discs)))
        assert expert_start_delay_s(task) == 0.0
    assert expert_start_delay_s("cued_targets") == CUED_EXPERT_WAIT_S


def test_cue_shows_only_for_the_first_cue_seconds_of_each_episode():
    world = SimWorld(CFG, CUED, seed=3)
    for k in range(3):
        world.reset(k)
        t0 = world.time
        assert world.snapshot().cue == world.episode.cue is not None
        world.advance_to(t0 + CUE_VISIBLE_S - 0.01)
        assert world.snapshot().cue == world.episode.cue
        world.advance_to(t0 + CUE_VISIBLE_S + 0.01)
        assert world.snapshot().cue is None
        assert len(world.snapshot().target) == 3  # every disc is still drawn


def test_cue_is_drawn_on_the_cued_disc_only_while_visible():
    r = Renderer(CFG, CFG.cameras["top"], 320, 240)
    for k in range(5):
        layout = sample_layout(3, k, CFG.workspace, "cued_targets")
        shown = r.render(np.zeros(4), layout.discs, cue=layout.cue)
        hidden = r.render(np.zeros(4), layout.discs)
        uv, _ = r.camera.project(layout.discs)
        for i, (u, v) in enumerate(np.round(uv).astype(int)):
            np.testing.assert_array_equal(shown[v, u], CUE if i == layout.cue else TARGET)
            np.testing.assert_array_equal(hidden[v, u], TARGET)


def test_expert_solves_cued_targets_in_at_least_95_percent_of_100_episodes():
    world = SimWorld(CFG, CUED, seed=1000)
    planner = ExpertPlanner(CFG, ExpertConfig(noise_std=0.01))
    results = [
        run_expert_episode(world, planner, k, noise_rng=np.random.default_rng(k))
        for k in range(100)
    ]
    assert sum(r.success for r in results) >= 95
    # The expert went to the cued disc (the only target it is given), never another.
    assert all(r.choice == 0 for r in results)


def test_expert_holds_at_home_until_well_after_the_cue_is_gone():
    """What makes the demonstrations non-Markovian: while the cue shows and for
    CUED_EXPERT_WAIT_S - CUE_VISIBLE_S after, the commands are the home pose, so the
    frames and joint states right after the cue vanishes are the same whichever disc was
    cued."""
    world = SimWorld(CFG, CUED, seed=5)
    planner = ExpertPlanner(CFG, ExpertConfig(noise_std=0.01))
    for k in range(10):
        world.reset(k)
        t0 = world.time
        target = world.episode.targets[choose_target(world.episode.targets, 0)]
        plan = planner.plan(world.arm.q, target, t0 + expert_start_delay_s("cued_targets"))
        for t in np.arange(t0, t0 + CUED_EXPERT_WAIT_S, 0.02):
            np.testing.assert_allclose(plan.sample(t), CFG.home, atol=1e-12)
        assert np.max(np.abs(plan.sample(t0 + CUED_EXPERT_WAIT_S + 0.5) - CFG.home)) > 0.05


def test_demo_chunks_span_the_gap_between_cue_and_move():
    """ACT's and Diffusion's demo chunks on cued_targets, predicted while the cue shows,
    still run when the expert starts moving; the reach sizes are unchanged."""
    fps = 15.0
    act, diff = demo_sizes("act", "cued_targets"), demo_sizes("diffusion", "cued_targets")
    assert act["chunk_size"] / fps > CUED_EXPERT_WAIT_S + 0.5
    assert diff["n_action_steps"] / fps > CUED_EXPERT_WAIT_S + 0.5
    assert diff["horizon"] >= diff["n_action_steps"]
    assert demo_sizes("act") == demo_sizes("act", "reach") != act
    args = family_train_args("act", "cued_targets")
    assert parse_overrides(args[1::2]) == act


@pytest.mark.ros
def test_sim_and_expert_nodes_run_cued_episodes_through_topics(start_node, rclpy_context):
    pytest.importorskip("rclpy")
    from test_sim_robot_node import SMALL, SimProbe

    start_node(
        "robot_policy_ros.nodes.sim_robot", *SMALL, "-p", "seed:=3", "-p", "task:=cued_targets"
    )
    start_node(
        "robot_policy_ros.nodes.scripted_expert", "-p", "noise_std:=0.01",
        "-p", "task:=cued_targets",
    )  # fmt: skip
    probe = SimProbe(rclpy_context)
    probe.wait_ready()
    topic = "/forward_position_controller/commands"
    assert probe.spin_until(lambda: probe.node.count_publishers(topic) >= 2, 20.0)
    probe.spin_for(0.5)
    for k in (1, 2):
        assert probe.reset()["index"] == k
        after = len(probe.joint_states)
        assert probe.spin_until(
            lambda k=k: (
                bool(probe.episodes)
                and probe.episodes[-1]["index"] == k
                and probe.episodes[-1]["done"]
            ),
            15.0,
        )
        ep = probe.episodes[-1]
        assert ep["success"] and not ep["wrong_disc"], ep
        assert ep["elapsed_s"] > CUED_EXPERT_WAIT_S
        # The arm stayed home while the cue showed and a while after. From the first state
        # at home: one published before the reset (at the last disc) may arrive after it.
        states = probe.joint_states[after:]
        first = next(i for i, s in enumerate(states) if np.max(np.abs(s[3] - CFG.home)) < 0.02)
        t_home = states[first][1]
        early = [s[3] for s in states[first:] if s[1] - t_home < CUE_VISIBLE_S + 0.2]
        assert len(early) > 10 and np.max(np.abs(np.array(early) - CFG.home)) < 0.02
