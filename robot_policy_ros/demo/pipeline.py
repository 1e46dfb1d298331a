"""The demo's stages (record, train, evaluate, report) in one DDS domain of their own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robot_policy_ros.demo.config import ARM_NS, CAMERA, DemoConfig, Stopwatch, family_train_args
from robot_policy_ros.demo.orchestrator import EvalMonitor, Orchestrator
from robot_policy_ros.demo.report import ANIMATION, recorded_episodes, write_report
from robot_policy_ros.processes import NodeProcess, isolated_ros_env
from robot_policy_ros.sim.arm import load_arm_config


def _outcome(ep: dict[str, Any]) -> str:
    if ep.get("success"):
        return "success"
    return "FAILED (wrong disc)" if ep.get("wrong_disc") else "FAILED "


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
            "-p", f"task:={c.task}",
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
                f"{_outcome(ep)} in "
                f"{float(ep.get('elapsed_s', 0.0)):.1f}s  ({wins}/{len(results)} so far)"
            )
            if on_episode:
                on_episode(ep)
        return results

    # -- stages ----------------------------------------------------------------------
    def record(self) -> tuple[Path, list[dict[str, Any]]]:
        c = self.cfg
        bag_dir = self.out / "demos"
        self.clock.say(
            f"stage 1/4: recording {c.demo_episodes} expert demonstrations of task {c.task}"
        )
        self.start("sim_robot", "record_sim_robot", *self.sim_args(c.train_seed))
        self.start(
            "scripted_expert",
            "record_scripted_expert",
            "-r", f"__ns:={ARM_NS}",
            "-p", f"seed:={c.train_seed}",
            "-p", f"noise_std:={c.expert_noise_std}",
            "-p", f"task:={c.task}",
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
            *family_train_args(c.policy, c.task),
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
            # The sim's forward_position_controller takes its own joint order.
            "-p", f"controller_joints:={json.dumps(list(load_arm_config(None).joint_names))}",
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
        # Wait until the policy node has loaded the checkpoint and inferred (a chunk arrived)
        # and the streamer publishes: the streamer alone holds the arm (commands flow) while
        # policy_node is still configuring, which would eat into the first episode.
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline:
            snap = monitor.snapshot()
            if snap["commands"] and snap["chunks"]:
                break
            self.check_alive()
            time.sleep(0.2)
        else:
            raise RuntimeError("the policy stack published no action chunk within 90 s")
        # Started streamer first, so that it accepts the very first chunk of the policy node.
        restart = ("/command_streamer", "/policy_node") if c.restart_each_episode else ()
        for name in restart:  # discover the lifecycle services before the first episode
            self.orch.lifecycle_client(name)
        results = self.run_episodes(c.eval_episodes, "eval", restart_nodes=restart)
        snap = monitor.snapshot()
        snap["pauses"] = list(self.orch.pauses)
        snap["resets"] = list(self.orch.resets)
        self.stop_all()
        self.orch.close()
        self.orch = None
        return results, snap

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
        old += [self.out / n for n in ("report.md", "report.json", "eval_plot.png", ANIMATION)]
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
            report = write_report(self.cfg, expert, results, snap, ckpt, self.clock(), self.stage_s)
        finally:
            self.stop_all()
            if self.orch is not None:
                self.orch.close()
        return report
