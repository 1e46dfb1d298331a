"""Joint-state mapping and frozen-camera detection (no ROS)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core.observation_health import (
    JointStateError,
    JointStateMapper,
    StampWatch,
    arm_mismatches,
    parse_camera_sizes,
)

NEEDED = ["shoulder", "elbow", "wrist"]


def test_reordered_joint_states_map_by_name():
    m = JointStateMapper(NEEDED)
    out = m.map(["wrist", "gripper", "shoulder", "elbow"], [3.0, 9.0, 1.0, 2.0])
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    out = m.map(["elbow", "wrist", "shoulder"], [2.0, 3.0, 1.0])
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


def test_duplicate_joint_names_refused():
    with pytest.raises(JointStateError, match=r"\['elbow'\] more than once"):
        JointStateMapper(NEEDED).map(["shoulder", "elbow", "wrist", "elbow"], [0, 1, 2, 3])


def test_missing_joint_refused_naming_both_sides():
    with pytest.raises(JointStateError, match=r"lacks joint\(s\) \['elbow'\].*needs"):
        JointStateMapper(NEEDED).map(["shoulder", "wrist"], [0, 1])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_position_refused(bad):
    with pytest.raises(JointStateError, match=r"non-finite positions for joint\(s\) \['wrist'\]"):
        JointStateMapper(NEEDED).map(NEEDED, [0.0, 0.0, bad])


def test_positions_of_other_length_refused():
    with pytest.raises(JointStateError, match="3 names but 2 positions"):
        JointStateMapper(NEEDED).map(NEEDED, [0.0, 0.0])


def test_non_finite_unneeded_joint_is_ignored():
    out = JointStateMapper(NEEDED).map([*NEEDED, "gripper"], [1.0, 2.0, 3.0, math.nan])
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


def test_permutation_cache_is_bounded():
    m = JointStateMapper(NEEDED, max_cache=4)
    rng = np.random.default_rng(0)
    for _ in range(50):
        order = rng.permutation(3)
        m.map([NEEDED[i] for i in order], [float(i) for i in order])
    assert len(m._cache) <= 4


@fuzz_settings(300)
@given(
    names=st.lists(st.sampled_from([*NEEDED, "gripper", "base"]), max_size=7),
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=7
    ),
)
def test_mapped_joint_states_are_finite_and_in_checkpoint_order(names, values):
    """Whatever arrives: a refusal, or exactly the named joints' finite values in order."""
    try:
        out = JointStateMapper(NEEDED).map(names, values)
    except JointStateError:
        return
    assert out.shape == (3,) and np.isfinite(out).all()
    for i, joint in enumerate(NEEDED):
        assert out[i] == values[names.index(joint)]


def test_frozen_camera_detected_and_recovers():
    w = StampWatch()
    w.note("front", 1.0)
    w.note("front", 1.1)
    assert w.problem("front") == ""
    w.note("front", 1.1)
    assert "camera 'front' is frozen" in w.problem("front")
    w.note("front", 1.2)
    assert w.problem("front") == ""


def test_backwards_stamp_detected_and_recovers():
    w = StampWatch()
    w.note("wrist", 5.0)
    w.note("wrist", 4.0)
    assert "went 1.000 s backwards" in w.problem("wrist")
    w.note("wrist", 4.1)
    assert w.problem("wrist") == ""


def test_cameras_are_judged_separately():
    w = StampWatch()
    for s in (1.0, 1.0):
        w.note("front", s)
    w.note("wrist", 1.0)
    assert w.problem("front") and not w.problem("wrist")


def test_arm_fit_names_both_sides():
    ck_cams = {"front": (224, 224)}
    assert arm_mismatches(NEEDED, ck_cams, [], {}) == []
    assert arm_mismatches(NEEDED, ck_cams, list(reversed(NEEDED)), {"front": (224, 224)}) == []
    (joints,) = arm_mismatches(NEEDED, ck_cams, ["a", "b"], {})
    assert str(NEEDED) in joints and "['a', 'b'] (2)" in joints
    (size,) = arm_mismatches(NEEDED, ck_cams, [], {"front": (480, 640)})
    assert "expects 224x224" in size and "gives 480x640" in size


def test_camera_sizes_parsed_or_refused():
    assert parse_camera_sizes(["front:480x640", "wrist:96X128"]) == {
        "front": (480, 640),
        "wrist": (96, 128),
    }
    with pytest.raises(ValueError, match="NAME:HEIGHTxWIDTH"):
        parse_camera_sizes(["front:480"])
