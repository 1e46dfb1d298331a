"""Resident memory of each node, running together (``make bench`` section ``memory``).

Starts the deployed stack on the embedded sim, each node in its own process and one DDS
domain of its own: ``sim_robot`` (a 640x480 camera at 30 Hz, joint states at 100 Hz),
``policy_node`` with a random checkpoint of the chosen family inferring on that camera,
``command_streamer`` driving the sim at 50 Hz, and ``bag_recorder`` recording the camera,
the joint states and the commands. After ``warmup_s`` (imports, model load, the first
inferences) it samples every process's VmRSS once a second for ``seconds`` and reports, per
node, the first, last and largest sample and the CPU it used over the window.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from robot_policy_ros.bench.procstat import cpu_seconds, rss_mb
from robot_policy_ros.processes import NodeProcess, isolated_ros_env

NS = "/bench_arm"


def _checkpoint(out: Path, policy: str, overrides: dict[str, Any]) -> Path:
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.policies.factory import make_policy
    from robot_policy_ros.sim.arm import load_arm_config

    arm = load_arm_config(None)
    model = make_policy(
        policy,
        list(arm.joint_names),
        {"front": (96, 128)},  # the sim camera's 4:3
        10.0,
        limits=arm.joint_limits(),
        seed=0,
        **overrides,
    )
    return save_checkpoint(model, out)


def memory_table(
    policy: str = "mlp",
    overrides: dict[str, Any] | None = None,
    *,
    warmup_s: float = 20.0,
    seconds: float = 20.0,
    image_hw: tuple[int, int] = (480, 640),
    log_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """One row per node: ``rss_first_mb``, ``rss_last_mb``, ``rss_max_mb``, ``cpu_percent``."""
    work = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    logs = log_dir or work / "logs"
    ckpt = _checkpoint(work / "ckpt", policy, dict(overrides or {}))
    env = isolated_ros_env()
    h, w = image_hw
    remap = [
        "-r", f"joint_states:={NS}/joint_states",
        "-r", f"front/image_raw:={NS}/front/image_raw",
    ]  # fmt: skip
    commands = f"{NS}/forward_position_controller/commands"
    specs = {
        "sim_robot": [
            "-r", f"__ns:={NS}",
            "-p", f"image_width:={w}", "-p", f"image_height:={h}",
            "-p", "camera_rate_hz:=30.0", "-p", "episode_timeout_s:=1000.0",
        ],
        "policy_node": [*remap, "-p", f"checkpoint:={ckpt}"],
        "command_streamer": [
            *remap, "-p", f"checkpoint:={ckpt}", "-r", f"joint_commands:={commands}",
        ],
        "bag_recorder": [
            "-p", f"output_dir:={work / 'bags'}",
            "-p", f"topics:=[{NS}/joint_states,{NS}/front/image_raw,{commands}]",
        ],
    }  # fmt: skip
    procs: dict[str, NodeProcess] = {}
    try:
        for name, ros_args in specs.items():
            procs[name] = NodeProcess(
                f"robot_policy_ros.nodes.{name}",
                ros_args=ros_args,
                env=env,
                log_path=logs / f"memory_{name}.log",
            )
        time.sleep(warmup_s)
        for name, proc in procs.items():
            if not proc.alive():
                raise RuntimeError(f"{name} exited early:\n{proc.output()[-2000:]}")
        pids = {name: proc.proc.pid for name, proc in procs.items()}
        samples: dict[str, list[float]] = {name: [] for name in procs}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for name, pid in pids.items():
                samples[name].append(rss_mb(pid))
            time.sleep(1.0)
        elapsed = time.monotonic() - t0
        rows = []
        for name, pid in pids.items():
            values = [v for v in samples[name] if not math.isnan(v)]
            rows.append(
                {
                    "node": name,
                    "policy": policy if name == "policy_node" else "",
                    "rss_first_mb": round(values[0], 1),
                    "rss_last_mb": round(values[-1], 1),
                    "rss_max_mb": round(max(values), 1),
                    "cpu_percent": round(100.0 * (cpu_seconds(pid) - cpu0[name]) / elapsed, 1),
                    "warmup_s": warmup_s,
                    "seconds": round(elapsed, 1),
                    "image": f"{w}x{h}",
                }
            )
        return rows
    finally:
        for proc in reversed(list(procs.values())):
            proc.stop()
