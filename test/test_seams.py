"""Chunk seam smoothness (robot_policy_ros.bench.seams): the metric and the blending it judges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_policy_ros.bench.seams import (
    SeamScenario,
    seam_smoothness,
    seam_windows_for,
    simulate,
)


def test_seam_step_and_inside_step_split_by_window() -> None:
    # 1 joint at 10 Hz: steady 0.1 per tick, one jump of 0.5 into the tick at t=0.5.
    times = np.arange(11) / 10.0
    q = np.cumsum(np.full(11, 0.1))
    q[5:] += 0.5
    out = seam_smoothness(times, q[:, None], [(0.5, 0.5)])
    assert out["seam_max_step"] == pytest.approx(0.6)
    assert out["inside_max_step"] == pytest.approx(0.1)
    assert out["ratio"] == pytest.approx(6.0)
    assert (out["seam_steps"], out["inside_steps"]) == (1, 9)


def test_excluded_steps_count_in_neither_set() -> None:
    times = np.arange(11) / 10.0
    q = np.cumsum(np.full(11, 0.1))
    q[5:] += 0.5  # a reset, not a seam
    out = seam_smoothness(times, q[:, None], [(0.8, 0.8)], exclude=[(0.5, 0.5)])
    assert out["seam_max_step"] == pytest.approx(0.1)
    assert (out["seam_steps"], out["inside_steps"]) == (1, 8)


def test_seam_ratio_undefined_without_inside_steps() -> None:
    times = np.arange(3) / 10.0
    out = seam_smoothness(times, np.zeros((3, 2)), [(0.0, 1.0)])
    assert out["inside_steps"] == 0 and math.isnan(out["ratio"])


def test_seam_windows_cover_the_fade_and_the_tick_after_expiry() -> None:
    windows = seam_windows_for([1.0], [2.0], period_s=0.02, fade_s=0.1)
    times = np.round(np.arange(0.9, 2.1, 0.02), 6)
    inside = [t for t in times if not any(a <= t <= b for a, b in windows)]
    assert 1.0 not in inside and 1.1 not in inside and 1.12 in inside
    assert 2.0 in inside and 2.02 not in inside and 2.04 in inside


@pytest.mark.parametrize("mode", ["temporal_ensemble", "average", "crossfade"])
def test_blending_smooths_seams_that_replace_jumps(mode: str) -> None:
    scenario = SeamScenario(duration_s=10.0)
    replace = simulate("replace", scenario)["target"]["ratio"]
    blended = simulate(mode, scenario)["target"]["ratio"]
    assert replace > 3.0  # chunks disagree: replace jumps at every seam
    assert blended < replace / 1.5
