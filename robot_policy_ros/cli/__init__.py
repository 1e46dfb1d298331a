"""``robot-policy``: create, inspect and benchmark policy checkpoints; train (delegated).

One module per subcommand, each with ``add_parser(subparsers)`` and ``run(args)``:
    init-checkpoint   init_checkpoint.py     a randomly initialised, fully valid checkpoint
    inspect           inspect_checkpoint.py  print a checkpoint's family, joints, cameras,
                                             rates, size; validates it
    import-weights    import_weights.py      convert trusted .pt/.pth weights
                                             (weights_only=True) to a safe checkpoint
    import-lerobot    import_lerobot.py      convert a LeRobot pretrained_model folder
    predict           predict.py             run a checkpoint offline on an .npz of
                                             observations
    benchmark         benchmark.py           CPU/GPU inference latency per family
    train             train.py               delegated to robot_policy_ros.training.train_cli

Shared argument helpers live in :mod:`robot_policy_ros.cli.args`. Torch is imported by the
subcommands that run a network, when they run, not when the parser is built.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from robot_policy_ros.checkpoint.config import CheckpointError
from robot_policy_ros.cli import (
    benchmark,
    import_lerobot,
    import_weights,
    init_checkpoint,
    inspect_checkpoint,
    predict,
    train,
)
from robot_policy_ros.cli.args import fix_negative_values
from robot_policy_ros.inference.threads import passive_omp_wait

# In the order `robot-policy --help` lists them.
SUBCOMMANDS = (
    init_checkpoint,
    inspect_checkpoint,
    import_weights,
    import_lerobot,
    predict,
    benchmark,
    train,
)


def build_parser() -> argparse.ArgumentParser:
    """The robot-policy argument parser."""
    parser = argparse.ArgumentParser(
        prog="robot-policy",
        description="Create, inspect, benchmark and train visuomotor policy checkpoints.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    # Before torch loads (the train parser imports the trainer): torch's OpenMP threads
    # busy-wait between regions by default, which on a shared CPU made training and
    # inference several times slower (inference/threads.py).
    passive_omp_wait()
    argv = fix_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "train_unavailable", None):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except CheckpointError as exc:
        if args.command == "init-checkpoint":  # bad arguments, not a bad checkpoint
            print(f"robot-policy {args.command}: error: {exc}", file=sys.stderr)
            return 2
        print(f"robot-policy {args.command}: invalid checkpoint: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"robot-policy {args.command}: error: {exc}", file=sys.stderr)
        return 2
