"""Control-rate benchmark: command timing at 50 Hz while an ACT policy infers continuously.

Starts, each in its own process and its own DDS domain (localhost discovery only):
  * a fake robot: joint states at 100 Hz (following the commands), an rgb8 camera at 30 Hz;
  * policy_node with a random ACT checkpoint (224x224 camera, default hyper-parameters:
    d_model 512, chunk 100) inferring back to back (``inference_trigger:=rate`` at 1 kHz);
  * command_streamer at ``--rate`` Hz (or both nodes in one ``policy_stack`` process with
    ``--mode stack``);
and measures, from this (separate, otherwise idle) process, the command stream over
``--duration`` seconds:
  * DDS receive timestamps of every command (the middleware's own clock, no Python delay);
  * DDS source timestamps (when the streamer's publish call handed it to the middleware);
  * Python callback times here (includes this process's executor latency);
  * the streamer's own diagnostics (its tick statistics over 10 s windows, missed ticks);
  * policy_node's inference latency (median, p95) and chunk rate;
  * CPU use of every process.

Usage:
    python benchmarks/control_rate.py [--duration 60] [--rate 50] [--mode separate|stack]
        [--image 640x480] [--torch-threads 0] [--json results.json]
        [--status-log-period 0.5] [--no-rosout | --compare-rosout 2]

``--compare-rosout N`` measures what logging to /rosout costs the control tick in one
session: 2N runs, with and without /rosout interleaved (ABBA order, so a drift in the
machine's load falls on both), one checkpoint; ``--json`` then holds every run and the
figures of each mode.

Target (issue): at 50 Hz, command period p99 error <= 1 ms and no missed tick over 60 s.

The fake robot, the monitor and the checkpoint/parameter helpers live in
robot_policy_ros.bench.control_loop (also used by ``make bench``'s control_loop section,
which compares the stack with two baselines); this script adds the stack-only views
(receive times, callback times, policy_stack, the streamer's own windows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from robot_policy_ros.bench.control_loop import (  # noqa: E402
    Monitor,
    describe,
    make_checkpoint,
    policy_node_args,
    start_robot,
    streamer_args,
)
from robot_policy_ros.bench.procstat import cpu_seconds, diag_number  # noqa: E402
from robot_policy_ros.core.timing import period_summary  # noqa: E402
from robot_policy_ros.processes import NodeProcess, isolated_ros_env  # noqa: E402


def _mode_figures(runs: list[dict]) -> dict[str, float | int | None]:
    """Median over runs of each tick figure, worst max, total missed ticks."""

    def median(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.median(values)) if values else None

    recv = [r["subscriber_dds_received"] for r in runs]
    return {
        "runs": len(runs),
        "dds_received_error_p50_ms_median": median([d["error_p50_ms"] for d in recv]),
        "dds_received_error_p99_ms_median": median([d["error_p99_ms"] for d in recv]),
        "dds_received_error_max_ms_worst": max(d["error_max_ms"] for d in recv),
        "dds_received_missed_total": sum(int(d["missed"]) for d in recv),
        "streamer_window_p99_ms_median": median([r["streamer_window_p99_ms_median"] for r in runs]),
        "streamer_window_max_ms_worst": max(
            (r["streamer_window_max_ms_worst"] for r in runs if r["streamer_window_max_ms_worst"]),
            default=None,
        ),
        "streamer_missed_ticks_total": sum(int(r["streamer_missed_ticks"]) for r in runs),
    }


def compare_rosout(args: argparse.Namespace) -> int:
    """2N runs of this benchmark, with and without /rosout interleaved ABBA; one report."""
    tmp = tempfile.TemporaryDirectory(prefix="control_rate-rosout-")
    checkpoint = args.checkpoint
    if not checkpoint:
        checkpoint = str(Path(tmp.name) / "act")
        hw = tuple(int(v) for v in args.policy_image.split("x"))
        print(f"writing a random ACT checkpoint ({hw[0]}x{hw[1]} camera) ...")
        make_checkpoint(Path(checkpoint), "act", args.rate, hw)
    common = [
        "--duration", f"{args.duration:g}", "--rate", f"{args.rate:g}", "--mode", args.mode,
        "--image", args.image, "--policy-image", args.policy_image,
        "--torch-threads", str(args.torch_threads),
        "--realtime-priority", str(args.realtime_priority),
        "--monitor-priority", str(args.monitor_priority),
        "--warmup", f"{args.warmup:g}", "--status-log-period", f"{args.status_log_period:g}",
        "--checkpoint", checkpoint,
    ]  # fmt: skip
    # ABBA...: pair i runs with /rosout first when i is even, without first when odd.
    order = []
    for i in range(args.compare_rosout):
        order += [True, False] if i % 2 == 0 else [False, True]
    runs: list[dict] = []
    for k, rosout in enumerate(order):
        out = Path(tmp.name) / f"run{k}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *common, "--json", str(out)]
        if not rosout:
            cmd.append("--no-rosout")
        print(f"\n=== run {k + 1}/{len(order)}: {'with' if rosout else 'without'} /rosout")
        subprocess.run(cmd, check=True, cwd=str(REPO))
        runs.append({"run": k, **json.loads(out.read_text())})
    modes = {
        "with_rosout": _mode_figures([r for r in runs if r["rosout"]]),
        "without_rosout": _mode_figures([r for r in runs if not r["rosout"]]),
    }
    print(f"\n/rosout cost on the control tick ({len(order)} runs, {os.cpu_count()} CPUs):")
    print(
        "  run rosout | DDS receive period error p50 / p99 / max ms, missed | streamer "
        "10 s window p99 median / max ms, missed"
    )
    for r in runs:
        d = r["subscriber_dds_received"]
        w99, wmax = r["streamer_window_p99_ms_median"], r["streamer_window_max_ms_worst"]
        print(
            f"  {r['run']:3d} {'yes' if r['rosout'] else 'no ':6s} | {d['error_p50_ms']:6.3f} / "
            f"{d['error_p99_ms']:6.3f} / {d['error_max_ms']:7.3f}, {int(d['missed'])} | "
            + (f"{w99:6.3f} / {wmax:7.3f}" if w99 is not None else "   n/a /     n/a")
            + f", {r['streamer_missed_ticks']} (load {r['load_average_1min_after']:.1f})"
        )
    for name, m in modes.items():
        text = [f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()]
        print(f"  {name:15s}: " + ", ".join(text))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "modes": modes}, indent=2))
    tmp.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--rate", type=float, default=50.0, help="control_rate_hz")
    parser.add_argument("--mode", choices=("separate", "stack"), default="separate")
    parser.add_argument("--image", default="640x480", help="published camera WxH (rgb8)")
    parser.add_argument("--policy-image", default="224x224", help="checkpoint camera HxW")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: cores - 1")
    parser.add_argument("--realtime-priority", type=int, default=10, help="streamer SCHED_FIFO")
    parser.add_argument(
        "--monitor-priority",
        type=int,
        default=20,
        help="SCHED_FIFO priority of this measuring process and its DDS threads, as a robot's "
        "real-time controller would have (0: normal scheduling)",
    )
    parser.add_argument("--checkpoint", default="", help="use this checkpoint (default: new ACT)")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument("--domain", type=int, default=0, help="ROS_DOMAIN_ID (0: lease one)")
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument(
        "--no-rosout",
        action="store_true",
        help="start the nodes with --disable-rosout-logs (to measure what /rosout costs)",
    )
    parser.add_argument(
        "--status-log-period",
        type=float,
        default=0.0,
        help="nodes' status_log_period_s (0: default)",
    )
    parser.add_argument(
        "--compare-rosout",
        type=int,
        default=0,
        metavar="N",
        help="N pairs of runs with and without /rosout, interleaved (see above)",
    )
    args = parser.parse_args(argv)
    if args.compare_rosout > 0:
        return compare_rosout(args)

    width, height = (int(v) for v in args.image.split("x"))

    env = isolated_ros_env(args.domain or None)  # None: lease a free domain for this run
    domain = int(env["ROS_DOMAIN_ID"])
    os.environ.update({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    policy_hw = tuple(int(v) for v in args.policy_image.split("x"))
    tmp = tempfile.TemporaryDirectory(prefix="control_rate-")
    checkpoint = args.checkpoint
    if not checkpoint:
        checkpoint = str(Path(tmp.name) / "act")
        print(f"writing a random ACT checkpoint ({policy_hw[0]}x{policy_hw[1]} camera) ...")
        make_checkpoint(Path(checkpoint), "act", args.rate, policy_hw)

    common: list[str] = []
    policy_params = policy_node_args(Path(checkpoint), "torch", args.torch_threads)
    streamer_params = streamer_args(
        Path(checkpoint), args.rate, ["-p", f"realtime_priority:={args.realtime_priority}"]
    )
    if args.status_log_period > 0:
        common += ["-p", f"status_log_period_s:={args.status_log_period}"]
    if args.no_rosout:
        common.append("--disable-rosout-logs")
    logs = Path(tmp.name)
    procs: dict[str, NodeProcess] = {}
    monitor = None
    try:
        procs["robot"] = start_robot(env, (height, width), 30.0, logs / "robot.log")
        if args.mode == "stack":
            stack_params = [*policy_params, *streamer_params[2:]]  # one checkpoint:= only
            procs["policy_stack"] = NodeProcess(
                "robot_policy_ros.nodes.policy_stack",
                ros_args=[*common, *stack_params],
                env=env,
                log_path=logs / "stack.log",
            )
        else:
            procs["policy_node"] = NodeProcess(
                "robot_policy_ros.nodes.policy_node",
                ros_args=[*common, *policy_params],
                env=env,
                log_path=logs / "policy.log",
            )
            procs["command_streamer"] = NodeProcess(
                "robot_policy_ros.nodes.command_streamer",
                ros_args=[*common, *streamer_params],
                env=env,
                log_path=logs / "streamer.log",
            )
        # SCHED_FIFO for the monitor's thread and its DDS threads only.
        monitor = Monitor(priority=args.monitor_priority)
        print(f"domain {domain}: waiting for commands and inference ...")
        deadline = time.monotonic() + 180.0
        while time.monotonic() < deadline:
            dead = [name for name, p in procs.items() if not p.alive()]
            if dead:
                raise RuntimeError(f"{dead} exited:\n" + procs[dead[0]].output()[-3000:])
            inferences = diag_number(monitor.latest("policy_node"), "inferences")
            if monitor.commands_seen > 10 and inferences >= 3:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("no commands / inference within 180 s")
        time.sleep(args.warmup)

        cpu0 = {name: cpu_seconds(p.proc.pid) for name, p in procs.items()}
        cpu0["monitor"] = cpu_seconds(os.getpid())
        streamer0 = monitor.latest("command_streamer")
        policy0 = monitor.latest("policy_node")
        t_start = time.monotonic()
        monitor.recording = True
        print(f"measuring for {args.duration:g} s ...")
        time.sleep(args.duration)
        monitor.recording = False
        elapsed = time.monotonic() - t_start
        time.sleep(1.5)  # one more diagnostics message covering the end
        cpu1 = {name: cpu_seconds(p.proc.pid) for name, p in procs.items()}
        cpu1["monitor"] = cpu_seconds(os.getpid())
        streamer1 = monitor.latest("command_streamer")
        policy1 = monitor.latest("policy_node")
        windows = monitor.window("command_streamer", t_start + 10.0)
    finally:
        if monitor is not None:
            monitor.close()
        for proc in procs.values():
            proc.stop()

    period = 1.0 / args.rate
    received = period_summary(monitor.received, period)
    source = period_summary(monitor.source, period)
    callback = period_summary(monitor.callback, period)
    values = np.array(monitor.values)
    window_p99 = [diag_number(w, "period_error_p99_ms") for w in windows]
    window_max = [diag_number(w, "period_error_max_ms") for w in windows]
    missed_streamer = int(
        diag_number(streamer1, "missed_ticks") - diag_number(streamer0, "missed_ticks")
    )
    inferences = diag_number(policy1, "inferences") - diag_number(policy0, "inferences")
    cpu = {name: 100.0 * (cpu1[name] - cpu0[name]) / elapsed for name in cpu1}
    results = {
        "duration_s": elapsed,
        "rate_hz": args.rate,
        "mode": args.mode,
        "rosout": not args.no_rosout,
        "cpus": os.cpu_count(),
        "monitor_priority": args.monitor_priority,
        "load_average_1min_after": os.getloadavg()[0],
        "subscriber_dds_received": received.as_dict(),
        "subscriber_dds_source": source.as_dict(),
        "subscriber_python_callback": callback.as_dict(),
        "streamer_window_p99_ms_median": float(np.nanmedian(window_p99)) if windows else None,
        "streamer_window_p99_ms_worst": float(np.nanmax(window_p99)) if windows else None,
        "streamer_window_max_ms_worst": float(np.nanmax(window_max)) if windows else None,
        "streamer_missed_ticks": missed_streamer,
        "streamer_underrun_events": diag_number(streamer1, "underrun_events"),
        "inference_latency_median_ms": diag_number(policy1, "inference_latency_median_ms"),
        "inference_latency_p95_ms": diag_number(policy1, "inference_latency_p95_ms"),
        "inferences_per_s": inferences / elapsed,
        "commands_finite": bool(np.isfinite(values).all()) if values.size else None,
        "cpu_percent": cpu,
    }
    target = received.error_p99_ms <= 1.0 and received.missed == 0 and missed_streamer == 0
    print()
    print(
        f"control_rate: {elapsed:.0f} s at {args.rate:g} Hz, mode {args.mode}, {os.cpu_count()} "
        f"CPUs, camera {args.image} rgb8 @30 Hz -> ACT {policy_hw[0]}x{policy_hw[1]}, "
        f"measuring thread {monitor.scheduling}"
    )
    print(f"  subscriber, DDS receive time : {describe(received)}")
    print(f"  subscriber, DDS source time  : {describe(source)}")
    print(f"  subscriber, Python callback  : {describe(callback)}")
    if windows:
        print(
            f"  streamer's own ticks         : p99 per 10 s window median "
            f"{results['streamer_window_p99_ms_median']:.3f} ms worst "
            f"{results['streamer_window_p99_ms_worst']:.3f} ms, max "
            f"{results['streamer_window_max_ms_worst']:.3f} ms, missed {missed_streamer}"
        )
    else:
        print(f"  streamer's own ticks         : no diagnostics window, missed {missed_streamer}")
    print(
        f"  inference                    : median {results['inference_latency_median_ms']:.1f} "
        f"ms p95 {results['inference_latency_p95_ms']:.1f} ms, "
        f"{results['inferences_per_s']:.2f} inferences/s"
    )
    print("  CPU                          : " + ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items()))
    print(
        f"  target p99 <= 1 ms and 0 missed ticks (DDS receive time): "
        f"{'MET' if target else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
