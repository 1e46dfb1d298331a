"""ROS clock jumps, for a node that keeps time-indexed state; independent of ROS.

A node that remembers times (the end of the horizon it has published, the stamps of its
latest inputs) must forget them when the ROS clock jumps: after a sim reset (``/clock``
restarting backwards) an old horizon end lies far in the future and would stop inference
until sim time caught up, and inputs stamped on the old timeline would be judged against
the new one.

:class:`JumpFilter` says which inputs are from before the last jump, and numbers the jumps
(``epoch``) so that work started before a jump (an inference in flight) is not published
after it. :class:`SystemClockWatch` finds steps of the system clock, for which rcl reports
no jumps (rcl's jump callbacks cover ROS time, i.e. ``use_sim_time``, only).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class JumpFilter:
    """Which stamps belong to the timeline before the last clock jump.

    After a jump from ``before`` to ``after`` (node clock, seconds):

    * anything stamped earlier than ``after`` is from before the jump (forward jump: the
      old timeline lies behind; backward jump: and everything before the jump point);
    * after a backward jump, until the clock is back at ``before``, an input stamped ahead
      of the clock by more than ``min(|jump| / 2, max_ahead_s)`` is from before the jump too
      (it was stamped on the old timeline, up to ``before``; fresh inputs are stamped at
      most a transport delay ahead of the node's clock). A backward jump much smaller
      than the transport delay cannot be told apart from it; such a jump moves nothing.

    Thread-safe. ``epoch`` counts the jumps: work started in an older epoch is stale.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.epoch = 0
        self._accept_after = -math.inf
        self._ahead_until = -math.inf
        self._ahead_tolerance = math.inf

    def invalidate(self) -> int:
        """Start a new epoch (a jump is about to happen); returns it."""
        with self._lock:
            self.epoch += 1
            return self.epoch

    def jumped(self, before: float, after: float, max_ahead_s: float) -> None:
        """The clock went from ``before`` to ``after`` (call :meth:`invalidate` first)."""
        with self._lock:
            self._accept_after = after
            if after < before:
                self._ahead_until = before
                self._ahead_tolerance = min((before - after) / 2.0, max_ahead_s)
            else:
                self._ahead_until = -math.inf
                self._ahead_tolerance = math.inf

    def reset(self) -> None:
        """Forget the last jump (e.g. at activation, when nothing older is kept anyway)."""
        with self._lock:
            self.epoch += 1
            self._accept_after = -math.inf
            self._ahead_until = -math.inf
            self._ahead_tolerance = math.inf

    def from_before(self, stamp: float, now: Callable[[], float]) -> bool:
        """Is an input stamped ``stamp`` from before the last jump? ``now()``: node clock,
        only read in the window after a backward jump."""
        if stamp < self._accept_after:
            return True
        if self._ahead_until == -math.inf:
            return False
        t = now()
        with self._lock:
            if t >= self._ahead_until:
                self._ahead_until = -math.inf  # the clock is past the old timeline
                return False
            return stamp > t + self._ahead_tolerance


class SystemClockWatch:
    """Steps of a wall clock (the system clock behind ROS time without ``use_sim_time``)
    relative to the monotonic clock.

    :meth:`check` reads both clocks and compares their offset with the previous reading's:
    an NTP step, ``date -s`` or a VM resume moves the offset; time passing does not, however
    long between two checks. A reading where the monotonic clock moved more than
    ``max_read_s`` around the wall-clock read (the thread was preempted) is not used.

    Args:
        max_forward_s: a step forward by more than this is a jump.
        max_backward_s: a step backward by more than this is a jump (the small default
            only allows for read jitter; NTP slews far slower).
        max_read_s: largest monotonic time around one wall-clock read for a usable sample.
    """

    def __init__(
        self, max_forward_s: float, max_backward_s: float = 0.01, max_read_s: float = 0.002
    ) -> None:
        self.max_forward_s = float(max_forward_s)
        self.max_backward_s = float(max_backward_s)
        self.max_read_s = float(max_read_s)
        self._offset: float | None = None

    def reset(self) -> None:
        """Forget the previous reading."""
        self._offset = None

    def check(
        self, read_wall: Callable[[], float], monotonic: Callable[[], float] = time.monotonic
    ) -> tuple[float, float] | None:
        """(before, after) wall times of a jump since the previous check, else None."""
        m0 = monotonic()
        wall = read_wall()
        m1 = monotonic()
        if m1 - m0 > self.max_read_s:
            return None
        offset = wall - 0.5 * (m0 + m1)
        previous, self._offset = self._offset, offset
        if previous is None:
            return None
        step = offset - previous
        if step > self.max_forward_s or step < -self.max_backward_s:
            return wall - step, wall
        return None
