"""Rendering rate of the sim camera on one CPU core.

Renders a moving arm and target (the scene sim_robot publishes) and prints frames per
second, with and without the rgb8 -> bytes conversion that building an Image message needs.

    .venv/bin/python benchmarks/sim_render.py --width 640 --height 480 --frames 600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot_policy_ros.sim.arm import load_arm_config
from robot_policy_ros.sim.render import Renderer
from robot_policy_ros.sim.task import sample_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--view", default="front")
    args = parser.parse_args()
    # One core: pin the process and keep OpenCV single-threaded.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    config = load_arm_config()
    renderer = Renderer(config, config.cameras[args.view], args.width, args.height)
    rng = np.random.default_rng(0)
    poses = config.clamp(config.home + rng.normal(0.0, 0.4, (args.frames, config.num_joints)))
    targets = [sample_target(0, k, config.workspace) for k in range(args.frames)]
    renderer.render(poses[0], targets[0])  # warm up

    t0 = time.perf_counter()
    for q, target in zip(poses, targets, strict=True):
        renderer.render(q, target)
    render_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for q, target in zip(poses, targets, strict=True):
        renderer.render(q, target).tobytes()
    with_bytes_s = time.perf_counter() - t0

    result = {
        "size": f"{args.width}x{args.height}",
        "view": args.view,
        "frames": args.frames,
        "cores": 1,
        "render_fps": round(args.frames / render_s, 1),
        "render_ms": round(1000 * render_s / args.frames, 3),
        "render_plus_tobytes_fps": round(args.frames / with_bytes_s, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
