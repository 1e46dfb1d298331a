"""Everything the launch files decide, as plain tested Python.

The launch files under ``launch/`` stay thin and declarative: they declare arguments and
hand the resolved argument strings to the functions here (from an ``OpaqueFunction``),
which load and validate the arm preset, check it against the checkpoint, map launch
arguments to node parameters, build the topic remappings and the ``ros2 bag record``
command. Nothing here imports ``launch``, ``launch_ros`` or ``rclpy``, so all of it is
unit-tested without a ROS install (``test/test_presets.py``, ``test/test_launch_support.py``).

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

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from robot_policy_ros.core.transport import dds_profile_env
from robot_policy_ros.params import node_table
from robot_policy_ros.params.policy_node import DEVICE_RE

PACKAGE = "robot_policy_ros"


def _choices(node: str, name: str) -> tuple[str, ...]:
    """The allowed values of a node parameter, from the node's own parameter table."""
    for spec in node_table(node):
        if spec.name == name and spec.choices:
            return tuple(spec.choices)
    raise KeyError(f"{node} has no choice parameter {name!r}")


#: Values the command_streamer's ``command_interface`` and ``blending`` parameters accept.
COMMAND_INTERFACES = _choices("command_streamer", "command_interface")
BLENDING_MODES = _choices("command_streamer", "blending")
#: Values of the policy_node's ``dtype`` and ``image_transport`` parameters.
DTYPES = _choices("policy_node", "dtype")
IMAGE_TRANSPORTS = _choices("policy_node", "image_transport")
#: ROS log levels accepted by ``--ros-args --log-level``.
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
#: Recorders record_demos.launch.py can start.
RECORDERS = ("ros2bag", "bag_recorder")
#: Gazebo (gz_ros2_control) controllers gazebo.launch.py can command.
GAZEBO_CONTROLLERS = {
    "forward_position_controller": ("position_array", "/forward_position_controller/commands"),
    "joint_trajectory_controller": (
        "joint_trajectory",
        "/joint_trajectory_controller/joint_trajectory",
    ),
}

#: ``arm:=none`` runs without a preset: limits come from the checkpoint, topics from arguments.
NO_PRESET = "none"

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
_TOKEN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_CONTROL_RATE_HZ = 1000.0


class PresetError(ValueError):
    """An arm preset (or launch argument) the launch cannot run with; names file and field."""


class PresetMismatchError(PresetError):
    """The arm preset's joints disagree with the checkpoint's; the message names both lists."""


# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JointSpec:
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
class CameraSpec:
    """A camera the preset provides: the checkpoint's camera name and its image topic."""

    name: str
    topic: str


@dataclass(frozen=True)
class ArmPreset:
    """A validated arm preset. ``path`` is the file it came from ("" if built in memory)."""

    name: str
    description: str
    source: str
    joints: tuple[JointSpec, ...]
    command_interface: str
    command_topic: str
    joint_states_topic: str
    cameras: tuple[CameraSpec, ...]
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


def validate_topic_name(topic: str) -> str | None:
    """Return why ``topic`` is not a valid ROS 2 topic name, or None if it is.

    Relative names (``joint_states``) resolve inside the launch namespace; absolute names
    (``/joint_states``) do not. Substitutions like ``{node}`` and ``~`` are not allowed here.
    """
    if not topic:
        return "it is empty"
    if topic.endswith("/") and topic != "/":
        return "it ends with '/'"
    if topic == "/":
        return "it is only '/'"
    if "//" in topic:
        return "it contains '//'"
    body = topic[1:] if topic.startswith("/") else topic
    for token in body.split("/"):
        if not _TOKEN_RE.match(token):
            return (
                f"'{token}' is not a valid name token (letters, digits and '_', "
                "not starting with a digit)"
            )
    return None


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


def _validate_joints(raw: Any, source: str) -> tuple[JointSpec, ...]:
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
        JointSpec(
            name,
            float(limits.lower[i]),
            float(limits.upper[i]),
            float(limits.max_velocity[i]),
            None if acc is None else float(acc[i]),
        )
        for i, name in enumerate(limits.names)
    )


def _validate_cameras(raw: Any, source: str) -> tuple[CameraSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PresetError(f"{_where(source, 'cameras')} must be a list of {{name, topic}}")
    cams: list[CameraSpec] = []
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
        cams.append(CameraSpec(name, _topic(item["topic"], source, f"{here}.topic")))
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


# --------------------------------------------------------------------------------------
# Checkpoint
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Launch arguments -> parameters, remappings, recording
# --------------------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(value: str | bool, name: str) -> bool:
    """A launch argument as a bool ('true'/'false', '1'/'0', 'yes'/'no', 'on'/'off')."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PresetError(f"launch argument {name}:={value!r} must be true or false")


def parse_positive_float(value: str | float, name: str) -> float:
    """A launch argument as a finite float > 0."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise PresetError(f"launch argument {name}:={value!r} must be a number") from exc
    if not math.isfinite(out) or out <= 0:
        raise PresetError(f"launch argument {name}:={value!r} must be a finite number > 0")
    return out


def _choice(args: Mapping[str, str], name: str, choices: Sequence[str]) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in choices:
        raise PresetError(f"launch argument {name}:={value!r} must be one of {', '.join(choices)}")
    return value


def _arg(args: Mapping[str, str], name: str) -> str:
    return (args.get(name) or "").strip()


def parse_camera_topics(text: str) -> dict[str, str]:
    """``"front=/cam/image_raw,wrist=/wrist/image_raw"`` -> ``{"front": ..., "wrist": ...}``.

    Pairs are separated by commas or whitespace; each is ``camera=topic``.
    """
    out: dict[str, str] = {}
    for pair in re.split(r"[,\s]+", text.strip()):
        if not pair:
            continue
        if "=" not in pair:
            raise PresetError(
                f"launch argument camera_topics: '{pair}' is not camera=topic "
                "(example: camera_topics:=front=/camera/image_raw,wrist=/wrist/image_raw)"
            )
        name, topic = (s.strip() for s in pair.split("=", 1))
        if not _TOKEN_RE.match(name):
            raise PresetError(f"launch argument camera_topics: bad camera name '{name}'")
        problem = validate_topic_name(topic)
        if problem:
            raise PresetError(
                f"launch argument camera_topics: topic '{topic}' is invalid: {problem}"
            )
        if name in out:
            raise PresetError(f"launch argument camera_topics: camera '{name}' given twice")
        out[name] = topic
    return out


def _checked_topic(args: Mapping[str, str], name: str) -> str:
    value = _arg(args, name)
    if value:
        problem = validate_topic_name(value)
        if problem:
            raise PresetError(f"launch argument {name}:={value!r} is not a valid topic: {problem}")
    return value


@dataclass(frozen=True)
class TopicPlan:
    """Where the policy stack's inputs and outputs go after remapping."""

    joint_states: str
    command: str
    command_interface: str
    cameras: dict[str, str]  # checkpoint camera name -> image (base) topic
    image_transport: str = "raw"


def topic_plan(
    args: Mapping[str, str], preset: ArmPreset | None, camera_names: Sequence[str] = ()
) -> tuple[TopicPlan, list[str]]:
    """Resolve topics: explicit argument > preset > the nodes' own relative names.

    ``camera_names`` are the checkpoint's cameras (the policy_node subscribes to
    ``<camera>/image_raw``). Returns the plan and warnings for cameras left unmapped.
    """
    warnings: list[str] = []
    explicit = parse_camera_topics(_arg(args, "camera_topics"))
    single = _checked_topic(args, "camera_topic")
    names = list(camera_names) or (
        [c.name for c in preset.cameras] if preset is not None else list(explicit)
    )
    if single:
        if len(names) != 1:
            raise PresetError(
                f"launch argument camera_topic:={single} maps a single camera, but the checkpoint "
                f"has cameras {names}; use camera_topics:=name=topic,... instead"
            )
        explicit.setdefault(names[0], single)
    preset_cams = preset.camera_topics if preset is not None else {}
    cameras: dict[str, str] = {}
    for cam in names:
        if cam in explicit:
            cameras[cam] = explicit[cam]
        elif cam in preset_cams:
            cameras[cam] = preset_cams[cam]
        else:
            cameras[cam] = f"{cam}/image_raw"
            if preset is not None or explicit:
                warnings.append(
                    f"no topic given for camera '{cam}'; using '{cam}/image_raw' in the launch "
                    f"namespace (set camera_topics:={cam}=/your/image_topic)"
                )
    unknown = sorted(set(explicit) - set(names))
    if unknown and camera_names:
        raise PresetError(
            f"launch argument camera_topics names camera(s) {unknown} the checkpoint does not "
            f"have; its cameras are {list(camera_names)}"
        )
    interface = _choice(args, "command_interface", COMMAND_INTERFACES) or (
        preset.command_interface if preset is not None else "position_array"
    )
    plan = TopicPlan(
        joint_states=_checked_topic(args, "joint_states_topic")
        or (preset.joint_states_topic if preset is not None else "joint_states"),
        command=_checked_topic(args, "command_topic")
        or (preset.command_topic if preset is not None else "joint_commands"),
        command_interface=interface,
        cameras=cameras,
        image_transport=_choice(args, "image_transport", IMAGE_TRANSPORTS) or "raw",
    )
    return plan, warnings


def remappings(plan: TopicPlan) -> list[tuple[str, str]]:
    """Remap rules for policy_node and command_streamer (both get the same list).

    The nodes use relative names (``joint_states``, ``<camera>/image_raw``,
    ``joint_commands``); rules that would map a name onto itself are left out.
    """
    rules = [("joint_states", plan.joint_states), ("joint_commands", plan.command)]
    for cam, topic in plan.cameras.items():
        if plan.image_transport == "compressed":
            rules.append((f"{cam}/image_raw/compressed", f"{topic}/compressed"))
        else:
            rules.append((f"{cam}/image_raw", topic))
    return [(src, dst) for src, dst in rules if src != dst]


def node_parameters(
    args: Mapping[str, str],
    preset: ArmPreset | None,
    limits_file: str = "",
    plan: TopicPlan | None = None,
) -> dict[str, list[dict[str, Any] | str]]:
    """Launch arguments -> the ``parameters`` list of each node.

    Each list is ``[values from arguments and preset]`` followed by ``params_file`` when
    given, so a params file overrides any parameter (launch_ros applies entries in order).
    Empty arguments are left out, so the node's own default applies.
    """
    checkpoint = _arg(args, "checkpoint")
    if not checkpoint:
        raise PresetError(
            "launch argument checkpoint:= is required: a checkpoint directory (make a random "
            "one for trying things out with `robot-policy init-checkpoint`)"
        )
    common: dict[str, Any] = {"checkpoint": checkpoint}
    if _arg(args, "autostart"):
        common["autostart"] = parse_bool(args["autostart"], "autostart")
    if _arg(args, "use_sim_time"):
        common["use_sim_time"] = parse_bool(args["use_sim_time"], "use_sim_time")

    policy: dict[str, Any] = dict(common)
    if _arg(args, "device"):
        device = _arg(args, "device")
        if not DEVICE_RE.match(device):
            raise PresetError(f"launch argument device:={device!r} must be cpu, cuda or cuda:N")
        policy["device"] = device
    for name, choices in (("dtype", DTYPES), ("image_transport", IMAGE_TRANSPORTS)):
        value = _choice(args, name, choices)
        if value:
            policy[name] = value

    streamer: dict[str, Any] = dict(common)
    if limits_file:
        streamer["limits_file"] = limits_file
    elif preset is not None and preset.path:
        # The preset file itself is a valid limits_file (same `joints` schema).
        streamer["limits_file"] = preset.path
    if _arg(args, "control_rate_hz"):
        streamer["control_rate_hz"] = parse_positive_float(
            args["control_rate_hz"], "control_rate_hz"
        )
    elif preset is not None:
        streamer["control_rate_hz"] = float(preset.control_rate_hz)
    interface = plan.command_interface if plan is not None else None
    interface = interface or _choice(args, "command_interface", COMMAND_INTERFACES)
    if not interface and preset is not None:
        interface = preset.command_interface
    if interface:
        streamer["command_interface"] = interface
    blending = _choice(args, "blending", BLENDING_MODES)
    if blending:
        streamer["blending"] = blending

    params_file = _arg(args, "params_file")
    if params_file and not Path(params_file).expanduser().is_file():
        raise PresetError(f"launch argument params_file:={params_file} does not exist")
    tail: list[dict[str, Any] | str] = [str(Path(params_file).expanduser())] if params_file else []
    return {"policy_node": [policy, *tail], "command_streamer": [streamer, *tail]}


def resolve_topic(topic: str, namespace: str = "") -> str:
    """Absolute name of ``topic`` as seen from a node in ``namespace``."""
    if topic.startswith("/"):
        return topic
    ns = namespace.strip("/")
    return f"/{ns}/{topic}" if ns else f"/{topic}"


def policy_record_topics(plan: TopicPlan, namespace: str = "") -> list[str]:
    """Inputs and outputs of the policy stack, as absolute topic names, for ``record:=true``."""
    topics = [plan.joint_states]
    for topic in plan.cameras.values():
        topics.append(f"{topic}/compressed" if plan.image_transport == "compressed" else topic)
    topics += ["action_chunk", plan.command, "e_stop", "/diagnostics"]
    return _unique(resolve_topic(t, namespace) for t in topics)


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def bag_output_dir(bag_dir: str, prefix: str, now: datetime | None = None) -> str:
    """A fresh bag folder ``<bag_dir>/<prefix>_<YYYYmmdd_HHMMSS>`` (ros2 bag refuses existing)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    base = Path(bag_dir or ".").expanduser() / f"{prefix}_{stamp}"
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{base.name}_{i}")
        i += 1
    return str(out)


def bag_record_cmd(
    topics: Sequence[str],
    bag_dir: str,
    storage: str = "mcap",
    use_sim_time: bool = False,
) -> list[str]:
    """The ``ros2 bag record`` command line (Jazzy syntax) recording ``topics`` into ``bag_dir``.

    ``bag_dir`` is the bag folder itself and must not exist yet (see :func:`bag_output_dir`).
    """
    if not topics:
        raise PresetError("nothing to record: the topic list is empty")
    for topic in topics:
        problem = validate_topic_name(topic)
        if problem:
            raise PresetError(f"cannot record topic {topic!r}: {problem}")
    if storage not in ("mcap", "sqlite3"):
        raise PresetError(f"bag storage {storage!r} must be mcap or sqlite3")
    cmd = ["ros2", "bag", "record", "--storage", storage, "--output", bag_dir]
    if use_sim_time:
        cmd.append("--use-sim-time")
    # No terminal under launch: keyboard controls would only print warnings.
    cmd += ["--disable-keyboard-controls", "--topics", *topics]
    return cmd


# --------------------------------------------------------------------------------------
# Whole-launch plans (what each launch file's OpaqueFunction executes)
# --------------------------------------------------------------------------------------


@dataclass
class NodePlan:
    """One node to start: launch_ros ``Node`` keyword arguments (package-relative)."""

    executable: str
    name: str
    parameters: list[dict[str, Any] | str] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    package: str = PACKAGE
    #: Stop the whole launch when this node exits (a policy stack missing a node is unsafe
    #: to leave half-running, and a recording without its robot is useless).
    required: bool = True


@dataclass
class LaunchPlan:
    """Everything a launch file starts, decided from its arguments."""

    nodes: list[NodePlan]
    namespace: str = ""
    log_level: str = "info"
    record_cmd: list[str] | None = None
    infos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    preset: ArmPreset | None = None


def launch_namespace(args: Mapping[str, str]) -> str:
    """The ``namespace`` argument without surrounding '/', validated ("" for none)."""
    ns = _arg(args, "namespace").strip("/")
    if ns:
        problem = validate_topic_name(ns)
        if problem:
            raise PresetError(f"launch argument namespace:={ns!r} is invalid: {problem}")
    return ns


def log_level_arg(args: Mapping[str, str]) -> str:
    """The ``log_level`` argument, validated (default ``info``)."""
    return _choice(args, "log_level", LOG_LEVELS) or "info"


def _preset_or_none(args: Mapping[str, str], share_dir: str | os.PathLike) -> ArmPreset | None:
    arm = _arg(args, "arm")
    return None if arm == NO_PRESET else load_preset(arm, share_dir)


def plan_policy_launch(
    args: Mapping[str, str],
    share_dir: str | os.PathLike,
    now: datetime | None = None,
    scratch_dir: str | os.PathLike | None = None,
) -> LaunchPlan:
    """Plan policy.launch.py: validate preset vs checkpoint, then nodes and recording.

    Raises :class:`PresetError` (or its :class:`PresetMismatchError`) to stop the launch.
    """
    args = dict(args)
    preset = _preset_or_none(args, share_dir)
    checkpoint = _arg(args, "checkpoint")
    if not checkpoint:
        node_parameters(args, preset)  # raises the "checkpoint:= is required" message
    info = read_checkpoint_info(checkpoint)
    limits_file = ""
    if preset is not None:
        # Its camera warnings ignore camera_topics:=...; topic_plan's below account for them.
        check_preset_matches_checkpoint(preset, info)
    else:
        limits_file = str(write_limits_file(limits_from_checkpoint(info), scratch_dir))
    plan, warnings = topic_plan(args, preset, info.camera_names)
    params = node_parameters(args, preset, limits_file=limits_file, plan=plan)
    rules = remappings(plan)
    ns = launch_namespace(args)
    nodes = [
        NodePlan("policy_node", "policy_node", params["policy_node"], rules),
        NodePlan("command_streamer", "command_streamer", params["command_streamer"], rules),
    ]
    infos = [
        f"arm preset: {preset.name} ({preset.path})"
        if preset is not None
        else f"no arm preset: limits from the checkpoint ({limits_file})",
        f"checkpoint {checkpoint}: joints {list(info.joint_names)}, cameras "
        f"{list(info.camera_names)}",
        f"joint_states <- {resolve_topic(plan.joint_states, ns)}; commands "
        f"({plan.command_interface}) -> {resolve_topic(plan.command, ns)}",
    ] + [f"camera {c} <- {resolve_topic(t, ns)}" for c, t in plan.cameras.items()]
    record_cmd = None
    if parse_bool(_arg(args, "record") or "false", "record"):
        out = bag_output_dir(_arg(args, "bag_dir") or "bags", "policy", now)
        record_cmd = bag_record_cmd(
            policy_record_topics(plan, ns),
            out,
            use_sim_time=parse_bool(_arg(args, "use_sim_time") or "false", "use_sim_time"),
        )
        infos.append(f"recording to {out}")
    return LaunchPlan(nodes, ns, log_level_arg(args), record_cmd, infos, warnings, preset)


def sim_robot_parameters(args: Mapping[str, str]) -> list[dict[str, Any] | str]:
    """Parameters of the embedded sim_robot (and scripted_expert): sim time and a params file."""
    params: list[dict[str, Any] | str] = []
    if _arg(args, "use_sim_time"):
        params.append({"use_sim_time": parse_bool(args["use_sim_time"], "use_sim_time")})
    sim_file = _arg(args, "sim_params_file")
    if sim_file:
        if not Path(sim_file).expanduser().is_file():
            raise PresetError(f"launch argument sim_params_file:={sim_file} does not exist")
        params.append(str(Path(sim_file).expanduser()))
    return params


def demo_record_topics(
    args: Mapping[str, str], preset: ArmPreset, sim: bool, namespace: str = ""
) -> list[str]:
    """Robot-side topics of a demonstration: joint states, cameras, the commands (actions).

    In the sim the episode topic is added, so episodes can be split when converting.
    ``extra_topics`` (space or comma separated) are appended.
    """
    plan, _ = topic_plan(args, preset)
    topics = [plan.joint_states, *plan.cameras.values(), plan.command]
    if sim:
        topics.append("sim_robot/episode")
    for extra in re.split(r"[,\s]+", _arg(args, "extra_topics")):
        if extra:
            problem = validate_topic_name(extra)
            if problem:
                raise PresetError(f"launch argument extra_topics: {extra!r} is invalid: {problem}")
            topics.append(extra)
    return _unique(resolve_topic(t, namespace) for t in topics)


def plan_record_demos(
    args: Mapping[str, str], share_dir: str | os.PathLike, now: datetime | None = None
) -> LaunchPlan:
    """Plan record_demos.launch.py: sim + scripted expert (sim:=true) and a recorder."""
    args = dict(args)
    preset = load_preset(_arg(args, "arm") or "sim_arm", share_dir)
    sim = parse_bool(_arg(args, "sim") or "true", "sim")
    ns = launch_namespace(args)
    recorder = _choice(args, "recorder", RECORDERS) or "ros2bag"
    topics = demo_record_topics(args, preset, sim, ns)
    out = bag_output_dir(_arg(args, "bag_dir") or "demos", "demo", now)
    use_sim_time = parse_bool(_arg(args, "use_sim_time") or "false", "use_sim_time")
    nodes: list[NodePlan] = []
    infos = [f"arm preset: {preset.name} ({preset.path})", f"recording {topics} to {out}"]
    if sim:
        sim_params = sim_robot_parameters(args)
        nodes.append(NodePlan("sim_robot", "sim_robot", list(sim_params)))
        expert_rules = [
            (src, dst)
            for src, dst in (
                ("joint_states", preset.joint_states_topic),
                ("forward_position_controller/commands", preset.command_topic),
            )
            if src != dst
        ]
        nodes.append(NodePlan("scripted_expert", "scripted_expert", list(sim_params), expert_rules))
        episodes = _arg(args, "episodes") or "0"
        delay = _arg(args, "reset_delay_s") or "1.0"
        if not episodes.isdigit():
            raise PresetError(f"launch argument episodes:={episodes!r} must be a whole number >= 0")
        if parse_positive_float(delay, "reset_delay_s") > 3600:
            raise PresetError(f"launch argument reset_delay_s:={delay!r} is over an hour")
        nodes.append(
            NodePlan(
                "episode_driver",
                "episode_driver",
                [
                    {
                        "use_sim_time": use_sim_time,
                        "episodes": int(episodes),
                        "reset_delay_s": float(delay),
                    }
                ],
            )
        )
        infos.append(
            "teleoperator: the sim's scripted expert; "
            + (f"{episodes} episodes" if episodes != "0" else "episodes until Ctrl-C")
        )
    record_cmd = None
    if recorder == "ros2bag":
        record_cmd = bag_record_cmd(topics, out, use_sim_time=use_sim_time)
    else:
        # bag_recorder (H-data) writes one bag per episode under output_dir; in the sim the
        # episode topic starts and closes them, on a real robot its ~/start and ~/stop do.
        rec_params: dict[str, Any] = {
            "output_dir": out,
            "topics": topics,
            "episode_topic": "sim_robot/episode" if sim else "",
            "robot_config": preset.path,
        }
        if use_sim_time:
            rec_params["use_sim_time"] = True
        rec_file = _arg(args, "recorder_params_file")
        params: list[dict[str, Any] | str] = [rec_params]
        if rec_file:
            if not Path(rec_file).expanduser().is_file():
                raise PresetError(
                    f"launch argument recorder_params_file:={rec_file} does not exist"
                )
            params.append(str(Path(rec_file).expanduser()))
        nodes.append(NodePlan("bag_recorder", "bag_recorder", params))
        if not sim:
            infos.append(
                "bag_recorder: start and stop each episode with "
                f"ros2 service call {resolve_topic('bag_recorder', ns)}/start std_srvs/srv/Trigger "
                "(and .../stop)"
            )
    return LaunchPlan(nodes, ns, log_level_arg(args), record_cmd, infos, [], preset)


def gazebo_arguments(args: Mapping[str, str]) -> dict[str, str]:
    """policy.launch.py arguments for a gz sim + gz_ros2_control robot.

    Forces ``use_sim_time:=true``; the controller picks the command interface and topic
    unless ``command_topic``/``command_interface`` are given explicitly.
    """
    controller = _arg(args, "controller") or "forward_position_controller"
    if controller not in GAZEBO_CONTROLLERS:
        raise PresetError(
            f"launch argument controller:={controller!r} must be one of "
            f"{', '.join(GAZEBO_CONTROLLERS)}"
        )
    interface, topic = GAZEBO_CONTROLLERS[controller]
    out = {k: v for k, v in args.items() if v is not None}
    out["use_sim_time"] = "true"
    out["command_interface"] = _arg(args, "command_interface") or interface
    out["command_topic"] = _arg(args, "command_topic") or topic
    gz_cam = _arg(args, "gz_camera_topic")
    if gz_cam and not _arg(args, "camera_topics") and not _arg(args, "camera_topic"):
        # parameter_bridge publishes the image under the same name on the ROS side.
        out["camera_topic"] = gz_cam
    return out


def gz_bridge_arguments(bridge_clock: bool, gz_camera_topic: str = "") -> list[str]:
    """ros_gz_bridge ``parameter_bridge`` arguments bridging gz -> ROS (clock, camera)."""
    bridges = []
    if bridge_clock:
        bridges.append("/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock")
    if gz_camera_topic:
        problem = validate_topic_name(gz_camera_topic)
        if problem:
            raise PresetError(f"gz_camera_topic {gz_camera_topic!r} is invalid: {problem}")
        bridges.append(f"{gz_camera_topic}@sensor_msgs/msg/Image[gz.msgs.Image")
    return bridges


# --------------------------------------------------------------------------------------
# Share directory and executables (install space or source tree)
# --------------------------------------------------------------------------------------


def fallback_share_dir(launch_file: str | os.PathLike) -> Path:
    """The folder holding ``config/`` next to a launch file's ``launch/`` folder.

    In an install space that is ``share/robot_policy_ros``; in a source checkout, the
    repository root. Used only when the package is not in the ament index.
    """
    return Path(launch_file).resolve().parent.parent


#: Nodes run as ``python -m <module>`` everywhere (no console script of their own).
_MODULE_EXECUTABLES = {"episode_driver": "robot_policy_ros.nodes.episode_driver"}


def node_command(executable: str, package_indexed: bool) -> dict[str, Any]:
    """launch_ros ``Node`` keyword arguments that start ``executable``.

    Installed (in the ament index): ``package=robot_policy_ros, executable=...`` as ROS
    expects. From a source checkout: the same node as ``python -m robot_policy_ros.nodes.X``
    with the checkout on PYTHONPATH.
    """
    if package_indexed and executable not in _MODULE_EXECUTABLES:
        return {"package": PACKAGE, "executable": executable}
    if executable in _MODULE_EXECUTABLES:
        # Not a console script: always `python -m`, installed or not.
        return {"executable": sys.executable, "arguments": ["-m", _MODULE_EXECUTABLES[executable]]}
    module = {"robot-policy": "robot_policy_ros.cli"}.get(
        executable, f"robot_policy_ros.nodes.{executable}"
    )
    return {"executable": sys.executable, "arguments": ["-m", module]}


def source_tree_env(share_dir: str | os.PathLike) -> dict[str, str]:
    """PYTHONPATH for nodes started from a source checkout (``share_dir`` is its root)."""
    root = str(Path(share_dir).resolve())
    current = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (root, current) if p)}


# --------------------------------------------------------------------------------------
# Launch arguments (name, default, description) of each launch file
# --------------------------------------------------------------------------------------

POLICY_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    (
        "checkpoint",
        "",
        "Checkpoint directory (required). A random one for trying things out: "
        "robot-policy init-checkpoint.",
    ),
    (
        "arm",
        "sim_arm",
        "Arm preset: a name from the package's config/arms (sim_arm, so100, so101, koch_v1_1, "
        "franka_fr3, franka_panda, ur5e, vx300s), a path to your own preset YAML, or 'none' "
        "(limits from the checkpoint, topics from the arguments below).",
    ),
    ("namespace", "", "ROS namespace of both nodes; relative topics resolve inside it."),
    ("use_sim_time", "false", "Use /clock time (true for Gazebo or bag playback)."),
    ("device", "cpu", "Inference device: cpu, cuda or cuda:N."),
    ("dtype", "", "Inference dtype: float32, float16 or bfloat16 (empty: the node's default)."),
    ("control_rate_hz", "", "Command rate in Hz (empty: the preset's control_rate_hz)."),
    (
        "blending",
        "",
        "How overlapping action chunks are blended: replace, temporal_ensemble, average or "
        "crossfade (empty: the command_streamer's default).",
    ),
    ("joint_states_topic", "", "sensor_msgs/JointState input topic (empty: the preset's)."),
    (
        "camera_topics",
        "",
        "Image topic of each checkpoint camera as name=topic pairs, comma separated, e.g. "
        "front=/cam/image_raw,wrist=/wrist/image_raw (empty: the preset's cameras).",
    ),
    (
        "camera_topic",
        "",
        "Image topic for a single-camera checkpoint (shortcut for camera_topics).",
    ),
    (
        "image_transport",
        "",
        "raw, or compressed to subscribe to <camera topic>/compressed (empty: the node's "
        "default, raw).",
    ),
    ("command_topic", "", "Topic the joint commands are published on (empty: the preset's)."),
    (
        "command_interface",
        "",
        "Command message: position_array (std_msgs/Float64MultiArray, for a "
        "forward_position_controller), joint_state (sensor_msgs/JointState) or "
        "joint_trajectory (trajectory_msgs/JointTrajectory) (empty: the preset's).",
    ),
    (
        "params_file",
        "",
        "ROS parameters YAML applied last to both nodes, so it overrides any parameter "
        "(see config/policy_params.yaml).",
    ),
    (
        "autostart",
        "true",
        "Configure and activate the lifecycle nodes at start (false: bring them up with "
        "ros2 lifecycle set).",
    ),
    ("record", "false", "Also run ros2 bag record on the stack's inputs and outputs."),
    ("bag_dir", "bags", "Folder for bags; each run records into a new timestamped sub-folder."),
    ("log_level", "info", "Log level of the nodes: debug, info, warn, error or fatal."),
)

SIM_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("sim_params_file", "", "ROS parameters YAML for sim_robot (e.g. camera, rates, seed)."),
)

RECORD_DEMOS_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("arm", "sim_arm", "Arm preset (name or path) whose topics are recorded."),
    (
        "sim",
        "true",
        "true: start the embedded sim_robot and its scripted expert as the teleoperator; "
        "false: record a real robot driven by your teleoperation.",
    ),
    (
        "recorder",
        "ros2bag",
        "ros2bag (ros2 bag record, MCAP) or bag_recorder (this package's recorder node).",
    ),
    ("bag_dir", "demos", "Folder for demonstrations; each run gets a new timestamped bag."),
    (
        "episodes",
        "0",
        "With sim:=true: episodes to record; the sim is reset after each one and the launch "
        "ends after the last (0: until Ctrl-C).",
    ),
    ("reset_delay_s", "1.0", "With sim:=true: pause between one episode's end and the next."),
    ("namespace", "", "ROS namespace of the sim, the expert and relative topics."),
    ("use_sim_time", "false", "Record with /clock time."),
    ("joint_states_topic", "", "Joint states topic to record (empty: the preset's)."),
    ("camera_topics", "", "Camera topics to record as name=topic pairs (empty: the preset's)."),
    ("camera_topic", "", "Image topic of a single camera (shortcut for camera_topics)."),
    ("command_topic", "", "Command topic (the demonstrated actions) (empty: the preset's)."),
    ("extra_topics", "", "More topics to record, space or comma separated."),
    ("sim_params_file", "", "ROS parameters YAML for sim_robot and scripted_expert."),
    ("recorder_params_file", "", "ROS parameters YAML for bag_recorder (recorder:=bag_recorder)."),
    ("log_level", "info", "Log level of the nodes: debug, info, warn, error or fatal."),
)

GAZEBO_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    (
        "controller",
        "forward_position_controller",
        "gz_ros2_control controller to command: forward_position_controller "
        "(position_array) or joint_trajectory_controller (joint_trajectory).",
    ),
    (
        "gz_camera_topic",
        "",
        "Gazebo camera topic to bridge to ROS with ros_gz_bridge and feed to the policy "
        "(empty: no camera bridge; set camera_topic(s) to an image topic you bridge yourself).",
    ),
    ("bridge_clock", "false", "Bridge /clock from Gazebo (false if your bringup already does)."),
    (
        "robot_launch",
        "",
        "Optional path of your Gazebo bringup launch file (gz sim + gz_ros2_control) to include.",
    ),
)


def _with_defaults(
    table: Sequence[tuple[str, str, str]], **defaults: str
) -> tuple[tuple[str, str, str], ...]:
    return tuple((n, defaults.get(n, d), t) for n, d, t in table)


def sim_launch_arguments() -> tuple[tuple[str, str, str], ...]:
    """sim.launch.py arguments: the policy arguments (arm defaults to sim_arm) + sim ones."""
    return SIM_ARGUMENTS + _with_defaults(POLICY_ARGUMENTS, arm="sim_arm")


def gazebo_launch_arguments() -> tuple[tuple[str, str, str], ...]:
    """gazebo.launch.py arguments: Gazebo ones + policy ones (use_sim_time is forced true)."""
    return GAZEBO_ARGUMENTS + tuple(a for a in POLICY_ARGUMENTS if a[0] != "use_sim_time")


# --------------------------------------------------------------------------------------
# Glue used by the launch files (imports launch/launch_ros lazily)
# --------------------------------------------------------------------------------------


def node_kwargs(
    node: NodePlan, plan: LaunchPlan, share_dir: str | os.PathLike, package_indexed: bool
) -> dict[str, Any]:
    """Keyword arguments of the launch_ros ``Node`` action that starts ``node``."""
    kwargs = node_command(node.executable, package_indexed)
    arguments = [*kwargs.pop("arguments", []), *node.arguments]
    if arguments:
        kwargs["arguments"] = arguments
    kwargs.update(
        name=node.name,
        parameters=list(node.parameters),
        remappings=list(node.remappings),
        ros_arguments=["--log-level", plan.log_level],
        output="screen",
    )
    if plan.namespace:
        kwargs["namespace"] = plan.namespace
    # config/fastdds.xml (large shared-memory segment: full-size images arrive in full)
    env = dds_profile_env(share_dir)
    if not package_indexed:
        env.update(source_tree_env(share_dir))
        kwargs["exec_name"] = node.name  # label output "[policy_node-1]", not "[python-1]"
    if env:
        kwargs["additional_env"] = env
    return kwargs


def declare_arguments(table: Sequence[tuple[str, str, str]]) -> list:
    """``DeclareLaunchArgument`` actions for an argument table."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(n, default_value=d, description=t) for n, d, t in table]


def find_share_dir(context: Any, launch_file: str | os.PathLike) -> tuple[str, bool]:
    """(share directory, whether the package is in the ament index).

    ``FindPackageShare`` in an install space; the source checkout next to ``launch_file``
    when the package is not installed (running the launch files from a clone).
    """
    from ament_index_python.packages import PackageNotFoundError
    from launch_ros.substitutions import FindPackageShare

    try:
        return FindPackageShare(PACKAGE).perform(context), True
    except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
        return str(fallback_share_dir(launch_file)), False


def launch_actions(plan: LaunchPlan, share_dir: str | os.PathLike, package_indexed: bool) -> list:
    """The launch actions that carry out ``plan``: log lines, nodes, ``ros2 bag record``."""
    from launch.actions import ExecuteProcess, LogInfo, Shutdown
    from launch_ros.actions import Node

    actions: list = [LogInfo(msg=f"[robot_policy_ros] {m}") for m in plan.infos]
    actions += [LogInfo(msg=f"[robot_policy_ros] WARNING: {w}") for w in plan.warnings]
    for node in plan.nodes:
        kwargs = node_kwargs(node, plan, share_dir, package_indexed)
        if node.required:
            kwargs["on_exit"] = Shutdown(reason=f"{node.name} exited")
        actions.append(Node(**kwargs))
    if plan.record_cmd:
        actions.append(ExecuteProcess(cmd=plan.record_cmd, output="screen", name="bag_record"))
    return actions
