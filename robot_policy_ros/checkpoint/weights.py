"""Safe policy checkpoints: ``model.safetensors`` + ``config.json`` in a directory.

Loading never unpickles. ``config.json`` is read and validated completely first
(:mod:`robot_policy_ros.checkpoint.config`), then the model is built from it, then the
weights are read with ``safetensors.torch.load_file`` and compared key by key and shape by
shape with the model (missing or extra keys, shape or dtype mismatches, non-finite values
and a SHA-256 that does not match the one recorded in config.json are all refused); only
then is the policy returned. Any problem is a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

import robot_policy_ros
from robot_policy_ros.checkpoint.config import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointConfig,
    CheckpointError,
    DeploymentDefaults,
    read_checkpoint_config,
    resolve_checkpoint_dir,
)
from robot_policy_ros.checkpoint.files import (
    MAX_WEIGHTS_BYTES,
    TensorEntry,
    open_checkpoint_file,
    read_safetensors_header,
)
from robot_policy_ros.policies.base import Policy, check_device_dtype, parse_dtype
from robot_policy_ros.policies.config import CONFIG_CLASSES
from robot_policy_ros.policies.factory import build_policy

# Parameters + buffers a loaded model may have (ResNet18 ACT is ~5e7); bounds the allocation.
MAX_PARAMETERS = 1_000_000_000

__all__ = [
    "CheckpointError",
    "file_sha256",
    "load_checkpoint",
    "load_config_and_weights",
    "save_checkpoint",
]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Write via a temporary file in the same directory, then rename (no torn files)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are shared read-only data
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _state_dict_for_saving(policy: Policy) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in policy.state_dict().items():
        t = value.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(torch.float32)  # checkpoints are always float32, whatever ran
        out[key] = t.contiguous().clone()  # clone: safetensors refuses shared storage
    return out


def checkpoint_config_of(
    policy: Policy, provenance: dict[str, Any] | None = None, weights: dict | None = None
) -> CheckpointConfig:
    """The CheckpointConfig describing ``policy`` (what save_checkpoint writes)."""
    cfg = policy.config
    prov: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "robot_policy_ros_version": robot_policy_ros.__version__,
        "torch_version": torch.__version__.split("+")[0],
    }
    if cfg.pretrained_backbone_weights:
        prov["pretrained_backbone_weights"] = str(cfg.pretrained_backbone_weights)
    prov.update(provenance or {})
    return CheckpointConfig(
        format_version=FORMAT_VERSION,
        policy_type=policy.policy_type,
        joint_names=list(cfg.joint_names),
        cameras=list(cfg.cameras),
        fps=cfg.fps,
        chunk_size=cfg.chunk_size,
        n_obs_steps=cfg.n_obs_steps,
        limits=policy.limits,
        normalization=policy.normalization_stats,
        hyperparameters=cfg.hyperparameters(),
        provenance=prov,
        weights=weights or {},
    )


def save_checkpoint(
    policy: Policy,
    out_dir: str | Path,
    provenance: dict[str, Any] | None = None,
    deployment: DeploymentDefaults | None = None,
) -> Path:
    """Write ``policy`` to the directory ``out_dir`` (created if needed); returns its path.

    ``provenance``: free-form JSON-able facts (dataset, steps, git commit, ...), merged over
    the defaults (creation time and versions). ``deployment``: the config.json
    ``deployment`` section (how the policy is meant to be run), None for none.
    """
    from safetensors.torch import save_file

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    tensors = _state_dict_for_saving(policy)
    # One metadata key only: safetensors keeps metadata in a hash map, so several keys would
    # be written in a random order and identical weights would hash differently.
    metadata = {"format": "pt"}
    _atomic_write(out / WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata=metadata))
    weights = {"file": WEIGHTS_FILE, "sha256": file_sha256(out / WEIGHTS_FILE)}
    config = checkpoint_config_of(policy, provenance, weights)
    if deployment is not None:  # replace() validates it against the chunk size
        config = dataclasses.replace(config, deployment=deployment)
    try:
        text = config.to_json()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"provenance/config is not JSON-serialisable: {exc}") from None
    _atomic_write(out / CONFIG_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return out


def _read_weights(
    directory: Path, config: CheckpointConfig, expected: dict[str, tuple[str, tuple[int, ...]]]
) -> dict[str, torch.Tensor]:
    """Hash-check, header-check and load the weights; ``expected``: name -> (kind, shape).

    The file is opened once with the checks of checkpoint.files (regular file inside the
    directory, size bound, no pickle magic); its sha256 and its safetensors header are read
    from that descriptor, and the header must declare exactly the model's tensors and
    shapes before the safetensors library is allowed to map it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = config.weights
    missing = {"file", "sha256"} - set(weights)
    if missing:
        raise CheckpointError(f"config.json 'weights' misses keys {sorted(missing)}")
    unknown = set(weights) - {"file", "sha256"}
    if unknown:
        raise CheckpointError(f"config.json 'weights' has unknown keys {sorted(unknown)}")
    if weights["file"] != WEIGHTS_FILE:
        raise CheckpointError(
            f"weights file must be {WEIGHTS_FILE!r} (safetensors), config.json names "
            f"{weights['file']!r}; pickle-based weight files are never loaded"
        )
    path = directory / WEIGHTS_FILE
    fd, size = open_checkpoint_file(directory, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)
    try:
        header = read_safetensors_header(fd, size, str(path))
        os.lseek(fd, 0, os.SEEK_SET)
        h = hashlib.sha256()
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            h.update(block)
        digest = h.hexdigest()
    finally:
        os.close(fd)
    if digest != weights["sha256"]:
        raise CheckpointError(
            f"{path} does not match the sha256 recorded in config.json (file {digest[:12]}..., "
            f"recorded {str(weights['sha256'])[:12]}...): the weights were modified or corrupted"
        )
    _check_header_against_model(path, header, expected)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from None


def _check_header_against_model(
    path: Path, header: dict[str, TensorEntry], expected: dict[str, tuple[str, tuple[int, ...]]]
) -> None:
    """The header must declare the model's tensors: same names, shapes, float-ness."""
    found = {name: (e.dtype in _FLOAT_DTYPES, e.shape) for name, e in header.items()}
    want = {name: (kind == "float", shape) for name, (kind, shape) in expected.items()}
    problems = []
    missing = sorted(set(want) - set(found))
    extra = sorted(set(found) - set(want))
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    for key in sorted(set(want) & set(found)):
        if found[key][1] != want[key][1]:
            problems.append(
                f"{key!r} has shape {found[key][1]} in the file, the model expects {want[key][1]}"
            )
        elif found[key][0] != want[key][0]:
            problems.append(f"{key!r} has dtype {header[key].dtype}, the model expects another")
    if problems:
        shown = "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "")
        raise CheckpointError(
            f"{path}: weights do not match the model described by config.json: {shown}"
        )


_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64", "F8_E5M2", "F8_E4M3"})


def _expected_tensors(
    directory: Path, policy_config: Any, config: CheckpointConfig
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Names and shapes of the model's state dict, built on the meta device (no memory).

    Refuses a model over MAX_PARAMETERS before any real allocation: hyperparameters such as
    hidden sizes of 10^6 would otherwise allocate 10^12 floats while building.
    """
    try:
        with torch.device("meta"):
            shadow = build_policy(policy_config, stats=config.normalization, limits=config.limits)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: cannot build the model: {exc}") from None
    state = shadow.state_dict()
    total = sum(t.numel() for t in state.values())
    if total > MAX_PARAMETERS:
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: the hyperparameters describe a model with {total} "
            f"parameters and buffers (limit {MAX_PARAMETERS}); refused before allocating it"
        )
    return {
        k: ("float" if t.is_floating_point() else "other", tuple(t.shape)) for k, t in state.items()
    }


def _check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    for key in sorted(set(expected) & set(found)):
        e, f = expected[key], found[key]
        if tuple(e.shape) != tuple(f.shape):
            problems.append(
                f"{key!r} has shape {tuple(f.shape)} in the file, the model expects "
                f"{tuple(e.shape)}"
            )
        elif e.is_floating_point() != f.is_floating_point():
            problems.append(f"{key!r} has dtype {f.dtype}, the model expects {e.dtype}")
        elif f.is_floating_point() and not torch.isfinite(f).all():
            problems.append(f"{key!r} has non-finite values")
    if problems:
        shown = "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "")
        raise CheckpointError(f"weights do not match the model described by config.json: {shown}")


def load_config_and_weights(path: str | Path) -> tuple[CheckpointConfig, Policy]:
    """Validate everything and return (config, policy on CPU, float32, eval mode)."""
    directory = resolve_checkpoint_dir(path)
    config = read_checkpoint_config(directory)
    cls = CONFIG_CLASSES[config.policy_type]
    try:
        policy_config = cls.from_hyperparameters(
            config.joint_names, config.cameras, config.fps, config.hyperparameters
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory / CONFIG_FILE}: hyperparameters: {exc}") from None
    for attr in ("chunk_size", "n_obs_steps"):
        if getattr(policy_config, attr) != getattr(config, attr):
            raise CheckpointError(
                f"{directory / CONFIG_FILE}: {attr} is {getattr(config, attr)} but the "
                f"hyperparameters give {getattr(policy_config, attr)}"
            )
    expected = _expected_tensors(directory, policy_config, config)
    tensors = _read_weights(directory, config, expected)
    try:
        policy = build_policy(policy_config, stats=config.normalization, limits=config.limits)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: cannot build the model: {exc}") from None
    _check_state_dict(policy.state_dict(), tensors)
    policy.load_state_dict(tensors, strict=True)
    policy.eval()
    return config, policy


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None
) -> Policy:
    """Load a checkpoint directory (or its config.json) for inference.

    Args:
        path: the checkpoint directory. A .pt/.pth/.ckpt file is refused (never unpickled).
        device: "cpu", "cuda" or "cuda:N".
        dtype: None/"float32", or "float16"/"bfloat16" (CUDA only).

    Returns the policy in eval mode on ``device``. Raises CheckpointError on any problem.
    """
    try:
        dt = parse_dtype(dtype)
        check_device_dtype(device, dt)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    _, policy = load_config_and_weights(path)
    policy.to_runtime(device, dt)
    return policy


def import_weights(
    weights_file: str | Path, like: str | Path, out_dir: str | Path, key: str | None = None
) -> Path:
    """Convert trusted PyTorch weights (.pt/.pth/.ckpt) into a safe checkpoint.

    Only on explicit request (``robot-policy import-weights --weights-only``): the file is read
    with ``torch.load(weights_only=True)`` (a restricted unpickler that refuses arbitrary
    objects), its state dict must match the model described by the checkpoint ``like``
    exactly (keys and shapes), and the result is written as safetensors + config.json with
    ``like``'s joints, cameras, limits and statistics.

    Args:
        weights_file: the pickle-based weights file.
        like: a valid checkpoint directory describing the same model.
        out_dir: where to write the new checkpoint.
        key: entry holding the state dict inside the file (tries "state_dict", "model", the
            top level when None).
    """
    src = Path(weights_file).expanduser()
    if not src.is_file():
        raise CheckpointError(f"{src} does not exist")
    config, policy = load_config_and_weights(like)
    try:
        data = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # any refusal of the restricted unpickler
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{src}: refused by torch.load(weights_only=True): {first}") from None
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise CheckpointError(f"{src} has no entry {key!r}")
        data = data[key]
    elif isinstance(data, dict):
        for candidate in ("state_dict", "model"):
            if isinstance(data.get(candidate), dict):
                data = data[candidate]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{src} does not hold a state dict of tensors")
    tensors = {k: v.detach().to("cpu") for k, v in data.items()}
    _check_state_dict(policy.state_dict(), tensors)
    policy.load_state_dict(tensors, strict=True)
    provenance = dict(config.provenance)
    provenance.update(imported_from=str(src), imported_sha256=file_sha256(src))
    # The same model as ``like``: it runs the same way (its deployment section, if any).
    return save_checkpoint(policy, out_dir, provenance=provenance, deployment=config.deployment)


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """Validated summary for ``robot-policy inspect`` (loads the weights on the CPU)."""
    directory = resolve_checkpoint_dir(path)
    config, policy = load_config_and_weights(directory)
    files = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    return {
        "path": str(directory),
        "format_version": config.format_version,
        "policy_type": config.policy_type,
        "joint_names": config.joint_names,
        "cameras": [c.to_dict() for c in config.cameras],
        "fps": config.fps,
        "chunk_size": config.chunk_size,
        "n_obs_steps": config.n_obs_steps,
        "num_parameters": policy.num_parameters(),
        "files": files,
        "limits": config.joint_limits_dict()["joints"],
        "hyperparameters": config.hyperparameters,
        "provenance": config.provenance,
    }


def dumps_summary(summary: dict[str, Any]) -> str:
    """JSON text of a summary (for ``inspect --json``)."""
    return json.dumps(summary, indent=2)
