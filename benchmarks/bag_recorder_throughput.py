"""bag_recorder throughput and CPU cost: camera images + joint states into an MCAP bag.

Examples:
    .venv/bin/python benchmarks/bag_recorder_throughput.py                 # sim rates, 10 s
    .venv/bin/python benchmarks/bag_recorder_throughput.py --rate 0 --images 600   # burst
    .venv/bin/python benchmarks/bag_recorder_throughput.py --storage sqlite3

Starts ``bag_recorder`` in its own process (own ROS_DOMAIN_ID, localhost discovery),
publishes rgb8 images and 100 Hz-style joint states from this process (reliable QoS), waits
until the recorder reports every message written, stops it and prints: messages and MB
per second, messages lost (must be 0), the recorder's CPU use, its resident memory at the
peak and once the queue has drained, and that the bag reads back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robot_policy_ros.bench.procstat import cpu_seconds
from robot_policy_ros.processes import isolated_ros_env

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints the figures (JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="images to publish")
    parser.add_argument("--size", default="640x480", help="image WxH")
    parser.add_argument("--joint-rate-factor", type=int, default=3, help="joint states per image")
    parser.add_argument("--rate", type=float, default=30.0, help="image rate in Hz (0: burst)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    os.environ.update(isolated_ros_env())
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_srvs.srv import Trigger

    from robot_policy_ros.data.bag_reader import open_bag

    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(tempfile.mkdtemp(prefix="recorder_bench_"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "robot_policy_ros.nodes.bag_recorder",
        "--ros-args",
        "-p",
        f"output_dir:={out}",
        "-p",
        "topics:=['/bench/image_raw','/bench/joint_states']",
        "-p",
        f"storage:={args.storage}",
        "-p",
        "episode_topic:=''",
        "-p",
        "autostart:=true",
        "-p",
        "discovery_period_s:=0.1",
    ]
    rec = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rclpy.init()
    node = Node("recorder_bench")
    # keep_all: a burst must not overwrite the publisher's own unacknowledged messages.
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_ALL, depth=1000, reliability=ReliabilityPolicy.RELIABLE
    )
    img_pub = node.create_publisher(Image, "/bench/image_raw", qos)
    js_pub = node.create_publisher(JointState, "/bench/joint_states", qos)
    status = node.create_client(Trigger, "/bag_recorder/status")

    def call_status() -> dict:
        fut = status.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, fut, timeout_sec=10)
        return json.loads(fut.result().message)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        img_pub.get_subscription_count() == 0 or js_pub.get_subscription_count() == 0
    ):
        rclpy.spin_once(node, timeout_sec=0.1)
    status.wait_for_service(timeout_sec=30)
    img = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    img.data = np.random.default_rng(0).integers(0, 255, width * height * 3, np.uint8).tobytes()
    js = JointState(name=[f"j{i}" for i in range(6)], position=[0.0] * 6)
    n_js = args.images * args.joint_rate_factor
    cpu0 = cpu_seconds(rec.pid)
    t0 = time.perf_counter()
    for i in range(args.images):
        now = node.get_clock().now().to_msg()
        img.header.stamp = now
        img_pub.publish(img)
        for _ in range(args.joint_rate_factor):
            js.header.stamp = now
            js_pub.publish(js)
        if args.rate > 0:
            target = t0 + (i + 1) / args.rate
            while time.perf_counter() < target:
                rclpy.spin_once(node, timeout_sec=max(0.0, target - time.perf_counter()))
    want = {"/bench/image_raw": args.images, "/bench/joint_states": n_js}
    last_change, last_got = time.perf_counter(), None
    t_all = time.perf_counter() - t0
    while time.perf_counter() - last_change < 5.0:  # until done, or no progress for 5 s
        st = call_status()
        got = {t: st["counts"].get(t, {}).get("written", 0) for t in want}
        if got != last_got:
            last_change, last_got = time.perf_counter(), got
            t_all = time.perf_counter() - t0
        if got == want:
            break
        time.sleep(0.05)
    cpu = cpu_seconds(rec.pid) - cpu0
    # Resident memory once the queue has drained, after the recorder's heap trimmer had
    # its chance (period 1 s), against the peak the queue pushed it to.
    time.sleep(3.0)
    rss_peak_mb, rss_drained_mb = _rss_mb(rec.pid, "VmHWM"), _rss_mb(rec.pid, "VmRSS")
    rec.send_signal(signal.SIGINT)
    log = rec.communicate(timeout=60)[0].decode(errors="replace")
    node.destroy_node()
    rclpy.shutdown()
    bag = out / "episode_000000"
    reader = open_bag(bag)
    counts = {c.topic: c.msgcount for c in reader.connections}
    reader.close()
    size_mb = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
    payload_mb = args.images * len(img.data) / 1e6
    figures = {
        "storage": args.storage,
        "image_size": f"{width}x{height}",
        "images": args.images,
        "joint_states": n_js,
        "publish_rate_hz": args.rate,
        "seconds_until_all_written": round(t_all, 2),
        "images_per_s": round(args.images / t_all, 1),
        "messages_per_s": round((args.images + n_js) / t_all, 1),
        "image_MB_per_s": round(payload_mb / t_all, 1),
        "recorder_cpu_percent": round(100.0 * cpu / t_all, 1),
        "recorder_cpu_s": round(cpu, 2),
        "recorder_rss_mb_peak": round(rss_peak_mb),
        "recorder_rss_mb_drained": round(rss_drained_mb),
        "written": counts,
        "lost": sum(want.values()) - sum(counts.get(t, 0) for t in want),
        "bag_MB": round(size_mb, 1),
        "clean_close": "closed cleanly" in log,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>28}: {v}")
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    return 0 if figures["lost"] == 0 else 1


def _rss_mb(pid: int, key: str) -> float:
    """VmRSS / VmHWM of a process (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
