"""The demo's report: command timing, diagnostics figures, training summary, and the
``report.json`` / ``report.md`` files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.demo.config import DemoConfig
from robot_policy_ros.demo.plots import plot_eval


def command_timing(
    command_times: Sequence[float],
    rate_hz: float,
    pauses: Sequence[tuple[float, float]] = (),
) -> dict[str, float]:
    """Achieved rate and period error (ms) of commands as a subscriber saw them.

    ``pauses``: (start, end) windows in which the streamer was deliberately inactive (the
    policy stack is restarted around every evaluation reset); an interval between two
    commands that overlaps one is no control period and is left out. Every other interval
    counts, including those spanning an episode change.
    """
    nan = math.nan
    if len(command_times) < 3:
        return {
            "rate_hz": 0.0,
            "period_error_p50_ms": nan,
            "period_error_p99_ms": nan,
            "period_error_max_ms": nan,
            "periods": 0,
        }
    t = np.asarray(command_times, dtype=np.float64)
    periods = np.diff(t)
    keep = np.ones(periods.shape, dtype=bool)
    for start, end in pauses:
        keep &= ~((t[:-1] < end) & (t[1:] > start))
    periods = periods[keep]
    if periods.size == 0:
        return command_timing([], rate_hz)
    err = np.abs(periods - 1.0 / rate_hz) * 1e3
    return {
        "rate_hz": float(periods.size / periods.sum()),
        "period_error_p50_ms": float(np.percentile(err, 50)),
        "period_error_p99_ms": float(np.percentile(err, 99)),
        "period_error_max_ms": float(err.max()),
        "periods": int(periods.size),
    }


def _diag_float(diags: dict[str, dict[str, str]], key_part: str, field_name: str) -> float:
    """First numeric diagnostics value whose status name contains ``key_part``."""
    for name, values in diags.items():
        if key_part in name and field_name in values:
            try:
                return float(values[field_name])
            except ValueError:
                continue
    return math.nan


def recorded_episodes(bag_dir: Path) -> list[dict[str, Any]]:
    """index / success / elapsed_s of every episode bag (its ``episode.json``) in ``bag_dir``."""
    out = []
    for meta in sorted(Path(bag_dir).glob("*/episode.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        out.append({k: data.get(k) for k in ("index", "success", "elapsed_s")})
    return out


def mean_success_time(results: list[dict[str, Any]]) -> float:
    """Mean ``elapsed_s`` of the successful episodes (nan if none)."""
    times = [float(r.get("elapsed_s", math.nan)) for r in results if r.get("success")]
    return float(np.mean(times)) if times else math.nan


def training_summary(ckpt: Path) -> dict[str, Any]:
    """What the checkpoint's provenance and training log say about the run."""
    out: dict[str, Any] = {}
    try:
        prov = json.loads((ckpt / "config.json").read_text()).get("provenance", {})
    except (OSError, ValueError):
        return out
    for key in ("train_episodes", "val_episodes", "train_samples", "steps", "epochs"):
        if key in prov:
            out[key] = prov[key]
    for key in ("train_loss", "val_loss", "lr", "batch_size", "image_size"):
        if key in prov:
            out[key] = prov[key]
    try:
        rows = (ckpt / "train_log.csv").read_text().splitlines()
        header = rows[0].split(",")
        speeds = [
            float(r.split(",")[header.index("samples_per_s")])
            for r in rows[1:]
            if r.split(",")[header.index("samples_per_s")]
        ]
        if speeds:
            out["samples_per_s_median"] = float(np.median(speeds))
    except (OSError, ValueError, IndexError):
        pass
    if "steps" in out and "image_size" in out:
        h, w = out["image_size"]
        out["summary"] = f"{out['steps']} steps at {h}x{w}, {out.get('train_samples', '?')} samples"
    return out


def write_report(
    c: DemoConfig,
    expert: list[dict[str, Any]],
    results: list[dict[str, Any]],
    snap: dict[str, Any],
    ckpt: Path,
    duration_s: float,
    stage_s: dict[str, float],
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and ``eval_plot.png`` into ``c.out_dir``.

    ``expert``: the recorded episodes; ``results``: the evaluation episodes; ``snap``: the
    evaluation monitor's snapshot (with ``pauses``); returns the report.json contents.
    """
    out = c.out_dir
    timing = command_timing(
        [t for t, _ in snap["commands"]], c.control_rate_hz, snap.get("pauses", ())
    )
    diags = snap["diagnostics"]
    success_rate = sum(bool(r.get("success")) for r in results) / len(results)
    expert_rate = sum(bool(r.get("success")) for r in expert) / max(1, len(expert))
    training = training_summary(ckpt)
    report = {
        "task": c.task,
        "policy": c.policy,
        "episodes": len(results),
        "demo_episodes": len(expert),
        "policy_success_rate": success_rate,
        "expert_success_rate": expert_rate,
        "policy_time_to_success_s_mean": mean_success_time(results),
        "expert_time_to_success_s_mean": mean_success_time(expert),
        "control_rate_hz": timing["rate_hz"],
        "period_error_p50_ms": timing["period_error_p50_ms"],
        "period_error_p99_ms": timing["period_error_p99_ms"],
        "period_error_max_ms": timing["period_error_max_ms"],
        "control_periods": timing["periods"],
        # The streamer's own figures cover the time since its last activation only.
        "streamer_period_error_p99_ms": _diag_float(
            diags, "command_streamer", "period_error_p99_ms"
        ),
        "streamer_missed_ticks": _diag_float(diags, "command_streamer", "missed_ticks"),
        "inference_ms_median": _diag_float(diags, "policy_node", "inference_latency_median_ms"),
        "inference_ms_p95": _diag_float(diags, "policy_node", "inference_latency_p95_ms"),
        "chunks_received": len(snap["chunks"]),
        "duration_s": duration_s,
        "stage_durations_s": dict(stage_s),
        "training": training,
        "eval_seed": c.eval_seed,
        "train_seed": c.train_seed,
        "checkpoint": str(ckpt),
        "episode_results": results,
        "config": {k: str(v) for k, v in asdict(c).items()},
    }
    bar_met = success_rate >= 0.8 and len(results) >= 20
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    plot_eval(snap, out / "eval_plot.png")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in stage_s.items())
    md = [
        "# robot_policy_ros demo report",
        "",
        f"- task: **{c.task}**",
        f"- policy: **{c.policy}** ({training.get('summary', 'see checkpoint/')}), "
        f"trained on {len(expert)} recorded expert episodes (seed {c.train_seed})",
        f"- success: **{success_rate:.0%}** over {len(results)} unseen episodes "
        f"(seed {c.eval_seed}); expert: {expert_rate:.0%} over {len(expert)}",
        f"- time to success (mean): policy {report['policy_time_to_success_s_mean']:.2f} s, "
        f"expert {report['expert_time_to_success_s_mean']:.2f} s",
        f"- control: {timing['rate_hz']:.2f} Hz achieved (target {c.control_rate_hz:g}), "
        f"period error p50 {timing['period_error_p50_ms']:.2f} ms, p99 "
        f"{timing['period_error_p99_ms']:.2f} ms, max {timing['period_error_max_ms']:.2f} ms "
        f"(as a subscriber saw them, {timing['periods']} periods)",
        f"- inference: median {report['inference_ms_median']:.1f} ms, "
        f"p95 {report['inference_ms_p95']:.1f} ms; {len(snap['chunks'])} chunks",
        f"- total time: {report['duration_s'] / 60:.1f} min ({stages}; venv install not included)",
        f"- bar (>= 80% over >= 20 unseen episodes): **{'met' if bar_met else 'NOT met'}**",
        "",
        "Files: `demos/` (training bags), `eval/` (evaluation bags), `checkpoint/` (with "
        "`train_log.csv`, `loss_curve.png`), `eval_plot.png`, `report.json`, `logs/`.",
        "",
        "![evaluation](eval_plot.png)",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return report
