"""StateJumpDetector: a joint state further from the previous one than the arm can move."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.core.state_jumps import StateJumpDetector

VMAX = np.array([1.0, 2.0])


def test_motion_within_the_velocity_limit_is_no_jump() -> None:
    det = StateJumpDetector(VMAX, tolerance=0.1)
    assert det.check(0.0, [0.0, 0.0]) == 0.0
    assert det.check(0.5, [0.5, 1.0]) == 0.0  # at the limit
    assert det.check(0.51, [0.55, 1.0]) == 0.0  # 0.04 over in 10 ms: under the tolerance


def test_reset_snap_is_a_jump_of_the_excess() -> None:
    det = StateJumpDetector(VMAX, tolerance=0.1)
    det.check(0.0, [0.0, 0.0])
    assert det.check(0.01, [0.0, -0.8]) == pytest.approx(0.8 - 0.02)


def test_first_state_after_reset_is_never_a_jump() -> None:
    det = StateJumpDetector(VMAX, tolerance=0.1)
    det.check(0.0, [0.0, 0.0])
    det.reset()
    assert det.check(0.01, [3.0, 3.0]) == 0.0


def test_zero_tolerance_turns_it_off() -> None:
    det = StateJumpDetector(VMAX, tolerance=0.0)
    det.check(0.0, [0.0, 0.0])
    assert det.check(0.01, [5.0, 5.0]) == 0.0


def test_non_finite_limits_refused() -> None:
    with pytest.raises(ValueError, match="max_velocity"):
        StateJumpDetector(np.array([1.0, np.nan]), 0.1)
