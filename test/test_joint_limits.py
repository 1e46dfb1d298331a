"""One JointLimits type, one set of rules, whichever source the limits come from."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.core.joint_limits import JointLimits

NAMES = ("j0", "j1")
COLUMNS = {"lower": [-1.0, -2.0], "upper": [1.0, 2.0], "max_velocity": [0.5, 0.6]}


def test_columns_and_joints_list_give_the_same_limits():
    by_columns = JointLimits.from_columns(NAMES, {**COLUMNS, "max_acceleration": [3.0, 4.0]})
    by_list = JointLimits.from_dict(by_columns.to_dict())
    assert by_columns == by_list
    assert by_columns.names == NAMES
    np.testing.assert_array_equal(by_columns.max_acceleration, [3.0, 4.0])


def test_null_acceleration_means_absent_in_every_form():
    assert (
        JointLimits.from_columns(NAMES, {**COLUMNS, "max_acceleration": None}).max_acceleration
        is None
    )
    joints = JointLimits.from_columns(NAMES, COLUMNS).to_dict()
    joints["joints"][0]["max_acceleration"] = None
    assert JointLimits.from_dict(joints).max_acceleration is None


def test_acceleration_for_some_joints_only_is_refused_naming_them():
    with pytest.raises(ValueError, match=r"all joints or none.*'j1'"):
        JointLimits.from_columns(NAMES, {**COLUMNS, "max_acceleration": [3.0, None]})


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("lower", [-1.0], "must list 2 values"),
        ("upper", [1.0, -3.0], "joint 'j1': lower limit"),
        ("max_velocity", [0.5, 0.0], "joint 'j1': max_velocity must be > 0"),
        ("max_velocity", [True, 0.5], "joint 'j0': max_velocity must be a number"),
        ("lower", [float("nan"), -1.0], "not finite"),
    ],
)
def test_bad_columns_are_refused_naming_the_joint(key, value, match):
    with pytest.raises(ValueError, match=match):
        JointLimits.from_columns(NAMES, {**COLUMNS, key: value})


def test_missing_column_is_refused():
    with pytest.raises(ValueError, match="lack"):
        JointLimits.from_columns(NAMES, {"lower": [0, 0], "upper": [1, 1]})


def test_sim_arm_config_limits_are_the_one_type():
    from robot_policy_ros.sim.arm import load_arm_config

    arm = load_arm_config()
    limits = arm.joint_limits()
    assert isinstance(limits, JointLimits)
    assert limits.names == tuple(arm.joint_names)
    assert JointLimits.from_dict(arm.limits_dict()) == limits


def test_from_mapping_reads_either_form_for_the_given_joints():
    limits = JointLimits.from_columns(NAMES, COLUMNS)
    whole_arm = limits.to_dict()
    whole_arm["joints"].reverse()
    whole_arm["joints"].append({"name": "gripper", "lower": 0, "upper": 1, "max_velocity": 1})
    whole_arm["links"] = {"base_height": 0.1}  # an arm YAML: other keys are not limits
    assert JointLimits.from_mapping(whole_arm, NAMES) == limits
    assert JointLimits.from_mapping(COLUMNS, NAMES) == limits
    assert JointLimits.from_mapping(whole_arm, ["j1", "j0"]) == limits.reorder(["j1", "j0"])


def test_from_mapping_keeps_the_rules_and_names_missing_joints():
    joints = JointLimits.from_columns(NAMES, COLUMNS).to_dict()
    with pytest.raises(KeyError, match=r"\['j2'\]"):
        JointLimits.from_mapping(joints, ["j0", "j2"])
    joints["joints"][1]["max_acceleration"] = None  # null: absent
    assert JointLimits.from_mapping(joints, NAMES).max_acceleration is None
    del joints["joints"][1]["max_velocity"]  # no longer "unbounded": refused
    with pytest.raises(ValueError, match=r"joint 'j1' lacks \['max_velocity'\]"):
        JointLimits.from_mapping(joints, NAMES)
    with pytest.raises(ValueError, match="lack"):
        JointLimits.from_mapping({"lower": [0, 0], "upper": [1, 1]}, NAMES)


@pytest.mark.parametrize(
    ("mutate", "index", "key", "problem"),
    [
        (lambda j: j[1].update(lower=9.0), 1, "lower", "must be below upper (2), got 9"),
        (lambda j: j[0].update(max_velocity=-1), 0, "max_velocity", "must be > 0, got -1"),
        (lambda j: j[0].update(upper="1.5"), 0, "upper", "must be a number, got '1.5'"),
        (lambda j: j[0].update(upper=float("inf")), 0, "upper", "must be finite, got inf"),
        (lambda j: j[1].update(name="j0"), 1, "name", "listed twice"),
        (lambda j: j[1].pop("upper"), 1, "upper", "is missing"),
        (lambda j: j[0].update(max_acceleration=2.0), None, "max_acceleration", "['j1']"),
    ],
)
def test_dict_errors_name_the_entry_the_field_and_the_problem(mutate, index, key, problem):
    from robot_policy_ros.core.joint_limits import JointLimitsError

    joints = JointLimits.from_columns(NAMES, COLUMNS).to_dict()
    mutate(joints["joints"])
    with pytest.raises(JointLimitsError) as err:
        JointLimits.from_dict(joints)
    assert (err.value.index, err.value.key) == (index, key)
    assert problem in err.value.problem
    if index is not None:
        assert f"'{joints['joints'][index]['name']}'" in str(err.value)


def test_preset_and_sim_arm_limits_go_through_joint_limits(tmp_path):
    """The arm preset and the sim arm config refuse what JointLimits refuses (here a quoted
    number), each naming the field its own way."""
    from pathlib import Path

    import yaml

    from robot_policy_ros import launch_support as ls
    from robot_policy_ros.sim.arm import (
        ArmConfigError,
        arm_config_from_dict,
        default_arm_config_path,
    )

    raw = yaml.safe_load(default_arm_config_path().read_text())
    raw["joints"][1]["max_velocity"] = "2.0"
    with pytest.raises(ArmConfigError, match=r"joint '\w+': max_velocity must be a number"):
        arm_config_from_dict(raw, source="bad.yaml")

    preset = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "config" / "arms" / "sim_arm.yaml").read_text()
    )
    preset["joints"][1]["max_velocity"] = "2.0"
    path = tmp_path / "quoted.yaml"
    path.write_text(yaml.safe_dump(preset))
    name = preset["joints"][1]["name"]
    with pytest.raises(ls.PresetError, match=rf"'joints\[1\] \({name}\)\.max_velocity' must be a"):
        ls.read_preset_file(path)


def test_columns_form_round_trips_and_refuses_unknown_keys():
    limits = JointLimits.from_columns(NAMES, {**COLUMNS, "max_acceleration": [3.0, 4.0]})
    assert JointLimits.from_columns(NAMES, limits.to_columns()) == limits
    assert JointLimits.from_columns(NAMES, COLUMNS).to_columns()["max_acceleration"] is None
    # A misspelt key must not silently mean "no acceleration limit".
    with pytest.raises(ValueError, match=r"unknown keys \['max_accel'\]"):
        JointLimits.from_columns(NAMES, {**COLUMNS, "max_accel": [3.0, 4.0]})


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("1.0", "must be a list of 2 numbers"),
        (1.0, "must be a list of 2 numbers"),
        ([[1.0], [2.0]], "must be a number"),
        (["1.0", 2.0], "must be a number"),
        ([1.0, None], "lack"),
    ],
)
def test_columns_must_be_flat_lists_of_numbers(value, match):
    with pytest.raises(ValueError, match=match):
        JointLimits.from_columns(NAMES, {**COLUMNS, "upper": value})


def test_a_huge_column_is_refused_with_a_short_message():
    with pytest.raises(ValueError, match="must list 2 values") as err:
        JointLimits.from_columns(NAMES, {**COLUMNS, "lower": [0.0] * 1_000_000})
    assert len(str(err.value)) < 300


def test_uniform_gives_the_same_limits_for_every_named_joint():
    limits = JointLimits.uniform(NAMES, -1.0, 1.0, 0.5)
    assert limits.names == NAMES and limits.max_acceleration is None
    np.testing.assert_array_equal(limits.upper, [1.0, 1.0])
    np.testing.assert_array_equal(JointLimits.uniform(NAMES, -1, 1, 0.5, 2.0).max_acceleration, 2.0)
    default = JointLimits.uniform(["a"])  # an untrained checkpoint's placeholder
    assert (default.lower[0], default.upper[0], default.max_velocity[0]) == (-3.14, 3.14, 2.0)
    with pytest.raises(ValueError, match="joint 'a': lower limit"):
        JointLimits.uniform(["a"], 1.0, -1.0, 0.5)
    with pytest.raises(ValueError, match="must be a number"):
        JointLimits.uniform(["a"], -1.0, True, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lower": [True, False]}, "real numbers"),
        ({"upper": ["1.0", "2.0"]}, "real numbers"),
        ({"max_velocity": [0.5, None]}, "real numbers"),
        ({"names": ("j0", "")}, "non-empty strings"),
        ({"names": "j0"}, "sequence of names"),
    ],
)
def test_the_constructor_keeps_the_same_rules(kwargs, match):
    args = {"names": NAMES, **{k: np.array(v) for k, v in COLUMNS.items()}, **kwargs}
    with pytest.raises(ValueError, match=match):
        JointLimits(**args)
