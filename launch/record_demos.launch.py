"""Record demonstrations: the robot-side topics into a bag, for training.

    ros2 launch robot_policy_ros record_demos.launch.py                 # sim + scripted expert
    ros2 launch robot_policy_ros record_demos.launch.py sim:=false arm:=so101 \\
        command_topic:=/forward_position_controller/commands         # your teleop drives it
    ros2 launch robot_policy_ros record_demos.launch.py recorder:=bag_recorder

Records the preset's joint states, camera images and command topic (the demonstrated
actions) with ros2 bag record (MCAP) or this package's bag_recorder node. With sim:=true
the embedded sim_robot runs with the scripted expert as the teleoperator, and the
sim_robot/episode topic is recorded too so episodes can be split.
"""

from launch.actions import OpaqueFunction
from launch.launch_description import LaunchDescription

import robot_policy_ros.launch_support as ls


def _launch_setup(context):
    share_dir, indexed = ls.find_share_dir(context, __file__)
    plan = ls.plan_record_demos(context.launch_configurations, share_dir)
    return ls.launch_actions(plan, share_dir, indexed)


def generate_launch_description():
    return LaunchDescription(
        [
            *ls.declare_arguments(ls.RECORD_DEMOS_ARGUMENTS),
            OpaqueFunction(function=_launch_setup),
        ]
    )
