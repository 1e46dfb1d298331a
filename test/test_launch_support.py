"""The logic behind the launch files (robot_policy_ros.launch_support), without ROS launch:
preset vs checkpoint, argument -> parameter mapping, remapping, recording, whole-launch plans."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from robot_policy_ros import launch_support as ls
from robot_policy_ros.core.transport import PROFILE_VARS
from robot_policy_ros.sim.sequencer import EpisodeSequencer

REPO = Path(__file__).resolve().parents[1]
SIM_JOINTS = ["base_yaw", "shoulder_pitch", "elbow_pitch", "wrist_pitch"]
NOW = datetime(2025, 1, 2, 3, 4, 5)


def make_checkpoint(
    folder: Path,
    joints: list[str] | None = None,
    cameras: tuple[str, ...] = ("front",),
    drop: tuple[str, ...] = (),
) -> Path:
    """A checkpoint directory holding only the config.json the launch reads (a valid one:
    the launch reads it with the package's checkpoint reader); ``drop`` leaves keys out."""
    joints = list(SIM_JOINTS if joints is None else joints)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(joints)
    stats = {"mean": [0.0] * n, "std": [1.0] * n, "min": [-1.0] * n, "max": [1.0] * n}
    config = {
        "format_version": 1,
        "policy_type": "mlp",
        "joint_names": joints,
        "cameras": [{"name": c, "height": 96, "width": 96, "encoding": "rgb8"} for c in cameras],
        "fps": 10.0,
        "chunk_size": 10,
        "n_obs_steps": 1,
        "limits": {
            "lower": [-1.0] * n,
            "upper": [1.0] * n,
            "max_velocity": [0.5] * n,
            "max_acceleration": None,
        },
        "normalization": {"state": stats, "action": stats},
        "hyperparameters": {},
        "provenance": {},
        "weights": {},
    }
    for key in drop:
        del config[key]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def sim_preset() -> ls.ArmPreset:
    return ls.load_preset("sim_arm", REPO)


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "ckpt")


# ---------------------------------------------------------------- preset vs checkpoint


def test_matching_preset_and_checkpoint_pass(sim_preset, ckpt):
    assert ls.check_preset_matches_checkpoint(sim_preset, ckpt) == []


def test_config_json_path_works_like_the_checkpoint_directory(sim_preset, ckpt):
    assert ls.check_preset_matches_checkpoint(sim_preset, ckpt / "config.json") == []


def test_mismatch_names_both_joint_lists(tmp_path):
    so101 = ls.load_preset("so101", REPO)
    ckpt = make_checkpoint(tmp_path / "c")
    with pytest.raises(ls.PresetMismatchError) as err:
        ls.check_preset_matches_checkpoint(so101, ckpt)
    msg = str(err.value)
    assert str(so101.joint_names) in msg
    assert str(SIM_JOINTS) in msg
    assert "preset joints (6)" in msg and "checkpoint joints (4)" in msg
    assert "so101" in msg and str(ckpt) in msg


def test_count_mismatch_is_caught_even_when_names_overlap(tmp_path, sim_preset):
    ckpt = make_checkpoint(tmp_path / "c", SIM_JOINTS[:3])
    with pytest.raises(ls.PresetMismatchError, match=r"preset joints the checkpoint does not have"):
        ls.check_preset_matches_checkpoint(sim_preset, ckpt)


def test_reordered_joints_stop_a_position_array(tmp_path, sim_preset):
    ckpt = make_checkpoint(tmp_path / "c", list(reversed(SIM_JOINTS)))
    with pytest.raises(ls.PresetMismatchError, match="different order"):
        ls.check_preset_matches_checkpoint(sim_preset, ckpt)


def test_reordered_joints_are_fine_for_named_commands(tmp_path):
    fr3 = ls.load_preset("franka_fr3", REPO)  # joint_trajectory: messages carry names
    ckpt = make_checkpoint(tmp_path / "c", list(reversed(fr3.joint_names)), cameras=("front",))
    assert ls.check_preset_matches_checkpoint(fr3, ckpt) == []


def test_checkpoint_camera_without_a_preset_topic_warns(tmp_path, sim_preset):
    ckpt = make_checkpoint(tmp_path / "c", cameras=("front", "wrist"))
    (warning,) = ls.check_preset_matches_checkpoint(sim_preset, ckpt)
    assert "['wrist']" in warning and "camera_topics" in warning


def test_missing_checkpoint_config_is_reported(tmp_path, sim_preset):
    with pytest.raises(ls.PresetError, match=r"no config\.json"):
        ls.check_preset_matches_checkpoint(sim_preset, tmp_path)


def test_checkpoint_without_joint_names_is_reported(tmp_path, sim_preset):
    ckpt = make_checkpoint(tmp_path / "c", drop=("joint_names",))
    with pytest.raises(ls.PresetError, match="'joint_names'"):
        ls.check_preset_matches_checkpoint(sim_preset, ckpt)


def test_the_launch_refuses_what_the_checkpoint_reader_refuses(tmp_path, sim_preset):
    """One reader: the launch stops on the checkpoint.config message, naming the file."""
    from robot_policy_ros.checkpoint.config import read_checkpoint_config
    from robot_policy_ros.checkpoint.files import CheckpointError

    ckpt = make_checkpoint(tmp_path / "c")
    config = json.loads((ckpt / "config.json").read_text())
    config["limits"]["upper"][2] = -2.0  # below lower
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as reader:
        read_checkpoint_config(ckpt)
    with pytest.raises(ls.PresetError) as launch:
        ls.check_preset_matches_checkpoint(sim_preset, ckpt)
    assert str(launch.value) == str(reader.value)
    assert str(ckpt / "config.json") in str(launch.value)


def test_reading_checkpoint_info_does_not_import_torch():
    code = (
        "import sys; import robot_policy_ros.launch_support as ls; "
        "import robot_policy_ros.checkpoint.config; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_limits_from_checkpoint_use_the_limits_file_schema(ckpt, tmp_path):
    info = ls.read_checkpoint_info(ckpt)
    limits = ls.limits_from_checkpoint(info)
    assert [j["name"] for j in limits["joints"]] == SIM_JOINTS
    assert limits["joints"][0] == {
        "name": "base_yaw",
        "lower": -1.0,
        "upper": 1.0,
        "max_velocity": 0.5,
    }
    path = ls.write_limits_file(limits, tmp_path / "out")
    assert yaml.safe_load(path.read_text()) == limits


def test_a_checkpoint_without_limits_is_refused_by_the_reader(tmp_path):
    with pytest.raises(ls.PresetError, match=r"misses keys \['limits'\]"):
        ls.read_checkpoint_info(make_checkpoint(tmp_path / "c", drop=("limits",)))


def test_limits_from_an_info_without_limits_ask_for_a_preset():
    info = ls.CheckpointInfo("/ckpt/config.json", tuple(SIM_JOINTS), ("front",))
    with pytest.raises(ls.PresetError, match="arm:=none needs them"):
        ls.limits_from_checkpoint(info)


# ---------------------------------------------------------------- argument parsing


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("False", False), ("1", True), ("off", False)]
)
def test_parse_bool(text, value):
    assert ls.parse_bool(text, "x") is value


def test_parse_bool_rejects_other_words():
    with pytest.raises(ls.PresetError, match="record:='maybe' must be true or false"):
        ls.parse_bool("maybe", "record")


@pytest.mark.parametrize("text", ["0", "-3", "nan", "inf", "fast"])
def test_parse_positive_float_rejects(text):
    with pytest.raises(ls.PresetError, match="control_rate_hz"):
        ls.parse_positive_float(text, "control_rate_hz")


def test_parse_camera_topics_pairs():
    assert ls.parse_camera_topics("front=/cam0/image_raw, wrist=/cam1/image_raw") == {
        "front": "/cam0/image_raw",
        "wrist": "/cam1/image_raw",
    }
    assert ls.parse_camera_topics("") == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [("front", "not camera=topic"), ("front=/a//b", "invalid"), ("a=/x,a=/y", "given twice")],
)
def test_parse_camera_topics_rejects(text, match):
    with pytest.raises(ls.PresetError, match=match):
        ls.parse_camera_topics(text)


# ---------------------------------------------------------------- topics and remapping


def test_topics_come_from_the_preset_by_default(sim_preset):
    plan, warnings = ls.topic_plan({}, sim_preset, ["front"])
    assert plan.joint_states == "joint_states"
    assert plan.command == "forward_position_controller/commands"
    assert plan.command_interface == "position_array"
    assert plan.cameras == {"front": "front/image_raw"}
    assert warnings == []


def test_topic_arguments_override_the_preset(sim_preset):
    args = {
        "joint_states_topic": "/robot/joint_states",
        "command_topic": "/robot/cmd",
        "command_interface": "joint_trajectory",
        "camera_topics": "front=/cam/image_raw",
    }
    plan, _ = ls.topic_plan(args, sim_preset, ["front"])
    assert (plan.joint_states, plan.command, plan.command_interface) == (
        "/robot/joint_states",
        "/robot/cmd",
        "joint_trajectory",
    )
    assert plan.cameras == {"front": "/cam/image_raw"}


def test_single_camera_topic_maps_the_only_checkpoint_camera():
    plan, _ = ls.topic_plan({"camera_topic": "/usb_cam/image_raw"}, None, ["top"])
    assert plan.cameras == {"top": "/usb_cam/image_raw"}


def test_single_camera_topic_with_two_cameras_is_an_error(sim_preset):
    with pytest.raises(ls.PresetError, match="camera_topics:=name=topic"):
        ls.topic_plan({"camera_topic": "/x/image_raw"}, sim_preset, ["front", "wrist"])


def test_camera_topics_for_an_unknown_camera_is_an_error(sim_preset):
    with pytest.raises(ls.PresetError, match=r"\['side'\]"):
        ls.topic_plan({"camera_topics": "side=/side/image_raw"}, sim_preset, ["front"])


def test_unmapped_checkpoint_camera_warns_and_stays_relative(sim_preset):
    plan, warnings = ls.topic_plan({}, sim_preset, ["front", "wrist"])
    assert plan.cameras["wrist"] == "wrist/image_raw"
    assert len(warnings) == 1 and "wrist" in warnings[0]


def test_invalid_topic_argument_is_rejected(sim_preset):
    with pytest.raises(ls.PresetError, match="command_topic"):
        ls.topic_plan({"command_topic": "/bad topic"}, sim_preset, ["front"])


def test_remappings_map_the_node_names_onto_the_robot_topics():
    plan = ls.TopicPlan("/r/js", "/ctrl/commands", "position_array", {"front": "/cam/image_raw"})
    assert ls.remappings(plan) == [
        ("joint_states", "/r/js"),
        ("joint_commands", "/ctrl/commands"),
        ("front/image_raw", "/cam/image_raw"),
    ]


def test_remappings_skip_identity_rules():
    plan = ls.TopicPlan(
        "joint_states", "joint_commands", "position_array", {"front": "front/image_raw"}
    )
    assert ls.remappings(plan) == []


def test_compressed_transport_remaps_the_compressed_topic():
    plan = ls.TopicPlan("/js", "/c", "position_array", {"front": "/cam/image_raw"}, "compressed")
    assert ("front/image_raw/compressed", "/cam/image_raw/compressed") in ls.remappings(plan)


# ---------------------------------------------------------------- parameters


def test_checkpoint_argument_is_required(sim_preset):
    with pytest.raises(ls.PresetError, match="checkpoint:= is required"):
        ls.node_parameters({}, sim_preset)


def test_parameters_from_arguments_and_preset(sim_preset):
    args = {
        "checkpoint": "/ckpt",
        "device": "cuda:1",
        "dtype": "float16",
        "autostart": "false",
        "use_sim_time": "true",
        "blending": "temporal_ensemble",
    }
    params = ls.node_parameters(args, sim_preset)
    (policy,) = params["policy_node"]
    (streamer,) = params["command_streamer"]
    assert policy == {
        "checkpoint": "/ckpt",
        "autostart": False,
        "use_sim_time": True,
        "device": "cuda:1",
        "dtype": "float16",
    }
    assert streamer == {
        "checkpoint": "/ckpt",
        "autostart": False,
        "use_sim_time": True,
        "limits_file": sim_preset.path,
        "control_rate_hz": 50.0,
        "command_interface": "position_array",
        "blending": "temporal_ensemble",
    }


def test_control_rate_argument_overrides_the_preset_as_a_float(sim_preset):
    streamer = ls.node_parameters({"checkpoint": "c", "control_rate_hz": "20"}, sim_preset)[
        "command_streamer"
    ][0]
    assert streamer["control_rate_hz"] == 20.0 and isinstance(streamer["control_rate_hz"], float)


def test_empty_arguments_leave_node_defaults(sim_preset):
    policy = ls.node_parameters({"checkpoint": "c", "device": "", "dtype": ""}, sim_preset)
    assert policy["policy_node"] == [{"checkpoint": "c"}]


def test_params_file_comes_last_so_it_overrides(tmp_path, sim_preset):
    pfile = tmp_path / "p.yaml"
    pfile.write_text("/**:\n  ros__parameters:\n    control_rate_hz: 10.0\n")
    params = ls.node_parameters({"checkpoint": "c", "params_file": str(pfile)}, sim_preset)
    assert params["policy_node"][-1] == str(pfile)
    assert params["command_streamer"][-1] == str(pfile)


def test_missing_params_file_is_an_error(tmp_path, sim_preset):
    with pytest.raises(ls.PresetError, match="params_file"):
        ls.node_parameters({"checkpoint": "c", "params_file": str(tmp_path / "x.yaml")}, sim_preset)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("device", "gpu"),
        ("dtype", "float64"),
        ("blending", "mix"),
        ("command_interface", "velocity"),
        ("image_transport", "theora"),
        ("autostart", "sure"),
    ],
)
def test_invalid_argument_values_are_rejected_before_anything_starts(sim_preset, name, value):
    with pytest.raises(ls.PresetError, match=name):
        ls.node_parameters({"checkpoint": "c", name: value}, sim_preset)


# ---------------------------------------------------------------- recording


def test_bag_record_command_is_jazzy_syntax():
    cmd = ls.bag_record_cmd(["/joint_states", "/cam/image_raw"], "bags/run1")
    assert cmd == [
        "ros2",
        "bag",
        "record",
        "--storage",
        "mcap",
        "--output",
        "bags/run1",
        "--disable-keyboard-controls",
        "--topics",
        "/joint_states",
        "/cam/image_raw",
    ]


def test_bag_record_with_sim_time_and_sqlite():
    cmd = ls.bag_record_cmd(["/a"], "out", storage="sqlite3", use_sim_time=True)
    assert cmd[3:5] == ["--storage", "sqlite3"] and "--use-sim-time" in cmd


@pytest.mark.parametrize(
    ("topics", "storage", "match"),
    [([], "mcap", "empty"), (["/a b"], "mcap", "cannot record"), (["/a"], "db3", "storage")],
)
def test_bag_record_rejects(topics, storage, match):
    with pytest.raises(ls.PresetError, match=match):
        ls.bag_record_cmd(topics, "out", storage=storage)


def test_bag_output_dir_is_fresh(tmp_path):
    first = ls.bag_output_dir(str(tmp_path), "policy", NOW)
    assert first == str(tmp_path / "policy_20250102_030405")
    Path(first).mkdir()
    assert ls.bag_output_dir(str(tmp_path), "policy", NOW) == first + "_1"


@pytest.mark.parametrize(
    ("topic", "ns", "resolved"),
    [
        ("joint_states", "", "/joint_states"),
        ("joint_states", "arm1", "/arm1/joint_states"),
        ("/x", "arm1", "/x"),
    ],
)
def test_resolve_topic(topic, ns, resolved):
    assert ls.resolve_topic(topic, ns) == resolved


# ---------------------------------------------------------------- whole launches


class RecordingArgs(Mapping):
    """Launch configurations that remember which names the plan read."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def get(self, key, default=None):
        self.read.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def _defaults(table) -> dict[str, str]:
    return {n: d for n, d, _ in table}


def test_policy_plan_wires_the_stack(tmp_path, ckpt):
    args = {
        **_defaults(ls.POLICY_ARGUMENTS),
        "checkpoint": str(ckpt),
        "namespace": "/robot1/",
        "record": "true",
        "bag_dir": str(tmp_path / "bags"),
        "command_topic": "/ctrl/commands",
        "log_level": "debug",
    }
    plan = ls.plan_policy_launch(args, REPO, now=NOW)
    assert [n.name for n in plan.nodes] == ["policy_node", "command_streamer"]
    assert plan.namespace == "robot1" and plan.log_level == "debug"
    rules = plan.nodes[0].remappings
    assert rules == plan.nodes[1].remappings
    assert ("joint_commands", "/ctrl/commands") in rules
    assert plan.record_cmd[plan.record_cmd.index("--output") + 1] == str(
        tmp_path / "bags" / "policy_20250102_030405"
    )
    topics = plan.record_cmd[plan.record_cmd.index("--topics") + 1 :]
    assert topics == [
        "/robot1/joint_states",
        "/robot1/front/image_raw",
        "/robot1/action_chunk",
        "/ctrl/commands",
        "/robot1/e_stop",
        "/diagnostics",
    ]
    assert any("/ctrl/commands" in line for line in plan.infos)


def test_policy_plan_without_recording_has_no_bag(ckpt):
    plan = ls.plan_policy_launch({"checkpoint": str(ckpt), "arm": "sim_arm"}, REPO)
    assert plan.record_cmd is None


def test_policy_plan_stops_on_a_mismatching_preset(ckpt):
    with pytest.raises(ls.PresetMismatchError) as err:
        ls.plan_policy_launch({"checkpoint": str(ckpt), "arm": "ur5e"}, REPO)
    assert str(SIM_JOINTS) in str(err.value)
    assert "shoulder_pan_joint" in str(err.value)


def test_policy_plan_with_a_user_preset_file(tmp_path, ckpt):
    data = yaml.safe_load((REPO / "config" / "arms" / "sim_arm.yaml").read_text())
    data.update(name="my_arm", command_topic="/my/cmd", joint_states_topic="/my/js")
    path = tmp_path / "my_arm.yaml"
    path.write_text(yaml.safe_dump(data))
    plan = ls.plan_policy_launch({"checkpoint": str(ckpt), "arm": str(path)}, REPO)
    streamer = plan.nodes[1]
    assert streamer.parameters[0]["limits_file"] == str(path.resolve())
    assert ("joint_commands", "/my/cmd") in streamer.remappings


def test_policy_plan_without_preset_takes_limits_from_the_checkpoint(tmp_path, ckpt):
    args = {"checkpoint": str(ckpt), "arm": "none", "command_topic": "/c"}
    plan = ls.plan_policy_launch(args, REPO, scratch_dir=tmp_path)
    streamer = plan.nodes[1].parameters[0]
    limits = yaml.safe_load(Path(streamer["limits_file"]).read_text())
    assert [j["name"] for j in limits["joints"]] == SIM_JOINTS
    assert "control_rate_hz" not in streamer  # the node's own default applies


def test_policy_plan_reads_only_declared_arguments(ckpt):
    args = RecordingArgs({**_defaults(ls.POLICY_ARGUMENTS), "checkpoint": str(ckpt)})
    ls.plan_policy_launch(args, REPO)
    assert args.read <= set(_defaults(ls.POLICY_ARGUMENTS))


def test_record_demos_plan_in_the_sim(tmp_path):
    args = {**_defaults(ls.RECORD_DEMOS_ARGUMENTS), "bag_dir": str(tmp_path)}
    plan = ls.plan_record_demos({**args, "episodes": "5"}, REPO, now=NOW)
    assert [n.name for n in plan.nodes] == ["sim_robot", "scripted_expert", "episode_driver"]
    driver = plan.nodes[-1].parameters[0]
    assert (driver["episodes"], driver["reset_delay_s"]) == (5, 1.0)
    topics = plan.record_cmd[plan.record_cmd.index("--topics") + 1 :]
    assert topics == [
        "/joint_states",
        "/front/image_raw",
        "/forward_position_controller/commands",
        "/sim_robot/episode",
    ]
    assert plan.record_cmd[plan.record_cmd.index("--output") + 1] == str(
        tmp_path / "demo_20250102_030405"
    )


def test_record_demos_on_a_real_robot_starts_no_sim(tmp_path):
    args = {
        "arm": "so101",
        "sim": "false",
        "bag_dir": str(tmp_path),
        "extra_topics": "/tf, /tf_static",
    }
    plan = ls.plan_record_demos(args, REPO)
    assert plan.nodes == []
    topics = plan.record_cmd[plan.record_cmd.index("--topics") + 1 :]
    assert topics == [
        "/joint_states",
        "/front_camera/image_raw",
        "/wrist_camera/image_raw",
        "/forward_position_controller/commands",
        "/tf",
        "/tf_static",
    ]


def test_record_demos_with_the_package_recorder(tmp_path):
    args = {"recorder": "bag_recorder", "sim": "false", "bag_dir": str(tmp_path), "namespace": "a"}
    plan = ls.plan_record_demos(args, REPO, now=NOW)
    assert plan.record_cmd is None
    (rec,) = plan.nodes
    assert rec.executable == "bag_recorder"
    assert rec.parameters[0]["topics"][0] == "/a/joint_states"
    assert rec.parameters[0]["episode_topic"] == ""  # real robot: ~/start and ~/stop
    assert rec.parameters[0]["robot_config"].endswith("sim_arm.yaml")
    assert rec.parameters[0]["output_dir"] == str(tmp_path / "demo_20250102_030405")


def test_record_demos_reads_only_declared_arguments(tmp_path):
    args = RecordingArgs({**_defaults(ls.RECORD_DEMOS_ARGUMENTS), "bag_dir": str(tmp_path)})
    ls.plan_record_demos(args, REPO)
    assert args.read <= set(_defaults(ls.RECORD_DEMOS_ARGUMENTS))


def test_gazebo_arguments_force_sim_time_and_pick_the_controller():
    out = ls.gazebo_arguments(
        {"controller": "joint_trajectory_controller", "gz_camera_topic": "/cam"}
    )
    assert out["use_sim_time"] == "true"
    assert out["command_interface"] == "joint_trajectory"
    assert out["command_topic"] == "/joint_trajectory_controller/joint_trajectory"
    assert out["camera_topic"] == "/cam"
    default = ls.gazebo_arguments({})
    assert default["command_topic"] == "/forward_position_controller/commands"


def test_gazebo_rejects_an_unknown_controller():
    with pytest.raises(ls.PresetError, match="controller"):
        ls.gazebo_arguments({"controller": "effort_controller"})


def test_gz_bridge_arguments():
    assert ls.gz_bridge_arguments(False) == []
    assert ls.gz_bridge_arguments(True, "/cam") == [
        "/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock",
        "/cam@sensor_msgs/msg/Image[gz.msgs.Image",
    ]


def test_sim_robot_parameters(tmp_path):
    pfile = tmp_path / "sim.yaml"
    pfile.write_text("{}")
    assert ls.sim_robot_parameters({"use_sim_time": "true", "sim_params_file": str(pfile)}) == [
        {"use_sim_time": True},
        str(pfile),
    ]


# ---------------------------------------------------------------- nodes and launch files


def test_installed_nodes_start_by_package_and_executable():
    assert ls.node_command("policy_node", True) == {
        "package": "robot_policy_ros",
        "executable": "policy_node",
    }


def test_source_tree_nodes_start_as_python_modules(ckpt):
    plan = ls.plan_policy_launch(
        {"checkpoint": str(ckpt), "arm": "sim_arm", "namespace": "ns"}, REPO
    )
    kwargs = ls.node_kwargs(plan.nodes[0], plan, REPO, package_indexed=False)
    assert kwargs["executable"] == sys.executable
    assert kwargs["arguments"] == ["-m", "robot_policy_ros.nodes.policy_node"]
    assert kwargs["namespace"] == "ns" and kwargs["name"] == "policy_node"
    assert kwargs["ros_arguments"] == ["--log-level", "info"]
    assert kwargs["additional_env"]["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
    installed = ls.node_kwargs(plan.nodes[0], plan, REPO, package_indexed=True)
    assert set(installed.get("additional_env", {})) <= set(PROFILE_VARS)
    assert installed["package"] == "robot_policy_ros"


def test_launched_nodes_use_the_shipped_dds_profile_unless_the_user_set_one(ckpt, monkeypatch):
    plan = ls.plan_policy_launch({"checkpoint": str(ckpt), "arm": "sim_arm"}, REPO)
    for var in PROFILE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    for indexed in (False, True):
        env = ls.node_kwargs(plan.nodes[0], plan, REPO, package_indexed=indexed)["additional_env"]
        assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(REPO / "config" / "fastdds.xml")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/mine.xml")
    installed = ls.node_kwargs(plan.nodes[0], plan, REPO, package_indexed=True)
    assert "additional_env" not in installed


def test_fallback_share_dir_is_the_folder_above_launch():
    assert ls.fallback_share_dir(REPO / "launch" / "policy.launch.py") == REPO


@pytest.mark.parametrize(
    "table",
    [
        ls.POLICY_ARGUMENTS,
        ls.sim_launch_arguments(),
        ls.RECORD_DEMOS_ARGUMENTS,
        ls.gazebo_launch_arguments(),
    ],
)
def test_every_launch_argument_has_a_description_and_a_unique_name(table):
    names = [n for n, _, _ in table]
    assert len(names) == len(set(names))
    assert all(desc.strip().endswith(".") for _, _, desc in table)


LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_files_only_use_existing_launch_support_names(path):
    """Checked here without ROS launch: each `ls.<name>` a launch file uses exists."""
    tree = ast.parse(path.read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ls"
    }
    assert used, "launch files delegate to launch_support"
    assert [name for name in sorted(used) if not hasattr(ls, name)] == []
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in tree.body
    )


def test_the_four_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {
        "policy.launch.py",
        "sim.launch.py",
        "record_demos.launch.py",
        "gazebo.launch.py",
    }


LAUNCH_SUPPORT_MODULES = sorted((REPO / "robot_policy_ros" / "launch_support").glob("*.py"))
ROS_MODULES = {"launch", "launch_ros", "rclpy", "ament_index_python"}


def _imported_roots(nodes: Iterator[ast.AST]) -> set[str]:
    imports = [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))]
    roots = {a.name.split(".")[0] for n in imports if isinstance(n, ast.Import) for a in n.names}
    return roots | {
        n.module.split(".")[0] for n in imports if isinstance(n, ast.ImportFrom) and n.module
    }


@pytest.mark.parametrize(
    "path", LAUNCH_SUPPORT_MODULES, ids=[p.name for p in LAUNCH_SUPPORT_MODULES]
)
def test_launch_support_imports_no_ros_at_module_level(path):
    tree = ast.parse(path.read_text())
    assert not _imported_roots(iter(tree.body)) & ROS_MODULES
    if path.name != "glue.py":  # the launch_ros glue imports them inside its functions
        assert not _imported_roots(ast.walk(tree)) & ROS_MODULES


def test_launch_support_is_a_package_of_modules_by_concern():
    names = {p.stem for p in LAUNCH_SUPPORT_MODULES}
    assert {"__init__", "presets", "arguments", "plans", "glue"} <= names
    assert not (REPO / "robot_policy_ros" / "launch_support.py").exists()
    glue = ast.parse((REPO / "robot_policy_ros" / "launch_support" / "glue.py").read_text())
    assert {"launch", "launch_ros"} <= _imported_roots(ast.walk(glue))


def test_record_demos_with_the_package_recorder_in_the_sim(tmp_path):
    args = {"recorder": "bag_recorder", "bag_dir": str(tmp_path), "use_sim_time": "true"}
    plan = ls.plan_record_demos(args, REPO, now=NOW)
    names = [n.name for n in plan.nodes]
    assert names == ["sim_robot", "scripted_expert", "episode_driver", "bag_recorder"]
    params = plan.nodes[-1].parameters[0]
    assert params["episode_topic"] == "sim_robot/episode"  # the sim's episodes split the bags
    assert params["use_sim_time"] is True
    assert "/sim_robot/episode" in params["topics"]


@pytest.mark.parametrize(
    ("name", "value"), [("episodes", "-1"), ("episodes", "two"), ("reset_delay_s", "0")]
)
def test_record_demos_rejects_bad_episode_arguments(tmp_path, name, value):
    with pytest.raises(ls.PresetError, match=name):
        ls.plan_record_demos({"bag_dir": str(tmp_path), name: value}, REPO)


def test_episode_sequencer_resets_after_each_episode_and_stops_after_the_last():
    seq = EpisodeSequencer(episodes=2)
    assert seq.on_episode({"index": 0, "done": False}) == "wait"
    assert seq.on_episode({"index": 0, "done": True, "success": True}) == "reset"
    assert seq.on_episode({"index": 0, "done": True}) == "wait"  # republished, counted once
    assert seq.on_episode({"index": 1, "done": False}) == "wait"
    assert seq.on_episode({"index": 1, "done": True, "success": False}) == "stop"
    assert seq.finished == [0, 1]


def test_episode_sequencer_without_a_limit_never_stops():
    seq = EpisodeSequencer()
    assert [seq.on_episode({"index": i, "done": True}) for i in range(50)] == ["reset"] * 50


def test_every_node_of_the_sim_recording_is_an_installed_executable(tmp_path):
    """Installed, each node starts as ``package + executable``: each must be a console script."""
    setup_py = (REPO / "setup.py").read_text()
    plan = ls.plan_record_demos({"recorder": "bag_recorder", "bag_dir": str(tmp_path)}, REPO)
    for node in plan.nodes:
        assert f'"{node.executable} = robot_policy_ros.nodes.{node.executable}:main"' in setup_py
        assert ls.node_command(node.executable, True) == {
            "package": "robot_policy_ros",
            "executable": node.executable,
        }


@pytest.mark.ros
def test_episode_driver_resets_the_sim_and_exits_after_the_episodes(rclpy_context, start_node):
    """The driver as a real node against a stand-in sim (episode topic + reset service)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from ros_test_utils import FakeSimEpisodes, spin_until

    node = Node("fake_sim", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    sim = FakeSimEpisodes(node)
    driver = start_node(
        "robot_policy_ros.nodes.episode_driver", "-p", "episodes:=2", "-p", "reset_delay_s:=0.1"
    )
    try:
        spin_until(executor, lambda: False, 1.0)  # let it discover us
        sim.finish()  # episode 0 ends -> the driver resets the sim
        assert spin_until(executor, lambda: sim.resets == [0], 20.0), driver.output()
        sim.finish()  # episode 1 ends -> 2 recorded: the driver exits by itself
        assert spin_until(executor, lambda: not driver.alive(), 20.0), driver.output()
        assert driver.proc.returncode == 0, driver.output()
        assert sim.resets == [0]
        assert "recorded 2 episodes" in driver.output()
    finally:
        executor.shutdown()
        node.destroy_node()


@pytest.mark.parametrize("node", ["policy_node", "command_streamer"])
def test_example_params_file_sets_real_parameters_to_valid_values(node):
    """config/policy_params.yaml only names parameters the node declares, with valid values."""
    module = importlib.import_module(f"robot_policy_ros.nodes.{node}")
    data = yaml.safe_load((REPO / "config" / "policy_params.yaml").read_text())
    values = data[f"/**/{node}"]["ros__parameters"]
    specs = {s.name: s for s in module.SPECS}
    assert set(values) <= set(specs), f"unknown parameters: {set(values) - set(specs)}"
    for name, value in values.items():
        specs[name].validate(value)  # raises ParameterError naming value and fix


def test_no_shipped_default_turns_the_acceleration_limit_off():
    """Limits with accelerations are enforced by default: no config, launch file, demo or
    benchmark of the package sets the streamer's use_acceleration_limit to false."""
    import re

    def walk(value) -> Iterator[tuple[str, object]]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield str(key), item
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    offenders = []
    for path in sorted((REPO / "config").rglob("*.yaml")):
        for key, value in walk(yaml.safe_load(path.read_text())):
            if key == "use_acceleration_limit" and value is not True:
                offenders.append(f"{path.relative_to(REPO)}: {key}: {value!r}")
    pattern = re.compile(r"use_acceleration_limit['\"]?\s*(?::=|=|:|,)\s*['\"]?(?:false|False)")
    for folder in ("launch", "robot_policy_ros", "benchmarks", "tools"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for match in pattern.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(REPO)}: {match.group(0)}")
    assert offenders == []


DOC = REPO / "doc" / "launch.md"


@pytest.mark.parametrize(
    "table",
    [ls.POLICY_ARGUMENTS, ls.SIM_ARGUMENTS, ls.RECORD_DEMOS_ARGUMENTS, ls.GAZEBO_ARGUMENTS],
)
def test_doc_describes_every_launch_argument(table):
    text = DOC.read_text()
    assert [n for n, _, _ in table if f"`{n}`" not in text] == []


def _yaml_blocks(text: str) -> list[str]:
    blocks, inside, current = [], False, []
    for line in text.splitlines():
        if line.strip() == "```yaml":
            inside, current = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append("\n".join(current))
        elif inside:
            current.append(line)
    return blocks


def test_doc_preset_examples_are_valid_presets(tmp_path):
    """The schema example and the worked 'Bring your own arm' example both validate."""
    presets = [yaml.safe_load(b) for b in _yaml_blocks(DOC.read_text())]
    presets = [p for p in presets if isinstance(p, dict) and "joints" in p]
    assert len(presets) == 2
    for data in presets:
        preset = ls.validate_preset(data, "doc/launch.md example")
        assert preset.joints
    myarm = ls.validate_preset(presets[1], "doc/launch.md example")
    assert myarm.joint_names == ["base", "shoulder", "elbow", "wrist", "gripper"]
    ckpt = make_checkpoint(tmp_path / "c", myarm.joint_names)
    assert ls.check_preset_matches_checkpoint(myarm, ckpt) == []
