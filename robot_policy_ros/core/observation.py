"""Freshness and time-consistency gate for policy observations, independent of ROS.

Sensor callbacks hand the latest message of every input (one per camera plus the joint
state) to :class:`ObservationGate` together with its ``header.stamp``; storing is O(1)
and keeps only a reference. When the policy wants to infer, :meth:`ObservationGate.snapshot`
judges every input against the node clock: each must exist, be stamped, be younger than
``max_age_s`` and not lie in the future by more than ``max_future_s``. If any fails, the
result says why in one line and carries no payloads, so nothing stale can be used.

The observation stamp is the *oldest* stamp of the inputs used: the chunk's first action
is then anchored to the earliest moment the observation describes, which is conservative
(the streamer starts further into the chunk rather than replaying motion the robot may
already have made).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

JOINTS = "joint_states"


@dataclass(frozen=True)
class GateResult:
    """Outcome of :meth:`ObservationGate.snapshot`.

    Attributes:
        ok: every input present, stamped, fresh and not from the future.
        reason: "" if ok, else every problem in one line ("; "-separated).
        stamp: observation time = oldest input stamp (seconds; nan when not ok).
        ages: input name -> age in seconds at ``now`` (nan if never received). The joint
            state is listed as ``joint_states``.
        images: camera name -> payload as stored (only when ok).
        joints: joint-state payload as stored (only when ok).
        stamps: input name -> stamp of the input used (only when ok).
    """

    ok: bool
    reason: str
    stamp: float
    ages: dict[str, float]
    images: dict[str, Any] = field(default_factory=dict)
    joints: Any = None
    stamps: dict[str, float] = field(default_factory=dict)

    @property
    def max_age(self) -> float:
        """Age of the oldest input (nan if some input was never received)."""
        if not self.ages:
            return math.nan
        values = list(self.ages.values())
        return math.nan if any(math.isnan(v) for v in values) else max(values)


class ObservationGate:
    """Latest frame per camera + latest joint state, judged by stamp against a clock.

    Thread-safe: callbacks call :meth:`set_camera` / :meth:`set_joints` from the executor
    while the inference worker calls :meth:`snapshot`.

    Args:
        camera_names: cameras the observation needs.
        max_age_s: an input older than this (now - stamp) is stale.
        max_future_s: an input stamped more than this ahead of now is rejected (clock
            mismatch, e.g. one side using sim time). Defaults to ``max_age_s``.
    """

    def __init__(
        self, camera_names: Sequence[str], max_age_s: float, max_future_s: float | None = None
    ) -> None:
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        if JOINTS in camera_names:
            raise ValueError(f"a camera may not be called '{JOINTS}'")
        self.camera_names = tuple(camera_names)
        self.max_age_s = float(max_age_s)
        self.max_future_s = float(max_age_s if max_future_s is None else max_future_s)
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, Any]] = {}

    def set_camera(self, name: str, stamp: float, payload: Any) -> None:
        """Store the latest frame of camera ``name`` (stamp in seconds)."""
        if name not in self.camera_names:
            raise KeyError(f"unknown camera '{name}'; expected one of {self.camera_names}")
        with self._lock:
            self._latest[name] = (float(stamp), payload)

    def set_joints(self, stamp: float, payload: Any) -> None:
        """Store the latest joint state (stamp in seconds)."""
        with self._lock:
            self._latest[JOINTS] = (float(stamp), payload)

    def clear(self) -> None:
        """Forget all inputs (e.g. on deactivate)."""
        with self._lock:
            self._latest.clear()

    def latest_stamp(self, name: str) -> float | None:
        """Stamp of the latest input ``name`` (a camera or ``joint_states``), or None."""
        with self._lock:
            entry = self._latest.get(name)
        return None if entry is None else entry[0]

    def snapshot(self, now: float) -> GateResult:
        """Judge all inputs at time ``now`` and return them if all are usable."""
        with self._lock:
            latest = dict(self._latest)
        problems: list[str] = []
        ages: dict[str, float] = {}
        for name in (*self.camera_names, JOINTS):
            label = JOINTS if name == JOINTS else f"camera '{name}'"
            entry = latest.get(name)
            if entry is None:
                ages[name] = math.nan
                problems.append(f"no {label} message received yet")
                continue
            stamp = entry[0]
            age = now - stamp
            ages[name] = age
            if stamp <= 0.0:
                problems.append(f"{label} header.stamp is zero (the publisher must stamp it)")
            elif age > self.max_age_s:
                problems.append(
                    f"{label} is {age:.3f} s old (max_observation_age_s {self.max_age_s:g})"
                )
            elif -age > self.max_future_s:
                problems.append(
                    f"{label} is stamped {-age:.3f} s in the future of the node clock "
                    "(clock mismatch? check use_sim_time on both sides)"
                )
        if problems:
            return GateResult(ok=False, reason="; ".join(problems), stamp=math.nan, ages=ages)
        stamp = min(latest[name][0] for name in (*self.camera_names, JOINTS))
        return GateResult(
            ok=True,
            reason="",
            stamp=stamp,
            ages=ages,
            images={name: latest[name][1] for name in self.camera_names},
            joints=latest[JOINTS][1],
            stamps={name: latest[name][0] for name in (*self.camera_names, JOINTS)},
        )
