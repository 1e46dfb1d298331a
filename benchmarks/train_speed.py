"""Training speed (samples/s) of ``robot-policy train`` on synthetic demonstration bags.

Examples:
    .venv/bin/python benchmarks/train_speed.py                        # mlp, tiny_cnn, 96x96, CPU
    .venv/bin/python benchmarks/train_speed.py --policy mlp --backbone resnet18
    .venv/bin/python benchmarks/train_speed.py --policy act --device cuda --amp bf16 --steps 200

Writes a synthetic dataset (episodes of a reach task with known timing) once into a temp
dir, then trains for --steps and prints the median samples/s over the logged windows (the
first window, with the one-off start-up costs, is left out), data-loading time included,
plus the first and last training loss.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
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

    from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_dataset
    from robot_policy_ros.training.train_cli import parse_overrides
    from robot_policy_ros.training.trainer import TrainConfig, train

    tmp = Path(tempfile.mkdtemp(prefix="train_speed_"))
    try:
        spec = SyntheticEpisode(duration_s=4.0, image_hw=(120, 160), motion="reach")
        t0 = time.perf_counter()
        write_synthetic_dataset(tmp / "bags", args.episodes, spec)
        t_write = time.perf_counter() - t0
        overrides = {"vision_backbone": args.backbone, **parse_overrides(args.set)}
        config = TrainConfig(
            data=[str(tmp / "bags")],
            out=str(tmp / "run"),
            policy=args.policy,
            steps=args.steps,
            batch_size=args.batch_size,
            image_size=(args.image_size, args.image_size),
            fps=10.0,
            device=args.device,
            amp=args.amp,
            checkpoint_every=0,
            log_every=max(1, args.steps // 6),
            val_fraction=0.2,
            overrides=overrides,
            cache_dir=str(tmp / "cache"),
            torch_threads=args.threads,
            num_workers=args.workers,
            progress=False,
        )
        t0 = time.perf_counter()
        result = train(config)
        t_total = time.perf_counter() - t0
        speeds = [
            r["samples_per_s"]
            for r in result.history
            if isinstance(r.get("train_loss"), float) and r["train_loss"] == r["train_loss"]
        ][1:-1] or [result.samples_per_s]
        import torch

        figures = {
            "policy": args.policy,
            "backbone": args.backbone,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "train_samples": result.train_samples,
            "steps": result.steps,
            "samples_per_s_median": round(statistics.median(speeds), 1),
            "first_loss": round(result.first_train_loss, 4),
            "final_loss": round(result.final_train_loss, 4),
            "val_loss": round(result.final_val_loss, 4),
            "write_bags_s": round(t_write, 2),
            "train_call_s": round(t_total, 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
