"""Arm presets (config/arms/*.yaml): every packaged preset is valid, cited, usable as the
command_streamer's limits_file, and the strict validator names file and field on errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_policy_ros import launch_support as ls
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.sim.arm import load_arm_config

REPO = Path(__file__).resolve().parents[1]
ARMS = REPO / "config" / "arms"
PRESET_FILES = sorted(ARMS.glob("*.yaml"))
PRESET_IDS = [p.stem for p in PRESET_FILES]

# The list: the embedded sim arm, SO-100/SO-101, Franka FR3/Panda, UR5e,
# ViperX/ALOHA (one arm), Koch v1.1.
REQUIRED = {
    "sim_arm",
    "so100",
    "so101",
    "franka_fr3",
    "franka_panda",
    "ur5e",
    "vx300s",
    "koch_v1_1",
}


def _valid() -> dict:
    return {
        "name": "my_arm",
        "description": "test arm",
        "source": "made up for a test",
        "joints": [
            {"name": "j1", "lower": -1.0, "upper": 1.0, "max_velocity": 2.0},
            {"name": "j2", "lower": -0.5, "upper": 2.0, "max_velocity": 1.5},
        ],
        "command_interface": "position_array",
        "command_topic": "/forward_position_controller/commands",
        "joint_states_topic": "/joint_states",
        "cameras": [{"name": "front", "topic": "/front/image_raw"}],
        "control_rate_hz": 50.0,
    }


def _write(tmp_path: Path, data: dict | str, name: str = "my_arm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------- packaged presets


def test_required_presets_are_packaged():
    assert set(ls.available_presets(REPO)) >= REQUIRED


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_IDS)
def test_packaged_preset_validates(path: Path):
    preset = ls.load_preset(path.stem, REPO)
    assert preset.name == path.stem, "preset name must equal its file name (arm:=<name>)"
    assert preset.path == str(path)
    assert len(preset.joints) >= 4


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_IDS)
def test_packaged_preset_cites_its_source_in_a_comment(path: Path):
    text = path.read_text()
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    assert any(c.startswith("# Source") for c in comments), (
        f"{path.name} needs a '# Source...' comment naming where its limits come from"
    )
    assert ls.load_preset(path.stem, REPO).source


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_IDS)
def test_packaged_preset_joints_are_exactly_the_limits_file_schema(path: Path):
    """The preset file itself is handed to the command_streamer as limits_file."""
    raw = yaml.safe_load(path.read_text())["joints"]
    allowed = {"name", "lower", "upper", "max_velocity", "max_acceleration"}
    for joint in raw:
        assert {"name", "lower", "upper", "max_velocity"} <= set(joint) <= allowed
    as_floats = [{k: (v if k == "name" else float(v)) for k, v in j.items()} for j in raw]
    assert ls.load_preset(path.stem, REPO).limits_dict() == {"joints": as_floats}


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_IDS)
def test_packaged_preset_loads_as_joint_limits(path: Path):
    """Cross-check with JointLimits.from_yaml, the streamer's actual reader."""
    limits = JointLimits.from_yaml(path)
    preset = ls.load_preset(path.stem, REPO)
    assert tuple(limits.names) == tuple(preset.joint_names)
    np.testing.assert_allclose(limits.lower, [j.lower for j in preset.joints])
    np.testing.assert_allclose(limits.upper, [j.upper for j in preset.joints])
    np.testing.assert_allclose(limits.max_velocity, [j.max_velocity for j in preset.joints])
    if preset.joints[0].max_acceleration is None:
        assert limits.max_acceleration is None
    else:
        np.testing.assert_allclose(
            limits.max_acceleration, [j.max_acceleration for j in preset.joints]
        )


def test_published_limits_are_the_cited_values():
    """Spot checks against the cited sources, so an edit that breaks them is noticed."""
    fr3 = {j.name: j for j in ls.load_preset("franka_fr3", REPO).joints}
    assert (fr3["fr3_joint4"].lower, fr3["fr3_joint4"].upper) == (-3.0421, -0.1518)
    assert (fr3["fr3_joint6"].lower, fr3["fr3_joint6"].upper) == (0.5445, 4.5169)
    assert [j.max_velocity for j in fr3.values()] == [2.62] * 4 + [5.26, 4.18, 5.26]
    panda = ls.load_preset("franka_panda", REPO)
    assert [j.max_acceleration for j in panda.joints] == [15, 7.5, 10, 12.5, 15, 20, 20]
    ur = {j.name: j for j in ls.load_preset("ur5e", REPO).joints}
    assert ur["elbow_joint"].upper == pytest.approx(math.pi, abs=1e-5)
    assert ur["wrist_3_joint"].upper == pytest.approx(2 * math.pi, abs=1e-5)
    assert all(j.max_velocity == pytest.approx(math.pi, abs=1e-5) for j in ur.values())
    vx = {j.name: j for j in ls.load_preset("vx300s", REPO).joints}
    assert vx["shoulder"].lower == pytest.approx(math.radians(-106), abs=1e-5)
    assert vx["wrist_angle"].upper == pytest.approx(math.radians(128), abs=1e-5)
    so101 = {j.name: j for j in ls.load_preset("so101", REPO).joints}
    assert so101["shoulder_pan"].upper == pytest.approx(math.radians(110), abs=1e-4)
    assert list(so101) == [
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "gripper",
    ]


def test_sim_arm_preset_agrees_with_the_sim_config():
    sim = {
        j["name"]: j
        for j in load_arm_config(REPO / "config" / "sim_arm.yaml").limits_dict()["joints"]
    }
    preset = ls.load_preset("sim_arm", REPO)
    assert preset.joint_names == list(sim), "preset joints must be the sim's, in the sim's order"
    for joint in preset.joints:
        ref = sim[joint.name]
        assert ref["lower"] <= joint.lower < joint.upper <= ref["upper"], joint.name
        if "max_velocity" in ref:
            assert joint.max_velocity <= ref["max_velocity"], joint.name
        if "max_acceleration" in ref and joint.max_acceleration is not None:
            assert joint.max_acceleration <= ref["max_acceleration"], joint.name


# ---------------------------------------------------------------- loading


def test_load_preset_by_path(tmp_path: Path):
    path = _write(tmp_path, _valid())
    preset = ls.load_preset(str(path), REPO)
    assert preset.joint_names == ["j1", "j2"]
    assert preset.camera_topics == {"front": "/front/image_raw"}
    assert preset.path == str(path.resolve())


def test_unknown_preset_name_lists_the_available_ones():
    with pytest.raises(ls.PresetError, match="no arm preset named 'so102'") as err:
        ls.load_preset("so102", REPO)
    assert "so101" in str(err.value) and "ur5e" in str(err.value)


def test_missing_preset_file_is_named(tmp_path: Path):
    with pytest.raises(ls.PresetError, match="does not exist"):
        ls.load_preset(str(tmp_path / "nope.yaml"), REPO)


def test_empty_arm_argument_explains_the_choices():
    with pytest.raises(ls.PresetError, match="arm:= is empty"):
        ls.load_preset("", REPO)


def test_invalid_yaml_names_the_file(tmp_path: Path):
    path = _write(tmp_path, "joints: [unclosed\n")
    with pytest.raises(ls.PresetError, match=f"{path}.*not valid YAML"):
        ls.read_preset_file(path)


# ---------------------------------------------------------------- strict validation


def _error(tmp_path: Path, data: dict) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ls.PresetError) as err:
        ls.read_preset_file(path)
    msg = str(err.value)
    assert str(path) in msg, "every message names the file"
    return msg


def test_unknown_top_level_field_is_rejected(tmp_path: Path):
    data = _valid()
    data["joint_state_topic"] = "/joint_states"  # typo of joint_states_topic
    assert "joint_state_topic" in _error(tmp_path, data)


def test_missing_field_is_named(tmp_path: Path):
    data = _valid()
    del data["command_topic"]
    assert "'command_topic' is missing" in _error(tmp_path, data)


def test_cameras_may_be_omitted(tmp_path: Path):
    data = _valid()
    del data["cameras"]
    assert ls.read_preset_file(_write(tmp_path, data)).cameras == ()


def test_lower_not_below_upper_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"][1]["lower"] = 3.0
    msg = _error(tmp_path, data)
    assert "joints[1] (j2).lower" in msg and "must be below" in msg


def test_non_positive_velocity_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"][0]["max_velocity"] = 0
    assert "joints[0] (j1).max_velocity' must be > 0" in _error(tmp_path, data)


def test_non_finite_limit_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"][0]["upper"] = float("inf")
    assert "must be finite" in _error(tmp_path, data)


def test_boolean_is_not_a_number(tmp_path: Path):
    data = _valid()
    data["joints"][0]["upper"] = True
    assert "must be a number" in _error(tmp_path, data)


def test_duplicate_joint_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"][1]["name"] = "j1"
    assert "listed twice" in _error(tmp_path, data)


def test_missing_joint_key_is_named(tmp_path: Path):
    data = _valid()
    del data["joints"][0]["max_velocity"]
    assert "joints[0].max_velocity' is missing" in _error(tmp_path, data)


def test_unknown_joint_key_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"][0]["velocity"] = 1.0
    msg = _error(tmp_path, data)
    assert "velocity" in msg and "joints[0]" in msg


def test_acceleration_must_be_given_for_all_joints_or_none(tmp_path: Path):
    data = _valid()
    data["joints"][0]["max_acceleration"] = 5.0
    msg = _error(tmp_path, data)
    assert "['j1']" in msg and "['j2']" in msg


def test_null_acceleration_asks_to_omit_the_key(tmp_path: Path):
    data = _valid()
    data["joints"][0]["max_acceleration"] = None
    data["joints"][1]["max_acceleration"] = None
    assert "omit the key" in _error(tmp_path, data)


def test_acceleration_for_every_joint_is_kept(tmp_path: Path):
    data = _valid()
    for joint in data["joints"]:
        joint["max_acceleration"] = 4.0
    preset = ls.read_preset_file(_write(tmp_path, data))
    assert [j["max_acceleration"] for j in preset.limits_dict()["joints"]] == [4.0, 4.0]


def test_limits_dict_omits_unknown_acceleration(tmp_path: Path):
    preset = ls.read_preset_file(_write(tmp_path, _valid()))
    assert all("max_acceleration" not in j for j in preset.limits_dict()["joints"])


def test_empty_joint_list_is_rejected(tmp_path: Path):
    data = _valid()
    data["joints"] = []
    assert "'joints' must be a non-empty list" in _error(tmp_path, data)


def test_unknown_command_interface_is_rejected(tmp_path: Path):
    data = _valid()
    data["command_interface"] = "position"
    msg = _error(tmp_path, data)
    assert "command_interface" in msg and "position_array" in msg


@pytest.mark.parametrize("topic", ["", "/a//b", "/a/", "1abc", "/cam/0image", "a b"])
def test_invalid_topic_is_rejected(tmp_path: Path, topic: str):
    data = _valid()
    data["command_topic"] = topic
    assert "command_topic" in _error(tmp_path, data)


def test_bad_camera_name_is_rejected(tmp_path: Path):
    data = _valid()
    data["cameras"][0]["name"] = "front-cam"
    assert "cameras[0].name" in _error(tmp_path, data)


def test_duplicate_camera_is_rejected(tmp_path: Path):
    data = _valid()
    data["cameras"].append({"name": "front", "topic": "/other/image_raw"})
    assert "camera 'front' is listed twice" in _error(tmp_path, data)


@pytest.mark.parametrize("rate", [0, -5, 5000])
def test_control_rate_out_of_range_is_rejected(tmp_path: Path, rate: float):
    data = _valid()
    data["control_rate_hz"] = rate
    assert "control_rate_hz" in _error(tmp_path, data)


def test_bad_preset_name_is_rejected(tmp_path: Path):
    data = _valid()
    data["name"] = "my arm"
    assert "'name'" in _error(tmp_path, data)


def test_non_mapping_preset_is_rejected(tmp_path: Path):
    path = _write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ls.PresetError, match="expected a mapping"):
        ls.read_preset_file(path)


@pytest.mark.parametrize(
    ("topic", "ok"),
    [
        ("joint_states", True),
        ("/joint_states", True),
        ("/ns/cam_0/image_raw", True),
        ("_private", True),
        ("/", False),
        ("~/x", False),
        ("/x/{node}", False),
    ],
)
def test_validate_topic_name(topic: str, ok: bool):
    assert (ls.validate_topic_name(topic) is None) == ok
