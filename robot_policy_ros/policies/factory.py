"""Build a policy of any family by name (``make_policy``) or from a checkpoint config."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from robot_policy_ros.checkpoint.config import (
    POLICY_TYPES,
    CameraInput,
    NormalizationStats,
    as_camera_inputs,
)
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.base import Policy
from robot_policy_ros.policies.config import CONFIG_CLASSES, PolicyConfig

_POLICY_CLASSES = {
    "mlp": ("robot_policy_ros.policies.mlp", "MLPPolicy"),
    "act": ("robot_policy_ros.policies.act", "ACTPolicy"),
    "diffusion": ("robot_policy_ros.policies.diffusion", "DiffusionPolicy"),
}
# The families are listed once, in checkpoint.config.POLICY_TYPES (torch-free).
assert tuple(_POLICY_CLASSES) == POLICY_TYPES == tuple(CONFIG_CLASSES), "policy families differ"


def policy_class(policy_type: str) -> type[Policy]:
    """The Policy subclass of a family ("mlp", "act", "diffusion")."""
    if policy_type not in _POLICY_CLASSES:
        raise ValueError(f"unknown policy type {policy_type!r} (expected one of {POLICY_TYPES})")
    module, name = _POLICY_CLASSES[policy_type]
    return getattr(importlib.import_module(module), name)


def make_config(
    policy_type: str,
    joint_names: Sequence[str],
    cameras: Mapping[str, Sequence[int]] | Sequence[CameraInput],
    fps: float = 50.0,
    **overrides: Any,
) -> PolicyConfig:
    """The config of a family with its defaults, changed by ``overrides`` (field names)."""
    if policy_type not in CONFIG_CLASSES:
        raise ValueError(f"unknown policy type {policy_type!r} (expected one of {POLICY_TYPES})")
    cls = CONFIG_CLASSES[policy_type]
    known = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {policy_type} config fields: {unknown}")
    return cls(
        joint_names=tuple(joint_names),
        cameras=tuple(as_camera_inputs(cameras)),
        fps=fps,
        **overrides,
    )


def build_policy(
    config: PolicyConfig,
    stats: NormalizationStats | None = None,
    limits: JointLimits | None = None,
    seed: int | None = None,
) -> Policy:
    """Instantiate the family of ``config``; ``seed`` makes the random init deterministic
    without touching the caller's global RNG state."""
    cls = policy_class(config.policy_type)
    if seed is None:
        return cls(config, stats=stats, limits=limits)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config, stats=stats, limits=limits)


def make_policy(
    policy_type: str,
    joint_names: Sequence[str],
    cameras: Mapping[str, Sequence[int]] | Sequence[CameraInput],
    fps: float = 50.0,
    *,
    stats: NormalizationStats | None = None,
    limits: JointLimits | None = None,
    seed: int | None = None,
    **overrides: Any,
) -> Policy:
    """A freshly initialised policy.

    Args:
        policy_type: "mlp", "act" or "diffusion".
        joint_names: joints in state/action order.
        cameras: {name: (H, W)} (or CameraInput list).
        fps: control rate of the action chunk.
        stats: normalisation statistics (default: derived from ``limits``).
        limits: joint limits stored with the checkpoint, a JointLimits named by
            ``joint_names`` (default: JointLimits.uniform, +-3.14 rad, 2 rad/s).
        seed: deterministic random init.
        **overrides: config fields, e.g. ``chunk_size=20, d_model=256``.
    """
    config = make_config(policy_type, joint_names, cameras, fps, **overrides)
    return build_policy(config, stats=stats, limits=limits, seed=seed)
