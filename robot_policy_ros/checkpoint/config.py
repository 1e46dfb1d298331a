"""The JSON side of a policy checkpoint: read and validate ``config.json`` without torch.

A checkpoint is a directory holding ``model.safetensors`` (weights) and ``config.json``
(everything else, human-readable). This module only needs ``json`` and ``numpy`` so that
nodes that never run a network (the command streamer reads joint names and limits from
here) do not pay for importing torch.

Schema of ``config.json`` (format_version 1)::

    {
      "format_version": 1,
      "policy_type": "mlp" | "act" | "diffusion",
      "joint_names": ["j1", ...],
      "cameras": [{"name": "front", "height": 224, "width": 224, "encoding": "rgb8"}],
      "fps": 50.0,                 # control rate the chunks were trained for
      "chunk_size": 100,           # actions returned per inference call
      "n_obs_steps": 1,            # observation frames the policy reads
      "limits": {"lower": [...], "upper": [...], "max_velocity": [...],
                 "max_acceleration": null | [...]},
      "normalization": {"state": {"mean", "std", "min", "max"},
                        "action": {"mean", "std", "min", "max"}},   # per-joint lists
      "hyperparameters": {...},    # the family's config fields (see policies/config.py)
      "provenance": {...},         # free-form: who/what/when trained it
      "weights": {"file": "model.safetensors", "sha256": "..."},
      "deployment": {              # optional: how the policy was meant to be run
        "n_action_steps": 5,             # actions executed per chunk before inferring again
        "temporal_ensemble_coeff": null, # or c: infer every step, blend exp(-c * i)
        "source": "lerobot"              # who recorded it (free text)
      }
    }

Validation is strict: unknown format versions, missing or unknown top-level keys, lists of
the wrong length and non-finite numbers are :class:`CheckpointError` naming the problem.
The optional ``deployment`` section (:class:`DeploymentDefaults`) holds the defaults the
runtime uses for the refill threshold and the blending where the user sets no parameter
(robot_policy_ros.core.deployment). The ``limits`` are read by the one parser with the one
set of rules for joint limits, :meth:`JointLimits.from_columns` (core/joint_limits.py),
named by ``joint_names``, and written back in the same form (:meth:`JointLimits.to_columns`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.checkpoint.files import CheckpointError, read_json_file
from robot_policy_ros.core.joint_limits import JointLimits

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
POLICY_TYPES = ("mlp", "act", "diffusion")
IMAGE_ENCODINGS = ("rgb8",)
#: How a camera frame was brought to the model's image size in training (policy_node applies
#: the same): resize (stretch), crop (centre crop to the model's aspect ratio, then resize)
#: or letterbox (pad with black to it, then resize).
IMAGE_FITS = ("resize", "crop", "letterbox")
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
# Checked before anything is allocated from these numbers (10^6 joints are refused here,
# not by running out of memory while building the model).
MAX_JOINTS = 256
MAX_CAMERAS = 16
MAX_CHUNK_SIZE = 10_000
MAX_OBS_STEPS = 64

_TOP_LEVEL_KEYS = (
    "format_version",
    "policy_type",
    "joint_names",
    "cameras",
    "fps",
    "chunk_size",
    "n_obs_steps",
    "limits",
    "normalization",
    "hyperparameters",
    "provenance",
    "weights",
)
#: Top-level keys a config.json may leave out (older checkpoints have none of them).
_OPTIONAL_KEYS = ("deployment",)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


def _float_list(value: Any, what: str, length: int | None = None) -> np.ndarray:
    """A finite float64 vector from a JSON list, or CheckpointError naming ``what``."""
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise CheckpointError(f"{what} must be a list of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} must be a list of numbers: {exc}") from None
    if arr.ndim != 1:
        raise CheckpointError(f"{what} must be a flat list, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise CheckpointError(
            f"{what} has {arr.shape[0]} values, expected {length} (one per joint)"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise CheckpointError(f"{what} has non-finite values at index {bad.tolist()}")
    return arr


def _check_joint_names(joints: list[Any]) -> None:
    """A non-empty list of at most MAX_JOINTS unique valid names (CheckpointError if not)."""
    if not joints:
        raise CheckpointError("joint_names must be a non-empty list")
    if len(joints) > MAX_JOINTS:
        raise CheckpointError(f"joint_names lists {len(joints)} joints (limit {MAX_JOINTS})")
    for name in joints:
        check_name(name, "joint name")
    if len(set(joints)) != len(joints):
        raise CheckpointError(f"joint_names has duplicates: {joints}")


def check_name(name: Any, what: str) -> str:
    """Validate a joint or camera name (ROS-friendly identifier)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise CheckpointError(
            f"{what} {name!r} is not a valid name (letters, digits, '_', '-', '.', '/'; "
            "must not start with a digit)"
        )
    return name


@dataclass(frozen=True)
class CameraInput:
    """One camera the policy reads: its name and the image shape it expects (H, W)."""

    name: str
    height: int
    width: int
    encoding: str = "rgb8"
    #: How training brought the camera's frames to (height, width) (IMAGE_FITS).
    fit: str = "resize"
    #: The camera's own frame size in the training data; 0 x 0: not recorded.
    source_height: int = 0
    source_width: int = 0

    def __post_init__(self) -> None:
        check_name(self.name, "camera name")
        for attr in ("height", "width"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or not 8 <= v <= 4096:
                raise CheckpointError(f"camera {self.name!r}: {attr} must be an int in [8, 4096]")
        if self.fit not in IMAGE_FITS:
            raise CheckpointError(
                f"camera {self.name!r}: fit {self.fit!r} is not one of {IMAGE_FITS}"
            )
        source = (self.source_height, self.source_width)
        ok = all(not isinstance(v, bool) and isinstance(v, int) for v in source) and (
            source == (0, 0) or all(1 <= v <= 8192 for v in source)
        )
        if not ok:
            raise CheckpointError(
                f"camera {self.name!r}: source_height/source_width must be ints in [1, 8192] "
                f"(or both 0: not recorded), got {source}"
            )

    @property
    def source_shape(self) -> tuple[int, int] | None:
        """(height, width) of the camera's frames in training, or None if not recorded."""
        if self.source_height == 0:
            return None
        return (self.source_height, self.source_width)
        if self.encoding not in IMAGE_ENCODINGS:
            raise CheckpointError(
                f"camera {self.name!r}: encoding {self.encoding!r} not supported "
                f"(expected one of {IMAGE_ENCODINGS})"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "encoding": self.encoding,
        }
        if self.fit != "resize" or self.source_height:
            out.update(
                fit=self.fit, source_height=self.source_height, source_width=self.source_width
            )
        return out

    @classmethod
    def from_dict(cls, data: Any) -> CameraInput:
        """Parse the JSON form strictly."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"camera entry must be an object, got {data!r}")
        missing = {"name", "height", "width"} - set(data)
        if missing:
            raise CheckpointError(f"camera entry {data!r} misses keys {sorted(missing)}")
        known = {"name", "height", "width", "encoding", "fit", "source_height", "source_width"}
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"camera entry has unknown keys {sorted(unknown)}")
        return cls(
            name=data["name"],
            height=data["height"],
            width=data["width"],
            encoding=data.get("encoding", "rgb8"),
            fit=data.get("fit", "resize"),
            source_height=data.get("source_height", 0),
            source_width=data.get("source_width", 0),
        )


def limits_from_json(data: Any, joint_names: Sequence[str]) -> JointLimits:
    """``config.json``'s ``limits`` (per-joint columns in ``joint_names`` order) as the one
    :class:`JointLimits` type, by :meth:`JointLimits.from_columns` (its rules); a broken rule
    is a CheckpointError naming the field."""
    if not isinstance(data, Mapping):
        raise CheckpointError("limits must be an object")
    try:
        return JointLimits.from_columns(joint_names, data)
    except ValueError as exc:
        raise CheckpointError(f"limits: {str(exc).removeprefix('joint limits: ')}") from None


_STAT_KEYS = ("mean", "std", "min", "max")


@dataclass(frozen=True)
class NormalizationStats:
    """Per-joint statistics of the state (proprioception) and the actions, joint units.

    Each family picks what it uses (mean/std or min/max); all four are always stored so a
    checkpoint can be re-trained as another family.
    """

    state_mean: np.ndarray
    state_std: np.ndarray
    state_min: np.ndarray
    state_max: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    action_min: np.ndarray
    action_max: np.ndarray

    def __post_init__(self) -> None:
        n = len(np.atleast_1d(self.state_mean))
        for group in ("state", "action"):
            for key in _STAT_KEYS:
                name = f"{group}_{key}"
                arr = _float_list(
                    np.asarray(getattr(self, name), dtype=np.float64),
                    f"normalization.{group}.{key}",
                    n,
                )
                object.__setattr__(self, name, arr)
            std = getattr(self, f"{group}_std")
            if (std < 0).any():
                raise CheckpointError(f"normalization.{group}.std has negative values")
            lo, hi = getattr(self, f"{group}_min"), getattr(self, f"{group}_max")
            bad = np.flatnonzero(lo > hi)
            if bad.size:
                raise CheckpointError(
                    f"normalization.{group}: min > max for joint index {bad.tolist()}"
                )

    @property
    def num_joints(self) -> int:
        """Number of joints."""
        return int(self.state_mean.shape[0])

    @classmethod
    def from_data(cls, states: np.ndarray, actions: np.ndarray) -> NormalizationStats:
        """Statistics of (N, J) states and (M, J) actions."""
        states = np.asarray(states, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.float64)
        if states.ndim != 2 or actions.ndim != 2 or states.shape[1] != actions.shape[1]:
            raise CheckpointError(
                f"states and actions must be (N, J) with the same J, got {states.shape} "
                f"and {actions.shape}"
            )
        return cls(
            state_mean=states.mean(0),
            state_std=states.std(0),
            state_min=states.min(0),
            state_max=states.max(0),
            action_mean=actions.mean(0),
            action_std=actions.std(0),
            action_min=actions.min(0),
            action_max=actions.max(0),
        )

    @classmethod
    def from_limits(cls, limits: JointLimits) -> NormalizationStats:
        """Placeholder statistics for an untrained policy: the limits' range as the data range.

        mean = centre, std = range/4, min/max = limits. Keeps randomly initialised outputs
        roughly inside the limits.
        """
        lower, upper = np.array(limits.lower), np.array(limits.upper)  # writable copies
        centre = (lower + upper) / 2.0
        std = (upper - lower) / 4.0
        return cls(
            state_mean=centre,
            state_std=std,
            state_min=lower,
            state_max=upper,
            action_mean=centre.copy(),
            action_std=std.copy(),
            action_min=lower.copy(),
            action_max=upper.copy(),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {"state": {"mean": [...], ...}, "action": {...}}."""
        return {
            group: {key: getattr(self, f"{group}_{key}").tolist() for key in _STAT_KEYS}
            for group in ("state", "action")
        }

    @classmethod
    def from_dict(cls, data: Any, num_joints: int) -> NormalizationStats:
        """Parse the JSON form strictly."""
        if not isinstance(data, Mapping):
            raise CheckpointError("normalization must be an object")
        kwargs: dict[str, np.ndarray] = {}
        for group in ("state", "action"):
            sub = data.get(group)
            if not isinstance(sub, Mapping):
                raise CheckpointError(f"normalization.{group} is missing or not an object")
            missing = set(_STAT_KEYS) - set(sub)
            if missing:
                raise CheckpointError(f"normalization.{group} misses keys {sorted(missing)}")
            unknown = set(sub) - set(_STAT_KEYS)
            if unknown:
                raise CheckpointError(f"normalization.{group} has unknown keys {sorted(unknown)}")
            for key in _STAT_KEYS:
                kwargs[f"{group}_{key}"] = _float_list(
                    sub[key], f"normalization.{group}.{key}", num_joints
                )
        unknown = set(data) - {"state", "action"}
        if unknown:
            raise CheckpointError(f"normalization has unknown keys {sorted(unknown)}")
        return cls(**kwargs)


@dataclass(frozen=True)
class DeploymentDefaults:
    """How the policy was meant to be run (``config.json``'s optional ``deployment``).

    Attributes:
        n_action_steps: actions of each chunk executed before the next inference (1 to
            chunk_size): the refill threshold becomes (chunk_size - n_action_steps) / fps.
        temporal_ensemble_coeff: None, or c >= 0: infer at every control step (fps) and blend
            every chunk covering a step with weights exp(-c * i), i = 0 for the oldest (the
            command streamer's temporal_ensemble with ensemble_k = c).
        source: who recorded these values (e.g. "lerobot"), free text.
    """

    n_action_steps: int
    temporal_ensemble_coeff: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        k = self.n_action_steps
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CHUNK_SIZE:
            raise CheckpointError(
                f"deployment.n_action_steps must be an integer in [1, {MAX_CHUNK_SIZE}], got {k!r}"
            )
        c = self.temporal_ensemble_coeff
        if c is not None:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
                raise CheckpointError(
                    f"deployment.temporal_ensemble_coeff must be null or a finite number, got {c!r}"
                )
            # The command streamer's ensemble_k range (params/command_streamer.py).
            if not 0.0 <= c <= 100.0:
                raise CheckpointError(
                    f"deployment.temporal_ensemble_coeff {c!r} is outside [0, 100], the "
                    "range the command streamer's temporal ensemble supports"
                )
            object.__setattr__(self, "temporal_ensemble_coeff", float(c))
        if not isinstance(self.source, str) or len(self.source) > 256:
            raise CheckpointError("deployment.source must be a string of at most 256 characters")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "n_action_steps": self.n_action_steps,
            "temporal_ensemble_coeff": self.temporal_ensemble_coeff,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DeploymentDefaults:
        """Parse the JSON form strictly (CheckpointError names the problem)."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"deployment must be an object, got {type(data).__name__}")
        if "n_action_steps" not in data:
            raise CheckpointError("deployment misses key 'n_action_steps'")
        unknown = set(data) - {"n_action_steps", "temporal_ensemble_coeff", "source"}
        if unknown:
            raise CheckpointError(f"deployment has unknown keys {sorted(unknown)}")
        return cls(
            n_action_steps=data["n_action_steps"],
            temporal_ensemble_coeff=data.get("temporal_ensemble_coeff"),
            source=data.get("source", ""),
        )


@dataclass
class CheckpointConfig:
    """Everything in ``config.json``, validated."""

    policy_type: str
    joint_names: list[str]
    cameras: list[CameraInput]
    fps: float
    chunk_size: int
    n_obs_steps: int
    limits: JointLimits
    normalization: NormalizationStats
    hyperparameters: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    deployment: DeploymentDefaults | None = None

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise CheckpointError(
                f"unsupported checkpoint format_version {self.format_version!r} "
                f"(this version of robot_policy_ros reads format_version {FORMAT_VERSION})"
            )
        if self.policy_type not in POLICY_TYPES:
            raise CheckpointError(
                f"unknown policy_type {self.policy_type!r} (expected one of {POLICY_TYPES})"
            )
        if not isinstance(self.joint_names, list):
            raise CheckpointError("joint_names must be a non-empty list")
        _check_joint_names(self.joint_names)
        if not isinstance(self.cameras, list) or not self.cameras:
            raise CheckpointError("cameras must be a non-empty list")
        if len(self.cameras) > MAX_CAMERAS:
            raise CheckpointError(
                f"cameras lists {len(self.cameras)} cameras (limit {MAX_CAMERAS})"
            )
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise CheckpointError(f"camera names have duplicates: {names}")
        if (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, (int, float))
            or not math.isfinite(self.fps)
            or self.fps <= 0
        ):
            raise CheckpointError(f"fps must be a positive finite number, got {self.fps!r}")
        self.fps = float(self.fps)
        for attr, high in (("chunk_size", MAX_CHUNK_SIZE), ("n_obs_steps", MAX_OBS_STEPS)):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high:
                raise CheckpointError(f"{attr} must be an integer in [1, {high}], got {v!r}")
        n = len(self.joint_names)
        if not isinstance(self.limits, JointLimits):
            raise CheckpointError(f"limits must be a JointLimits, got {type(self.limits).__name__}")
        if self.limits.names != tuple(self.joint_names):
            raise CheckpointError(
                f"limits are for joints {list(self.limits.names)} but joint_names is "
                f"{self.joint_names}"
            )
        if self.normalization.num_joints != n:
            raise CheckpointError(
                f"normalization has {self.normalization.num_joints} joints but joint_names has {n}"
            )
        if not isinstance(self.hyperparameters, dict):
            raise CheckpointError("hyperparameters must be an object")
        if not isinstance(self.provenance, dict):
            raise CheckpointError("provenance must be an object")
        if not isinstance(self.weights, dict):
            raise CheckpointError("weights must be an object")
        if self.deployment is not None:
            if not isinstance(self.deployment, DeploymentDefaults):
                raise CheckpointError(
                    f"deployment must be a DeploymentDefaults, got {type(self.deployment).__name__}"
                )
            if self.deployment.n_action_steps > self.chunk_size:
                raise CheckpointError(
                    f"deployment.n_action_steps {self.deployment.n_action_steps} exceeds "
                    f"chunk_size {self.chunk_size} (a chunk has no more actions to execute)"
                )

    @property
    def camera_names(self) -> list[str]:
        """Camera names in order."""
        return [c.name for c in self.cameras]

    @property
    def image_shapes(self) -> dict[str, tuple[int, int]]:
        """Camera name -> (H, W)."""
        return {c.name: c.shape for c in self.cameras}

    def joint_limits(self) -> JointLimits:
        """The stored limits (the one :class:`JointLimits` type, named by ``joint_names``)."""
        return self.limits

    def joint_limits_dict(self) -> dict[str, Any]:
        """Limits in the ``JointLimits.from_dict`` schema (core/joint_limits.py)."""
        return self.joint_limits().to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (key order as in the schema; ``deployment`` only when there is one)."""
        out = {
            "format_version": self.format_version,
            "policy_type": self.policy_type,
            "joint_names": list(self.joint_names),
            "cameras": [c.to_dict() for c in self.cameras],
            "fps": self.fps,
            "chunk_size": self.chunk_size,
            "n_obs_steps": self.n_obs_steps,
            "limits": self.limits.to_columns(),
            "normalization": self.normalization.to_dict(),
            "hyperparameters": self.hyperparameters,
            "provenance": self.provenance,
            "weights": self.weights,
        }
        if self.deployment is not None:
            out["deployment"] = self.deployment.to_dict()
        return out

    def to_json(self) -> str:
        """Pretty, diff-able JSON text (lists of numbers/strings on one line)."""
        return dumps_compact(self.to_dict()) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> CheckpointConfig:
        """Parse and validate the JSON form; CheckpointError names the first problem."""
        if not isinstance(data, Mapping):
            raise CheckpointError("config.json must hold a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"unsupported checkpoint format_version {version!r} "
                f"(this version of robot_policy_ros reads format_version {FORMAT_VERSION})"
            )
        missing = [k for k in _TOP_LEVEL_KEYS if k not in data]
        if missing:
            raise CheckpointError(f"config.json misses keys {missing}")
        unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            raise CheckpointError(f"config.json has unknown keys {unknown}")
        joints = data["joint_names"]
        if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
            raise CheckpointError("joint_names must be a list of strings")
        # Checked before anything is built from them (limits are named by these joints).
        _check_joint_names(joints)
        cams = data["cameras"]
        if not isinstance(cams, list):
            raise CheckpointError("cameras must be a list")
        if len(cams) > MAX_CAMERAS:
            raise CheckpointError(f"cameras lists {len(cams)} cameras (limit {MAX_CAMERAS})")
        n = len(joints)
        return cls(
            format_version=version,
            policy_type=data["policy_type"],
            joint_names=list(joints),
            cameras=[CameraInput.from_dict(c) for c in cams],
            fps=data["fps"],
            chunk_size=data["chunk_size"],
            n_obs_steps=data["n_obs_steps"],
            limits=limits_from_json(data["limits"], joints),
            normalization=NormalizationStats.from_dict(data["normalization"], n),
            hyperparameters=data["hyperparameters"],
            provenance=data["provenance"],
            weights=data["weights"],
            deployment=(
                None
                if data.get("deployment") is None
                else DeploymentDefaults.from_dict(data["deployment"])
            ),
        )


def dumps_compact(obj: Any, indent: int = 2, _level: int = 0) -> str:
    """JSON with nested objects indented but lists of scalars kept on one line."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [
            f"{inner}{json.dumps(str(k))}: {dumps_compact(v, indent, _level + 1)}"
            for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in obj):
            return json.dumps(list(obj), allow_nan=False)
        items = [f"{inner}{dumps_compact(v, indent, _level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def refuse_pickle_path(path: Path) -> None:
    """Raise CheckpointError if ``path`` is (or only holds) a pickle-based checkpoint file."""
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path} is a pickle-based PyTorch file; robot_policy_ros never unpickles "
            "checkpoints because a crafted pickle can run arbitrary code. Use a checkpoint "
            f"directory with {WEIGHTS_FILE} + {CONFIG_FILE} (see `robot-policy init-checkpoint`, "
            "or `robot-policy import-weights` to convert trusted weights)."
        )


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint directory for ``path`` (the directory or its config.json)."""
    p = Path(path).expanduser()
    refuse_pickle_path(p)
    if p.is_file() and p.name == CONFIG_FILE:
        p = p.parent
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if not p.is_dir():
        raise CheckpointError(
            f"checkpoint {p} is not a directory (expected a directory with {WEIGHTS_FILE} "
            f"and {CONFIG_FILE})"
        )
    if not (p / CONFIG_FILE).is_file():
        pickles = sorted(q.name for q in p.iterdir() if q.suffix.lower() in PICKLE_SUFFIXES)
        hint = (
            f"; it holds pickle-based files {pickles}, which are never loaded (a crafted "
            "pickle can run code)"
            if pickles
            else ""
        )
        raise CheckpointError(f"checkpoint {p} has no {CONFIG_FILE}{hint}")
    return p


def read_checkpoint_config(path: str | Path) -> CheckpointConfig:
    """Read and validate ``config.json`` of the checkpoint at ``path`` (directory or file)."""
    directory = resolve_checkpoint_dir(path)
    cfg_path = directory / CONFIG_FILE
    # Regular file inside the directory (no symlink), size-bounded before parsing, no pickle.
    data = read_json_file(directory, CONFIG_FILE)
    try:
        return CheckpointConfig.from_dict(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from None


def parse_camera_list(text: str) -> list[CameraInput]:
    """Parse ``name:HxW[,name:HxW]`` (the CLI form)."""
    cams = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, sep, size = item.partition(":")
        h, x, w = size.lower().partition("x")
        if not sep or not x or not h.isdigit() or not w.isdigit():
            raise CheckpointError(
                f"camera {item!r} must look like name:HEIGHTxWIDTH, e.g. front:224x224"
            )
        cams.append(CameraInput(name=name, height=int(h), width=int(w)))
    if not cams:
        raise CheckpointError("at least one camera is required")
    return cams


def as_camera_inputs(cameras: Mapping[str, Sequence[int]] | Sequence[Any]) -> list[CameraInput]:
    """Normalise the accepted camera forms to a list of CameraInput.

    Accepts {name: (H, W)}, a list of CameraInput, or a list of their dict forms.
    """
    if isinstance(cameras, Mapping):
        out = []
        for name, shape in cameras.items():
            if len(shape) != 2:
                raise CheckpointError(f"camera {name!r}: shape must be (H, W), got {shape!r}")
            out.append(CameraInput(name=name, height=int(shape[0]), width=int(shape[1])))
        return out
    out = []
    for c in cameras:
        out.append(c if isinstance(c, CameraInput) else CameraInput.from_dict(c))
    return out
