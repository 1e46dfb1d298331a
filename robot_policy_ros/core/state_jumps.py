"""Discontinuities of the measured arm state (a sim reset, a hand push, a collision, a
driver restart); independent of ROS.

A policy's observation history and the horizon it has published describe the arm where it
was; when consecutive joint states are further apart than the arm could have moved in the
time between them, both are out of date and the node must start over from fresh inputs.
"""

from __future__ import annotations

import math

import numpy as np


class StateJumpDetector:
    """Says when a joint state is a jump from the previous one.

    A jump: some joint moved more than ``tolerance`` plus what its velocity limit allows in
    the time between the two states' stamps (joint units; ``max_velocity`` per joint, in
    the same order as the positions). ``tolerance`` 0 or less: never a jump (off).
    """

    def __init__(self, max_velocity: np.ndarray, tolerance: float) -> None:
        self.max_velocity = np.asarray(max_velocity, dtype=np.float64)
        if self.max_velocity.ndim != 1 or not np.all(np.isfinite(self.max_velocity)):
            raise ValueError(f"max_velocity must be a finite vector, got {max_velocity!r}")
        if not math.isfinite(tolerance):
            raise ValueError(f"tolerance must be finite, got {tolerance!r}")
        self.tolerance = float(tolerance)
        self._last: tuple[float, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the previous state (after activation or a clock jump)."""
        self._last = None

    def check(self, stamp: float, positions: np.ndarray) -> float:
        """Take this state; returns how far (the largest joint's excess over what the arm
        could move, joint units) it jumped from the previous one, 0.0 when it did not."""
        q = np.asarray(positions, dtype=np.float64)
        last, self._last = self._last, (float(stamp), q)
        if last is None or self.tolerance <= 0.0:
            return 0.0
        dt = max(float(stamp) - last[0], 0.0)
        excess = np.abs(q - last[1]) - self.max_velocity * dt
        worst = float(np.max(excess))
        return worst if worst > self.tolerance else 0.0
