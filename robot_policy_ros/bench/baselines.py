"""The two usual ways to run a chunking policy from ROS, as baselines for the stack.

Both are what users write (and what tutorials show): a plain rclpy node, one
SingleThreadedExecutor, subscriptions to the camera (sensor-data QoS, as policy_node) and
to ``joint_states``, and a wall timer at the control rate that publishes
std_msgs/Float64MultiArray on ``joint_commands`` with the command streamer's QoS. They load
the same checkpoint through the same code as policy_node (``load_checkpoint``,
``make_predictor`` with the same backend, the same torch thread count and OpenMP wait
policy), convert frames with the same function (``raw_to_rgb``) and call the same
``predict_chunk``; joint states are mapped to the checkpoint's order by name.

* ``naive_timer``: each timer callback builds an observation from the latest inputs, runs
  inference, and publishes the first action of the chunk.
* ``chunk_loop``: "predict, then execute the chunk": each timer callback publishes the next
  action of the current chunk; when the chunk is used up, the callback first infers a new
  one (blocking, in the callback) from the latest inputs.

Neither has a safety filter, blending or staleness checks; they are timing baselines, not
something to drive a robot with. Run: ``python -m robot_policy_ros.bench.baselines
naive_timer|chunk_loop --checkpoint DIR --rate HZ [--backend torch] [--torch-threads N]
[--topic joint_commands]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
from typing import Any

import numpy as np

MODES = ("naive_timer", "chunk_loop")


class PolicyRunner:
    """The checkpoint, loaded and run as policy_node does (no rclpy here)."""

    def __init__(self, checkpoint: str, backend: str, torch_threads: int) -> None:
        from robot_policy_ros.inference.threads import passive_omp_wait

        passive_omp_wait()  # as policy_node, before torch loads
        import torch

        from robot_policy_ros.checkpoint.weights import load_checkpoint
        from robot_policy_ros.inference import make_predictor
        from robot_policy_ros.inference.export import cache_dir_for

        torch.set_num_threads(torch_threads or max(1, (os.cpu_count() or 1) - 1))
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
        self.policy = load_checkpoint(checkpoint)
        self.policy.eval()
        self.predictor = make_predictor(self.policy, backend, cache_dir=cache_dir_for(checkpoint))
        self.joint_names = list(self.policy.joint_names)
        self.image_shapes = dict(self.policy.image_shapes)

    def predict(self, images: dict[str, Any], joints: np.ndarray, stamp: float) -> np.ndarray:
        """``images``: camera name -> sensor_msgs/Image; returns the chunk (T, joints)."""
        from robot_policy_ros.core.images import raw_to_rgb
        from robot_policy_ros.policies.base import Observation

        rgb = {
            name: raw_to_rgb(
                m.encoding,
                m.height,
                m.width,
                m.step,
                m.data,
                self.image_shapes[name],
                bool(m.is_bigendian),
            )
            for name, m in images.items()
        }
        obs = Observation(images=rgb, joint_positions=joints, stamp=stamp)
        return np.asarray(self.predictor.predict_chunk(obs), dtype=np.float64)


def run(
    mode: str,
    checkpoint: str,
    rate: float,
    backend: str,
    torch_threads: int,
    topic: str = "joint_commands",
) -> None:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray

    runner = PolicyRunner(checkpoint, backend, torch_threads)
    rclpy.init()

    class BaselineNode(Node):
        def __init__(self) -> None:
            super().__init__(mode)
            self.images: dict[str, Image] = {}
            self.joints: np.ndarray | None = None
            self.queue: collections.deque[np.ndarray] = collections.deque()
            for name in runner.image_shapes:
                self.create_subscription(
                    Image,
                    f"{name}/image_raw",
                    lambda msg, n=name: self.images.__setitem__(n, msg),
                    qos_profile_sensor_data,
                )
            self.create_subscription(JointState, "joint_states", self.on_joints, 10)
            qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # the streamer's
            self.pub = self.create_publisher(Float64MultiArray, topic, qos)
            self.msg = Float64MultiArray()
            self.create_timer(1.0 / rate, self.on_timer)

        def on_joints(self, msg: JointState) -> None:
            index = {n: i for i, n in enumerate(msg.name)}
            if all(n in index for n in runner.joint_names):
                self.joints = np.array([msg.position[index[n]] for n in runner.joint_names])

        def infer(self) -> np.ndarray | None:
            if self.joints is None or len(self.images) < len(runner.image_shapes):
                return None
            stamp = self.get_clock().now().nanoseconds * 1e-9
            return runner.predict(dict(self.images), self.joints, stamp)

        def on_timer(self) -> None:
            if mode == "naive_timer":
                chunk = self.infer()
                if chunk is None:
                    return
                action = chunk[0]
            else:
                if not self.queue:
                    chunk = self.infer()
                    if chunk is None:
                        return
                    self.queue.extend(chunk)
                action = self.queue.popleft()
            self.msg.data = [float(v) for v in action]
            self.pub.publish(self.msg)

    node = BaselineNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=MODES)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--rate", type=float, default=50.0, help="control rate (Hz)")
    p.add_argument("--backend", default="torch", help="as policy_node's inference_backend")
    p.add_argument("--torch-threads", type=int, default=0, help="0: cores - 1 (policy_node's)")
    p.add_argument("--topic", default="joint_commands", help="command topic")
    args = p.parse_args(argv)
    run(args.mode, args.checkpoint, args.rate, args.backend, args.torch_threads, args.topic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
