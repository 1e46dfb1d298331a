"""``make demo``: record demonstrations, train a policy, deploy it and score it, on ROS 2 topics.

Stages (each prints its progress and elapsed time):

1. **record**: the embedded sim_robot (namespace ``/demo_arm``), the scripted expert as the
   teleoperator and the bag_recorder; ``N`` seeded episodes, one rosbag2 (MCAP) bag each.
2. **train**: ``robot-policy train`` on those bags (progress bar, validation loss, safe
   checkpoint).
3. **deploy**: policy_node + command_streamer at 50 Hz drive the sim *through topic
   remapping only*, exactly as they would a real arm, for ``M`` episodes on seeds never
   used in training; the evaluation is recorded to a bag as well.
4. **report**: success rate (policy vs expert), achieved control rate and period error,
   inference latency; ``demo_output/report.md``, ``report.json`` and ``eval_plot.png``.

Everything runs in a DDS domain of its own with discovery limited to localhost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.processes import NodeProcess, isolated_ros_env

ARM_NS = "/demo_arm"
CAMERA = "front"


# Per-family training options the demo adds. The MLP is the product's family and the one
# tuned to meet the bar. ACT's default 100-action chunk is far longer than a 2 s episode.
# Diffusion on a CPU: its default U-Net (76 M parameters, 10 DDIM steps) infers in ~0.4-0.5 s,
# longer than its 8-action chunk lasts at 15 Hz, so every chunk would arrive stale; a
# smaller U-Net, 5 DDIM steps and 12 actions per chunk (~70 ms for a 0.73 s chunk).
FAMILY_TRAIN_ARGS: dict[str, list[str]] = {
    "mlp": [],
    "act": ["--chunk-size", "10"],
    "diffusion": [
        "--chunk-size", "12",
        "--set", "down_dims=[128,256,512]",
        "--set", "num_inference_steps=5",
    ],
}  # fmt: skip


@dataclass
class DemoConfig:
    """What the demo does; the defaults meet the bar on a 2-core CPU machine (doc/demo.md)."""

    policy: str = "mlp"
    demo_episodes: int = 100
    eval_episodes: int = 20
    train_seed: int = 1
    eval_seed: int = 7777
    # Training: ResNet18 from scratch at 64x64 (2.5x the samples/s of 96x96 on a CPU;
    # the target disc stays ~3 px wide), AdamW at 3e-4 with cosine decay, 2 CPU threads.
    train_steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    image_size: str = "64x64"
    val_fraction: float = 0.05
    train_threads: int = 2
    # The sim's camera: small frames (the policy sees 64x64) keep bags, rendering and
    # decoding cheap.
    image_width: int = 160
    image_height: int = 120
    camera_rate_hz: float = 15.0
    expert_noise_std: float = 0.01
    episode_timeout_s: float = 10.0
    # Deployment.
    control_rate_hz: float = 50.0
    blending: str = "replace"
    # policy_node's horizon trigger: infer again when less than this much of the published
    # chunk remains, i.e. execute ~(chunk span - this) of every chunk. Executing only the
    # first ~0.1 s of each chunk can stall at the pauses of the expert's moves (start, hover).
    refill_threshold_s: float = 0.3
    # Between evaluation episodes, deactivate the policy stack, reset the scene, activate
    # it again (what an operator does on a real arm): nothing from the previous episode is
    # replayed and the streamer ramps in from the measured position.
    restart_each_episode: bool = True
    out_dir: Path = Path("demo_output")
    domain_id: int | None = None
    extra_train_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in ("mlp", "act", "diffusion"):
            raise ValueError(f"policy {self.policy!r}: choose mlp, act or diffusion")
        for name in ("demo_episodes", "eval_episodes", "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.blending not in ("replace", "temporal_ensemble", "average", "crossfade"):
            raise ValueError(f"blending {self.blending!r} is not a command_streamer mode")


class Stopwatch:
    """Elapsed time since the demo started, for progress lines."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f"[demo {self():6.1f}s] {text}", flush=True)


class Orchestrator:
    """An rclpy node that resets episodes and watches them, plus what the report needs."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from robot_policy_ros.nodes.episode_client import EpisodeClient

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("demo_orchestrator", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        # Spun by this object's own thread, so the client's waits only sleep.
        self.episodes = EpisodeClient(self.node, f"{ARM_NS}/sim_robot")
        self._lifecycle_clients: dict[str, Any] = {}
        self.pauses: list[tuple[float, float]] = []  # (monotonic) policy stack restarts
        self._spinning = True
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def current_episode(self) -> dict[str, Any]:
        return self.episodes.current()

    def wait_for_sim(self, timeout: float) -> bool:
        return self.episodes.wait_for_sim(timeout)

    def reset_episode(self, timeout: float = 10.0) -> dict[str, Any]:
        """Call the sim's ``~/reset``; returns the new episode's state."""
        return self.episodes.reset(timeout)

    def lifecycle_client(self, node: str, timeout: float = 10.0) -> Any:
        """The (cached) ``change_state`` client of lifecycle node ``node``, once available."""
        from lifecycle_msgs.srv import ChangeState

        client = self._lifecycle_clients.get(node)
        if client is None:
            client = self.node.create_client(ChangeState, f"{node}/change_state")
            self._lifecycle_clients[node] = client
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"{node}/change_state is not available")
        return client

    def transition(self, node: str, activate: bool, timeout: float = 10.0) -> None:
        """Activate or deactivate the lifecycle node ``node`` (e.g. ``/command_streamer``)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        client = self.lifecycle_client(node, timeout)
        request = ChangeState.Request()
        request.transition.id = (
            Transition.TRANSITION_ACTIVATE if activate else Transition.TRANSITION_DEACTIVATE
        )
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node}/change_state did not answer")
            time.sleep(0.005)
        if not future.result().success:
            raise RuntimeError(f"{node}: {'activate' if activate else 'deactivate'} failed")

    def run_episode(self, timeout: float, restart_nodes: Sequence[str] = ()) -> dict[str, Any]:
        """Start the next episode and wait until the sim says it is done.

        ``restart_nodes`` (lifecycle nodes, in start order) are deactivated before the reset
        (in reverse order) and activated again after it.
        """
        paused = time.monotonic()
        for name in reversed(restart_nodes):
            self.transition(name, activate=False)
        started = self.reset_episode()
        for name in restart_nodes:
            self.transition(name, activate=True)
        if restart_nodes:
            self.pauses.append((paused, time.monotonic()))
        return self.episodes.wait_done(int(started["index"]), timeout)

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()


class EvalMonitor:
    """Collects commands, joint states, chunk arrivals and diagnostics during evaluation."""

    def __init__(self, orch: Orchestrator) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        node = orch.node
        self.commands: list[tuple[float, list[float]]] = []
        self.states: list[tuple[float, list[float]]] = []
        self.chunks: list[float] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.joint_names: list[str] = []
        self._lock = threading.Lock()
        node.create_subscription(
            Float64MultiArray,
            f"{ARM_NS}/forward_position_controller/commands",
            self._on_command,
            100,
        )
        node.create_subscription(
            JointState, f"{ARM_NS}/joint_states", self._on_state, qos_profile_sensor_data
        )
        node.create_subscription(
            JointTrajectory, f"{ARM_NS}/policy/action_chunk", self._on_chunk, 10
        )
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _on_command(self, msg) -> None:
        with self._lock:
            self.commands.append((self._now(), list(msg.data)))

    def _on_state(self, msg) -> None:
        with self._lock:
            if not self.joint_names:
                self.joint_names = list(msg.name)
            self.states.append((self._now(), list(msg.position)))

    def _on_chunk(self, msg) -> None:
        with self._lock:
            self.chunks.append(self._now())

    def _on_diag(self, msg) -> None:
        with self._lock:
            for status in msg.status:
                self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "commands": list(self.commands),
                "states": list(self.states),
                "chunks": list(self.chunks),
                "diagnostics": {k: dict(v) for k, v in self.diagnostics.items()},
                "joint_names": list(self.joint_names),
            }


def command_timing(
    command_times: Sequence[float],
    rate_hz: float,
    pauses: Sequence[tuple[float, float]] = (),
) -> dict[str, float]:
    """Achieved rate and period error (ms) of commands as a subscriber saw them.

    ``pauses``: (start, end) windows in which the streamer was deliberately inactive (the
    policy stack is restarted around every evaluation reset); an interval between two
    commands that overlaps one is no control period and is left out. Every other interval
    counts, including those spanning an episode change.
    """
    nan = math.nan
    if len(command_times) < 3:
        return {
            "rate_hz": 0.0,
            "period_error_p50_ms": nan,
            "period_error_p99_ms": nan,
            "period_error_max_ms": nan,
            "periods": 0,
        }
    t = np.asarray(command_times, dtype=np.float64)
    periods = np.diff(t)
    keep = np.ones(periods.shape, dtype=bool)
    for start, end in pauses:
        keep &= ~((t[:-1] < end) & (t[1:] > start))
    periods = periods[keep]
    if periods.size == 0:
        return command_timing([], rate_hz)
    err = np.abs(periods - 1.0 / rate_hz) * 1e3
    return {
        "rate_hz": float(periods.size / periods.sum()),
        "period_error_p50_ms": float(np.percentile(err, 50)),
        "period_error_p99_ms": float(np.percentile(err, 99)),
        "period_error_max_ms": float(err.max()),
        "periods": int(periods.size),
    }


def _diag_float(diags: dict[str, dict[str, str]], key_part: str, field_name: str) -> float:
    """First numeric diagnostics value whose status name contains ``key_part``."""
    for name, values in diags.items():
        if key_part in name and field_name in values:
            try:
                return float(values[field_name])
            except ValueError:
                continue
    return math.nan


def _with_breaks(t: np.ndarray, q: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN row wherever consecutive samples are more than ``max_gap`` apart, so a
    plotted line stops at a gap instead of drawing a ramp that never happened."""
    if len(t) < 2:
        return t, q
    gaps = np.flatnonzero(np.diff(t) > max_gap) + 1
    return (
        np.insert(t.astype(float), gaps, np.nan),
        np.insert(q.astype(float), gaps, np.nan, axis=0),
    )


def plot_eval(snapshot: dict[str, Any], path: Path, seconds: float = 20.0) -> None:
    """Commanded vs measured joint positions over the first ``seconds`` of the evaluation
    (from the first reset), chunk arrivals and the policy-stack restarts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commands, states = snapshot["commands"], snapshot["states"]
    if not commands or not states:
        return
    pauses = list(snapshot.get("pauses", ()))
    t0 = pauses[0][0] - 0.2 if pauses else commands[0][0]
    names = snapshot["joint_names"] or [f"joint {i}" for i in range(len(commands[0][1]))]
    n = len(commands[0][1])
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.0 * n), sharex=True)
    axes = np.atleast_1d(axes)
    ct = np.array([c[0] - t0 for c in commands])
    cq = np.array([c[1] for c in commands])
    st = np.array([s[0] - t0 for s in states])
    sq = np.array([s[1][:n] for s in states if len(s[1]) >= n])
    st = st[: len(sq)]
    keep_c, keep_s = (ct >= 0) & (ct <= seconds), (st >= 0) & (st <= seconds)
    ct, cq = _with_breaks(ct[keep_c], cq[keep_c], 0.1)
    st, sq = _with_breaks(st[keep_s], sq[keep_s], 0.1)
    chunk_t = [c - t0 for c in snapshot["chunks"] if 0 <= c - t0 <= seconds]
    spans = [(a - t0, b - t0) for a, b in pauses if 0 <= a - t0 <= seconds]
    for j, ax in enumerate(axes):
        for c in chunk_t:
            ax.axvline(c, color="grey", alpha=0.25, lw=0.6)
        for k, (a, b) in enumerate(spans):
            ax.axvspan(a, b, color="tab:green", alpha=0.15, lw=0, label="reset" if k == 0 else None)
        ax.plot(st, sq[:, j], label="measured", color="tab:blue")
        ax.plot(ct, cq[:, j], label="commanded", color="tab:orange", lw=1)
        ax.set_ylabel(f"{names[j] if j < len(names) else j}\n[rad]")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(
        "Evaluation: commanded vs measured joints (grey: chunk arrivals; green: episode reset, "
        "policy stack restarted)",
        fontsize=9,
    )
    axes[-1].set_xlabel("time since the first evaluation reset [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


class Demo:
    """The four stages, sharing one DDS domain, one orchestrator node and the output dir."""

    def __init__(self, config: DemoConfig) -> None:
        self.cfg = config
        self.clock = Stopwatch()
        self.out = config.out_dir
        self.env = isolated_ros_env(config.domain_id)
        self.domain_id = int(self.env["ROS_DOMAIN_ID"])
        self.logs = self.out / "logs"
        self.processes: list[NodeProcess] = []
        self.orch: Orchestrator | None = None
        self.stage_s: dict[str, float] = {}

    # -- processes -------------------------------------------------------------------
    def start(self, module: str, name: str, *ros_args: str) -> NodeProcess:
        proc = NodeProcess(
            f"robot_policy_ros.nodes.{module}",
            ros_args=ros_args,
            env=self.env,
            log_path=self.logs / f"{name}.log",
        )
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                raise RuntimeError(
                    f"{proc.module} exited with {proc.proc.returncode}; see {proc.log_path}:\n"
                    + proc.output()[-2000:]
                )

    def sim_args(self, seed: int) -> list[str]:
        c = self.cfg
        return [
            "-r", f"__ns:={ARM_NS}",
            "-p", f"seed:={seed}",
            "-p", f"image_width:={c.image_width}",
            "-p", f"image_height:={c.image_height}",
            "-p", f"camera_rate_hz:={c.camera_rate_hz}",
            "-p", f"episode_timeout_s:={c.episode_timeout_s}",
        ]  # fmt: skip

    def recorder_args(self, out_dir: Path, topics: list[str]) -> list[str]:
        from robot_policy_ros.sim.arm import default_arm_config_path

        # The arm's YAML goes into every episode.json: training then never gives the
        # checkpoint limits beyond the robot's own.
        return [
            "-p", f"output_dir:={out_dir}",
            "-p", f"topics:=[{','.join(topics)}]",
            "-p", f"episode_topic:={ARM_NS}/sim_robot/episode",
            "-p", f"robot_config:={default_arm_config_path()}",
        ]  # fmt: skip

    def run_episodes(
        self,
        count: int,
        label: str,
        on_episode: Callable[[dict[str, Any]], None] | None = None,
        restart_nodes: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        assert self.orch is not None
        results = []
        for k in range(count):
            self.check_alive()
            ep = self.orch.run_episode(
                timeout=self.cfg.episode_timeout_s + 5.0, restart_nodes=restart_nodes
            )
            results.append(ep)
            wins = sum(bool(r.get("success")) for r in results)
            self.clock.say(
                f"{label} episode {k + 1}/{count}: "
                f"{'success' if ep.get('success') else 'FAILED '} in "
                f"{float(ep.get('elapsed_s', 0.0)):.1f}s  ({wins}/{len(results)} so far)"
            )
            if on_episode:
                on_episode(ep)
        return results

    # -- stages ----------------------------------------------------------------------
    def record(self) -> tuple[Path, list[dict[str, Any]]]:
        c = self.cfg
        bag_dir = self.out / "demos"
        self.clock.say(f"stage 1/4: recording {c.demo_episodes} expert demonstrations")
        self.start("sim_robot", "record_sim_robot", *self.sim_args(c.train_seed))
        self.start(
            "scripted_expert",
            "record_scripted_expert",
            "-r", f"__ns:={ARM_NS}",
            "-p", f"seed:={c.train_seed}",
            "-p", f"noise_std:={c.expert_noise_std}",
        )  # fmt: skip
        topics = [
            f"{ARM_NS}/joint_states",
            f"{ARM_NS}/{CAMERA}/image_raw",
            f"{ARM_NS}/forward_position_controller/commands",
            f"{ARM_NS}/sim_robot/episode",
        ]
        self.start("bag_recorder", "record_bag_recorder", *self.recorder_args(bag_dir, topics))
        self.orch = Orchestrator(self.domain_id)
        if not self.orch.wait_for_sim(60.0):
            self.check_alive()
            raise RuntimeError("sim_robot did not come up within 60 s")
        time.sleep(2.0)  # let the recorder discover and subscribe to every topic
        results = self.run_episodes(c.demo_episodes, "demo")
        time.sleep(1.0)
        self.stop_all()
        self.orch.close()
        self.orch = None
        # What training will use: every bag, including the sim's first episode when the
        # recorder caught it from its start.
        recorded = recorded_episodes(bag_dir) or results
        rate = sum(bool(r.get("success")) for r in recorded) / len(recorded)
        self.clock.say(f"recorded {len(recorded)} episode bags, expert success {rate:.0%}")
        return bag_dir, recorded

    def train(self, bag_dir: Path) -> Path:
        c = self.cfg
        ckpt = self.out / "checkpoint"
        self.clock.say(f"stage 2/4: training a {c.policy} policy for {c.train_steps} steps")
        cmd = [
            sys.executable, "-m", "robot_policy_ros.cli", "train",
            "--data", str(bag_dir),
            "--policy", c.policy,
            "--out", str(ckpt),
            "--joint-states-topic", f"{ARM_NS}/joint_states",
            "--commands-topic", f"{ARM_NS}/forward_position_controller/commands",
            "--cameras", CAMERA,
            "--image-size", c.image_size,
            "--steps", str(c.train_steps),
            "--batch-size", str(c.batch_size),
            "--lr", str(c.lr),
            "--val-fraction", str(c.val_fraction),
            "--torch-threads", str(c.train_threads),
            "--checkpoint-every", "0",
            "--val-every", str(max(1, c.train_steps // 4)),
            "--log-every", "25",
            "--seed", str(c.train_seed),
            *FAMILY_TRAIN_ARGS[c.policy],
            *c.extra_train_args,
        ]  # fmt: skip
        done = subprocess.run(cmd, env=self.env, cwd=str(Path.cwd()))
        if done.returncode != 0:
            why = (
                f"killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exit status {done.returncode}"
            )
            raise RuntimeError(f"robot-policy train failed ({why}); its output is above")
        return ckpt

    def evaluate(self, ckpt: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        c = self.cfg
        self.clock.say(
            f"stage 3/4: deploying at {c.control_rate_hz:g} Hz for {c.eval_episodes} "
            f"episodes on unseen seed {c.eval_seed}"
        )
        self.start("sim_robot", "eval_sim_robot", *self.sim_args(c.eval_seed))
        # The policy stack sees the sim only through remapping, as it would a real arm.
        remap = [
            "-r", f"joint_states:={ARM_NS}/joint_states",
            "-r", f"{CAMERA}/image_raw:={ARM_NS}/{CAMERA}/image_raw",
            "-r", f"action_chunk:={ARM_NS}/policy/action_chunk",
        ]  # fmt: skip
        self.start(
            "policy_node",
            "eval_policy_node",
            *remap,
            "-p", f"checkpoint:={ckpt}",
            "-p", f"refill_threshold_s:={c.refill_threshold_s}",
        )  # fmt: skip
        self.start(
            "command_streamer",
            "eval_command_streamer",
            *remap,
            "-r", f"joint_commands:={ARM_NS}/forward_position_controller/commands",
            "-p", f"checkpoint:={ckpt}",
            "-p", f"control_rate_hz:={c.control_rate_hz}",
            "-p", f"blending:={c.blending}",
        )  # fmt: skip
        topics = [
            f"{ARM_NS}/joint_states",
            f"{ARM_NS}/{CAMERA}/image_raw",
            f"{ARM_NS}/forward_position_controller/commands",
            f"{ARM_NS}/policy/action_chunk",
            f"{ARM_NS}/sim_robot/episode",
        ]
        self.start(
            "bag_recorder", "eval_bag_recorder", *self.recorder_args(self.out / "eval", topics)
        )
        self.orch = Orchestrator(self.domain_id)
        monitor = EvalMonitor(self.orch)
        if not self.orch.wait_for_sim(60.0):
            self.check_alive()
            raise RuntimeError("sim_robot did not come up within 60 s")
        # Wait until commands flow: the policy node has loaded the checkpoint and inferred.
        deadline = time.monotonic() + 90.0
        while not monitor.snapshot()["commands"] and time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.2)
        # Started streamer first, so that it accepts the very first chunk of the policy node.
        restart = ("/command_streamer", "/policy_node") if c.restart_each_episode else ()
        for name in restart:  # discover the lifecycle services before the first episode
            self.orch.lifecycle_client(name)
        results = self.run_episodes(c.eval_episodes, "eval", restart_nodes=restart)
        snap = monitor.snapshot()
        snap["pauses"] = list(self.orch.pauses)
        self.stop_all()
        self.orch.close()
        self.orch = None
        return results, snap

    def report(
        self,
        expert: list[dict[str, Any]],
        results: list[dict[str, Any]],
        snap: dict[str, Any],
        ckpt: Path,
    ) -> dict[str, Any]:
        c = self.cfg
        timing = command_timing(
            [t for t, _ in snap["commands"]], c.control_rate_hz, snap.get("pauses", ())
        )
        diags = snap["diagnostics"]
        success_rate = sum(bool(r.get("success")) for r in results) / len(results)
        expert_rate = sum(bool(r.get("success")) for r in expert) / max(1, len(expert))
        training = training_summary(ckpt)
        report = {
            "policy": c.policy,
            "episodes": len(results),
            "demo_episodes": len(expert),
            "policy_success_rate": success_rate,
            "expert_success_rate": expert_rate,
            "policy_time_to_success_s_mean": mean_success_time(results),
            "expert_time_to_success_s_mean": mean_success_time(expert),
            "control_rate_hz": timing["rate_hz"],
            "period_error_p50_ms": timing["period_error_p50_ms"],
            "period_error_p99_ms": timing["period_error_p99_ms"],
            "period_error_max_ms": timing["period_error_max_ms"],
            "control_periods": timing["periods"],
            # The streamer's own figures cover the time since its last activation only.
            "streamer_period_error_p99_ms": _diag_float(
                diags, "command_streamer", "period_error_p99_ms"
            ),
            "streamer_missed_ticks": _diag_float(diags, "command_streamer", "missed_ticks"),
            "inference_ms_median": _diag_float(diags, "policy_node", "inference_latency_median_ms"),
            "inference_ms_p95": _diag_float(diags, "policy_node", "inference_latency_p95_ms"),
            "chunks_received": len(snap["chunks"]),
            "duration_s": self.clock(),
            "stage_durations_s": dict(self.stage_s),
            "training": training,
            "eval_seed": c.eval_seed,
            "train_seed": c.train_seed,
            "checkpoint": str(ckpt),
            "episode_results": results,
            "config": {k: str(v) for k, v in asdict(c).items()},
        }
        bar_met = success_rate >= 0.8 and len(results) >= 20
        (self.out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        plot_eval(snap, self.out / "eval_plot.png")
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in self.stage_s.items())
        md = [
            "# robot_policy_ros demo report",
            "",
            f"- policy: **{c.policy}** ({training.get('summary', 'see checkpoint/')}), "
            f"trained on {len(expert)} recorded expert episodes (seed {c.train_seed})",
            f"- success: **{success_rate:.0%}** over {len(results)} unseen episodes "
            f"(seed {c.eval_seed}); expert: {expert_rate:.0%} over {len(expert)}",
            f"- time to success (mean): policy {report['policy_time_to_success_s_mean']:.2f} s, "
            f"expert {report['expert_time_to_success_s_mean']:.2f} s",
            f"- control: {timing['rate_hz']:.2f} Hz achieved (target {c.control_rate_hz:g}), "
            f"period error p50 {timing['period_error_p50_ms']:.2f} ms, p99 "
            f"{timing['period_error_p99_ms']:.2f} ms, max {timing['period_error_max_ms']:.2f} ms "
            f"(as a subscriber saw them, {timing['periods']} periods)",
            f"- inference: median {report['inference_ms_median']:.1f} ms, "
            f"p95 {report['inference_ms_p95']:.1f} ms; {len(snap['chunks'])} chunks",
            f"- total time: {report['duration_s'] / 60:.1f} min ({stages}; venv install "
            "not included)",
            f"- bar (>= 80% over >= 20 unseen episodes): **{'met' if bar_met else 'NOT met'}**",
            "",
            "Files: `demos/` (training bags), `eval/` (evaluation bags), `checkpoint/` (with "
            "`train_log.csv`, `loss_curve.png`), `eval_plot.png`, `report.json`, `logs/`.",
            "",
            "![evaluation](eval_plot.png)",
        ]
        (self.out / "report.md").write_text("\n".join(md) + "\n")
        return report

    def stage(self, name: str, func: Callable[[], Any]) -> Any:
        """Run one stage and remember how long it took."""
        t0 = self.clock()
        try:
            return func()
        finally:
            self.stage_s[name] = self.clock() - t0

    def clear_previous_output(self) -> None:
        """Remove what an earlier run left in the output directory (its own files only):
        training must see this run's demonstrations and nothing else."""
        import shutil

        old = [self.out / n for n in ("demos", "eval", "checkpoint", "logs")]
        old += [self.out / n for n in ("report.md", "report.json", "eval_plot.png")]
        found = [p for p in old if p.exists()]
        if found:
            self.clock.say(f"removing the previous run's output in {self.out}/")
        for p in found:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.clear_previous_output()
        self.clock.say(
            f"output in {self.out}/, ROS_DOMAIN_ID={self.domain_id}, discovery localhost only"
        )
        try:
            bag_dir, expert = self.stage("record", self.record)
            ckpt = self.stage("train", lambda: self.train(bag_dir))
            results, snap = self.stage("evaluate", lambda: self.evaluate(ckpt))
            report = self.report(expert, results, snap, ckpt)
        finally:
            self.stop_all()
            if self.orch is not None:
                self.orch.close()
        return report


def recorded_episodes(bag_dir: Path) -> list[dict[str, Any]]:
    """index / success / elapsed_s of every episode bag (its ``episode.json``) in ``bag_dir``."""
    out = []
    for meta in sorted(Path(bag_dir).glob("*/episode.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        out.append({k: data.get(k) for k in ("index", "success", "elapsed_s")})
    return out


def mean_success_time(results: list[dict[str, Any]]) -> float:
    """Mean ``elapsed_s`` of the successful episodes (nan if none)."""
    times = [float(r.get("elapsed_s", math.nan)) for r in results if r.get("success")]
    return float(np.mean(times)) if times else math.nan


def training_summary(ckpt: Path) -> dict[str, Any]:
    """What the checkpoint's provenance and training log say about the run."""
    out: dict[str, Any] = {}
    try:
        prov = json.loads((ckpt / "config.json").read_text()).get("provenance", {})
    except (OSError, ValueError):
        return out
    for key in ("train_episodes", "val_episodes", "train_samples", "steps", "epochs"):
        if key in prov:
            out[key] = prov[key]
    for key in ("train_loss", "val_loss", "lr", "batch_size", "image_size"):
        if key in prov:
            out[key] = prov[key]
    try:
        rows = (ckpt / "train_log.csv").read_text().splitlines()
        header = rows[0].split(",")
        speeds = [
            float(r.split(",")[header.index("samples_per_s")])
            for r in rows[1:]
            if r.split(",")[header.index("samples_per_s")]
        ]
        if speeds:
            out["samples_per_s_median"] = float(np.median(speeds))
    except (OSError, ValueError, IndexError):
        pass
    if "steps" in out and "image_size" in out:
        h, w = out["image_size"]
        out["summary"] = f"{out['steps']} steps at {h}x{w}, {out.get('train_samples', '?')} samples"
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make demo`` (``python -m robot_policy_ros.demo``).

    Unknown options are passed on to ``robot-policy train`` (e.g. ``--set dropout=0.1``).
    """
    d = DemoConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default=os.environ.get("POLICY", d.policy))
    parser.add_argument("--demo-episodes", type=int, default=d.demo_episodes)
    parser.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    parser.add_argument("--train-steps", type=int, default=d.train_steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--image-size", default=d.image_size, help="HxW the policy sees")
    parser.add_argument("--camera-size", default=f"{d.image_width}x{d.image_height}",
                        help="WxH of the sim's camera")  # fmt: skip
    parser.add_argument("--camera-rate", type=float, default=d.camera_rate_hz)
    parser.add_argument("--train-threads", type=int, default=d.train_threads)
    parser.add_argument("--blending", default=d.blending)
    parser.add_argument("--refill-threshold", type=float, default=d.refill_threshold_s)
    parser.add_argument(
        "--no-restart",
        action="store_true",
        help="keep the policy stack running across evaluation episodes",
    )
    parser.add_argument("--episode-timeout", type=float, default=d.episode_timeout_s)
    parser.add_argument("--train-seed", type=int, default=d.train_seed)
    parser.add_argument("--eval-seed", type=int, default=d.eval_seed)
    parser.add_argument("--out", type=Path, default=d.out_dir)
    parser.add_argument("--domain-id", type=int, default=None)
    args, extra = parser.parse_known_args(argv)
    try:
        cam_w, cam_h = (int(v) for v in args.camera_size.lower().split("x"))
        cfg = DemoConfig(
            policy=args.policy,
            demo_episodes=args.demo_episodes,
            eval_episodes=args.eval_episodes,
            train_steps=args.train_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            image_size=args.image_size,
            image_width=cam_w,
            image_height=cam_h,
            camera_rate_hz=args.camera_rate,
            train_threads=args.train_threads,
            blending=args.blending,
            refill_threshold_s=args.refill_threshold,
            restart_each_episode=not args.no_restart,
            episode_timeout_s=args.episode_timeout,
            train_seed=args.train_seed,
            eval_seed=args.eval_seed,
            out_dir=args.out,
            domain_id=args.domain_id,
            extra_train_args=extra,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if cfg.train_seed == cfg.eval_seed:
        parser.error("--eval-seed must differ from --train-seed (unseen episodes)")
    try:
        report = Demo(cfg).run()
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print()
    print((cfg.out_dir / "report.md").read_text())
    keys = ("policy_success_rate", "expert_success_rate", "control_rate_hz", "duration_s")
    print(json.dumps({k: report[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
