"""``robot-policy train``: options and entry point (``add_arguments(parser)``, ``run(args)``).

Examples::

    robot-policy train --data bags/ --policy act --out runs/act1 --steps 20000
    robot-policy train --data bags/ --policy mlp --out runs/mlp --epochs 50 \
        --image-size 96x96 --chunk-size 10 --set hidden_dims=[256,256]
    torchrun --nproc_per_node=2 -m robot_policy_ros.training.train_cli \
        --data bags/ --policy diffusion --out runs/dp --steps 50000

Also runnable as ``python -m robot_policy_ros.training.train_cli`` (same options).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from robot_policy_ros.checkpoint.config import IMAGE_FITS, POLICY_TYPES
from robot_policy_ros.data.bag_reader import TopicConfig

POLICIES = POLICY_TYPES  # the one list of families (checkpoint.config)


def parse_image_size(text: str) -> tuple[int, int]:
    """``"96x128"`` (HxW) or ``"96"`` (square) -> (96, 128)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"image size must be HxW (e.g. 96x96), got {text!r}")


def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``["d_model=256", "hidden_dims=[256,256]", "loss=l1"]`` -> dict (values as JSON,
    falling back to the plain string)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def parse_floats(text: str | None) -> list[float] | None:
    """``"2.0"`` or ``"1.5,2,2"`` -> [floats] (None stays None)."""
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="BAG_DIR",
        help="episode bags, or directories of episode bags (MCAP or sqlite3)",
    )
    g.add_argument(
        "--action-source",
        choices=("commands", "measured"),
        default="commands",
        help="action targets: commanded positions (default) or measured future positions",
    )
    g.add_argument("--cameras", help="comma-separated camera names (default: all in the bags)")
    g.add_argument("--joints", help="comma-separated joint order (default: the bags')")
    g.add_argument("--joint-states-topic", default="joint_states")
    g.add_argument("--commands-topic", default="forward_position_controller/commands")
    g.add_argument("--trajectory-topic", default="joint_trajectory_controller/joint_trajectory")
    g.add_argument(
        "--command-joints",
        help="joint order of the Float64MultiArray commands if it differs from the joints'",
    )
    g.add_argument(
        "--max-state-gap",
        type=float,
        default=0.1,
        help="skip frames whose joint states are further apart than this (s)",
    )
    g.add_argument(
        "--cache-dir",
        default=None,
        help="decoded-frame cache (default ~/.cache/robot_policy_ros/frames; '' disables)",
    )
    g.add_argument(
        "--augment-shift",
        type=int,
        default=0,
        metavar="PX",
        help="random image shift augmentation of up to PX pixels (0: off)",
    )
    g.add_argument("--val-fraction", type=float, default=0.1, help="episodes held out")
    g.add_argument(
        "--decode-workers",
        type=int,
        default=None,
        help="processes decoding uncached bags (auto: up to 8 on machines with >= 4 cores)",
    )

    g = parser.add_argument_group("policy")
    g.add_argument("--policy", choices=POLICIES, required=True)
    g.add_argument("--image-size", type=parse_image_size, default=(96, 96), help="HxW")
    g.add_argument(
        "--image-fit",
        choices=IMAGE_FITS,
        default="resize",
        help="how camera frames of another aspect ratio than --image-size are mapped to it: "
        "resize (stretch), crop (centre) or letterbox (pad); recorded in the checkpoint, "
        "policy_node applies the same",
    )
    g.add_argument("--chunk-size", type=int, default=None, help="actions per inference")
    g.add_argument(
        "--fps", type=float, default=None, help="action rate of a chunk (default: camera rate)"
    )
    g.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="policy hyper-parameter override, VALUE as JSON (repeatable)",
    )
    g.add_argument(
        "--max-velocity",
        default=None,
        help="joint velocity limit(s) for the checkpoint (one or one per joint; "
        "default: 1.5x the fastest demonstrated speed)",
    )
    g.add_argument(
        "--limits-file",
        default=None,
        help="robot limits YAML ({joints: [{name, lower, upper, max_velocity}]}); the "
        "checkpoint's limits never exceed them",
    )

    g = parser.add_argument_group("optimisation")
    g.add_argument("--out", required=True, metavar="CKPT_DIR", help="output directory")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default 20)")
    g.add_argument("--steps", type=int, default=None, help="optimizer steps (overrides epochs)")
    g.add_argument("--batch-size", type=int, default=32, help="per process")
    g.add_argument("--lr", type=float, default=1e-4)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    g.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% (<= 500)")
    g.add_argument("--grad-clip", type=float, default=10.0, help="max grad norm (0: off)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off", help="CUDA only")
    g.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (auto)")
    g.add_argument("--torch-threads", type=int, default=None, help="CPU threads (auto: all)")
    g.add_argument("--resume", default=None, metavar="CKPT_DIR", help="continue a run")
    g.add_argument("--checkpoint-every", type=int, default=1000, help="steps (0: final only)")
    g.add_argument("--val-every", type=int, default=None, help="steps (default: checkpoint)")
    g.add_argument("--log-every", type=int, default=10, help="steps between log rows")
    g.add_argument("--log-dir", default=None, help="CSV/PNG/TensorBoard logs (default: --out)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The TrainConfig of parsed arguments."""
    from robot_policy_ros.training.trainer import TrainConfig

    def names(text: str | None) -> list[str] | None:
        return [x.strip() for x in text.split(",") if x.strip()] if text else None

    command_joints = names(args.command_joints)
    return TrainConfig(
        data=list(args.data),
        out=args.out,
        policy=args.policy,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        grad_clip=args.grad_clip,
        val_fraction=args.val_fraction,
        seed=args.seed,
        image_size=tuple(args.image_size),
        image_fit=args.image_fit,
        chunk_size=args.chunk_size,
        fps=args.fps,
        device=args.device,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        val_every=args.val_every,
        log_every=max(1, args.log_every),
        num_workers=args.num_workers,
        action_source=args.action_source,
        max_velocity=parse_floats(args.max_velocity),
        limits_file=args.limits_file,
        overrides=parse_overrides(args.set),
        log_dir=args.log_dir,
        amp=args.amp,
        cache_dir=args.cache_dir,
        cameras=names(args.cameras),
        joint_names=names(args.joints),
        topics=TopicConfig(
            joint_states=args.joint_states_topic,
            commands=args.commands_topic,
            trajectory=args.trajectory_topic,
            cameras=tuple(names(args.cameras)) if args.cameras else None,
            command_joint_names=tuple(command_joints) if command_joints else None,
        ),
        shift_px=args.augment_shift,
        max_state_gap_s=args.max_state_gap,
        torch_threads=args.torch_threads,
        decode_workers=args.decode_workers,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    """Run training; 0 on success, 2 on a usage/data problem."""
    import os

    from robot_policy_ros.data.bag_reader import BagReadError
    from robot_policy_ros.training.trainer import TrainingError, train

    main_rank = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING, format="%(message)s")
    try:
        config = config_from_args(args)
        result = train(config)
    except (TrainingError, BagReadError, ValueError, argparse.ArgumentTypeError) as exc:
        print(f"robot-policy train: error: {exc}", file=sys.stderr)
        return 2
    if not main_rank:
        return 0
    print(
        json.dumps(
            {
                "checkpoint": str(result.checkpoint),
                "steps": result.steps,
                "train_loss": result.final_train_loss,
                "val_loss": result.final_val_loss,
                "samples_per_s": result.samples_per_s,
            }
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robot_policy_ros.training.train_cli`` (and under torchrun)."""
    parser = argparse.ArgumentParser(prog="robot-policy train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
