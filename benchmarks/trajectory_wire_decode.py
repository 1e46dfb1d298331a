"""Decode cost of a serialized JointTrajectory: rclpy's deserialize_message vs trajectory_wire.

For each point count (7 joints, positions only, as policy_node publishes), times
``rclpy.serialization.deserialize_message``, ``decode_chunk`` (its strided path: all points
of one layout), the walk ``decode_chunk`` takes for points of differing layouts (forced
here) and ``point_count``; candidates are timed round-robin, median and max over
``--repeats`` runs. No DDS, no nodes.

Then the same calls run again while a probe thread wakes every 0.2 ms (the switch interval
set to 0.5 ms as command_streamer sets it) and records when it got the GIL back: the
longest gap between its wakes during a call ("stall") is about how long a control thread in
the same process would have waited for the GIL.

Usage:
    python benchmarks/trajectory_wire_decode.py [--points 100 1000 10000] [--joints 7]
        [--repeats 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from robot_policy_ros.core import trajectory_wire as tw  # noqa: E402


def make_raw(num_points: int, num_joints: int) -> bytes:
    from builtin_interfaces.msg import Duration
    from rclpy.serialization import serialize_message
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    rng = np.random.default_rng(0)
    msg = JointTrajectory()
    msg.header.stamp.sec = 1_700_000_000
    msg.joint_names = [f"j{i}" for i in range(num_joints)]
    values = rng.normal(size=(num_points, num_joints))
    for k in range(num_points):
        nanos = k * 20_000_000
        msg.points.append(
            JointTrajectoryPoint(
                positions=values[k].tolist(),
                time_from_start=Duration(sec=nanos // 10**9, nanosec=nanos % 10**9),
            )
        )
    return serialize_message(msg)


def decode_by_loop(raw: bytes, max_points: int) -> tw.WireChunk:
    """decode_chunk with the strided path disabled (what non-uniform points cost)."""
    saved = tw._decode_uniform
    tw._decode_uniform = lambda *a: None
    try:
        return tw.decode_chunk(raw, max_points=max_points)
    finally:
        tw._decode_uniform = saved


class Probe:
    """A thread that wakes every 0.2 ms and records when it ran."""

    def __init__(self) -> None:
        self.wakes: list[float] = []
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            self.wakes.append(time.perf_counter())
            time.sleep(0.0002)

    def stop(self) -> np.ndarray:
        self._running = False
        self._thread.join()
        return np.array(self.wakes)


def max_gap(wakes: np.ndarray, t0: float, t1: float) -> float:
    """Longest interval between probe wakes that overlaps [t0, t1]."""
    i0 = max(int(np.searchsorted(wakes, t0)) - 1, 0)
    i1 = min(int(np.searchsorted(wakes, t1)), len(wakes) - 1)
    return float(np.diff(wakes[i0 : i1 + 1]).max()) if i1 > i0 else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--joints", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)

    from rclpy.serialization import deserialize_message
    from trajectory_msgs.msg import JointTrajectory

    sys.setswitchinterval(0.0005)  # as command_streamer sets it

    rows = []
    limit = max(args.points)
    for num_points in args.points:
        raw = make_raw(num_points, args.joints)
        candidates = {
            "deserialize_message": lambda raw=raw: deserialize_message(raw, JointTrajectory),
            "decode_chunk": lambda raw=raw: tw.decode_chunk(raw, max_points=limit),
            "decode_chunk_walk": lambda raw=raw: decode_by_loop(raw, limit),
            "point_count": lambda raw=raw: tw.point_count(raw),
        }
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.repeats):  # timing, alone
            for name, fn in candidates.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        windows: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
        probe = Probe()
        for _ in range(args.repeats):  # stalls, with the probe thread running
            for name, fn in candidates.items():
                time.sleep(0.002)  # let the probe run between calls
                t0 = time.perf_counter()
                fn()
                windows[name].append((t0, time.perf_counter()))
        time.sleep(0.002)
        wakes = probe.stop()
        row = {"points": num_points, "joints": args.joints, "bytes": len(raw)}
        for name, ts in times.items():
            row[f"{name}_median_ms"] = 1e3 * float(np.median(ts))
            row[f"{name}_max_ms"] = 1e3 * float(np.max(ts))
            stalls = [max_gap(wakes, t0, t1) for t0, t1 in windows[name]]
            row[f"{name}_stall_median_ms"] = 1e3 * float(np.nanmedian(stalls))
            row[f"{name}_stall_max_ms"] = 1e3 * float(np.nanmax(stalls))
        rows.append(row)

    machine = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_1min": os.getloadavg()[0],
    }
    print(
        f"trajectory_wire_decode: {args.joints} joints, positions only, median (max) of "
        f"{args.repeats}; {machine['cpus']} CPUs, load {machine['load_average_1min']:.1f}"
    )
    names = ("deserialize_message", "decode_chunk", "decode_chunk_walk", "point_count")
    for what, key in (("time per call", ""), ("probe thread stall during a call", "stall_")):
        print(f"{what}, ms: median (max)")
        print(f"{'points':>7} | " + " | ".join(f"{n:>22}" for n in names))
        for row in rows:
            cells = []
            for n in names:
                med, mx = row[f"{n}_{key}median_ms"], row[f"{n}_{key}max_ms"]
                cells.append(f"{med:8.3f} ({mx:8.3f})".rjust(22))
            print(f"{row['points']:>7} | " + " | ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0 if all(math.isfinite(r["decode_chunk_median_ms"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
