"""The scripted expert driving the pure simulation (no ROS), faster than real time.

Exactly as the scripted_expert node drives the sim_robot node: one plan per episode from
the arm's pose at the reset, to the target :func:`choose_target` picks, sampled and sent
as position commands at ``rate_hz``. Used by benchmarks/expert_success.py and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_policy_ros.sim.expert import ExpertPlanner, choose_target
from robot_policy_ros.sim.task import expert_start_delay_s
from robot_policy_ros.sim.world import SimWorld


@dataclass(frozen=True)
class ExpertEpisode:
    """Outcome of one expert episode."""

    index: int
    success: bool
    elapsed_s: float
    choice: int  # index of the target the expert went to


def run_expert_episode(
    world: SimWorld,
    planner: ExpertPlanner,
    index: int,
    rate_hz: float = 50.0,
    seed: int = 0,
    noise_rng: np.random.Generator | None = None,
    start_delay_s: float | None = None,
) -> ExpertEpisode:
    """Reset ``world`` to episode ``index`` and let the expert (``seed``: its coin) run it
    until done; ``world`` needs a finite episode timeout. The expert holds the arm for
    ``start_delay_s`` before it moves (None: the task's :func:`expert_start_delay_s`)."""
    if not world.task_config.episode_timeout_s > 0:
        raise ValueError("run_expert_episode needs a task with an episode timeout")
    world.reset(index=index)
    choice = choose_target(world.episode.targets, seed)
    t = world.time
    if start_delay_s is None:
        start_delay_s = expert_start_delay_s(world.task_config.task)
    plan = planner.plan(world.arm.q, world.episode.targets[choice], t + start_delay_s, noise_rng)
    period = 1.0 / rate_hz
    while not world.episode.done:
        world.command_position(world.config.clamp(plan.sample(t)), t)
        t += period
        world.advance_to(t)
    return ExpertEpisode(index, world.episode.success, world.episode.elapsed_s, choice)
