"""Predictors: one policy, run by torch or by ONNX Runtime, behind ``predict_chunk``.

Contract of every predictor (same as ``Policy.predict_chunk``): validates the observation
(ValueError on a missing camera, wrong shape/dtype, bad joints), keeps the policy's
observation history (``reset()`` forgets it), returns (chunk_size, J) float64 joint targets.
Not re-entrant. Validation and history are the policy's own (``Policy.stage_observation``),
so a backend only replaces who runs the network.

``make_predictor(policy, "auto")`` builds the ONNX Runtime predictor when onnxruntime is
installed and the policy runs float32 on the CPU, checks every graph against torch on random
inputs (within 1e-4), times both on one observation and keeps the faster; anything missing
or failing falls back to torch, with the reason in ``Predictor.note``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_policy_ros.params.policy_node import INFERENCE_BACKENDS
from robot_policy_ros.policies.base import Observation, Policy

BACKENDS = INFERENCE_BACKENDS  # listed once, in policy_node's parameter table
TOLERANCE = 1e-4  # largest |onnx - torch| allowed, relative and absolute


def available_backends() -> list[str]:
    """Installed backends, torch first."""
    out = ["torch"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        out.append("onnxruntime")
    return out


class Predictor:
    """A policy and who runs its network; see module docstring for the contract."""

    name = "torch"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.note = ""  # why this backend was chosen, or why another was not

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """(chunk_size, J) float64 joint targets for ``obs``."""
        return self.policy.predict_chunk(obs)

    def reset(self) -> None:
        """Forget the observation history (start of an episode)."""
        self.policy.reset()

    def describe(self) -> str:
        """One line for logs."""
        return f"{self.name}{f' ({self.note})' if self.note else ''}"


class OnnxRuntimePredictor(Predictor):
    """The policy's exported graphs run by ONNX Runtime (CPU, float32)."""

    name = "onnxruntime"

    def __init__(
        self,
        policy: Policy,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(policy)
        import onnxruntime as ort

        from robot_policy_ros.inference import export

        why = onnx_unsupported_reason(policy)
        if why:
            raise ValueError(f"onnxruntime backend: {why}")
        folder = Path(cache_dir) if cache_dir is not None else export.user_cache_dir()
        digest = export.policy_digest(policy)
        specs = export.graph_specs(policy)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning between calls: idle inference threads must leave the cores to the
        # control loop and the callbacks (a spinning pool also slows torch work after it).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions: dict[str, Any] = {}
        self.files: dict[str, Path] = {}
        hows = []
        for name, spec in specs.items():
            path, how = export.cached_graph(policy, name, spec, folder, digest)
            data = export.verified_onnx_bytes(path, folder)
            sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
            if verify:
                feeds, ref = export.torch_reference(spec, np.random.default_rng(0))
                got = sess.run(None, feeds)[0]
                err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
                if not np.allclose(got, ref, rtol=TOLERANCE, atol=TOLERANCE):
                    raise export.ExportError(
                        f"{policy.policy_type} {name} graph differs from torch by {err:.2e} "
                        f"(> {TOLERANCE:g}); not used"
                    )
            self.sessions[name], self.files[name] = sess, path
            hows.append(f"{name} {how}")
        self.note = ", ".join(hows)
        self._cams = [f"image_{i}" for i in range(len(policy.camera_names))]

    def _feeds(self, obs: Observation) -> dict[str, np.ndarray]:
        images, state = self.policy.stage_observation(obs)
        feeds = {"state": state}
        for key, cam in zip(self._cams, self.policy.camera_names, strict=True):
            feeds[key] = images[cam]
        return feeds

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """(chunk_size, J) float64 joint targets for ``obs``."""
        feeds = self._feeds(obs)
        if "chunk" in self.sessions:
            return self.sessions["chunk"].run(None, feeds)[0].astype(np.float64)
        cond = self.sessions["cond"].run(None, feeds)[0]
        denoiser = self.sessions["denoiser"]

        def eps(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            feeds = {"sample": sample.numpy(), "timestep": t.numpy(), "cond": cond}
            return torch.from_numpy(denoiser.run(None, feeds)[0])

        with torch.inference_mode():
            actions = self.policy.denoise(torch.from_numpy(cond), eps)
            out = self.policy.normalizer.unnormalize_action(actions)[0]
        return out.to(torch.float64).numpy()


def onnx_unsupported_reason(policy: Policy) -> str:
    """'' if the ONNX Runtime backend can run ``policy``, else why not."""
    if "onnxruntime" not in available_backends():
        return "onnxruntime / onnx are not installed (pip install onnxruntime onnx)"
    if policy.device.type != "cpu":
        return f"runs on the CPU only (policy is on {policy.device}); use torch on CUDA"
    if policy.runtime_dtype != torch.float32:
        return f"runs float32 only (policy runs {policy.runtime_dtype}); use dtype float32"
    return ""


def probe_observation(policy: Policy, seed: int = 0) -> Observation:
    """A random observation inside the joint limits (for timing and checks)."""
    rng = np.random.default_rng(seed)
    images = {
        name: rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        for name, (h, w) in policy.image_shapes.items()
    }
    lo, hi = policy.limits.lower, policy.limits.upper
    q = lo + (hi - lo) * rng.random(policy.num_joints)
    return Observation(images=images, joint_positions=q)


def time_predictor(predictor: Predictor, obs: Observation, runs: int = 2) -> float:
    """Fastest of ``runs`` predict_chunk calls (seconds) after one warm-up call."""
    predictor.predict_chunk(obs)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        predictor.predict_chunk(obs)
        best = min(best, time.perf_counter() - t0)
    predictor.reset()
    return best


def make_predictor(
    policy: Policy,
    backend: str = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> Predictor:
    """The predictor for ``backend`` (see module docstring); ``policy`` must be in eval mode.

    Raises ValueError for an unknown backend, or for ``onnxruntime`` when it cannot run this
    policy (not installed, CUDA, half precision) or its graphs fail to build or verify.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown inference backend {backend!r}; expected one of {BACKENDS}")
    torch_pred = Predictor(policy)
    if backend == "torch":
        return torch_pred
    why = onnx_unsupported_reason(policy)
    if why and backend == "onnxruntime":
        raise ValueError(f"inference backend onnxruntime: {why}")
    if why:
        torch_pred.note = f"auto: onnxruntime not used: {why}"
        return torch_pred
    try:
        ort_pred = OnnxRuntimePredictor(policy, cache_dir=cache_dir, threads=threads)
    except Exception as exc:  # export or verification failed: never run an unchecked graph
        if backend == "onnxruntime":
            raise ValueError(f"inference backend onnxruntime: {exc}") from exc
        torch_pred.note = f"auto: onnxruntime not used: {exc}"
        return torch_pred
    if backend == "onnxruntime":
        return ort_pred
    obs = probe_observation(policy)
    t_torch = time_predictor(torch_pred, obs)
    t_ort = time_predictor(ort_pred, obs)
    best = ort_pred if t_ort < t_torch else torch_pred
    best.note = f"auto: onnxruntime {t_ort * 1e3:.1f} ms vs torch {t_torch * 1e3:.1f} ms" + (
        f"; {ort_pred.note}" if best is ort_pred else ""
    )
    return best
