"""Argument helpers shared by the ``robot-policy`` subcommands (no torch)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_policy_ros.params.policy_node import INFERENCE_BACKENDS as BACKENDS


def parse_floats(text: str, what: str, n: int) -> list[float]:
    """One value for all joints or one per joint, comma-separated."""
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number or comma-separated numbers") from None
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n:
        raise ValueError(f"{what}: got {len(vals)} values for {n} joints (give 1 or {n})")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{what}: values must be finite")
    return vals


def parse_limits(text: str, n: int) -> tuple[list[float], list[float]]:
    """``LOWER:UPPER`` for all joints, or ``L1:U1,L2:U2,...`` per joint."""
    pairs = [p for p in text.split(",") if p.strip()]
    lower, upper = [], []
    for p in pairs:
        lo, sep, hi = p.partition(":")
        if not sep:
            raise ValueError(f"--limits: {p!r} must look like LOWER:UPPER, e.g. -3.14:3.14")
        try:
            lower.append(float(lo))
            upper.append(float(hi))
        except ValueError:
            raise ValueError(f"--limits: {p!r} must look like LOWER:UPPER with numbers") from None
    if len(pairs) == 1:
        lower, upper = lower * n, upper * n
    if len(lower) != n:
        raise ValueError(f"--limits: got {len(lower)} pairs for {n} joints (give 1 or {n})")
    return lower, upper


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides; VALUE is JSON if it parses, else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r} must look like KEY=VALUE (e.g. d_model=256)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def fix_negative_values(argv: list[str]) -> list[str]:
    """Let ``--limits -3.14:3.14`` work (argparse would take the value for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--limits",) and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse to write into an existing, non-empty ``--out`` unless ``--force``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ValueError(f"--out {out} exists and is not empty (use --force to overwrite)")


def add_backend_argument(p: argparse.ArgumentParser) -> None:
    """``--backend``: who runs the network (robot_policy_ros.inference.backends)."""
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="who runs the network (robot_policy_ros.inference; default auto: the fastest "
        "installed one that matches torch: torch, onnxruntime, openvino)",
    )
