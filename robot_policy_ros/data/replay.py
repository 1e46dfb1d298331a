"""Replay recorded episodes through a checkpoint: predicted vs demonstrated actions.

The regression check to run before a new checkpoint goes on the arm
(``robot-policy predict CKPT --bag BAG... --out report.json``): every bag is played through
the policy with the observations policy_node would build from the same messages, and the
predicted actions are compared with the demonstrated ones, per joint, in joint units.

How a bag is played (the policy_node rules, the same code where it matters):

- The bag's messages are taken in log (receive) order. Joint states are mapped to the
  checkpoint's joint order by name (:class:`JointStateMapper`; a message that lacks a
  joint or is non-finite is skipped and counted); camera ``NAME`` is read from a topic
  ``.../NAME/image_raw`` (or ``.../compressed``). Every input goes into an
  :class:`ObservationGate` by its ``header.stamp`` and into the observation history.
- An observation is taken after every ``stride``-th frame of the checkpoint's first camera,
  with the node clock at that frame's stamp: the gate's freshness rules
  (``max_observation_age_s``) apply, and the Observation is built by
  :class:`~robot_policy_ros.core.observation_builder.ObservationBuilder` (image
  conversion and fit as in training, history by stamp 1/fps apart), as policy_node does.
  The policy's state is reset at the start of every bag (policy_node's activation);
  Diffusion's sampling noise is seeded per bag.
- Action i of the predicted chunk is for ``stamp + i / fps`` (stamp = the observation's,
  the oldest input). The demonstration at those times is the commanded positions held
  until the next command (``action_source="commands"``, as training aligns them) or the
  measured joint positions interpolated (``"measured"``); "auto" uses the checkpoint's
  training ``action_source`` where recorded, else commands where the bag has any.
  Times after the last joint state are not compared.

Reported per joint (mean absolute, RMS and largest absolute error), overall and per bag,
for the first action of each chunk and for every action of it where demonstrated. No
rclpy here.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.core.images import ImageDecodeError
from robot_policy_ros.core.observation import JOINTS, ObservationGate
from robot_policy_ros.core.observation_builder import ObservationBuilder
from robot_policy_ros.core.observation_health import JointStateError, JointStateMapper
from robot_policy_ros.data.alignment import ACTION_SOURCES, interpolate, zero_order_hold
from robot_policy_ros.data.bag_reader import (
    IMAGE_TYPES,
    JOINT_STATE_TYPE,
    BagReadError,
    TopicConfig,
    camera_topic_matches,
    find_bags,
    open_bag,
    read_episode,
    stamp_to_sec,
    topic_matches,
)

#: policy_node's default ``max_observation_age_s`` (params/policy_node.py).
DEFAULT_MAX_AGE_S = 0.25
DEFAULT_TOPICS = TopicConfig()


class ReplayError(ValueError):
    """A bag or checkpoint that cannot be replayed (the message names the fix)."""


@dataclass
class BagReplay:
    """What one bag gave: per observation, its stamp, the chunk and the demonstration."""

    path: Path
    stamps: list[float] = field(default_factory=list)
    predicted: list[np.ndarray] = field(default_factory=list)  # (K, J) each
    demonstrated: list[np.ndarray] = field(default_factory=list)  # (K, J), nan: not known
    skipped: Counter = field(default_factory=Counter)
    action_source: str = ""
    start: float = 0.0


def error_stats(errors: np.ndarray, joint_names: Sequence[str]) -> dict[str, Any]:
    """Per-joint mean |e|, RMS and max |e| of ``errors`` (N, J), nan entries ignored."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1, len(joint_names))
    out: dict[str, Any] = {"samples": int(np.isfinite(errors).all(axis=1).sum()), "joints": {}}
    for j, name in enumerate(joint_names):
        col = errors[:, j]
        col = col[np.isfinite(col)]
        if col.size == 0:
            out["joints"][name] = {"mean_abs": None, "rms": None, "max_abs": None}
            continue
        out["joints"][name] = {
            "mean_abs": float(np.mean(np.abs(col))),
            "rms": float(math.sqrt(np.mean(col**2))),
            "max_abs": float(np.max(np.abs(col))),
        }
    return out


def _camera_topics(connections: Sequence[Any], cameras: Sequence[str]) -> dict[str, Any]:
    """Checkpoint camera -> the bag connection carrying it (raw preferred to compressed)."""
    found: dict[str, Any] = {}
    for cam in cameras:
        matches = [
            c
            for c in connections
            if c.msgtype in IMAGE_TYPES and camera_topic_matches(c.topic, cam)
        ]
        raw = [c for c in matches if c.msgtype.endswith("/Image")]
        if raw or matches:
            found[cam] = (raw or matches)[0]
    return found


def _demonstration(
    path: Path, joint_names: Sequence[str], topics: TopicConfig, camera: str, source: str
) -> tuple[str, Any]:
    """(action source used, f(times) -> (T, J) demonstrated targets, nan where unknown)."""
    # Only the joints and commands are used; one camera's frames, decoded tiny, because
    # the reader needs a camera.
    rec = read_episode(path, dataclasses.replace(topics, cameras=(camera,)), (8, 8), joint_names)
    if source == "auto":
        source = "commands" if rec.command_times.size else "measured"
    if source == "commands" and rec.command_times.size == 0:
        raise ReplayError(
            f"{path}: no commands recorded on '{topics.commands}' or '{topics.trajectory}'; "
            "compare with the measured joint positions instead (action_source='measured')"
        )
    end = float(rec.joint_stamps[-1])

    def at(times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=np.float64)
        if source == "commands":
            vals, valid = zero_order_hold(times, rec.command_times, rec.command_positions)
        else:
            vals, inside, gap_ok = interpolate(
                times, rec.joint_stamps, rec.joint_positions, max_gap=0.1
            )
            valid = inside & gap_ok
        vals[~valid | (times > end)] = np.nan
        return vals

    return source, at


def replay_bag(
    policy: Any,
    predictor: Any,
    path: str | Path,
    stride: int = 1,
    action_source: str = "auto",
    topics: TopicConfig = DEFAULT_TOPICS,
    image_fit: str = "checkpoint",
    max_observation_age_s: float = DEFAULT_MAX_AGE_S,
    seed: int = 0,
) -> BagReplay:
    """Play one bag through ``predictor`` (see the module docstring); ``policy`` is the
    loaded checkpoint (its joints, cameras, fps, history length)."""
    import torch

    path = Path(path)
    joints = list(policy.joint_names)
    cameras = list(policy.camera_names)
    fps = float(policy.fps)
    source, demo_at = _demonstration(path, joints, topics, cameras[0], action_source)
    result = BagReplay(path=path, action_source=source)
    builder = ObservationBuilder(
        policy.config.cameras,
        int(policy.n_obs_steps),
        fps,
        image_fit=image_fit,
        keep_margin_s=max_observation_age_s + 1.0 / fps,
    )
    gate = ObservationGate(cameras, max_observation_age_s)
    mapper = JointStateMapper(joints)
    policy.reset()
    torch.manual_seed(seed)
    offsets = np.arange(policy.chunk_size) / fps
    reader = open_bag(path)
    try:
        conns = reader.connections
        js = [
            c
            for c in conns
            if c.msgtype == JOINT_STATE_TYPE and topic_matches(c.topic, topics.joint_states)
        ]
        cams = _camera_topics(conns, cameras)
        missing = [c for c in cameras if c not in cams]
        if not js or missing:
            what = f"cameras {missing}" if missing else f"joint states '{topics.joint_states}'"
            raise ReplayError(
                f"{path}: no topic for {what} the checkpoint needs (topics: "
                f"{sorted(c.topic for c in conns)})"
            )
        role = {c.id: JOINTS for c in js}
        role.update({c.id: cam for cam, c in cams.items()})
        primary_frames = 0
        for conn, _log_ns, raw in reader.messages(connections=[c for c in conns if c.id in role]):
            name = role[conn.id]
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = stamp_to_sec(msg.header.stamp)
            if name == JOINTS:
                try:
                    positions = mapper.map(msg.name, msg.position)
                except JointStateError:
                    result.skipped["joint_state_refused"] += 1
                    continue
                gate.set_joints(stamp, positions)
                builder.add(JOINTS, stamp, positions)
                continue
            gate.set_camera(name, stamp, msg)
            builder.add(name, stamp, msg)
            if name != cameras[0]:
                continue
            primary_frames += 1
            if (primary_frames - 1) % stride:
                continue
            snap = gate.snapshot(stamp)
            if not snap.ok:
                result.skipped["inputs_missing_or_stale"] += 1
                continue
            try:
                built = builder.build(snap)
            except ImageDecodeError:
                result.skipped["image_refused"] += 1
                continue
            if built is None:
                result.skipped["no_history"] += 1
                continue
            chunk = np.asarray(predictor.predict_chunk(built[0]), dtype=np.float64)
            result.stamps.append(snap.stamp)
            result.predicted.append(chunk)
            result.demonstrated.append(demo_at(snap.stamp + offsets))
    finally:
        reader.close()
    if result.stamps:
        result.start = result.stamps[0]
    return result


def _summary(replays: Sequence[BagReplay], joints: Sequence[str]) -> dict[str, Any]:
    if not any(r.stamps for r in replays):
        return {"first_action": error_stats(np.zeros((0, len(joints))), joints)}
    pred = np.concatenate([np.stack(r.predicted) for r in replays if r.stamps])
    demo = np.concatenate([np.stack(r.demonstrated) for r in replays if r.stamps])
    err = pred - demo  # nan where not demonstrated
    return {
        "first_action": error_stats(err[:, 0], joints),
        "chunk": error_stats(err.reshape(-1, len(joints)), joints),
    }


def plot_replays(
    replays: Sequence[BagReplay], joints: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """PNG: per joint, the demonstrated and predicted first action over each bag's time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(joints), 1, figsize=(9, 1.8 * len(joints) + 0.8), sharex=True, squeeze=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for b, rep in enumerate(r for r in replays if r.stamps):
        t = np.asarray(rep.stamps) - rep.start
        pred = np.stack(rep.predicted)[:, 0]
        demo = np.stack(rep.demonstrated)[:, 0]
        colour = colours[b % len(colours)]
        for j, ax in enumerate(axes[:, 0]):
            label = rep.path.name if j == 0 else None
            ax.plot(t, demo[:, j], color=colour, lw=1.5, label=label)
            ax.plot(t, pred[:, j], color=colour, lw=1.0, ls="--")
    for j, ax in enumerate(axes[:, 0]):
        ax.set_ylabel(joints[j])
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time in episode (s)   solid: demonstrated, dashed: predicted")
    if len(replays) <= 10:
        axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or "predicted vs demonstrated first action", fontsize=10)
    fig.tight_layout()
    out = Path(path).expanduser()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def replay_bags(
    checkpoint_dir: str | Path,
    bag_paths: Sequence[str | Path],
    stride: int = 1,
    backend: str = "torch",
    plot_path: str | Path | None = None,
    action_source: str = "auto",
    topics: TopicConfig = DEFAULT_TOPICS,
    image_fit: str = "checkpoint",
    max_observation_age_s: float = DEFAULT_MAX_AGE_S,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Replay ``bag_paths`` (bags or directories of bags) through the checkpoint.

    Returns a JSON-able report: ``joint_names``, ``overall`` and per-bag ``bags`` entries,
    each with ``first_action`` and ``chunk`` error statistics (per joint ``mean_abs``,
    ``rms``, ``max_abs`` in joint units, and ``samples``), the observations ``skipped`` and
    why, the ``action_source`` compared with, and ``plot`` (the PNG written, or None).

    Raises ReplayError / BagReadError naming the bag and the fix; CheckpointError for the
    checkpoint.
    """
    from robot_policy_ros.checkpoint.config import read_checkpoint_config
    from robot_policy_ros.checkpoint.weights import load_checkpoint
    from robot_policy_ros.inference import make_predictor

    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ReplayError(f"stride must be an integer >= 1, got {stride!r}")
    if action_source not in ("auto", *ACTION_SOURCES):
        raise ReplayError(
            f"action_source {action_source!r} must be one of {('auto', *ACTION_SOURCES)}"
        )
    if action_source == "auto":
        trained = read_checkpoint_config(checkpoint_dir).provenance.get("action_source")
        action_source = trained if trained in ACTION_SOURCES else "auto"
    bags = find_bags(bag_paths)
    policy = load_checkpoint(checkpoint_dir, device=device)
    policy.eval()
    predictor = make_predictor(policy, backend)
    joints = list(policy.joint_names)
    replays = []
    for bag in bags:
        try:
            replays.append(
                replay_bag(
                    policy,
                    predictor,
                    bag,
                    stride=stride,
                    action_source=action_source,
                    topics=topics,
                    image_fit=image_fit,
                    max_observation_age_s=max_observation_age_s,
                    seed=seed,
                )
            )
        except BagReadError as exc:
            raise ReplayError(str(exc)) from exc
    report: dict[str, Any] = {
        "checkpoint": str(Path(checkpoint_dir).expanduser()),
        "joint_names": joints,
        "fps": float(policy.fps),
        "chunk_size": int(policy.chunk_size),
        "stride": stride,
        "backend": backend,
        "units": "joint units (the checkpoint's, e.g. rad)",
        "error": "predicted - demonstrated",
        "overall": _summary(replays, joints),
        "bags": [
            {
                "path": str(r.path),
                "action_source": r.action_source,
                "observations": len(r.stamps),
                "skipped": dict(r.skipped),
                **_summary([r], joints),
            }
            for r in replays
        ],
        "plot": None,
    }
    if plot_path is not None:
        title = f"{Path(checkpoint_dir).name} on recorded bags"
        report["plot"] = str(plot_replays(replays, joints, plot_path, title))
    return report
