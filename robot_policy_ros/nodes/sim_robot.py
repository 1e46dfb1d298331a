"""sim_robot: the embedded simulated arm, camera and task (``task``: reach, two_targets or
cued_targets, see robot_policy_ros.sim.task), as a ros2_control robot.

To the rest of the stack it looks like a robot with the joint_state_broadcaster, a
forward_position_controller and a joint_trajectory_controller loaded, plus a camera:

- publishes ``joint_states`` (sensor_msgs/JointState) and ``<camera_name>/image_raw``
  (sensor_msgs/Image, rgb8), optionally ``<second_camera_name>/image_raw``;
- accepts ``forward_position_controller/commands`` (std_msgs/Float64MultiArray) and
  ``joint_trajectory_controller/joint_trajectory`` (trajectory_msgs/JointTrajectory);
- ``~/reset`` (std_srvs/Trigger) starts the next seeded episode; ``~/episode``
  (std_msgs/String JSON), the privileged ``~/target`` (geometry_msgs/PointStamped, the
  first target) and ``~/targets`` (geometry_msgs/PoseArray, every target disc of the
  episode, same stamp: the discs whose touch is a success; in cued_targets only the cued
  one) describe it (all transient-local).

The physics (joint servos) runs in fixed steps of 1/physics_rate_hz; every callback first
advances it to the node clock's now, so the state tracks wall time or /clock sim time.
One SingleThreadedExecutor runs every callback. (rclpy's MultiThreadedExecutor, used here
before, let its list of pending callback futures grow without bound while commands and
resets kept arriving: after a few dozen episodes its bookkeeping took a whole core and
starved the physics callbacks for seconds. Rendering a frame takes ~0.5-1.5 ms, so one
thread delays joint states by at most that.)
"""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped, Pose, PoseArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.sim_robot import SPECS
from robot_policy_ros.sim.arm import ArmConfigError, load_arm_config
from robot_policy_ros.sim.commands import (
    CommandError,
    build_trajectory,
    validate_position_command,
)
from robot_policy_ros.sim.render import Renderer
from robot_policy_ros.sim.task import TaskConfig
from robot_policy_ros.sim.world import SimWorld

# Beyond this lag the clock jumped (e.g. /clock restarted); restart from now instead of
# simulating the gap step by step.
_MAX_CATCH_UP_S = 2.0


def _stamp(t: float) -> Time:
    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def _seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class SimRobotNode(Node):
    """The simulated robot; see the module docstring for its interfaces."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_robot", **kwargs)
        declare_parameters(self, SPECS)
        p = read_parameters(self, SPECS)
        self.params = p
        self.arm_config = load_arm_config(p["arm_config"] or None)
        for key in ("camera_view",) + (("second_camera_view",) if p["second_camera_name"] else ()):
            if p[key] not in self.arm_config.cameras:
                raise ParameterError(
                    f"parameter '{key}' = {p[key]!r}: no such camera view in"
                    f" {self.arm_config.source}; use one of {sorted(self.arm_config.cameras)}"
                )
        task = TaskConfig(
            success_radius_m=p["success_radius_m"],
            success_height_m=p["success_height_m"],
            success_hold_s=p["success_hold_s"],
            episode_timeout_s=p["episode_timeout_s"],
            task=p["task"],
        )
        self._lock = threading.Lock()
        self.world = SimWorld(
            self.arm_config,
            task,
            seed=p["seed"],
            physics_rate_hz=p["physics_rate_hz"],
            command_timeout_s=p["command_timeout_s"],
            reset_arm_to_home=p["reset_arm_to_home"],
            start_time=self._now(),
        )
        self.joint_names = list(self.arm_config.joint_names)
        self.rejected_commands = 0
        self._last_episode_flags: tuple | None = None

        latched = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self._main_group = MutuallyExclusiveCallbackGroup()
        self._camera_group = MutuallyExclusiveCallbackGroup()
        self._js_pub = self.create_publisher(JointState, "joint_states", 10)
        self._episode_pub = self.create_publisher(String, "~/episode", latched)
        self._target_pub = self.create_publisher(PointStamped, "~/target", latched)
        self._targets_pub = self.create_publisher(PoseArray, "~/targets", latched)
        self.create_subscription(
            Float64MultiArray,
            "forward_position_controller/commands",
            self._on_position_command,
            10,
            callback_group=self._main_group,
        )
        self.create_subscription(
            JointTrajectory,
            "joint_trajectory_controller/joint_trajectory",
            self._on_trajectory,
            10,
            callback_group=self._main_group,
        )
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=self._main_group)

        w, h = p["image_width"], p["image_height"]
        self._cameras: list[tuple[str, Renderer, object]] = []
        cams = [(p["camera_name"], p["camera_view"])]
        if p["second_camera_name"]:
            cams.append((p["second_camera_name"], p["second_camera_view"]))
        for name, view in cams:
            renderer = Renderer(self.arm_config, self.arm_config.cameras[view], w, h)
            pub = self.create_publisher(Image, f"{name}/image_raw", 5)
            self._cameras.append((name, renderer, pub))
        self._last_image_stamp = -1.0

        self.create_timer(
            1.0 / p["joint_state_rate_hz"], self._publish_joint_state, self._main_group
        )
        self.create_timer(1.0 / p["episode_rate_hz"], self._publish_episode, self._main_group)
        self.create_timer(1.0 / p["camera_rate_hz"], self._publish_images, self._camera_group)
        with self._lock:
            self._publish_target()
            self._publish_episode_locked()
        self.get_logger().info(
            f"sim_robot ready: {len(self.joint_names)} joints {self.joint_names} from"
            f" {self.arm_config.source}; cameras {[c[0] for c in self._cameras]} {w}x{h}"
            f" @ {p['camera_rate_hz']:g} Hz; seed {p['seed']}"
        )

    # -- time --------------------------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _advance(self) -> float:
        """Run the physics up to now (caller holds the lock); returns now."""
        now = self._now()
        lag = now - self.world.time
        if lag < -0.5 or lag > _MAX_CATCH_UP_S:
            self.get_logger().warning(
                f"clock jumped by {lag:+.3f} s; continuing from the new time",
                throttle_duration_sec=5.0,
            )
            self.world.restart_clock(now)
        else:
            self.world.advance_to(now)
        self._maybe_publish_episode_change()
        return now

    # -- publishers --------------------------------------------------------------------

    def _publish_joint_state(self) -> None:
        with self._lock:
            self._advance()
            # Stamped with the instant the state is for (the last physics step, <= now).
            t_state = self.world.time
            q = self.world.arm.q.tolist()
            v = self.world.arm.v.tolist()
        msg = JointState()
        msg.header.stamp = _stamp(t_state)
        msg.name = self.joint_names
        msg.position = q
        msg.velocity = v
        self._js_pub.publish(msg)

    def _publish_images(self) -> None:
        with self._lock:
            self._advance()
            snap = self.world.snapshot()
        # Stamped with the instant rendered (the last physics step, within one step of now).
        now = snap.time
        if now <= self._last_image_stamp:
            return  # sim time stands still: keep stamps strictly increasing
        self._last_image_stamp = now
        for name, renderer, pub in self._cameras:
            img = renderer.render(snap.q, snap.target, cue=snap.cue)
            msg = Image()
            msg.header.stamp = _stamp(now)
            msg.header.frame_id = f"{name}_optical_frame"
            msg.height, msg.width = img.shape[0], img.shape[1]
            msg.encoding = "rgb8"
            msg.is_bigendian = 0
            msg.step = img.shape[1] * 3
            msg.data = img.tobytes()
            pub.publish(msg)

    def _publish_target(self) -> None:
        msg = PointStamped()
        msg.header.stamp = _stamp(self.world.time)
        msg.header.frame_id = "world"
        x, y, z = (float(v) for v in self.world.episode.target)
        msg.point.x, msg.point.y, msg.point.z = x, y, z
        self._target_pub.publish(msg)
        poses = PoseArray()
        poses.header = msg.header
        for centre in self.world.episode.targets:
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in centre)
            poses.poses.append(pose)
        self._targets_pub.publish(poses)

    def _episode_dict(self) -> dict:
        return self.world.episode.as_dict()

    def _publish_episode_locked(self) -> None:
        ep = self.world.episode
        self._last_episode_flags = (ep.index, ep.success, ep.done)
        self._episode_pub.publish(String(data=json.dumps(self._episode_dict())))

    def _maybe_publish_episode_change(self) -> None:
        ep = self.world.episode
        if (ep.index, ep.success, ep.done) != self._last_episode_flags:
            if ep.done:
                outcome = "success" if ep.success else "wrong disc" if ep.wrong_disc else "timeout"
                self.get_logger().info(f"episode {ep.index}: {outcome} after {ep.elapsed_s:.2f} s")
            self._publish_episode_locked()

    def _publish_episode(self) -> None:
        with self._lock:
            self._advance()
            self._publish_episode_locked()

    # -- commands ----------------------------------------------------------------------

    def _reject(self, what: str, why: str) -> None:
        self.rejected_commands += 1
        self.get_logger().warning(
            f"rejected {what}: {why} (holding; {self.rejected_commands} rejected so far)",
            throttle_duration_sec=1.0,
        )

    def _on_position_command(self, msg: Float64MultiArray) -> None:
        try:
            q = validate_position_command(msg.data, len(self.joint_names))
        except CommandError as exc:
            self._reject("forward_position_controller command", str(exc))
            return
        with self._lock:
            now = self._advance()
            self.world.command_position(q, now)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        points = [
            (p.time_from_start.sec + p.time_from_start.nanosec * 1e-9, list(p.positions))
            for p in msg.points
        ]
        with self._lock:
            now = self._advance()
            try:
                traj = build_trajectory(
                    self.joint_names,
                    list(msg.joint_names),
                    points,
                    _seconds(msg.header.stamp),
                    now,
                    self.world.current_setpoint(),
                )
            except CommandError as exc:
                self._reject("joint_trajectory", str(exc))
                return
            self.world.command_trajectory(traj, now)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            self._advance()
            self.world.reset()
            self._publish_target()
            self._publish_episode_locked()
            response.success = True
            response.message = json.dumps(self._episode_dict())
        self.get_logger().info(f"episode {self.world.episode.index} started")
        return response


def main(args: list[str] | None = None) -> int:
    """Run the sim_robot node until Ctrl-C / SIGTERM."""
    # run_nodes spins one executor thread: rclpy's MultiThreadedExecutor's own bookkeeping
    # grew to a whole core after a few dozen episodes and starved the physics (git log).
    return run_nodes([SimRobotNode], args=args, config_errors=(ParameterError, ArmConfigError))


if __name__ == "__main__":
    sys.exit(main())
