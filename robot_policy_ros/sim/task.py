"""The sim's tasks: target discs on the table, seeded episodes and geometric success.

- ``reach``: one target disc; touch it.
- ``two_targets``: two identical target discs; touching either one is a success. The
  scripted expert picks one at random per episode, so the demonstrations are multimodal
  and their mean (the midpoint between the discs) is a failure: the discs are at least
  ``TWO_TARGETS_MIN_SEPARATION_M`` apart, so the midpoint is outside both goal regions.

The targets of episode ``k`` under seed ``s`` depend only on ``(s, k)``, so the same seed
always gives the same sequence of episodes and evaluating on a seed never used for
recording gives unseen episodes. The first target of a ``two_targets`` episode is the
``reach`` target of the same ``(s, k)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_policy_ros.sim.arm import Workspace

# Large prime so (seed, index) pairs map to distinct generator seeds for any realistic
# number of episodes per seed.
_SEED_STRIDE = 100_003

TASKS = ("reach", "two_targets")
# Far enough apart that the midpoint is outside both goal regions (radius 0.04 m by
# default) by a wide margin, and the two reaches look clearly different on camera.
TWO_TARGETS_MIN_SEPARATION_M = 0.15


@dataclass(frozen=True)
class TaskConfig:
    """Success criterion and episode limits.

    Success: the tool tip is within ``success_radius_m`` of the target centre horizontally
    and below ``success_height_m`` above the table, continuously for ``success_hold_s``.
    An episode is done on success or after ``episode_timeout_s`` (0 = never times out).
    """

    success_radius_m: float = 0.04
    success_height_m: float = 0.05
    success_hold_s: float = 0.3
    episode_timeout_s: float = 20.0
    task: str = "reach"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"TaskConfig.task {self.task!r} is not one of {TASKS}")
        for name in ("success_radius_m", "success_height_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TaskConfig.{name} must be > 0")
        if self.success_hold_s < 0 or self.episode_timeout_s < 0:
            raise ValueError("TaskConfig success_hold_s and episode_timeout_s must be >= 0")


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of episode ``index`` under ``seed`` (independent of others)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), _SEED_STRIDE])


def sample_target(seed: int, index: int, workspace: Workspace) -> np.ndarray:
    """Target centre (x, y, 0) of episode ``index``: uniform over the workspace sector area."""
    rng = episode_rng(seed, index)
    r0, r1 = workspace.radius_m
    # Uniform in area: r^2 uniform, so the outer part is not under-sampled.
    r = math.sqrt(rng.uniform(r0 * r0, r1 * r1))
    yaw = rng.uniform(*workspace.yaw_rad)
    return np.array([r * math.cos(yaw), r * math.sin(yaw), 0.0])


def sample_targets(seed: int, index: int, workspace: Workspace, task: str = "reach") -> np.ndarray:
    """Target centres (n, 3) of episode ``index`` of ``task`` (n = 1 for reach, 2 for
    two_targets; the first is always :func:`sample_target`'s)."""
    first = sample_target(seed, index, workspace)
    if task == "reach":
        return first[None]
    if task != "two_targets":
        raise ValueError(f"unknown task {task!r}; use one of {TASKS}")
    # Its own stream, so the first target stays the reach target of (seed, index).
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), _SEED_STRIDE, 2])
    r0, r1 = workspace.radius_m
    for _ in range(1000):
        r = math.sqrt(rng.uniform(r0 * r0, r1 * r1))
        yaw = rng.uniform(*workspace.yaw_rad)
        second = np.array([r * math.cos(yaw), r * math.sin(yaw), 0.0])
        if np.hypot(*(second[:2] - first[:2])) >= TWO_TARGETS_MIN_SEPARATION_M:
            return np.stack([first, second])
    raise ValueError(
        f"workspace {workspace} too small for two targets {TWO_TARGETS_MIN_SEPARATION_M} m apart"
    )


class Episode:
    """One episode's state: its targets, elapsed time, hold time, success and done flags.

    ``target`` may be one centre (3,) or several (n, 3); being in the goal region of any
    of them counts (``target`` is the first, ``targets`` all of them).
    """

    def __init__(self, seed: int, index: int, target: np.ndarray, config: TaskConfig) -> None:
        self.seed = int(seed)
        self.index = int(index)
        self.targets = np.atleast_2d(np.asarray(target, dtype=np.float64))
        self.target = self.targets[0]
        self.config = config
        self.elapsed_s = 0.0
        self.hold_s = 0.0
        self.success = False
        self.done = False

    def in_goal(self, tip: np.ndarray) -> bool:
        """Whether the tool tip is inside the goal region of any target (ignores the hold
        time)."""
        if not tip[2] < self.config.success_height_m:
            return False
        r2 = self.config.success_radius_m**2
        for target in self.targets:
            dx = tip[0] - target[0]
            dy = tip[1] - target[1]
            if dx * dx + dy * dy < r2:
                return True
        return False

    def update(self, tip: np.ndarray, dt: float) -> bool:
        """Advance by ``dt`` with the tip at ``tip``; returns True if done/success changed."""
        if self.done:
            return False
        self.elapsed_s += dt
        if self.in_goal(tip):
            self.hold_s += dt
            # Tolerance: the hold is counted in whole physics steps.
            if self.hold_s >= self.config.success_hold_s - 1e-9:
                self.success = True
                self.done = True
                return True
        else:
            self.hold_s = 0.0
        timeout = self.config.episode_timeout_s
        if timeout > 0 and self.elapsed_s >= timeout - 1e-9:
            self.done = True
            return True
        return False

    def as_dict(self) -> dict:
        """The public episode state (the ~/episode JSON); no privileged target."""
        return {
            "index": self.index,
            "seed": self.seed,
            "success": self.success,
            "elapsed_s": round(self.elapsed_s, 4),
            "done": self.done,
        }
