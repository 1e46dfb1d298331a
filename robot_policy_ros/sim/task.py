"""The reach task: a target disc on the table, seeded episodes and geometric success.

The target of episode ``k`` under seed ``s`` depends only on ``(s, k)``, so the same seed
always gives the same sequence of episodes and evaluating on a seed never used for
recording gives unseen episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_policy_ros.sim.arm import Workspace

# Large prime so (seed, index) pairs map to distinct generator seeds for any realistic
# number of episodes per seed.
_SEED_STRIDE = 100_003


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

    def __post_init__(self) -> None:
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


class Episode:
    """One episode's state: its target, elapsed time, hold time, success and done flags."""

    def __init__(self, seed: int, index: int, target: np.ndarray, config: TaskConfig) -> None:
        self.seed = int(seed)
        self.index = int(index)
        self.target = np.asarray(target, dtype=np.float64)
        self.config = config
        self.elapsed_s = 0.0
        self.hold_s = 0.0
        self.success = False
        self.done = False

    def in_goal(self, tip: np.ndarray) -> bool:
        """Whether the tool tip is inside the goal region (ignores the hold time)."""
        dx = tip[0] - self.target[0]
        dy = tip[1] - self.target[1]
        return (
            dx * dx + dy * dy < self.config.success_radius_m**2
            and tip[2] < self.config.success_height_m
        )

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
