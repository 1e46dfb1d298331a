"""Predictors: one policy, run by torch, ONNX Runtime or OpenVINO, behind ``predict_chunk``.

Contract of every predictor (same as ``Policy.predict_chunk``): validates the observation
(ValueError on a missing camera, wrong shape/dtype, bad joints), keeps the policy's
observation history (``reset()`` forgets it), returns (chunk_size, J) float64 joint targets.
Not re-entrant. Validation and history are the policy's own (``Policy.stage_observation``),
so a backend only replaces who runs the network.

``make_predictor(policy, "auto")`` builds every graph predictor whose runtime is installed
(ONNX Runtime, OpenVINO) when the policy runs float32 on the CPU, checks every graph against
torch on random inputs (within 1e-4), times them and torch on one observation and keeps the
fastest; a runtime missing or failing is left out, with the reason in ``Predictor.note``,
and torch is always there to fall back on.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from robot_policy_ros.params.policy_node import INFERENCE_BACKENDS
from robot_policy_ros.policies.base import Observation, Policy

BACKENDS = INFERENCE_BACKENDS  # listed once, in policy_node's parameter table
TOLERANCE = 1e-4  # largest |onnx - torch| allowed, relative and absolute


def available_backends() -> list[str]:
    """Installed backends, torch first."""
    out = ["torch"]
    if not importlib.util.find_spec("onnx"):  # both export through onnx
        return out
    for name in ("onnxruntime", "openvino"):
        if importlib.util.find_spec(name):
            out.append(name)
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


class GraphPredictor(Predictor):
    """The policy's exported ONNX graphs run by a CPU runtime (float32).

    The graphs come from ``export.cached_graph`` (built from the weights, cached keyed by
    their hash, read back only through ``export.verified_onnx_bytes``) and, with ``verify``,
    each is checked against torch on random inputs (within ``TOLERANCE``) before use.
    ``runners`` maps a graph name ('chunk', or 'cond' and 'denoiser') to a callable from
    feeds to the graph's first output. Subclasses say how a runtime loads a graph.
    """

    def __init__(
        self,
        policy: Policy,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(policy)
        from robot_policy_ros.inference import export

        why = unsupported_reason(policy, self.name)
        if why:
            raise ValueError(f"{self.name} backend: {why}")
        folder = Path(cache_dir) if cache_dir is not None else export.user_cache_dir()
        digest = export.policy_digest(policy)
        n_threads = int(threads or torch.get_num_threads())
        self.runners: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {}
        self.files: dict[str, Path] = {}
        hows = []
        for name, spec in export.graph_specs(policy).items():
            path, how = export.cached_graph(policy, name, spec, folder, digest)
            run = self._load(export.verified_onnx_bytes(path, folder), n_threads)
            if verify:
                feeds, ref = export.torch_reference(spec, np.random.default_rng(0))
                got = run(feeds)
                err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
                if not np.allclose(got, ref, rtol=TOLERANCE, atol=TOLERANCE):
                    raise export.ExportError(
                        f"{policy.policy_type} {name} graph differs from torch by {err:.2e} "
                        f"(> {TOLERANCE:g}) in {self.name}; not used"
                    )
            self.runners[name], self.files[name] = run, path
            hows.append(f"{name} {how}")
        self.note = ", ".join(hows)
        self._cams = [f"image_{i}" for i in range(len(policy.camera_names))]

    def _load(self, data: bytes, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """A callable running the verified ONNX graph ``data`` on ``threads`` threads."""
        raise NotImplementedError

    def feeds(self, obs: Observation) -> dict[str, np.ndarray]:
        """The graph inputs for ``obs`` (validated, with the policy's history)."""
        images, state = self.policy.stage_observation(obs)
        feeds = {"state": state}
        for key, cam in zip(self._cams, self.policy.camera_names, strict=True):
            feeds[key] = images[cam]
        return feeds

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """(chunk_size, J) float64 joint targets for ``obs``."""
        feeds = self.feeds(obs)
        if "chunk" in self.runners:
            return self.runners["chunk"](feeds).astype(np.float64)
        cond = self.runners["cond"](feeds)
        denoiser = self.runners["denoiser"]

        def eps(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(
                denoiser({"sample": sample.numpy(), "timestep": t.numpy(), "cond": cond})
            )

        with torch.inference_mode():
            actions = self.policy.denoise(torch.from_numpy(cond), eps)
            out = self.policy.normalizer.unnormalize_action(actions)[0]
        return out.to(torch.float64).numpy()


class OnnxRuntimePredictor(GraphPredictor):
    """The exported graphs run by ONNX Runtime's CPU execution provider."""

    name = "onnxruntime"

    def _load(self, data: bytes, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning between calls: idle inference threads must leave the cores to the
        # control loop and the callbacks (a spinning pool also slows torch work after it).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        return lambda feeds: sess.run(None, feeds)[0]


class OpenVinoPredictor(GraphPredictor):
    """The exported graphs compiled by OpenVINO for the CPU (float32, latency mode)."""

    name = "openvino"

    def _load(self, data: bytes, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        import openvino as ov

        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # float32 as torch: the CPU plugin would otherwise run bf16 where the CPU has
            # it, and the 1e-4 check (and the policy's numbers) would not hold.
            "INFERENCE_PRECISION_HINT": "f32",
            # Leave thread placement to the OS: the control loop shares these cores.
            "ENABLE_CPU_PINNING": False,
        }
        try:
            compiled = core.compile_model(core.read_model(data, b""), "CPU", config)
        except RuntimeError:
            # OpenVINO 2026.4 fails to fuse some subgraphs ("snippets"; e.g. Mish in the
            # small Diffusion U-Nets): compile those graphs without that fusion.
            config["SNIPPETS_MODE"] = "DISABLE"
            compiled = core.compile_model(core.read_model(data, b""), "CPU", config)
        request = compiled.create_infer_request()
        output = compiled.output(0)
        # The request reuses its output buffer: copy before the next call overwrites it.
        return lambda feeds: np.array(request.infer(feeds)[output], copy=True)


GRAPH_PREDICTORS: dict[str, type[GraphPredictor]] = {
    "onnxruntime": OnnxRuntimePredictor,
    "openvino": OpenVinoPredictor,
}
_PIP = {"onnxruntime": "onnxruntime onnx", "openvino": "openvino onnx"}


def unsupported_reason(policy: Policy, backend: str) -> str:
    """'' if the graph backend ``backend`` can run ``policy``, else why not."""
    if backend not in available_backends():
        return f"{backend} is not installed (pip install {_PIP[backend]})"
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


def make_predictor(
    policy: Policy,
    backend: str = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> Predictor:
    """The predictor for ``backend`` (see module docstring); ``policy`` must be in eval mode.

    Raises ValueError for an unknown backend, or for ``onnxruntime`` / ``openvino`` when it
    cannot run this policy (not installed, CUDA, half precision) or its graphs fail to build
    or verify. ``auto`` never raises for a backend: it says in ``note`` why one was not used.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown inference backend {backend!r}; expected one of {BACKENDS}")
    torch_pred = Predictor(policy)
    if backend == "torch":
        return torch_pred
    auto = backend == "auto"
    candidates: list[Predictor] = [torch_pred]
    skipped: list[str] = []
    for name in GRAPH_PREDICTORS if auto else (backend,):
        why = unsupported_reason(policy, name)
        if not why:
            try:
                candidates.append(
                    GRAPH_PREDICTORS[name](policy, cache_dir=cache_dir, threads=threads)
                )
                continue
            except Exception as exc:  # export or verification failed: never run it unchecked
                why = str(exc)
        if not auto:
            raise ValueError(f"inference backend {name}: {why}")
        skipped.append(f"{name} not used: {why}")
    if not auto:
        return candidates[1]
    if len(candidates) == 1:
        torch_pred.note = "auto: " + "; ".join(skipped)
        return torch_pred
    times = fastest_of(candidates, probe_observation(policy))
    best = min(candidates, key=lambda p: times[p.name])
    timing = " vs ".join(f"{p.name} {times[p.name] * 1e3:.1f} ms" for p in candidates)
    best.note = "; ".join([f"auto: {timing}", *([best.note] if best.note else []), *skipped])
    return best


def fastest_of(predictors: list[Predictor], obs: Observation, rounds: int = 3) -> dict[str, float]:
    """name -> fastest predict_chunk time (s) over ``rounds`` interleaved rounds, after one
    warm-up call each (interleaved, so a load change on the machine hits all alike)."""
    for p in predictors:
        p.predict_chunk(obs)
    best = {p.name: float("inf") for p in predictors}
    for _ in range(rounds):
        for p in predictors:
            t0 = time.perf_counter()
            p.predict_chunk(obs)
            best[p.name] = min(best[p.name], time.perf_counter() - t0)
    for p in predictors:
        p.reset()
    return best
