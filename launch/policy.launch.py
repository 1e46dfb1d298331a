"""Run a learned policy on a robot: policy_node + command_streamer (+ ros2 bag record).

    ros2 launch robot_policy_ros policy.launch.py checkpoint:=/path/to/ckpt arm:=so101
    ros2 launch robot_policy_ros policy.launch.py checkpoint:=/ckpt arm:=/path/my_arm.yaml \\
        joint_states_topic:=/my_robot/joint_states command_topic:=/my_ctrl/commands \\
        camera_topics:=front=/cam0/image_raw record:=true
    ros2 launch robot_policy_ros policy.launch.py --show-args   # every argument, described

The arm preset gives joint limits (passed to the command_streamer as its limits_file),
topics, command interface and control rate; any of them can be overridden by an argument.
The launch stops before starting anything if the preset's joints disagree with the
checkpoint's. All decisions live in robot_policy_ros.launch_support (unit-tested).
"""

from launch.actions import OpaqueFunction
from launch.launch_description import LaunchDescription

import robot_policy_ros.launch_support as ls


def _launch_setup(context):
    share_dir, indexed = ls.find_share_dir(context, __file__)
    plan = ls.plan_policy_launch(context.launch_configurations, share_dir)
    return ls.launch_actions(plan, share_dir, indexed)


def generate_launch_description():
    return LaunchDescription(
        [*ls.declare_arguments(ls.POLICY_ARGUMENTS), OpaqueFunction(function=_launch_setup)]
    )
