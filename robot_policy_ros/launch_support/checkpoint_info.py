"""What the launch needs from a checkpoint, and the check of a preset against it.

The joint names, camera names and limits of the checkpoint's ``config.json``, read and
validated by the package's one checkpoint config reader
(:func:`robot_policy_ros.checkpoint.config.read_checkpoint_config`: ``json`` and ``numpy``,
no torch), so the launch refuses exactly the ``config.json`` files the nodes refuse, with
the same message (the weights file is the policy_node's to check). The preset's joints
must match the checkpoint's; with ``arm:=none`` the limits come from the checkpoint instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_policy_ros.checkpoint.config import (
    CONFIG_FILE,
    read_checkpoint_config,
    resolve_checkpoint_dir,
)
from robot_policy_ros.checkpoint.files import CheckpointError
from robot_policy_ros.launch_support.common import NO_PRESET, PresetError, PresetMismatchError
from robot_policy_ros.launch_support.presets import ArmPreset


@dataclass(frozen=True)
class CheckpointInfo:
    """What the launch needs from a checkpoint's config.json.

    ``limits`` are in the ``limits_file`` schema (``JointLimits.from_dict``); None only in
    an info built by hand (a checkpoint read from disk always has them).
    """

    path: str
    joint_names: tuple[str, ...]
    camera_names: tuple[str, ...]
    limits: dict[str, Any] | None = None


def read_checkpoint_info(checkpoint: str | os.PathLike) -> CheckpointInfo:
    """Joint names, camera names and limits of the checkpoint (a directory or its
    config.json), by :func:`~robot_policy_ros.checkpoint.config.read_checkpoint_config`;
    a checkpoint it refuses is a :class:`PresetError` with its message."""
    try:
        directory = resolve_checkpoint_dir(checkpoint)
    except CheckpointError as exc:
        raise PresetError(
            f"{exc} (checkpoint:= takes a checkpoint directory written by "
            "`robot-policy init-checkpoint` / training, or its config.json)"
        ) from exc
    try:
        config = read_checkpoint_config(directory)
    except CheckpointError as exc:
        raise PresetError(str(exc)) from exc
    return CheckpointInfo(
        str(directory / CONFIG_FILE),
        tuple(config.joint_names),
        tuple(config.camera_names),
        config.joint_limits_dict(),
    )


def check_preset_matches_checkpoint(
    preset: ArmPreset, checkpoint_config: str | os.PathLike | CheckpointInfo
) -> list[str]:
    """Stop (raise :class:`PresetMismatchError`) if the preset and checkpoint joints disagree.

    Same joint set and count are required. A different order is accepted for
    ``joint_state``/``joint_trajectory`` commands (they carry joint names) but not for
    ``position_array``, whose bare array the controller reads in its own joint order.
    Returns warnings that should not stop the launch (checkpoint cameras the preset lacks).
    """
    info = (
        checkpoint_config
        if isinstance(checkpoint_config, CheckpointInfo)
        else read_checkpoint_info(checkpoint_config)
    )
    ours = preset.joint_names
    theirs = list(info.joint_names)
    label = f"arm preset '{preset.name}'" + (f" ({preset.path})" if preset.path else "")
    both = f"preset joints ({len(ours)}): {ours}; checkpoint joints ({len(theirs)}): {theirs}"
    fix = (
        "Pick the preset of the arm this checkpoint was trained on (arm:=<name>), or write a "
        "preset whose joints are the checkpoint's joint_names (doc/launch.md, "
        "'Bring your own arm')."
    )
    if set(ours) != set(theirs) or len(ours) != len(theirs):
        missing = [n for n in theirs if n not in ours]
        extra = [n for n in ours if n not in theirs]
        details = []
        if missing:
            details.append(f"checkpoint joints missing from the preset: {missing}")
        if extra:
            details.append(f"preset joints the checkpoint does not have: {extra}")
        raise PresetMismatchError(
            f"{label} does not match checkpoint {info.path}: {both}"
            + (f" ({'; '.join(details)})" if details else "")
            + f". {fix}"
        )
    if ours != theirs and preset.command_interface == "position_array":
        raise PresetMismatchError(
            f"{label} lists the checkpoint's joints in a different order and commands a "
            f"position_array, whose elements the controller reads in its own order: {both}. "
            "Reorder the preset's joints to the controller's order and retrain/convert, or use "
            "command_interface joint_state/joint_trajectory (named joints)."
        )
    warnings = []
    missing_cams = [c for c in info.camera_names if c not in preset.camera_topics]
    if missing_cams:
        warnings.append(
            f"{label} gives no topic for checkpoint camera(s) {missing_cams}; the policy_node "
            "subscribes to '<camera>/image_raw' in its namespace unless you set camera_topics:="
            f"{missing_cams[0]}=/your/image_topic"
        )
    return warnings


def limits_from_checkpoint(info: CheckpointInfo) -> dict[str, Any]:
    """The checkpoint's recorded limits in the ``limits_file`` schema (for ``arm:=none``)."""
    lim = info.limits
    if not lim:
        raise PresetError(
            f"checkpoint config {info.path} has no 'limits'; arm:={NO_PRESET} needs them. "
            "Give an arm preset instead (arm:=<name or path>)."
        )
    from robot_policy_ros.core.joint_limits import JointLimits

    try:
        return JointLimits.from_dict(lim).to_dict()
    except ValueError as exc:
        raise PresetError(f"checkpoint config {info.path}: 'limits': {exc}") from None


def write_limits_file(
    limits: Mapping[str, Any], directory: str | os.PathLike | None = None
) -> Path:
    """Write a ``limits_file`` YAML (for ``arm:=none``) and return its path."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="robot_policy_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "limits_from_checkpoint.yaml"
    path.write_text(yaml.safe_dump(dict(limits), sort_keys=False))
    return path
