"""``robot-policy import-weights``: trusted .pt/.pth weights into a safe checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robot_policy_ros.cli.args import check_out_dir


def run(args: argparse.Namespace) -> int:
    """Convert trusted pickle-based weights into a safe checkpoint (explicit opt-in)."""
    from robot_policy_ros.checkpoint.weights import import_weights

    if not args.weights_only:
        raise ValueError(
            "importing a pickle-based file needs --weights-only: it is then read with "
            "torch.load(weights_only=True), which refuses arbitrary objects; only import "
            "files you trust"
        )
    out = Path(args.out)
    check_out_dir(out, args.force)
    path = import_weights(args.weights, args.like, out, key=args.key)
    print(f"wrote {path} from {args.weights}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``import-weights`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "import-weights",
        help="convert trusted .pt/.pth weights into a safe checkpoint",
        description=(
            "Read a state dict with torch.load(weights_only=True) and write it as a safe "
            "checkpoint (safetensors + config.json) shaped like an existing checkpoint."
        ),
    )
    p.add_argument("weights", help="the .pt/.pth/.ckpt file")
    p.add_argument("--like", required=True, help="checkpoint describing the same model")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument("--key", default=None, help="entry of the file holding the state dict")
    p.add_argument(
        "--weights-only", action="store_true", help="required: read with weights_only=True"
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.set_defaults(func=run)
