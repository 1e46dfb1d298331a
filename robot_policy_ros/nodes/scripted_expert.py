"""scripted_expert: solves the sim task from privileged state, as a teleoperator would.

Subscribes ``joint_states``, ``sim_robot/targets`` (privileged; every target disc of the
episode) and ``sim_robot/episode``; on every new set of targets it picks one (the only
one in ``reach`` and ``cued_targets``, whose ``~/targets`` holds only the cued disc; a
seeded coin in ``two_targets``, see :func:`choose_target`), waits the task's start delay
(cued_targets: until well after the cue is gone), plans
(inverse kinematics + minimum-jerk moves: hover above the target, then lower the tool
onto it) from the measured joint positions, and publishes
the plan's setpoint at a fixed rate on ``forward_position_controller/commands``
(std_msgs/Float64MultiArray, the arm's joint order), holding the final pose afterwards
until the episode is done; then it stops publishing (the controller holds the last
command) so that nothing it sent reaches the arm after the next reset.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.scripted_expert import SPECS
from robot_policy_ros.sim.arm import ArmConfigError, load_arm_config
from robot_policy_ros.sim.expert import ExpertConfig, ExpertPlanner, IKError, choose_target
from robot_policy_ros.sim.task import expert_start_delay_s


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class ScriptedExpertNode(Node):
    """Plans and streams the expert's joint position commands."""

    def __init__(self, **kwargs) -> None:
        super().__init__("scripted_expert", **kwargs)
        declare_parameters(self, SPECS)
        p = read_parameters(self, SPECS)
        self.params = p
        self.arm_config = load_arm_config(p["arm_config"] or None)
        self.planner = ExpertPlanner(
            self.arm_config,
            ExpertConfig(
                hover_height_m=p["hover_height_m"],
                touch_height_m=p["touch_height_m"],
                speed=p["speed"],
                noise_std=p["noise_std"],
            ),
        )
        self.joint_names = list(self.arm_config.joint_names)
        self._q: np.ndarray | None = None
        self._q_stamp = -1.0
        self._target: np.ndarray | None = None
        self._target_stamp = 0.0
        self._pending = False  # a target is waiting for fresh joint states
        self._plan = None
        self._episode: dict = {}
        self._plans = 0

        latched = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self._pub = self.create_publisher(
            Float64MultiArray, "forward_position_controller/commands", 10
        )
        self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
        self.create_subscription(PoseArray, "sim_robot/targets", self._on_targets, latched)
        self.create_subscription(String, "sim_robot/episode", self._on_episode, latched)
        self.create_timer(1.0 / p["rate_hz"], self._tick)
        self.get_logger().info(
            f"scripted_expert ready: {p['rate_hz']:g} Hz, noise_std {p['noise_std']:g},"
            f" joints {self.joint_names}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            idx = [list(msg.name).index(n) for n in self.joint_names]
        except ValueError:
            self.get_logger().warning(
                f"joint_states lacks some of {self.joint_names}", throttle_duration_sec=5.0
            )
            return
        self._q = np.array([msg.position[i] for i in idx], dtype=np.float64)
        self._q_stamp = _seconds(msg.header.stamp)
        if self._pending and self._q_stamp > self._target_stamp:
            self._make_plan()

    def _on_targets(self, msg: PoseArray) -> None:
        if not msg.poses:
            self.get_logger().error("sim_robot/targets has no targets", throttle_duration_sec=5.0)
            return
        targets = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])
        if not np.all(np.isfinite(targets)):
            self.get_logger().error(
                f"sim_robot/targets has non-finite values {targets.tolist()}; ignored",
                throttle_duration_sec=5.0,
            )
            return
        choice = choose_target(targets, self.params["seed"])
        if len(targets) > 1:
            self.get_logger().info(f"{len(targets)} targets: going to target {choice}")
        self._target = targets[choice]
        self._target_stamp = _seconds(msg.header.stamp)
        # The arm may have been reset at that instant: plan from joint states stamped
        # strictly after it (a state of the same physics step predates the reset).
        self._pending = True
        self._plan = None
        if self._q is not None and self._q_stamp > self._target_stamp:
            self._make_plan()

    def _on_episode(self, msg: String) -> None:
        try:
            ep = json.loads(msg.data)
        except ValueError:
            return
        if ep.get("done") and not self._episode.get("done"):
            self.get_logger().info(
                f"episode {ep.get('index')}: {'success' if ep.get('success') else 'failed'}"
                f" in {ep.get('elapsed_s')} s"
            )
            # Stop streaming: the controller holds the last command. A command still sent
            # after the episode ended would reach the arm after the next reset and drag it
            # from home back towards the old pose before the new plan starts.
            self._plan = None
        self._episode = ep

    def _make_plan(self) -> None:
        self._pending = False
        # Noise seeded by (seed, target): reproducible whatever order the messages came in.
        key = [round(float(v) * 1e6) & 0xFFFFFFFF for v in self._target[:2]]
        rng = np.random.default_rng([self.params["seed"], *key])
        t0 = self._now() + expert_start_delay_s(self.params["task"]) + self.params["start_delay_s"]
        try:
            self._plan = self.planner.plan(self._q, self._target, t0, rng)
        except IKError as exc:
            self.get_logger().error(f"cannot reach target {self._target.tolist()}: {exc}")
            self._plan = None
            return
        self._plans += 1
        self.get_logger().info(
            f"planned reach to ({self._target[0]:.3f}, {self._target[1]:.3f}) in"
            f" {self._plan.end_time - self._plan.start_time:.2f} s"
        )

    def _tick(self) -> None:
        if self._plan is None:
            return
        q = self.arm_config.clamp(self._plan.sample(self._now()))
        self._pub.publish(Float64MultiArray(data=q.tolist()))


def main(args: list[str] | None = None) -> int:
    """Run the scripted_expert node until Ctrl-C / SIGTERM."""
    return run_nodes(
        [ScriptedExpertNode], args=args, config_errors=(ParameterError, ArmConfigError)
    )


if __name__ == "__main__":
    sys.exit(main())
