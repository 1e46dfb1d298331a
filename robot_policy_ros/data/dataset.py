"""Torch dataset of aligned demonstration samples, with a decoded-frame cache.

Loading: every bag is read once (:func:`robot_policy_ros.data.bag_reader.read_episode`),
its frames decoded and resized to the policy's image size, and the result stored in a
cache directory keyed by the bag's path, storage-file sizes and mtimes, the image size and
the topic settings. Later runs (and epochs) read the cache: frames are memory-mapped
``.npy`` files, so DataLoader workers share the OS page cache instead of copying.

Samples follow the training batch format of the contract::

    images[cam]: float32 (n_obs, 3, H, W) in [0, 1]   (uint8 with image_dtype="uint8")
    state: float32 (n_obs, J); action: float32 (A, J); action_is_pad: bool (A,)

Observation history (``observation_delta_indices`` such as [-1, 0]): offset ``d`` is the
sample nearest to ``t + d / fps`` (clamped at the episode start).

Augmentation (training only, optional): a random shift of up to ``shift_px`` pixels per
sample and camera (edge-replicate padding then crop), the same shift for every history
frame, as in Diffusion Policy's random-crop style augmentation but keeping the image size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from robot_policy_ros.data.alignment import AlignConfig, AlignedEpisode, align_episode
from robot_policy_ros.data.bag_reader import (
    CameraStream,
    EpisodeRecording,
    TopicConfig,
    read_episode,
)
from robot_policy_ros.data.stats import compute_normalization

LOG = logging.getLogger(__name__)
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$ROBOT_POLICY_CACHE`` or ``$XDG_CACHE_HOME/robot_policy_ros/frames``."""
    env = os.environ.get("ROBOT_POLICY_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "robot_policy_ros" / "frames"


@dataclass(frozen=True)
class DatasetConfig:
    """What a dataset is built from and how.

    Attributes:
        image_size: (H, W) every camera frame is resized to.
        fps: training rate (the policy's fps).
        action_delta_indices / observation_delta_indices: the policy's offsets.
        cameras: camera names to use (None: every camera of the first bag).
        joint_names: joint order (None: the first bag's joint_states order).
        action_source: "commands" or "measured" (see alignment).
        topics: topic names in the bags.
        max_state_gap_s / max_camera_lag_s: alignment tolerances.
        cache_dir: decoded-frame cache ("" disables it; None: :func:`default_cache_dir`).
        image_fit: how frames of another aspect ratio than ``image_size`` are brought to it
            (resize, crop, letterbox; recorded in the checkpoint, applied by policy_node).
    """

    image_size: tuple[int, int]
    fps: float
    action_delta_indices: tuple[int, ...]
    observation_delta_indices: tuple[int, ...] = (0,)
    cameras: tuple[str, ...] | None = None
    joint_names: tuple[str, ...] | None = None
    action_source: str = "commands"
    topics: TopicConfig = field(default_factory=TopicConfig)
    max_state_gap_s: float = 0.1
    max_camera_lag_s: float = 0.1
    cache_dir: str | None = None
    image_fit: str = "resize"

    def align_config(self, primary_camera: str | None = None) -> AlignConfig:
        return AlignConfig(
            fps=self.fps,
            action_delta_indices=tuple(self.action_delta_indices),
            action_source=self.action_source,
            max_state_gap_s=self.max_state_gap_s,
            max_camera_lag_s=self.max_camera_lag_s,
            primary_camera=primary_camera,
        )


@dataclass
class Episode:
    """One loaded, aligned episode."""

    index: int
    recording: EpisodeRecording
    aligned: AlignedEpisode
    frames: dict[str, np.ndarray]  # cam -> uint8 (F, H, W, 3), maybe memory-mapped

    @property
    def path(self) -> Path:
        return self.recording.path

    def __len__(self) -> int:
        return len(self.aligned)


@dataclass
class LoadReport:
    """What loading a set of bags did (kept/skipped frames, cache hits, warnings)."""

    episodes: int = 0
    samples: int = 0
    frames: int = 0
    skipped: Counter = field(default_factory=Counter)
    cache_hits: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.episodes} episodes, {self.samples} samples from {self.frames} frames, "
            f"{self.cache_hits} from cache"
        )
        if self.skipped:
            text += "; skipped frames: " + ", ".join(
                f"{r} {n}" for r, n in self.skipped.most_common()
            )
        if self.failed:
            text += f"; {len(self.failed)} bags failed"
        return text


# -- cache --------------------------------------------------------------------------------


def cache_key(path: Path, config: DatasetConfig) -> str:
    """Key of a bag's decoded recording: path, storage files (size, mtime), decode settings."""
    files = sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns)
        for f in path.iterdir()
        if f.suffix in (".mcap", ".db3", ".yaml")
    )
    meta = path / "episode.json"
    ident = {
        "v": CACHE_VERSION,
        "path": str(path.resolve()),
        "files": files,
        "episode_json": meta.stat().st_mtime_ns if meta.is_file() else None,
        "image_size": list(config.image_size),
        "image_fit": config.image_fit,
        "cameras": list(config.cameras) if config.cameras else None,
        "joint_names": list(config.joint_names) if config.joint_names else None,
        "topics": asdict(config.topics),
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    return f"{path.name}-{digest[:16]}"


def _save_recording(rec: EpisodeRecording, dest: Path) -> None:
    """Write a recording into ``dest`` atomically (tmp dir + rename; a racing writer wins)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        arrays = {
            "joint_stamps": rec.joint_stamps,
            "joint_positions": rec.joint_positions,
            "command_times": rec.command_times,
            "command_positions": rec.command_positions,
        }
        if rec.joint_velocities is not None:
            arrays["joint_velocities"] = rec.joint_velocities
        for cam, stream in rec.cameras.items():
            arrays[f"stamps__{cam}"] = stream.stamps
            arrays[f"log_times__{cam}"] = stream.log_times
            np.save(tmp / f"frames__{cam}.npy", np.ascontiguousarray(stream.frames))
        np.savez(tmp / "arrays.npz", **arrays)
        meta = {
            "path": str(rec.path),
            "joint_names": rec.joint_names,
            "command_source": rec.command_source,
            "cameras": {cam: s.topic for cam, s in rec.cameras.items()},
            "source_shapes": {cam: list(s.source_shape) for cam, s in rec.cameras.items()},
            "metadata": rec.metadata,
            "clock_fit": list(rec.clock_fit),
            "warnings": rec.warnings,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, default=str))
        try:
            tmp.rename(dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process cached it first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_recording(src: Path, mmap: bool = True) -> EpisodeRecording:
    meta = json.loads((src / "meta.json").read_text())
    with np.load(src / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    cams = {}
    for cam, topic in meta["cameras"].items():
        frames = np.load(src / f"frames__{cam}.npy", mmap_mode="r" if mmap else None)
        cams[cam] = CameraStream(
            name=cam,
            topic=topic,
            stamps=arrays[f"stamps__{cam}"],
            log_times=arrays[f"log_times__{cam}"],
            frames=frames,
            source_shape=tuple(meta.get("source_shapes", {}).get(cam, (0, 0))),
        )
    return EpisodeRecording(
        path=Path(meta["path"]),
        joint_names=list(meta["joint_names"]),
        joint_stamps=arrays["joint_stamps"],
        joint_positions=arrays["joint_positions"],
        joint_velocities=arrays.get("joint_velocities"),
        command_times=arrays["command_times"],
        command_positions=arrays["command_positions"],
        command_source=meta["command_source"],
        cameras=cams,
        metadata=meta["metadata"],
        clock_fit=tuple(meta["clock_fit"]),
        warnings=list(meta["warnings"]),
    )


def load_recording(path: str | Path, config: DatasetConfig) -> tuple[EpisodeRecording, bool]:
    """Read a bag (or its cached decoded form): (recording, came_from_cache)."""
    path = Path(path).resolve()
    cache_root = default_cache_dir() if config.cache_dir is None else config.cache_dir
    if cache_root:
        dest = Path(cache_root) / cache_key(path, config)
        if (dest / "meta.json").is_file():
            try:
                return _load_recording(dest), True
            except Exception as exc:  # a damaged cache entry is rebuilt
                LOG.warning("cache entry %s unreadable (%s); re-reading the bag", dest, exc)
                shutil.rmtree(dest, ignore_errors=True)
    rec = read_episode(
        path,
        topics=config.topics,
        image_size=tuple(config.image_size),
        joint_names=config.joint_names,
        image_fit=config.image_fit,
    )
    if cache_root:
        try:
            _save_recording(rec, dest)
            return _load_recording(dest), False
        except OSError as exc:
            LOG.warning("cannot write the frame cache %s: %s", dest, exc)
    return rec, False


def _warm_one(path: str | Path, config: DatasetConfig) -> None:
    # Errors are not reported here: the sequential pass reads such a bag again and reports.
    with contextlib.suppress(Exception):
        load_recording(path, config)


def warm_cache(paths: Sequence[str | Path], config: DatasetConfig, workers: int) -> int:
    """Decode the bags missing from the cache in ``workers`` processes; returns how many.

    Only with a cache and a fixed joint order and camera set (they are part of the key).
    """
    cache_root = default_cache_dir() if config.cache_dir is None else config.cache_dir
    if not cache_root or workers < 2 or config.joint_names is None or config.cameras is None:
        return 0
    todo = [
        p
        for p in paths
        if not (Path(cache_root) / cache_key(Path(p).resolve(), config) / "meta.json").is_file()
    ]
    if len(todo) < 2:
        return 0
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the parent may already run torch/OpenMP threads, which do not survive fork.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
        list(pool.map(_warm_one, todo, [config] * len(todo)))
    return len(todo)


def load_episodes(
    paths: Sequence[str | Path],
    config: DatasetConfig,
    progress: Callable[[int, int, str], None] | None = None,
    strict: bool = False,
    decode_workers: int = 1,
) -> tuple[list[Episode], LoadReport]:
    """Load and align every bag. Bags that fail are reported (and skipped unless strict).

    The joint order and camera set come from ``config`` or else the first bag; later bags
    must have the same joints and cameras. ``decode_workers`` > 1 decodes uncached bags in
    parallel processes first (see :func:`warm_cache`).
    """
    if decode_workers > 1:
        warm_cache(paths, config, decode_workers)
    report = LoadReport()
    episodes: list[Episode] = []
    joint_names = config.joint_names
    cameras = config.cameras
    for i, p in enumerate(paths):
        if progress is not None:
            progress(i, len(paths), str(p))
        cfg = config
        if joint_names is not None or cameras is not None:
            cfg = _replace(config, joint_names=joint_names, cameras=cameras)
        try:
            rec, hit = load_recording(p, cfg)
            if joint_names is None:
                joint_names = tuple(rec.joint_names)
            elif list(rec.joint_names) != list(joint_names):
                raise ValueError(f"joints {rec.joint_names} differ from {list(joint_names)}")
            if cameras is None:
                cameras = tuple(sorted(rec.cameras))
            missing = [c for c in cameras if c not in rec.cameras]
            if missing:
                raise ValueError(f"cameras {missing} missing (has {sorted(rec.cameras)})")
            aligned = align_episode(
                {c: rec.cameras[c].stamps for c in cameras},
                rec.joint_stamps,
                rec.joint_positions,
                rec.command_times,
                rec.command_positions,
                config.align_config(primary_camera=cameras[0]),
            )
        except Exception as exc:
            if strict:
                raise
            report.failed[str(p)] = str(exc)
            LOG.warning("skipping bag %s: %s", p, exc)
            continue
        report.cache_hits += int(hit)
        report.frames += aligned.num_frames
        report.skipped.update(aligned.skipped)
        report.warnings.extend(f"{Path(p).name}: {w}" for w in rec.warnings)
        if len(aligned) == 0:
            report.failed[str(p)] = "no alignable frames: " + aligned.skip_report()
            continue
        frames = {c: rec.cameras[c].frames for c in cameras}
        episodes.append(Episode(len(episodes), rec, aligned, frames))
        report.samples += len(aligned)
    report.episodes = len(episodes)
    return episodes, report


def _replace(config: DatasetConfig, **changes: Any) -> DatasetConfig:
    from dataclasses import replace

    return replace(config, **changes)


def split_episodes(
    episodes: Sequence[Episode], val_fraction: float, seed: int
) -> tuple[list[Episode], list[Episode]]:
    """Split by episode (never by frame): a seeded random ``val_fraction`` goes to validation.

    At least one validation episode when ``val_fraction > 0`` and there are two or more
    episodes; at least one training episode always.
    """
    n = len(episodes)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1) if n else 0
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    train = [e for i, e in enumerate(episodes) if i not in val_idx]
    val = [e for i, e in enumerate(episodes) if i in val_idx]
    return train, val


def normalization_from_episodes(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Normalization statistics (checkpoint JSON form) of the episodes' samples."""
    return compute_normalization(
        [e.aligned.state for e in episodes],
        [e.aligned.action for e in episodes],
        [e.aligned.action_is_pad for e in episodes],
    )


class DemonstrationDataset(Dataset):
    """Samples of aligned episodes in the contract's training batch format.

    Args:
        episodes: loaded episodes.
        observation_delta_indices: the policy's frame offsets (e.g. [0] or [-1, 0]).
        fps: training rate (history offsets are in units of 1/fps).
        shift_px: random-shift augmentation in pixels (0 disables).
        image_dtype: "float32" ([0, 1], the contract) or "uint8" (cheaper to move; the
            trainer converts on the device).
        seed: seed of the augmentation's random generator (per worker offset added).
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        observation_delta_indices: Sequence[int] = (0,),
        fps: float = 10.0,
        shift_px: int = 0,
        image_dtype: str = "float32",
        seed: int = 0,
    ) -> None:
        if image_dtype not in ("float32", "uint8"):
            raise ValueError("image_dtype must be 'float32' or 'uint8'")
        self.episodes = list(episodes)
        self.obs_deltas = np.asarray(list(observation_delta_indices), dtype=np.float64)
        self.fps = float(fps)
        self.shift_px = int(shift_px)
        self.image_dtype = image_dtype
        self.seed = int(seed)
        self._rng: np.random.Generator | None = None
        self._rng_pid = -1
        self.cameras = sorted(self.episodes[0].frames) if self.episodes else []
        starts = [0]
        self._obs_index: list[np.ndarray] = []
        for ep in self.episodes:
            starts.append(starts[-1] + len(ep))
            t = ep.aligned.times
            target = t[:, None] + self.obs_deltas[None, :] / self.fps
            idx = np.clip(np.searchsorted(t, target, side="left"), 0, len(t) - 1)
            prev = np.clip(idx - 1, 0, len(t) - 1)
            nearer_prev = np.abs(t[prev] - target) <= np.abs(t[idx] - target)
            idx = np.where(nearer_prev, prev, idx)
            # Never look into the future of the sample, never before the episode start.
            idx = np.minimum(idx, np.arange(len(t))[:, None])
            self._obs_index.append(idx.astype(np.int64))
        self._starts = np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def num_joints(self) -> int:
        return self.episodes[0].aligned.state.shape[1] if self.episodes else 0

    def locate(self, index: int) -> tuple[int, int]:
        """(episode position, sample index within it) of a flat index."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        ep = int(np.searchsorted(self._starts, index, side="right") - 1)
        return ep, index - int(self._starts[ep])

    def _generator(self) -> np.random.Generator:
        pid = os.getpid()
        if self._rng is None or self._rng_pid != pid:
            info = torch.utils.data.get_worker_info()
            worker = info.id if info is not None else 0
            base = torch.initial_seed() if info is not None else self.seed
            self._rng = np.random.default_rng([self.seed, worker, int(base) % (2**32)])
            self._rng_pid = pid
        return self._rng

    def _shift(self, imgs: np.ndarray) -> np.ndarray:
        """Random shift of (n, H, W, 3) frames by up to shift_px (same for every frame)."""
        s = self.shift_px
        rng = self._generator()
        dy, dx = rng.integers(-s, s + 1, size=2)
        if dy == 0 and dx == 0:
            return imgs
        h, w = imgs.shape[1:3]
        padded = np.pad(imgs, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        return padded[:, s + dy : s + dy + h, s + dx : s + dx + w]

    def __getitem__(self, index: int) -> dict[str, Any]:
        ep_pos, k = self.locate(int(index))
        ep = self.episodes[ep_pos]
        al = ep.aligned
        obs = self._obs_index[ep_pos][k]
        images = {}
        for cam in self.cameras:
            fidx = al.frame_indices[cam][obs]
            imgs = np.asarray(ep.frames[cam][fidx])  # (n_obs, H, W, 3) uint8
            if self.shift_px > 0:
                imgs = self._shift(imgs)
            chw = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
            images[cam] = chw if self.image_dtype == "uint8" else chw.float().div_(255.0)
        return {
            "images": images,
            "state": torch.from_numpy(al.state[obs].astype(np.float32)),
            "action": torch.from_numpy(al.action[k].astype(np.float32)),
            "action_is_pad": torch.from_numpy(al.action_is_pad[k].copy()),
            "episode_index": ep.index,
            "time": float(al.times[k]),
        }
