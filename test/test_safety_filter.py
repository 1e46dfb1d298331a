"""SafetyFilter and JointLimits: nothing non-finite, out of limits or too fast reaches a motor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core.safety import JointLimits, SafetyFilter, SafetyReport

NAMES = ("shoulder", "elbow", "wrist")
LOWER = np.array([-1.0, -2.0, -3.0])
UPPER = np.array([1.0, 2.0, 3.0])
VMAX = np.array([1.0, 2.0, 0.5])
AMAX = np.array([4.0, 8.0, 2.0])


def limits(accel: bool = False) -> JointLimits:
    return JointLimits(NAMES, LOWER, UPPER, VMAX, AMAX if accel else None)


def started(ramp_in_s: float = 0.0, accel: bool = False, measured=None, t0: float = 0.0):
    f = SafetyFilter(limits(accel), ramp_in_s=ramp_in_s, use_acceleration_limit=accel)
    f.start(np.zeros(3) if measured is None else np.asarray(measured, dtype=float), t0)
    return f


# -- rejection -----------------------------------------------------------------------------


def test_nan_command_holds_previous():
    f = started()
    first, _ = f.filter(np.array([0.01, 0.01, 0.01]), 0.1)
    out, report = f.filter(np.array([0.5, np.nan, 0.0]), 0.2)
    np.testing.assert_array_equal(out, first)
    assert not report.accepted
    assert "elbow" in report.reason and "non-finite" in report.reason
    assert f.rejected_total == 1


def test_inf_command_holds_previous():
    f = started()
    out, report = f.filter(np.array([np.inf, 0.0, 0.0]), 0.1)
    np.testing.assert_array_equal(out, np.zeros(3))
    assert not report.accepted


@pytest.mark.parametrize("bad", [np.zeros(2), np.zeros(4), np.zeros((3, 1)), "abc", [None] * 3])
def test_wrong_shape_command_rejected_and_held(bad):
    f = started()
    out, report = f.filter(bad, 0.1)
    np.testing.assert_array_equal(out, np.zeros(3))
    assert not report.accepted and report.reason
    assert f.rejected_total == 1


def test_none_target_holds_without_counting_as_rejection():
    f = started()
    f.filter(np.array([0.05, 0.0, 0.0]), 0.1)
    out, report = f.filter(None, 0.2)
    np.testing.assert_allclose(out, [0.05, 0.0, 0.0])
    assert not report.accepted and report.reason == "no target"
    assert f.rejected_total == 0 and f.held_total == 1


def test_filter_before_start_raises():
    f = SafetyFilter(limits())
    assert not f.started
    with pytest.raises(RuntimeError, match="start"):
        f.filter(np.zeros(3), 0.0)


def test_reset_requires_start_again_and_clears_counters():
    f = started()
    f.filter(np.array([np.nan] * 3), 0.1)
    f.reset()
    assert not f.started and f.rejected_total == 0
    with pytest.raises(RuntimeError):
        f.filter(np.zeros(3), 0.2)


def test_start_rejects_non_finite_measurement():
    f = SafetyFilter(limits())
    with pytest.raises(ValueError, match="wrist"):
        f.start(np.array([0.0, 0.0, np.nan]), 0.0)
    with pytest.raises(ValueError, match="shape"):
        f.start(np.zeros(2), 0.0)


# -- limits --------------------------------------------------------------------------------


def test_clamps_to_position_limits():
    f = started()
    out, report = f.filter(np.array([1.0, -2.0, 3.0]) + 10.0 * np.array([1, -1, 1]), 100.0)
    np.testing.assert_allclose(out, [1.0, -2.0, 3.0])
    assert report.clamped == NAMES
    assert report.accepted
    assert f.clamped_total == 1


def test_start_outside_limits_never_jumps():
    """Measured outside the limits: first output is the measured position, then a slow way in."""
    f = SafetyFilter(limits(), ramp_in_s=0.0, bring_in_velocity=0.2)
    f.start(np.array([1.5, 0.0, -3.4]), 0.0)
    np.testing.assert_allclose(f.last_command, [1.5, 0.0, -3.4])
    prev = f.last_command
    for k in range(1, 400):
        out, _ = f.filter(np.zeros(3), k * 0.01)
        step = np.abs(out - prev)
        outside = (prev < LOWER) | (prev > UPPER)
        assert np.all(step[outside] <= 0.2 * 0.01 + 1e-12)
        assert np.all(step <= VMAX * 0.01 + 1e-12)
        # never further out than it already was
        assert np.all(np.maximum(out - UPPER, 0) <= np.maximum(prev - UPPER, 0) + 1e-12)
        assert np.all(np.maximum(LOWER - out, 0) <= np.maximum(LOWER - prev, 0) + 1e-12)
        prev = out
    assert np.all((prev >= LOWER) & (prev <= UPPER))


@fuzz_settings(60)
@given(
    measured=st.lists(st.floats(-6.0, 6.0), min_size=3, max_size=3),
    target=st.lists(st.floats(-6.0, 6.0), min_size=3, max_size=3),
    accel=st.booleans(),
)
def test_outside_limits_bring_in_property(measured, target, accel):
    f = SafetyFilter(limits(accel), ramp_in_s=0.5, use_acceleration_limit=accel)
    f.start(np.array(measured), 0.0)
    prev = np.array(measured)
    for k in range(1, 60):
        out, _ = f.filter(np.array(target), k * 0.02)
        assert np.all(np.isfinite(out))
        assert np.all(np.abs(out - prev) <= VMAX * 0.02 + 1e-9)
        assert np.all(out <= np.maximum(UPPER, prev) + 1e-12)
        assert np.all(out >= np.minimum(LOWER, prev) - 1e-12)
        prev = out


def test_velocity_limit_caps_step():
    f = started()
    out, report = f.filter(np.array([1.0, 2.0, 3.0]), 0.1)
    np.testing.assert_allclose(out, VMAX * 0.1)
    assert report.rate_limited == NAMES
    out2, _ = f.filter(np.array([1.0, 2.0, 3.0]), 0.15)  # actual dt between calls: 0.05
    np.testing.assert_allclose(out2, VMAX * 0.15)
    assert f.rate_limited_total == 2


def test_small_step_passes_unchanged():
    f = started()
    target = np.array([0.05, -0.1, 0.02])
    out, report = f.filter(target, 0.1)
    np.testing.assert_allclose(out, target)
    assert report.rate_limited == () and report.clamped == () and report.accepted


def test_first_call_uses_dt_from_start_time():
    f = started(t0=10.0)
    out, _ = f.filter(np.array([1.0, 1.0, 1.0]), 10.2)
    np.testing.assert_allclose(out, np.minimum(VMAX * 0.2, 1.0))


@pytest.mark.parametrize("t", [0.0, -0.5, math.nan])
def test_non_positive_dt_allows_no_motion(t):
    f = started()
    out, report = f.filter(np.array([0.5, 0.5, 0.5]), t)
    np.testing.assert_array_equal(out, np.zeros(3))
    assert report.rate_limited == NAMES


def test_time_going_backwards_reanchors_and_ramps_in_again():
    f = started(ramp_in_s=1.0)
    for k in range(1, 40):
        f.filter(np.array([1.0, 1.0, 1.0]), k * 0.05)  # fully ramped after 1 s
    before = f.last_command
    out, _ = f.filter(np.array([1.0, 1.0, 1.0]), 0.0)  # clock reset
    np.testing.assert_array_equal(out, before)
    out2, report = f.filter(np.array([1.0, 1.0, 1.0]), 0.05)
    np.testing.assert_array_equal(out2, before)  # ramp restarted at scale 0
    assert report.ramping


def test_ramp_in_starts_at_measured_position():
    measured = np.array([0.3, -0.4, 0.2])
    f = started(ramp_in_s=1.0, measured=measured)
    target = np.array([-1.0, 2.0, -3.0])
    out, report = f.filter(target, 0.02)
    np.testing.assert_array_equal(out, measured)  # nothing jumps on the first tick
    assert report.ramping
    # Velocity allowed grows linearly: the per-tick step grows over the ramp, then saturates.
    steps = []
    prev = out
    for k in range(2, 80):
        out, report = f.filter(target, 0.02 * k)
        steps.append(np.abs(out - prev) / 0.02)
        prev = out
    steps = np.array(steps)
    speed = steps[:, 0]  # shoulder stays far from its target within 1.6 s
    assert np.all(np.diff(speed[:49]) > 0)
    np.testing.assert_allclose(speed[0], VMAX[0] * 0.02)  # scale at t=0.02 of a 1 s ramp
    np.testing.assert_allclose(speed[60:70], VMAX[0])
    assert not report.ramping


def test_acceleration_limit_caps_velocity_change():
    f = started(accel=True)
    target = np.array([1.0, 2.0, 3.0])
    dt = 0.01
    prev, prev_v = np.zeros(3), np.zeros(3)
    for k in range(1, 30):
        out, _ = f.filter(target, k * dt)
        v = (out - prev) / dt
        assert np.all(np.abs(v - prev_v) <= AMAX * dt + 1e-9)
        assert np.all(np.abs(v) <= VMAX + 1e-9)
        prev, prev_v = out, v
    # Without the acceleration limit the first step is already at full velocity.
    g = started(accel=False)
    out, _ = g.filter(target, dt)
    np.testing.assert_allclose(out / dt, VMAX)


def test_acceleration_limited_motion_reaches_target_without_large_overshoot():
    f = started(accel=True)
    target = np.array([0.5, -0.5, 0.2])
    outs = np.array([f.filter(target, k * 0.01)[0] for k in range(1, 600)])
    np.testing.assert_allclose(outs[-1], target, atol=1e-6)
    overshoot = np.max(np.abs(outs - target) * (np.sign(outs - target) == np.sign(target)), axis=0)
    assert np.all(overshoot < 0.02)


def test_acceleration_limit_requires_limits_with_acceleration():
    with pytest.raises(ValueError, match="max_acceleration"):
        SafetyFilter(limits(accel=False), use_acceleration_limit=True)


def test_acceleration_limit_is_on_by_default_where_the_limits_carry_it():
    """Default None: on with max_acceleration, off without; False turns it off explicitly."""
    assert SafetyFilter(limits(accel=True)).use_acceleration_limit is True
    assert SafetyFilter(limits(accel=False)).use_acceleration_limit is False
    off = SafetyFilter(limits(accel=True), use_acceleration_limit=False)
    assert off.use_acceleration_limit is False

    def first_step(f: SafetyFilter) -> np.ndarray:
        f.start(np.zeros(3), 0.0)
        return f.filter(np.array([0.5, -0.5, 0.2]), 0.01)[0]

    # From rest, one 10 ms tick: velocity-limited alone moves vmax * dt; with the
    # acceleration limit only amax * dt * dt.
    default = first_step(SafetyFilter(limits(accel=True), ramp_in_s=0.0))
    np.testing.assert_allclose(np.abs(default), AMAX * 0.01 * 0.01, atol=1e-12)
    explicit_off = first_step(
        SafetyFilter(limits(accel=True), ramp_in_s=0.0, use_acceleration_limit=False)
    )
    np.testing.assert_allclose(np.abs(explicit_off), VMAX * 0.01, atol=1e-12)


def test_report_fields_default_to_nothing_done():
    r = SafetyReport(True)
    assert r.clamped == () and r.rate_limited == () and not r.ramping and r.reason == ""


# -- JointLimits ---------------------------------------------------------------------------


def limits_dict(accel: bool = True) -> dict:
    joints = []
    for i, n in enumerate(NAMES):
        j = {"name": n, "lower": LOWER[i], "upper": UPPER[i], "max_velocity": VMAX[i]}
        if accel:
            j["max_acceleration"] = AMAX[i]
        joints.append(j)
    return {"joints": joints}


def test_limits_from_dict_and_yaml_roundtrip(tmp_path):
    lim = JointLimits.from_dict(limits_dict())
    assert lim == limits(accel=True)
    path = tmp_path / "limits.yaml"
    path.write_text(
        "joints:\n"
        "  - {name: shoulder, lower: -1.0, upper: 1.0, max_velocity: 1.0, max_acceleration: 4}\n"
        "  - {name: elbow, lower: -2, upper: 2, max_velocity: 2.0, max_acceleration: 8.0}\n"
        "  - {name: wrist, lower: -3, upper: 3, max_velocity: 0.5, max_acceleration: 2.0}\n"
    )
    assert JointLimits.from_yaml(path) == lim
    assert JointLimits.from_dict(lim.to_dict()) == lim
    assert JointLimits.from_dict(limits_dict(accel=False)).max_acceleration is None


def test_limits_file_missing_joint_named():
    lim = JointLimits.from_dict(limits_dict())
    with pytest.raises(KeyError, match=r"gripper.*elbow_roll|elbow_roll.*gripper"):
        lim.reorder(["shoulder", "gripper", "elbow_roll"])


def test_reorder_picks_and_orders_by_name():
    lim = JointLimits.from_dict(limits_dict())
    sub = lim.reorder(["wrist", "shoulder"])
    assert sub.names == ("wrist", "shoulder")
    np.testing.assert_array_equal(sub.lower, [-3.0, -1.0])
    np.testing.assert_array_equal(sub.max_velocity, [0.5, 1.0])
    np.testing.assert_array_equal(sub.max_acceleration, [2.0, 4.0])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["joints"][1].update(lower=3.0), "elbow"),
        (lambda d: d["joints"][2].update(max_velocity=0.0), "wrist"),
        (lambda d: d["joints"][0].update(upper=float("nan")), "shoulder"),
        (lambda d: d["joints"][1].update(max_acceleration=-1.0), "elbow"),
        (lambda d: d["joints"][2].pop("max_acceleration"), "wrist"),
        (lambda d: d["joints"][0].pop("upper"), "shoulder"),
        (lambda d: d["joints"][1].update(lower="low"), "elbow"),
        (lambda d: d["joints"][1].update(name="shoulder"), "shoulder.*(duplicate|twice)"),
        (lambda d: d.pop("joints"), "joints"),
    ],
)
def test_invalid_limits_rejected_naming_the_joint(mutate, match):
    d = limits_dict()
    mutate(d)
    with pytest.raises(ValueError, match=match):
        JointLimits.from_dict(d)


def test_limits_yaml_error_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("joints: []\n")
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        JointLimits.from_yaml(path)


def test_limits_length_mismatch_rejected():
    with pytest.raises(ValueError, match="upper"):
        JointLimits(NAMES, LOWER, UPPER[:2], VMAX)


def test_limits_arrays_are_read_only_copies():
    lower = LOWER.copy()
    lim = JointLimits(NAMES, lower, UPPER, VMAX)
    lower[0] = -100.0
    assert lim.lower[0] == -1.0
    with pytest.raises(ValueError):
        lim.lower[0] = 5.0


# -- properties ----------------------------------------------------------------------------

wild = st.one_of(
    st.floats(min_value=-10.0, max_value=10.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308]),
)
target_st = st.one_of(
    st.none(),
    st.lists(wild, min_size=3, max_size=3).map(np.array),
    st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=5).map(np.array),  # wrong shapes too
)
dt_st = st.one_of(
    st.floats(min_value=1e-4, max_value=0.5),
    st.sampled_from([0.0, -0.01, 5.0]),
)


@fuzz_settings(150)
@given(
    measured=st.lists(st.floats(-10.0, 10.0), min_size=3, max_size=3),
    steps=st.lists(st.tuples(target_st, dt_st), min_size=1, max_size=40),
    ramp_in_s=st.sampled_from([0.0, 0.1, 2.0]),
    accel=st.booleans(),
)
def test_output_always_finite_within_limits_and_velocity(measured, steps, ramp_in_s, accel):
    f = SafetyFilter(limits(accel), ramp_in_s=ramp_in_s, use_acceleration_limit=accel)
    t = 1.0
    f.start(np.array(measured), t)
    prev = f.last_command
    np.testing.assert_array_equal(prev, measured)  # never a jump at start
    for target, dt in steps:
        t_new = t + dt
        out, report = f.filter(target, t_new)
        assert out.shape == (3,)
        assert np.all(np.isfinite(out))
        # inside the limits, or (measured outside at start) no further out than before
        assert np.all(out >= np.minimum(LOWER, prev)) and np.all(out <= np.maximum(UPPER, prev))
        allowed = VMAX * max(dt, 0.0)
        assert np.all(np.abs(out - prev) <= allowed * (1 + 1e-9) + 1e-12)
        if target is not None and (np.shape(target) != (3,) or not np.all(np.isfinite(target))):
            assert not report.accepted
            np.testing.assert_array_equal(out, prev)
        prev = out
        t = t_new
