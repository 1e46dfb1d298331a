"""Read demonstration episodes from rosbag2 bags (MCAP or sqlite3) into numpy arrays.

One bag is one episode. :func:`read_episode` returns the joint states (by ``header.stamp``),
the commanded joint positions and every camera's frames (decoded to RGB and resized once),
plus the episode metadata stored next to the bag (``episode.json``).

Clocks: images and joint states carry ``header.stamp``; ``std_msgs/Float64MultiArray``
commands have no header, so their time is the bag's log (receive) time mapped onto the
stamp clock with a fit ``log_time ≈ a * stamp + b`` estimated from the joint states (the
recorder logs both topics with the same receive clock). With stamps and log times on the
same clock this just removes the transport latency; with a simulated clock it also maps
the time base.

Pure module: no rclpy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.data.bag_writer import bag_is_complete, default_typestore

LOG = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
ARRAY_COMMAND_TYPE = "std_msgs/msg/Float64MultiArray"
TRAJECTORY_TYPE = "trajectory_msgs/msg/JointTrajectory"
EPISODE_FILE = "episode.json"


class BagReadError(RuntimeError):
    """A bag cannot be read as a demonstration episode (message names the fix)."""


@dataclass(frozen=True)
class TopicConfig:
    """Which topics of a bag hold what. Names match with or without namespace prefix.

    Attributes:
        joint_states: sensor_msgs/JointState topic (measured positions).
        commands: std_msgs/Float64MultiArray commanded positions (no names: their order is
            ``command_joint_names`` or else the joint order).
        trajectory: trajectory_msgs/JointTrajectory commands, used when ``commands`` has
            no messages.
        cameras: camera names to read (``front`` reads ``front/image_raw``); None = every
            Image / CompressedImage topic.
        command_joint_names: joint order of the array commands, if not the joint order.
    """

    joint_states: str = "joint_states"
    commands: str = "forward_position_controller/commands"
    trajectory: str = "joint_trajectory_controller/joint_trajectory"
    cameras: tuple[str, ...] | None = None
    command_joint_names: tuple[str, ...] | None = None


@dataclass
class CameraStream:
    """Frames of one camera: RGB uint8 (F, H, W, 3) with their stamps (seconds)."""

    name: str
    topic: str
    stamps: np.ndarray
    log_times: np.ndarray
    frames: np.ndarray
    source_shape: tuple[int, int] = (0, 0)  # (H, W) as recorded, before the resize


@dataclass
class EpisodeRecording:
    """The arrays of one episode bag (times in seconds on the header-stamp clock)."""

    path: Path
    joint_names: list[str]
    joint_stamps: np.ndarray  # (N,)
    joint_positions: np.ndarray  # (N, J)
    joint_velocities: np.ndarray | None  # (N, J) or None when not published
    command_times: np.ndarray  # (M,)
    command_positions: np.ndarray  # (M, J)
    command_source: str  # "commands" | "trajectory" | "" (none found)
    cameras: dict[str, CameraStream]
    metadata: dict[str, Any] = field(default_factory=dict)
    clock_fit: tuple[float, float] = (1.0, 0.0)  # log ≈ a * stamp + b
    warnings: list[str] = field(default_factory=list)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)


def stamp_to_sec(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def _norm(topic: str) -> str:
    return topic.strip("/")


def topic_matches(bag_topic: str, wanted: str) -> bool:
    """``/ns/joint_states`` matches ``joint_states`` (and ``/joint_states`` itself)."""
    b, w = _norm(bag_topic), _norm(wanted)
    return bool(w) and (b == w or b.endswith("/" + w))


_IMAGE_SUFFIXES = ("/compressed", "/image_raw", "/image_rect_color", "/image_color", "/image")


def camera_topic_matches(bag_topic: str, camera: str) -> bool:
    """Does ``bag_topic`` carry camera ``camera``, also under a namespace or remap prefix?

    ``/demo_arm/front/image_raw`` is camera ``front`` (as policy_node reads it from the
    relative topic ``front/image_raw``), and also ``demo_arm_front``.
    """
    if camera_name_for_topic(bag_topic) == camera:
        return True
    base = _norm(bag_topic)
    for suffix in _IMAGE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base == camera or base.endswith("/" + camera)


def camera_name_for_topic(topic: str) -> str:
    """``/front/image_raw`` -> ``front``; ``/cam/left/image_raw/compressed`` -> ``cam_left``."""
    name = _norm(topic)
    for suffix in _IMAGE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("/", "_") or "camera"


def find_bags(paths: Iterable[str | Path]) -> list[Path]:
    """Expand data paths into episode bag directories (sorted, no duplicates).

    A path is a bag itself (has metadata.yaml or a storage file) or a directory whose
    sub-directories (searched two levels deep) are bags.
    """
    found: list[Path] = []

    def is_bag(p: Path) -> bool:
        return p.is_dir() and (
            (p / "metadata.yaml").is_file() or any(p.glob("*.mcap")) or any(p.glob("*.db3"))
        )

    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise BagReadError(f"data path {p} does not exist")
        if is_bag(p):
            found.append(p.resolve())
            continue
        if not p.is_dir():
            raise BagReadError(f"{p} is not a bag directory")
        subs = sorted(x for x in p.iterdir() if x.is_dir() and not x.name.endswith(".partial"))
        for sub in subs:
            if is_bag(sub):
                found.append(sub.resolve())
            else:
                found.extend(s.resolve() for s in sorted(sub.iterdir()) if s.is_dir() and is_bag(s))
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    if not unique:
        raise BagReadError(f"no rosbag2 bags found under {[str(p) for p in paths]}")
    return unique


def read_episode_metadata(path: str | Path) -> dict[str, Any]:
    """The ``episode.json`` stored next to a bag ({} if there is none)."""
    meta = Path(path) / EPISODE_FILE
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        LOG.warning("cannot read %s: %s", meta, exc)
        return {}


def open_bag(path: str | Path):
    """An opened rosbags AnyReader for one bag (incomplete bags explain the fix)."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not bag_is_complete(path):
        raise BagReadError(
            f"{path} has no valid metadata.yaml (the recorder was killed?); run "
            f"`python -m robot_policy_ros.data.bag_reader --recover {path}` first"
        )
    reader = AnyReader([path], default_typestore=default_typestore())
    reader.open()
    return reader


def iter_messages(
    path: str | Path, topics: Sequence[str] | None = None
) -> Iterator[tuple[str, str, int, Any]]:
    """Yield (topic, msgtype, log_time_ns, deserialized message) in log-time order."""
    reader = open_bag(path)
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, log_ns, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, log_ns, reader.deserialize(raw, conn.msgtype)
    finally:
        reader.close()


# -- images ------------------------------------------------------------------------------


def decode_image(msg: Any, msgtype: str = "sensor_msgs/msg/Image") -> np.ndarray:
    """Decode an Image / CompressedImage message to an RGB uint8 (H, W, 3) array."""
    import cv2

    if msgtype.endswith("CompressedImage"):
        buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if img is None:
            raise BagReadError(f"cannot decode a compressed image ({msg.format})")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    enc = str(msg.encoding).lower()
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    chans = {
        "rgb8": 3,
        "bgr8": 3,
        "8uc3": 3,
        "rgba8": 4,
        "bgra8": 4,
        "8uc4": 4,
        "mono8": 1,
        "8uc1": 1,
        "mono16": 2,
        "16uc1": 2,
    }.get(enc)
    if chans is None:
        raise BagReadError(f"image encoding {msg.encoding!r} not supported (use rgb8/bgr8/mono8)")
    row_bytes = w * chans
    if step < row_bytes or data.size < step * h:
        raise BagReadError(f"image {w}x{h} {enc}: step {step} / {data.size} bytes too small")
    rows = data[: step * h].reshape(h, step)[:, :row_bytes]
    if enc in ("mono16", "16uc1"):
        dtype = ">u2" if msg.is_bigendian else "<u2"
        mono = np.ascontiguousarray(rows).view(dtype).reshape(h, w)
        gray = (mono >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    img = rows.reshape(h, w, chans) if chans > 1 else rows.reshape(h, w, 1)
    if chans == 1:
        return np.repeat(img, 3, axis=2)
    if enc in ("bgr8", "8uc3"):
        return np.ascontiguousarray(img[:, :, ::-1])
    if enc in ("bgra8", "8uc4"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    if enc == "rgba8":
        return np.ascontiguousarray(img[:, :, :3])
    return np.ascontiguousarray(img)


def resize_image(img: np.ndarray, size: tuple[int, int] | None, fit: str = "resize") -> np.ndarray:
    """Bring an (H, W, 3) image to ``size`` = (H, W) by ``fit`` (core.images.fit_rgb, the
    same transform policy_node applies at deployment); None keeps it."""
    if size is None:
        return img
    from robot_policy_ros.core.images import fit_rgb

    return fit_rgb(img, size, fit)


# -- episode reading -------------------------------------------------------------------


def fit_clock(stamps: np.ndarray, log_times: np.ndarray) -> tuple[float, float]:
    """Fit ``log ≈ a * stamp + b``; with a rate within 1% of 1 only the offset is fitted.

    The median offset is robust to a few late messages (transport jitter).
    """
    if stamps.size == 0:
        return 1.0, 0.0
    offset = float(np.median(log_times - stamps))
    if stamps.size >= 10 and np.ptp(stamps) > 0:
        a, b = np.polyfit(stamps - stamps[0], log_times, 1)
        if abs(a - 1.0) > 0.01 and a > 0:
            return float(a), float(b - a * stamps[0])
    return 1.0, offset


def _reorder(names: Sequence[str], values: Sequence[float], order: dict[str, int]) -> np.ndarray:
    out = np.full(len(order), np.nan)
    for n, v in zip(names, values, strict=False):
        idx = order.get(n)
        if idx is not None:
            out[idx] = v
    return out


def read_episode(
    path: str | Path,
    topics: TopicConfig = TopicConfig(),
    image_size: tuple[int, int] | None = None,
    joint_names: Sequence[str] | None = None,
    image_fit: str = "resize",
) -> EpisodeRecording:
    """Read one episode bag: joint states, commands, camera frames and metadata.

    Args:
        path: bag directory.
        topics: which topics hold joint states, commands and cameras.
        image_size: (H, W) every frame is brought to (None keeps the recorded size).
        image_fit: how, where the aspect ratio differs (core.images.fit_rgb).
        joint_names: joint order of the arrays (default: the first joint_states message's).

    Raises BagReadError when the bag has no joint states or no camera.
    """
    path = Path(path)
    reader = open_bag(path)
    warnings: list[str] = []
    try:
        conns = reader.connections
        js_conns = [
            c
            for c in conns
            if c.msgtype == JOINT_STATE_TYPE and topic_matches(c.topic, topics.joint_states)
        ]
        cmd_conns = [
            c
            for c in conns
            if c.msgtype == ARRAY_COMMAND_TYPE and topic_matches(c.topic, topics.commands)
        ]
        traj_conns = [
            c
            for c in conns
            if c.msgtype == TRAJECTORY_TYPE and topic_matches(c.topic, topics.trajectory)
        ]
        cam_conns = []
        for c in conns:
            if c.msgtype not in IMAGE_TYPES:
                continue
            if topics.cameras is None:
                cam_conns.append((camera_name_for_topic(c.topic), c))
                continue
            cam = next((n for n in topics.cameras if camera_topic_matches(c.topic, n)), None)
            if cam is not None:
                cam_conns.append((cam, c))
        if not js_conns:
            raise BagReadError(
                f"{path}: no {JOINT_STATE_TYPE} topic matching '{topics.joint_states}' "
                f"(topics: {sorted(c.topic for c in conns)})"
            )
        if not cam_conns:
            wanted = "any camera" if topics.cameras is None else f"cameras {list(topics.cameras)}"
            raise BagReadError(
                f"{path}: no image topic for {wanted} (topics: {sorted(c.topic for c in conns)})"
            )
        cam_names = [n for n, _ in cam_conns]
        if len(set(cam_names)) != len(cam_names):
            raise BagReadError(f"{path}: two image topics map to one camera name: {cam_names}")

        js_msgs: list[tuple[float, float, list[str], Any, Any]] = []
        cmd_msgs: list[tuple[float, np.ndarray]] = []
        traj_msgs: list[tuple[float, Any]] = []
        frames: dict[str, list[tuple[float, float, np.ndarray]]] = {n: [] for n in cam_names}
        source_shapes: dict[str, tuple[int, int]] = {}
        conn_role: dict[int, tuple[str, str]] = {}
        for c in js_conns:
            conn_role[c.id] = ("js", "")
        for c in cmd_conns:
            conn_role[c.id] = ("cmd", "")
        for c in traj_conns:
            conn_role[c.id] = ("traj", "")
        for n, c in cam_conns:
            conn_role[c.id] = ("cam", n)
        wanted = [c for c in conns if c.id in conn_role]
        zero_stamps = 0
        for conn, log_ns, raw in reader.messages(connections=wanted):
            role, cam = conn_role[conn.id]
            log_t = log_ns * 1e-9
            msg = reader.deserialize(raw, conn.msgtype)
            if role == "js":
                st = stamp_to_sec(msg.header.stamp)
                if st == 0.0:
                    zero_stamps += 1
                    st = log_t
                js_msgs.append((st, log_t, list(msg.name), msg.position, msg.velocity))
            elif role == "cmd":
                cmd_msgs.append((log_t, np.asarray(msg.data, dtype=np.float64)))
            elif role == "traj":
                traj_msgs.append((log_t, msg))
            else:
                st = stamp_to_sec(msg.header.stamp)
                if st == 0.0:
                    zero_stamps += 1
                    st = log_t
                img = decode_image(msg, conn.msgtype)
                source_shapes.setdefault(cam, tuple(img.shape[:2]))
                frames[cam].append((st, log_t, resize_image(img, image_size, image_fit)))
        if zero_stamps:
            warnings.append(f"{zero_stamps} messages had a zero header.stamp; used log time")
    finally:
        reader.close()

    if not js_msgs:
        raise BagReadError(f"{path}: the joint_states topic has no messages")
    js_msgs.sort(key=lambda m: m[0])
    names = list(joint_names) if joint_names else list(js_msgs[0][2])
    order = {n: i for i, n in enumerate(names)}
    stamps, logs, pos, vel = [], [], [], []
    have_vel = True
    incomplete = 0
    for st, lt, mnames, mpos, mvel in js_msgs:
        p = _reorder(mnames, mpos, order)
        if not np.all(np.isfinite(p)):
            incomplete += 1
            continue
        stamps.append(st)
        logs.append(lt)
        pos.append(p)
        if have_vel and len(mvel) == len(mnames):
            vel.append(_reorder(mnames, mvel, order))
        else:
            have_vel = False
    if incomplete:
        warnings.append(f"{incomplete} joint_states messages lacked joints {names} or were NaN")
    if not stamps:
        raise BagReadError(f"{path}: no joint_states message has all joints {names}")
    joint_stamps = np.asarray(stamps)
    joint_logs = np.asarray(logs)
    joint_pos = np.stack(pos)
    joint_vel = np.stack(vel) if have_vel and vel else None
    a, b = fit_clock(joint_stamps, joint_logs)

    def to_stamp_clock(log_t: float) -> float:
        return (log_t - b) / a

    cmd_t: list[float] = []
    cmd_p: list[np.ndarray] = []
    source = ""
    if cmd_msgs:
        source = "commands"
        cmd_names = list(topics.command_joint_names) if topics.command_joint_names else names
        bad = 0
        for lt, data in cmd_msgs:
            if data.size != len(cmd_names):
                bad += 1
                continue
            cmd_t.append(to_stamp_clock(lt))
            cmd_p.append(_reorder(cmd_names, data, order))
        if bad:
            warnings.append(f"{bad} command messages had a length other than {len(cmd_names)}")
    elif traj_msgs:
        source = "trajectory"
        cmd_t, cmd_p = _trajectory_points(traj_msgs, order, to_stamp_clock)
    order_idx = np.argsort(np.asarray(cmd_t), kind="stable") if cmd_t else np.zeros(0, int)
    command_times = np.asarray(cmd_t, dtype=np.float64)[order_idx]
    command_positions = (
        np.stack(cmd_p)[order_idx] if cmd_p else np.zeros((0, len(names)), dtype=np.float64)
    )

    cameras: dict[str, CameraStream] = {}
    for cam, items in frames.items():
        items.sort(key=lambda f: f[0])
        topic = next(c.topic for n, c in cam_conns if n == cam)
        if items:
            arr = np.stack([f[2] for f in items])
        else:
            h, w = image_size if image_size else (0, 0)
            arr = np.zeros((0, h, w, 3), dtype=np.uint8)
        cameras[cam] = CameraStream(
            name=cam,
            topic=topic,
            stamps=np.asarray([f[0] for f in items], dtype=np.float64),
            log_times=np.asarray([f[1] for f in items], dtype=np.float64),
            frames=arr,
            source_shape=source_shapes.get(cam, (0, 0)),
        )
    return EpisodeRecording(
        path=path,
        joint_names=names,
        joint_stamps=joint_stamps,
        joint_positions=joint_pos,
        joint_velocities=joint_vel,
        command_times=command_times,
        command_positions=command_positions,
        command_source=source,
        cameras=cameras,
        metadata=read_episode_metadata(path),
        clock_fit=(a, b),
        warnings=warnings,
    )


def _trajectory_points(
    traj_msgs: list[tuple[float, Any]], order: dict[str, int], to_stamp_clock
) -> tuple[list[float], list[np.ndarray]]:
    """Flatten JointTrajectory messages into (time, positions) targets.

    A new trajectory replaces the not-yet-reached points of the previous ones (what
    joint_trajectory_controller does); a zero header.stamp means "start on receipt".
    """
    times: list[float] = []
    points: list[np.ndarray] = []
    for log_t, msg in sorted(traj_msgs, key=lambda m: m[0]):
        base = stamp_to_sec(msg.header.stamp) or to_stamp_clock(log_t)
        new_t, new_p = [], []
        for pt in msg.points:
            p = _reorder(list(msg.joint_names), pt.positions, order)
            if not np.all(np.isfinite(p)):
                continue
            new_t.append(base + stamp_to_sec(pt.time_from_start))
            new_p.append(p)
        if not new_t:
            continue
        cut = min(new_t[0], base)
        keep = [i for i, t in enumerate(times) if t < cut]
        times = [times[i] for i in keep] + new_t
        points = [points[i] for i in keep] + new_p
    return times, points


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robot_policy_ros.data.bag_reader``: summarize or recover bags."""
    import argparse

    from robot_policy_ros.data.bag_writer import recover_bag

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("paths", nargs="+", help="bag directories or directories of bags")
    parser.add_argument(
        "--recover",
        action="store_true",
        help="rebuild bags whose recorder was killed (no metadata.yaml) so they are readable",
    )
    args = parser.parse_args(argv)
    if args.recover:
        for p in args.paths:
            print(json.dumps(recover_bag(p)))
        return 0
    for bag in find_bags(args.paths):
        reader = open_bag(bag)
        try:
            counts = {c.topic: c.msgcount for c in reader.connections}
            dur = reader.duration * 1e-9
        finally:
            reader.close()
        meta = read_episode_metadata(bag)
        print(f"{bag}: {dur:.2f} s, {counts}, success={meta.get('success')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
