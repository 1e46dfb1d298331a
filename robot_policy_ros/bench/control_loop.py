"""Control-loop fidelity of the stack against two baselines, and camera-to-command latency.

Both sections run in one child process (``python -m robot_policy_ros.bench.control_loop
--role section``), in a DDS domain of its own (localhost discovery), so that the monitor can
run SCHED_FIFO (as a robot's real-time controller would) without the rest of the suite
doing so, and its rclpy context dies with it. Every node is a process of its own:

* a fake robot (``--role robot``): joint states at 100 Hz that follow the commands (named in
  another order, with an extra joint) and an rgb8 camera;
* the system under test, one at a time, on the same checkpoint, backend and torch threads:
  ``stack``: policy_node (inferring back to back) + command_streamer; ``naive_timer`` and
  ``chunk_loop``: the baselines of :mod:`robot_policy_ros.bench.baselines`;
* the monitor (the section process itself), which records every command with the DDS
  source timestamp of the sample (when the publisher handed it to the middleware, so
  neither transport nor the monitor's own scheduling enters the figures).

**Control-loop fidelity** (:func:`control_loop_rows`). For each family, control rate and
system: the intervals between consecutive commands by source timestamp over ``duration_s``
(after ``warmup_s``), as period errors |interval - 1 / rate|: p50, p99, max, and missed
ticks (an interval of k nominal periods, k >= 2 rounded, counts k - 1). The checkpoint's
chunk fps equals the control rate (the baselines play one action per tick).

**Camera-to-command latency** (:func:`camera_to_command_rows`). For one camera frame with
header.stamp ``s`` (stamped by the robot when it publishes it):

* the *first chunk from it* is the first ``action_chunk`` (by source timestamp) whose
  header.stamp equals ``s`` (to 2 us: the stamp passes through a float): policy_node
  stamps a chunk with the oldest stamp among the inputs it used, and the robot publishes,
  just before each frame, a joint state with the frame's stamp, so a chunk computed from
  that frame carries ``s`` (chunks that carry no frame's stamp are counted as
  unattributed);
* the *first command from it* is the first ``joint_commands`` sample published after that
  chunk (source timestamps) whose value is nearer to that chunk's trajectory, linearly
  interpolated at the command's source time, than to the previous chunk's, and within
  0.05 rad of it (the streamer runs ``blending:=replace`` and the checkpoint's velocity
  limit is set out of the way, so a command is the interpolated chunk; a chunk refused or
  never followed counts as ``chunks_without_command``). The checkpoint's chunk rate is
  50 fps, so that a chunk still covers the time after its inference;
* ``latency = source time of that command - s``; split into ``s`` -> chunk published
  (frame transport, conversion, inference, publish) and chunk -> command (chunk transport,
  decoding, and the wait for the streamer's next tick: up to one control period).

The bare forward time is ``predict_chunk`` of the same checkpoint, backend and torch
threads on a fixed observation in this (otherwise idle) process, timed before and after the
nodes ran in the same run; ``stack overhead = median latency - median bare forward``.
policy_node's own medians (its diagnostics) split frame -> chunk further: the frame's age
when the worker takes it (transport, deserialization, wake-up), converting the images into
the network's input (``camera_hw`` frames resized to the checkpoint's ``image_hw``), its
``predict_chunk``, and building and publishing the chunk. To have the stack infer on each
frame as it arrives (not on one that waited for the previous inference to finish), frames
come at ``3 x`` the bare forward time (at most 10 Hz) and policy_node's
``max_observation_age_s`` is half the forward time (at least 20 ms), so after each
inference the worker finds its frame too old and waits for the next one, which wakes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.bench.procstat import cpu_seconds, diag_number, pin_process
from robot_policy_ros.core.timing import PeriodSummary, period_summary
from robot_policy_ros.processes import PACKAGE_ROOT, NodeProcess, isolated_ros_env

JOINTS = [f"joint_{i}" for i in range(1, 7)]
CAMERA = "front"
SYSTEMS = ("stack", "naive_timer", "chunk_loop")
#: Position limits of the bench's checkpoints (those of ``robot-policy init-checkpoint``).
POSITION_BOUNDS = (-3.14, 3.14)
#: Quantiles (percent) of the period error kept per row, for the distribution plot.
QUANTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)


# --------------------------------------------------------------------------------------------
# fake robot (a process of its own: --role robot)
# --------------------------------------------------------------------------------------------


def run_robot(
    image_hw: tuple[int, int], joint_rate: float, camera_rate: float, paired: bool = False
) -> None:
    """Publish joint states (tracking the commands) and a camera until interrupted.

    ``paired``: just before each frame, also publish a joint state stamped exactly as the
    frame, so that an observation built from that frame carries the frame's stamp.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray

    rclpy.init()
    node = rclpy.create_node("fake_robot")
    positions = [0.0] * len(JOINTS)
    js_pub = node.create_publisher(JointState, "joint_states", 10)
    cam_pub = node.create_publisher(Image, f"{CAMERA}/image_raw", qos_profile_sensor_data)
    h, w = image_hw
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8).tobytes() for _ in range(4)]
    image = Image(height=h, width=w, encoding="rgb8", step=3 * w)
    image.header.frame_id = CAMERA
    js = JointState(name=[*list(reversed(JOINTS)), "gripper"])  # other order + an extra joint
    count = [0]

    def on_command(msg: Float64MultiArray) -> None:
        positions[:] = list(msg.data)

    def publish_joints(stamp: Any = None) -> None:
        js.header.stamp = stamp if stamp is not None else node.get_clock().now().to_msg()
        js.position = [*list(reversed(positions)), 0.0]
        js_pub.publish(js)

    def publish_image() -> None:
        stamp = node.get_clock().now().to_msg()
        if paired:
            publish_joints(stamp)
        image.header.stamp = stamp
        image.data = frames[count[0] % len(frames)]
        count[0] += 1
        cam_pub.publish(image)

    node.create_subscription(Float64MultiArray, "joint_commands", on_command, 10)
    node.create_timer(1.0 / joint_rate, publish_joints)
    node.create_timer(1.0 / camera_rate, publish_image)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def start_robot(
    env: dict[str, str],
    image_hw: tuple[int, int],
    camera_rate: float,
    log: Path,
    paired: bool = False,
) -> NodeProcess:
    args = ["--role", "robot", "--image", f"{image_hw[1]}x{image_hw[0]}"]
    args += ["--camera-rate", f"{camera_rate:g}"] + (["--paired"] if paired else [])
    return NodeProcess("robot_policy_ros.bench.control_loop", args=args, env=env, log_path=log)


# --------------------------------------------------------------------------------------------
# monitor (in the measuring process)
# --------------------------------------------------------------------------------------------


class CommandLog:
    """The commands heard on one topic (while recording) and how many were heard at all."""

    def __init__(self) -> None:
        self.received: list[float] = []  # DDS receive timestamps (s)
        self.source: list[float] = []  # DDS source timestamps (s)
        self.callback: list[float] = []  # time.monotonic() in the callback
        self.values: list[list[float]] = []
        self.seen = 0


class Monitor:
    """Records commands (and optionally chunks and frame stamps) and diagnostics.

    Commands on ``joint_commands`` (attributes ``received``, ``source``, ``callback``,
    ``values``, ``commands_seen``) and on each of ``command_topics`` (``logs[topic]``).
    rclpy must not be initialised yet in this process; spins in a background thread, at
    SCHED_FIFO ``priority`` where permitted (0: normal scheduling).
    """

    def __init__(
        self,
        chunks: bool = False,
        images: bool = False,
        priority: int = 0,
        command_topics: Sequence[str] = (),
    ) -> None:
        self.lock = threading.Lock()
        self.recording = False
        self.topics = list(dict.fromkeys(["joint_commands", *command_topics]))
        self.logs = {topic: CommandLog() for topic in self.topics}
        # chunks: (source time, header stamp ns, time_from_start (P,), positions (P, J), names)
        self.chunks: list[tuple[float, int, np.ndarray, np.ndarray, list[str]]] = []
        self.image_stamps: list[int] = []
        self.diagnostics: dict[str, list[tuple[float, dict[str, str]]]] = {}
        self.scheduling = "normal"
        self._running = True
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(chunks, images, priority), daemon=True
        )
        self._thread.start()
        self._ready.wait(60.0)
        if self._error is not None:
            raise RuntimeError(f"monitor failed to start: {self._error!r}")

    def _run(self, chunks: bool, images: bool, priority: int) -> None:
        # SCHED_FIFO for this thread only (Linux: per thread), set before rclpy creates the
        # DDS threads so that they inherit it; the rest of the process (and the processes it
        # starts) keep normal scheduling.
        if priority > 0:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
                self.scheduling = f"SCHED_FIFO {priority}"
            except OSError as exc:
                self.scheduling = f"normal (SCHED_FIFO refused: {exc})"
        try:
            self._setup(chunks, images)
        except BaseException as exc:  # reported by __init__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def _setup(self, chunks: bool, images: bool) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from std_msgs.msg import Float64MultiArray

        rclpy.init()
        self.node = rclpy.create_node("control_loop_monitor")
        for topic in self.topics:
            self.node.create_subscription(
                Float64MultiArray,
                topic,
                lambda msg, info, topic=topic: self._on_command(topic, msg, info),
                100,
            )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        if chunks:
            from trajectory_msgs.msg import JointTrajectory

            from robot_policy_ros.nodes.lifecycle import CHUNK_QOS

            self.node.create_subscription(
                JointTrajectory, "action_chunk", self._on_chunk, CHUNK_QOS
            )
        if images:
            from sensor_msgs.msg import Image

            self.node.create_subscription(
                Image, f"{CAMERA}/image_raw", self._on_image, qos_profile_sensor_data
            )
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def reset(self) -> None:
        """Forget everything recorded (between systems)."""
        with self.lock:
            self.recording = False
            self.logs = {topic: CommandLog() for topic in self.topics}
            self.chunks, self.image_stamps = [], []
            self.diagnostics = {}

    # joint_commands, as attributes
    received = property(lambda self: self.logs["joint_commands"].received)
    source = property(lambda self: self.logs["joint_commands"].source)
    callback = property(lambda self: self.logs["joint_commands"].callback)
    values = property(lambda self: self.logs["joint_commands"].values)
    commands_seen = property(lambda self: self.logs["joint_commands"].seen)

    def _on_command(self, topic: str, msg: Any, info: Any) -> None:
        now = time.monotonic()
        log = self.logs[topic]
        log.seen += 1
        if self.recording:
            log.callback.append(now)
            log.received.append(info["received_timestamp"] * 1e-9)
            log.source.append(info["source_timestamp"] * 1e-9)
            log.values.append(list(msg.data))

    def _on_chunk(self, msg: Any, info: Any) -> None:
        if not self.recording:
            return
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        tfs = np.array(
            [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
        )
        pos = np.array([list(p.positions) for p in msg.points], dtype=np.float64)
        self.chunks.append(
            (info["source_timestamp"] * 1e-9, stamp_ns, tfs, pos, list(msg.joint_names))
        )

    def _on_image(self, msg: Any) -> None:
        if self.recording:
            self.image_stamps.append(
                msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            )

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            with self.lock:
                self.diagnostics.setdefault(
                    status.name.split(":")[0].rsplit("/", 1)[-1], []
                ).append((time.monotonic(), values))

    def latest(self, node: str) -> dict[str, str]:
        with self.lock:
            entries = self.diagnostics.get(node, [])
            return dict(entries[-1][1]) if entries else {}

    def window(self, node: str, since: float) -> list[dict[str, str]]:
        with self.lock:
            return [v for t, v in self.diagnostics.get(node, []) if t >= since]

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join(timeout=5)
        if self._error is None:
            self.node.destroy_node()
        rclpy.try_shutdown()


def period_errors_ms(times: Sequence[float], rate_hz: float) -> np.ndarray:
    """|interval - 1 / rate| in ms between consecutive ``times`` (seconds)."""
    return 1e3 * np.abs(np.diff(np.asarray(times, dtype=np.float64)) - 1.0 / rate_hz)


def describe(summary: PeriodSummary) -> str:
    return (
        f"rate {summary.rate_hz:8.3f} Hz | period error p50 {summary.error_p50_ms:6.3f} ms "
        f"p99 {summary.error_p99_ms:6.3f} ms max {summary.error_max_ms:7.3f} ms | jitter "
        f"{summary.jitter_ms:6.3f} ms | missed {summary.missed}"
    )


# --------------------------------------------------------------------------------------------
# checkpoints and systems
# --------------------------------------------------------------------------------------------


def make_checkpoint(
    out: Path,
    policy_type: str,
    fps: float,
    image_hw: tuple[int, int],
    overrides: dict[str, Any] | None = None,
    max_velocity: float = 2.0,
    seed: int = 0,
) -> Path:
    """A random checkpoint from the policies' factory (``robot-policy init-checkpoint``
    writes the same: uniform +-3.14 rad limits, ``max_velocity`` rad/s)."""
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.policies.factory import make_policy

    limits = JointLimits.uniform(JOINTS, *POSITION_BOUNDS, max_velocity=max_velocity)
    policy = make_policy(
        policy_type, JOINTS, {CAMERA: image_hw}, fps, limits=limits, seed=seed, **(overrides or {})
    )
    return save_checkpoint(policy, out, {"made_by": "robot_policy_ros.bench.control_loop"})


def policy_node_args(
    checkpoint: Path, backend: str, torch_threads: int, max_observation_age_s: float = 0.5
) -> list[str]:
    return [
        "-p", f"checkpoint:={checkpoint}",
        "-p", "inference_trigger:=rate", "-p", "inference_rate_hz:=1000.0",
        "-p", f"torch_threads:={torch_threads}",
        "-p", f"max_observation_age_s:={max_observation_age_s}",
        "-p", f"inference_backend:={backend}",
        # A camera of another aspect ratio (640x480 into 224x224) is resized, not refused.
        "-p", "image_fit:=resize",
    ]  # fmt: skip


def streamer_args(checkpoint: Path, rate: float, extra: Sequence[str] = ()) -> list[str]:
    # No e-stop publisher exists here: start at once instead of waiting e_stop_grace_s.
    return [
        "-p", f"checkpoint:={checkpoint}",
        "-p", f"control_rate_hz:={rate}",
        "-p", "e_stop_grace_s:=0.0",
        *extra,
    ]  # fmt: skip


def start_system(
    system: str,
    checkpoint: Path,
    rate: float,
    backend: str,
    torch_threads: int,
    env: dict[str, str],
    logs: Path,
    topic: str = "joint_commands",
) -> dict[str, NodeProcess]:
    """The processes of ``system`` (one of SYSTEMS), publishing commands on ``topic``."""
    if system == "stack":
        return {
            "policy_node": NodeProcess(
                "robot_policy_ros.nodes.policy_node",
                ros_args=policy_node_args(checkpoint, backend, torch_threads),
                env=env,
                log_path=logs / f"policy_node-{checkpoint.name}.log",
            ),
            "command_streamer": NodeProcess(
                "robot_policy_ros.nodes.command_streamer",
                ros_args=streamer_args(checkpoint, rate, ["-r", f"joint_commands:={topic}"]),
                env=env,
                log_path=logs / f"command_streamer-{checkpoint.name}.log",
            ),
        }
    if system in ("naive_timer", "chunk_loop"):
        args = [system, "--checkpoint", str(checkpoint), "--rate", f"{rate:g}"]
        args += ["--backend", backend, "--torch-threads", str(torch_threads), "--topic", topic]
        return {
            system: NodeProcess(
                "robot_policy_ros.bench.baselines",
                args=args,
                env=env,
                log_path=logs / f"{system}-{checkpoint.name}.log",
            )
        }
    raise ValueError(f"unknown system {system!r}; expected one of {SYSTEMS}")


def wait_ready(
    monitor: Monitor,
    procs: dict[str, NodeProcess],
    system: str,
    topic: str = "joint_commands",
    timeout: float = 240.0,
) -> None:
    """Until commands flow on ``topic`` (and, for the stack, policy_node has inferred twice)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, p in procs.items() if not p.alive()]
        if dead:
            raise RuntimeError(f"{dead} exited:\n" + procs[dead[0]].output()[-3000:])
        seen = monitor.logs[topic].seen
        if system == "stack":
            inferences = diag_number(monitor.latest("policy_node"), "inferences")
            if seen > 10 and inferences >= 2:
                return
        elif seen > 3:
            return
        time.sleep(0.1)
    with monitor.lock:
        heard = sorted(monitor.diagnostics)
    raise RuntimeError(
        f"{system}: not ready within {timeout:.0f} s ({monitor.logs[topic].seen} commands on "
        f"{topic}, diagnostics heard from {heard})"
    )


def stop_all(procs: dict[str, NodeProcess]) -> None:
    for proc in procs.values():
        proc.stop()


def measure_systems(
    monitor: Monitor,
    systems: dict[str, tuple[dict[str, NodeProcess], str]],
    rate: float,
    duration_s: float,
    warmup_s: float,
) -> list[dict[str, Any]]:
    """Record ``duration_s`` of commands after ``warmup_s``; one row per system.

    ``systems``: name -> (its processes, its command topic); all of them run meanwhile
    (one, except in the smoke profile).
    """
    for system, (procs, topic) in systems.items():
        wait_ready(monitor, procs, system, topic)
    time.sleep(warmup_s)
    every = {f"{s}/{n}": p for s, (procs, _t) in systems.items() for n, p in procs.items()}
    cpu0 = {name: cpu_seconds(p.proc.pid) for name, p in every.items()}
    streamer0 = monitor.latest("command_streamer")
    policy0 = monitor.latest("policy_node")
    t0 = time.monotonic()
    monitor.recording = True
    time.sleep(duration_s)
    monitor.recording = False
    elapsed = time.monotonic() - t0
    if "stack" in systems:
        time.sleep(1.2)  # one more diagnostics message, covering the end
    cpu = {n: 100.0 * (cpu_seconds(p.proc.pid) - cpu0[n]) / elapsed for n, p in every.items()}
    streamer1 = monitor.latest("command_streamer")
    policy1 = monitor.latest("policy_node")
    rows = []
    for system, (_procs, topic) in systems.items():
        log = monitor.logs[topic]
        source = list(log.source)
        summary = period_summary(source, 1.0 / rate)
        errors = period_errors_ms(source, rate)
        values = np.array(log.values)
        row: dict[str, Any] = {
            "system": system,
            "rate_hz": rate,
            "duration_s": elapsed,
            "commands": len(source),
            "achieved_rate_hz": summary.rate_hz,
            "period_error_p50_ms": summary.error_p50_ms,
            "period_error_p99_ms": summary.error_p99_ms,
            "period_error_max_ms": summary.error_max_ms,
            "jitter_ms": summary.jitter_ms,
            "missed_ticks": summary.missed,
            "error_quantiles_ms": (
                [float(v) for v in np.percentile(errors, QUANTILES)] if errors.size else []
            ),
            "commands_finite": bool(np.isfinite(values).all()) if values.size else None,
            "cpu_percent": {n.split("/", 1)[1]: v for n, v in cpu.items() if n.startswith(system)},
            "concurrent_systems": len(systems),
            "load_average_1min": os.getloadavg()[0],
        }
        if system == "stack":
            row["streamer_missed_ticks"] = int(
                diag_number(streamer1, "missed_ticks") - diag_number(streamer0, "missed_ticks")
            )
            row["inference_median_ms"] = diag_number(policy1, "inference_latency_median_ms")
            row["inferences"] = int(
                diag_number(policy1, "inferences") - diag_number(policy0, "inferences")
            )
        rows.append(row)
    return rows


def control_loop_rows(
    families: Sequence[tuple[str, str, dict[str, Any]]],
    rates: Sequence[float],
    duration_s: float,
    warmup_s: float,
    image_hw: tuple[int, int],
    backend: str,
    torch_threads: int,
    env: dict[str, str],
    logs: Path,
    systems: Sequence[str] = SYSTEMS,
    monitor_priority: int = 20,
    concurrent: bool = False,
    print_fn=print,
) -> list[dict[str, Any]]:
    """One row per (family, rate, system), with the baseline / stack p99 ratios added to the
    stack's rows. ``families``: (label, policy type, config overrides).

    Systems run one after the other (each alone with the robot and the monitor), or with
    ``concurrent`` (the smoke profile, to save start-up time: its figures mean nothing) all
    at once, each on a command topic of its own (``SYSTEM/joint_commands``).
    """
    rows: list[dict[str, Any]] = []
    tmp = tempfile.TemporaryDirectory(prefix="bench-control-loop-")
    robot = start_robot(env, image_hw, 30.0, logs / "robot.log")
    topics = {s: f"{s}/joint_commands" if concurrent else "joint_commands" for s in systems}
    monitor = Monitor(priority=monitor_priority, command_topics=list(topics.values()))
    try:
        for label, policy_type, overrides in families:
            for rate in rates:
                checkpoint = make_checkpoint(
                    Path(tmp.name) / f"{label}-{rate:g}", policy_type, rate, image_hw, overrides
                )
                batches = [list(systems)] if concurrent else [[system] for system in systems]
                group = []
                for batch in batches:
                    monitor.reset()
                    if not robot.alive():
                        raise RuntimeError("fake robot exited:\n" + robot.output()[-3000:])
                    running: dict[str, tuple[dict[str, NodeProcess], str]] = {}
                    try:
                        for system in batch:
                            procs = start_system(
                                system, checkpoint, rate, backend, torch_threads, env, logs,
                                topics[system],
                            )  # fmt: skip
                            running[system] = (procs, topics[system])
                        rows_now = measure_systems(monitor, running, rate, duration_s, warmup_s)
                    finally:
                        for procs, _topic in running.values():
                            stop_all(procs)
                    for row in rows_now:
                        row.update(
                            family=label, policy=policy_type, image=f"{image_hw[0]}x{image_hw[1]}"
                        )
                        print_fn(
                            f"control_loop {label} {rate:g} Hz {row['system']:11s}: p50 "
                            f"{row['period_error_p50_ms']:.3f} p99 "
                            f"{row['period_error_p99_ms']:.3f} max "
                            f"{row['period_error_max_ms']:.3f} ms, missed {row['missed_ticks']}, "
                            f"{row['commands']} commands, load {row['load_average_1min']:.1f}"
                        )
                    group += rows_now
                add_ratios(group)
                rows += group
    finally:
        monitor.close()
        robot.stop()
        tmp.cleanup()
    return rows


def add_ratios(group: list[dict[str, Any]]) -> None:
    """On the stack row of one (family, rate): p99 (and max) of each baseline / the stack's."""
    stack = next((r for r in group if r["system"] == "stack"), None)
    if stack is None:
        return
    for r in group:
        if r["system"] == "stack":
            continue
        for key in ("p99", "max"):
            s = stack[f"period_error_{key}_ms"]
            b = r[f"period_error_{key}_ms"]
            stack[f"{key}_ratio_{r['system']}"] = b / s if s > 0 else float("inf")


# --------------------------------------------------------------------------------------------
# camera-to-command latency
# --------------------------------------------------------------------------------------------


def bare_forward_ms(checkpoint: Path, backend: str, torch_threads: int, runs: int) -> list[float]:
    """``predict_chunk`` times (ms) of the checkpoint on a fixed observation, in this process,
    with policy_node's backend and thread count."""
    import torch

    from robot_policy_ros.checkpoint.weights import load_checkpoint
    from robot_policy_ros.inference import make_predictor
    from robot_policy_ros.inference.backends import probe_observation
    from robot_policy_ros.inference.export import cache_dir_for

    threads = torch_threads or max(1, (os.cpu_count() or 1) - 1)  # policy_node's default
    torch.set_num_threads(threads)
    policy = load_checkpoint(checkpoint)
    policy.eval()
    predictor = make_predictor(policy, backend, cache_dir=cache_dir_for(str(checkpoint)))
    obs = probe_observation(policy)
    predictor.predict_chunk(obs)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predictor.predict_chunk(obs)
        times.append(1e3 * (time.perf_counter() - t0))
    predictor.reset()
    return times


def _interp(chunk: tuple, t: float) -> np.ndarray:
    """The chunk's trajectory at time ``t`` (linear, held at the ends)."""
    _src, stamp_ns, tfs, pos, _names = chunk
    x = t - stamp_ns * 1e-9
    return np.array([np.interp(x, tfs, pos[:, j]) for j in range(pos.shape[1])])


#: A chunk's stamp passes through a float of seconds in policy_node (about 0.24 us
#: resolution at today's epoch), so it equals its frame's stamp to within this.
STAMP_MATCH_NS = 2_000


#: A command is the chunk's interpolated value at the streamer's clock reading, a few tens
#: of us before the publish (source) time: it matches the chunk to this much (rad).
MATCH_TOLERANCE = 0.05
#: The camera checkpoint's chunk rate: 100 ACT actions span 2 s, longer than an inference at
#: 480x640 here (a chunk that ends before it arrives is refused by the streamer as stale).
CAMERA_CHUNK_FPS = 50.0


def _frame_of(frames: np.ndarray, stamp_ns: int) -> int | None:
    """The frame stamp (ns) within STAMP_MATCH_NS of ``stamp_ns``, else None."""
    if frames.size == 0:
        return None
    i = int(np.searchsorted(frames, stamp_ns))
    for j in (i - 1, i):
        if 0 <= j < frames.size and abs(int(frames[j]) - stamp_ns) <= STAMP_MATCH_NS:
            return int(frames[j])
    return None


def attribute_latencies(
    image_stamps: Sequence[int],
    chunks: Sequence[tuple],
    cmd_source: Sequence[float],
    cmd_values: Sequence[Sequence[float]],
    command_joints: Sequence[str],
    bounds: tuple[float, float] = POSITION_BOUNDS,
) -> dict[str, Any]:
    """Per frame: stamp -> first chunk from it -> first command from that chunk (see the
    module docstring). ``bounds``: the position limits, to which the streamer clamps each
    command. Returns latencies (ms) and counts."""
    chunks = sorted(chunks, key=lambda c: c[0])
    src = np.asarray(cmd_source, dtype=np.float64)
    vals = np.asarray(cmd_values, dtype=np.float64)
    frames = np.array(sorted(set(image_stamps)), dtype=np.int64)
    first_chunk: dict[int, int] = {}
    unattributed = 0
    for i, c in enumerate(chunks):
        frame = _frame_of(frames, c[1])
        if frame is None:
            unattributed += 1
        elif frame not in first_chunk:
            first_chunk[frame] = i
    to_chunk, to_cmd, total = [], [], []
    no_command = 0
    for stamp, i in sorted(first_chunk.items()):
        if i == 0:
            continue  # no previous chunk to tell its commands apart
        new, old = chunks[i], chunks[i - 1]
        order = [new[4].index(j) for j in command_joints]
        newc = (new[0], new[1], new[2], new[3][:, order], command_joints)
        oldc = (old[0], old[1], old[2], old[3][:, [old[4].index(j) for j in command_joints]], [])
        after = np.nonzero(src > new[0])[0]
        hit = None
        for k in after[:50]:
            d_new = np.abs(vals[k] - np.clip(_interp(newc, src[k]), *bounds)).max()
            d_old = np.abs(vals[k] - np.clip(_interp(oldc, src[k]), *bounds)).max()
            if d_new < d_old and d_new <= MATCH_TOLERANCE:
                hit = k
                break
        if hit is None:
            no_command += 1
            continue
        s = stamp * 1e-9
        to_chunk.append(1e3 * (new[0] - s))
        to_cmd.append(1e3 * (src[hit] - new[0]))
        total.append(1e3 * (src[hit] - s))
    return {
        "frames": int(frames.size),
        "frames_with_chunk": len(first_chunk),
        "latencies_ms": total,
        "image_to_chunk_ms": to_chunk,
        "chunk_to_command_ms": to_cmd,
        "unattributed_chunks": unattributed,
        "chunks_without_command": no_command,
    }


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "min": None, "max": None}
    a = np.asarray(values)
    return {
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def camera_to_command_rows(
    family: tuple[str, str, dict[str, Any]],
    image_hw: tuple[int, int],
    rate: float,
    duration_s: float,
    warmup_s: float,
    bare_runs: int,
    backend: str,
    torch_threads: int,
    env: dict[str, str],
    logs: Path,
    monitor_priority: int = 20,
    print_fn=print,
    camera_hw: tuple[int, int] | None = None,
    isolate_inference_core: bool = False,
) -> list[dict[str, Any]]:
    """One row: camera-to-command latency of the stack vs the bare forward time.

    ``image_hw``: the checkpoint's input; ``camera_hw``: the frames the robot publishes
    (None: the same), resized by policy_node (``image_fit:=resize``) when they differ.
    ``isolate_inference_core``: once the nodes run, policy_node gets the last CPU to itself
    and every other process of the bench (robot, streamer, this monitor) the others, as on a
    robot computer with a core set aside for inference; the bare forward is timed on an
    idle machine either way. Needs >= 2 CPUs.
    """
    label, policy_type, overrides = family
    camera_hw = tuple(camera_hw) if camera_hw is not None else tuple(image_hw)
    tmp = tempfile.TemporaryDirectory(prefix="bench-camera-")
    checkpoint = make_checkpoint(
        Path(tmp.name) / label,
        policy_type,
        CAMERA_CHUNK_FPS,
        image_hw,
        overrides,
        max_velocity=1e4,
    )
    bare = bare_forward_ms(checkpoint, backend, torch_threads, bare_runs)
    forward = float(np.median(bare))
    camera_period = max(3.0 * forward * 1e-3, 0.1)
    # Transport and rclpy's dispatch make a fresh frame a few ms old when the worker takes it.
    max_age = max(0.5 * forward * 1e-3, 0.02)
    tag = f"{label}-{camera_hw[0]}x{camera_hw[1]}-{image_hw[0]}x{image_hw[1]}"
    robot = start_robot(env, camera_hw, 1.0 / camera_period, logs / f"robot-{tag}.log", paired=True)
    monitor = Monitor(chunks=True, images=True, priority=monitor_priority)
    procs = {
        "policy_node": NodeProcess(
            "robot_policy_ros.nodes.policy_node",
            ros_args=policy_node_args(checkpoint, backend, torch_threads, max_age),
            env=env,
            log_path=logs / f"policy_node-{tag}.log",
        ),
        "command_streamer": NodeProcess(
            "robot_policy_ros.nodes.command_streamer",
            ros_args=streamer_args(
                checkpoint,
                rate,
                [
                    "-p",
                    "blending:=replace",
                    "-p",
                    "reanchor_tolerance:=100.0",
                    "-p",
                    "ramp_in_s:=0.0",
                ],
            ),
            env=env,
            log_path=logs / f"command_streamer-{tag}.log",
        ),
    }
    own_cpus = os.sched_getaffinity(0)
    try:
        wait_ready(monitor, procs, "stack")
        if isolate_inference_core:
            inference_cpu = max(own_cpus)
            rest = own_cpus - {inference_cpu}
            if not rest:
                raise RuntimeError("isolate_inference_core needs at least 2 CPUs")
            pin_process(procs["policy_node"].proc.pid, {inference_cpu})
            for pid in (procs["command_streamer"].proc.pid, robot.proc.pid, os.getpid()):
                pin_process(pid, rest)
        time.sleep(warmup_s)
        monitor.recording = True
        time.sleep(duration_s)
        monitor.recording = False
        time.sleep(1.2)
        node = monitor.latest("policy_node")
        node_forward = diag_number(node, "inference_latency_median_ms")
        # frame -> chunk, piece by piece (policy_node's own medians): the frame's age when
        # the worker takes it (transport, deserialization, wake-up), converting it, the
        # forward, building and publishing the chunk.
        pieces = {
            key: diag_number(node, f"{key}_median_ms")
            for key in ("observation_age", "observation_build", "chunk_publish")
        }
        stale_skips = diag_number(node, "stale_skips")
        streamer_rejected = diag_number(monitor.latest("command_streamer"), "chunks_rejected")
    finally:
        stop_all(procs)
        robot.stop()
        monitor.close()
        pin_process(os.getpid(), own_cpus)
    bare += bare_forward_ms(checkpoint, backend, torch_threads, bare_runs)  # after, same run
    tmp.cleanup()
    found = attribute_latencies(
        monitor.image_stamps, monitor.chunks, monitor.source, monitor.values, JOINTS
    )
    lat = _stats(found["latencies_ms"])
    bare_median = float(np.median(bare))
    overhead = lat["median"] - bare_median if lat["median"] is not None else None
    row = {
        "family": label,
        "policy": policy_type,
        "image": f"{image_hw[0]}x{image_hw[1]}",
        "camera": f"{camera_hw[0]}x{camera_hw[1]}",
        "inference_core_isolated": isolate_inference_core,
        "control_rate_hz": rate,
        "camera_rate_hz": 1.0 / camera_period,
        "backend": backend,
        "latency_ms": lat,
        "image_to_chunk_ms": _stats(found["image_to_chunk_ms"]),
        "chunk_to_command_ms": _stats(found["chunk_to_command_ms"]),
        "bare_forward_ms": _stats(bare),
        "node_predict_chunk_median_ms": node_forward,
        "node_observation_age_median_ms": pieces["observation_age"],
        "node_observation_build_median_ms": pieces["observation_build"],
        "node_chunk_publish_median_ms": pieces["chunk_publish"],
        "stack_overhead_ms": overhead,
        "stack_overhead_vs_node_forward_ms": (
            lat["median"] - node_forward if lat["median"] is not None else None
        ),
        "frames": found["frames"],
        "samples": len(found["latencies_ms"]),
        "unattributed_chunks": found["unattributed_chunks"],
        "chunks_without_command": found["chunks_without_command"],
        "policy_node_stale_skips": stale_skips,
        "streamer_chunks_rejected": streamer_rejected,
        "load_average_1min": os.getloadavg()[0],
    }
    if lat["median"] is not None:
        print_fn(
            f"camera_to_command {label} {row['camera']} -> {row['image']} ({backend}): latency "
            f"median {lat['median']:.1f} ms "
            f"(bare forward {bare_median:.1f} ms, in-node {node_forward:.1f} ms) -> overhead "
            f"{overhead:.1f} ms over {row['samples']} frames"
        )
    else:
        print_fn(f"camera_to_command {label}: no frame attributed ({found})")
    return [row]


# --------------------------------------------------------------------------------------------
# the section process
# --------------------------------------------------------------------------------------------


def run_sections(spec: dict[str, Any], logs: Path) -> dict[str, list[dict[str, Any]]]:
    """Both sections as ``spec`` asks (keys ``control_loop`` / ``camera_to_command``, each a
    dict of keyword arguments or None); in this process (see the module docstring)."""
    env = isolated_ros_env()  # leases a free domain for this process
    os.environ.update(
        {"ROS_DOMAIN_ID": env["ROS_DOMAIN_ID"], "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    )
    for key in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        if key in env:
            os.environ[key] = env[key]
    priority = int(spec.get("monitor_priority", 20))
    logs.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[dict[str, Any]]] = {"control_loop": [], "camera_to_command": []}
    loop = spec.get("control_loop")
    if loop:
        out["control_loop"] = control_loop_rows(
            families=[tuple(f) for f in loop["families"]],
            rates=loop["rates"],
            duration_s=loop["duration_s"],
            warmup_s=loop["warmup_s"],
            image_hw=tuple(loop["image_hw"]),
            backend=loop["backend"],
            torch_threads=loop["torch_threads"],
            env=env,
            logs=logs,
            monitor_priority=priority,
            concurrent=bool(loop.get("concurrent", False)),
        )
    cam = spec.get("camera_to_command")
    for case in cam["cases"] if cam else []:
        out["camera_to_command"] += camera_to_command_rows(
            family=tuple(case["family"]),
            image_hw=tuple(case["image_hw"]),
            camera_hw=tuple(case.get("camera_hw") or case["image_hw"]),
            rate=cam["rate"],
            duration_s=cam["duration_s"],
            warmup_s=cam["warmup_s"],
            bare_runs=cam["bare_runs"],
            backend=case["backend"],
            isolate_inference_core=bool(case.get("isolate_inference_core", False)),
            torch_threads=cam["torch_threads"],
            env=env,
            logs=logs,
            monitor_priority=priority,
        )
    return out


def run_in_subprocess(
    spec: dict[str, Any], logs: Path, parallel: bool = False, timeout: float | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Run :func:`run_sections` in a child process (its output goes to the console).

    ``parallel`` (the smoke profile: its figures mean nothing): one child per section, both
    at once, each in a DDS domain of its own, to start up only once.
    """
    sections = [k for k in ("control_loop", "camera_to_command") if spec.get(k)]
    common = {k: v for k, v in spec.items() if k not in sections}
    parts = [{**common, k: spec[k]} for k in sections] if parallel else [spec]
    out: dict[str, list[dict[str, Any]]] = {"control_loop": [], "camera_to_command": []}
    with tempfile.TemporaryDirectory(prefix="bench-sections-") as tmp:
        children = []
        for i, part in enumerate(parts):
            spec_file, result_file = Path(tmp) / f"spec{i}.json", Path(tmp) / f"result{i}.json"
            spec_file.write_text(json.dumps(part))
            cmd = [sys.executable, "-m", "robot_policy_ros.bench.control_loop"]
            cmd += ["--role", "section", "--spec", str(spec_file), "--result", str(result_file)]
            cmd += ["--logs", str(logs)]
            children.append((subprocess.Popen(cmd, cwd=str(PACKAGE_ROOT)), result_file))
        for child, _ in children:
            if child.wait(timeout=timeout) != 0:
                for other, _ in children:
                    other.kill()
                raise RuntimeError(f"{child.args} exited with {child.returncode}")
        for _, result_file in children:
            for key, rows in json.loads(result_file.read_text()).items():
                out[key] += rows
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="control-loop bench roles (used by suite.py)")
    p.add_argument("--role", choices=("robot", "section"), required=True)
    p.add_argument("--image", default="224x224", help="robot: camera WxH (rgb8)")
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--joint-rate", type=float, default=100.0)
    p.add_argument("--paired", action="store_true")
    p.add_argument("--spec", default="")
    p.add_argument("--result", default="")
    p.add_argument("--logs", default="bench_output/logs")
    args = p.parse_args(argv)
    if args.role == "robot":
        width, height = (int(v) for v in args.image.split("x"))
        run_robot((height, width), args.joint_rate, args.camera_rate, args.paired)
        return 0
    from robot_policy_ros.inference.threads import passive_omp_wait

    passive_omp_wait()  # before torch loads
    result = run_sections(json.loads(Path(args.spec).read_text()), Path(args.logs))
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
