"""``robot-policy import-lerobot``: a LeRobot pretrained_model folder into a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.cli.args import check_out_dir


def run(args: argparse.Namespace) -> int:
    """Convert a LeRobot pretrained_model folder into a checkpoint."""
    from robot_policy_ros.checkpoint.weights import describe_checkpoint
    from robot_policy_ros.lerobot.convert import (
        import_lerobot,
        joints_from_dataset_info,
        read_limits,
    )

    if args.joints:
        joints = [j.strip() for j in args.joints.split(",") if j.strip()]
    elif args.dataset_info:
        joints = joints_from_dataset_info(args.dataset_info)
    else:
        raise ValueError(
            "give --joints j1,...,jN (LeRobot checkpoints do not store joint names) or "
            "--dataset-info DATASET/meta/info.json"
        )
    fps = args.fps
    if fps is None and args.dataset_info:
        import json

        p = Path(args.dataset_info).expanduser()
        info = json.loads((p / "meta" / "info.json" if p.is_dir() else p).read_text())
        fps = float(info.get("fps", 30))
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"--fps must be > 0, got {fps}")
    out = Path(args.out)
    check_out_dir(out, args.force)
    limits = read_limits(args.limits, joints) if args.limits else None
    path = import_lerobot(
        args.source,
        out,
        joints,
        fps=fps,
        cameras=args.cameras,
        limits=limits,
        units=args.units,
    )
    s = describe_checkpoint(path)
    cams = ", ".join(f"{c['name']} {c['height']}x{c['width']}" for c in s["cameras"])
    print(
        f"wrote {path}: {s['policy_type']} from LeRobot, {len(joints)} joints, cameras {cams}, "
        f"chunk {s['chunk_size']} @ {s['fps']:g} Hz"
    )
    node_params = s["provenance"]["deployment"]["node_parameters"]
    if args.params_out:
        from robot_policy_ros.lerobot.deploy import write_params_file

        written = write_params_file(
            args.params_out,
            node_params,
            f"LeRobot's deployment defaults for {path}: "
            f"ros2 launch robot_policy_ros policy.launch.py checkpoint:={path} "
            f"params_file:={Path(args.params_out).expanduser()}",
        )
        print(f"wrote {written}: pass it as params_file:= to policy.launch.py")
    if limits is None:
        print("warning: no --limits given: +-3.14 rad and 2 rad/s stored; give your arm's limits")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``import-lerobot`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "import-lerobot",
        help="convert a LeRobot pretrained_model folder (ACT, Diffusion) into a checkpoint",
        description=(
            "Read a LeRobot pretrained_model folder (JSON and safetensors only; nothing is "
            "unpickled, LeRobot is not needed) and write a checkpoint that returns LeRobot's "
            "actions."
        ),
    )
    p.add_argument("source", help="LeRobot pretrained_model folder")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--joints", default=None, help="joint names j1,...,jN in LeRobot's order")
    p.add_argument(
        "--dataset-info", default=None, help="LeRobot dataset (or its meta/info.json): joints, fps"
    )
    p.add_argument("--fps", type=float, default=None, help="control rate (default: dataset or 30)")
    p.add_argument(
        "--cameras",
        default=None,
        help="lerobot_key=name,... (default: key after observation.images.)",
    )
    p.add_argument("--limits", default=None, help="JSON file: lower, upper, max_velocity lists")
    p.add_argument(
        "--units",
        default=None,
        help="per joint (or one for all): rad, deg or SCALE[:OFFSET], ros = lerobot*SCALE+OFFSET",
    )
    p.add_argument(
        "--params-out",
        default=None,
        help="write a ROS 2 params file (policy.launch.py params_file:=) that runs the policy "
        "the way LeRobot does (n_action_steps / temporal ensembling)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.set_defaults(func=run)
