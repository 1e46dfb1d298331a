"""LeRobot ACT -> :class:`robot_policy_ros.policies.act.ACTPolicy` (config and state dict).

The architectures are the same (DETR-style ACT); only names differ. LeRobot runs one shared
ResNet18 (frozen BatchNorm) over every camera, in the order of its input features, so the
imported policy has ``share_backbone=True`` and the cameras in that order. Torch-free: the
weights stay numpy arrays here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_policy_ros.lerobot.source import LeRobotImportError, LeRobotSource

# LeRobot module prefix -> ours (longest prefixes first where they overlap).
_PREFIXES = (
    ("model.backbone.", "backbones.0."),
    ("model.encoder_img_feat_input_proj.", "input_proj."),
    ("model.encoder_latent_input_proj.", "latent_proj."),
    ("model.encoder_robot_state_input_proj.", "state_proj."),
    ("model.encoder_1d_feature_pos_embed.", "token_pos_embed."),
    ("model.encoder.", "encoder."),
    ("model.decoder_pos_embed.", "query_pos_embed."),
    ("model.decoder.", "decoder."),
    ("model.action_head.", "action_head."),
    ("model.vae_encoder_cls_embed.", "vae_cls_embed."),
    ("model.vae_encoder_robot_state_input_proj.", "vae_state_proj."),
    ("model.vae_encoder_action_input_proj.", "vae_action_proj."),
    ("model.vae_encoder_latent_output_proj.", "vae_latent_out."),
    ("model.vae_encoder.", "vae_encoder."),
)
# LeRobot keys that are not weights of ours: fixed tables we rebuild, and the old layout's
# normalisation buffers (read by source.py into the statistics).
_DROPPED = (
    "model.vae_encoder_pos_enc",
    "normalize_inputs.",
    "normalize_targets.",
    "unnormalize_outputs.",
)
SUPPORTED_BACKBONES = ("resnet18",)


def _require(cfg: dict[str, Any], key: str, kind: type) -> Any:
    """cfg[key], which must be a ``kind`` (booleans are not integers here)."""
    v = cfg.get(key)
    if not isinstance(v, kind) or isinstance(v, bool):
        raise LeRobotImportError(f"config.json: {key} is {v!r}, expected {kind}")
    return v


def act_hyperparameters(src: LeRobotSource) -> dict[str, Any]:
    """Our ACTConfig fields for the LeRobot ACT config (refusing what we cannot run)."""
    c = src.config
    if src.policy_type != "act":
        raise LeRobotImportError(f"policy type {src.policy_type!r} is not ACT")
    backbone = c.get("vision_backbone")
    if backbone not in SUPPORTED_BACKBONES:
        raise LeRobotImportError(
            f"config.json: vision_backbone {backbone!r} is not supported (only "
            f"{SUPPORTED_BACKBONES}); retrain with vision_backbone=resnet18"
        )
    if c.get("replace_final_stride_with_dilation"):
        raise LeRobotImportError(
            "config.json: replace_final_stride_with_dilation is not supported (dilated layer4)"
        )
    if c.get("n_obs_steps", 1) != 1:
        raise LeRobotImportError(f"config.json: ACT with n_obs_steps {c.get('n_obs_steps')} != 1")
    activation = c.get("feedforward_activation", "relu")
    if activation not in ("relu", "gelu"):
        raise LeRobotImportError(
            f"config.json: feedforward_activation {activation!r} is not supported (relu, gelu)"
        )
    chunk = _require(c, "chunk_size", int)
    hp = {
        "chunk_size": chunk,
        "d_model": _require(c, "dim_model", int),
        "n_heads": _require(c, "n_heads", int),
        "dim_feedforward": _require(c, "dim_feedforward", int),
        "feedforward_activation": activation,
        "n_encoder_layers": _require(c, "n_encoder_layers", int),
        "n_decoder_layers": _require(c, "n_decoder_layers", int),
        "pre_norm": bool(c.get("pre_norm", False)),
        "dropout": float(c.get("dropout", 0.1)),
        "use_vae": bool(c.get("use_vae", True)),
        "latent_dim": _require(c, "latent_dim", int),
        "n_vae_encoder_layers": int(c.get("n_vae_encoder_layers", 4)),
        "kl_weight": float(c.get("kl_weight", 10.0)),
        "vision_backbone": "resnet18",
        "backbone_norm": "frozen_bn",
        "share_backbone": True,
    }
    return hp


def deployment_defaults(src: LeRobotSource) -> dict[str, Any]:
    """How LeRobot runs the policy: actions used per chunk and temporal ensembling."""
    c = src.config
    longest = c.get("chunk_size", c.get("horizon"))
    n_action_steps = c.get("n_action_steps", longest)
    if not isinstance(n_action_steps, int) or not 1 <= n_action_steps <= longest:
        raise LeRobotImportError(
            f"config.json: n_action_steps {n_action_steps!r} must be in [1, {longest}]"
        )
    coeff = c.get("temporal_ensemble_coeff")
    if coeff is not None and not isinstance(coeff, (int, float)):
        raise LeRobotImportError(f"config.json: temporal_ensemble_coeff {coeff!r} is not a number")
    return {"n_action_steps": n_action_steps, "temporal_ensemble_coeff": coeff}


def map_act_state_dict(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LeRobot ACT state dict (``_orig_mod.`` already stripped) -> our key names.

    Raises LeRobotImportError on a key that belongs to neither model (e.g. env-state inputs).
    """
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        if key.startswith(_DROPPED):
            continue
        for theirs, ours in _PREFIXES:
            if key.startswith(theirs):
                new = ours + key[len(theirs) :]
                if ours in ("decoder.",):
                    new = new.replace(".multihead_attn.", ".cross_attn.")
                break
        else:
            raise LeRobotImportError(
                f"model.safetensors: weight {key!r} has no counterpart in the ACT model "
                "(an unsupported input such as an environment state?)"
            )
        if new.endswith("num_batches_tracked"):
            continue  # FrozenBatchNorm2d has none; BatchNorm bookkeeping only
        out[new] = value
    return out
