"""A separate process that floods ``action_chunk`` (used by test_streamer_faults).

``python -m chunk_flooder SECONDS PAIRS_PER_S J0,J1,...`` (with test/ on PYTHONPATH):
publishes PAIRS_PER_S times a second a chunk of 20,000 points (beyond any max_chunk_points)
and a valid 900-point chunk (50 Hz actions, all 0.02), both pre-serialized, for SECONDS;
prints how many it sent.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from runtime_fakes import make_chunk_message
from trajectory_msgs.msg import JointTrajectory


def main() -> None:
    args = rclpy.utilities.remove_ros_args(sys.argv)
    seconds, rate, names = float(args[1]), float(args[2]), args[3].split(",")
    rclpy.init()
    node = rclpy.create_node("flooder")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(JointTrajectory, "action_chunk", qos)
    time.sleep(1.0)  # discovery
    now = node.get_clock().now().nanoseconds * 1e-9
    huge = serialize_message(make_chunk_message(np.zeros((20000, len(names))), names, now))
    valid = serialize_message(
        make_chunk_message(np.full((900, len(names)), 0.02), names, now, fps=50.0)
    )
    print("flooding", flush=True)
    sent = 0
    start = time.monotonic()
    while time.monotonic() < start + seconds:
        pub.publish(huge)
        pub.publish(valid)
        sent += 2
        time.sleep(max(start + sent / (2 * rate) - time.monotonic(), 0.0))
    print(f"sent {sent}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
