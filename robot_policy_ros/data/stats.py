"""Normalization statistics and joint-limit estimation from demonstrations (pure numpy).

- :func:`compute_normalization` gives per-joint mean/std/min/max of the states and of the
  (non-padding) action targets, in the checkpoint's JSON form
  ``{"state": {"mean": [...], "std": [...], "min": [...], "max": [...]}, "action": {...}}``.
- :func:`estimate_limits` gives the limits stored with a checkpoint (the command streamer's
  safety filter enforces them), as the one limits type ``JointLimits``
  (core/joint_limits.py): position limits are the demonstrated range (measured and
  commanded) widened by ``margin_frac`` of the range plus ``margin_abs`` on each side;
  velocity limits are ``velocity_margin`` times the fastest demonstrated joint speed (or
  the user's ``max_velocity``). Neither ever exceeds the robot's own limits when given;
  those are read by the one parser with the one set of rules, ``JointLimits``. It is the
  only estimator of limits from demonstrations in the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robot_policy_ros.core.joint_limits import JointLimits


def compute_normalization(
    states: Sequence[np.ndarray], actions: Sequence[np.ndarray], pads: Sequence[np.ndarray]
) -> dict[str, dict[str, list[float]]]:
    """Statistics of states (K, J) and actions (K, A, J) whose ``pads`` (K, A) are False."""
    st = np.concatenate([np.asarray(s, dtype=np.float64) for s in states], axis=0)
    acts = [
        np.asarray(a, dtype=np.float64)[~np.asarray(p, bool)]
        for a, p in zip(actions, pads, strict=True)
    ]
    ac = np.concatenate(acts, axis=0) if acts else np.zeros((0, st.shape[1]))
    if st.shape[0] == 0 or ac.shape[0] == 0:
        raise ValueError("no samples to compute normalization statistics from")

    def group(x: np.ndarray) -> dict[str, list[float]]:
        return {
            "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(),
            "min": x.min(0).tolist(),
            "max": x.max(0).tolist(),
        }

    return {"state": group(st), "action": group(ac)}


def max_speeds(
    times: Sequence[np.ndarray],
    positions: Sequence[np.ndarray],
    min_dt: float = 1e-3,
    ceiling: np.ndarray | None = None,
) -> np.ndarray:
    """Largest |dq/dt| per joint over episodes (finite differences, dt >= ``min_dt``).

    ``ceiling`` (per joint): intervals where any joint moves faster than this are not
    motion but discontinuities (e.g. the last pre-reset joint state of a simulated arm
    that snapped home, recorded at the start of the next episode's bag) and are ignored.
    """
    best: np.ndarray | None = None
    for t, q in zip(times, positions, strict=True):
        t = np.asarray(t, dtype=np.float64)
        q = np.asarray(q, dtype=np.float64)
        if t.shape[0] < 2:
            continue
        dt = np.diff(t)
        ok = dt >= min_dt
        if not ok.any():
            continue
        speed = np.abs(np.diff(q, axis=0)[ok]) / dt[ok][:, None]
        if ceiling is not None:
            speed = speed[np.all(speed <= ceiling, axis=1)]
            if speed.shape[0] == 0:
                continue
        m = speed.max(axis=0)
        best = m if best is None else np.maximum(best, m)
    if best is None:
        n = np.asarray(positions[0]).shape[1] if positions else 0
        return np.zeros(n)
    return best


def estimate_limits(
    joint_names: Sequence[str],
    positions: Sequence[np.ndarray],
    times: Sequence[np.ndarray],
    commands: Sequence[np.ndarray] = (),
    *,
    margin_frac: float = 0.05,
    margin_abs: float = 0.05,
    velocity_margin: float = 1.5,
    min_velocity: float = 0.05,
    max_velocity: float | Sequence[float] | None = None,
    robot_limits: JointLimits | Mapping[str, Any] | None = None,
) -> JointLimits:
    """Joint limits for the checkpoint from demonstrations.

    Args:
        joint_names: joint order.
        positions / times: measured joint positions (N, J) and their stamps, per episode.
        commands: commanded positions (M, J) per episode (also inside the position limits).
        margin_frac / margin_abs: widening on each side: ``margin_frac * range + margin_abs``.
        velocity_margin: factor on the fastest demonstrated speed; ``min_velocity`` floor.
        max_velocity: user velocity limit (scalar or per joint); replaces the estimate.
        robot_limits: the robot's limits, a :class:`JointLimits` or a mapping in either of
            its forms (:meth:`JointLimits.from_mapping`: ``{"joints": [...]}`` by name, or
            columns in ``joint_names`` order); the result never exceeds them.

    Raises:
        ValueError: no positions, empty estimated limits, or robot limits that break the
            JointLimits rules; KeyError: robot limits lacking some of ``joint_names``.

    Returns the limits as a :class:`JointLimits` named by ``joint_names``; its acceleration
    limit is the robot's where ``robot_limits`` give one (demonstrations do not bound it:
    without the robot's, there is none), so that the streamer never commands accelerations
    the arm cannot follow. ``to_columns()`` is the checkpoint's form, ``to_dict()`` the YAML
    ``limits_file``'s.
    """
    n = len(joint_names)
    arrays = [np.asarray(p, dtype=np.float64).reshape(-1, n) for p in positions]
    arrays += [np.asarray(c, dtype=np.float64).reshape(-1, n) for c in commands if len(c)]
    allpos = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, n))
    allpos = allpos[np.all(np.isfinite(allpos), axis=1)]
    if allpos.shape[0] == 0:
        raise ValueError("no joint positions to estimate limits from")
    lo, hi = allpos.min(axis=0), allpos.max(axis=0)
    margin = margin_frac * (hi - lo) + margin_abs
    lower, upper = lo - margin, hi + margin
    if max_velocity is not None:
        vel = np.broadcast_to(np.asarray(max_velocity, dtype=np.float64), (n,)).copy()
        if not np.all(np.isfinite(vel)) or np.any(vel <= 0):
            raise ValueError(f"max_velocity must be positive, got {max_velocity}")
    robot = _robot_limits_for(robot_limits, joint_names)
    if max_velocity is None:
        # Faster than twice the robot's own limit is no motion the robot made but a jump
        # in the record (a sim reset): such intervals must not inflate the estimate.
        ceiling = None if robot is None else 2.0 * robot.max_velocity
        speeds = max_speeds(times, positions, ceiling=ceiling)
        vel = np.maximum(speeds * velocity_margin, min_velocity)
    if robot is not None:
        lower = np.maximum(lower, robot.lower)
        upper = np.minimum(upper, robot.upper)
        vel = np.minimum(vel, robot.max_velocity)
    bad = np.flatnonzero(lower >= upper)
    if bad.size:
        raise ValueError(f"estimated limits are empty for joints {[joint_names[i] for i in bad]}")
    return JointLimits(
        names=tuple(joint_names),
        lower=lower,
        upper=upper,
        max_velocity=vel,
        max_acceleration=None if robot is None else robot.max_acceleration,
    )


def _robot_limits_for(
    robot_limits: JointLimits | Mapping[str, Any] | None, joint_names: Sequence[str]
) -> JointLimits | None:
    if robot_limits is None:
        return None
    if isinstance(robot_limits, JointLimits):
        return robot_limits.reorder(joint_names)
    return JointLimits.from_mapping(robot_limits, joint_names)
