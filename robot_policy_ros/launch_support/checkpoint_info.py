"""What the launch needs from a checkpoint, and the check of a preset against it.

The joint names, camera names and limits of the checkpoint's ``config.json``; the preset's
joints must match them; with ``arm:=none`` the limits come from the checkpoint instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_policy_ros.launch_support.common import NO_PRESET, PresetError, PresetMismatchError
from robot_policy_ros.launch_support.presets import ArmPreset


@dataclass(frozen=True)
class CheckpointInfo:
    """What the launch needs from a checkpoint's config.json (read with ``json`` only)."""

    path: str
    joint_names: tuple[str, ...]
    camera_names: tuple[str, ...]
    limits: dict[str, Any] | None = None


def checkpoint_config_path(checkpoint: str | os.PathLike) -> Path:
    """``<checkpoint>/config.json`` for a checkpoint directory; a .json path stays as is."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PresetError(
            f"checkpoint {checkpoint}: no config.json found (expected a checkpoint directory "
            "written by `robot-policy init-checkpoint` / training, or its config.json)"
        )
    return path


def read_checkpoint_info(checkpoint: str | os.PathLike) -> CheckpointInfo:
    """Read joint names, camera names and limits from the checkpoint's config.json."""
    path = checkpoint_config_path(checkpoint)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PresetError(f"checkpoint config {path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise PresetError(f"checkpoint config {path}: expected a JSON object")
    names = data.get("joint_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PresetError(f"checkpoint config {path}: 'joint_names' must be a list of strings")
    cams_raw = data.get("cameras") or []
    cams: list[str] = []
    for cam in cams_raw:
        if isinstance(cam, Mapping) and isinstance(cam.get("name"), str):
            cams.append(cam["name"])
        elif isinstance(cam, str):
            cams.append(cam)
        else:
            raise PresetError(f"checkpoint config {path}: bad camera entry {cam!r}")
    limits = data.get("limits") if isinstance(data.get("limits"), Mapping) else None
    return CheckpointInfo(str(path), tuple(names), tuple(cams), limits)


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
        return JointLimits.from_columns(info.joint_names, lim).to_dict()
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
