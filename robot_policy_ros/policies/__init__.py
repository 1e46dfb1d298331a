"""Visuomotor policies in pure PyTorch (no rclpy): imitation MLP, ACT, Diffusion Policy.

Modules:
    base       Observation, Policy (the interface every family implements)
    config     MLPConfig, ACTConfig, DiffusionConfig (validated dataclasses)
    normalize  Normalizer (state/action statistics from the checkpoint)
    vision     backbones (ResNet18 / tiny_cnn), spatial softmax, ImageNet normalisation
    mlp, act, diffusion   the three families
    factory    make_policy(policy_type, joint_names, cameras, fps, **overrides)

The latency benchmark is robot_policy_ros.cli.benchmark (robot-policy benchmark).
Checkpoints: robot_policy_ros.checkpoint.weights (save/load) and robot_policy_ros.checkpoint.config
(config.json, no torch). Names below are imported lazily so that importing this package
does not pull in torch until one of them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Observation": "robot_policy_ros.policies.base",
    "Policy": "robot_policy_ros.policies.base",
    "MLPPolicy": "robot_policy_ros.policies.mlp",
    "ACTPolicy": "robot_policy_ros.policies.act",
    "DiffusionPolicy": "robot_policy_ros.policies.diffusion",
    "MLPConfig": "robot_policy_ros.policies.config",
    "ACTConfig": "robot_policy_ros.policies.config",
    "DiffusionConfig": "robot_policy_ros.policies.config",
    "PolicyConfig": "robot_policy_ros.policies.config",
    "make_policy": "robot_policy_ros.policies.factory",
    "NormalizationStats": "robot_policy_ros.checkpoint.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
