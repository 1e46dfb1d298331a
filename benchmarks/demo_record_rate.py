"""Throughput of ``make demo``'s recording stage: sim_robot + scripted_expert + bag_recorder.

Runs the demo's own record stage for ``--episodes`` episodes and prints episodes per
minute, the CPU share of every node process over the stage, camera frames per episode and
the sim's "clock jumped" warnings (the physics starved for > 2 s: must be 0).

    .venv/bin/python benchmarks/demo_record_rate.py --episodes 30
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robot_policy_ros.bench.procstat import cpu_seconds  # noqa: E402
from robot_policy_ros.demo import Demo, DemoConfig  # noqa: E402


class MeasuredDemo(Demo):
    """The demo, reading its node processes' CPU time just before they are stopped."""

    cpu: dict[str, float]

    def stop_all(self) -> None:
        self.cpu = {}
        for proc in self.processes:
            if proc.alive():
                self.cpu[proc.module.rsplit(".", 1)[-1]] = cpu_seconds(proc.proc.pid)
        super().stop_all()


def main() -> int:
    """Command line; prints a JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--out", type=Path, default=None, help="default: a temporary directory")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        demo = MeasuredDemo(DemoConfig(demo_episodes=args.episodes, out_dir=out))
        demo.out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            bag_dir, recorded = demo.record()
        finally:
            Demo.stop_all(demo)
        wall = time.monotonic() - t0
        frames = []
        for meta in sorted(bag_dir.glob("*/episode.json")):
            counts = json.loads(meta.read_text()).get("counts", {})
            frames += [v["written"] for k, v in counts.items() if k.endswith("image_raw")]
        sim_log = (demo.logs / "record_sim_robot.log").read_text(errors="replace")
        summary = {
            "episodes": len(recorded),
            "expert_success_rate": sum(bool(r["success"]) for r in recorded) / len(recorded),
            "wall_s": round(wall, 1),
            "episodes_per_min": round(60.0 * len(recorded) / wall, 1),
            "cpu_share": {k: round(v / wall, 3) for k, v in demo.cpu.items()},
            "frames_per_episode_mean": round(sum(frames) / max(1, len(frames)), 1),
            "sim_clock_jumps": sim_log.count("clock jumped"),
        }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
