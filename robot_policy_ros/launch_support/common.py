"""What every launch_support module shares: the package name, the allowed values of
arguments and preset fields, the errors that stop a launch, the ROS topic-name rule.

The choice lists come from the nodes' own parameter tables (``robot_policy_ros/params/``),
so the launch accepts exactly what the nodes accept.
"""

from __future__ import annotations

import re

from robot_policy_ros.params import node_table

PACKAGE = "robot_policy_ros"


def _choices(node: str, name: str) -> tuple[str, ...]:
    """The allowed values of a node parameter, from the node's own parameter table."""
    for spec in node_table(node):
        if spec.name == name and spec.choices:
            return tuple(spec.choices)
    raise KeyError(f"{node} has no choice parameter {name!r}")


#: Values the command_streamer's ``command_interface`` and ``blending`` parameters accept.
COMMAND_INTERFACES = _choices("command_streamer", "command_interface")
BLENDING_MODES = _choices("command_streamer", "blending")
#: Values of the policy_node's ``dtype`` and ``image_transport`` parameters.
DTYPES = _choices("policy_node", "dtype")
IMAGE_TRANSPORTS = _choices("policy_node", "image_transport")
#: ROS log levels accepted by ``--ros-args --log-level``.
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
#: Recorders record_demos.launch.py can start.
RECORDERS = ("ros2bag", "bag_recorder")
#: Gazebo (gz_ros2_control) controllers gazebo.launch.py can command.
GAZEBO_CONTROLLERS = {
    "forward_position_controller": ("position_array", "/forward_position_controller/commands"),
    "joint_trajectory_controller": (
        "joint_trajectory",
        "/joint_trajectory_controller/joint_trajectory",
    ),
}

#: ``arm:=none`` runs without a preset: limits come from the checkpoint, topics from arguments.
NO_PRESET = "none"

_TOKEN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PresetError(ValueError):
    """An arm preset (or launch argument) the launch cannot run with; names file and field."""


class PresetMismatchError(PresetError):
    """The arm preset's joints disagree with the checkpoint's; the message names both lists."""


def validate_topic_name(topic: str) -> str | None:
    """Return why ``topic`` is not a valid ROS 2 topic name, or None if it is.

    Relative names (``joint_states``) resolve inside the launch namespace; absolute names
    (``/joint_states``) do not. Substitutions like ``{node}`` and ``~`` are not allowed here.
    """
    if not topic:
        return "it is empty"
    if topic.endswith("/") and topic != "/":
        return "it ends with '/'"
    if topic == "/":
        return "it is only '/'"
    if "//" in topic:
        return "it contains '//'"
    body = topic[1:] if topic.startswith("/") else topic
    for token in body.split("/"):
        if not _TOKEN_RE.match(token):
            return (
                f"'{token}' is not a valid name token (letters, digits and '_', "
                "not starting with a digit)"
            )
    return None
