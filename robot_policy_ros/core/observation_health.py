"""Health of the policy's inputs, independent of ROS: joint-state mapping and frozen cameras.

* :class:`JointStateMapper` turns the (names, positions) of a ``sensor_msgs/JointState``
  into positions in checkpoint order. A message is mapped by *name* every time, so a
  publisher that changes the order between messages is read correctly; a message with
  duplicate names (ambiguous), without a joint the checkpoint needs, with a positions
  array of another length, or with a non-finite position of a needed joint is refused
  with a :class:`JointStateError` naming the problem, and nothing from it is used.
* :class:`StampWatch` tells a camera that has *frozen* (its driver re-publishes the same
  ``header.stamp``) or whose stamps run backwards from one that is merely slow: the
  freshness gate alone would still use a frozen frame until it ages past the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np


class JointStateError(ValueError):
    """A joint state that cannot be used for inference; the message says why."""


class JointStateMapper:
    """Maps joint states to the checkpoint's joint order (index cache per name tuple).

    Args:
        needed: the checkpoint's joint names, in its order.
        max_cache: distinct name orders remembered (a publisher permuting every message
            costs a rebuild of the index, never unbounded memory).
    """

    def __init__(self, needed: Sequence[str], max_cache: int = 64) -> None:
        self.needed = list(needed)
        self.max_cache = int(max_cache)
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def index(self, names: tuple[str, ...]) -> np.ndarray:
        """Indices into ``names`` of the needed joints; JointStateError when impossible."""
        idx = self._cache.get(names)
        if idx is not None:
            return idx
        position: dict[str, int] = {}
        duplicates: list[str] = []
        for i, n in enumerate(names):
            if n in position and n not in duplicates:
                duplicates.append(n)
            position[n] = i
        if duplicates:
            raise JointStateError(
                f"joint_states names joint(s) {duplicates} more than once ({list(names)}): "
                "ambiguous, not used"
            )
        missing = [n for n in self.needed if n not in position]
        if missing:
            raise JointStateError(
                f"joint_states lacks joint(s) {missing} that the checkpoint needs (it has "
                f"{list(names)}; the checkpoint needs {self.needed}): remap "
                "joint_states to the arm's topic or use a checkpoint for this arm"
            )
        idx = np.array([position[n] for n in self.needed], dtype=np.intp)
        if len(self._cache) >= self.max_cache:
            self._cache.clear()
        self._cache[names] = idx
        return idx

    def map(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """float64 positions of the needed joints in checkpoint order, or JointStateError."""
        names = tuple(names)
        idx = self.index(names)
        if len(positions) != len(names):
            raise JointStateError(
                f"joint_states has {len(names)} names but {len(positions)} positions"
            )
        values = np.asarray(positions, dtype=np.float64)[idx]
        bad = [self.needed[i] for i in np.flatnonzero(~np.isfinite(values))]
        if bad:
            raise JointStateError(f"joint_states has non-finite positions for joint(s) {bad}")
        return values


class StampWatch:
    """Per camera: did the latest message repeat or precede the previous stamp?

    Thread-safe. ``note`` is called for every message; ``problem`` gives the camera's
    current fault in words ("" when healthy). A camera recovers by itself with the first
    message stamped later than the one before it.

    Args:
        repeats: consecutive messages with the same stamp that mark a camera frozen
            (1: the first repetition already does).
    """

    def __init__(self, repeats: int = 1) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.repeats = int(repeats)
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._same: dict[str, int] = {}
        self._backwards: dict[str, float] = {}

    def note(self, name: str, stamp: float) -> None:
        """Record a message of camera ``name`` stamped ``stamp`` (seconds)."""
        with self._lock:
            last = self._last.get(name)
            if last is not None and stamp == last:
                self._same[name] = self._same.get(name, 0) + 1
            elif last is not None and stamp < last:
                self._same[name] = 0
                self._backwards[name] = last - stamp
            else:
                self._same[name] = 0
                self._backwards.pop(name, None)
            self._last[name] = stamp

    def problem(self, name: str) -> str:
        """Why camera ``name`` must not be used now, or ""."""
        with self._lock:
            same = self._same.get(name, 0)
            back = self._backwards.get(name)
        if same >= self.repeats:
            return f"camera '{name}' is frozen (header.stamp repeated {same} time(s))"
        if back is not None:
            return f"camera '{name}' header.stamp went {back:.3f} s backwards"
        return ""

    def clear(self) -> None:
        """Forget all cameras (e.g. on deactivate)."""
        with self._lock:
            self._last.clear()
            self._same.clear()
            self._backwards.clear()


def parse_camera_sizes(items: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``["front:480x640", ...]`` -> {"front": (480, 640)}; ValueError naming a bad item."""
    out: dict[str, tuple[int, int]] = {}
    for item in items:
        name, sep, size = item.partition(":")
        h, x, w = size.lower().partition("x")
        if not name or not sep or not x or not h.isdigit() or not w.isdigit():
            raise ValueError(
                f"camera {item!r} must look like NAME:HEIGHTxWIDTH, e.g. front:480x640"
            )
        out[name] = (int(h), int(w))
    return out


def arm_mismatches(
    checkpoint_joints: Sequence[str],
    checkpoint_cameras: dict[str, tuple[int, int]],
    arm_joints: Sequence[str],
    arm_cameras: dict[str, tuple[int, int]],
) -> list[str]:
    """Why a checkpoint does not fit the arm, each problem naming both sides ([] = fits).

    An empty ``arm_joints`` / ``arm_cameras`` means "not declared" and is not compared.
    Joints are compared as lists (names and count; order matters for nothing else, but a
    different order is reported so a relabelled arm is noticed); cameras by name and by
    image size (height x width).
    """
    problems = []
    if arm_joints and sorted(arm_joints) != sorted(checkpoint_joints):
        problems.append(
            f"the checkpoint's joints {list(checkpoint_joints)} ({len(checkpoint_joints)}) are "
            f"not the arm's joints {list(arm_joints)} ({len(arm_joints)})"
        )
    if arm_cameras:
        if set(arm_cameras) != set(checkpoint_cameras):
            problems.append(
                f"the checkpoint's cameras {sorted(checkpoint_cameras)} are not the arm's "
                f"cameras {sorted(arm_cameras)}"
            )
        for name in sorted(set(arm_cameras) & set(checkpoint_cameras)):
            if arm_cameras[name] != checkpoint_cameras[name]:
                (ch, cw), (ah, aw) = checkpoint_cameras[name], arm_cameras[name]
                problems.append(
                    f"camera '{name}': the checkpoint expects {ch}x{cw} (HxW), the arm's "
                    f"camera gives {ah}x{aw}"
                )
    return problems
