"""``robot-policy import-lerobot`` and ``robot-policy predict`` (registered by cli.py).

predict's files:
- IN.npz: ``images.<camera>`` uint8 (N, T, H, W, 3) RGB and ``joint_positions`` (N, T, J) in
  the checkpoint's joint order and units, T = the policy's n_obs_steps (oldest first).
- OUT.npz: ``actions`` float64 (N, chunk_size, J) in joint units; every sample is run from a
  reset policy, so the N samples are independent.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.lerobot.convert import import_lerobot, joints_from_dataset_info, read_limits


def cmd_import_lerobot(args: argparse.Namespace) -> int:
    """Convert a LeRobot pretrained_model folder into a checkpoint."""
    from robot_policy_ros.checkpoint.weights import describe_checkpoint

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
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise ValueError(f"--out {out} exists and is not empty (use --force to overwrite)")
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


def _load_inputs(
    path: Path, policy: Any
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--inputs {path}: not a readable .npz: {exc}") from None
    t, j = policy.n_obs_steps, policy.num_joints
    if "joint_positions" not in data:
        raise ValueError(f"--inputs {path}: no 'joint_positions' array")
    q = np.asarray(data["joint_positions"], dtype=np.float64)
    if q.ndim != 3 or q.shape[1:] != (t, j):
        raise ValueError(
            f"--inputs: joint_positions has shape {q.shape}, expected (N, {t}, {j}) "
            f"(T = n_obs_steps, joints {policy.joint_names})"
        )
    images = {}
    for cam, (h, w) in policy.image_shapes.items():
        key = f"images.{cam}"
        if key not in data:
            raise ValueError(f"--inputs: no {key!r} array (cameras {policy.camera_names})")
        img = data[key]
        if img.dtype != np.uint8 or img.shape != (q.shape[0], t, h, w, 3):
            raise ValueError(
                f"--inputs: {key} is {img.dtype} {img.shape}, expected uint8 "
                f"({q.shape[0]}, {t}, {h}, {w}, 3) RGB"
            )
        images[cam] = img
    noise = None
    if "noise" in data:
        if policy.policy_type != "diffusion":
            raise ValueError(
                f"--inputs: 'noise' is only for diffusion policies, not {policy.policy_type}"
            )
        noise = np.asarray(data["noise"], dtype=np.float32)
        shape = (q.shape[0], policy.config.horizon, j)
        if noise.shape != shape or not np.isfinite(noise).all():
            raise ValueError(
                f"--inputs: noise is {noise.shape}, expected finite {shape} (N, horizon, J), "
                "the initial sample in the normalised action space"
            )
    return images, q, noise


def predict_arrays(
    policy: Any,
    images: dict[str, np.ndarray],
    q: np.ndarray,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """(N, chunk, J) float64 actions; each sample from a reset policy, frames oldest first.

    ``noise`` (N, horizon, J): a diffusion policy's initial sample for each sample's last
    frame (the earlier frames only fill the observation history).
    """
    import torch

    from robot_policy_ros.policies.base import Observation

    out = []
    for i in range(q.shape[0]):
        policy.reset()
        chunk = None
        for t in range(q.shape[1]):  # fills the history; the last call sees all T frames
            obs = Observation(
                images={cam: img[i, t] for cam, img in images.items()}, joint_positions=q[i, t]
            )
            if noise is not None and t == q.shape[1] - 1:
                policy.set_initial_noise(torch.from_numpy(noise[i : i + 1]))
            chunk = policy.predict_chunk(obs)
        out.append(chunk)
    return np.stack(out).astype(np.float64)


def cmd_predict(args: argparse.Namespace) -> int:
    """Run a checkpoint offline on IN.npz and write OUT.npz."""
    from robot_policy_ros.checkpoint.weights import load_checkpoint

    policy = load_checkpoint(args.checkpoint)
    images, q, noise = _load_inputs(Path(args.inputs), policy)
    actions = predict_arrays(policy, images, q, noise)
    np.savez(args.out, actions=actions)
    print(f"wrote {args.out}: actions {actions.shape} ({policy.policy_type}, {q.shape[0]} samples)")
    return 0


def inspect_lines(provenance: dict[str, Any]) -> list[str]:
    """Extra ``robot-policy inspect`` lines for an imported policy (units, deployment)."""
    lines = []
    units = provenance.get("units")
    if isinstance(units, dict):
        pairs = ", ".join(
            f"{s:g}:{o:g}"
            for s, o in zip(units.get("scale", []), units.get("offset", []), strict=False)
        )
        lines.append(f"units:        ros = lerobot * scale + offset; scale:offset {pairs}")
    dep = provenance.get("deployment")
    if isinstance(dep, dict):
        lines.append(
            f"deployment:   n_action_steps {dep.get('n_action_steps')}, "
            f"temporal_ensemble_coeff {dep.get('temporal_ensemble_coeff')}"
        )
        for node, values in (dep.get("node_parameters") or {}).items():
            shown = ", ".join(f"{k} {v}" for k, v in sorted(values.items()))
            lines.append(f"  {node}: {shown}")
    return lines


def add_subcommands(sub: Any) -> None:
    """Register import-lerobot and predict on cli.py's subparsers."""
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
    p.set_defaults(func=cmd_import_lerobot)

    p = sub.add_parser(
        "predict",
        help="run a checkpoint offline on an .npz of observations",
        description="Run a checkpoint on IN.npz (images.<camera>, joint_positions); write OUT.npz.",
    )
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("--inputs", required=True, help="IN.npz")
    p.add_argument("--out", required=True, help="OUT.npz to write")
    p.set_defaults(func=cmd_predict)
