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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.processes import NodeProcess, isolated_ros_env

ARM_NS = "/demo_arm"
CAMERA = "front"


@dataclass
class DemoConfig:
    """What the demo does; the defaults meet the bar on a 2-core CPU machine."""

    policy: str = "mlp"
    demo_episodes: int = 60
    eval_episodes: int = 20
    train_seed: int = 1
    eval_seed: int = 7777
    train_steps: int = 1500
    batch_size: int = 32
    image_size: str = "96x96"
    image_width: int = 320
    image_height: int = 240
    camera_rate_hz: float = 15.0
    episode_timeout_s: float = 12.0
    control_rate_hz: float = 50.0
    out_dir: Path = Path("demo_output")
    domain_id: int | None = None
    extra_train_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in ("mlp", "act", "diffusion"):
            raise ValueError(f"policy {self.policy!r}: choose mlp, act or diffusion")
        for name in ("demo_episodes", "eval_episodes", "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


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
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("demo_orchestrator", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        latched = QoSProfile(
            depth=10,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self.episode: dict[str, Any] = {}
        self.node.create_subscription(
            String, f"{ARM_NS}/sim_robot/episode", self._on_episode, latched
        )
        self.reset_client = self.node.create_client(Trigger, f"{ARM_NS}/sim_robot/reset")
        self._trigger = Trigger
        self._spinning = True
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_episode(self, msg) -> None:
        with self._lock:
            self.episode = json.loads(msg.data)

    def current_episode(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.episode)

    def wait_for_sim(self, timeout: float) -> bool:
        return self.reset_client.wait_for_service(timeout_sec=timeout)

    def reset_episode(self, timeout: float = 10.0) -> dict[str, Any]:
        """Call the sim's ``~/reset``; returns the new episode's state."""
        future = self.reset_client.call_async(self._trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError("sim_robot/reset did not answer")
            time.sleep(0.01)
        response = future.result()
        if not response.success:
            raise RuntimeError(f"sim_robot/reset failed: {response.message}")
        return json.loads(response.message)

    def run_episode(self, timeout: float) -> dict[str, Any]:
        """Start the next episode and wait until the sim says it is done."""
        started = self.reset_episode()
        index = started["index"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ep = self.current_episode()
            if ep.get("index") == index and ep.get("done"):
                return ep
            time.sleep(0.02)
        ep = self.current_episode()
        ep.update(index=index, done=True, success=False, timed_out_waiting=True)
        return ep

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


def command_timing(command_times: list[float], rate_hz: float) -> dict[str, float]:
    """Achieved rate and period error (ms) of commands as a subscriber saw them."""
    if len(command_times) < 3:
        return {"rate_hz": 0.0, "period_error_p50_ms": math.nan, "period_error_p99_ms": math.nan}
    t = np.asarray(command_times)
    periods = np.diff(t)
    # Gaps between episodes (streamer holding, nothing new) are still periodic ticks, so
    # every inter-arrival counts.
    err = np.abs(periods - 1.0 / rate_hz) * 1e3
    return {
        "rate_hz": float((len(t) - 1) / (t[-1] - t[0])),
        "period_error_p50_ms": float(np.percentile(err, 50)),
        "period_error_p99_ms": float(np.percentile(err, 99)),
        "period_error_max_ms": float(err.max()),
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


def plot_eval(snapshot: dict[str, Any], path: Path, seconds: float = 20.0) -> None:
    """Commanded vs measured joint positions over the first seconds, chunk arrivals marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commands, states = snapshot["commands"], snapshot["states"]
    if not commands or not states:
        return
    t0 = commands[0][0]
    names = snapshot["joint_names"] or [f"joint {i}" for i in range(len(commands[0][1]))]
    n = len(commands[0][1])
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.0 * n), sharex=True)
    axes = np.atleast_1d(axes)
    ct = np.array([c[0] - t0 for c in commands])
    cq = np.array([c[1] for c in commands])
    st = np.array([s[0] - t0 for s in states])
    sq = np.array([s[1][:n] for s in states if len(s[1]) >= n])
    st = st[: len(sq)]
    keep_c, keep_s = ct <= seconds, (st >= 0) & (st <= seconds)
    chunk_t = [c - t0 for c in snapshot["chunks"] if 0 <= c - t0 <= seconds]
    for j, ax in enumerate(axes):
        ax.plot(st[keep_s], sq[keep_s, j], label="measured", color="tab:blue")
        ax.plot(ct[keep_c], cq[keep_c, j], label="commanded", color="tab:orange", lw=1)
        for c in chunk_t:
            ax.axvline(c, color="grey", alpha=0.25, lw=0.6)
        ax.set_ylabel(f"{names[j] if j < len(names) else j}\n[rad]")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("Evaluation: commanded vs measured joints (grey lines: chunk arrivals)")
    axes[-1].set_xlabel("time [s]")
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
        return [
            "-p", f"output_dir:={out_dir}",
            "-p", f"topics:=[{','.join(topics)}]",
            "-p", f"episode_topic:={ARM_NS}/sim_robot/episode",
        ]  # fmt: skip

    def run_episodes(
        self, count: int, label: str, on_episode: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        assert self.orch is not None
        results = []
        for k in range(count):
            self.check_alive()
            ep = self.orch.run_episode(timeout=self.cfg.episode_timeout_s + 5.0)
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
    def record(self) -> tuple[Path, float]:
        c = self.cfg
        bag_dir = self.out / "demos"
        self.clock.say(f"stage 1/4: recording {c.demo_episodes} expert demonstrations")
        self.start("sim_robot", "record_sim_robot", *self.sim_args(c.train_seed))
        self.start(
            "scripted_expert",
            "record_scripted_expert",
            "-r", f"__ns:={ARM_NS}",
            "-p", f"seed:={c.train_seed}",
            "-p", "noise_std:=0.01",
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
        rate = sum(bool(r.get("success")) for r in results) / len(results)
        self.clock.say(f"recorded {len(results)} episodes, expert success {rate:.0%}")
        return bag_dir, rate

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
            "--seed", str(c.train_seed),
            *c.extra_train_args,
        ]  # fmt: skip
        subprocess.run(cmd, check=True, env=self.env, cwd=str(Path.cwd()))
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
        self.start("policy_node", "eval_policy_node", *remap, "-p", f"checkpoint:={ckpt}")
        self.start(
            "command_streamer",
            "eval_command_streamer",
            *remap,
            "-r", f"joint_commands:={ARM_NS}/forward_position_controller/commands",
            "-p", f"checkpoint:={ckpt}",
            "-p", f"control_rate_hz:={c.control_rate_hz}",
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
        results = self.run_episodes(c.eval_episodes, "eval")
        snap = monitor.snapshot()
        self.stop_all()
        self.orch.close()
        self.orch = None
        return results, snap

    def report(
        self,
        expert_rate: float,
        results: list[dict[str, Any]],
        snap: dict[str, Any],
        ckpt: Path,
    ) -> dict[str, Any]:
        c = self.cfg
        timing = command_timing([t for t, _ in snap["commands"]], c.control_rate_hz)
        diags = snap["diagnostics"]
        report = {
            "policy": c.policy,
            "episodes": len(results),
            "demo_episodes": c.demo_episodes,
            "policy_success_rate": sum(bool(r.get("success")) for r in results) / len(results),
            "expert_success_rate": expert_rate,
            "control_rate_hz": timing["rate_hz"],
            "period_error_p50_ms": timing["period_error_p50_ms"],
            "period_error_p99_ms": timing["period_error_p99_ms"],
            "streamer_period_error_p99_ms": _diag_float(
                diags, "command_streamer", "period_error_p99_ms"
            ),
            "streamer_missed_ticks": _diag_float(diags, "command_streamer", "missed_ticks"),
            "inference_ms_median": _diag_float(diags, "policy_node", "inference_latency_median_ms"),
            "inference_ms_p95": _diag_float(diags, "policy_node", "inference_latency_p95_ms"),
            "duration_s": self.clock(),
            "eval_seed": c.eval_seed,
            "train_seed": c.train_seed,
            "checkpoint": str(ckpt),
            "episode_results": results,
            "config": {k: str(v) for k, v in asdict(c).items()},
        }
        (self.out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        plot_eval(snap, self.out / "eval_plot.png")
        md = [
            "# robot_policy_ros demo report",
            "",
            f"- policy: **{c.policy}**, trained on {c.demo_episodes} expert demonstrations",
            f"- success: **{report['policy_success_rate']:.0%}** over {len(results)} unseen "
            f"episodes (expert: {expert_rate:.0%})",
            f"- control: {timing['rate_hz']:.2f} Hz achieved (target {c.control_rate_hz:g}), "
            f"period error p99 {timing['period_error_p99_ms']:.2f} ms (subscriber side)",
            f"- inference: median {report['inference_ms_median']:.1f} ms, "
            f"p95 {report['inference_ms_p95']:.1f} ms",
            f"- total time: {report['duration_s'] / 60:.1f} min",
            "",
            "Files: `demos/` (training bags), `eval/` (evaluation bags), `checkpoint/`, "
            "`eval_plot.png`, `report.json`, `logs/`.",
            "",
            "![evaluation](eval_plot.png)",
        ]
        (self.out / "report.md").write_text("\n".join(md) + "\n")
        return report

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.clock.say(
            f"output in {self.out}/, ROS_DOMAIN_ID={self.domain_id}, discovery localhost only"
        )
        try:
            bag_dir, expert_rate = self.record()
            ckpt = self.train(bag_dir)
            results, snap = self.evaluate(ckpt)
            report = self.report(expert_rate, results, snap, ckpt)
        finally:
            self.stop_all()
            if self.orch is not None:
                self.orch.close()
        return report


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make demo`` (``python -m robot_policy_ros.demo``)."""
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default=os.environ.get("POLICY", defaults.policy))
    parser.add_argument("--demo-episodes", type=int, default=defaults.demo_episodes)
    parser.add_argument("--eval-episodes", type=int, default=defaults.eval_episodes)
    parser.add_argument("--train-steps", type=int, default=defaults.train_steps)
    parser.add_argument("--out", type=Path, default=defaults.out_dir)
    parser.add_argument("--domain-id", type=int, default=None)
    args, extra = parser.parse_known_args(argv)
    cfg = DemoConfig(
        policy=args.policy,
        demo_episodes=args.demo_episodes,
        eval_episodes=args.eval_episodes,
        train_steps=args.train_steps,
        out_dir=args.out,
        domain_id=args.domain_id,
        extra_train_args=extra,
    )
    try:
        report = Demo(cfg).run()
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130
    print()
    print((cfg.out_dir / "report.md").read_text())
    keys = ("policy_success_rate", "expert_success_rate", "control_rate_hz", "duration_s")
    print(json.dumps({k: report[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
