"""The policy stack against a Gazebo (gz sim + gz_ros2_control) robot.

    # 1. start your robot in Gazebo (gz sim + gz_ros2_control + controllers), e.g. your own
    #    bringup, or include it here with robot_launch:=/path/to/your_gz_bringup.launch.py
    # 2. attach the policy:
    ros2 launch robot_policy_ros gazebo.launch.py checkpoint:=/ckpt arm:=ur5e \\
        controller:=forward_position_controller gz_camera_topic:=/camera bridge_clock:=true

use_sim_time is forced to true. Commands go to the gz_ros2_control controller
(/forward_position_controller/commands as a position array, or
/joint_trajectory_controller/joint_trajectory); joint states come from the
joint_state_broadcaster (/joint_states); the camera comes from ros_gz_bridge. Nothing here
needs Gazebo or ros_gz to be installed unless robot_launch, gz_camera_topic or
bridge_clock:=true ask for them, so the package builds and its other launch files run
without Gazebo.
"""

from pathlib import Path

from launch.actions import IncludeLaunchDescription, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

import robot_policy_ros.launch_support as ls


def _launch_setup(context):
    share_dir, _ = ls.find_share_dir(context, __file__)
    args = context.launch_configurations
    actions = []
    robot_launch = args.get("robot_launch", "").strip()
    if robot_launch:
        actions.append(
            IncludeLaunchDescription(PythonLaunchDescriptionSource(str(Path(robot_launch))))
        )
    bridges = ls.gz_bridge_arguments(
        ls.parse_bool(args.get("bridge_clock", "false"), "bridge_clock"),
        args.get("gz_camera_topic", "").strip(),
    )
    if bridges:
        # Imported here: only this optional branch needs ros_gz_bridge.
        from launch_ros.actions import Node

        actions.append(
            Node(
                package="ros_gz_bridge",
                executable="parameter_bridge",
                name="policy_gz_bridge",
                arguments=bridges,
                parameters=[{"use_sim_time": True}],
                output="screen",
                # the bridge publishes the camera: its segment must hold a full frame
                additional_env=ls.dds_profile_env(share_dir),
            )
        )
    policy_args = ls.gazebo_arguments(args)
    names = {n for n, _, _ in ls.POLICY_ARGUMENTS}
    actions.append(
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(Path(share_dir) / "launch" / "policy.launch.py")),
            launch_arguments=[(k, v) for k, v in policy_args.items() if k in names],
        )
    )
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            *ls.declare_arguments(ls.gazebo_launch_arguments()),
            OpaqueFunction(function=_launch_setup),
        ]
    )
