"""Closed-loop success of a checkpoint on the pure sim, in-process and faster than real time.

A stand-in for ``make demo``'s deploy stage that needs no ROS and no wall clock, for quick
hyper-parameter iterations. It runs the same pieces the nodes run, on a simulated clock:

* ``SimWorld`` (servo physics, task, success check) and the ``Renderer`` at the camera
  size and rate the demo uses; joint states every 10 ms;
* the policy (``load_checkpoint``) fed like ``policy_node``: horizon trigger (infer when
  less than ``refill_threshold_s`` of published actions remain), the latest frame resized
  with ``core.images.resize_rgb``, the latest joint state, observation stamp = the oldest
  input stamp; the chunk becomes available ``--latency-ms`` after the inference starts
  (the real inference time is *not* charged to the simulated clock);
* the command streamer's own decision core (``core.streamer.StreamerCore``: chunk
  acceptance, blending, e-stop wait, re-anchoring, the safety filter with the
  checkpoint's limits, acceleration limit on) ticked at ``--control-rate`` Hz, exactly
  as ``command_streamer`` runs it; without ``--restart-streamer`` it carries over from one
  episode to the next, as in a demo without restarts (the sim snaps the arm home on reset:
  the core re-anchors on it and drops the chunks planned before, and the policy side, as
  policy_node's ``arm_jump_tolerance``, resets its horizon and waits for a fresh frame).

It is an approximation (no DDS transport delay, no scheduling jitter, constant latency);
the real figure is the one ``make demo`` reports.

    .venv/bin/python benchmarks/closed_loop_eval.py demo_output/checkpoint --episodes 50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robot_policy_ros.checkpoint.config import read_checkpoint_config  # noqa: E402
from robot_policy_ros.checkpoint.weights import load_checkpoint  # noqa: E402
from robot_policy_ros.core.chunk_buffer import BlendConfig, BlendMode  # noqa: E402
from robot_policy_ros.core.images import resize_rgb  # noqa: E402
from robot_policy_ros.core.joint_limits import JointLimits  # noqa: E402
from robot_policy_ros.core.state_jumps import StateJumpDetector  # noqa: E402
from robot_policy_ros.core.streamer import (  # noqa: E402
    ChunkRejectedError,
    StreamerConfig,
    StreamerCore,
)
from robot_policy_ros.policies.base import Observation  # noqa: E402
from robot_policy_ros.sim.arm import load_arm_config  # noqa: E402
from robot_policy_ros.sim.render import Renderer  # noqa: E402
from robot_policy_ros.sim.task import TaskConfig  # noqa: E402
from robot_policy_ros.sim.world import SimWorld  # noqa: E402


def evaluate(args: argparse.Namespace) -> dict:
    """Run ``args.episodes`` episodes; returns the summary (and per-episode results)."""
    import torch

    torch.set_num_threads(args.threads)
    policy = load_checkpoint(args.checkpoint, device="cpu")
    ckcfg = read_checkpoint_config(args.checkpoint)
    if args.limits_file:  # as command_streamer's limits_file parameter: replaces them
        limits = JointLimits.from_yaml(args.limits_file).reorder(policy.joint_names)
    else:
        limits = ckcfg.joint_limits().reorder(policy.joint_names)
    arm = load_arm_config(None)
    if list(arm.joint_names) != list(policy.joint_names):
        raise SystemExit(f"joint order mismatch: {arm.joint_names} vs {policy.joint_names}")
    cam = policy.camera_names[0]
    size = policy.image_shapes[cam]
    renderer = Renderer(arm, arm.cameras["front"], args.width, args.height)
    world = SimWorld(arm, TaskConfig(episode_timeout_s=args.timeout), seed=args.seed)
    names = tuple(policy.joint_names)
    core = StreamerCore(
        StreamerConfig(
            joint_names=names,
            limits=limits,
            rate_hz=args.control_rate,
            blend=BlendConfig(mode=BlendMode(args.blending)),
            ramp_in_s=args.ramp_in_s,
            e_stop_grace_s=args.grace_s,
            # As the streamer: on wherever the limits carry accelerations.
            use_acceleration_limit=not args.no_acceleration_limit,
        )
    )
    jumps = StateJumpDetector(limits.max_velocity, args.arm_jump_tolerance)
    offsets = np.arange(policy.chunk_size) / policy.fps
    span = (policy.chunk_size - 1) / policy.fps
    ctrl_dt, cam_dt, js_dt, poll_dt = 1 / args.control_rate, 1 / args.camera_rate, 0.01, 0.01
    latency = args.latency_ms * 1e-3

    t = world.time
    next_ctrl = next_cam = next_js = next_poll = t
    frame: tuple[float, np.ndarray] | None = None
    js: tuple[float, np.ndarray] | None = None
    pending: list[tuple[float, np.ndarray, float]] = []  # (available_at, chunk, t_obs)
    busy_until = -math.inf
    core.activate(world.time, world.time)
    published_end = -math.inf
    results = []
    infer_times = []
    wall0 = time.perf_counter()
    for k in range(args.episodes):
        ep = world.reset()  # indices 1..M, as the demo's ~/reset calls
        if args.restart_streamer:
            # The demo's protocol: command_streamer deactivated before ~/reset and activated
            # after it (buffer cleared, chunks observed before dropped, nothing published for
            # e_stop_grace_s, a ramp-in from the measured position).
            core.deactivate()
            pending.clear()
            core.activate(world.time, world.time)
        while not ep.done:
            t = min(next_ctrl, next_cam, next_js, next_poll)
            world.advance_to(t + 1e-9)
            if t >= next_js - 1e-12:
                js = (world.time, world.arm.q.copy())
                core.on_joint_state(names, js[1], js[0], t, t)
                next_js += js_dt
                if jumps.check(js[0], js[1]):
                    # As policy_node (arm_jump_tolerance): the arm snapped (the reset):
                    # horizon reset, inputs from before the jump and chunks in flight dropped.
                    published_end, frame, busy_until = -math.inf, None, -math.inf
                    pending.clear()
            if t >= next_cam - 1e-12:
                snap = world.snapshot()
                img = renderer.render(snap.q, snap.target)
                frame = (snap.time, resize_rgb(img, size))
                next_cam += cam_dt
            while pending and pending[0][0] <= t:
                _, chunk, t_obs = pending.pop(0)
                with contextlib.suppress(ChunkRejectedError):  # stale, before activation
                    core.add_chunk(names, offsets, chunk, t_obs, t, t)
            if t >= next_poll - 1e-12:
                next_poll += poll_dt
                fresh = (
                    frame is not None
                    and js is not None
                    and t - frame[0] <= args.max_age_s
                    and t - js[0] <= args.max_age_s
                )
                due = published_end - t < args.refill_threshold_s
                if due and fresh and t >= busy_until:
                    t_obs = min(frame[0], js[0])
                    obs = Observation(images={cam: frame[1]}, joint_positions=js[1], stamp=t_obs)
                    w0 = time.perf_counter()
                    chunk = policy.predict_chunk(obs)
                    infer_times.append(time.perf_counter() - w0)
                    busy_until = t + latency
                    pending.append((t + latency, chunk, t_obs))
                    published_end = max(published_end, t_obs + span)
            if t >= next_ctrl - 1e-12:
                next_ctrl += ctrl_dt
                command = core.tick(t, t).command
                if command is not None:
                    world.command_position(arm.clamp(command), t)
                core.buffer.prune(t)
        tip = world.kin.tip(world.arm.q)
        results.append(
            {
                "index": ep.index,
                "success": bool(ep.success),
                "elapsed_s": round(ep.elapsed_s, 3),
                "target_xy": [round(float(v), 3) for v in ep.target[:2]],
                "final_tip_error_m": round(float(np.hypot(*(tip[:2] - ep.target[:2]))), 3),
                "final_tip_height_m": round(float(tip[2]), 3),
            }
        )
        if args.verbose:
            wins = sum(r["success"] for r in results)
            print(
                f"episode {k + 1}/{args.episodes}: {'success' if ep.success else 'FAILED '} "
                f"in {ep.elapsed_s:.2f}s ({wins}/{len(results)}); target "
                f"{results[-1]['target_xy']}, tip {results[-1]['final_tip_error_m']} m off, "
                f"{results[-1]['final_tip_height_m']} m high",
                flush=True,
            )
    wins = sum(r["success"] for r in results)
    ok_times = [r["elapsed_s"] for r in results if r["success"]]
    return {
        "checkpoint": str(args.checkpoint),
        "seed": args.seed,
        "episodes": len(results),
        "successes": wins,
        "success_rate": wins / len(results),
        "mean_time_to_success_s": float(np.mean(ok_times)) if ok_times else None,
        "inference_ms_median": 1e3 * float(np.median(infer_times)) if infer_times else None,
        "wall_s": time.perf_counter() - wall0,
        "blending": args.blending,
        "results": results if args.verbose else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the summary as JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=7777, help="sim seed (unseen in training)")
    p.add_argument("--timeout", type=float, default=12.0, help="episode timeout [s]")
    p.add_argument("--width", type=int, default=160, help="camera image width")
    p.add_argument("--height", type=int, default=120, help="camera image height")
    p.add_argument("--camera-rate", type=float, default=15.0)
    p.add_argument("--control-rate", type=float, default=50.0)
    p.add_argument("--blending", default="replace", choices=[m.value for m in BlendMode])
    p.add_argument("--refill-threshold-s", type=float, default=0.5)
    p.add_argument("--max-age-s", type=float, default=0.25)
    p.add_argument("--latency-ms", type=float, default=30.0)
    p.add_argument("--ramp-in-s", type=float, default=2.0)
    p.add_argument("--limits-file", default="", help="limits YAML (default: checkpoint's)")
    p.add_argument(
        "--no-acceleration-limit",
        action="store_true",
        help="velocity limit only, even where the limits carry max_acceleration "
        "(as the streamer with use_acceleration_limit set to false)",
    )
    p.add_argument(
        "--restart-streamer",
        action="store_true",
        help="deactivate/activate the streamer around every reset (the demo's protocol)",
    )
    p.add_argument("--grace-s", type=float, default=0.5, help="streamer e_stop_grace_s")
    p.add_argument("--arm-jump-tolerance", type=float, default=0.25, help="policy_node's (0: off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    print(json.dumps(evaluate(args), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
