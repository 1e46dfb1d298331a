"""``robot-policy train``: delegated to :mod:`robot_policy_ros.training.train_cli`.

The trainer is looked up when the parser is built; when it is missing or broken, ``train``
explains why and exits 2 while the other subcommands keep working.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

TRAIN_MODULE = "robot_policy_ros.training.train_cli"


def _load_train_module() -> tuple[Any | None, str]:
    """The training CLI module, or None and why it is unavailable."""
    try:
        import importlib

        module = importlib.import_module(TRAIN_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (TRAIN_MODULE, "robot_policy_ros.training"):
            return None, f"{TRAIN_MODULE} is not available in this installation"
        return None, f"{TRAIN_MODULE} could not be imported: {exc}"
    except Exception as exc:  # a broken trainer must not break inspect/init-checkpoint
        return None, f"{TRAIN_MODULE} could not be imported: {type(exc).__name__}: {exc}"
    if not hasattr(module, "add_arguments") or not hasattr(module, "run"):
        return None, f"{TRAIN_MODULE} lacks add_arguments(parser) / run(args)"
    return module, ""


def run_unavailable(args: argparse.Namespace) -> int:
    """`train` when the trainer is missing: explain and exit 2."""
    print(f"robot-policy train: {args.train_unavailable}", file=sys.stderr)
    return 2


def add_parser(sub: Any) -> None:
    """Register ``train`` on the robot-policy subparsers (the trainer's own arguments)."""
    module, why = _load_train_module()
    p = sub.add_parser("train", help="train a policy (robot_policy_ros.training)")
    if module is not None:
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    else:
        p.set_defaults(func=run_unavailable, train_unavailable=why)
