"""Success rate of the scripted expert over seeded episodes.

In-process (default): the pure simulation (servo physics at the sim_robot's fixed rate, task
and success check) driven by the expert planner exactly as the scripted_expert node drives
the sim_robot node (position commands at rate_hz), faster than real time.

With ``--ros``: the real nodes (sim_robot + scripted_expert in their own processes, real
topics, wall-clock time), episodes advanced through ~/reset; slower (a few s per episode).

    .venv/bin/python benchmarks/expert_success.py --episodes 100 --seed 1000
    .venv/bin/python benchmarks/expert_success.py --ros --episodes 20 --seed 1000
    .venv/bin/python benchmarks/expert_success.py --task two_targets --episodes 100
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

from robot_policy_ros.processes import isolated_ros_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robot_policy_ros.sim.arm import load_arm_config  # noqa: E402
from robot_policy_ros.sim.expert import ExpertConfig, ExpertPlanner  # noqa: E402
from robot_policy_ros.sim.rollout import run_expert_episode  # noqa: E402
from robot_policy_ros.sim.task import TASKS, TaskConfig  # noqa: E402
from robot_policy_ros.sim.world import SimWorld  # noqa: E402


def run_in_process(args: argparse.Namespace) -> dict:
    """Simulate ``args.episodes`` episodes; returns the summary."""
    config = load_arm_config(args.arm_config or None)
    task = TaskConfig(episode_timeout_s=args.episode_timeout_s, task=args.task)
    world = SimWorld(config, task, seed=args.seed, physics_rate_hz=args.physics_rate_hz)
    planner = ExpertPlanner(config, ExpertConfig(noise_std=args.noise_std))
    times, successes, choices = [], 0, []
    for k in range(args.episodes):
        rng = np.random.default_rng([args.seed, k]) if args.noise_std > 0 else None
        ep = run_expert_episode(world, planner, k, args.rate_hz, args.seed, rng)
        successes += int(ep.success)
        choices.append(ep.choice)
        if ep.success:
            times.append(ep.elapsed_s)
    return {
        "mode": "in-process",
        "task": args.task,
        "first_target_chosen": float(np.mean(np.asarray(choices) == 0)),
        "episodes": args.episodes,
        "seed": args.seed,
        "noise_std": args.noise_std,
        "successes": successes,
        "success_rate": successes / args.episodes,
        "mean_time_to_success_s": float(np.mean(times)) if times else None,
        "max_time_to_success_s": float(np.max(times)) if times else None,
    }


def run_with_nodes(args: argparse.Namespace) -> dict:
    """Real nodes over DDS: reset, wait for done, count successes."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from robot_policy_ros.nodes.episode_client import EpisodeClient

    env = isolated_ros_env(args.domain_id)
    domain = env["ROS_DOMAIN_ID"]
    os.environ.update({"ROS_DOMAIN_ID": domain, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    common = ["--ros-args", "-p", f"seed:={args.seed}"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "robot_policy_ros.nodes.sim_robot",
                *common,
                "-p",
                "image_width:=160",
                "-p",
                "image_height:=120",
                "-p",
                f"episode_timeout_s:={args.episode_timeout_s}",
                "-p",
                f"task:={args.task}",
            ],
            env=env,
            cwd=ROOT,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "robot_policy_ros.nodes.scripted_expert",
                *common,
                "-p",
                f"noise_std:={args.noise_std}",
                "-p",
                f"task:={args.task}",
            ],
            env=env,
            cwd=ROOT,
        ),
    ]
    # A SIGTERM (e.g. from `timeout`) must still stop the node processes (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rclpy.init()
    node = Node("expert_success_bench")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    episodes = EpisodeClient(node, "sim_robot", executor=executor)
    results = []
    try:
        if not episodes.wait_for_sim(30.0):
            raise RuntimeError("sim_robot/reset did not appear")
        for k in range(args.episodes):
            index = episodes.reset()["index"] if k > 0 else 0  # episode 0 starts by itself
            outcome = episodes.wait_done(index, args.episode_timeout_s + 10.0)
            results.append((bool(outcome.get("success")), outcome.get("elapsed_s")))
            print(f"episode {k}: {outcome}", flush=True)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    successes = sum(s for s, _ in results)
    times = [t for s, t in results if s]
    return {
        "mode": "ros-nodes",
        "task": args.task,
        "episodes": args.episodes,
        "seed": args.seed,
        "noise_std": args.noise_std,
        "successes": successes,
        "success_rate": successes / max(1, len(results)),
        "mean_time_to_success_s": float(np.mean(times)) if times else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--noise-std", type=float, default=0.0)
    parser.add_argument("--rate-hz", type=float, default=50.0)
    parser.add_argument("--physics-rate-hz", type=float, default=500.0)
    parser.add_argument("--episode-timeout-s", type=float, default=20.0)
    parser.add_argument("--arm-config", default="")
    parser.add_argument("--task", default="reach", choices=TASKS)
    parser.add_argument("--ros", action="store_true", help="use the real nodes over DDS")
    parser.add_argument("--domain-id", type=int, default=None, help="default: a leased free one")
    args = parser.parse_args()
    t0 = time.perf_counter()
    summary = run_with_nodes(args) if args.ros else run_in_process(args)
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(summary, indent=2))
    return 0 if summary["success_rate"] >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
