"""The sim's tasks: target discs on the table, seeded episodes and geometric success.

- ``reach``: one target disc; touch it.
- ``two_targets``: two identical target discs; touching either one is a success. The
  scripted expert picks one at random per episode, so the demonstrations are multimodal
  and their mean (the midpoint between the discs) is a failure: the discs are at least
  ``TWO_TARGETS_MIN_SEPARATION_M`` apart, so the midpoint is outside both goal regions.
- ``cued_targets``: three identical discs; for the first ``CUE_VISIBLE_S`` of the episode
  one of them (a seeded coin) is shown in the cue colour, then it looks like the others.
  Only that disc counts; touching another ends the episode as a failure. The expert waits
  ``CUED_EXPERT_WAIT_S`` at home before it moves, so when the arm starts moving nothing
  in the current frame or joint state says which disc is right: the task is
  non-Markovian, and a policy that maps the current frame alone to its next actions
  can do no better than guess (one in three). A policy whose action chunk, predicted
  while the cue was visible, runs on past the start of the move can carry the cue.

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

TASKS = ("reach", "two_targets", "cued_targets")
# Far enough apart that the midpoint is outside both goal regions (radius 0.04 m by
# default) by a wide margin, and the two reaches look clearly different on camera.
TWO_TARGETS_MIN_SEPARATION_M = 0.15
CUED_TARGETS_COUNT = 3
# The cue is seen in ~6 frames at 15 Hz; the expert's wait leaves 0.6 s between the cue
# vanishing and the first motion, longer than the part of a chunk a policy with 0.67 s
# chunks executes (see doc/demo.md), shorter than a 2 s chunk.
CUE_VISIBLE_S = 0.4
CUED_EXPERT_WAIT_S = 1.0


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


def expert_start_delay_s(task: str) -> float:
    """How long the scripted expert waits after a reset before it moves, in ``task``."""
    return CUED_EXPERT_WAIT_S if task == "cued_targets" else 0.0


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
    """Every disc centre (n, 3) of episode ``index`` of ``task`` (n = 1 for reach, 2 for
    two_targets, 3 for cued_targets; the first is always :func:`sample_target`'s), each
    at least ``TWO_TARGETS_MIN_SEPARATION_M`` from the others."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS}")
    first = sample_target(seed, index, workspace)
    count = {"reach": 1, "two_targets": 2, "cued_targets": CUED_TARGETS_COUNT}[task]
    # Its own stream, so the first target stays the reach target of (seed, index).
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), _SEED_STRIDE, 2])
    r0, r1 = workspace.radius_m
    # Rejection sampling; an early disc can leave no room for a later one, so start the
    # others over a few times before giving up.
    for _ in range(20):
        discs = [first]
        for _ in range(1000):
            if len(discs) == count:
                return np.stack(discs)
            r = math.sqrt(rng.uniform(r0 * r0, r1 * r1))
            yaw = rng.uniform(*workspace.yaw_rad)
            new = np.array([r * math.cos(yaw), r * math.sin(yaw), 0.0])
            if all(np.hypot(*(new[:2] - d[:2])) >= TWO_TARGETS_MIN_SEPARATION_M for d in discs):
                discs.append(new)
        if len(discs) == count:
            return np.stack(discs)
    raise ValueError(
        f"workspace {workspace} too small for {count} targets"
        f" {TWO_TARGETS_MIN_SEPARATION_M} m apart"
    )


@dataclass(frozen=True)
class EpisodeLayout:
    """What episode ``index`` of a task puts on the table.

    discs: every disc centre (n, 3), drawn identically except for the cue.
    goals: indices of the discs whose goal region is a success (the rest are wrong).
    cue: index of the disc drawn in the cue colour for the first ``CUE_VISIBLE_S``, or None.
    """

    discs: np.ndarray
    goals: tuple[int, ...]
    cue: int | None = None


def sample_layout(
    seed: int, index: int, workspace: Workspace, task: str = "reach"
) -> EpisodeLayout:
    """The discs, goals and cue of episode ``index`` of ``task`` under ``seed``."""
    discs = sample_targets(seed, index, workspace, task)
    if task != "cued_targets":
        return EpisodeLayout(discs, tuple(range(len(discs))))
    # Its own stream: the cued disc is independent of where the discs are, so nothing
    # about the layout (nearest, leftmost) tells it; only the cue does.
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), _SEED_STRIDE, 3])
    cue = int(rng.integers(len(discs)))
    return EpisodeLayout(discs, (cue,), cue)


class Episode:
    """One episode's state: its targets, elapsed time, hold time, success and done flags.

    ``target`` may be one centre (3,) or several (n, 3); being in the goal region of any
    of them counts (``target`` is the first, ``targets`` all of them). ``discs`` (default:
    the targets) are every disc on the table: holding the tip on a disc that is not a
    target for ``success_hold_s`` ends the episode as a failure (``wrong_disc``).
    ``cue`` indexes the disc shown in the cue colour while ``cue_visible``.
    """

    def __init__(
        self,
        seed: int,
        index: int,
        target: np.ndarray,
        config: TaskConfig,
        discs: np.ndarray | None = None,
        cue: int | None = None,
    ) -> None:
        self.seed = int(seed)
        self.index = int(index)
        self.targets = np.atleast_2d(np.asarray(target, dtype=np.float64))
        self.target = self.targets[0]
        self.discs = self.targets if discs is None else np.atleast_2d(np.asarray(discs, float))
        # Discs that are not targets (compared by position: a target is one of the discs).
        self._wrong = np.array(
            [d for d in self.discs if not np.any(np.all(np.isclose(self.targets, d), axis=1))]
        ).reshape(-1, 3)
        self.cue = cue
        self.config = config
        self.elapsed_s = 0.0
        self.hold_s = 0.0
        self.wrong_hold_s = 0.0
        self.success = False
        self.wrong_disc = False
        self.done = False

    @property
    def cue_visible(self) -> bool:
        """Whether the cue is shown now (the first ``CUE_VISIBLE_S`` of the episode)."""
        return self.cue is not None and self.elapsed_s < CUE_VISIBLE_S

    def _on_any(self, tip: np.ndarray, centres: np.ndarray) -> bool:
        if not tip[2] < self.config.success_height_m:
            return False
        r2 = self.config.success_radius_m**2
        for centre in centres:
            dx = tip[0] - centre[0]
            dy = tip[1] - centre[1]
            if dx * dx + dy * dy < r2:
                return True
        return False

    def in_goal(self, tip: np.ndarray) -> bool:
        """Whether the tool tip is inside the goal region of any target (ignores the hold
        time)."""
        return self._on_any(tip, self.targets)

    def _hold(self, held_s: float, inside: bool, dt: float) -> tuple[float, bool]:
        """The hold time after ``dt`` (reset when outside) and whether it is long enough.
        Tolerance: holds are counted in whole physics steps."""
        held_s = held_s + dt if inside else 0.0
        return held_s, inside and held_s >= self.config.success_hold_s - 1e-9

    def update(self, tip: np.ndarray, dt: float) -> bool:
        """Advance by ``dt`` with the tip at ``tip``; returns True if done/success changed."""
        if self.done:
            return False
        self.elapsed_s += dt
        self.hold_s, held = self._hold(self.hold_s, self.in_goal(tip), dt)
        if held:
            self.success = True
            self.done = True
            return True
        on_wrong = len(self._wrong) > 0 and self._on_any(tip, self._wrong)
        self.wrong_hold_s, held_wrong = self._hold(self.wrong_hold_s, on_wrong, dt)
        if held_wrong:
            self.wrong_disc = True
            self.done = True
            return True
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
            "wrong_disc": self.wrong_disc,
        }
