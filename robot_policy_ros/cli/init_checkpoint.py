"""``robot-policy init-checkpoint``: a randomly initialised, fully valid checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robot_policy_ros.checkpoint.config import POLICY_TYPES, parse_camera_list
from robot_policy_ros.cli.args import check_out_dir, parse_floats, parse_limits, parse_set


def _diffusion_chunk_overrides(chunk: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """--chunk-size for diffusion sets n_action_steps, growing the horizon if needed."""
    from robot_policy_ros.policies.config import DiffusionConfig

    defaults = DiffusionConfig.__dataclass_fields__
    n_obs = overrides.get("n_obs_steps", defaults["n_obs_steps"].default)
    down = overrides.get("down_dims", defaults["down_dims"].default)
    horizon = overrides.get("horizon", defaults["horizon"].default)
    factor = 2 ** (len(down) - 1)
    need = chunk + n_obs - 1
    if "horizon" not in overrides and need > horizon:
        horizon = -(-need // factor) * factor
    return {"n_action_steps": chunk, "horizon": horizon}


def run(args: argparse.Namespace) -> int:
    """Write a randomly initialised, valid checkpoint."""
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.policies.factory import make_policy

    joints = [j.strip() for j in args.joints.split(",") if j.strip()]
    if not joints:
        raise ValueError("--joints: give at least one joint name")
    cameras = parse_camera_list(args.cameras)
    n = len(joints)
    lower, upper = parse_limits(args.limits, n)
    vel = parse_floats(args.max_velocity, "--max-velocity", n)
    acc = None
    if args.max_acceleration is not None:
        acc = parse_floats(args.max_acceleration, "--max-acceleration", n)
    limits = JointLimits(
        names=tuple(joints), lower=lower, upper=upper, max_velocity=vel, max_acceleration=acc
    )
    overrides = parse_set(args.set or [])
    if args.chunk_size is not None:
        if args.policy == "diffusion":
            overrides.update(_diffusion_chunk_overrides(args.chunk_size, overrides))
        else:
            overrides["chunk_size"] = args.chunk_size
    out = Path(args.out)
    check_out_dir(out, args.force)
    policy = make_policy(
        args.policy,
        joints,
        cameras,
        fps=args.fps,
        limits=limits,
        seed=args.seed,
        **overrides,
    )
    save_checkpoint(
        policy,
        out,
        provenance={"source": "robot-policy init-checkpoint", "trained": False, "seed": args.seed},
    )
    print(
        f"wrote {args.policy} checkpoint to {out} ({policy.num_parameters():,} parameters, "
        f"{n} joints, cameras {[c.name for c in cameras]}, chunk {policy.chunk_size} @ "
        f"{policy.fps:g} Hz)"
    )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``init-checkpoint`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "init-checkpoint",
        help="write a randomly initialised, fully valid checkpoint",
        description="Write a randomly initialised checkpoint (for smoke/integration tests).",
    )
    p.add_argument("--policy", required=True, choices=POLICY_TYPES)
    p.add_argument("--joints", required=True, help="comma-separated joint names, in order")
    p.add_argument(
        "--cameras", required=True, help="name:HxW[,name:HxW], e.g. front:224x224,wrist:96x96"
    )
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--fps", type=float, default=50.0, help="control rate of the chunk (Hz)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="actions per inference (mlp/act: chunk_size; diffusion: n_action_steps)",
    )
    p.add_argument(
        "--limits",
        default="-3.14:3.14",
        help="LOWER:UPPER for every joint, or L1:U1,L2:U2,... per joint (default -3.14:3.14)",
    )
    p.add_argument(
        "--max-velocity", default="2.0", help="joint speed limit, one value or one per joint"
    )
    p.add_argument("--max-acceleration", default=None, help="optional, one or one per joint")
    p.add_argument("--seed", type=int, default=0, help="random-init seed (deterministic)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="hyper-parameter override, VALUE as JSON (repeatable), e.g. --set d_model=256",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.set_defaults(func=run)
