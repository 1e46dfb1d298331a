"""The last gate before a motor: joint limits, rate limits, ramp-in, and rejection of bad values.

Every command passes through :meth:`SafetyFilter.filter`. Its output is, by construction,
always finite, within the position limits, and within ``max_velocity * dt`` of the previous
output (``dt`` = time between calls). A rejected target (non-finite or wrong shape) or a missing
one (None) holds the previous output.

Order of operations per call:
    1. reject non-finite / wrong-shape targets (hold previous);
    2. clamp to ``[lower, upper]``;
    3. limit the step from the last output to ``scale * max_velocity * dt``, where ``scale`` is
       the ramp-in factor (0 at :meth:`SafetyFilter.start`, rising linearly to 1 over
       ``ramp_in_s``; evaluated at the start of each interval, so the first output after
       ``start`` equals the measured position);
    4. optionally limit the velocity change to ``max_acceleration * dt`` (with a braking cap
       ``sqrt(2 * a * distance)`` so targets are approached without large overshoot);
    5. clamp to the position limits again (only ever shortens the step, so a position limit wins
       over the acceleration limit; the velocity bound still holds).

A joint measured outside its limits at :meth:`SafetyFilter.start` (a checkpoint's limits are
only the demonstrated range plus a margin) is never snapped inside: the first output is the
measured position, and while the last output is outside the limits that joint moves only
inwards, at most ``bring_in_velocity`` (and its own velocity limit). It never moves further
out. Once inside, the ordinary limits apply.

A call with ``dt <= 0`` (time did not advance, or NaN) allows no motion; if time went
backwards (e.g. a simulator reset) the filter re-anchors there and ramps in again.

A hold (None / rejected target, ``dt <= 0``) repeats the previous output exactly, so the
commanded velocity drops to zero at once even with the acceleration limit on: that is what an
e-stop asks for. :meth:`SafetyFilter.brake` is the gentler stop for an underrun (no target for
now): within the acceleration limit, the joints decelerate to zero speed over
``v / max_acceleration`` seconds; without the acceleration limit it is a hold.
The final position clamp (step 5) can cut an acceleration-limited deceleration short at a joint
limit; position limits always win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_policy_ros.core.joint_limits import JointLimits

__all__ = ["JointLimits", "SafetyFilter", "SafetyReport"]


@dataclass
class SafetyReport:
    """What the filter did on one call.

    Attributes:
        accepted: False if the target was rejected (non-finite / wrong shape) or None (hold).
        clamped: joints clamped to position limits this tick.
        rate_limited: joints limited by velocity/acceleration (or ``dt <= 0``) this tick.
        ramping: True while the ramp-in still scales the velocity limit down.
        reason: "" or why the target was rejected / held.
    """

    accepted: bool
    clamped: tuple[str, ...] = ()
    rate_limited: tuple[str, ...] = ()
    ramping: bool = False
    reason: str = ""


class SafetyFilter:
    """Stateful filter from raw targets to motor-safe joint commands.

    Args:
        limits: joint limits, in the order of the target vectors.
        ramp_in_s: time over which the velocity limit rises from 0 to full after
            :meth:`start` (0 disables the ramp).
        use_acceleration_limit: also limit velocity changes by ``limits.max_acceleration``.
            None (the default): on when the limits carry ``max_acceleration``, off when they
            do not; True: on (ValueError if the limits have none); False: off.
        bring_in_velocity: top speed (joint units/s) of a joint that is outside its limits,
            moving inside (see the module docstring); finite and > 0.

    Counters (running, reset by :meth:`reset`): ``rejected_total`` (targets rejected as
    non-finite / wrong shape), ``clamped_total`` and ``rate_limited_total`` (calls in which at
    least one joint was clamped / rate limited), ``held_total`` (calls with a None target).
    """

    #: Steps differing by less than this from the wanted step do not count as rate limited.
    _TOL = 1e-12

    def __init__(
        self,
        limits: JointLimits,
        ramp_in_s: float = 2.0,
        use_acceleration_limit: bool | None = None,
        bring_in_velocity: float = 0.1,
    ) -> None:
        if not (math.isfinite(ramp_in_s) and ramp_in_s >= 0.0):
            raise ValueError(f"ramp_in_s must be finite and >= 0, got {ramp_in_s!r}")
        if not (math.isfinite(bring_in_velocity) and bring_in_velocity > 0.0):
            raise ValueError(f"bring_in_velocity must be finite and > 0, got {bring_in_velocity!r}")
        self.bring_in_velocity = float(bring_in_velocity)
        if use_acceleration_limit is None:
            use_acceleration_limit = limits.max_acceleration is not None
        elif use_acceleration_limit and limits.max_acceleration is None:
            raise ValueError(
                "use_acceleration_limit=True needs max_acceleration for every joint in the limits"
            )
        self.limits = limits
        self.ramp_in_s = float(ramp_in_s)
        self.use_acceleration_limit = bool(use_acceleration_limit)
        self._names = np.array(limits.names, dtype=object)
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the last command and counters; :meth:`start` is needed again."""
        self._last: np.ndarray | None = None
        self._velocity = np.zeros(len(self.limits))
        self._t_last = 0.0
        self._t_start = 0.0
        self.rejected_total = 0
        self.clamped_total = 0
        self.rate_limited_total = 0
        self.held_total = 0

    def release(self) -> None:
        """Forget the last command but keep the counters; :meth:`start` is needed again
        (re-anchoring on a new measured position)."""
        self._last = None
        self._velocity = np.zeros(len(self.limits))

    def start(self, measured: np.ndarray, t: float) -> None:
        """Begin at the measured joint positions: last command = measured, ramp in.

        A joint outside its limits stays where it is measured; :meth:`filter` brings it inside
        slowly (never a jump on the first tick).

        Raises:
            ValueError: ``measured`` non-finite or of the wrong shape, or ``t`` non-finite.
        """
        pos = np.array(measured, dtype=np.float64)
        if pos.shape != (len(self.limits),):
            raise ValueError(
                f"measured positions have shape {pos.shape}, expected ({len(self.limits)},)"
            )
        if not np.all(np.isfinite(pos)):
            bad = list(self._names[~np.isfinite(pos)])
            raise ValueError(f"measured positions are not finite for joint(s) {bad}")
        if not math.isfinite(t):
            raise ValueError(f"start time must be finite, got {t!r}")
        self._last = pos
        self._velocity = np.zeros(len(self.limits))
        self._t_last = float(t)
        self._t_start = float(t)

    @property
    def started(self) -> bool:
        """True once :meth:`start` was called (and not reset since)."""
        return self._last is not None

    @property
    def last_command(self) -> np.ndarray | None:
        """Copy of the last output (the measured position right after start)."""
        return None if self._last is None else self._last.copy()

    def ramp_scale(self, t: float) -> float:
        """Fraction (0..1) of the full velocity limit allowed at time ``t``."""
        if self.ramp_in_s <= 0.0:
            return 1.0
        return min(max((t - self._t_start) / self.ramp_in_s, 0.0), 1.0)

    # -- the filter ------------------------------------------------------------------------

    def filter(self, target: np.ndarray | None, t: float) -> tuple[np.ndarray, SafetyReport]:
        """Safe command for time ``t`` moving towards ``target``.

        Returns a fresh (J,) array and a report. None, non-finite or wrong-shape targets hold
        the previous output.

        Raises:
            RuntimeError: if :meth:`start` was not called.
        """
        if self._last is None:
            raise RuntimeError("SafetyFilter.filter() called before start(measured, t)")
        last = self._last
        t = float(t)
        dt = t - self._t_last if math.isfinite(t) else math.nan
        # Ramp factor at the start of the interval: 0 right after start(), so nothing jumps.
        scale = self.ramp_scale(self._t_last)
        ramping = scale < 1.0

        if target is None:
            self.held_total += 1
            return self._hold(t, dt, SafetyReport(False, ramping=ramping, reason="no target"))
        reason = self._reject_reason(target)
        if reason:
            self.rejected_total += 1
            return self._hold(t, dt, SafetyReport(False, ramping=ramping, reason=reason))

        goal = np.asarray(target, dtype=np.float64)
        lower, upper = self.limits.lower, self.limits.upper
        clamped_mask = (goal < lower) | (goal > upper)
        goal = np.clip(goal, lower, upper)
        clamped = tuple(self._names[clamped_mask]) if clamped_mask.any() else ()
        if clamped:
            self.clamped_total += 1

        if not dt > 0.0:  # dt <= 0 or NaN: no motion allowed
            limited_mask = np.abs(goal - last) > self._TOL
            report = SafetyReport(
                True,
                clamped=clamped,
                rate_limited=tuple(self._names[limited_mask]),
                ramping=ramping,
                reason="time did not advance (dt <= 0): holding",
            )
            if limited_mask.any():
                self.rate_limited_total += 1
            return self._hold(t, dt, report)

        wanted = goal - last
        vmax = scale * self.limits.max_velocity
        # A joint still outside its limits (measured there at start) comes in slowly, and the
        # final clamp below must not snap it inside: its bound is where it is now.
        outside = (last < lower) | (last > upper)
        if outside.any():
            vmax = np.where(outside, np.minimum(vmax, self.bring_in_velocity), vmax)
            lower = np.minimum(lower, last)
            upper = np.maximum(upper, last)
        velocity = np.clip(wanted / dt, -vmax, vmax)
        if self.use_acceleration_limit:
            amax = self.limits.max_acceleration
            assert amax is not None  # checked in __init__
            # Braking cap: from speed v we can still stop within distance v^2 / (2a).
            brake = np.sqrt(2.0 * amax * np.abs(wanted))
            velocity = np.clip(velocity, -brake, brake)
            dv = amax * dt
            velocity = np.clip(velocity, self._velocity - dv, self._velocity + dv)
            velocity = np.clip(velocity, -vmax, vmax)
        step = velocity * dt
        # Guarantee the velocity bound despite float rounding in velocity * dt.
        max_step = vmax * dt
        step = np.clip(step, -max_step, max_step)
        out = np.clip(last + step, lower, upper)
        limited_mask = np.abs(out - goal) > self._TOL
        rate_limited = tuple(self._names[limited_mask]) if limited_mask.any() else ()
        if rate_limited:
            self.rate_limited_total += 1

        self._velocity = (out - last) / dt
        self._last = out
        self._t_last = t
        report = SafetyReport(True, clamped=clamped, rate_limited=rate_limited, ramping=ramping)
        return out.copy(), report

    def brake(self, t: float) -> tuple[np.ndarray, SafetyReport]:
        """Come to a stop within the acceleration limit (no target: an underrun).

        With the acceleration limit on, each joint keeps moving in the direction it had and
        its speed falls by at most ``max_acceleration * dt`` per call until it is zero, so an
        underrun never asks a moving arm for an infinite deceleration. Without it (or once
        stopped) this is a hold. Position limits still win (a joint stops at a limit), and
        the output keeps every guarantee of :meth:`filter`.

        Raises:
            RuntimeError: if :meth:`start` was not called.
        """
        if self._last is None:
            raise RuntimeError("SafetyFilter.brake() called before start(measured, t)")
        t = float(t)
        dt = t - self._t_last if math.isfinite(t) else math.nan
        ramping = self.ramp_scale(self._t_last) < 1.0
        self.held_total += 1
        moving = np.any(self._velocity != 0.0)
        if not (self.use_acceleration_limit and moving and dt > 0.0):
            return self._hold(t, dt, SafetyReport(False, ramping=ramping, reason="no target"))
        amax = self.limits.max_acceleration
        assert amax is not None  # checked in __init__
        last = self._last
        speed = np.maximum(np.abs(self._velocity) - amax * dt, 0.0)
        velocity = np.sign(self._velocity) * speed
        lower = np.minimum(self.limits.lower, last)
        upper = np.maximum(self.limits.upper, last)
        out = np.clip(last + velocity * dt, lower, upper)
        self._velocity = (out - last) / dt
        self._last = out
        self._t_last = t
        return out.copy(), SafetyReport(False, ramping=ramping, reason="no target: braking")

    def _reject_reason(self, target: Any) -> str:
        try:
            arr = np.asarray(target, dtype=np.float64)
        except (TypeError, ValueError):
            return "target is not numeric"
        if arr.shape != (len(self.limits),):
            return f"target has shape {arr.shape}, expected ({len(self.limits)},)"
        bad = ~np.isfinite(arr)
        if bad.any():
            return f"non-finite target for joint(s) {list(self._names[bad])}"
        return ""

    def _hold(self, t: float, dt: float, report: SafetyReport) -> tuple[np.ndarray, SafetyReport]:
        """Output the previous command again; the hold means zero velocity from here."""
        assert self._last is not None
        self._velocity = np.zeros(len(self.limits))
        if dt > 0.0:
            self._t_last = t
        elif math.isfinite(t) and dt < 0.0:
            # Time went backwards (e.g. a simulator reset): re-anchor and ramp in again.
            self._t_last = t
            self._t_start = t
        return self._last.copy(), report
