"""The launch_ros glue: the only launch_support module that uses ``launch``,
``launch_ros`` and ``ament_index_python``, and only inside its functions (imported when
called, so everything else, and the kwargs below, are tested without ROS).

Turns a :class:`~robot_policy_ros.launch_support.plans.LaunchPlan` into launch actions;
finds the share directory (install space, or the source checkout) and how to start each
node from it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_policy_ros.core.transport import dds_profile_env
from robot_policy_ros.launch_support.common import PACKAGE
from robot_policy_ros.launch_support.plans import LaunchPlan, NodePlan

# --------------------------------------------------------------------------------------
# Share directory and executables (install space or source tree)
# --------------------------------------------------------------------------------------


def fallback_share_dir(launch_file: str | os.PathLike) -> Path:
    """The folder holding ``config/`` next to a launch file's ``launch/`` folder.

    In an install space that is ``share/robot_policy_ros``; in a source checkout, the
    repository root. Used only when the package is not in the ament index.
    """
    return Path(launch_file).resolve().parent.parent


def node_command(executable: str, package_indexed: bool) -> dict[str, Any]:
    """launch_ros ``Node`` keyword arguments that start ``executable``.

    Installed (in the ament index): ``package=robot_policy_ros, executable=...`` as ROS
    expects. From a source checkout: the same node as ``python -m robot_policy_ros.nodes.X``
    with the checkout on PYTHONPATH.
    """
    if package_indexed:
        return {"package": PACKAGE, "executable": executable}
    module = {"robot-policy": "robot_policy_ros.cli"}.get(
        executable, f"robot_policy_ros.nodes.{executable}"
    )
    return {"executable": sys.executable, "arguments": ["-m", module]}


def source_tree_env(share_dir: str | os.PathLike) -> dict[str, str]:
    """PYTHONPATH for nodes started from a source checkout (``share_dir`` is its root)."""
    root = str(Path(share_dir).resolve())
    current = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (root, current) if p)}


# --------------------------------------------------------------------------------------
# Glue used by the launch files (imports launch/launch_ros lazily)
# --------------------------------------------------------------------------------------


def node_kwargs(
    node: NodePlan, plan: LaunchPlan, share_dir: str | os.PathLike, package_indexed: bool
) -> dict[str, Any]:
    """Keyword arguments of the launch_ros ``Node`` action that starts ``node``."""
    kwargs = node_command(node.executable, package_indexed)
    arguments = [*kwargs.pop("arguments", []), *node.arguments]
    if arguments:
        kwargs["arguments"] = arguments
    kwargs.update(
        name=node.name,
        parameters=list(node.parameters),
        remappings=list(node.remappings),
        ros_arguments=["--log-level", plan.log_level],
        output="screen",
    )
    if plan.namespace:
        kwargs["namespace"] = plan.namespace
    # config/fastdds.xml (large shared-memory segment: full-size images arrive in full)
    env = dds_profile_env(share_dir)
    if not package_indexed:
        env.update(source_tree_env(share_dir))
        kwargs["exec_name"] = node.name  # label output "[policy_node-1]", not "[python-1]"
    if env:
        kwargs["additional_env"] = env
    return kwargs


def declare_arguments(table: Sequence[tuple[str, str, str]]) -> list:
    """``DeclareLaunchArgument`` actions for an argument table."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(n, default_value=d, description=t) for n, d, t in table]


def find_share_dir(context: Any, launch_file: str | os.PathLike) -> tuple[str, bool]:
    """(share directory, whether the package is in the ament index).

    ``FindPackageShare`` in an install space; the source checkout next to ``launch_file``
    when the package is not installed (running the launch files from a clone).
    """
    from ament_index_python.packages import PackageNotFoundError
    from launch_ros.substitutions import FindPackageShare

    try:
        return FindPackageShare(PACKAGE).perform(context), True
    except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
        return str(fallback_share_dir(launch_file)), False


def launch_actions(plan: LaunchPlan, share_dir: str | os.PathLike, package_indexed: bool) -> list:
    """The launch actions that carry out ``plan``: log lines, nodes, ``ros2 bag record``."""
    from launch.actions import ExecuteProcess, LogInfo, Shutdown
    from launch_ros.actions import Node

    actions: list = [LogInfo(msg=f"[robot_policy_ros] {m}") for m in plan.infos]
    actions += [LogInfo(msg=f"[robot_policy_ros] WARNING: {w}") for w in plan.warnings]
    for node in plan.nodes:
        kwargs = node_kwargs(node, plan, share_dir, package_indexed)
        if node.required:
            kwargs["on_exit"] = Shutdown(reason=f"{node.name} exited")
        actions.append(Node(**kwargs))
    if plan.record_cmd:
        actions.append(ExecuteProcess(cmd=plan.record_cmd, output="screen", name="bag_record"))
    return actions
