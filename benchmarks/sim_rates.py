"""Publish rates of a running sim_robot, measured by a subscriber in another process.

Starts sim_robot (default parameters: joint_states 100 Hz, 640x480 rgb8 camera at 30 Hz)
in its own process and domain, subscribes for ``--seconds``, prints the measured joint
state and image rates (from receive times and from header stamps) and the node's CPU use.

    .venv/bin/python benchmarks/sim_rates.py --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from robot_policy_ros.bench.procstat import cpu_seconds
from robot_policy_ros.processes import isolated_ros_env

ROOT = Path(__file__).resolve().parents[1]


def _rates(recv: list[float], stamps: list[float]) -> dict:
    if len(recv) < 3:
        return {"messages": len(recv)}
    r, s = np.array(recv), np.array(stamps)
    period = np.diff(s)
    return {
        "messages": len(recv),
        "rate_hz_received": round((len(r) - 1) / (r[-1] - r[0]), 2),
        "rate_hz_stamps": round((len(s) - 1) / (s[-1] - s[0]), 2),
        "period_ms_median": round(1000 * float(np.median(period)), 3),
        "period_ms_p99": round(1000 * float(np.percentile(period, 99)), 3),
        "period_ms_max": round(1000 * float(np.max(period)), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--domain-id", type=int, default=None, help="default: a leased free one")
    parser.add_argument("sim_args", nargs="*", help="extra ros args for sim_robot, e.g. -p x:=1")
    args = parser.parse_args()
    env = isolated_ros_env(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    cmd = [sys.executable, "-m", "robot_policy_ros.nodes.sim_robot"]
    if args.sim_args:
        cmd += ["--ros-args", *args.sim_args]
    sim = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image, JointState

    rclpy.init()
    node = Node("sim_rates_bench")
    js_recv, js_stamp, im_recv, im_stamp = [], [], [], []

    def stamp(m) -> float:
        return m.header.stamp.sec + m.header.stamp.nanosec * 1e-9

    node.create_subscription(
        JointState,
        "joint_states",
        lambda m: (js_recv.append(time.monotonic()), js_stamp.append(stamp(m))),
        100,
    )
    node.create_subscription(
        Image,
        "front/image_raw",
        lambda m: (im_recv.append(time.monotonic()), im_stamp.append(stamp(m))),
        10,
    )
    try:
        deadline = time.monotonic() + 30.0
        while not js_recv and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        for lst in (js_recv, js_stamp, im_recv, im_stamp):
            lst.clear()
        cpu0, t0 = cpu_seconds(sim.pid), time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            rclpy.spin_once(node, timeout_sec=0.1)
        cpu = (cpu_seconds(sim.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
    result = {
        "seconds": args.seconds,
        "joint_states": _rates(js_recv, js_stamp),
        "front/image_raw": _rates(im_recv, im_stamp),
        "sim_robot_cpu_fraction_of_one_core": round(cpu, 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
