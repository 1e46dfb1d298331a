"""Align an episode's camera frames, joint states and commands into training samples.

Pure numpy. For every frame of the primary camera (time ``t`` = its ``header.stamp``):

- **state**: per-joint linear interpolation of the measured joint positions at ``t``.
  A frame outside the joint-state time span, or whose bracketing joint states are more
  than ``max_state_gap_s`` apart, is skipped (reason ``outside_joint_states`` /
  ``joint_state_gap``).
- **other cameras**: the latest frame at or before ``t`` (within ``max_camera_lag_s``),
  else the frame is skipped (``camera_<name>_missing``).
- **actions**: targets at ``t + k / fps`` for every ``k`` in ``action_delta_indices``:
  - ``action_source="commands"``: the commanded positions with a *zero-order hold*: the
    latest command at or before each time. Position controllers treat a command as a
    step target that holds until the next one, so interpolating between commands would
    invent targets that were never sent. Frames before the first command are skipped
    (``before_first_command``).
  - ``action_source="measured"``: the measured joint positions at those times (linear
    interpolation); a joint-state gap there skips the frame (``action_gap``).
  Times after the episode end (the last joint state) are padding: ``action_is_pad`` is
  True and the value repeats the last valid target; times before the episode start (for
  negative delta indices) are padding that repeats the first target.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

ACTION_SOURCES = ("commands", "measured")


@dataclass(frozen=True)
class AlignConfig:
    """How frames, states and actions are aligned.

    Attributes:
        fps: training rate: action ``k`` of a sample is for ``t + k / fps``.
        action_delta_indices: action offsets a training sample needs (the policy's).
        action_source: "commands" (commanded positions) or "measured" (future joints).
        max_state_gap_s: largest allowed gap between the joint states around a time.
        max_camera_lag_s: how stale a secondary camera's latest frame may be.
        primary_camera: camera whose frames define the samples (default: first by name).
    """

    fps: float
    action_delta_indices: tuple[int, ...]
    action_source: str = "commands"
    max_state_gap_s: float = 0.1
    max_camera_lag_s: float = 0.1
    primary_camera: str | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not self.action_delta_indices:
            raise ValueError("action_delta_indices must not be empty")
        if self.action_source not in ACTION_SOURCES:
            raise ValueError(f"action_source must be one of {ACTION_SOURCES}")
        if self.max_state_gap_s <= 0 or self.max_camera_lag_s < 0:
            raise ValueError("max_state_gap_s must be > 0 and max_camera_lag_s >= 0")


@dataclass
class AlignedEpisode:
    """Samples of one episode, one per kept primary-camera frame.

    ``frame_indices[cam][k]`` is the index into that camera's frames for sample ``k``.
    """

    times: np.ndarray  # (K,)
    frame_indices: dict[str, np.ndarray]  # cam -> (K,) int
    state: np.ndarray  # (K, J)
    action: np.ndarray  # (K, A, J)
    action_is_pad: np.ndarray  # (K, A) bool
    skipped: Counter = field(default_factory=Counter)  # reason -> frames skipped
    num_frames: int = 0  # primary frames before skipping

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def skip_report(self) -> str:
        """E.g. ``"kept 120/125 frames; skipped: before_first_command 5"``."""
        kept = f"kept {len(self)}/{self.num_frames} frames"
        if not self.skipped:
            return kept
        return kept + "; skipped: " + ", ".join(f"{r} {n}" for r, n in self.skipped.most_common())


def interpolate(
    query: np.ndarray, times: np.ndarray, values: np.ndarray, max_gap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column linear interpolation of ``values`` (N, J) at ``query`` times.

    Returns (interpolated (Q, J), inside (Q,) bool: within [times[0], times[-1]],
    gap_ok (Q,) bool: the bracketing samples are at most ``max_gap`` apart). ``times`` must
    be sorted. A query exactly on a sample returns it (no gap check needed).
    """
    query = np.asarray(query, dtype=np.float64)
    n = times.shape[0]
    out = np.zeros((query.shape[0], values.shape[1]), dtype=np.float64)
    if n == 0:
        false = np.zeros(query.shape[0], dtype=bool)
        return out, false, false.copy()
    inside = (query >= times[0]) & (query <= times[-1])
    hi = np.clip(np.searchsorted(times, query, side="left"), 0, n - 1)
    lo = np.clip(hi - 1, 0, n - 1)
    exact = times[hi] == query
    lo = np.where(exact, hi, lo)
    t0, t1 = times[lo], times[hi]
    span = t1 - t0
    w = np.where(span > 0, (query - t0) / np.where(span > 0, span, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)[:, None]
    out = values[lo] * (1.0 - w) + values[hi] * w
    gap_ok = exact | (span <= max_gap)
    return out, inside, gap_ok


def zero_order_hold(
    query: np.ndarray, times: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Latest value at or before each query time: (values (Q, J), valid (Q,) bool)."""
    query = np.asarray(query, dtype=np.float64)
    idx = np.searchsorted(times, query, side="right") - 1
    valid = idx >= 0
    out = values[np.clip(idx, 0, max(times.shape[0] - 1, 0))] if times.shape[0] else None
    if out is None:
        return np.zeros((query.shape[0], values.shape[1])), valid
    return out.astype(np.float64, copy=True), valid


def latest_frame_index(query: np.ndarray, stamps: np.ndarray, max_lag: float) -> np.ndarray:
    """Index of the latest frame at or before each query (-1 if none within ``max_lag``)."""
    idx = np.searchsorted(stamps, query, side="right") - 1
    ok = idx >= 0
    lag = np.where(ok, query - stamps[np.clip(idx, 0, max(len(stamps) - 1, 0))], np.inf)
    return np.where(ok & (lag <= max_lag + 1e-9), idx, -1)


def align_episode(
    camera_stamps: dict[str, np.ndarray],
    joint_times: np.ndarray,
    joint_positions: np.ndarray,
    command_times: np.ndarray,
    command_positions: np.ndarray,
    config: AlignConfig,
) -> AlignedEpisode:
    """Build the samples of one episode (see the module docstring for the rules).

    Args:
        camera_stamps: camera name -> sorted frame stamps (seconds).
        joint_times / joint_positions: measured joint states (N,), (N, J), sorted.
        command_times / command_positions: commands (M,), (M, J) on the same clock, sorted.
        config: alignment settings.
    """
    if not camera_stamps:
        raise ValueError("at least one camera is needed")
    cams = sorted(camera_stamps)
    primary = config.primary_camera or cams[0]
    if primary not in camera_stamps:
        raise ValueError(f"primary camera {primary!r} not among {cams}")
    joint_times = np.asarray(joint_times, dtype=np.float64)
    joint_positions = np.asarray(joint_positions, dtype=np.float64)
    num_joints = joint_positions.shape[1]
    deltas = np.asarray(config.action_delta_indices, dtype=np.float64)
    t = np.asarray(camera_stamps[primary], dtype=np.float64)
    num_frames = t.shape[0]
    skipped: Counter = Counter()
    keep = np.ones(num_frames, dtype=bool)

    def drop(mask: np.ndarray, reason: str) -> None:
        new = mask & keep
        if new.any():
            skipped[reason] += int(new.sum())
            keep[new] = False

    state, inside, gap_ok = interpolate(t, joint_times, joint_positions, config.max_state_gap_s)
    drop(~inside, "outside_joint_states")
    drop(~gap_ok, "joint_state_gap")
    drop(~np.all(np.isfinite(state), axis=1), "non_finite_state")

    frame_idx = {primary: np.arange(num_frames)}
    for cam in cams:
        if cam == primary:
            continue
        idx = latest_frame_index(t, np.asarray(camera_stamps[cam]), config.max_camera_lag_s)
        drop(idx < 0, f"camera_{cam}_missing")
        frame_idx[cam] = idx

    start = joint_times[0] if joint_times.size else 0.0
    end = joint_times[-1] if joint_times.size else 0.0
    q = t[:, None] + deltas[None, :] / config.fps  # (F, A)
    flat = q.reshape(-1)
    if config.action_source == "commands":
        vals, _valid = zero_order_hold(flat, command_times, command_positions)
        if command_times.size == 0:
            drop(np.ones(num_frames, dtype=bool), "no_commands")
            before = np.ones_like(flat, dtype=bool)
        else:
            drop(t < command_times[0], "before_first_command")
            # Only negative deltas can reach before the first command of a kept frame.
            before = flat < command_times[0]
    else:
        vals, a_inside, a_gap = interpolate(
            flat, joint_times, joint_positions, config.max_state_gap_s
        )
        before = flat < start
        drop((a_inside & ~a_gap).reshape(q.shape).any(axis=1), "action_gap")
    vals = vals.reshape(q.shape[0], q.shape[1], num_joints)
    after = q > end
    pad = after | before.reshape(q.shape)
    drop(~np.all(np.isfinite(vals) | pad[:, :, None], axis=(1, 2)), "non_finite_action")

    kept = np.flatnonzero(keep)
    vals = vals[kept]
    pad = pad[kept]
    # Padding repeats the nearest valid target (first before the start, last after the end).
    for k in range(vals.shape[0]):
        row_pad = pad[k]
        if not row_pad.any():
            continue
        valid_idx = np.flatnonzero(~row_pad)
        if valid_idx.size == 0:
            # Every target is padding: the whole chunk lies outside the episode.
            vals[k] = state[kept[k]]
            continue
        for a in np.flatnonzero(row_pad):
            nearest = valid_idx[np.argmin(np.abs(valid_idx - a))]
            vals[k, a] = vals[k, nearest]
    return AlignedEpisode(
        times=t[kept],
        frame_indices={cam: idx[kept] for cam, idx in frame_idx.items()},
        state=state[kept],
        action=vals,
        action_is_pad=pad,
        skipped=skipped,
        num_frames=num_frames,
    )
