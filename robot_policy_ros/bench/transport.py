"""Image transport: delivery rate and age of camera frames at a subscriber, per DDS setup.

A publisher process (reliable writer, depth 5, as camera drivers publish by default) sends
``frames`` images at ``rate`` Hz (raw rgb8 or JPEG), stamping
each with the wall clock and numbering it in ``header.frame_id``; a subscriber process
(sensor-data QoS = best effort, or reliable; depth 5 like policy_node's keep-last) records
which frames arrived and their age (arrival wall clock - header.stamp). Each combination runs
with and without config/fastdds.xml. Figures, not tests.

Run: ``.venv/bin/python benchmarks/image_transport.py`` (or as part of ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.core.transport import PROFILE_VARS, fastdds_profile_path
from robot_policy_ros.processes import NodeProcess, isolated_ros_env, lease_domain_id

MODULE = "robot_policy_ros.bench.transport"


def _test_image(h: int, w: int) -> np.ndarray:
    """A camera-like rgb8 image (gradients plus noise: JPEG sizes like a real scene's)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    return np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


def _publisher(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    rclpy.init()
    node = rclpy.create_node("transport_bench_pub")
    # A reliable writer, as camera drivers publish by default: it serves best-effort and
    # reliable readers alike (a best-effort writer cannot match a reliable reader).
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    img = _test_image(args.height, args.width)
    if args.transport == "raw":
        msg = Image(height=args.height, width=args.width, encoding="rgb8", step=3 * args.width)
        msg.data = img.tobytes()
        pub = node.create_publisher(Image, "image_raw", qos)
    else:
        import cv2

        ok, jpg = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpg.tobytes())
        pub = node.create_publisher(CompressedImage, "image_raw/compressed", qos)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # let the matching settle on both sides
    period = 1.0 / args.rate
    t_next = time.monotonic()
    for i in range(args.frames):
        t_next += period
        msg.header.frame_id = str(i)
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
        pub.publish(msg)
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(0.5)
    print(json.dumps({"published": args.frames, "bytes": len(msg.data)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _subscriber(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    rclpy.init()
    node = rclpy.create_node("transport_bench_sub")
    qos = (
        qos_profile_sensor_data
        if args.qos == "best_effort"
        else QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    )
    seen: dict[int, float] = {}
    last = [0.0]

    def on_msg(msg: Any) -> None:
        now = time.time()
        seen[int(msg.header.frame_id)] = now - (
            msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        )
        last[0] = time.monotonic()

    if args.transport == "raw":
        node.create_subscription(Image, "image_raw", on_msg, qos)
    else:
        node.create_subscription(CompressedImage, "image_raw/compressed", on_msg, qos)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if last[0] and time.monotonic() - last[0] > 2.0:
            break
    ages = sorted(seen.values())
    out = {"received": len(seen)}
    if ages:
        out.update(
            age_p50_ms=1e3 * statistics.median(ages),
            age_p99_ms=1e3 * ages[min(len(ages) - 1, round(0.99 * (len(ages) - 1)))],
        )
    print(json.dumps(out), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result in output:\n{text[-2000:]}")


def measure(
    size: tuple[int, int],
    transport: str,
    qos: str,
    profile: bool,
    rate: float = 30.0,
    seconds: float = 5.0,
    log_dir: Path | None = None,
) -> dict:
    """One publisher/subscriber pair in a domain of its own; the subscriber's figures."""
    h, w = size
    lease = lease_domain_id()
    try:
        clear = {v: "" for v in PROFILE_VARS}
        extra = {v: str(fastdds_profile_path()) for v in PROFILE_VARS} if profile else clear
        env = isolated_ros_env(lease.domain_id, **extra)
        frames = max(1, round(rate * seconds))
        tag = f"{w}x{h}-{transport}-{qos}-{'profile' if profile else 'default'}"
        logs = (log_dir / f"sub-{tag}.log", log_dir / f"pub-{tag}.log") if log_dir else (None, None)
        common = ["--width", str(w), "--height", str(h), "--transport", transport]
        sub = NodeProcess(
            MODULE,
            ["sub", *common, "--qos", qos, "--timeout", str(seconds + 40)],
            env=env,
            log_path=logs[0],
        )
        pub = NodeProcess(
            MODULE,
            ["pub", *common, "--rate", str(rate), "--frames", str(frames)],
            env=env,
            log_path=logs[1],
        )
        pub_rc = pub.proc.wait(timeout=seconds + 60)
        sub.proc.wait(timeout=30)
        published = _last_json(pub.output()) if pub_rc == 0 else {"published": frames}
        got = _last_json(sub.output())
        pub.stop()
        sub.stop()
    finally:
        lease.release()
    received = got["received"]
    return {
        "image": f"{w}x{h}",
        "transport": transport,
        "qos": qos,
        "profile": "config/fastdds.xml" if profile else "Fast DDS defaults",
        "rate_hz": rate,
        "published": published["published"],
        "payload_bytes": published.get("bytes"),
        "received": received,
        "delivered_fraction": received / published["published"],
        "received_fps": rate * received / published["published"],
        "age_p50_ms": got.get("age_p50_ms"),
        "age_p99_ms": got.get("age_p99_ms"),
    }


def transport_table(
    sizes: list[tuple[int, int]],
    seconds: float = 5.0,
    transports: tuple[str, ...] = ("raw", "compressed"),
    qos_list: tuple[str, ...] = ("best_effort", "reliable"),
    log_dir: Path | None = None,
) -> list[dict]:
    """Every combination of size, transport, QoS and profile (with / without)."""
    rows = []
    for size in sizes:
        for transport in transports:
            for qos in qos_list:
                for profile in (False, True):
                    rows.append(
                        measure(size, transport, qos, profile, seconds=seconds, log_dir=log_dir)
                    )
    return rows


def main(argv: list[str] | None = None) -> int:
    """pub / sub node roles, or (default) the whole table printed as JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", nargs="?", choices=("pub", "sub", "table"), default="table")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--transport", choices=("raw", "compressed"), default="raw")
    p.add_argument("--qos", choices=("best_effort", "reliable"), default="best_effort")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--seconds", type=float, default=5.0, help="table: seconds per combination")
    p.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="table: WxH")
    args, _ = p.parse_known_args(argv)
    if args.role == "pub":
        return _publisher(args)
    if args.role == "sub":
        return _subscriber(args)
    sizes = [tuple(int(v) for v in s.split("x"))[::-1] for s in args.sizes]
    for row in transport_table(sizes, seconds=args.seconds):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
