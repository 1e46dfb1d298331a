"""The embedded simulated arm (sim_robot, with its camera) driven by the policy stack.

    ros2 launch robot_policy_ros sim.launch.py checkpoint:=/path/to/ckpt
    ros2 launch robot_policy_ros sim.launch.py checkpoint:=/ckpt namespace:=sim1 record:=true

sim_robot publishes joint_states and front/image_raw and listens on
forward_position_controller/commands, like a ros2_control robot. The policy stack is
policy.launch.py included with arm:=sim_arm, so it is wired purely by the preset's topic
remapping, exactly as it would be on a real robot.
"""

from pathlib import Path

from launch.actions import IncludeLaunchDescription, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

import robot_policy_ros.launch_support as ls


def _launch_setup(context):
    share_dir, indexed = ls.find_share_dir(context, __file__)
    args = context.launch_configurations
    sim = ls.NodePlan("sim_robot", "sim_robot", ls.sim_robot_parameters(args))
    plan = ls.LaunchPlan(
        [sim], ls.launch_namespace(args), ls.log_level_arg(args), infos=["starting sim_robot"]
    )
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(Path(share_dir) / "launch" / "policy.launch.py")),
        launch_arguments=[(n, LaunchConfiguration(n)) for n, _, _ in ls.POLICY_ARGUMENTS],
    )
    return [*ls.launch_actions(plan, share_dir, indexed), policy]


def generate_launch_description():
    return LaunchDescription(
        [*ls.declare_arguments(ls.sim_launch_arguments()), OpaqueFunction(function=_launch_setup)]
    )
