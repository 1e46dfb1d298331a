"""``robot-policy``: create, inspect and benchmark policy checkpoints; train (delegated).

Subcommands:
    init-checkpoint   a randomly initialised, fully valid checkpoint (smoke tests, benchmarks)
    inspect           print a checkpoint's family, joints, cameras, rates, size; validates it
    import-weights    convert trusted .pt/.pth weights (weights_only=True) to a safe checkpoint
    import-lerobot    convert a LeRobot pretrained_model folder (ACT) into a checkpoint
    predict           run a checkpoint offline on an .npz of observations
    benchmark         CPU/GPU inference latency per family
    train             delegated to robot_policy_ros.training.train_cli
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_policy_ros.checkpoint.config import (
    POLICY_TYPES,
    CheckpointError,
    parse_camera_list,
)

TRAIN_MODULE = "robot_policy_ros.training.train_cli"


# --- argument parsing helpers ---------------------------------------------------------------
def _parse_floats(text: str, what: str, n: int) -> list[float]:
    """One value for all joints or one per joint, comma-separated."""
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number or comma-separated numbers") from None
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n:
        raise ValueError(f"{what}: got {len(vals)} values for {n} joints (give 1 or {n})")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{what}: values must be finite")
    return vals


def _parse_limits(text: str, n: int) -> tuple[list[float], list[float]]:
    """``LOWER:UPPER`` for all joints, or ``L1:U1,L2:U2,...`` per joint."""
    pairs = [p for p in text.split(",") if p.strip()]
    lower, upper = [], []
    for p in pairs:
        lo, sep, hi = p.partition(":")
        if not sep:
            raise ValueError(f"--limits: {p!r} must look like LOWER:UPPER, e.g. -3.14:3.14")
        try:
            lower.append(float(lo))
            upper.append(float(hi))
        except ValueError:
            raise ValueError(f"--limits: {p!r} must look like LOWER:UPPER with numbers") from None
    if len(pairs) == 1:
        lower, upper = lower * n, upper * n
    if len(lower) != n:
        raise ValueError(f"--limits: got {len(lower)} pairs for {n} joints (give 1 or {n})")
    return lower, upper


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides; VALUE is JSON if it parses, else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r} must look like KEY=VALUE (e.g. d_model=256)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _fix_negative_values(argv: list[str]) -> list[str]:
    """Let ``--limits -3.14:3.14`` work (argparse would take the value for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--limits",) and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


# --- init-checkpoint ------------------------------------------------------------------------
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


def cmd_init_checkpoint(args: argparse.Namespace) -> int:
    """Write a randomly initialised, valid checkpoint."""
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.policies.factory import make_policy

    joints = [j.strip() for j in args.joints.split(",") if j.strip()]
    if not joints:
        raise ValueError("--joints: give at least one joint name")
    cameras = parse_camera_list(args.cameras)
    n = len(joints)
    lower, upper = _parse_limits(args.limits, n)
    vel = _parse_floats(args.max_velocity, "--max-velocity", n)
    acc = None
    if args.max_acceleration is not None:
        acc = _parse_floats(args.max_acceleration, "--max-acceleration", n)
    limits = JointLimits(
        names=tuple(joints), lower=lower, upper=upper, max_velocity=vel, max_acceleration=acc
    )
    overrides = _parse_set(args.set or [])
    if args.chunk_size is not None:
        if args.policy == "diffusion":
            overrides.update(_diffusion_chunk_overrides(args.chunk_size, overrides))
        else:
            overrides["chunk_size"] = args.chunk_size
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise ValueError(f"--out {out} exists and is not empty (use --force to overwrite)")
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


# --- inspect --------------------------------------------------------------------------------
def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print a checkpoint summary; non-zero exit (via CheckpointError) if invalid."""
    from robot_policy_ros.checkpoint.weights import describe_checkpoint, dumps_summary

    s = describe_checkpoint(args.checkpoint)
    if args.json:
        print(dumps_summary(s))
        return 0
    print(f"checkpoint:   {s['path']}")
    print(f"format:       {s['format_version']}")
    print(f"policy:       {s['policy_type']}")
    print(f"joints:       {len(s['joint_names'])}: {', '.join(s['joint_names'])}")
    cams = ", ".join(
        f"{c['name']} {c['height']}x{c['width']} {c['encoding']}" for c in s["cameras"]
    )
    print(f"cameras:      {cams}")
    print(f"fps:          {s['fps']:g}")
    print(f"chunk size:   {s['chunk_size']}")
    print(f"n_obs_steps:  {s['n_obs_steps']}")
    print(f"parameters:   {s['num_parameters']:,}")
    for name, size in s["files"].items():
        print(f"file:         {name} ({_human_bytes(size)}, {size} bytes)")
    print("limits:")
    for j in s["limits"]:
        extra = f", max_acceleration {j['max_acceleration']:g}" if "max_acceleration" in j else ""
        print(
            f"  {j['name']}: [{j['lower']:g}, {j['upper']:g}], "
            f"max_velocity {j['max_velocity']:g}{extra}"
        )
    prov = s["provenance"]
    from robot_policy_ros.lerobot.commands import inspect_lines

    for line in inspect_lines(prov):
        print(line)
    if prov:
        print(f"provenance:   {json.dumps(prov, sort_keys=True)}")
    return 0


# --- import-weights -------------------------------------------------------------------------
def cmd_import_weights(args: argparse.Namespace) -> int:
    """Convert trusted pickle-based weights into a safe checkpoint (explicit opt-in)."""
    from robot_policy_ros.checkpoint.weights import import_weights

    if not args.weights_only:
        raise ValueError(
            "importing a pickle-based file needs --weights-only: it is then read with "
            "torch.load(weights_only=True), which refuses arbitrary objects; only import "
            "files you trust"
        )
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise ValueError(f"--out {out} exists and is not empty (use --force to overwrite)")
    path = import_weights(args.weights, args.like, out, key=args.key)
    print(f"wrote {path} from {args.weights}")
    return 0


# --- benchmark ------------------------------------------------------------------------------
def cmd_benchmark(args: argparse.Namespace) -> int:
    """Inference latency per family (see robot_policy_ros.policies.latency)."""
    from robot_policy_ros.policies.latency import run_from_args

    return run_from_args(args)


# --- train ----------------------------------------------------------------------------------
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


def cmd_train_unavailable(args: argparse.Namespace) -> int:
    """`train` when the trainer is missing: explain and exit 2."""
    print(f"robot-policy train: {args.train_unavailable}", file=sys.stderr)
    return 2


# --- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The robot-policy argument parser."""
    parser = argparse.ArgumentParser(
        prog="robot-policy",
        description="Create, inspect, benchmark and train visuomotor policy checkpoints.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

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
    p.set_defaults(func=cmd_init_checkpoint)

    p = sub.add_parser(
        "inspect", help="print and validate a checkpoint", description="Validate and summarise."
    )
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

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
    p.set_defaults(func=cmd_import_weights)

    from robot_policy_ros.lerobot.commands import add_subcommands as add_lerobot_subcommands

    add_lerobot_subcommands(sub)  # import-lerobot, predict

    p = sub.add_parser(
        "benchmark",
        help="inference latency per family",
        description="Median/p95 predict_chunk latency after warm-up, per family.",
    )
    from robot_policy_ros.policies.latency import add_benchmark_arguments

    add_benchmark_arguments(p)
    p.set_defaults(func=cmd_benchmark)

    module, why = _load_train_module()
    p = sub.add_parser("train", help="train a policy (robot_policy_ros.training)")
    if module is not None:
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    else:
        p.set_defaults(func=cmd_train_unavailable, train_unavailable=why)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    argv = _fix_negative_values(list(sys.argv[1:] if argv is None else argv))
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


if __name__ == "__main__":
    sys.exit(main())
