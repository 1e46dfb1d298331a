"""Command validation and trajectory following, like ros2_control's controllers.

``forward_position_controller``: a position vector in the arm's joint order.
``joint_trajectory_controller``: points with ``time_from_start`` relative to the header
stamp (zero stamp = now), joints matched by name; the setpoint is linearly interpolated
between points and holds the last one after the end. Points already in the past are
skipped: the trajectory is only ever sampled from the time it is received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class CommandError(ValueError):
    """A command that is rejected (the arm keeps doing what it did)."""


def validate_position_command(values: Sequence[float], num_joints: int) -> np.ndarray:
    """A forward position command as an array, or CommandError (wrong length, non-finite)."""
    q = np.asarray(values, dtype=np.float64)
    if q.ndim != 1 or q.shape[0] != num_joints:
        raise CommandError(f"expected {num_joints} positions, got {q.size}")
    if not np.all(np.isfinite(q)):
        raise CommandError("non-finite value in position command")
    return q


class TrajectoryCommand:
    """A piecewise-linear joint trajectory in absolute time (seconds, node clock)."""

    def __init__(self, times: np.ndarray, positions: np.ndarray) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.positions = np.asarray(positions, dtype=np.float64)

    @property
    def end_time(self) -> float:
        return float(self.times[-1])

    def setpoint(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) at time ``t``; before the start: the first point; after the
        end: the last point at zero velocity."""
        times = self.times
        if t <= times[0]:
            return self.positions[0].copy(), np.zeros(self.positions.shape[1])
        if t >= times[-1]:
            return self.positions[-1].copy(), np.zeros(self.positions.shape[1])
        i = int(np.searchsorted(times, t, side="right")) - 1
        t0, t1 = times[i], times[i + 1]
        w = (t - t0) / (t1 - t0)
        p0, p1 = self.positions[i], self.positions[i + 1]
        return p0 + w * (p1 - p0), (p1 - p0) / (t1 - t0)


def build_trajectory(
    joint_names: Sequence[str],
    msg_joint_names: Sequence[str],
    points: Sequence[tuple[float, Sequence[float]]],
    start_time: float,
    now: float,
    current: np.ndarray,
) -> TrajectoryCommand | None:
    """Validate a JointTrajectory and make it a :class:`TrajectoryCommand`.

    Args:
        joint_names: the arm's joints, in its order.
        msg_joint_names: the message's joint names (any order; must be the same set).
        points: (time_from_start seconds, positions in message order) per point.
        start_time: header stamp in seconds, or 0.0 for "now".
        now: current time; points before it are skipped.
        current: the setpoint now, from which the trajectory is entered.

    Returns None for an empty trajectory (meaning: stop and hold, as the
    joint_trajectory_controller does). Raises CommandError for anything invalid or
    for a trajectory that ends in the past.
    """
    names = list(msg_joint_names)
    if len(set(names)) != len(names):
        raise CommandError(f"duplicate joint names {names}")
    unknown = [n for n in names if n not in joint_names]
    missing = [n for n in joint_names if n not in names]
    if unknown or missing:
        raise CommandError(
            f"joint names do not match the arm: unknown {unknown}, missing {missing}"
        )
    if not points:
        return None
    order = [names.index(n) for n in joint_names]
    base = now if start_time == 0.0 else start_time
    times = np.empty(len(points))
    pos = np.empty((len(points), len(joint_names)))
    for k, (tfs, positions) in enumerate(points):
        if not math.isfinite(tfs) or tfs < 0:
            raise CommandError(f"point {k}: bad time_from_start {tfs}")
        if len(positions) != len(names):
            raise CommandError(f"point {k}: {len(positions)} positions for {len(names)} joints")
        p = np.asarray(positions, dtype=np.float64)
        if not np.all(np.isfinite(p)):
            raise CommandError(f"point {k}: non-finite position")
        times[k] = base + tfs
        pos[k] = p[order]
    if np.any(np.diff(times) <= 0):
        raise CommandError("time_from_start must strictly increase from point to point")
    if times[-1] < now:
        raise CommandError(f"trajectory ended {now - times[-1]:.3f} s in the past")
    if times[0] > now:
        # Enter the trajectory from where the arm is commanded now, like the JTC does.
        times = np.concatenate([[now], times])
        pos = np.concatenate([np.asarray(current, dtype=np.float64)[None], pos])
    else:
        # Skip points in the past: keep the last one at or before now, to interpolate from.
        first = int(np.searchsorted(times, now, side="right")) - 1
        times, pos = times[first:], pos[first:]
    return TrajectoryCommand(times, pos)
