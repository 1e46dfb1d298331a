"""``robot-policy benchmark``: inference latency of ``predict_chunk`` per family.

Builds each family with random initialisation (or loads checkpoints), feeds random uint8
images and joint positions, and reports median and p95 latency after warm-up together with
the image size, the number of cameras, the torch thread count, device and dtype. A figure,
not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_policy_ros.checkpoint.config import POLICY_TYPES
from robot_policy_ros.cli.args import add_backend_argument, parse_set
from robot_policy_ros.params.policy_node import DTYPES

if TYPE_CHECKING:  # torch is imported when the benchmark runs, not when the parser is built
    from robot_policy_ros.policies.base import Observation, Policy


def add_benchmark_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``robot-policy benchmark`` / benchmarks/inference_latency.py."""
    p.add_argument(
        "--policy",
        nargs="+",
        choices=POLICY_TYPES,
        default=list(POLICY_TYPES),
        help="families to build with default hyper-parameters (default: all)",
    )
    p.add_argument(
        "--checkpoint", nargs="+", default=None, help="benchmark these checkpoints instead"
    )
    p.add_argument("--image-size", default="224", help="N or HxW (default 224)")
    p.add_argument("--cameras", type=int, default=1, help="number of cameras (default 1)")
    p.add_argument("--joints", type=int, default=7, help="number of joints (default 7)")
    p.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--runs", type=int, default=20, help="timed runs after warm-up")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, choices=[None, *DTYPES])
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="hyper-parameter override (JSON)"
    )
    add_backend_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per family")


def random_observation(policy: Policy, rng: np.random.Generator, stamp: float = 0.0) -> Observation:
    """An observation of random images and joint positions inside the limits."""
    from robot_policy_ros.policies.base import Observation

    images = {
        name: rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        for name, (h, w) in policy.image_shapes.items()
    }
    lo, hi = policy.limits.lower, policy.limits.upper
    q = lo + (hi - lo) * rng.random(policy.num_joints)
    return Observation(images=images, joint_positions=q, stamp=stamp)


def measure_latency(
    policy: Policy, runs: int = 20, warmup: int = 3, seed: int = 0, predictor: Any = None
) -> dict:
    """Median/p95/mean latency (ms) of predict_chunk over ``runs`` calls after ``warmup``.

    ``predictor``: a robot_policy_ros.inference predictor of ``policy`` (default: torch).
    """
    import torch

    rng = np.random.default_rng(seed)
    run = predictor if predictor is not None else policy
    obs = [random_observation(policy, rng, i / policy.fps) for i in range(4)]
    policy.eval()
    run.reset()
    cuda = policy.device.type == "cuda"
    for i in range(warmup):
        run.predict_chunk(obs[i % len(obs)])
    times = []
    for i in range(runs):
        if cuda:
            torch.cuda.synchronize(policy.device)
        t0 = time.perf_counter()
        run.predict_chunk(obs[i % len(obs)])  # returns numpy: already synchronised
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {
        "median_ms": statistics.median(times),
        "p95_ms": p95,
        "mean_ms": statistics.fmean(times),
        "min_ms": times[0],
        "runs": runs,
        "warmup": warmup,
    }


def _image_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w or h)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed arguments; prints one line per family."""
    import torch

    from robot_policy_ros.checkpoint.weights import load_checkpoint
    from robot_policy_ros.inference import make_predictor
    from robot_policy_ros.inference.export import cache_dir_for
    from robot_policy_ros.policies.factory import make_policy

    if args.runs < 1 or args.warmup < 0:
        raise ValueError("--runs must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    overrides = parse_set(args.set or [])
    h, w = _image_size(args.image_size)
    jobs: list[tuple[str, Any]] = []
    if args.checkpoint:
        jobs = [(path, None) for path in args.checkpoint]
    else:
        jobs = [(family, None) for family in args.policy]
    cpu = platform.processor() or platform.machine()
    print(
        f"# predict_chunk latency, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"device {args.device}, dtype {args.dtype or 'float32'}, cpu {cpu}, "
        f"{os.cpu_count()} logical cores"
    )
    for name, _ in jobs:
        if args.checkpoint:
            policy = load_checkpoint(name, device=args.device, dtype=args.dtype)
        else:
            cams = {f"cam{i}": (h, w) for i in range(args.cameras)}
            joints = [f"joint{i + 1}" for i in range(args.joints)]
            fields = set(
                __import__("robot_policy_ros.policies.config", fromlist=["x"])
                .CONFIG_CLASSES[name]
                .__dataclass_fields__
            )
            family_overrides = {k: v for k, v in overrides.items() if k in fields}
            policy = make_policy(name, joints, cams, seed=0, **family_overrides).eval()
            policy.to_runtime(args.device, args.dtype)
        source = name if args.checkpoint else None
        predictor = make_predictor(policy, args.backend, cache_dir=cache_dir_for(source))
        result = measure_latency(policy, runs=args.runs, warmup=args.warmup, predictor=predictor)
        shapes = sorted(set(policy.image_shapes.values()))
        row = {
            "policy": policy.policy_type,
            "source": name,
            "image_size": "/".join(f"{a}x{b}" for a, b in shapes),
            "cameras": len(policy.camera_names),
            "joints": policy.num_joints,
            "chunk_size": policy.chunk_size,
            "parameters": policy.num_parameters(),
            "threads": torch.get_num_threads(),
            "device": str(policy.device),
            "dtype": str(policy.runtime_dtype).removeprefix("torch."),
            "backend": predictor.name,
            "backend_note": predictor.note,
            **result,
        }
        if policy.policy_type == "diffusion":
            row["num_inference_steps"] = policy.config.num_inference_steps
        if args.json:
            print(json.dumps(row))
        else:
            extra = (
                f" ddim_steps {row['num_inference_steps']}" if "num_inference_steps" in row else ""
            )
            print(
                f"{row['policy']:<10} {row['backend']:<11} image {row['image_size']} "
                f"cameras {row['cameras']} "
                f"threads {row['threads']} params {row['parameters'] / 1e6:.1f}M "
                f"chunk {row['chunk_size']}{extra}: median {row['median_ms']:.1f} ms, "
                f"p95 {row['p95_ms']:.1f} ms over {row['runs']} runs "
                f"(warm-up {row['warmup']})",
                flush=True,
            )
        del policy
    return 0


def add_parser(sub: Any) -> None:
    """Register ``benchmark`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "benchmark",
        help="inference latency per family",
        description="Median/p95 predict_chunk latency after warm-up, per family.",
    )
    add_benchmark_arguments(p)
    p.set_defaults(func=run_from_args)
