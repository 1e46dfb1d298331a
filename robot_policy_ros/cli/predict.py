"""``robot-policy predict``: run a checkpoint offline on an .npz of observations.

Files:
- IN.npz: ``images.<camera>`` uint8 (N, T, H, W, 3) RGB and ``joint_positions`` (N, T, J) in
  the checkpoint's joint order and units, T = the policy's n_obs_steps (oldest first);
  optionally ``noise`` float32 (N, horizon, J) for a diffusion policy (see
  :func:`predict_arrays`).
- OUT.npz: ``actions`` float64 (N, chunk_size, J) in joint units; every sample is run from a
  reset policy, so the N samples are independent.

``--bag BAG...`` instead replays recorded episodes through the checkpoint, each observation
built exactly as policy_node builds it (robot_policy_ros.data.replay), and writes a JSON
report of the per-joint error between predicted and demonstrated actions to ``--out``
(plus a plot beside it): the regression test to run before a new checkpoint goes on the arm.

``--backend`` picks who runs the network, as for ``robot-policy benchmark`` and the
policy_node (:func:`robot_policy_ros.inference.make_predictor`: ``auto``, the default, is
the fastest installed backend whose graphs match torch within 1e-4; ``torch``;
``onnxruntime``; ``openvino``). The backend that ran is printed; OUT.npz is the same
either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.cli.args import add_backend_argument


def load_inputs(
    path: Path, policy: Any
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """Read and check IN.npz against ``policy``: (images, joint_positions, noise or None).

    images: camera -> uint8 (N, T, H, W, 3); joint_positions: float64 (N, T, J); noise:
    float32 (N, horizon, J) for a diffusion policy, when the file holds one. Raises
    ValueError naming the array and the expected shape.
    """
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
    predictor: Any = None,
) -> np.ndarray:
    """(N, chunk, J) float64 actions; each sample from a reset policy, frames oldest first.

    ``noise`` (N, horizon, J): a diffusion policy's initial sample for each sample's last
    frame (the earlier frames only fill the observation history). ``predictor``: a
    robot_policy_ros.inference predictor of ``policy`` (default: the policy, i.e. torch).
    """
    import torch

    from robot_policy_ros.policies.base import Observation

    run = predictor if predictor is not None else policy
    out = []
    for i in range(q.shape[0]):
        run.reset()
        chunk = None
        for t in range(q.shape[1]):  # fills the history; the last call sees all T frames
            obs = Observation(
                images={cam: img[i, t] for cam, img in images.items()}, joint_positions=q[i, t]
            )
            if noise is not None and t == q.shape[1] - 1:
                policy.set_initial_noise(torch.from_numpy(noise[i : i + 1]))
            chunk = run.predict_chunk(obs)
        out.append(chunk)
    return np.stack(out).astype(np.float64)


def run_bags(args: argparse.Namespace) -> int:
    """Replay ``--bag`` episodes through the checkpoint; write the error report to --out."""
    import json

    from robot_policy_ros.data.bag_reader import TopicConfig
    from robot_policy_ros.data.replay import replay_bags

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    topics = TopicConfig(joint_states=args.joint_states_topic, commands=args.commands_topic)
    report = replay_bags(
        args.checkpoint,
        args.bag,
        stride=args.stride,
        backend=args.backend,
        plot_path=plot,
        action_source=args.action_source,
        topics=topics,
    )
    out.write_text(json.dumps(report, indent=1))
    sources = sorted({b["action_source"] for b in report["bags"]})
    print(
        f"replayed {len(report['bags'])} bag(s), {report['overall']['first_action']['samples']} "
        f"observations; first action vs the demonstrated {'/'.join(sources)} (joint units):"
    )
    for name, e in report["overall"]["first_action"]["joints"].items():
        if e["mean_abs"] is None:
            print(f"  {name:<20} not demonstrated")
            continue
        print(
            f"  {name:<20} mean |err| {e['mean_abs']:.4g}  rms {e['rms']:.4g}  "
            f"max {e['max_abs']:.4g}"
        )
    print(f"wrote {out} and {report['plot'] or 'no plot'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a checkpoint offline on IN.npz and write OUT.npz (or replay --bag episodes)."""
    if args.bag:
        return run_bags(args)
    from robot_policy_ros.checkpoint.weights import load_checkpoint
    from robot_policy_ros.inference import make_predictor
    from robot_policy_ros.inference.export import cache_dir_for

    policy = load_checkpoint(args.checkpoint).eval()
    images, q, noise = load_inputs(Path(args.inputs), policy)
    # torch needs no graph cache: do not create onnx_cache/ beside the checkpoint for it.
    cache = None if args.backend == "torch" else cache_dir_for(args.checkpoint)
    predictor = make_predictor(policy, args.backend, cache_dir=cache)
    print(f"backend: {predictor.describe()}")
    actions = predict_arrays(policy, images, q, noise, predictor=predictor)
    np.savez(args.out, actions=actions)
    print(
        f"wrote {args.out}: actions {actions.shape} ({policy.policy_type}, {q.shape[0]} samples, "
        f"backend {predictor.name})"
    )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``predict`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "predict",
        help="run a checkpoint offline on an .npz of observations",
        description="Run a checkpoint on IN.npz (images.<camera>, joint_positions); write OUT.npz. "
        "Or replay recorded bags (--bag) and report the error against the demonstrations.",
    )
    p.add_argument("checkpoint", help="checkpoint directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", help="IN.npz")
    source.add_argument("--bag", nargs="+", help="bags (or folders of bags) to replay")
    p.add_argument("--out", required=True, help="OUT.npz to write (--bag: the JSON report)")
    g = p.add_argument_group("--bag replay")
    g.add_argument("--stride", type=int, default=1, help="predict at every N-th frame")
    g.add_argument("--plot", default="", help="PNG to write (default: --out with .png)")
    g.add_argument(
        "--action-source",
        default="auto",
        choices=("auto", "commands", "measured"),
        help="what the demonstration is (auto: what the checkpoint was trained on)",
    )
    g.add_argument("--joint-states-topic", default="joint_states")
    g.add_argument("--commands-topic", default="forward_position_controller/commands")
    add_backend_argument(p)
    p.set_defaults(func=run)
