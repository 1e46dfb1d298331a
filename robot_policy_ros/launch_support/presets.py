"""Arm presets: the schema of ``config/arms/<name>.yaml``, its validation and loading.

An arm preset (``config/arms/<name>.yaml``) is a YAML mapping::

    name: so101                         # preset name (letters, digits, _ and -)
    description: SO-101 follower arm    # one line
    source: URDF of ...                 # where the limits come from (citation)
    joints:                             # in the order the controller expects them
      - {name: shoulder_pan, lower: -1.92, upper: 1.92, max_velocity: 3.0,
         max_acceleration: 10.0}        # max_acceleration: optional (all joints or none)
    command_interface: position_array   # position_array | joint_state | joint_trajectory
    command_topic: /forward_position_controller/commands
    joint_states_topic: /joint_states
    cameras:                            # camera name (as in the checkpoint) -> image topic
      - {name: front, topic: /front/image_raw}
    control_rate_hz: 50.0

Its ``joints`` section is exactly the command_streamer's ``limits_file`` schema
(``JointLimits.from_dict``), so the preset file itself is passed as ``limits_file``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_policy_ros.launch_support.common import (
    _TOKEN_RE,
    COMMAND_INTERFACES,
    NO_PRESET,
    PresetError,
    validate_topic_name,
)

_PRESET_FIELDS = {
    "name": "preset name",
    "description": "one-line description",
    "source": "citation of the limits' origin",
    "joints": "list of {name, lower, upper, max_velocity, max_acceleration (optional)}",
    "command_interface": "one of " + ", ".join(COMMAND_INTERFACES),
    "command_topic": "topic the commands are published on",
    "joint_states_topic": "sensor_msgs/JointState topic of the robot",
    "cameras": "list of {name, topic}",
    "control_rate_hz": "command rate in Hz",
}
_JOINT_FIELDS = ("name", "lower", "upper", "max_velocity", "max_acceleration")
_CAMERA_FIELDS = ("name", "topic")
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_MAX_CONTROL_RATE_HZ = 1000.0


@dataclass(frozen=True)
class PresetJoint:
    """Limits of one joint, in joint units (rad or m)."""

    name: str
    lower: float
    upper: float
    max_velocity: float
    max_acceleration: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """This joint in the ``limits_file`` schema (no ``max_acceleration`` key if unset)."""
        out: dict[str, Any] = {
            "name": self.name,
            "lower": self.lower,
            "upper": self.upper,
            "max_velocity": self.max_velocity,
        }
        if self.max_acceleration is not None:
            out["max_acceleration"] = self.max_acceleration
        return out


@dataclass(frozen=True)
class PresetCamera:
    """A camera the preset provides: the checkpoint's camera name and its image topic."""

    name: str
    topic: str


@dataclass(frozen=True)
class ArmPreset:
    """A validated arm preset. ``path`` is the file it came from ("" if built in memory)."""

    name: str
    description: str
    source: str
    joints: tuple[PresetJoint, ...]
    command_interface: str
    command_topic: str
    joint_states_topic: str
    cameras: tuple[PresetCamera, ...]
    control_rate_hz: float
    path: str = ""

    @property
    def joint_names(self) -> list[str]:
        """Joint names in preset (controller) order."""
        return [j.name for j in self.joints]

    @property
    def camera_topics(self) -> dict[str, str]:
        """Camera name -> image topic."""
        return {c.name: c.topic for c in self.cameras}

    def limits_dict(self) -> dict[str, Any]:
        """The joints as a ``JointLimits.from_dict`` / ``limits_file`` mapping."""
        return {"joints": [j.to_dict() for j in self.joints]}


def _where(source: str, fld: str) -> str:
    return f"arm preset {source}: field '{fld}'"


def _number(value: Any, source: str, fld: str) -> float:
    # YAML booleans are ints in Python; a limit written as `yes` is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"{_where(source, fld)} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise PresetError(f"{_where(source, fld)} must be finite, got {value!r}")
    return value


def _string(value: Any, source: str, fld: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PresetError(f"{_where(source, fld)} must be a non-empty string, got {value!r}")
    return value.strip()


def _topic(value: Any, source: str, fld: str) -> str:
    text = _string(value, source, fld)
    problem = validate_topic_name(text)
    if problem:
        raise PresetError(f"{_where(source, fld)} = {text!r} is not a valid topic: {problem}")
    return text


def _unknown_keys(data: Mapping, allowed: Iterable[str], source: str, where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise PresetError(
            f"arm preset {source}: unknown field(s) {unknown} in {where}; "
            f"allowed: {', '.join(allowed)}"
        )


def _validate_joints(raw: Any, source: str) -> tuple[PresetJoint, ...]:
    """The preset's ``joints``: the preset's own layout checks (no unknown keys, every key
    written out, no null acceleration), then the limits by the one parser, ``JointLimits``
    (the streamer reads the same file with it), its errors named by preset field."""
    from robot_policy_ros.core.joint_limits import JointLimits, JointLimitsError

    if not isinstance(raw, list) or not raw:
        raise PresetError(
            f"{_where(source, 'joints')} must be a non-empty list of "
            "{name, lower, upper, max_velocity, max_acceleration (optional)}"
        )
    entries: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        here = f"joints[{i}]"
        if not isinstance(item, Mapping):
            raise PresetError(f"{_where(source, here)} must be a mapping, got {item!r}")
        _unknown_keys(item, _JOINT_FIELDS, source, here)
        for key in ("name", "lower", "upper", "max_velocity"):
            if key not in item:
                raise PresetError(f"{_where(source, f'{here}.{key}')} is missing")
        name = _string(item["name"], source, f"{here}.name")
        if "max_acceleration" in item and item["max_acceleration"] is None:
            raise PresetError(
                f"{_where(source, f'{here} ({name}).max_acceleration')} is null; "
                "omit the key when the acceleration limit is unknown"
            )
        entries.append({**item, "name": name})
    try:
        limits = JointLimits.from_dict({"joints": entries})
    except JointLimitsError as exc:
        if exc.index is None:
            field = "joints"
        else:
            field = f"joints[{exc.index}] ({entries[exc.index]['name']})"
            field += f".{exc.key}" if exc.key else ""
        sep = " " if exc.problem.startswith(("must ", "is ")) else ": "
        raise PresetError(f"{_where(source, field)}{sep}{exc.problem}") from None
    acc = limits.max_acceleration
    return tuple(
        PresetJoint(
            name,
            float(limits.lower[i]),
            float(limits.upper[i]),
            float(limits.max_velocity[i]),
            None if acc is None else float(acc[i]),
        )
        for i, name in enumerate(limits.names)
    )


def _validate_cameras(raw: Any, source: str) -> tuple[PresetCamera, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PresetError(f"{_where(source, 'cameras')} must be a list of {{name, topic}}")
    cams: list[PresetCamera] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        here = f"cameras[{i}]"
        if not isinstance(item, Mapping):
            raise PresetError(f"{_where(source, here)} must be a mapping, got {item!r}")
        _unknown_keys(item, _CAMERA_FIELDS, source, here)
        for key in _CAMERA_FIELDS:
            if key not in item:
                raise PresetError(f"{_where(source, f'{here}.{key}')} is missing")
        name = _string(item["name"], source, f"{here}.name")
        if not _TOKEN_RE.match(name):
            raise PresetError(
                f"{_where(source, f'{here}.name')} = {name!r}: camera names are topic tokens "
                "(letters, digits, '_', not starting with a digit)"
            )
        if name in seen:
            raise PresetError(f"{_where(source, f'{here}.name')}: camera '{name}' is listed twice")
        seen.add(name)
        cams.append(PresetCamera(name, _topic(item["topic"], source, f"{here}.topic")))
    return tuple(cams)


def validate_preset(data: Any, source: str) -> ArmPreset:
    """Validate a parsed preset mapping strictly; ``source`` names it in every message.

    Raises :class:`PresetError` naming the file and the field for any missing, unknown or
    out-of-range field.
    """
    if not isinstance(data, Mapping):
        raise PresetError(
            f"arm preset {source}: expected a mapping with fields {', '.join(_PRESET_FIELDS)}, "
            f"got {type(data).__name__}"
        )
    _unknown_keys(data, _PRESET_FIELDS, source, "the top level")
    for key in _PRESET_FIELDS:
        if key not in data and key != "cameras":
            raise PresetError(f"{_where(source, key)} is missing ({_PRESET_FIELDS[key]})")
    name = _string(data["name"], source, "name")
    if not _NAME_RE.match(name):
        raise PresetError(
            f"{_where(source, 'name')} = {name!r}: use letters, digits, '_' and '-' only"
        )
    interface = _string(data["command_interface"], source, "command_interface")
    if interface not in COMMAND_INTERFACES:
        raise PresetError(
            f"{_where(source, 'command_interface')} = {interface!r}: must be one of "
            f"{', '.join(COMMAND_INTERFACES)}"
        )
    rate = _number(data["control_rate_hz"], source, "control_rate_hz")
    if not 0 < rate <= _MAX_CONTROL_RATE_HZ:
        raise PresetError(
            f"{_where(source, 'control_rate_hz')} = {rate:g}: must be in "
            f"(0, {_MAX_CONTROL_RATE_HZ:g}]"
        )
    return ArmPreset(
        name=name,
        description=_string(data["description"], source, "description"),
        source=_string(data["source"], source, "source"),
        joints=_validate_joints(data["joints"], source),
        command_interface=interface,
        command_topic=_topic(data["command_topic"], source, "command_topic"),
        joint_states_topic=_topic(data["joint_states_topic"], source, "joint_states_topic"),
        cameras=_validate_cameras(data.get("cameras"), source),
        control_rate_hz=rate,
        path=source if Path(source).suffix in (".yaml", ".yml") else "",
    )


def presets_dir(share_dir: str | os.PathLike) -> Path:
    """Where the packaged presets live: ``<share>/config/arms``."""
    return Path(share_dir) / "config" / "arms"


def available_presets(share_dir: str | os.PathLike) -> list[str]:
    """Names of the packaged presets, sorted."""
    folder = presets_dir(share_dir)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _looks_like_path(name_or_path: str) -> bool:
    return os.sep in name_or_path or "/" in name_or_path or name_or_path.endswith((".yaml", ".yml"))


def resolve_preset_path(name_or_path: str, share_dir: str | os.PathLike) -> Path:
    """A preset name (``so101``) -> ``<share>/config/arms/so101.yaml``; a path stays a path."""
    text = name_or_path.strip()
    if not text:
        raise PresetError(
            "arm:= is empty; give a preset name (one of "
            f"{', '.join(available_presets(share_dir)) or 'none installed'}), a path to a "
            f"preset YAML, or arm:={NO_PRESET}"
        )
    if _looks_like_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise PresetError(f"arm preset file {path} does not exist")
        return path.resolve()
    path = presets_dir(share_dir) / f"{text}.yaml"
    if not path.is_file():
        raise PresetError(
            f"no arm preset named '{text}' in {presets_dir(share_dir)}; available: "
            f"{', '.join(available_presets(share_dir)) or 'none'} "
            "(or give a path to your own preset YAML, see doc/launch.md 'Bring your own arm')"
        )
    return path


def read_preset_file(path: str | os.PathLike) -> ArmPreset:
    """Parse and validate one preset file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PresetError(f"arm preset {path}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        raise PresetError(f"arm preset {path}: not valid YAML ({exc})") from exc
    return validate_preset(data, str(path))


def load_preset(name_or_path: str, share_dir: str | os.PathLike) -> ArmPreset:
    """Load a packaged preset by name, or any preset file by path, and validate it."""
    return read_preset_file(resolve_preset_path(name_or_path, share_dir))
