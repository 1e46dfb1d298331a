"""Training throughput (samples/s) of ``robot-policy train`` on synthetic demonstration bags.

Used by ``make bench`` (section ``training``) and ``benchmarks/train_speed.py``. A synthetic
dataset (reach episodes with known timing, written as real bags) is written once; the trainer
then runs for ``steps`` and the figure is the median samples/s over its logged windows, data
loading included, leaving out the first window (one-off start-up costs) and the last.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_dataset(root: Path, episodes: int) -> float:
    """Write the synthetic bags under ``root / "bags"``; returns the seconds it took."""
    from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_dataset

    spec = SyntheticEpisode(duration_s=4.0, image_hw=(120, 160), motion="reach")
    t0 = time.perf_counter()
    write_synthetic_dataset(root / "bags", episodes, spec)
    return time.perf_counter() - t0


def training_throughput(
    root: Path,
    policy: str,
    *,
    steps: int = 60,
    batch_size: int = 32,
    image_size: int = 96,
    overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    amp: str = "off",
    threads: int | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train ``policy`` on the bags under ``root / "bags"`` (see :func:`write_dataset`)."""
    import torch

    from robot_policy_ros.training.trainer import TrainConfig, train

    run = Path(tempfile.mkdtemp(prefix=f"train_{policy}_", dir=root))
    try:
        config = TrainConfig(
            data=[str(root / "bags")],
            out=str(run / "out"),
            policy=policy,
            steps=steps,
            batch_size=batch_size,
            image_size=(image_size, image_size),
            fps=10.0,
            device=device,
            amp=amp,
            checkpoint_every=0,
            log_every=max(1, steps // 6),
            val_fraction=0.2,
            overrides=dict(overrides or {}),
            cache_dir=str(root / "cache"),
            torch_threads=threads,
            num_workers=workers,
            progress=False,
        )
        t0 = time.perf_counter()
        result = train(config)
        t_total = time.perf_counter() - t0
    finally:
        shutil.rmtree(run, ignore_errors=True)
    speeds = [
        r["samples_per_s"]
        for r in result.history
        if isinstance(r.get("train_loss"), float) and r["train_loss"] == r["train_loss"]
    ][1:-1] or [result.samples_per_s]
    return {
        "policy": policy,
        "overrides": dict(overrides or {}),
        "image_size": image_size,
        "batch_size": batch_size,
        "device": device,
        "amp": amp,
        "torch_threads": torch.get_num_threads(),
        "train_samples": result.train_samples,
        "steps": result.steps,
        "samples_per_s_median": round(statistics.median(speeds), 1),
        "first_loss": round(result.first_train_loss, 4),
        "final_loss": round(result.final_train_loss, 4),
        "val_loss": round(result.final_val_loss, 4),
        "train_call_s": round(t_total, 2),
    }


def training_table(
    families: list[tuple[str, Mapping[str, Any]]],
    *,
    steps: int,
    episodes: int,
    image_size: int,
    batch_size: int,
    threads: int | None,
) -> list[dict[str, Any]]:
    """One row per ``(policy, overrides)``, all on one synthetic dataset."""
    root = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        write_s = write_dataset(root, episodes)
        rows = []
        for policy, overrides in families:
            row = training_throughput(
                root,
                policy,
                steps=steps,
                batch_size=batch_size,
                image_size=image_size,
                overrides=overrides,
                threads=threads,
            )
            row["write_bags_s"] = round(write_s, 2)
            rows.append(row)
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
