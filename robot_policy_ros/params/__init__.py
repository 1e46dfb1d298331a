"""Every node's parameter table, in modules that do not import rclpy.

One table per node (a list of :class:`~robot_policy_ros.core.params.ParamSpec`): the node
declares and validates from it, the launch files validate arguments against it, and
``doc/parameters.md`` is generated from it (:mod:`robot_policy_ros.params.reference`).
:data:`NODE_TABLES` lists where each node's table lives.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from robot_policy_ros.core.params import ParamSpec

# node executable -> "module:ATTRIBUTE" of its table (imported on demand).
NODE_TABLES: dict[str, str] = {
    "policy_node": "robot_policy_ros.params.policy_node:SPECS",
    "command_streamer": "robot_policy_ros.params.command_streamer:SPECS",
    "camera_node": "robot_policy_ros.params.camera_node:SPECS",
    "bag_recorder": "robot_policy_ros.params.bag_recorder:SPECS",
    "sim_robot": "robot_policy_ros.params.sim_robot:SPECS",
    "scripted_expert": "robot_policy_ros.params.scripted_expert:SPECS",
    "episode_driver": "robot_policy_ros.params.episode_driver:SPECS",
}

# Parameters every lifecycle-managed node adds to its own table.
MANAGED_NODES = ("policy_node", "command_streamer")


def node_table(node: str) -> list[ParamSpec]:
    """The parameter table of ``node`` (for managed nodes, with the shared parameters)."""
    module_name, attribute = NODE_TABLES[node].split(":")
    specs: Sequence[ParamSpec] = getattr(importlib.import_module(module_name), attribute)
    if node in MANAGED_NODES:
        from robot_policy_ros.params.managed import MANAGED_SPECS

        return [*specs, *MANAGED_SPECS]
    return list(specs)
