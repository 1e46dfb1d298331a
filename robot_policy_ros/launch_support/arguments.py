"""Launch arguments: what each launch file declares (name, default, description), and how
an argument string is read (bools, numbers, choices, topics, camera topic pairs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from robot_policy_ros.launch_support.common import (
    _TOKEN_RE,
    LOG_LEVELS,
    PresetError,
    validate_topic_name,
)

# --------------------------------------------------------------------------------------
# Launch arguments (name, default, description) of each launch file
# --------------------------------------------------------------------------------------

POLICY_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    (
        "checkpoint",
        "",
        "Checkpoint directory (required). A random one for trying things out: "
        "robot-policy init-checkpoint.",
    ),
    (
        "arm",
        "sim_arm",
        "Arm preset: a name from the package's config/arms (sim_arm, so100, so101, koch_v1_1, "
        "franka_fr3, franka_panda, ur5e, vx300s), a path to your own preset YAML, or 'none' "
        "(limits from the checkpoint, topics from the arguments below).",
    ),
    ("namespace", "", "ROS namespace of both nodes; relative topics resolve inside it."),
    ("use_sim_time", "false", "Use /clock time (true for Gazebo or bag playback)."),
    ("device", "cpu", "Inference device: cpu, cuda or cuda:N."),
    ("dtype", "", "Inference dtype: float32, float16 or bfloat16 (empty: the node's default)."),
    ("control_rate_hz", "", "Command rate in Hz (empty: the preset's control_rate_hz)."),
    (
        "blending",
        "",
        "How overlapping action chunks are blended: replace, temporal_ensemble, average or "
        "crossfade (empty: the command_streamer's default).",
    ),
    ("joint_states_topic", "", "sensor_msgs/JointState input topic (empty: the preset's)."),
    (
        "camera_topics",
        "",
        "Image topic of each checkpoint camera as name=topic pairs, comma separated, e.g. "
        "front=/cam/image_raw,wrist=/wrist/image_raw (empty: the preset's cameras).",
    ),
    (
        "camera_topic",
        "",
        "Image topic for a single-camera checkpoint (shortcut for camera_topics).",
    ),
    (
        "image_transport",
        "",
        "raw, or compressed to subscribe to <camera topic>/compressed (empty: the node's "
        "default, raw).",
    ),
    ("command_topic", "", "Topic the joint commands are published on (empty: the preset's)."),
    (
        "command_interface",
        "",
        "Command message: position_array (std_msgs/Float64MultiArray, for a "
        "forward_position_controller), joint_state (sensor_msgs/JointState) or "
        "joint_trajectory (trajectory_msgs/JointTrajectory) (empty: the preset's).",
    ),
    (
        "params_file",
        "",
        "ROS parameters YAML applied last to both nodes, so it overrides any parameter "
        "(see config/policy_params.yaml).",
    ),
    (
        "autostart",
        "true",
        "Configure and activate the lifecycle nodes at start (false: bring them up with "
        "ros2 lifecycle set).",
    ),
    ("record", "false", "Also run ros2 bag record on the stack's inputs and outputs."),
    ("bag_dir", "bags", "Folder for bags; each run records into a new timestamped sub-folder."),
    ("log_level", "info", "Log level of the nodes: debug, info, warn, error or fatal."),
)

SIM_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("sim_params_file", "", "ROS parameters YAML for sim_robot (e.g. camera, rates, seed)."),
)

RECORD_DEMOS_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("arm", "sim_arm", "Arm preset (name or path) whose topics are recorded."),
    (
        "sim",
        "true",
        "true: start the embedded sim_robot and its scripted expert as the teleoperator; "
        "false: record a real robot driven by your teleoperation.",
    ),
    (
        "recorder",
        "ros2bag",
        "ros2bag (ros2 bag record, MCAP) or bag_recorder (this package's recorder node).",
    ),
    ("bag_dir", "demos", "Folder for demonstrations; each run gets a new timestamped bag."),
    (
        "episodes",
        "0",
        "With sim:=true: episodes to record; the sim is reset after each one and the launch "
        "ends after the last (0: until Ctrl-C).",
    ),
    ("reset_delay_s", "1.0", "With sim:=true: pause between one episode's end and the next."),
    ("namespace", "", "ROS namespace of the sim, the expert and relative topics."),
    ("use_sim_time", "false", "Record with /clock time."),
    ("joint_states_topic", "", "Joint states topic to record (empty: the preset's)."),
    ("camera_topics", "", "Camera topics to record as name=topic pairs (empty: the preset's)."),
    ("camera_topic", "", "Image topic of a single camera (shortcut for camera_topics)."),
    ("command_topic", "", "Command topic (the demonstrated actions) (empty: the preset's)."),
    ("extra_topics", "", "More topics to record, space or comma separated."),
    ("sim_params_file", "", "ROS parameters YAML for sim_robot and scripted_expert."),
    ("recorder_params_file", "", "ROS parameters YAML for bag_recorder (recorder:=bag_recorder)."),
    ("log_level", "info", "Log level of the nodes: debug, info, warn, error or fatal."),
)

GAZEBO_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    (
        "controller",
        "forward_position_controller",
        "gz_ros2_control controller to command: forward_position_controller "
        "(position_array) or joint_trajectory_controller (joint_trajectory).",
    ),
    (
        "gz_camera_topic",
        "",
        "Gazebo camera topic to bridge to ROS with ros_gz_bridge and feed to the policy "
        "(empty: no camera bridge; set camera_topic(s) to an image topic you bridge yourself).",
    ),
    ("bridge_clock", "false", "Bridge /clock from Gazebo (false if your bringup already does)."),
    (
        "robot_launch",
        "",
        "Optional path of your Gazebo bringup launch file (gz sim + gz_ros2_control) to include.",
    ),
)


def _with_defaults(
    table: Sequence[tuple[str, str, str]], **defaults: str
) -> tuple[tuple[str, str, str], ...]:
    return tuple((n, defaults.get(n, d), t) for n, d, t in table)


def sim_launch_arguments() -> tuple[tuple[str, str, str], ...]:
    """sim.launch.py arguments: the policy arguments (arm defaults to sim_arm) + sim ones."""
    return SIM_ARGUMENTS + _with_defaults(POLICY_ARGUMENTS, arm="sim_arm")


def gazebo_launch_arguments() -> tuple[tuple[str, str, str], ...]:
    """gazebo.launch.py arguments: Gazebo ones + policy ones (use_sim_time is forced true)."""
    return GAZEBO_ARGUMENTS + tuple(a for a in POLICY_ARGUMENTS if a[0] != "use_sim_time")


# --------------------------------------------------------------------------------------
# Reading argument strings
# --------------------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(value: str | bool, name: str) -> bool:
    """A launch argument as a bool ('true'/'false', '1'/'0', 'yes'/'no', 'on'/'off')."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PresetError(f"launch argument {name}:={value!r} must be true or false")


def parse_positive_float(value: str | float, name: str) -> float:
    """A launch argument as a finite float > 0."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise PresetError(f"launch argument {name}:={value!r} must be a number") from exc
    if not math.isfinite(out) or out <= 0:
        raise PresetError(f"launch argument {name}:={value!r} must be a finite number > 0")
    return out


def _choice(args: Mapping[str, str], name: str, choices: Sequence[str]) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in choices:
        raise PresetError(f"launch argument {name}:={value!r} must be one of {', '.join(choices)}")
    return value


def _arg(args: Mapping[str, str], name: str) -> str:
    return (args.get(name) or "").strip()


def parse_camera_topics(text: str) -> dict[str, str]:
    """``"front=/cam/image_raw,wrist=/wrist/image_raw"`` -> ``{"front": ..., "wrist": ...}``.

    Pairs are separated by commas or whitespace; each is ``camera=topic``.
    """
    out: dict[str, str] = {}
    for pair in re.split(r"[,\s]+", text.strip()):
        if not pair:
            continue
        if "=" not in pair:
            raise PresetError(
                f"launch argument camera_topics: '{pair}' is not camera=topic "
                "(example: camera_topics:=front=/camera/image_raw,wrist=/wrist/image_raw)"
            )
        name, topic = (s.strip() for s in pair.split("=", 1))
        if not _TOKEN_RE.match(name):
            raise PresetError(f"launch argument camera_topics: bad camera name '{name}'")
        problem = validate_topic_name(topic)
        if problem:
            raise PresetError(
                f"launch argument camera_topics: topic '{topic}' is invalid: {problem}"
            )
        if name in out:
            raise PresetError(f"launch argument camera_topics: camera '{name}' given twice")
        out[name] = topic
    return out


def _checked_topic(args: Mapping[str, str], name: str) -> str:
    value = _arg(args, name)
    if value:
        problem = validate_topic_name(value)
        if problem:
            raise PresetError(f"launch argument {name}:={value!r} is not a valid topic: {problem}")
    return value


def launch_namespace(args: Mapping[str, str]) -> str:
    """The ``namespace`` argument without surrounding '/', validated ("" for none)."""
    ns = _arg(args, "namespace").strip("/")
    if ns:
        problem = validate_topic_name(ns)
        if problem:
            raise PresetError(f"launch argument namespace:={ns!r} is invalid: {problem}")
    return ns


def log_level_arg(args: Mapping[str, str]) -> str:
    """The ``log_level`` argument, validated (default ``info``)."""
    return _choice(args, "log_level", LOG_LEVELS) or "info"
