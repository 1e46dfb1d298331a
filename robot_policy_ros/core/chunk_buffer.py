"""Time-indexed buffer of predicted action chunks, blended where chunks overlap.

A policy predicts a chunk of ``H`` joint targets from an observation taken at ``t_obs``;
action ``i`` of the chunk is meant for time ``t_obs + i / fps``. The buffer stores chunks by
time rather than as a FIFO, so :meth:`ChunkBuffer.action_at` answers "what should the joints
be at time ``t``?". This makes latency compensation automatic: whatever part of a chunk lies
in the past when the chunk arrives (because the network was thinking) is simply never asked for.

Coverage
    A chunk with ``H >= 2`` covers ``[t_obs, t_obs + (H - 1) / fps]`` (both ends included, with a
    tolerance of :data:`TIME_EPS`). Between action times the target is interpolated linearly;
    outside the interval the chunk says nothing (no extrapolation).

    A single-action chunk (``H == 1``) would cover one instant only, which a control loop at
    another rate would almost never hit. Such a chunk therefore *holds* its action for one
    action period: it covers ``[t_obs, t_obs + 1 / fps]``. This is the only hold; longer chunks
    never extend past their last action time.

Blending (where several chunks cover ``t``; "oldest" means smallest ``t_obs``)
    * ``replace``: the chunk with the newest ``t_obs`` wins (a late-arriving chunk computed
      from an older observation does not override a fresher one).
    * ``temporal_ensemble`` (ACT): weighted mean of all covering chunks' predictions for
      ``t`` with weights ``exp(-k * i)``, ``i = 0`` for the oldest covering chunk.
    * ``average``: running blend, oldest first: ``b = v_0``; ``b = (1 - w) * b + w * v_i``
      with ``w = average_weight`` for each newer chunk.
    * ``crossfade``: like ``average`` but the newer chunk's weight ramps linearly from 0 to 1
      over ``crossfade_s``, starting when the chunk can first be used: its arrival
      (``received_at`` given to :meth:`ChunkBuffer.add`) or its first action time ``t_obs``,
      whichever is later. Starting at ``t_obs`` alone would spend the inference latency's
      share of the window before the chunk arrives, and jump by that share at the seam.

Threading
    One thread adds/prunes, others query. Writers build a new immutable snapshot of the chunk
    list under a lock and swap it in; readers only read the current snapshot reference, so a
    query never waits on a writer.
"""

from __future__ import annotations

import bisect
import enum
import math
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["TIME_EPS", "BlendConfig", "BlendMode", "ChunkBuffer"]

#: Tolerance (seconds) on chunk coverage boundaries, absorbing float rounding of stamps.
TIME_EPS = 1e-9


class BlendMode(str, enum.Enum):
    """How overlapping chunks are combined."""

    REPLACE = "replace"
    TEMPORAL_ENSEMBLE = "temporal_ensemble"
    AVERAGE = "average"
    CROSSFADE = "crossfade"


@dataclass(frozen=True)
class BlendConfig:
    """Blending settings. ``mode`` may also be given as its string value.

    Attributes:
        mode: blending mode.
        ensemble_k: temporal_ensemble weights ``exp(-k * i)``, ``i = 0`` oldest chunk.
        average_weight: average: weight of each newer chunk against the blend of older ones.
        crossfade_s: crossfade window, from the newer chunk's arrival (or first action time).
    """

    mode: BlendMode = BlendMode.REPLACE
    ensemble_k: float = 0.01
    average_weight: float = 0.5
    crossfade_s: float = 0.1

    def __post_init__(self) -> None:
        try:
            mode = BlendMode(self.mode)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in BlendMode)
            raise ValueError(f"unknown blend mode {self.mode!r}; use one of {allowed}") from None
        object.__setattr__(self, "mode", mode)
        if not math.isfinite(self.ensemble_k):
            raise ValueError(f"ensemble_k must be finite, got {self.ensemble_k!r}")
        if not (0.0 <= self.average_weight <= 1.0):
            raise ValueError(f"average_weight must be in [0, 1], got {self.average_weight!r}")
        if not (math.isfinite(self.crossfade_s) and self.crossfade_s >= 0.0):
            raise ValueError(f"crossfade_s must be finite and >= 0, got {self.crossfade_s!r}")


class _Chunk:
    """One stored chunk; arrays are read-only so snapshots can be shared between threads."""

    __slots__ = ("actions", "deltas", "end", "fade_from", "fps", "last", "t_obs")

    def __init__(self, actions: np.ndarray, t_obs: float, fps: float, fade_from: float) -> None:
        self.actions = actions
        self.deltas = np.diff(actions, axis=0)  # per-segment slope * period, for interpolation
        self.deltas.setflags(write=False)
        self.t_obs = t_obs
        self.fade_from = fade_from  # crossfade: weight 0 here, 1 at fade_from + crossfade_s
        self.fps = fps
        self.last = actions.shape[0] - 1
        # H == 1 holds its single action for one period (see module docstring).
        self.end = t_obs + (self.last if self.last > 0 else 1) / fps

    def value(self, t: float) -> np.ndarray:
        """Interpolated target at ``t`` (caller guarantees coverage). May return a view."""
        pos = (t - self.t_obs) * self.fps
        if pos <= 0.0:
            return self.actions[0]
        i = int(pos)
        if i >= self.last:
            return self.actions[self.last]
        return self.actions[i] + (pos - i) * self.deltas[i]


@dataclass(frozen=True)
class _Snapshot:
    starts: tuple[float, ...]  # t_obs of each chunk, sorted ascending (bisect key)
    chunks: tuple[_Chunk, ...]
    max_span: float  # longest coverage among chunks, bounds the backward scan


_EMPTY = _Snapshot((), (), 0.0)


class ChunkBuffer:
    """Time-indexed store of action chunks with blending where chunks overlap.

    Args:
        num_joints: J, the number of joints of every chunk.
        blend: blending settings.
        max_chunks: most chunks held; beyond it the chunk whose coverage ends first is dropped.
    """

    def __init__(
        self, num_joints: int, blend: BlendConfig = BlendConfig(), max_chunks: int = 64
    ) -> None:
        if int(num_joints) < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints!r}")
        if int(max_chunks) < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks!r}")
        self.num_joints = int(num_joints)
        self.blend = blend
        self.max_chunks = int(max_chunks)
        self._lock = threading.Lock()
        self._state = _EMPTY

    # -- writers ---------------------------------------------------------------------------

    def add(
        self, chunk: np.ndarray, t_obs: float, fps: float, received_at: float | None = None
    ) -> None:
        """Add a chunk of shape (H, J) whose action i is for ``t_obs + i / fps``.

        ``received_at``: the (buffer-clock) time the chunk arrived; a crossfade starts there
        when it is later than ``t_obs``. None: at ``t_obs``.

        Chunks may arrive out of order (an older ``t_obs`` than chunks already held); they are
        kept sorted by ``t_obs``. Equal ``t_obs``: the later-added chunk counts as newer.

        Raises:
            ValueError: empty chunk, wrong shape / joint count, non-finite values,
                non-finite ``t_obs``, or ``fps`` not a finite number > 0.
        """
        try:
            actions = np.array(chunk, dtype=np.float64)  # copy: the caller may reuse its array
        except (TypeError, ValueError) as exc:
            raise ValueError(f"chunk is not a numeric array: {exc}") from None
        if actions.ndim != 2:
            raise ValueError(f"chunk must have shape (H, {self.num_joints}), got {actions.shape}")
        if actions.shape[0] == 0:
            raise ValueError("chunk is empty (H == 0)")
        if actions.shape[1] != self.num_joints:
            raise ValueError(
                f"chunk has {actions.shape[1]} joints, expected {self.num_joints} "
                f"(shape {actions.shape})"
            )
        if not np.all(np.isfinite(actions)):
            rows = sorted({int(r) for r in np.argwhere(~np.isfinite(actions))[:, 0]})
            raise ValueError(f"chunk contains non-finite values (NaN/inf) in actions {rows}")
        t_obs = float(t_obs)
        fps = float(fps)
        if not math.isfinite(t_obs):
            raise ValueError(f"t_obs must be finite, got {t_obs!r}")
        if not (math.isfinite(fps) and fps > 0.0):
            raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
        fade_from = t_obs
        if received_at is not None and math.isfinite(received_at):
            fade_from = max(t_obs, float(received_at))
        actions.setflags(write=False)
        new = _Chunk(actions, t_obs, fps, fade_from)

        with self._lock:
            state = self._state
            idx = bisect.bisect_right(state.starts, t_obs)
            chunks = [*state.chunks[:idx], new, *state.chunks[idx:]]
            while len(chunks) > self.max_chunks:
                # Drop the least useful chunk: the one whose coverage ends first (oldest on ties).
                victim = min(range(len(chunks)), key=lambda k: (chunks[k].end, chunks[k].t_obs))
                del chunks[victim]
            self._state = self._make_snapshot(chunks)

    def prune(self, t: float) -> int:
        """Drop chunks whose coverage ends before ``t``; returns the number dropped."""
        with self._lock:
            state = self._state
            keep = [c for c in state.chunks if c.end + TIME_EPS >= t]
            dropped = len(state.chunks) - len(keep)
            if dropped:
                self._state = self._make_snapshot(keep)
            return dropped

    def clear(self) -> None:
        """Drop every chunk."""
        with self._lock:
            self._state = _EMPTY

    @staticmethod
    def _make_snapshot(chunks: list[_Chunk]) -> _Snapshot:
        if not chunks:
            return _EMPTY
        return _Snapshot(
            starts=tuple(c.t_obs for c in chunks),
            chunks=tuple(chunks),
            max_span=max(c.end - c.t_obs for c in chunks),
        )

    # -- readers (lock-free: read one immutable snapshot) -----------------------------------

    def __len__(self) -> int:
        """Number of chunks held."""
        return len(self._state.chunks)

    def _covering(self, state: _Snapshot, t: float) -> list[_Chunk]:
        """Chunks covering ``t``, oldest first. Scans only chunks that can reach ``t``."""
        hi = bisect.bisect_right(state.starts, t + TIME_EPS)
        lowest_start = t - state.max_span - TIME_EPS
        found: list[_Chunk] = []
        for k in range(hi - 1, -1, -1):
            if state.starts[k] < lowest_start:
                break  # sorted by start: no earlier chunk can still cover t
            c = state.chunks[k]
            if c.end + TIME_EPS >= t:
                found.append(c)
        found.reverse()
        return found

    def action_at(self, t: float) -> np.ndarray | None:
        """Joint target (J,) for time ``t``, or None if no chunk covers ``t``.

        Never extrapolates: a time after every chunk's coverage yields None.
        """
        t = float(t)
        if not math.isfinite(t):
            return None
        covering = self._covering(self._state, t)
        if not covering:
            return None
        mode = self.blend.mode
        newest = covering[-1]
        if len(covering) == 1 or mode is BlendMode.REPLACE:
            return np.array(newest.value(t), dtype=np.float64)

        if mode is BlendMode.TEMPORAL_ENSEMBLE:
            k = self.blend.ensemble_k
            out = np.zeros(self.num_joints, dtype=np.float64)
            total = 0.0
            for i, c in enumerate(covering):
                w = math.exp(-k * i)
                out += w * c.value(t)
                total += w
            out /= total
            return out

        # AVERAGE / CROSSFADE: running blend, oldest first.
        out = np.array(covering[0].value(t), dtype=np.float64)
        for c in covering[1:]:
            if mode is BlendMode.AVERAGE:
                w = self.blend.average_weight
            elif self.blend.crossfade_s <= 0.0:
                w = 1.0
            else:
                w = min(max((t - c.fade_from) / self.blend.crossfade_s, 0.0), 1.0)
            if w >= 1.0:
                out[:] = c.value(t)
            elif w > 0.0:
                out *= 1.0 - w
                out += w * c.value(t)
        return out

    def horizon(self, t: float) -> float:
        """Seconds of contiguous coverage ahead of ``t`` (0.0 if ``t`` itself is not covered).

        Overlapping or touching chunks count as one stretch; a gap ends the horizon.
        """
        t = float(t)
        if not math.isfinite(t):
            return 0.0
        state = self._state
        covering = self._covering(state, t)
        if not covering:
            return 0.0
        reach = max(c.end for c in covering)
        hi = bisect.bisect_right(state.starts, t + TIME_EPS)
        # Later chunks extend the stretch if they start before it ends (sorted by start).
        for k in range(hi, len(state.chunks)):
            c = state.chunks[k]
            if c.t_obs > reach + TIME_EPS:
                break
            reach = max(reach, c.end)
        return max(reach - t, 0.0)
