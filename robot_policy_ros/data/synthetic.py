"""Synthetic demonstration bags with known timing, for tests, benchmarks and smoke runs.

An episode bag holds ``joint_states`` (JointState with header stamps), one or more cameras
``<cam>/image_raw`` (rgb8 Image) and ``forward_position_controller/commands``
(Float64MultiArray). Two motions:

- ``"linear"``: q_j(t) = q0_j + v_j * (t - t_start) and command(t) = q(t + command_lead_s):
  every aligned value can be computed exactly, which the alignment tests use.
- ``"reach"``: each episode draws a goal; the joints approach it exponentially and the
  commands are the goal. The camera shows a bright square whose position encodes the
  goal, so a policy can learn the task from the image.

Log (receive) times are the stamps plus ``log_offset_s`` (a fixed transport delay).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_policy_ros.data.bag_writer import BagWriter, default_typestore, make_qos


@dataclass(frozen=True)
class SyntheticEpisode:
    """Shape and timing of a synthetic episode."""

    joint_names: tuple[str, ...] = ("joint_1", "joint_2", "joint_3")
    duration_s: float = 2.0
    start_s: float = 1000.0
    joint_rate_hz: float = 100.0
    camera_rate_hz: float = 30.0
    command_rate_hz: float = 20.0
    cameras: tuple[str, ...] = ("front",)
    image_hw: tuple[int, int] = (48, 64)
    motion: str = "linear"
    command_lead_s: float = 0.05
    log_offset_s: float = 0.002
    storage: str = "mcap"


def joint_positions_linear(t: np.ndarray, spec: SyntheticEpisode, seed: int) -> np.ndarray:
    """q(t) of the linear motion of episode ``seed`` (T, J)."""
    rng = np.random.default_rng(seed)
    q0 = rng.uniform(-1.0, 1.0, len(spec.joint_names))
    v = rng.uniform(-0.5, 0.5, len(spec.joint_names))
    return q0[None, :] + v[None, :] * (np.asarray(t)[:, None] - spec.start_s)


def _reach(t: np.ndarray, spec: SyntheticEpisode, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    j = len(spec.joint_names)
    goal = rng.uniform(-1.0, 1.0, j)
    q0 = rng.uniform(-0.2, 0.2, j)
    s = np.clip((np.asarray(t) - spec.start_s) / 0.5, 0.0, None)[:, None]
    return goal[None, :] + (q0 - goal)[None, :] * np.exp(-s), goal


def _image(spec: SyntheticEpisode, cam_index: int, goal: np.ndarray, q: np.ndarray) -> np.ndarray:
    h, w = spec.image_hw
    img = np.full((h, w, 3), 30 + 20 * cam_index, dtype=np.uint8)
    # Square at the goal (first two joints), a smaller one at the current joints.
    for vec, size, color in (
        (goal, max(2, h // 6), (250, 60, 60)),
        (q, max(1, h // 10), (60, 250, 60)),
    ):
        cy = int((vec[1 % vec.size] + 1.0) / 2.0 * (h - 1))
        cx = int((vec[0] + 1.0) / 2.0 * (w - 1))
        img[max(0, cy - size) : cy + size, max(0, cx - size) : cx + size] = color
    return img


def write_synthetic_episode(
    path: str | Path,
    spec: SyntheticEpisode = SyntheticEpisode(),
    seed: int = 0,
    success: bool = True,
) -> dict:
    """Write one synthetic episode bag (plus ``episode.json``); returns what was written.

    The returned dict holds the exact stamps and values: ``joint_t``, ``joint_q``,
    ``camera_t`` (per camera), ``command_t`` (stamp clock), ``command_q``.
    """
    ts = default_typestore()
    mt = ts.types
    path = Path(path)
    j = len(spec.joint_names)

    def times(rate: float, phase: float = 0.0) -> np.ndarray:
        n = int(np.floor(spec.duration_s * rate + 1e-9)) + 1
        return spec.start_s + phase + np.arange(n) / rate

    joint_t = times(spec.joint_rate_hz)
    # command_rate_hz <= 0 writes a bag without commands (an unusable demonstration).
    cmd_t = (
        times(spec.command_rate_hz, phase=0.5 / spec.joint_rate_hz)
        if spec.command_rate_hz > 0
        else np.zeros(0)
    )
    cam_t = {
        c: times(spec.camera_rate_hz, phase=0.003 * (i + 1)) for i, c in enumerate(spec.cameras)
    }
    if spec.motion == "linear":
        joint_q = joint_positions_linear(joint_t, spec, seed)
        cmd_q = joint_positions_linear(cmd_t + spec.command_lead_s, spec, seed)
        goal = np.zeros(j)
    elif spec.motion == "reach":
        joint_q, goal = _reach(joint_t, spec, seed)
        cmd_q = np.repeat(goal[None, :], cmd_t.size, axis=0).reshape(cmd_t.size, j)
    else:
        raise ValueError(f"unknown motion {spec.motion!r}")

    def stamp(t: float):
        ns = round(t * 1e9)
        return mt["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)

    def header(t: float, frame: str = ""):
        return mt["std_msgs/msg/Header"](stamp=stamp(t), frame_id=frame)

    events: list[tuple[float, str, bytes]] = []
    for t, q in zip(joint_t, joint_q, strict=True):
        msg = mt["sensor_msgs/msg/JointState"](
            header=header(t),
            name=list(spec.joint_names),
            position=np.asarray(q, dtype=np.float64),
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )
        events.append((t, "/joint_states", ts.serialize_cdr(msg, "sensor_msgs/msg/JointState")))
    dim = mt["std_msgs/msg/MultiArrayDimension"]
    for t, q in zip(cmd_t, cmd_q, strict=True):
        layout = mt["std_msgs/msg/MultiArrayLayout"](
            dim=[dim(label="joints", size=j, stride=j)], data_offset=0
        )
        msg = mt["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.asarray(q, np.float64))
        events.append(
            (
                t,
                "/forward_position_controller/commands",
                ts.serialize_cdr(msg, "std_msgs/msg/Float64MultiArray"),
            )
        )
    h, w = spec.image_hw
    for ci, (cam, ct) in enumerate(cam_t.items()):
        qs = np.stack([np.interp(ct, joint_t, joint_q[:, k]) for k in range(j)], axis=1)
        for t, q in zip(ct, qs, strict=True):
            img = _image(spec, ci, goal if spec.motion == "reach" else q, q)
            msg = mt["sensor_msgs/msg/Image"](
                header=header(t, cam),
                height=h,
                width=w,
                encoding="rgb8",
                is_bigendian=0,
                step=w * 3,
                data=img.reshape(-1),
            )
            events.append((t, f"/{cam}/image_raw", ts.serialize_cdr(msg, "sensor_msgs/msg/Image")))
    events.sort(key=lambda e: e[0])

    writer = BagWriter(path, spec.storage, flush_interval_s=0.0)
    writer.open()
    writer.add_topic("/joint_states", "sensor_msgs/msg/JointState", [make_qos()])
    writer.add_topic(
        "/forward_position_controller/commands", "std_msgs/msg/Float64MultiArray", [make_qos()]
    )
    for cam in spec.cameras:
        writer.add_topic(f"/{cam}/image_raw", "sensor_msgs/msg/Image", [make_qos(False)])
    for t, topic, data in events:
        writer.write(topic, data, round((t + spec.log_offset_s) * 1e9))
    stats = writer.close()
    meta = {
        "index": seed,
        "seed": seed,
        "success": success,
        "synthetic": True,
        "motion": spec.motion,
        "counts": {t: c.written for t, c in stats.topics.items()},
    }
    (path / "episode.json").write_text(json.dumps(meta, indent=2))
    return {
        "joint_t": joint_t,
        "joint_q": joint_q,
        "camera_t": cam_t,
        "command_t": cmd_t,
        "command_q": cmd_q,
        "goal": goal,
        "stats": stats,
    }


def write_synthetic_dataset(
    root: str | Path,
    num_episodes: int,
    spec: SyntheticEpisode = SyntheticEpisode(),
    seeds: Sequence[int] | None = None,
) -> list[Path]:
    """Write ``num_episodes`` episode bags ``root/episode_000000`` ...; returns their paths."""
    root = Path(root)
    paths = []
    for i in range(num_episodes):
        seed = seeds[i] if seeds is not None else i
        p = root / f"episode_{i:06d}"
        write_synthetic_episode(p, spec, seed=seed)
        paths.append(p)
    return paths
