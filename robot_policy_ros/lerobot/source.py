"""Read and validate a LeRobot ``pretrained_model`` folder without torch or LeRobot.

Only ``config.json``, ``policy_preprocessor.json`` / ``policy_postprocessor.json`` and
safetensors files are read (with ``safetensors.numpy``); a folder that would need anything
else (pickle weights, PEFT adapters, unknown processor steps) is refused with a
:class:`LeRobotImportError` that says why.

Two layouts are understood:
- LeRobot >= 0.4: the normalisation statistics are the state files of the processor steps
  registered as ``normalizer_processor`` (preprocessor) and ``unnormalizer_processor``
  (postprocessor), found by registry name, not by step index.
- older LeRobot: buffers ``normalize_inputs.buffer_<key>.<stat>``,
  ``normalize_targets.*`` and ``unnormalize_outputs.*`` inside ``model.safetensors``
  (``<key>`` with dots replaced by underscores), the modes in ``normalization_mapping``.

Normalisation is reduced to one affine map per feature, in LeRobot's units:
``normalised = (x - offset) / scale`` on the way in and ``x = n * scale + offset`` on the way
out, with LeRobot's eps semantics (0.6: MEAN_STD divides by std + eps on the way in and
multiplies by std on the way out; MIN_MAX replaces a zero range by eps).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESSOR = "policy_preprocessor.json"
POSTPROCESSOR = "policy_postprocessor.json"
NORMALIZER_STEP = "normalizer_processor"
UNNORMALIZER_STEP = "unnormalizer_processor"
# Steps that do not change the numbers the policy sees (renaming, batching, device moves).
NEUTRAL_STEPS = ("rename_observations_processor", "to_batch_processor", "device_processor")
SUPPORTED_MODES = ("MEAN_STD", "MIN_MAX", "IDENTITY")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy")
STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."
MAX_JSON_BYTES = 1 << 20


class LeRobotImportError(ValueError):
    """A LeRobot folder that cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class Affine:
    """``normalised = (x - offset) / scale`` per element (arrays of the feature's shape)."""

    offset: np.ndarray
    scale: np.ndarray
    mode: str


@dataclass
class LeRobotSource:
    """A validated LeRobot folder: its config, weights (numpy) and normalisation maps."""

    path: Path
    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    layout: str  # "processor" or "legacy"
    state_norm: Affine
    action_norm: Affine  # the postprocessor's (unnormalise) map
    image_norm: dict[str, Affine]  # LeRobot image key -> map over (3,) channels
    file_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def policy_type(self) -> str:
        """LeRobot's ``type`` field (e.g. "act")."""
        return str(self.config.get("type"))

    @property
    def image_keys(self) -> list[str]:
        """LeRobot image feature keys in the policy's order (the order of input_features)."""
        return [k for k, v in self.config["input_features"].items() if v.get("type") == "VISUAL"]

    def image_shape(self, key: str) -> tuple[int, int]:
        """(H, W) of an image feature."""
        shape = self.config["input_features"][key]["shape"]
        return int(shape[1]), int(shape[2])

    @property
    def state_dim(self) -> int:
        """Length of observation.state."""
        return int(self.config["input_features"][STATE_KEY]["shape"][0])


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise LeRobotImportError(
            f"{path}: larger than {MAX_JSON_BYTES} bytes, not a LeRobot config"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise LeRobotImportError(f"{path}: not valid JSON: {exc}") from None


def _no_constant(token: str) -> float:
    raise ValueError(f"{token} is not allowed")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if path.is_symlink():
        raise LeRobotImportError(f"{path} is a symbolic link; copy the real file into the folder")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise LeRobotImportError(f"{path}: not a valid safetensors file: {exc}") from None
    for key, arr in tensors.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise LeRobotImportError(f"{path}: tensor {key!r} has non-finite values")
    return tensors


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise LeRobotImportError(
            f"{path} is not a directory; give LeRobot's pretrained_model folder "
            "(e.g. outputs/train/<run>/checkpoints/last/pretrained_model)"
        )
    if (path / "adapter_config.json").exists() or (path / "adapter_model.safetensors").exists():
        raise LeRobotImportError(
            f"{path} holds a PEFT adapter, not a full policy: merge the adapter into the base "
            "model in LeRobot (merge_and_unload) and save_pretrained the merged policy"
        )
    if not (path / CONFIG).is_file():
        raise LeRobotImportError(f"{path} has no {CONFIG}: not a LeRobot pretrained_model folder")
    if not (path / WEIGHTS).is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f"; it has {pickles}, pickle-based files that are never loaded (they can run code)"
            if pickles
            else ""
        )
        raise LeRobotImportError(f"{path} has no {WEIGHTS}{hint}")


def _check_feature(name: str, value: Any, want_type: str | None = None) -> None:
    ok = isinstance(value, dict) and isinstance(value.get("shape"), list) and value["shape"]
    ok = ok and all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value["shape"]
    )
    if not ok:
        raise LeRobotImportError(f"config.json: feature {name!r} has no valid shape: {value!r}")
    if want_type is not None and value.get("type") != want_type:
        raise LeRobotImportError(
            f"config.json: feature {name!r} has type {value.get('type')!r}, expected {want_type}"
        )


def _validate_features(config: dict[str, Any]) -> None:
    inputs = config.get("input_features")
    outputs = config.get("output_features")
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        raise LeRobotImportError("config.json: input_features / output_features are missing")
    for key, value in inputs.items():
        kind = value.get("type") if isinstance(value, dict) else None
        if kind == "ENV":
            raise LeRobotImportError(
                f"config.json: input {key!r} is an environment state (ENV): a simulator-only "
                "input that a robot does not provide; not supported"
            )
        if kind == "STATE" and key != STATE_KEY:
            raise LeRobotImportError(
                f"config.json: state input {key!r}: only one state input, {STATE_KEY!r}, is "
                "supported"
            )
        if kind == "VISUAL":
            if not key.startswith(IMAGE_PREFIX):
                raise LeRobotImportError(
                    f"config.json: image input {key!r} is not under {IMAGE_PREFIX}"
                )
            _check_feature(key, value)
            if len(value["shape"]) != 3 or value["shape"][0] != 3:
                raise LeRobotImportError(
                    f"config.json: image {key!r} has shape {value['shape']}, expected [3, H, W] RGB"
                )
        elif kind not in ("STATE",):
            raise LeRobotImportError(f"config.json: input {key!r} has unsupported type {kind!r}")
    if STATE_KEY not in inputs:
        raise LeRobotImportError(
            f"config.json: no {STATE_KEY!r} input: the policy must read the joint positions"
        )
    _check_feature(STATE_KEY, inputs[STATE_KEY], "STATE")
    if set(outputs) != {ACTION_KEY}:
        raise LeRobotImportError(
            f"config.json: outputs {sorted(outputs)}: exactly one output, {ACTION_KEY!r}, "
            "is supported"
        )
    _check_feature(ACTION_KEY, outputs[ACTION_KEY], "ACTION")
    s, a = inputs[STATE_KEY]["shape"], outputs[ACTION_KEY]["shape"]
    if len(s) != 1 or s != a:
        raise LeRobotImportError(
            f"config.json: state shape {s} differs from action shape {a}: the policy must command "
            "the joints it reads (absolute joint positions, one per joint); end-effector or "
            "delta actions are not supported"
        )
    if not any(v.get("type") == "VISUAL" for v in inputs.values()):
        raise LeRobotImportError("config.json: the policy reads no camera; at least one is needed")


def _step(pipeline: dict[str, Any], registry_name: str, file: Path) -> dict[str, Any] | None:
    steps = pipeline.get("steps")
    if not isinstance(steps, list):
        raise LeRobotImportError(f"{file}: no 'steps' list")
    found = None
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("registry_name"), str):
            raise LeRobotImportError(
                f"{file}: step {i} has no registry_name (a custom class step cannot be imported)"
            )
        name = step["registry_name"]
        if name == registry_name:
            if found is not None:
                raise LeRobotImportError(f"{file}: more than one {registry_name} step")
            found = step
        elif name not in (*NEUTRAL_STEPS, NORMALIZER_STEP, UNNORMALIZER_STEP):
            raise LeRobotImportError(
                f"{file}: step {i} {name!r} is not supported (it may change the numbers the "
                f"policy sees); supported steps: {(*NEUTRAL_STEPS, registry_name)}"
            )
    return found


def _mode_of(norm_map: dict[str, Any], feature_type: str, where: str) -> str:
    mode = norm_map.get(feature_type, "IDENTITY")
    if mode not in SUPPORTED_MODES:
        raise LeRobotImportError(
            f"{where}: {feature_type} normalisation {mode!r} is not supported (only "
            f"{SUPPORTED_MODES}); quantile normalisation is not supported yet: retrain with "
            "MEAN_STD or MIN_MAX"
        )
    return str(mode)


def affine_of(
    mode: str, stats: dict[str, np.ndarray] | None, eps: float, inverse: bool, where: str
) -> Affine | None:
    """LeRobot's (un)normalisation of one feature as an affine map (None: identity).

    ``stats`` missing means LeRobot leaves the feature unchanged, as it does.
    """
    if mode == "IDENTITY" or stats is None:
        return None
    if mode == "MEAN_STD":
        if "mean" not in stats or "std" not in stats:
            raise LeRobotImportError(f"{where}: MEAN_STD needs mean and std statistics")
        mean = stats["mean"].astype(np.float64)
        std = stats["std"].astype(np.float64)
        if (std <= 0).any():
            raise LeRobotImportError(
                f"{where}: std {std.ravel().tolist()} has values <= 0 (degenerate statistics: "
                "a joint that never moved in the dataset); recompute the statistics"
            )
        return Affine(mean, std if inverse else std + eps, mode)
    if "min" not in stats or "max" not in stats:
        raise LeRobotImportError(f"{where}: MIN_MAX needs min and max statistics")
    lo = stats["min"].astype(np.float64)
    hi = stats["max"].astype(np.float64)
    if (hi <= lo).any():
        raise LeRobotImportError(
            f"{where}: max <= min for some elements (degenerate statistics: min "
            f"{lo.ravel().tolist()}, max {hi.ravel().tolist()}); recompute the statistics"
        )
    half = (hi - lo) / 2.0
    return Affine(lo + half, half, mode)


def _split_stats(flat: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in flat.items():
        feature, _, stat = key.rpartition(".")
        out.setdefault(feature, {})[stat] = value
    return out


def _processor_norms(
    path: Path, config: dict[str, Any]
) -> tuple[Affine | None, Affine | None, dict]:
    pre_file, post_file = path / PREPROCESSOR, path / POSTPROCESSOR
    pre, post = _read_json(pre_file), _read_json(post_file)
    if not isinstance(pre, dict) or not isinstance(post, dict):
        raise LeRobotImportError(f"{path}: processor files must hold JSON objects")
    norm = _step(pre, NORMALIZER_STEP, pre_file)
    unnorm = _step(post, UNNORMALIZER_STEP, post_file)
    if norm is None or unnorm is None:
        raise LeRobotImportError(
            f"{path}: the preprocessor needs a {NORMALIZER_STEP} step and the postprocessor an "
            f"{UNNORMALIZER_STEP} step (found by registry name); without them LeRobot's actions "
            "would not be in joint units"
        )

    def stats_of(step: dict[str, Any], file: Path) -> tuple[dict, dict, float]:
        cfg = step.get("config") or {}
        eps = cfg.get("eps", 1e-8)
        if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise LeRobotImportError(f"{file}: eps {eps!r} is not a finite number >= 0")
        state_file = step.get("state_file")
        stats: dict = {}
        if state_file is not None:
            if not isinstance(state_file, str) or Path(state_file).name != state_file:
                raise LeRobotImportError(
                    f"{file}: state_file {state_file!r} must be a plain file name"
                )
            if not state_file.endswith(".safetensors"):
                raise LeRobotImportError(f"{file}: state_file {state_file!r} is not safetensors")
            stats = _split_stats(_read_safetensors(path / state_file))
        keys = cfg.get("normalize_observation_keys")
        if keys is not None:
            stats = {k: v for k, v in stats.items() if k in keys or k == ACTION_KEY}
        return stats, cfg.get("norm_map") or {}, float(eps)

    stats, norm_map, eps = stats_of(norm, pre_file)
    features = (norm.get("config") or {}).get("features") or config["input_features"]
    state = affine_of(
        _mode_of(norm_map, "STATE", str(pre_file)),
        stats.get(STATE_KEY),
        eps,
        False,
        f"{pre_file}: {STATE_KEY}",
    )
    images = {}
    for key in [k for k, v in config["input_features"].items() if v.get("type") == "VISUAL"]:
        ftype = (features.get(key) or {}).get("type", "VISUAL")
        images[key] = affine_of(
            _mode_of(norm_map, ftype, str(pre_file)),
            stats.get(key),
            eps,
            False,
            f"{pre_file}: {key}",
        )
    ustats, umap, ueps = stats_of(unnorm, post_file)
    action = affine_of(
        _mode_of(umap, "ACTION", str(post_file)),
        ustats.get(ACTION_KEY),
        ueps,
        True,
        f"{post_file}: {ACTION_KEY}",
    )
    return state, action, images


def _legacy_norms(config: dict[str, Any], weights: dict[str, np.ndarray]) -> tuple:
    norm_map = config.get("normalization_mapping") or {}
    if not isinstance(norm_map, dict):
        raise LeRobotImportError("config.json: normalization_mapping must be an object")

    def buffers(prefix: str, key: str) -> dict[str, np.ndarray] | None:
        base = f"{prefix}.buffer_{key.replace('.', '_')}."
        found = {k[len(base) :]: v for k, v in weights.items() if k.startswith(base)}
        return found or None

    where = "model.safetensors (normalisation buffers)"
    state = affine_of(
        _mode_of(norm_map, "STATE", where),
        buffers("normalize_inputs", STATE_KEY),
        1e-8,
        False,
        f"{where}: {STATE_KEY}",
    )
    images = {
        key: affine_of(
            _mode_of(norm_map, "VISUAL", where),
            buffers("normalize_inputs", key),
            1e-8,
            False,
            f"{where}: {key}",
        )
        for key, v in config["input_features"].items()
        if v.get("type") == "VISUAL"
    }
    action = affine_of(
        _mode_of(norm_map, "ACTION", where),
        buffers("unnormalize_outputs", ACTION_KEY),
        1e-8,
        True,
        f"{where}: {ACTION_KEY}",
    )
    return state, action, images


def _identity(shape: tuple[int, ...]) -> Affine:
    return Affine(np.zeros(shape), np.ones(shape), "IDENTITY")


def read_lerobot_folder(path: str | Path) -> LeRobotSource:
    """Read and validate ``path``; raises LeRobotImportError naming the problem."""
    root = Path(path).expanduser()
    _check_folder(root)
    config = _read_json(root / CONFIG)
    if not isinstance(config, dict):
        raise LeRobotImportError(f"{root / CONFIG}: must hold a JSON object")
    if config.get("use_peft"):
        raise LeRobotImportError(
            "config.json: use_peft is true (a PEFT adapter): merge it into the base model first"
        )
    _validate_features(config)
    weights = _read_safetensors(root / WEIGHTS)
    # torch.compile wraps modules: strip its prefix wherever it appears.
    weights = {k.replace("_orig_mod.", ""): v for k, v in weights.items()}
    has_processors = (root / PREPROCESSOR).is_file() or (root / POSTPROCESSOR).is_file()
    if has_processors:
        if not ((root / PREPROCESSOR).is_file() and (root / POSTPROCESSOR).is_file()):
            raise LeRobotImportError(f"{root}: needs both {PREPROCESSOR} and {POSTPROCESSOR}")
        layout = "processor"
        state, action, images = _processor_norms(root, config)
    else:
        if not any(k.startswith(("normalize_inputs.", "unnormalize_outputs.")) for k in weights):
            raise LeRobotImportError(
                f"{root}: neither processor files ({PREPROCESSOR}, {POSTPROCESSOR}) nor "
                "normalisation buffers in model.safetensors: the statistics are missing"
            )
        layout = "legacy"
        state, action, images = _legacy_norms(config, weights)
    j = int(config["input_features"][STATE_KEY]["shape"][0])
    norms = {}
    for name, aff, shape in (("state", state, (j,)), ("action", action, (j,))):
        aff = aff or _identity(shape)
        if aff.offset.shape != shape or aff.scale.shape != shape:
            raise LeRobotImportError(
                f"{name} statistics have shape {aff.offset.shape}, expected {shape}"
            )
        norms[name] = aff
    image_norm = {}
    for key, aff in images.items():
        aff = aff or _identity((3,))
        try:
            aff = Affine(aff.offset.reshape(3), aff.scale.reshape(3), aff.mode)
        except ValueError:
            raise LeRobotImportError(
                f"{key}: image statistics have shape {aff.offset.shape}; only per-channel "
                "statistics (3 values or (3, 1, 1)) are supported"
            ) from None
        image_norm[key] = aff
    shas = {
        p.name: sha256_of(p)
        for p in sorted(root.iterdir())
        if p.is_file() and (p.suffix in (".json", ".safetensors"))
    }
    return LeRobotSource(
        path=root,
        config=config,
        weights=weights,
        layout=layout,
        state_norm=norms["state"],
        action_norm=norms["action"],
        image_norm=image_norm,
        file_sha256=shas,
    )
