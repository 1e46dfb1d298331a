"""ONNX graphs of a policy's network, cached by the hash of what determines them.

Graphs (fixed shapes, batch 1; inputs are the policy's observation history as kept by
``Policy.stage_observation``):

- MLP / ACT, ``chunk``: (state float32 (n_obs, J) joint units, image_i uint8
  (n_obs, H, W, 3) per camera) -> actions float32 (chunk_size, J) joint units. Scaling to
  [0, 1], ImageNet and state normalisation and action unnormalisation are inside the graph.
- Diffusion, ``cond``: the same inputs -> global conditioning (1, G); ``denoiser``:
  (sample (1, horizon, J) float32, timestep (1,) int64, cond (1, G)) -> U-Net output. The
  sampler loop stays in torch (``DiffusionPolicy.denoise``), sharing the seeded noise.

Cache: ``<checkpoint dir>/onnx_cache/`` when writable, else ``$XDG_CACHE_HOME/robot_policy_ros``
(``~/.cache/robot_policy_ros``). Each ``.onnx`` file has a ``.json`` sidecar holding the
digest it was built from and the sha256 of the ONNX file; a cached graph is used only when
both match (the digest of the loaded weights, recomputed, and the file's hash, recomputed),
otherwise it is rebuilt. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_policy_ros.policies.base import Policy

EXPORT_FORMAT = 1  # bump when the graphs' inputs/outputs or their construction change
OPSET = 17
CACHE_FOLDER = "onnx_cache"


class ExportError(RuntimeError):
    """A graph could not be built, or a cached one failed its checks."""


def policy_digest(policy: Policy) -> str:
    """sha256 over the export format, torch version, config, every parameter and buffer.

    The parameters are those loaded from the checkpoint's safetensors (whose file hash
    load_checkpoint verified); the buffers include the normalisation statistics.
    """
    h = hashlib.sha256()
    config = dataclasses.asdict(policy.config)
    header = {"format": EXPORT_FORMAT, "torch": torch.__version__, "config": config}
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    tensors = dict(policy.named_parameters())
    tensors.update(policy.named_buffers())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/robot_policy_ros, or ~/.cache/robot_policy_ros."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "robot_policy_ros"


def cache_dir_for(checkpoint: str | Path | None) -> Path:
    """Where graphs of ``checkpoint`` are cached: beside it if writable, else the user cache."""
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        folder = (ckpt if ckpt.is_dir() else ckpt.parent) / CACHE_FOLDER
        try:
            folder.mkdir(exist_ok=True)
            if os.access(folder, os.W_OK | os.X_OK):
                return folder
        except OSError:
            pass  # read-only checkpoint folder: fall through to the user cache
    return user_cache_dir()


class _ChunkGraph(nn.Module):
    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.policy = policy
        self.cameras = list(policy.camera_names)

    def forward(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        return self.policy.chunk_from_history(dict(zip(self.cameras, images, strict=True)), state)


class _CondGraph(_ChunkGraph):
    def forward(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        history = dict(zip(self.cameras, images, strict=True))
        return self.policy.global_cond_from_history(history, state)


class _DenoiserGraph(nn.Module):
    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.unet = policy.unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor):
        return self.unet(sample, timestep, cond)


def history_inputs(policy: Policy) -> dict[str, torch.Tensor]:
    """Example inputs of the history graphs (zeros), named as in the graphs."""
    n = policy.n_obs_steps
    out = {"state": torch.zeros((n, policy.num_joints), dtype=torch.float32)}
    for i, cam in enumerate(policy.config.cameras):
        out[f"image_{i}"] = torch.zeros((n, cam.height, cam.width, 3), dtype=torch.uint8)
    return out


def graph_specs(policy: Policy) -> dict[str, tuple[nn.Module, dict[str, torch.Tensor], str]]:
    """Graph name -> (module, named example inputs, output name) for the policy's family."""
    hist = history_inputs(policy)
    if policy.policy_type != "diffusion":
        return {"chunk": (_ChunkGraph(policy), hist, "actions")}
    c = policy.config
    with torch.inference_mode():
        cond = _CondGraph(policy)(*hist.values())
    den_inputs = {
        "sample": torch.zeros((1, c.horizon, c.num_joints), dtype=torch.float32),
        "timestep": torch.zeros((1,), dtype=torch.int64),
        "cond": torch.zeros_like(cond),
    }
    return {
        "cond": (_CondGraph(policy), hist, "cond"),
        "denoiser": (_DenoiserGraph(policy), den_inputs, "eps"),
    }


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], output: str, dest: Path) -> None:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(dest),
            input_names=list(inputs),
            output_names=[output],
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def cached_graph(
    policy: Policy, name: str, spec: tuple, folder: Path, digest: str
) -> tuple[Path, str]:
    """The verified ONNX file of graph ``name``: the cached one if its checks pass, else new.

    Returns (path, how) with how in {"cached", "exported", "re-exported: <why>"}.
    """
    module, inputs, output = spec
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{policy.policy_type}-{name}-{digest[:24]}"
    onnx_path, meta_path = folder / f"{stem}.onnx", folder / f"{stem}.json"
    why = ""
    if onnx_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            meta, why = {}, f"unreadable sidecar ({exc})"
        if meta and meta.get("digest") != digest:
            why = "built from other weights"
        elif meta and meta.get("onnx_sha256") != file_sha256(onnx_path):
            why = "ONNX file does not match its recorded sha256"
        elif meta:
            return onnx_path, "cached"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".onnx")
    os.close(fd)
    try:
        _export(module, inputs, output, Path(tmp))
        os.chmod(tmp, 0o644)
        sha = file_sha256(Path(tmp))
        os.replace(tmp, onnx_path)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        what = f"{policy.policy_type} {name} graph"
        raise ExportError(f"ONNX export of the {what} failed: {exc}") from exc
    _atomic_json(
        meta_path,
        {
            "digest": digest,
            "onnx_sha256": sha,
            "graph": name,
            "policy_type": policy.policy_type,
            "format": EXPORT_FORMAT,
            "opset": OPSET,
            "torch": torch.__version__,
            "inputs": {k: [str(v.dtype), list(v.shape)] for k, v in inputs.items()},
        },
    )
    return onnx_path, f"re-exported: {why}" if why else "exported"


def verified_onnx_bytes(path: Path, folder: Path) -> bytes:
    """The bytes of a cached graph, read once and checked against its sidecar's sha256.

    Reading the bytes that are then handed to the runtime (rather than the path) closes the
    window between the hash check and the load.
    """
    data = path.read_bytes()
    meta = json.loads((folder / f"{path.stem}.json").read_text())
    if hashlib.sha256(data).hexdigest() != meta.get("onnx_sha256"):
        raise ExportError(f"{path} changed after it was verified; not used")
    return data


def torch_reference(
    spec: tuple, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Random inputs for a graph and the torch module's output on them (for verification)."""
    module, inputs, _ = spec
    feeds: dict[str, np.ndarray] = {}
    for k, v in inputs.items():
        if v.dtype == torch.uint8:
            feeds[k] = rng.integers(0, 256, size=tuple(v.shape), dtype=np.uint8)
        elif v.dtype == torch.int64:
            feeds[k] = rng.integers(0, 100, size=tuple(v.shape), dtype=np.int64)
        else:
            feeds[k] = rng.uniform(-1.0, 1.0, size=tuple(v.shape)).astype(np.float32)
    with torch.inference_mode():
        ref = module(*(torch.from_numpy(a) for a in feeds.values())).float().numpy()
    return feeds, ref
