"""LeRobot Diffusion -> :class:`robot_policy_ros.policies.diffusion.DiffusionPolicy`.

The model is the same CNN Diffusion Policy; LeRobot's layout is reproduced with the
family's compatibility options: state before the image features in the global
conditioning, 8 GroupNorm groups in the U-Net's final conv block, torchvision's rounding of
the centre-crop offset, resize before crop, its scheduler (DDPM or DDIM) and number of
inference steps. Torch-free: the weights stay numpy arrays here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_policy_ros.lerobot.source import LeRobotImportError, LeRobotSource

# LeRobot's backbone is nn.Sequential(resnet.children()[:-2]): indices -> torchvision names.
_BACKBONE_INDEX = {
    "0": "conv1",
    "1": "bn1",
    "4": "layer1",
    "5": "layer2",
    "6": "layer3",
    "7": "layer4",
}
LEROBOT_FINAL_CONV_GROUPS = 8  # DiffusionConv1dBlock's default, used for the final block


def _int_pair(value: Any, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise LeRobotImportError(f"config.json: {what} {value!r} is not a pair of positive ints")
    return int(value[0]), int(value[1])


def diffusion_hyperparameters(src: LeRobotSource) -> dict[str, Any]:
    """Our DiffusionConfig fields for LeRobot's Diffusion config (refusing what we cannot run)."""
    c = src.config
    if c.get("vision_backbone") != "resnet18":
        raise LeRobotImportError(
            f"config.json: vision_backbone {c.get('vision_backbone')!r} is not supported "
            "(only 'resnet18'); retrain with vision_backbone=resnet18"
        )
    shapes = {tuple(src.image_shape(k)) for k in src.image_keys}
    if len(shapes) != 1:
        raise LeRobotImportError(f"Diffusion cameras must share one image size, got {shapes}")
    resize = _int_pair(c.get("resize_shape"), "resize_shape")
    crop = _int_pair(c.get("crop_shape"), "crop_shape")
    if resize is not None:
        # LeRobot derives the crop from crop_ratio whenever it resizes (its __post_init__).
        ratio = c.get("crop_ratio", 1.0)
        if not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise LeRobotImportError(f"config.json: crop_ratio {ratio!r} must be in (0, 1]")
        crop = (int(resize[0] * ratio), int(resize[1] * ratio)) if ratio < 1.0 else None
    scheduler = c.get("noise_scheduler_type", "DDPM")
    if scheduler not in ("DDPM", "DDIM"):
        raise LeRobotImportError(f"config.json: noise_scheduler_type {scheduler!r} unsupported")
    steps = c.get("num_inference_steps")
    train_steps = int(c.get("num_train_timesteps", 100))
    if c.get("env_state_feature"):
        raise LeRobotImportError("config.json: environment-state inputs are not supported")
    return {
        "horizon": int(c["horizon"]),
        "n_obs_steps": int(c["n_obs_steps"]),
        "n_action_steps": int(c["n_action_steps"]),
        "down_dims": tuple(int(d) for d in c["down_dims"]),
        "kernel_size": int(c["kernel_size"]),
        "n_groups": int(c["n_groups"]),
        "diffusion_step_embed_dim": int(c["diffusion_step_embed_dim"]),
        "use_film_scale_modulation": bool(c.get("use_film_scale_modulation", True)),
        "spatial_softmax_num_keypoints": int(c["spatial_softmax_num_keypoints"]),
        "crop_shape": crop,
        "crop_is_random": bool(c.get("crop_is_random", True)),
        "num_train_timesteps": train_steps,
        "beta_schedule": str(c.get("beta_schedule", "squaredcos_cap_v2")),
        "beta_start": float(c.get("beta_start", 1e-4)),
        "beta_end": float(c.get("beta_end", 0.02)),
        "prediction_type": str(c.get("prediction_type", "epsilon")),
        "clip_sample": bool(c.get("clip_sample", True)),
        "clip_sample_range": float(c.get("clip_sample_range", 1.0)),
        "num_inference_steps": int(steps) if steps is not None else train_steps,
        "do_mask_loss_for_padding": bool(c.get("do_mask_loss_for_padding", False)),
        "vision_backbone": "resnet18",
        "backbone_norm": "group_norm" if c.get("use_group_norm") else "batch_norm",
        "share_backbone": not c.get("use_separate_rgb_encoder_per_camera", False),
        "global_cond_order": "state_first",
        "final_conv_groups": LEROBOT_FINAL_CONV_GROUPS,
        "crop_rounding": "round",
        "resize_shape": resize,
        "sampler": scheduler.lower(),
    }


def map_diffusion_state_dict(
    weights: dict[str, np.ndarray], n_cameras: int, shared: bool
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """LeRobot Diffusion state dict -> (our key names, the stored spatial-softmax grids)."""
    out: dict[str, np.ndarray] = {}
    grids: list[np.ndarray] = []
    for key, value in weights.items():
        if key.startswith(("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")):
            continue
        if key.startswith("diffusion.unet."):
            rest = key[len("diffusion.unet.") :]
            rest = rest.replace("diffusion_step_encoder.", "step_encoder.", 1)
            out["unet." + rest] = value
            continue
        if not key.startswith("diffusion.rgb_encoder."):
            raise LeRobotImportError(
                f"model.safetensors: weight {key!r} has no counterpart in the Diffusion model"
            )
        rest = key[len("diffusion.rgb_encoder.") :]
        if shared:
            index = "0"
        else:
            index, _, rest = rest.partition(".")
            if not index.isdigit() or int(index) >= n_cameras:
                raise LeRobotImportError(f"model.safetensors: unexpected encoder key {key!r}")
        if rest == "pool.pos_grid":
            grids.append(value)
            continue
        if rest.startswith("backbone."):
            idx, _, tail = rest[len("backbone.") :].partition(".")
            if idx not in _BACKBONE_INDEX:
                raise LeRobotImportError(f"model.safetensors: unexpected backbone key {key!r}")
            rest = f"backbone.{_BACKBONE_INDEX[idx]}.{tail}"
        elif rest.startswith("pool.nets."):
            rest = "pool.kp_conv." + rest[len("pool.nets.") :]
        out[f"rgb_encoders.{index}.{rest}"] = value
    return out, grids
