"""The whole simulation without ROS: arm servos + commands + task, stepped at a fixed rate.

Time is whatever clock the caller uses (the node's clock: wall or /clock sim time).
:meth:`SimWorld.advance_to` runs as many fixed physics steps as fit up to that time, so
the state advances in step with the clock no matter how often it is called, and the
result depends only on the commands and when they were given, never on call timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_policy_ros.sim.arm import ArmConfig, ArmKinematics, ServoArm
from robot_policy_ros.sim.commands import TrajectoryCommand
from robot_policy_ros.sim.task import Episode, TaskConfig, sample_layout


@dataclass(frozen=True)
class WorldSnapshot:
    """What the renderer needs from one instant."""

    time: float
    q: np.ndarray
    target: np.ndarray  # (n, 3): every disc on the table
    success: bool
    cue: int | None = None  # the disc drawn in the cue colour now, if any


class SimWorld:
    """Arm + task + command state; deterministic given the seed and the command history."""

    def __init__(
        self,
        config: ArmConfig,
        task: TaskConfig | None = None,
        seed: int = 0,
        physics_rate_hz: float = 500.0,
        command_timeout_s: float = 0.5,
        reset_arm_to_home: bool = True,
        start_time: float = 0.0,
    ) -> None:
        if physics_rate_hz <= 0:
            raise ValueError("physics_rate_hz must be > 0")
        self.config = config
        self.kin = ArmKinematics(config)
        self.arm = ServoArm(config)
        self.task_config = task or TaskConfig()
        self.seed = int(seed)
        self.dt = 1.0 / physics_rate_hz
        self.command_timeout_s = command_timeout_s
        self.reset_arm_to_home = reset_arm_to_home
        self._t0 = float(start_time)
        self._steps = 0  # time = t0 + steps * dt, so it never drifts
        self._traj: TrajectoryCommand | None = None
        self._last_command_time: float | None = None
        self.holding = True  # no command yet: hold where we are
        self.timeouts = 0
        self.episode = self._new_episode(0)

    # -- time ------------------------------------------------------------------------

    @property
    def time(self) -> float:
        return self._t0 + self._steps * self.dt

    def restart_clock(self, t: float) -> None:
        """Continue from time ``t`` (e.g. the clock jumped backwards); the state is kept."""
        self._t0 = float(t)
        self._steps = 0
        self._traj = None
        if self._last_command_time is not None:
            self._last_command_time = self._t0

    def advance_to(self, t: float, max_steps: int = 100_000) -> int:
        """Run the fixed physics steps that fit before ``t``; returns how many ran.

        Events of the episode (success, timeout) are checked after every step.
        """
        n = int(np.floor((t - self.time) / self.dt + 1e-9))
        n = max(0, min(n, max_steps))
        for _ in range(n):
            self._step()
        return n

    def _step(self) -> None:
        t = self.time + self.dt  # the instant this step ends at
        ff = None
        if self._traj is not None:
            sp, ff = self._traj.setpoint(t)
            self.arm.set_setpoint(sp)
        if not self.holding and self._command_expired(t):
            self.hold()
            self.timeouts += 1
            ff = None
        self.arm.step(self.dt, ff)
        self._steps += 1
        self.episode.update(self.kin.tip(self.arm.q), self.dt)

    def _command_expired(self, t: float) -> bool:
        if self._last_command_time is None:
            return False
        active_until = self._last_command_time
        if self._traj is not None:
            active_until = max(active_until, self._traj.end_time)
        return t - active_until > self.command_timeout_s

    # -- commands --------------------------------------------------------------------

    def hold(self) -> None:
        """Stop: brake to rest as fast as allowed and stay there."""
        self._traj = None
        self.arm.set_setpoint(self.arm.stopping_point())
        self.holding = True

    def command_position(self, q: np.ndarray, t: float | None = None) -> None:
        """A forward position command (already validated), given at time ``t``."""
        self._traj = None
        self.arm.set_setpoint(q)
        self._last_command_time = self.time if t is None else t
        self.holding = False

    def command_trajectory(self, traj: TrajectoryCommand | None, t: float | None = None) -> None:
        """Follow ``traj`` (None: empty trajectory, stop and hold)."""
        self._last_command_time = self.time if t is None else t
        if traj is None:
            self.hold()
            return
        self._traj = traj
        self.holding = False

    def current_setpoint(self) -> np.ndarray:
        """The setpoint now (the entry point for a new trajectory)."""
        return self.arm.setpoint.copy()

    # -- episodes --------------------------------------------------------------------

    def _new_episode(self, index: int) -> Episode:
        layout = sample_layout(self.seed, index, self.config.workspace, self.task_config.task)
        goals = layout.discs[list(layout.goals)]
        return Episode(self.seed, index, goals, self.task_config, layout.discs, layout.cue)

    def reset(self, index: int | None = None) -> Episode:
        """Start the next episode (or episode ``index``); optionally snap the arm home.

        Any running command is dropped and the arm holds until the next command.
        """
        nxt = self.episode.index + 1 if index is None else int(index)
        self.episode = self._new_episode(nxt)
        self._traj = None
        self._last_command_time = None
        if self.reset_arm_to_home:
            self.arm.reset(self.config.home)
        else:
            self.hold()
        self.holding = True
        return self.episode

    def snapshot(self) -> WorldSnapshot:
        """A copy of the state the renderer needs."""
        ep = self.episode
        return WorldSnapshot(
            self.time,
            self.arm.q.copy(),
            ep.discs.copy(),
            ep.success,
            ep.cue if ep.cue_visible else None,
        )
