"""Chunk-flood benchmark: command timing and e-stop latency of command_streamer under a flood.

Starts, each in its own process, in a leased DDS domain (localhost discovery only):
  * command_streamer (``python -m robot_policy_ros.nodes.command_streamer``) with a limits
    file for joints j0..j6, at ``--rate`` Hz;
  * a flooder (this file, ``--role flood``) that publishes action chunks of ``--points``
    points x 7 joints at ``--chunk-rate`` per second (0: back to back), once told to start
    (serialized once, then only the stamp and positions are rewritten per chunk, so the
    flooder itself is cheap); 5000 points is above the streamer's default
    max_chunk_points (1000): every flood chunk is rejected, after rclpy has deserialized it;
and in this process: a fake robot publishing joint states at 100 Hz (following the
commands), a "carrier" publishing a valid 200-point chunk at 10 Hz so that the commands keep
moving (a sinusoid per joint) whatever happens to the flood chunks, and a subscriber on
joint_commands that records each command's DDS source timestamp (the streamer's publish
time; the callback takes ``(msg, info)``, rclpy passes the MessageInfo then).

Phases: warm-up (ramp-in), ``--quiet`` s without flood, ``--duration`` s of flood, then
e_stop true (latched, reliable) with the flood still running, ``--tail`` s more. Reported:
  * command period error p50/p99/max and missed periods from the source timestamps, quiet
    vs. flood window;
  * e-stop latency: from the e-stop publish call to the first command that repeats the
    previous one exactly (the streamer holds), in ms and in ticks that still moved;
  * chunks/s offered by the flooder, and what the streamer's diagnostics counted
    (received, rejected by key, missed ticks, underruns) over the flood.

Usage:
    python benchmarks/chunk_flood.py [--points 5000] [--duration 10] [--chunk-rate 100]
        [--rate 50] [--quick] [--json out.json]
    python benchmarks/chunk_flood.py --points 500      # within max_chunk_points
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from robot_policy_ros.bench.procstat import cpu_seconds, diag_number  # noqa: E402
from robot_policy_ros.core.timing import PeriodSummary, period_summary  # noqa: E402
from robot_policy_ros.processes import NodeProcess, isolated_ros_env  # noqa: E402

JOINTS = [f"j{i}" for i in range(7)]
LIMITS = {
    "joints": [
        {"name": n, "lower": -2.0, "upper": 2.0, "max_velocity": 3.0, "max_acceleration": 30.0}
        for n in JOINTS
    ]
}
CHUNK_FPS = 50.0  # action i of a chunk at stamp + i / CHUNK_FPS
CARRIER_POINTS = 200
CARRIER_RATE_HZ = 10.0
AMPLITUDE = 0.3  # rad; joint j follows AMPLITUDE * sin(2 pi FREQ t + j)
FREQ_HZ = 0.4


def trajectory(t: np.ndarray) -> np.ndarray:
    """(P,) absolute times -> (P, 7) positions: a sinusoid per joint, never all at rest."""
    return AMPLITUDE * np.sin(2 * np.pi * FREQ_HZ * t[:, None] + np.arange(len(JOINTS)))


class ChunkWriter:
    """A serialized JointTrajectory of ``points`` x 7 whose stamp and positions are rewritten.

    Serialized once with rclpy (positions set to unique markers, then found in the bytes),
    so each chunk costs a numpy scatter and a bytes copy, not building Python messages.
    """

    def __init__(self, points: int) -> None:
        from builtin_interfaces.msg import Duration
        from rclpy.serialization import deserialize_message, serialize_message
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        self.points = points
        msg = JointTrajectory()
        msg.joint_names = list(JOINTS)
        markers = 1e6 + np.arange(points * len(JOINTS), dtype=np.float64)
        for k in range(points):
            nanos = round(k * 1e9 / CHUNK_FPS)
            msg.points.append(
                JointTrajectoryPoint(
                    positions=markers[k * len(JOINTS) : (k + 1) * len(JOINTS)].tolist(),
                    time_from_start=Duration(sec=nanos // 10**9, nanosec=nanos % 10**9),
                )
            )
        raw = serialize_message(msg)
        if raw[:2] != b"\x00\x01":
            raise RuntimeError("expected little-endian CDR from serialize_message")
        doubles = np.frombuffer(raw, dtype="<f8", offset=4, count=(len(raw) - 4) // 8)
        where = np.nonzero(np.isin(doubles, markers))[0]
        if len(where) != markers.size or not np.array_equal(doubles[where], markers):
            raise RuntimeError("could not locate the positions in the serialized chunk")
        # serialize_message's buffer is longer than the data (estimated size): cut it after
        # the last point (positions, three empty sequences, time_from_start).
        end = 4 + 8 * (int(where[-1]) + 1) + 12 + 8
        if deserialize_message(raw[:end], JointTrajectory) != msg:
            raise RuntimeError("the serialized chunk does not end where expected")
        self.buf = bytearray(raw[:end])
        doubles = np.frombuffer(self.buf, dtype="<f8", offset=4, count=(end - 4) // 8)
        self._doubles = doubles
        self._where = where
        self.offsets = np.arange(points) / CHUNK_FPS

    def chunk(self, stamp: float) -> bytes:
        """Serialized chunk starting at ``stamp`` (wall clock = ROS time here)."""
        sec = math.floor(stamp)
        self.buf[4:12] = np.array([sec, int((stamp - sec) * 1e9)], dtype="<u4").tobytes()
        self._doubles[self._where] = trajectory(stamp + self.offsets).ravel()
        return bytes(self.buf)


# --------------------------------------------------------------------------------------------
# flooder (runs as `python -m benchmarks.chunk_flood --role flood ...`)
# --------------------------------------------------------------------------------------------


def run_flood(points: int, chunk_rate: float, control: Path) -> None:
    """Publish chunks from when ``control/go`` exists until ``control/stop`` exists."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from trajectory_msgs.msg import JointTrajectory

    rclpy.init()
    node = rclpy.create_node("chunk_flooder")
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
    )
    pub = node.create_publisher(JointTrajectory, "action_chunk", qos)
    writer = ChunkWriter(points)
    print(f"flooder: {points} points, {len(writer.buf)} bytes per chunk; waiting", flush=True)
    go, stop = control / "go", control / "stop"
    while not go.exists():
        time.sleep(0.005)
    times: list[float] = []
    period = 1.0 / chunk_rate if chunk_rate > 0 else 0.0
    next_at = time.monotonic()
    while not stop.exists():
        pub.publish(writer.chunk(time.time()))
        times.append(time.time())
        if period:
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
    (control / "flood.json").write_text(json.dumps({"times": times, "bytes": len(writer.buf)}))
    node.destroy_node()
    rclpy.try_shutdown()


# --------------------------------------------------------------------------------------------
# fake robot, carrier and measurement (this process)
# --------------------------------------------------------------------------------------------


class Bench:
    """Joint states out (following the commands), carrier chunks out, commands recorded."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        rclpy.init()
        self.node = node = rclpy.create_node("chunk_flood_bench")
        self.lock = threading.Lock()
        self.positions = [0.0] * len(JOINTS)
        self.source: list[float] = []
        self.values: list[np.ndarray] = []
        self.diagnostics: list[tuple[float, dict[str, str]]] = []
        self._js = JointState(name=list(reversed(JOINTS)))
        self._js_pub = node.create_publisher(JointState, "joint_states", 10)
        node.create_timer(0.01, self._publish_joints)
        node.create_subscription(Float64MultiArray, "joint_commands", self._on_command, 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._bool = Bool
        self.e_stop_pub = node.create_publisher(Bool, "e_stop", latched)
        chunk_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
        )
        self._chunk_pub = node.create_publisher(JointTrajectory, "action_chunk", chunk_qos)
        self._carrier = ChunkWriter(CARRIER_POINTS)
        self.carriers = 0
        node.create_timer(1.0 / CARRIER_RATE_HZ, self._publish_carrier)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def _publish_joints(self) -> None:
        self._js.header.stamp = self.node.get_clock().now().to_msg()
        with self.lock:
            self._js.position = list(reversed(self.positions))
        self._js_pub.publish(self._js)

    def _publish_carrier(self) -> None:
        self._chunk_pub.publish(self._carrier.chunk(time.time()))
        self.carriers += 1

    def _on_command(self, msg, info) -> None:
        values = np.array(msg.data)
        with self.lock:
            self.source.append(info["source_timestamp"] * 1e-9)
            self.values.append(values)
            self.positions = values.tolist()

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("command_streamer"):
                values = {kv.key: kv.value for kv in status.values}
                with self.lock:
                    self.diagnostics.append((time.time(), values))

    def e_stop(self, value: bool) -> float:
        """Publish e_stop; returns the wall time just before the publish call."""
        t = time.time()
        self.e_stop_pub.publish(self._bool(data=value))
        return t

    def commands(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return np.array(self.source), np.array(self.values).reshape(-1, len(JOINTS))

    def latest_diag(self, before: float = math.inf) -> dict[str, str]:
        with self.lock:
            entries = [v for t, v in self.diagnostics if t <= before]
        return entries[-1] if entries else {}

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.try_shutdown()


def window(source: np.ndarray, t0: float, t1: float, period: float) -> PeriodSummary:
    return period_summary(source[(source >= t0) & (source < t1)], period)


def worst_intervals(
    source: np.ndarray, t0: float, t1: float, origin: float, n: int = 5
) -> list[list[float]]:
    """The ``n`` longest command intervals in [t0, t1): [start relative to ``origin`` s, ms]."""
    stamps = source[(source >= t0) & (source < t1)]
    if len(stamps) < 2:
        return []
    gaps = np.diff(stamps)
    top = np.argsort(gaps)[::-1][:n]
    return [[round(float(stamps[i] - origin), 3), round(1e3 * float(gaps[i]), 3)] for i in top]


def e_stop_latency(
    source: np.ndarray, values: np.ndarray, t_stop: float, period: float
) -> dict[str, object]:
    """From the e-stop publish to the first command that repeats its predecessor exactly
    and is repeated by every later one (the streamer holding)."""
    moved = np.r_[True, np.any(values[1:] != values[:-1], axis=1)]
    before = (source >= t_stop - 0.5) & (source < t_stop)
    result: dict[str, object] = {
        "moving_before": bool(moved[before].mean() > 0.9) if before.any() else False,
    }
    after = np.nonzero(source >= t_stop)[0]
    if not len(after):
        return {**result, "latency_ms": None, "ticks": None, "why": "no command after e-stop"}
    still = np.nonzero(moved[after[0] :])[0]
    if len(still) and after[0] + still[-1] == len(values) - 1:
        return {**result, "latency_ms": None, "ticks": None, "why": "commands never stopped"}
    first_held = after[0] + (still[-1] + 1 if len(still) else 0)
    latency = source[first_held] - t_stop
    return {
        **result,
        "latency_ms": 1e3 * float(latency),
        "ticks": int(first_held - after[0]),  # commands published after the stop that moved
        "latency_periods": float(latency / period),
        "why": "",
    }


def describe(s: PeriodSummary) -> str:
    return (
        f"{s.rate_hz:7.2f} Hz, period error p50 {s.error_p50_ms:6.3f} p99 {s.error_p99_ms:7.3f} "
        f"max {s.error_max_ms:7.3f} ms, missed {s.missed}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=5000, help="points per flood chunk")
    parser.add_argument("--duration", type=float, default=10.0, help="flood seconds")
    parser.add_argument("--quiet", type=float, default=4.0, help="seconds measured unflooded")
    parser.add_argument("--tail", type=float, default=2.0, help="seconds after the e-stop")
    parser.add_argument(
        "--chunk-rate", type=float, default=100.0, help="flood chunks/s (0: back to back)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="control_rate_hz")
    parser.add_argument("--max-chunk-points", type=int, default=1000, help="streamer param")
    parser.add_argument("--realtime-priority", type=int, default=10, help="streamer param")
    parser.add_argument("--quick", action="store_true", help="short run: 2 s quiet, 3 s flood")
    parser.add_argument("--domain", type=int, default=0, help="ROS_DOMAIN_ID (0: lease one)")
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--keep-logs", action="store_true", help="print the node logs' paths")
    parser.add_argument("--role", default="", help=argparse.SUPPRESS)
    parser.add_argument("--control", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "flood":
        run_flood(args.points, args.chunk_rate, Path(args.control))
        return 0
    if args.quick:
        args.quiet, args.duration, args.tail = 2.0, 3.0, 1.5

    env = isolated_ros_env(args.domain or None)  # None: lease a free domain for this run
    domain = int(env["ROS_DOMAIN_ID"])
    os.environ.update(env)  # this process's nodes: the same domain and DDS profile
    logs = Path(tempfile.mkdtemp(prefix="chunk_flood-"))
    limits = logs / "limits.yaml"
    import yaml

    limits.write_text(yaml.safe_dump(LIMITS))
    period = 1.0 / args.rate
    procs: dict[str, NodeProcess] = {}
    bench = None
    try:
        procs["command_streamer"] = NodeProcess(
            "robot_policy_ros.nodes.command_streamer",
            ros_args=[
                "-p", f"limits_file:={limits}",
                "-p", f"control_rate_hz:={args.rate}",
                "-p", f"max_chunk_points:={args.max_chunk_points}",
                "-p", f"realtime_priority:={args.realtime_priority}",
                "-p", "ramp_in_s:=0.5",
            ],
            env=env,
            log_path=logs / "streamer.log",
        )  # fmt: skip
        procs["flooder"] = NodeProcess(
            "benchmarks.chunk_flood",
            args=[
                "--role", "flood", "--points", str(args.points),
                "--chunk-rate", str(args.chunk_rate), "--control", str(logs),
            ],
            env=env,
            log_path=logs / "flooder.log",
        )  # fmt: skip
        bench = Bench()
        bench.e_stop(False)  # the streamer hears the e-stop input and starts at once
        print(f"domain {domain}: waiting for moving commands ...")
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            dead = [name for name, p in procs.items() if not p.alive()]
            if dead:
                raise RuntimeError(f"{dead} exited:\n" + procs[dead[0]].output()[-3000:])
            source, values = bench.commands()
            ready = "waiting" in procs["flooder"].output()
            if ready and len(values) > 50 and np.any(values[-1] != values[-2]):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(
                "no moving commands within 120 s:\n" + procs["command_streamer"].output()[-3000:]
            )
        time.sleep(1.5)  # past the ramp-in
        pids = {name: p.proc.pid for name, p in procs.items()}
        pids["bench"] = os.getpid()
        t_quiet = time.time()
        time.sleep(args.quiet)
        diag0 = bench.latest_diag()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t_flood = time.time()
        (logs / "go").touch()
        time.sleep(args.duration)
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        diag1 = bench.latest_diag()
        t_stop = bench.e_stop(True)
        time.sleep(args.tail)
        (logs / "stop").touch()
        t_end = time.time()
        procs["flooder"].proc.wait(timeout=30)
        time.sleep(0.5)
        source, values = bench.commands()
        streamer_out = procs["command_streamer"].output()
    finally:
        if bench is not None:
            bench.close()
        for proc in procs.values():
            proc.stop()
    flood = json.loads((logs / "flood.json").read_text())
    flood_times = np.array(flood["times"])
    in_flood = (flood_times >= t_flood) & (flood_times < t_stop)

    quiet = window(source, t_quiet, t_flood, period)
    flooded = window(source, t_flood, t_stop, period)
    stop = e_stop_latency(source, values, t_stop, period)
    rejected = {
        k.removeprefix("chunks_rejected_"): diag_number(diag1, k)
        - diag_number({k: "0", **diag0}, k)
        for k in diag1
        if k.startswith("chunks_rejected_")
    }
    results = {
        "points_per_chunk": args.points,
        "chunk_bytes": flood["bytes"],
        "max_chunk_points": args.max_chunk_points,
        "control_rate_hz": args.rate,
        "flood_s": t_stop - t_flood,
        "cpus": os.cpu_count(),
        "load_average_1min_after": os.getloadavg()[0],
        "streamer_scheduling": (
            "SCHED_FIFO" if "control thread runs SCHED_FIFO" in streamer_out else "normal"
        ),
        "quiet": quiet.as_dict(),
        "flood": flooded.as_dict(),
        "e_stop": stop,
        "worst_intervals_quiet": worst_intervals(source, t_quiet, t_flood, t_flood),
        "worst_intervals_flood": worst_intervals(source, t_flood, t_stop, t_flood),
        "chunks_offered_per_s": float(in_flood.sum() / (t_stop - t_flood)),
        "chunks_offered_after_e_stop": int((flood_times >= t_stop).sum()),
        "carrier_chunks_per_s": CARRIER_RATE_HZ,
        "streamer_flood": {
            "chunks_received": diag_number(diag1, "chunks_received")
            - diag_number(diag0, "chunks_received"),
            "chunks_rejected": rejected,
            "missed_ticks": diag_number(diag1, "missed_ticks") - diag_number(diag0, "missed_ticks"),
            "underrun_events": diag_number(diag1, "underrun_events")
            - diag_number(diag0, "underrun_events"),
            "diagnostics_span_s": (
                diag_number(diag1, "commands_published") - diag_number(diag0, "commands_published")
            )
            * period,
        },
        "cpu_percent_during_flood": {
            name: 100.0 * (cpu1[name] - cpu0[name]) / (t_stop - t_flood) for name in cpu0
        },
        "commands_recorded": len(source),
        "run_s": t_end - t_quiet,
    }
    print()
    print(
        f"chunk_flood: {args.points} points x {len(JOINTS)} joints ({flood['bytes']} bytes) per "
        f"chunk, max_chunk_points {args.max_chunk_points}, control {args.rate:g} Hz, "
        f"{os.cpu_count()} CPUs, load {results['load_average_1min_after']:.1f}, control "
        f"thread {results['streamer_scheduling']}"
    )
    print(f"  quiet  {t_flood - t_quiet:5.1f} s : {describe(quiet)}")
    print(f"  flood  {t_stop - t_flood:5.1f} s : {describe(flooded)}")
    print(
        "  longest gaps   : flood "
        + ", ".join(f"{ms:.1f} ms at {t:+.2f} s" for t, ms in results["worst_intervals_flood"][:3])
        + " (from the flood start)"
    )
    print(
        f"  offered        : {results['chunks_offered_per_s']:.1f} flood chunks/s "
        f"(+ {CARRIER_RATE_HZ:g}/s valid {CARRIER_POINTS}-point carriers)"
    )
    sf = results["streamer_flood"]
    print(
        f"  streamer       : received {sf['chunks_received']:.0f} chunks during the flood, "
        f"rejected {rejected or 0}, missed ticks {sf['missed_ticks']:.0f}, underruns "
        f"{sf['underrun_events']:.0f}"
    )
    print(
        "  CPU (flood)    : "
        + ", ".join(f"{k} {v:.0f}%" for k, v in results["cpu_percent_during_flood"].items())
    )
    if stop["latency_ms"] is None:
        print(f"  e-stop latency : not measured ({stop['why']})")
    else:
        print(
            f"  e-stop latency : {stop['latency_ms']:.1f} ms ({stop['ticks']} ticks still moved"
            f"; moving before the stop: {stop['moving_before']})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.keep_logs:
        print(f"  logs kept in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
