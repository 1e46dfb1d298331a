"""Everything the launch files decide, as plain tested Python.

The launch files under ``launch/`` stay thin and declarative: they declare arguments and
hand the resolved argument strings to the functions here (from an ``OpaqueFunction``),
which load and validate the arm preset, check it against the checkpoint, map launch
arguments to node parameters, build the topic remappings and the ``ros2 bag record``
command. Only :mod:`.glue` uses ``launch``/``launch_ros``, and only inside its functions;
nothing imports ``rclpy``, so all of it is unit-tested without a ROS install
(``test/test_presets.py``, ``test/test_launch_support.py``).

By concern:

* :mod:`.common` -- package name, allowed values, ``PresetError``, the topic-name rule;
* :mod:`.presets` -- the arm preset schema (``config/arms/<name>.yaml``), validation, loading;
* :mod:`.checkpoint_info` -- what the launch reads from a checkpoint, preset vs checkpoint;
* :mod:`.arguments` -- each launch file's argument table, reading argument strings;
* :mod:`.parameters` -- arguments and preset -> node parameters, topics, remappings;
* :mod:`.recording` -- topics to record, the ``ros2 bag record`` command;
* :mod:`.plans` -- whole-launch plans (``NodePlan``, ``LaunchPlan``, ``plan_*``);
* :mod:`.glue` -- plans -> launch_ros actions, share directory, how each node is started.

The launch files use this package as ``import robot_policy_ros.launch_support as ls``;
the names below are that interface.
"""

from __future__ import annotations

from robot_policy_ros.core.transport import dds_profile_env
from robot_policy_ros.launch_support.arguments import (
    GAZEBO_ARGUMENTS,
    POLICY_ARGUMENTS,
    RECORD_DEMOS_ARGUMENTS,
    SIM_ARGUMENTS,
    gazebo_launch_arguments,
    launch_namespace,
    log_level_arg,
    parse_bool,
    parse_camera_topics,
    parse_positive_float,
    sim_launch_arguments,
)
from robot_policy_ros.launch_support.checkpoint_info import (
    CheckpointInfo,
    check_preset_matches_checkpoint,
    limits_from_checkpoint,
    read_checkpoint_info,
    write_limits_file,
)
from robot_policy_ros.launch_support.common import (
    BLENDING_MODES,
    COMMAND_INTERFACES,
    DTYPES,
    GAZEBO_CONTROLLERS,
    IMAGE_TRANSPORTS,
    LOG_LEVELS,
    NO_PRESET,
    PACKAGE,
    RECORDERS,
    PresetError,
    PresetMismatchError,
    validate_topic_name,
)
from robot_policy_ros.launch_support.glue import (
    declare_arguments,
    fallback_share_dir,
    find_share_dir,
    launch_actions,
    node_command,
    node_kwargs,
    source_tree_env,
)
from robot_policy_ros.launch_support.parameters import (
    TopicPlan,
    node_parameters,
    remappings,
    resolve_topic,
    sim_robot_parameters,
    topic_plan,
)
from robot_policy_ros.launch_support.plans import (
    LaunchPlan,
    NodePlan,
    gazebo_arguments,
    gz_bridge_arguments,
    plan_policy_launch,
    plan_record_demos,
)
from robot_policy_ros.launch_support.presets import (
    ArmPreset,
    PresetCamera,
    PresetJoint,
    available_presets,
    load_preset,
    presets_dir,
    read_preset_file,
    resolve_preset_path,
    validate_preset,
)
from robot_policy_ros.launch_support.recording import (
    bag_output_dir,
    bag_record_cmd,
    demo_record_topics,
    policy_record_topics,
)

__all__ = [
    "BLENDING_MODES",
    "COMMAND_INTERFACES",
    "DTYPES",
    "GAZEBO_ARGUMENTS",
    "GAZEBO_CONTROLLERS",
    "IMAGE_TRANSPORTS",
    "LOG_LEVELS",
    "NO_PRESET",
    "PACKAGE",
    "POLICY_ARGUMENTS",
    "RECORDERS",
    "RECORD_DEMOS_ARGUMENTS",
    "SIM_ARGUMENTS",
    "ArmPreset",
    "CheckpointInfo",
    "LaunchPlan",
    "NodePlan",
    "PresetCamera",
    "PresetError",
    "PresetJoint",
    "PresetMismatchError",
    "TopicPlan",
    "available_presets",
    "bag_output_dir",
    "bag_record_cmd",
    "check_preset_matches_checkpoint",
    "dds_profile_env",
    "declare_arguments",
    "demo_record_topics",
    "fallback_share_dir",
    "find_share_dir",
    "gazebo_arguments",
    "gazebo_launch_arguments",
    "gz_bridge_arguments",
    "launch_actions",
    "launch_namespace",
    "limits_from_checkpoint",
    "load_preset",
    "log_level_arg",
    "node_command",
    "node_kwargs",
    "node_parameters",
    "parse_bool",
    "parse_camera_topics",
    "parse_positive_float",
    "plan_policy_launch",
    "plan_record_demos",
    "policy_record_topics",
    "presets_dir",
    "read_checkpoint_info",
    "read_preset_file",
    "remappings",
    "resolve_preset_path",
    "resolve_topic",
    "sim_launch_arguments",
    "sim_robot_parameters",
    "source_tree_env",
    "topic_plan",
    "validate_preset",
    "validate_topic_name",
    "write_limits_file",
]
