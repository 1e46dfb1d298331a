"""The demo's command line (``make demo``, ``python -m robot_policy_ros.demo``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from robot_policy_ros.demo.config import DemoConfig
from robot_policy_ros.demo.pipeline import Demo
from robot_policy_ros.sim.task import TASKS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make demo`` (``python -m robot_policy_ros.demo``).

    Unknown options are passed on to ``robot-policy train`` (e.g. ``--set dropout=0.1``).
    """
    d = DemoConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default=os.environ.get("POLICY", d.policy))
    parser.add_argument(
        "--task",
        default=os.environ.get("TASK", d.task),
        help=f"the sim's task: {', '.join(TASKS)}",
    )
    parser.add_argument("--demo-episodes", type=int, default=d.demo_episodes)
    parser.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    parser.add_argument("--train-steps", type=int, default=None,
                        help="default: per family (DEMO_TRAINING)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: per family (DEMO_TRAINING)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--image-size", default=d.image_size, help="HxW the policy sees")
    parser.add_argument("--camera-size", default=f"{d.image_width}x{d.image_height}",
                        help="WxH of the sim's camera")  # fmt: skip
    parser.add_argument("--camera-rate", type=float, default=d.camera_rate_hz)
    parser.add_argument("--train-threads", type=int, default=d.train_threads)
    parser.add_argument("--blending", default=d.blending)
    parser.add_argument("--refill-threshold", type=float, default=d.refill_threshold_s)
    parser.add_argument(
        "--restart-each-episode",
        action="store_true",
        help="deactivate and activate the policy stack around every evaluation reset instead "
        "of keeping it running through them (the default: the arm's jump home makes the "
        "streamer re-anchor and policy_node infer from fresh inputs)",
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
            task=args.task,
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
            restart_each_episode=args.restart_each_episode,
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
    keys = (
        "task",
        "policy",
        "policy_success_rate",
        "expert_success_rate",
        "control_rate_hz",
        "duration_s",
    )
    print(json.dumps({k: report[k] for k in keys}))
    return 0
