"""Training speed (samples/s) of ``robot-policy train`` on synthetic demonstration bags.

Examples:
    .venv/bin/python benchmarks/train_speed.py                        # mlp, tiny_cnn, 96x96, CPU
    .venv/bin/python benchmarks/train_speed.py --policy mlp --backbone resnet18
    .venv/bin/python benchmarks/train_speed.py --policy act --device cuda --amp bf16 --steps 200

The measurement is robot_policy_ros.bench.training (also ``make bench``'s training section):
median samples/s over the logged windows, data loading included, first window left out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from robot_policy_ros.checkpoint.config import POLICY_TYPES


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=POLICY_TYPES, default="mlp")
    parser.add_argument("--backbone", choices=("tiny_cnn", "resnet18"), default="tiny_cnn")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from robot_policy_ros.bench.training import training_throughput, write_dataset
    from robot_policy_ros.training.train_cli import parse_overrides

    root = Path(tempfile.mkdtemp(prefix="train_speed_"))
    try:
        write_s = write_dataset(root, args.episodes)
        figures = training_throughput(
            root,
            args.policy,
            steps=args.steps,
            batch_size=args.batch_size,
            image_size=args.image_size,
            overrides={"vision_backbone": args.backbone, **parse_overrides(args.set)},
            device=args.device,
            amp=args.amp,
            threads=args.threads,
            workers=args.workers,
        )
        figures["write_bags_s"] = round(write_s, 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
