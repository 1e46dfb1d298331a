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

from robot_policy_ros.bench.seams import seam_smoothness, seam_windows_for
from robot_policy_ros.core.chunk_buffer import BlendConfig
from robot_policy_ros.demo.config import ARM_NS, CAMERA, SUCCESS_BARS, DemoConfig
from robot_policy_ros.demo.plots import plot_eval

ANIMATION = "eval_episodes.gif"
ANIMATED_EPISODES = 3


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


def command_seams(snap: dict[str, Any], c: DemoConfig) -> dict[str, float]:
    """Seam smoothness of the evaluation's command stream (bench.seams): the largest joint
    step where chunks came and went against the largest inside them, episode resets (and
    the second after each, while the streamer re-anchors) left out."""
    commands = snap["commands"]
    if len(commands) < 3:
        return {"ratio": math.nan}
    times = np.array([t for t, _ in commands])
    values = np.array([q for _, q in commands])
    period = 1.0 / c.control_rate_hz
    fade = BlendConfig(mode=c.blending).crossfade_s
    windows = seam_windows_for(snap["chunks"], snap.get("chunk_ends", ()), period, fade)
    exclude = [(r - 0.2, r + 1.0) for r in snap.get("resets", ())]
    exclude += [(a, b + 1.0) for a, b in snap.get("pauses", ())]
    return seam_smoothness(times, values, windows, exclude)


def write_animation_of(out: Path, results: list[dict[str, Any]]) -> str | None:
    """``eval_episodes.gif`` of the first evaluation episodes, from their bags; None when
    there is nothing to show (the report says so rather than failing the demo)."""
    from robot_policy_ros.data.bag_reader import find_bags, read_episode_metadata
    from robot_policy_ros.demo.animation import write_animation

    wanted = {r.get("index") for r in results}
    try:
        bags = [
            b for b in find_bags([out / "eval"]) if read_episode_metadata(b).get("index") in wanted
        ]
        frames = write_animation(
            bags[:ANIMATED_EPISODES],
            out / ANIMATION,
            camera_topic=f"{ARM_NS}/{CAMERA}/image_raw",
            joints_topic=f"{ARM_NS}/joint_states",
            commands_topic=f"{ARM_NS}/forward_position_controller/commands",
        )
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"demo: no animation ({exc})")
        return None
    return ANIMATION if frames else None


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
    seams = command_seams(snap, c)
    animation = write_animation_of(out, results)
    report = {
        "task": c.task,
        "policy": c.policy,
        "episodes": len(results),
        "demo_episodes": len(expert),
        "policy_success_rate": success_rate,
        # cued_targets: failures that ended on a disc other than the cued one.
        "policy_wrong_disc_episodes": sum(bool(r.get("wrong_disc")) for r in results),
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
        "seams": seams,
        "restart_each_episode": c.restart_each_episode,
        "success_bar": SUCCESS_BARS[c.task],
        "animation": animation,
        "duration_s": duration_s,
        "stage_durations_s": dict(stage_s),
        "training": training,
        "eval_seed": c.eval_seed,
        "train_seed": c.train_seed,
        "checkpoint": str(ckpt),
        "episode_results": results,
        "config": {k: str(v) for k, v in asdict(c).items()},
    }
    bar = report["success_bar"]
    bar_met = success_rate >= bar and len(results) >= 20
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
        f"(seed {c.eval_seed}); expert: {expert_rate:.0%} over {len(expert)}"
        + (
            f"; {report['policy_wrong_disc_episodes']} ended on a wrong disc"
            if c.task == "cued_targets"
            else ""
        ),
        f"- time to success (mean): policy {report['policy_time_to_success_s_mean']:.2f} s, "
        f"expert {report['expert_time_to_success_s_mean']:.2f} s",
        f"- control: {timing['rate_hz']:.2f} Hz achieved (target {c.control_rate_hz:g}), "
        f"period error p50 {timing['period_error_p50_ms']:.2f} ms, p99 "
        f"{timing['period_error_p99_ms']:.2f} ms, max {timing['period_error_max_ms']:.2f} ms "
        f"(as a subscriber saw them, {timing['periods']} periods)",
        f"- inference: median {report['inference_ms_median']:.1f} ms, "
        f"p95 {report['inference_ms_p95']:.1f} ms; {len(snap['chunks'])} chunks",
        f"- chunk seams ({c.blending}): largest joint step at seams "
        f"{seams.get('seam_max_step', math.nan):.4f} rad vs inside chunks "
        f"{seams.get('inside_max_step', math.nan):.4f} rad (ratio {seams['ratio']:.2f})",
        "- resets: "
        + (
            "the policy stack is deactivated and activated around every sim reset"
            if c.restart_each_episode
            else "the stack keeps running through sim resets (the streamer re-anchors on the "
            "measured position)"
        ),
        f"- total time: {report['duration_s'] / 60:.1f} min ({stages}; venv install not included)",
        f"- bar (>= {bar:.0%} over >= 20 unseen episodes): **{'met' if bar_met else 'NOT met'}**",
        "",
        "Files: `demos/` (training bags), `eval/` (evaluation bags), `checkpoint/` (with "
        "`train_log.csv`, `loss_curve.png`), `eval_plot.png`, `report.json`, `logs/`.",
        "",
        "![evaluation](eval_plot.png)",
    ]
    if animation:
        md += ["", f"![evaluation episodes]({animation})"]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return report
