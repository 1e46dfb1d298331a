"""Write a project checkpoint from a validated LeRobot folder (needs torch).

Units: LeRobot datasets often record degrees (and grippers 0..100) while ROS joints are in
radians. ``units`` gives, per joint, ``ros = lerobot * scale + offset`` (scale > 0); it is
folded into the normalisation statistics (so the network sees exactly what LeRobot fed it)
and recorded in the checkpoint's provenance. The statistics are stored in the project's
mean/std form: ``normalised = (q - mean) / std`` in, ``q = n * std + mean`` out, which is
LeRobot's own affine map (MEAN_STD, MIN_MAX or IDENTITY, with its eps) in ROS units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.checkpoint.config import CameraInput, DeploymentDefaults, NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.lerobot.act import (
    act_hyperparameters,
    deployment_defaults,
    map_act_state_dict,
)
from robot_policy_ros.lerobot.deploy import deployment_parameters
from robot_policy_ros.lerobot.diffusion import diffusion_hyperparameters, map_diffusion_state_dict
from robot_policy_ros.lerobot.source import (
    IMAGE_PREFIX,
    Affine,
    LeRobotImportError,
    LeRobotSource,
    read_lerobot_folder,
)

# The project's Normalizer floors every scale at this many joint units; a LeRobot scale
# below it could not be reproduced, so it is refused as degenerate.
MIN_SCALE = 1e-3
SUPPORTED_TYPES = ("act", "diffusion")


def parse_units(text: str | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``--units``: one entry for all joints or one per joint, comma-separated.

    Entry: ``rad`` (or ``1``: LeRobot already records radians), ``deg`` (degrees -> radians),
    or ``SCALE[:OFFSET]`` with ``ros = lerobot * SCALE + OFFSET``. Returns (scale, offset).
    """
    if text is None or not text.strip():
        return np.ones(n), np.zeros(n)
    entries = [e.strip() for e in text.split(",")]
    if len(entries) == 1:
        entries = entries * n
    if len(entries) != n:
        raise ValueError(f"--units: got {len(entries)} entries for {n} joints (give 1 or {n})")
    scale, offset = np.ones(n), np.zeros(n)
    for i, e in enumerate(entries):
        if e == "rad":
            continue
        if e == "deg":
            scale[i] = math.pi / 180.0
            continue
        s, _, o = e.partition(":")
        try:
            scale[i] = float(s)
            offset[i] = float(o) if o else 0.0
        except ValueError:
            raise ValueError(
                f"--units: entry {e!r} must be rad, deg or SCALE[:OFFSET] "
                "(ros = lerobot * SCALE + OFFSET)"
            ) from None
        if not (math.isfinite(scale[i]) and math.isfinite(offset[i])) or scale[i] <= 0:
            raise ValueError(f"--units: entry {e!r}: SCALE must be finite and > 0")
    return scale, offset


def parse_camera_map(text: str | None, keys: Sequence[str]) -> dict[str, str]:
    """``--cameras lerobot_key=name,...`` -> {LeRobot key: our camera name}.

    Keys may be given with or without ``observation.images.``; unnamed cameras keep the part
    after that prefix.
    """
    out = {k: k[len(IMAGE_PREFIX) :] for k in keys}
    if text:
        for item in [t.strip() for t in text.split(",") if t.strip()]:
            key, sep, name = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--cameras: {item!r} must look like lerobot_key=name")
            full = key if key.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + key
            if full not in out:
                raise ValueError(f"--cameras: {key!r} is not a camera of the policy ({list(keys)})")
            out[full] = name
    names = list(out.values())
    if len(set(names)) != len(names):
        raise ValueError(f"--cameras: camera names must be distinct, got {names}")
    return out


def _fold(aff: Affine, scale: np.ndarray, offset: np.ndarray, what: str, joints: list[str]):
    mean = offset + scale * aff.offset
    std = scale * aff.scale
    small = np.flatnonzero(std < MIN_SCALE)
    if small.size:
        bad = ", ".join(f"{joints[i]} ({std[i]:.3g})" for i in small)
        if aff.mode == "IDENTITY":
            # Not the statistics: LeRobot does not normalise, so the unit scale is the scale.
            raise LeRobotImportError(
                f"{what} is not normalised by LeRobot (IDENTITY), so its scale is the --units "
                f"scale, below the {MIN_SCALE} joint units the project's normaliser can "
                f"represent for {bad}; not supported yet: train with MEAN_STD or MIN_MAX for it"
            )
        raise LeRobotImportError(
            f"{what} normalisation scale below {MIN_SCALE} joint units for {bad} (degenerate "
            "statistics: a joint that barely moved in the dataset); recompute the statistics "
            "or check --units"
        )
    return mean, std


def normalization_stats(
    src: LeRobotSource, joints: list[str], scale: np.ndarray, offset: np.ndarray
) -> NormalizationStats:
    """The project's statistics reproducing LeRobot's state/action maps in ROS units."""
    sm, ss = _fold(src.state_norm, scale, offset, "state", joints)
    am, as_ = _fold(src.action_norm, scale, offset, "action", joints)
    return NormalizationStats(
        state_mean=sm,
        state_std=ss,
        state_min=sm - ss,
        state_max=sm + ss,
        action_mean=am,
        action_std=as_,
        action_min=am - as_,
        action_max=am + as_,
    )


def image_normalization(src: LeRobotSource, names: dict[str, str]) -> dict[str, dict[str, list]]:
    """Per-camera (x - mean) / std statistics of the imported policy."""
    out = {}
    for key in src.image_keys:
        aff = src.image_norm[key]
        if (aff.scale <= 0).any():
            raise LeRobotImportError(f"{key}: image statistics have a scale <= 0")
        out[names[key]] = {"mean": aff.offset.tolist(), "std": aff.scale.tolist()}
    return out


def read_limits(path: str | None, joints: Sequence[str]) -> JointLimits:
    """``--limits FILE``: JSON {"lower", "upper", "max_velocity"[, "max_acceleration"]}, in
    the order of ``joints``, ROS units (:meth:`JointLimits.from_columns`, its rules). None:
    +-3.14 rad and 2 rad/s for every joint (:meth:`JointLimits.uniform`)."""
    if path is None:
        return JointLimits.uniform(joints)
    import json

    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--limits {p}: cannot read JSON: {exc}") from None
    try:
        return JointLimits.from_columns(joints, data)
    except ValueError as exc:
        raise ValueError(f"--limits {p}: {exc}") from None


def joints_from_dataset_info(path: str | Path) -> list[str]:
    """Joint names from a LeRobot dataset's meta/info.json (``features.action.names``)."""
    import json

    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "meta" / "info.json"
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
        names = info["features"]["action"]["names"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--dataset-info {p}: no features.action.names ({exc})") from None
    if isinstance(names, dict):  # {"motors": [...]} in some datasets
        names = next(iter(names.values()), [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"--dataset-info {p}: features.action.names is not a list of names")
    # LeRobot names such as "shoulder_pan.pos": keep the joint part.
    return [n[: -len(".pos")] if n.endswith(".pos") else n for n in names]


def import_lerobot(
    source: str | Path,
    out_dir: str | Path,
    joints: Sequence[str],
    fps: float | None = None,
    cameras: str | None = None,
    limits: JointLimits | None = None,
    units: str | None = None,
) -> Path:
    """Convert a LeRobot ``pretrained_model`` folder into a project checkpoint at ``out_dir``.

    Raises LeRobotImportError (refused folder) or ValueError (bad arguments).
    """
    import torch

    from robot_policy_ros.checkpoint.config import check_name
    from robot_policy_ros.checkpoint.weights import save_checkpoint
    from robot_policy_ros.policies.factory import build_policy, make_config

    src = read_lerobot_folder(source)
    if src.policy_type not in SUPPORTED_TYPES:
        raise LeRobotImportError(
            f"LeRobot policy type {src.policy_type!r} is not supported (supported: "
            f"{SUPPORTED_TYPES})"
        )
    joints = [check_name(j, "joint name") for j in joints]
    if len(joints) != src.state_dim:
        raise ValueError(f"--joints: {len(joints)} names for a policy with {src.state_dim} joints")
    if fps is None:
        fps = 30.0  # LeRobot's usual recording rate; the dataset's info.json has the real one
    scale, offset = parse_units(units, len(joints))
    names = parse_camera_map(cameras, src.image_keys)
    grids: list[np.ndarray] = []
    if src.policy_type == "act":
        hp = act_hyperparameters(src)
        mapped = map_act_state_dict(src.weights)
    else:
        hp = diffusion_hyperparameters(src)
        mapped, grids = map_diffusion_state_dict(
            src.weights, len(src.image_keys), hp["share_backbone"]
        )
    hp["image_normalization"] = image_normalization(src, names)
    camera_inputs = [CameraInput(names[k], *src.image_shape(k)) for k in src.image_keys]
    try:
        config = make_config(src.policy_type, joints, camera_inputs, fps=fps, **hp)
    except ValueError as exc:
        raise LeRobotImportError(f"config.json: cannot be run here: {exc}") from None
    stats = normalization_stats(src, joints, scale, offset)
    lim = limits if limits is not None else JointLimits.uniform(joints)
    policy = build_policy(config, stats=stats, limits=lim, seed=0)
    own = policy.state_dict()
    for key in own:
        if key.endswith("num_batches_tracked") and key not in mapped:
            mapped[key] = np.zeros((), dtype=np.int64)  # training bookkeeping only
    missing = sorted(set(own) - set(mapped))
    extra = sorted(set(mapped) - set(own))
    if missing or extra:
        raise LeRobotImportError(
            f"model.safetensors does not match LeRobot's {src.policy_type} for this config: "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for i, grid in enumerate(grids):
        ours = policy.rgb_encoders[i].pool.pos_grid.numpy()
        if grid.shape != ours.shape or not np.allclose(grid, ours, atol=1e-6):
            raise LeRobotImportError(
                f"model.safetensors: the stored spatial-softmax grid of encoder {i} "
                f"{grid.shape} differs from the one its feature map gives {ours.shape}"
            )
    tensors = {}
    for key, ref in own.items():
        arr = mapped[key]
        if tuple(arr.shape) != tuple(ref.shape):
            raise LeRobotImportError(
                f"model.safetensors: {key} has shape {tuple(arr.shape)}, expected "
                f"{tuple(ref.shape)}"
            )
        tensors[key] = torch.from_numpy(np.ascontiguousarray(arr)).to(ref.dtype)
    policy.load_state_dict(tensors, strict=True)
    deployment = deployment_defaults(src)
    deployment["node_parameters"] = deployment_parameters(deployment, config.chunk_size, fps)
    provenance: dict[str, Any] = {
        "source": "robot-policy import-lerobot",
        "lerobot": {
            "path": str(src.path),
            "layout": src.layout,
            "files_sha256": src.file_sha256,
            "config": src.config,
            "cameras": names,
            "normalization": {
                "state": src.state_norm.mode,
                "action": src.action_norm.mode,
                "images": {names[k]: v.mode for k, v in src.image_norm.items()},
            },
        },
        "units": {
            "meaning": "ros = lerobot * scale + offset (state in, actions out)",
            "scale": scale.tolist(),
            "offset": offset.tolist(),
        },
        "deployment": deployment,
    }
    recorded = DeploymentDefaults(
        n_action_steps=min(int(deployment["n_action_steps"]), config.chunk_size),
        temporal_ensemble_coeff=deployment["temporal_ensemble_coeff"],
        source="lerobot",
    )
    return save_checkpoint(policy, out_dir, provenance=provenance, deployment=recorded)
