"""Observation history by stamp: the frames a policy with ``n_obs_steps`` > 1 reads.

A policy trained on frames ``1/fps`` apart (the training dataset's
``observation_delta_indices``, LeRobot's ``observation_delta_indices``) must be given frames
1/fps apart at deployment too, whatever rate inference runs at. This module keeps every
input (each camera, the joint state) by stamp and picks, for an observation at time ``t``,
the entries for ``t - k / fps``, k = n_obs_steps - 1 ... 0.

Rules (the same as robot_policy_ros.data.dataset for training):

- Each input is picked separately: the stored entry nearest to the target time, ties going
  to the older one, never one stamped after that input's entry of the current observation
  (no look into the future of the observation).
- Before enough history exists (start of an activation, after a reset or a clock jump) the
  oldest stored entry is used for every target before it: the history is padded by
  repeating the earliest frame, as the dataset clamps at an episode start and as LeRobot
  fills its observation queue with the first observation after ``reset()``.
- ``clear()`` forgets everything (the node calls it on activation and on a clock jump).
  An entry stamped before the newest one already stored is out of order and is ignored
  (after a clock jump the node has cleared the history first).
- Entries are kept only as long as a target can still reach them: older than
  ``newest - (n_obs_steps - 1) / fps - keep_margin_s`` they are dropped, always leaving at
  least one entry at or before the oldest target.

No rclpy here: entries are whatever the caller stores (message references, arrays).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Any


def history_targets(stamp: float, n_obs_steps: int, fps: float) -> list[float]:
    """Times of the frames of an observation at ``stamp``, oldest first (last = stamp)."""
    return [stamp - (n_obs_steps - 1 - i) / fps for i in range(n_obs_steps)]


@dataclass
class Entry:
    """One stored input: its stamp, the payload, and a slot for a converted form."""

    stamp: float
    payload: Any
    converted: Any = None


class StampedHistory:
    """Entries of one input, sorted by stamp, pruned to what the history can reach."""

    def __init__(
        self,
        n_obs_steps: int,
        fps: float,
        keep_margin_s: float = 0.5,
        max_entries: int = 4096,
    ) -> None:
        if int(n_obs_steps) < 1:
            raise ValueError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        if not (math.isfinite(keep_margin_s) and keep_margin_s >= 0):
            raise ValueError(f"keep_margin_s must be >= 0, got {keep_margin_s}")
        self.n_obs_steps = int(n_obs_steps)
        self.fps = float(fps)
        self.span_s = (self.n_obs_steps - 1) / self.fps
        self.keep_margin_s = float(keep_margin_s)
        self.max_entries = int(max_entries)
        self._entries: deque[Entry] = deque()
        self.out_of_order = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def add(self, stamp: float, payload: Any) -> bool:
        """Store ``payload`` at ``stamp``; False (ignored) if older than the newest entry.

        The same stamp again replaces the stored entry (a republished frame).
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            return False
        entries = self._entries
        if entries and stamp < entries[-1].stamp:
            self.out_of_order += 1
            return False
        if entries and stamp == entries[-1].stamp:
            entries[-1] = Entry(stamp, payload)
            return True
        entries.append(Entry(stamp, payload))
        horizon = stamp - self.span_s - self.keep_margin_s
        # Keep one entry at or before the horizon: it is still the nearest to a target there.
        while len(entries) > 1 and (entries[1].stamp <= horizon or len(entries) > self.max_entries):
            entries.popleft()
        return True

    def pick(self, target: float, not_after: float) -> Entry | None:
        """The entry nearest ``target`` among those stamped <= ``not_after`` (ties: older).

        Targets before the oldest entry get the oldest (padding); None if no entry is
        stamped at or before ``not_after``.
        """
        entries = self._entries
        stamps = [e.stamp for e in entries]
        last = bisect.bisect_right(stamps, not_after) - 1
        if last < 0:
            return None
        i = min(bisect.bisect_left(stamps, target, 0, last + 1), last)
        if i > 0 and abs(stamps[i - 1] - target) <= abs(stamps[i] - target):
            i -= 1
        return entries[i]


class ObservationHistory:
    """One :class:`StampedHistory` per input (cameras and joints), picked together."""

    def __init__(
        self, inputs: list[str], n_obs_steps: int, fps: float, keep_margin_s: float = 0.5
    ) -> None:
        self.n_obs_steps = int(n_obs_steps)
        self.fps = float(fps)
        self.inputs = list(inputs)
        self._by_input = {
            name: StampedHistory(n_obs_steps, fps, keep_margin_s) for name in self.inputs
        }

    def add(self, name: str, stamp: float, payload: Any) -> bool:
        return self._by_input[name].add(stamp, payload)

    def clear(self) -> None:
        for h in self._by_input.values():
            h.clear()

    def at(self, name: str, stamp: float, payload: Any) -> Entry:
        """The stored entry of ``name`` at exactly ``stamp``, else a new one for ``payload``."""
        entry = self._by_input[name].pick(stamp, stamp)
        return entry if entry is not None and entry.stamp == stamp else Entry(stamp, payload)

    def frames(self, stamp: float, current: dict[str, float]) -> list[dict[str, Entry]]:
        """The earlier frames of the observation at ``stamp``, oldest first (n_obs - 1).

        ``current``: input -> the stamp of its entry in the current observation (no earlier
        frame may be newer). Raises KeyError if an input has nothing stored at or before it
        (the caller stores every input it snapshots, so this means a caller bug).
        """
        out = []
        for target in history_targets(stamp, self.n_obs_steps, self.fps)[:-1]:
            frame = {}
            for name in self.inputs:
                entry = self._by_input[name].pick(target, current[name])
                if entry is None:
                    raise KeyError(f"no stored {name!r} at or before {current[name]}")
                frame[name] = entry
            out.append(frame)
        return out
