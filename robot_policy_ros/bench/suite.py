"""``make bench``: the benchmark suite, written as JSON + markdown + PNG plots.

Sections (each a list of rows in ``results.json``):
- ``machine``: CPU, cores, load, library versions: figures only compare within one run.
- ``inference``: per family (MLP, ACT, Diffusion with 10 and 100 sampler steps) and image
  size, the stack's predict_chunk per backend against the same exported graph run bare by
  each installed runtime (ONNX Runtime, OpenVINO; the fastest of them is the floor for that
  network), plus torchvision's ResNet18 in torch and ONNX Runtime
  (robot_policy_ros.bench.inference).
- ``transport``: delivery rate and age of frames at a best-effort / reliable subscriber,
  raw and JPEG, with and without config/fastdds.xml (robot_policy_ros.bench.transport).
- ``seams``: per blending mode, the largest joint step at chunk seams over the largest inside
  chunks, from the streamer's own core on a synthetic chunk stream (bench.seams).
- ``memory``: resident memory and CPU of each node of the deployed stack on the embedded
  sim, running together (bench.memory).
- ``training``: samples/s of ``robot-policy train`` per family at the demo's CPU sizes, on
  synthetic bags (bench.training).
- ``control_loop``: command period error (p50 / p99 / max by DDS source timestamp) and missed
  ticks at 50 and 200 Hz while ACT and Diffusion infer continuously, for the stack and two
  baselines run in the same benchmark (a naive timer node, a synchronous chunk loop), and
  the baseline / stack p99 ratios (robot_policy_ros.bench.control_loop, .baselines).
- ``camera_to_command``: frame header.stamp to the first command computed from it, against
  the bare forward time of the same network in the same run (robot_policy_ros.bench.control_loop).

``--smoke`` runs every section with tiny models and images in about a minute (it is
part of ``make test``); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from robot_policy_ros.params.policy_node import INFERENCE_BACKENDS

SECTIONS = (
    "inference",
    "transport",
    "seams",
    "memory",
    "training",
    "control_loop",
    "camera_to_command",
)
FULL_SIZES = ((96, 96), (224, 224), (480, 640))
FULL_FAMILIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("mlp", {}),
    ("act", {}),
    ("diffusion_steps10", {"num_inference_steps": 10}),
    ("diffusion_steps100", {"num_inference_steps": 100}),
)
SMOKE_FAMILIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("mlp", {"vision_backbone": "tiny_cnn", "backbone_width": 8, "hidden_dims": (32,)}),
    (
        "act",
        {
            "vision_backbone": "tiny_cnn",
            "backbone_width": 8,
            "chunk_size": 8,
            "d_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "n_vae_encoder_layers": 1,
            "latent_dim": 8,
        },
    ),
    (
        "diffusion_steps3",
        {
            "vision_backbone": "tiny_cnn",
            "backbone_width": 8,
            "horizon": 8,
            "n_obs_steps": 2,
            "n_action_steps": 4,
            "down_dims": (16, 32),
            "n_groups": 4,
            "diffusion_step_embed_dim": 16,
            "spatial_softmax_num_keypoints": 8,
            "num_inference_steps": 3,
        },
    ),
)


# -- control_loop / camera_to_command (robot_policy_ros.bench.control_loop) ------------------
LOOP_FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "act": ("act", "act", {}),
    "diffusion_steps10": ("diffusion_steps10", "diffusion", {"num_inference_steps": 10}),
}
LOOP_RATES = (50.0, 200.0)
SMOKE_LOOP_FAMILY = ("act", "act", dict(SMOKE_FAMILIES[1][1]))
CAMERA_MLP_FAMILY = ("mlp", "mlp", {})


def loop_spec(args: argparse.Namespace) -> dict[str, Any]:
    """What the control_loop / camera_to_command child process runs (full or smoke sizes)."""
    spec: dict[str, Any] = {"monitor_priority": 20}
    if "control_loop" not in args.skip:
        families = [LOOP_FAMILIES[f] for f in args.loop_families]
        if args.smoke:
            families = [SMOKE_LOOP_FAMILY]
        spec["control_loop"] = {
            "families": families,
            "rates": args.loop_rates or ([200.0] if args.smoke else list(LOOP_RATES)),
            "duration_s": args.loop_seconds or (3.0 if args.smoke else 60.0),
            "warmup_s": 0.3 if args.smoke else 8.0,
            "image_hw": [224, 224],
            "backend": args.loop_backend,
            "torch_threads": 0,
            "concurrent": args.smoke,  # the three systems at once: start-up once
        }
    if "camera_to_command" not in args.skip:
        if args.smoke:
            cases = [{"family": SMOKE_LOOP_FAMILY, "image_hw": [48, 64], "backend": "torch"}]
        else:
            cases = [
                # ACT on the full 640x480 frame (the forward dominates), and the MLP on
                # 96x96 from the same frames on ONNX Runtime (its fastest runtime here,
                # doc/benchmarks.md): a small forward,
                # so that what the stack adds around it is not lost in the forward's noise.
                {
                    "family": LOOP_FAMILIES["act"],
                    "image_hw": [480, 640],
                    "backend": args.loop_backend,
                },
                {
                    "family": CAMERA_MLP_FAMILY,
                    "image_hw": [96, 96],
                    "camera_hw": [480, 640],
                    "backend": "onnxruntime",
                },
            ]
            if len(os.sched_getaffinity(0)) >= 2:  # the CPUs this run may use
                # The same MLP with a core of its own: what is contention, what the stack.
                cases.append({**cases[-1], "isolate_inference_core": True})
        spec["camera_to_command"] = {
            "cases": cases,
            "rate": 200.0,
            "duration_s": args.camera_seconds or (1.5 if args.smoke else 60.0),
            "warmup_s": 0.3 if args.smoke else 5.0,
            "bare_runs": 5 if args.smoke else 20,
            "torch_threads": 0,
        }
    return spec


def _hw(text: str) -> tuple[int, int]:
    """ "224" -> (224, 224); "480x640" -> (480, 640) (height x width)."""
    h, _, w = text.lower().partition("x")
    return int(h), int(w or h)


def machine_info(threads: int) -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for module in ("onnxruntime", "openvino"):
        try:
            info[module] = importlib.import_module(module).__version__
        except ImportError:
            info[module] = None
    return info


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (also the body of doc/benchmarks.md)."""
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, load "
        f"{', '.join(f'{v:.1f}' for v in m['load_average_1_5_15'])} at start; torch "
        f"{m['torch']}, onnxruntime {m['onnxruntime']}, openvino {m.get('openvino')}, "
        f"{m['threads']} threads, "
        f"OMP_WAIT_POLICY={m['omp_wait_policy'] or 'unset'}; {m['time_utc']}."
        + (" Smoke run: the figures mean nothing." if results.get("smoke") else ""),
        "",
        "## Inference (median ms; ratio = stack / the fastest runtime's bare exported graph)",
        "",
        "| policy | image | torch | onnxruntime | openvino | bare graph ORT | bare graph OV | "
        "best ratio | ResNet18 torch | ResNet18 ORT |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ms(lat: dict[str, Any], key: str) -> str:
        return f"{lat[key]['median_ms']:.1f}" if key in lat else "-"

    for r in results["inference"]:
        lat, ref = r["latency"], r["reference_resnet18"]
        best = min(r["ratio_to_floor"].values())
        cells = [ms(lat, k) for k in ("torch", "onnxruntime", "openvino")]
        cells += [ms(lat, f"bare_graph_{k}") for k in ("onnxruntime", "openvino")]
        lines.append(
            f"| {r['variant']} | {r['image']} | {' | '.join(cells)} | {best:.2f} "
            f"({r['fastest_backend']}) | {ms(ref, 'resnet18_torch')} | "
            f"{ms(ref, 'resnet18_onnxruntime')} |"
        )
    lines += [
        "",
        "## Image transport (frames received of those published at 30 Hz; age = arrival - "
        "header.stamp)",
        "",
        "| image | transport | QoS | profile | received / published | fps | age p50 ms | "
        "age p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["transport"]:
        age50 = f"{r['age_p50_ms']:.1f}" if r["age_p50_ms"] is not None else "-"
        age99 = f"{r['age_p99_ms']:.1f}" if r["age_p99_ms"] is not None else "-"
        lines.append(
            f"| {r['image']} | {r['transport']} | {r['qos']} | {r['profile']} | "
            f"{r['received']} / {r['published']} | {r['received_fps']:.1f} | {age50} | {age99} |"
        )
    lines += _seams_markdown(results["seams"]) + _memory_markdown(results["memory"])
    lines += _training_markdown(results["training"]) + loop_markdown(results)
    lines += ["", f"Plots: {', '.join(results.get('plots', [])) or 'none'}.", ""]
    return "\n".join(lines)


def loop_markdown(results: dict[str, Any]) -> list[str]:
    """Tables of the control_loop and camera_to_command sections."""

    def ms(v: Any, fmt: str = ".3f") -> str:
        return "-" if v is None else format(v, fmt)

    lines: list[str] = []
    rows = results.get("control_loop", [])
    if rows:
        lines += [
            "",
            "## Control loop (command period error by DDS source timestamp; stack = policy_node "
            "+ command_streamer, baselines: naive timer node, synchronous chunk loop)",
            "",
            "| family | rate Hz | system | p50 ms | p99 ms | max ms | missed ticks | commands | "
            "p99 ratio naive / stack | p99 ratio chunk loop / stack | load 1 min |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in rows:
            lines.append(
                f"| {r['family']} | {r['rate_hz']:g} | {r['system']} | "
                f"{r['period_error_p50_ms']:.3f} | {r['period_error_p99_ms']:.3f} | "
                f"{r['period_error_max_ms']:.3f} | {r['missed_ticks']} | {r['commands']} | "
                f"{ms(r.get('p99_ratio_naive_timer'), '.0f')} | "
                f"{ms(r.get('p99_ratio_chunk_loop'), '.0f')} | {r['load_average_1min']:.1f} |"
            )
    rows = results.get("camera_to_command", [])
    if rows:
        lines += [
            "",
            "## Camera to command (frame header.stamp -> first command computed from it; "
            "median ms)",
            "",
            "| family | camera -> model input | backend | control Hz | latency | "
            "frame -> chunk | frame age when taken | conversion | in-node predict_chunk | "
            "chunk build + publish | chunk -> command | bare forward | "
            "overhead (latency - bare) | frames | load 1 min |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- |",
        ]
        for r in rows:
            core = " (own core)" if r.get("inference_core_isolated") else ""
            lines.append(
                f"| {r['family']}{core} | {r.get('camera', r['image'])} -> {r['image']} | "
                f"{r['backend']} | {r['control_rate_hz']:g} | "
                f"{ms(r['latency_ms']['median'], '.1f')} | "
                f"{ms(r['image_to_chunk_ms']['median'], '.1f')} | "
                f"{ms(r.get('node_observation_age_median_ms'), '.1f')} | "
                f"{ms(r.get('node_observation_build_median_ms'), '.1f')} | "
                f"{ms(r['node_predict_chunk_median_ms'], '.1f')} | "
                f"{ms(r.get('node_chunk_publish_median_ms'), '.1f')} | "
                f"{ms(r['chunk_to_command_ms']['median'], '.1f')} | "
                f"{ms(r['bare_forward_ms']['median'], '.1f')} | "
                f"{ms(r['stack_overhead_ms'], '.1f')} | {r['samples']} / {r['frames']} | "
                f"{r['load_average_1min']:.1f} |"
            )
    return lines


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def _seams_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    sc = rows[0]["scenario"]
    lines = [
        "",
        "## Chunk seams (largest joint step at seams / inside chunks; rad per tick)",
        "",
        f"Synthetic chunks: {sc['chunk_points']} actions at {sc['chunk_fps']:g} fps, a new "
        f"one every {sc['inference_period_s']:g} s, {sc['latency_s'] * 1e3:g} ms latency, "
        f"per-chunk error offset {sc['chunk_offset_std_rad']:g} rad + slope "
        f"{sc['chunk_slope_std_rad_s']:g} rad/s (1 sigma); {sc['control_rate_hz']:g} Hz, "
        f"{sc['duration_s']:g} s. Target: blended by the buffer; command: after the safety "
        "filter.",
        "",
        "| blending | target seam | target inside | target ratio | command seam | "
        "command inside | command ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        t, c = r["target"], r["command"]
        lines.append(
            f"| {r['mode']} | {t['seam_max_step']:.4f} | {t['inside_max_step']:.4f} | "
            f"{_ratio(t['ratio'])} | {c['seam_max_step']:.4f} | {c['inside_max_step']:.4f} | "
            f"{_ratio(c['ratio'])} |"
        )
    return lines


def _memory_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        f"## Resident memory per node (the stack running together, {rows[0]['image']} camera)",
        "",
        "| node | first MB | last MB | max MB | CPU % |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        name = f"{r['node']} ({r['policy']})" if r["policy"] else r["node"]
        lines.append(
            f"| {name} | {r['rss_first_mb']:.0f} | {r['rss_last_mb']:.0f} | "
            f"{r['rss_max_mb']:.0f} | {r['cpu_percent']:.0f} |"
        )
    return lines


def _training_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Training throughput (robot-policy train on synthetic bags)",
        "",
        "| policy | image | batch | threads | samples/s | first loss | final loss |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['image_size']} | {r['batch_size']} | {r['torch_threads']} | "
            f"{r['samples_per_s_median']:.1f} | {r['first_loss']:.3f} | {r['final_loss']:.3f} |"
        )
    return lines


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """inference.png and transport.png; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = results["inference"]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4))
        labels = [f"{r['variant']}\n{r['image']}" for r in rows]
        keys = [k for k in rows[0]["latency"] if all(k in r["latency"] for r in rows)]
        width = 0.8 / len(keys)
        for i, key in enumerate(keys):
            vals = [r["latency"][key]["median_ms"] for r in rows]
            offset = (i - (len(keys) - 1) / 2) * width
            ax.bar([x + offset for x in range(len(rows))], vals, width, label=key)
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_ylabel("median latency (ms)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_title("predict_chunk per backend vs the bare exported graph")
        fig.tight_layout()
        fig.savefig(out / "inference.png", dpi=100)
        plt.close(fig)
        written.append("inference.png")
    rows = results["transport"]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4))
        labels = [
            f"{r['image']} {r['transport']}\n{r['qos']}\n"
            f"{'profile' if r['profile'].startswith('config') else 'default'}"
            for r in rows
        ]
        ax.bar(range(len(rows)), [r["received_fps"] for r in rows])
        ax.axhline(30.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(rows)), labels, fontsize=6)
        ax.set_ylabel("frames/s received (30 published)")
        ax.set_title("image delivery at the subscriber")
        fig.tight_layout()
        fig.savefig(out / "transport.png", dpi=100)
        plt.close(fig)
        written.append("transport.png")
    rows = results.get("seams") or []
    if rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        x = range(len(rows))
        for i, key in enumerate(("target", "command")):
            ax.bar(
                [k + (i - 0.5) * 0.4 for k in x], [r[key]["ratio"] for r in rows], 0.4, label=key
            )
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(list(x), [r["mode"] for r in rows], fontsize=8)
        ax.set_ylabel("largest step at seams / inside chunks")
        ax.legend(fontsize=8)
        ax.set_title("chunk seam smoothness per blending mode")
        fig.tight_layout()
        fig.savefig(out / "seams.png", dpi=100)
        plt.close(fig)
        written.append("seams.png")
    written += loop_plot(results, out, plt)
    return written


def loop_plot(results: dict[str, Any], out: Path, plt: Any) -> list[str]:
    """control_loop.png: period-error distribution (quantiles, log scale) per system, one
    panel per family and rate."""
    rows = results.get("control_loop", [])
    if not rows:
        return []
    from robot_policy_ros.bench.control_loop import QUANTILES

    groups = sorted({(r["family"], r["rate_hz"]) for r in rows})
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), squeeze=False)
    for ax, (family, rate) in zip(axes[0], groups, strict=True):
        for r in rows:
            if (r["family"], r["rate_hz"]) == (family, rate) and r["error_quantiles_ms"]:
                vals = [max(v, 1e-4) for v in r["error_quantiles_ms"]]
                ax.plot(vals, QUANTILES, marker=".", label=r["system"])
        ax.set_xscale("log")
        ax.axvline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xlabel("period error (ms, log)")
        ax.set_ylabel("percentile")
        ax.set_title(f"{family} @ {rate:g} Hz", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("command period error by DDS source timestamp")
    fig.tight_layout()
    fig.savefig(out / "control_loop.png", dpi=100)
    plt.close(fig)
    return ["control_loop.png"]


def main(argv: list[str] | None = None) -> int:
    """Run the suite; writes results.json, results.md and the plots into --out."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench_output")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (make test)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--runs", type=int, default=None, help="timed rounds per candidate")
    p.add_argument("--transport-seconds", type=float, default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    p.add_argument(
        "--families",
        nargs="+",
        default=None,
        choices=[label for label, _ in FULL_FAMILIES],
        help="inference: only these (default: all)",
    )
    p.add_argument("--sizes", nargs="+", default=None, help="inference: HxW sizes")
    # control_loop / camera_to_command
    p.add_argument("--loop-seconds", type=float, default=None, help="control_loop: per system")
    p.add_argument("--loop-rates", type=float, nargs="+", default=None, help="control_loop: Hz")
    p.add_argument(
        "--loop-families", nargs="+", default=list(LOOP_FAMILIES), choices=list(LOOP_FAMILIES)
    )
    p.add_argument(
        "--loop-backend",
        default="torch",
        choices=INFERENCE_BACKENDS,
        help="inference backend of policy_node and the baselines (control_loop, camera)",
    )
    p.add_argument("--camera-seconds", type=float, default=None, help="camera_to_command")
    args = p.parse_args(argv)

    from robot_policy_ros.inference.threads import passive_omp_wait

    passive_omp_wait()  # before torch loads

    from robot_policy_ros.bench.inference import inference_table
    from robot_policy_ros.bench.transport import transport_table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = args.runs or (3 if args.smoke else 20)
    results: dict[str, Any] = {
        "smoke": args.smoke,
        "machine": machine_info(args.threads),
        **{section: [] for section in SECTIONS},
    }
    t0 = time.monotonic()
    if "inference" not in args.skip:
        families = SMOKE_FAMILIES if args.smoke else FULL_FAMILIES
        if args.families and not args.smoke:
            families = tuple(f for f in FULL_FAMILIES if f[0] in args.families)
        sizes = [(32, 32)] if args.smoke else list(FULL_SIZES)
        if args.sizes:
            sizes = [_hw(s) for s in args.sizes]
        results["inference"] = inference_table(list(families), sizes, args.threads, runs)
    if "transport" not in args.skip:
        seconds = args.transport_seconds or (1.0 if args.smoke else 5.0)
        if args.smoke:
            results["transport"] = transport_table(
                [(48, 64)], seconds, ("raw",), ("best_effort",), log_dir=out / "logs"
            )
        else:
            results["transport"] = transport_table(
                [(480, 640), (720, 1280)], seconds, log_dir=out / "logs"
            )
    if "seams" not in args.skip:
        from robot_policy_ros.bench.seams import SeamScenario, seams_table

        results["seams"] = seams_table(SeamScenario(duration_s=8.0 if args.smoke else 60.0))
    if "memory" not in args.skip:
        from robot_policy_ros.bench.memory import memory_table

        if args.smoke:
            tiny = {"vision_backbone": "tiny_cnn", "backbone_width": 8, "hidden_dims": [32]}
            results["memory"] = memory_table(
                "mlp", tiny, warmup_s=8.0, seconds=2.0, image_hw=(48, 64), log_dir=out / "logs"
            )
        else:
            results["memory"] = memory_table("act", log_dir=out / "logs")
    if "training" not in args.skip:
        from robot_policy_ros.bench.training import training_table
        from robot_policy_ros.demo.config import CPU_DEMO_SIZES

        if args.smoke:
            rows = [(label.split("_")[0], o) for label, o in SMOKE_FAMILIES]
            kw = {"steps": 4, "episodes": 2, "image_size": 32, "batch_size": 4}
        else:
            rows = [
                (name, {"vision_backbone": "resnet18", **o}) for name, o in CPU_DEMO_SIZES.items()
            ]
            kw = {"steps": 60, "episodes": 6, "image_size": 64, "batch_size": 32}
        results["training"] = training_table(rows, threads=args.threads, **kw)
    spec = loop_spec(args)
    if len(spec) > 1:  # control_loop / camera_to_command: in a child process of their own
        from robot_policy_ros.bench.control_loop import run_in_subprocess

        results.update(run_in_subprocess(spec, out / "logs", parallel=args.smoke))
    results["duration_s"] = time.monotonic() - t0
    results["plots"] = plots(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
    print(f"bench: wrote {out}/results.json, results.md, {', '.join(results['plots'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
