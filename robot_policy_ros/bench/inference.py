"""Inference latency per family and backend against the bare network, in one run.

For each family and image size: the stack's ``predict_chunk`` per backend (torch and every
installed graph runtime: onnxruntime, openvino), the same exported graph run bare by each
runtime on fixed inputs (no validation, history or Python around it; for Diffusion the
condition graph plus one denoiser run per sampler step; the fastest of these is the floor
for that network), and, for reference, torchvision's ResNet18 alone in torch and in ONNX
Runtime. Every candidate is timed round-robin (one call each, repeated), so a load change on
a shared machine hits all of them alike. Figures, not tests.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_policy_ros.inference import backends, export
from robot_policy_ros.policies.factory import make_policy


def round_robin(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 2) -> dict:
    """name -> {median_ms, p90_ms, min_ms}: ``runs`` rounds; in each, every fn is called once
    untimed (it absorbs the previous runtime's threads still spinning) and once timed."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = {
            "median_ms": statistics.median(ts),
            "p90_ms": ts[min(len(ts) - 1, round(0.9 * (len(ts) - 1)))],
            "min_ms": ts[0],
            "runs": runs,
        }
    return out


def _ort_session(data: bytes | str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the backend
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def bare_resnet18(h: int, w: int, threads: int, folder: Path) -> dict[str, Callable[[], Any]]:
    """torchvision ResNet18 (random init, eval) on a fixed float input: torch and ORT."""
    from torchvision.models import resnet18

    net = resnet18(weights=None).eval()
    x = torch.rand(1, 3, h, w)
    path = folder / f"resnet18-{h}x{w}.onnx"
    if not path.exists():
        with torch.no_grad():
            torch.onnx.export(net, (x,), str(path), opset_version=export.OPSET, dynamo=False)
    sess = _ort_session(str(path), threads)
    name = sess.get_inputs()[0].name
    xn = x.numpy()

    def run_torch() -> None:
        with torch.inference_mode():
            net(x)

    return {"resnet18_torch": run_torch, "resnet18_onnxruntime": lambda: sess.run(None, {name: xn})}


def family_candidates(
    family: str, h: int, w: int, threads: int, folder: Path, overrides: dict | None = None
) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """Callables for one family at (h, w): the stack's predict_chunk per installed backend
    (torch, onnxruntime, openvino), each graph runtime's bare exported graph, and a
    description. The graph predictors share one export (the same cached ONNX files)."""
    joints = [f"joint{i + 1}" for i in range(7)]
    policy = make_policy(family, joints, {"cam0": (h, w)}, seed=0, **(overrides or {})).eval()
    obs = backends.probe_observation(policy)
    torch_pred = backends.Predictor(policy)
    fns: dict[str, Callable[[], Any]] = {"torch": lambda: torch_pred.predict_chunk(obs)}
    for name, cls in backends.GRAPH_PREDICTORS.items():
        if name not in backends.available_backends():
            continue
        pred = cls(policy, cache_dir=folder, threads=threads)
        fns[name] = lambda pred=pred: pred.predict_chunk(obs)
        fns[f"bare_graph_{name}"] = _bare_graph(pred, obs)
    desc = {"policy": family, "image": f"{h}x{w}", "parameters": policy.num_parameters()}
    if family == "diffusion":
        desc["sampler_steps"] = len(policy.sampler.timesteps)
    return fns, desc


def _bare_graph(pred: backends.GraphPredictor, obs: Any) -> Callable[[], None]:
    """The predictor's graphs on fixed inputs, nothing around them: the floor for that
    network in that runtime (Diffusion: the condition graph plus one denoiser run per
    sampler step)."""
    feeds = pred.feeds(obs)  # the history as the stack feeds it, built once
    pred.policy.reset()
    runners = pred.runners
    if "chunk" in runners:
        return lambda: runners["chunk"](feeds)
    policy = pred.policy
    steps = len(policy.sampler.timesteps)
    den = {
        "sample": np.zeros((1, policy.config.horizon, policy.num_joints), np.float32),
        "timestep": np.zeros((1,), np.int64),
        "cond": runners["cond"](feeds),
    }

    def bare() -> None:
        runners["cond"](feeds)
        for _ in range(steps):
            runners["denoiser"](den)

    return bare


def graph_backends(latency: dict[str, Any]) -> list[str]:
    """The graph runtimes present in one inference row's latencies."""
    return [k for k in backends.GRAPH_PREDICTORS if f"bare_graph_{k}" in latency]


def inference_table(
    families: list[tuple[str, dict]],
    sizes: list[tuple[int, int]],
    threads: int,
    runs: int,
    folder: Path | None = None,
) -> list[dict]:
    """One row per (family variant, size): medians per candidate and the ratios to the floor.

    ``families``: (label, config overrides), e.g. ("diffusion_ddim10", {}).
    """
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = folder or Path(tmp)
        for h, w in sizes:
            ref = round_robin(bare_resnet18(h, w, threads, cache), runs)
            for label, overrides in families:
                family = label.split("_")[0]
                fns, desc = family_candidates(family, h, w, threads, cache, overrides)
                res = round_robin(fns, runs)
                # The floor: the fastest runtime's bare graph for this network.
                runtimes = graph_backends(res)
                floor_rt = min(runtimes, key=lambda k: res[f"bare_graph_{k}"]["median_ms"])
                floor = res[f"bare_graph_{floor_rt}"]["median_ms"]
                stack = ["torch", *runtimes]
                best = min(stack, key=lambda k: res[k]["median_ms"])
                rows.append(
                    {
                        **desc,
                        "variant": label,
                        "threads": threads,
                        "latency": res,
                        "reference_resnet18": ref,
                        "fastest_backend": best,
                        "fastest_runtime": floor_rt,
                        "ratio_to_floor": {k: res[k]["median_ms"] / floor for k in stack},
                    }
                )
    return rows


def wrapper_overhead(h: int, w: int, threads: int, runs: int) -> dict:
    """MLP predict_chunk vs the bare ResNet18 in one round-robin run, per backend."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        fns = bare_resnet18(h, w, threads, Path(tmp))
        mlp, _ = family_candidates("mlp", h, w, threads, Path(tmp))
        fns.update({f"mlp_{k}": v for k, v in mlp.items()})
        res = round_robin(fns, runs)
    med = {k: v["median_ms"] for k, v in res.items()}
    return {
        "image": f"{h}x{w}",
        "threads": threads,
        "median_ms": med,
        "overhead_torch": med["mlp_torch"] / med["resnet18_torch"] - 1.0,
        "overhead_onnxruntime": med["mlp_onnxruntime"] / med["resnet18_onnxruntime"] - 1.0,
        "stack_vs_fastest_runtime": min(med["mlp_torch"], med["mlp_onnxruntime"])
        / min(med["resnet18_torch"], med["resnet18_onnxruntime"]),
    }


def main() -> None:
    """Print the wrapper overhead at 224x224 and 64x64 (benchmarks/wrapper_overhead.py)."""
    import argparse
    import json

    p = argparse.ArgumentParser(description=wrapper_overhead.__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--sizes", nargs="+", default=["224", "64"])
    args = p.parse_args()
    for s in args.sizes:
        h, _, w = s.partition("x")
        print(
            json.dumps(wrapper_overhead(int(h), int(w or h), args.threads, args.runs)), flush=True
        )
