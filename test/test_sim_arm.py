"""Sim arm: YAML config validation, forward kinematics and the joint servos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.sim.arm import (
    ArmConfigError,
    ArmKinematics,
    ServoArm,
    arm_config_from_dict,
    default_arm_config_path,
    load_arm_config,
)

DEFAULT = default_arm_config_path()


def _raw() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def test_default_config_has_four_named_joints_with_limits():
    cfg = load_arm_config()
    assert cfg.joint_names == ("base_yaw", "shoulder_pitch", "elbow_pitch", "wrist_pitch")
    assert np.all(cfg.lower < cfg.upper)
    assert np.all(cfg.max_velocity > 0) and np.all(cfg.max_acceleration > 0)
    assert len(cfg.link_lengths) == 3
    assert {"front", "top"} <= set(cfg.cameras)


def test_default_config_joints_use_the_joint_limits_schema():
    # The same file must work as command_streamer's limits_file.
    for joint in _raw()["joints"]:
        assert set(joint) == {"name", "lower", "upper", "max_velocity", "max_acceleration"}
    assert load_arm_config().limits_dict()["joints"][0]["name"] == "base_yaw"


def test_default_config_loads_as_joint_limits():
    limits = JointLimits.from_yaml(DEFAULT)
    assert tuple(limits.names) == load_arm_config().joint_names


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["joints"][1].update(lower=2.0), "shoulder_pitch.*lower"),
        (lambda d: d["joints"][2].pop("max_velocity"), "elbow_pitch.*max_velocity"),
        (lambda d: d["joints"][0].update(max_acceleration=0.0), "base_yaw.*must be > 0"),
        (lambda d: d["joints"][3].update(upper="high"), "wrist_pitch.*not a number"),
        (lambda d: d["joints"].append(dict(d["joints"][0])), "listed twice"),
        (lambda d: d["links"].update(lengths=[0.2, 0.2]), "links.lengths"),
        (lambda d: d["links"].pop("base_height"), "base_height"),
        (lambda d: d.update(home=[0.0, 0.0, 0.0, 9.0]), "home is outside the limits"),
        (lambda d: d["cameras"]["front"].update(fov_deg=200.0), "fov_deg"),
        (lambda d: d["workspace"].update(radius_m=[0.3, 0.1]), "workspace"),
        (lambda d: d.update(joints=d["joints"][:2]), "at least 3 joints"),
    ],
)
def test_bad_config_error_names_the_problem(mutate, message):
    data = _raw()
    mutate(data)
    with pytest.raises(ArmConfigError, match=message):
        arm_config_from_dict(data, source="bad.yaml")


def test_missing_config_file_error_names_the_parameter(tmp_path: Path):
    with pytest.raises(ArmConfigError, match="arm_config"):
        load_arm_config(tmp_path / "nope.yaml")


def test_unparsable_config_file_is_reported(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("joints: [unclosed\n")
    with pytest.raises(ArmConfigError, match="YAML"):
        load_arm_config(bad)


def test_fk_all_zero_points_the_arm_straight_up():
    cfg = load_arm_config()
    tip = ArmKinematics(cfg).tip(np.zeros(4))
    np.testing.assert_allclose(tip, [0.0, 0.0, cfg.base_height + sum(cfg.link_lengths)])


def test_fk_yaw_rotates_the_arm_plane():
    cfg = load_arm_config()
    kin = ArmKinematics(cfg)
    q = np.array([0.0, 0.7, 1.2, 0.9])
    tip0 = kin.tip(q)
    q[0] = math.pi / 2
    tip90 = kin.tip(q)
    np.testing.assert_allclose(tip90, [-tip0[1], tip0[0], tip0[2]], atol=1e-12)


def test_fk_home_tip_matches_hand_computation():
    cfg = load_arm_config()
    q = cfg.home
    phi = np.cumsum(q[1:])
    r = np.sum(np.array(cfg.link_lengths) * np.sin(phi))
    z = cfg.base_height + np.sum(np.array(cfg.link_lengths) * np.cos(phi))
    np.testing.assert_allclose(ArmKinematics(cfg).tip(q), [r, 0.0, z], atol=1e-12)


def _run(servo: ServoArm, seconds: float, dt: float = 0.002):
    qs, vs = [servo.q.copy()], [servo.v.copy()]
    for _ in range(round(seconds / dt)):
        servo.step(dt)
        qs.append(servo.q.copy())
        vs.append(servo.v.copy())
    return np.array(qs), np.array(vs)


def test_servo_reaches_setpoint_within_velocity_and_acceleration_limits():
    cfg = load_arm_config()
    servo = ServoArm(cfg)
    goal = np.array([1.5, 1.2, 0.3, -1.0])
    servo.set_setpoint(goal)
    qs, vs = _run(servo, 3.0)
    np.testing.assert_allclose(qs[-1], goal, atol=1e-3)
    assert np.all(np.abs(vs) <= cfg.max_velocity + 1e-9)
    acc = np.diff(vs, axis=0) / 0.002
    assert np.all(np.abs(acc) <= cfg.max_acceleration + 1e-6)
    # Positions move at the reported velocities (no teleporting).
    assert np.all(np.abs(np.diff(qs, axis=0)) <= cfg.max_velocity * 0.002 + 1e-9)


def test_servo_never_leaves_position_limits():
    cfg = load_arm_config()
    servo = ServoArm(cfg)
    servo.set_setpoint(cfg.upper + 5.0)
    qs, _ = _run(servo, 4.0)
    assert np.all(qs <= cfg.upper + 1e-12) and np.all(qs >= cfg.lower - 1e-12)
    np.testing.assert_allclose(qs[-1], cfg.upper, atol=1e-3)


def test_servo_overshoot_is_small():
    cfg = load_arm_config()
    servo = ServoArm(cfg)
    start = servo.q.copy()
    goal = start + np.array([1.0, -0.8, 0.6, 0.5])
    servo.set_setpoint(goal)
    qs, _ = _run(servo, 3.0)
    overshoot = np.max((qs - goal) * np.sign(goal - start), axis=0)
    assert np.all(overshoot < 0.01)


def test_stopping_point_is_where_braking_ends():
    cfg = load_arm_config()
    servo = ServoArm(cfg)
    servo.set_setpoint(servo.q + 2.0)
    _run(servo, 0.25)
    assert np.any(np.abs(servo.v) > 0.5)
    stop = servo.stopping_point()
    servo.set_setpoint(stop)
    qs, vs = _run(servo, 1.5)
    np.testing.assert_allclose(qs[-1], stop, atol=1e-3)
    np.testing.assert_allclose(vs[-1], 0.0, atol=1e-3)
