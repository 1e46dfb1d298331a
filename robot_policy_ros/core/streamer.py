"""The command streamer's decisions, without ROS: what to publish at each tick, and why.

:class:`StreamerCore` holds every decision between a learned network and a motor: which
chunks are accepted, the e-stop latch and the deadman, the safety clock, re-anchoring on the
measured position, clock-jump handling and the start-up wait for the e-stop input. It is
driven by plain values (times in seconds, positions as arrays, chunks as arrays), so it is
tested exhaustively without rclpy; the ``command_streamer`` node is a thin adapter (topics,
the control thread, publishing) and the offline closed-loop evaluator drives this same core.

Clocks
    ``ros_now`` is the node clock (ROS time, sim time with use_sim_time): chunks and joint
    state stamps live on it. ``wall_now`` is a monotonic clock: timeouts (joint-state
    freshness, the e-stop wait, the deadman) are judged on it, so a ROS clock jump can never
    make stale data look fresh.

Per tick, in this order (:meth:`StreamerCore.tick`):
    0. the safety clock advances by the smallest of the ROS-clock step, the wall-clock step
       and two control periods (a clock jump or a stalled thread never widens the step a
       joint may take in one tick). A ROS step backwards, or forwards beyond
       ``max_clock_jump_s``, clears the buffer (no chunk observed before it is executed after
       it) and re-anchors;
    1. deadman (when enabled): a heartbeat silent beyond ``deadman_timeout_s`` latches the
       e-stop;
    2. e-stop latched: hold the last command at once (``e_stop_behavior`` hold) or publish
       nothing (silent);
    3. after activation: publish nothing until the e-stop input has been heard from or
       ``e_stop_grace_s`` passed (:meth:`StreamerCore.tick` is told the e-stop publishers);
    4. no joint state yet: publish nothing;
    5. joint state older than ``joint_state_timeout_s`` (see :class:`Measured`): brake to a
       stop if commands were sent, else publish nothing; never start blindly;
    6. first fresh state, the first after stale ones, or the arm measured more than
       ``reanchor_tolerance`` from the last command: (re)start the safety filter at the
       measured position and ramp in;
    7. otherwise the blended action for ``ros_now``, through the safety filter; when no chunk
       covers now (an underrun) the filter brakes within the acceleration limit.

An e-stop holds at once (zero speed on the next tick); an underrun or stale joint states
decelerate within the acceleration limit (a smooth stop, the arm is not in danger). Without
acceleration limits both hold.

Threading: the ``on_*`` inputs and :meth:`StreamerCore.add_chunk` may be called from other
threads than :meth:`StreamerCore.tick`. Each hands its data over as one reference swap, an
Event or through the thread-safe :class:`ChunkBuffer`; :meth:`tick` never waits on them.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_policy_ros.core.chunk_buffer import BlendConfig, ChunkBuffer
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.core.safety import SafetyFilter

__all__ = [
    "E_STOP_SETTLE_S",
    "JUMP_QUARANTINE_S",
    "STAMP_FUTURE_TOLERANCE_S",
    "ChunkRejectedError",
    "EStopPublishers",
    "Measured",
    "StreamerConfig",
    "StreamerCore",
    "TickResult",
]

#: After a volatile e_stop publisher is discovered, how long the wait still lasts (it has no
#: latched sample to deliver; this only lets a message in flight arrive).
E_STOP_SETTLE_S = 0.2

#: After a clock jump, chunks arriving within this many (monotonic) seconds are dropped: they
#: were in flight, or computed from observations taken before the jump.
JUMP_QUARANTINE_S = 0.5

#: A joint-state stamp this far ahead of the node clock is still taken as "now" (clock
#: granularity between processes); further ahead it is not sane.
STAMP_FUTURE_TOLERANCE_S = 0.05


class ChunkRejectedError(ValueError):
    """A chunk (or joint state) the streamer will not use; ``key`` names the counter."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class StreamerConfig:
    """Everything the core decides with; validated on construction.

    ``limits`` must be in ``joint_names`` order (the controller's order: the order of every
    command). ``deadman_timeout_s`` 0 disables the deadman.
    """

    joint_names: tuple[str, ...]
    limits: JointLimits
    rate_hz: float = 50.0
    blend: BlendConfig = field(default_factory=BlendConfig)
    ramp_in_s: float = 2.0
    use_acceleration_limit: bool = True
    bring_in_velocity: float = 0.1
    reanchor_tolerance: float = 0.25
    max_clock_jump_s: float = 1.0
    joint_state_timeout_s: float = 0.5
    max_stamp_lag_s: float = 5.0
    e_stop_behavior: str = "hold"
    e_stop_grace_s: float = 3.0
    deadman_timeout_s: float = 0.0
    max_chunk_future_s: float = 0.5
    max_chunk_points: int = 1000
    max_chunk_duration_s: float = 30.0

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        object.__setattr__(self, "joint_names", names)
        if tuple(self.limits.names) != names:
            raise ValueError(
                f"limits are for joints {list(self.limits.names)}, expected {list(names)} "
                "(same joints, same order)"
            )
        positive = ("rate_hz", "bring_in_velocity", "reanchor_tolerance", "max_clock_jump_s")
        positive += ("joint_state_timeout_s", "max_stamp_lag_s", "max_chunk_duration_s")
        for key in positive:
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be finite and > 0, got {value!r}")
        for key in ("ramp_in_s", "e_stop_grace_s", "deadman_timeout_s", "max_chunk_future_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be finite and >= 0, got {value!r}")
        if self.e_stop_behavior not in ("hold", "silent"):
            raise ValueError(
                f"e_stop_behavior must be hold or silent, got {self.e_stop_behavior!r}"
            )
        if self.max_chunk_points < 2:
            raise ValueError(f"max_chunk_points must be >= 2, got {self.max_chunk_points!r}")

    @property
    def period(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class Measured:
    """The latest joint state, in streamer order.

    ``received`` is its arrival on the monotonic clock. ``lag`` is how old it already was on
    arrival, by its header stamp where that stamp is sane (not ahead of the node clock, not
    older than ``max_stamp_lag_s``), else 0 (judged by arrival). Its age at ``wall_now`` is
    ``lag + wall_now - received``.
    """

    positions: np.ndarray
    received: float
    lag: float = 0.0

    def age(self, wall_now: float) -> float:
        return self.lag + (wall_now - self.received)


@dataclass(frozen=True)
class EStopPublishers:
    """What the graph says about the e_stop topic (told to :meth:`StreamerCore.tick`)."""

    count: int = 0
    latched: int = 0  # of them transient local: each has a sample we must wait for


@dataclass(frozen=True)
class TickResult:
    """One tick's decision: ``command`` to publish (None: publish nothing) and ``state``."""

    command: np.ndarray | None
    state: str
    event: str = ""  # a one-off worth logging (why the e-stop wait ended, a re-anchor, ...)


class StreamerCore:
    """The streamer's state machine; see the module docstring for the tick order."""

    def __init__(self, config: StreamerConfig) -> None:
        self.config = config
        self.num_joints = len(config.joint_names)
        self.buffer = ChunkBuffer(self.num_joints, config.blend)
        use_accel = config.use_acceleration_limit and config.limits.max_acceleration is not None
        self.acceleration_limited = use_accel
        self.filter = SafetyFilter(
            config.limits,
            ramp_in_s=config.ramp_in_s,
            use_acceleration_limit=use_accel,
            bring_in_velocity=config.bring_in_velocity,
        )
        self._index_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._accept_lock = threading.Lock()
        self._estop = threading.Event()
        self._restart = threading.Event()
        self.e_stop_value = False  # latest value on e_stop
        self.e_stop_heard = False  # a message arrived since construction (any activation)
        self.e_stop_reason = ""
        self._deadman_alive_at: float | None = None  # wall time of the last heartbeat
        self.deadman_ok = False
        self.measured: Measured | None = None
        self.accept_after = -math.inf
        self.active = False
        self.state = "inactive"
        self.reset_counters()

    def reset_counters(self) -> None:
        self.chunks_received = 0
        self.chunks_rejected: dict[str, int] = {}
        self.underrun_ticks = 0
        self.underrun_events = 0
        self.reanchors = 0
        self.time_jumps = 0
        self.stamp_fallbacks = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def activate(self, ros_now: float, wall_now: float) -> None:
        """Start afresh: nothing buffered or measured before now is ever used."""
        self.buffer.clear()
        self.filter.reset()
        self.measured = None
        self._restart.clear()
        self.accept_after = ros_now
        self._wait_until = wall_now + self.config.e_stop_grace_s
        self._publisher_since: float | None = None
        self._latched_since: float | None = None
        self._estop_wait_done = False
        self._safety_t = 0.0
        self._last_ros: float | None = None
        self._last_wall = wall_now
        self._had_target = False
        self._stale_seen = False
        self._states_after = -math.inf
        self._quarantine_until = -math.inf
        self._strict_until = -math.inf
        self.active = True
        self.state = "starting"

    def deactivate(self) -> None:
        self.active = False
        self.buffer.clear()
        self.filter.reset()
        self.measured = None
        self.state = "inactive"

    # -- inputs (any thread) -----------------------------------------------------------------

    def joint_index(self, names: tuple[str, ...], what: str) -> np.ndarray:
        """Index array mapping a message's joint order onto the streamer's (cached by names).

        Raises:
            ChunkRejectedError: a needed joint is missing, or names repeat.
        """
        idx = self._index_cache.get(names)
        if idx is None:
            position = {n: i for i, n in enumerate(names)}
            if len(position) != len(names):
                raise ChunkRejectedError("bad_message", f"{what} has duplicate joint names")
            missing = [n for n in self.config.joint_names if n not in position]
            if missing:
                raise ChunkRejectedError(
                    "missing_joints",
                    f"{what} lacks joint(s) {missing} (has {list(names)}); the streamer needs "
                    f"{list(self.config.joint_names)}",
                )
            idx = np.array([position[n] for n in self.config.joint_names], dtype=np.intp)
            if len(self._index_cache) > 64:
                self._index_cache.clear()
            self._index_cache[names] = idx
        return idx

    def on_joint_state(
        self,
        names: tuple[str, ...],
        positions: np.ndarray,
        stamp: float,
        ros_now: float,
        wall_now: float,
    ) -> str:
        """A joint state arrived; returns "" when taken, else why not (the last one stays).

        ``stamp`` 0 means unstamped (judged by arrival).
        """
        try:
            idx = self.joint_index(names, "joint_states")
            if len(positions) != len(names):
                raise ChunkRejectedError(
                    "bad_message",
                    f"joint_states has {len(names)} names but {len(positions)} positions",
                )
            mapped = np.asarray(positions, dtype=np.float64)[idx]
            if not np.all(np.isfinite(mapped)):
                bad = [self.config.joint_names[i] for i in np.flatnonzero(~np.isfinite(mapped))]
                raise ChunkRejectedError(
                    "bad_message", f"joint_states has non-finite positions for {bad}"
                )
        except ChunkRejectedError as exc:
            return str(exc)
        lag = ros_now - stamp
        if stamp > 0.0 and -STAMP_FUTURE_TOLERANCE_S <= lag <= self.config.max_stamp_lag_s:
            lag = max(lag, 0.0)
        else:
            if stamp > 0.0:
                self.stamp_fallbacks += 1
            lag = 0.0
        self.measured = Measured(mapped, wall_now, lag)  # one reference swap
        return ""

    def check_point_count(self, count: int) -> None:
        """Refuse an oversized chunk before decoding it (cheap)."""
        if count > self.config.max_chunk_points:
            raise ChunkRejectedError(
                "too_many_points",
                f"chunk has {count} points, more than max_chunk_points "
                f"{self.config.max_chunk_points}",
            )
        if count < 2:
            raise ChunkRejectedError("bad_message", f"chunk has {count} point(s), needs >= 2")

    def add_chunk(
        self,
        names: tuple[str, ...],
        offsets: np.ndarray,
        positions: np.ndarray,
        stamp: float,
        ros_now: float,
        wall_now: float,
    ) -> None:
        """Buffer a chunk: ``positions`` (P, len(names)) at ``stamp + offsets`` (P,).

        ``stamp`` 0 means "start now" (as joint_trajectory_controller). Counts it, and
        counts a rejection by key.

        Raises:
            ChunkRejectedError: naming why (key = the counter).
        """
        try:
            self._add_chunk(names, offsets, positions, stamp, ros_now, wall_now)
        except ChunkRejectedError as exc:
            self.count_rejected(exc.key)
            raise
        self.chunks_received += 1

    def count_rejected(self, key: str) -> None:
        """Count a chunk refused before it reached :meth:`add_chunk` (or by it)."""
        self.chunks_received += 1
        self.chunks_rejected[key] = self.chunks_rejected.get(key, 0) + 1

    def _add_chunk(
        self,
        names: tuple[str, ...],
        offsets: np.ndarray,
        positions: np.ndarray,
        stamp: float,
        ros_now: float,
        wall_now: float,
    ) -> None:
        cfg = self.config
        if not self.active:
            raise ChunkRejectedError("inactive", "chunk arrived while the streamer is inactive")
        offsets = np.asarray(offsets, dtype=np.float64)
        self.check_point_count(len(offsets))
        idx = self.joint_index(tuple(names), "chunk")
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(offsets), len(names)):
            raise ChunkRejectedError(
                "bad_message", "chunk points must each have one position per joint"
            )
        positions = positions[:, idx]
        if not np.all(np.isfinite(positions)):
            raise ChunkRejectedError("non_finite", "chunk contains non-finite positions")
        if not np.all(np.isfinite(offsets)):
            raise ChunkRejectedError("bad_message", "chunk has non-finite time_from_start")
        steps = np.diff(offsets)
        step = float(steps.mean())
        if not step > 0 or np.abs(steps - step).max() > 1e-3 * step + 1e-6:
            raise ChunkRejectedError(
                "bad_message",
                "chunk points must be evenly spaced in time_from_start (action i at i/fps)",
            )
        duration = float(offsets[-1] - offsets[0])
        if duration > cfg.max_chunk_duration_s:
            raise ChunkRejectedError(
                "too_long",
                f"chunk spans {duration:.3f} s, more than max_chunk_duration_s "
                f"{cfg.max_chunk_duration_s:g}",
            )
        if stamp == 0.0:
            stamp = ros_now
        t0 = stamp + float(offsets[0])
        if t0 - ros_now > cfg.max_chunk_future_s:
            raise ChunkRejectedError(
                "future",
                f"chunk starts {t0 - ros_now:.3f} s in the future of the node clock "
                f"(max_chunk_future_s {cfg.max_chunk_future_s:g}; clock mismatch?)",
            )
        end = t0 + (len(offsets) - 1) * step
        if end < ros_now:
            raise ChunkRejectedError(
                "stale", f"chunk ended {ros_now - end:.3f} s ago (stamp {stamp:.3f}); dropped"
            )
        # Acceptance and buffering are one step against a clear (e-stop, clock jump): a
        # chunk checked before a clear is never added after it.
        with self._accept_lock:
            self._accept_checked(positions, t0, step, stamp, ros_now, wall_now)

    def _accept_checked(
        self,
        positions: np.ndarray,
        t0: float,
        step: float,
        stamp: float,
        ros_now: float,
        wall_now: float,
    ) -> None:
        if wall_now < self._quarantine_until:
            raise ChunkRejectedError(
                "before_clock_jump", "chunk arrived right after a ROS clock jump (in flight)"
            )
        if ros_now < self._strict_until and stamp > ros_now:
            # After a backward jump, a stamp ahead of the clock is from the old timeline (an
            # observation is never newer than now) until the clock passes the pre-jump time.
            raise ChunkRejectedError(
                "before_clock_jump",
                f"chunk stamped {stamp:.3f}, ahead of the node clock {ros_now:.3f} after it "
                "jumped back: from before the jump",
            )
        if stamp < self.accept_after:
            raise ChunkRejectedError(
                "before_activation",
                "chunk observed before the streamer was (re)activated, e-stopped, the clock "
                "jumped or the arm was found away from the command",
            )
        try:
            self.buffer.add(positions, t0, 1.0 / step, received_at=ros_now)
        except ValueError as exc:
            raise ChunkRejectedError("bad_message", str(exc)) from exc

    def on_e_stop(self, value: bool, ros_now: float) -> bool:
        """A value on e_stop; True when this one latched the e-stop."""
        self.e_stop_value = bool(value)
        self.e_stop_heard = True
        if value:
            return self._latch("e_stop is true", ros_now)
        return False

    def on_deadman(self, alive: bool, wall_now: float, ros_now: float) -> bool:
        """A heartbeat: ``alive`` False (button released) latches the e-stop at once."""
        if alive:
            self._deadman_alive_at = wall_now
            self.deadman_ok = True
            return False
        self.deadman_ok = False
        return self._latch("deadman released", ros_now)

    def _latch(self, reason: str, ros_now: float) -> bool:
        if self._estop.is_set():
            return False
        self.e_stop_reason = reason
        self._estop.set()  # the control thread holds from its next tick on
        with self._accept_lock:
            self.buffer.clear()
            self.accept_after = ros_now
        return True

    @property
    def e_stop_latched(self) -> bool:
        return self._estop.is_set()

    def reset_e_stop(self, wall_now: float) -> tuple[bool, str]:
        """Release a latched e-stop, if its inputs allow; (success, message)."""
        if not self._estop.is_set():
            return True, "e-stop was not latched"
        if self.e_stop_value:
            return False, "e_stop is still true: publish false on e_stop first"
        if self.config.deadman_timeout_s > 0 and not self._deadman_fresh(wall_now):
            return False, "the deadman heartbeat is not alive: hold the enabling switch first"
        self._restart.set()  # restart from the measured position, ramping in
        self._estop.clear()
        self.e_stop_reason = ""
        return True, "e-stop released; ramping in from the measured position"

    def request_restart(self) -> None:
        """Re-anchor on the measured position at the next tick (ramping in)."""
        self._restart.set()

    def _deadman_fresh(self, wall_now: float) -> bool:
        alive_at = self._deadman_alive_at
        return (
            self.deadman_ok
            and alive_at is not None
            and wall_now - alive_at <= self.config.deadman_timeout_s
        )

    # -- the tick (control thread) -----------------------------------------------------------

    def tick(
        self, ros_now: float, wall_now: float, e_stop_publishers: EStopPublishers | None = None
    ) -> TickResult:
        """Decide this tick's command. ``e_stop_publishers`` matters only until the start-up
        wait for the e-stop input has ended (:attr:`waiting_for_e_stop_input`)."""
        cfg = self.config
        if not self.active:
            return self._result(None, "inactive", "")
        event = self._advance_safety_clock(ros_now, wall_now)
        t = self._safety_t
        filt = self.filter
        if self._restart.is_set():
            self._restart.clear()
            filt.release()
            self._had_target = False
        heard = cfg.deadman_timeout_s > 0 and self._deadman_alive_at is not None
        silent = heard and not self._deadman_fresh(wall_now)
        if silent and self._latch("deadman silent", ros_now):
            event = f"deadman heartbeat silent for over {cfg.deadman_timeout_s:g} s: E-STOP"
        if self._estop.is_set():
            return self._result(self._hold(t, cfg.e_stop_behavior == "hold"), "e_stop", event)
        if not self._estop_wait_done:
            why = self._e_stop_input_ready(wall_now, e_stop_publishers or EStopPublishers())
            if not why:
                return self._result(None, "starting (waiting for the e-stop input)", event)
            event = f"{why}: commands may start"
        if cfg.deadman_timeout_s > 0 and not self._deadman_fresh(wall_now):
            # Never heard (a silence after a heartbeat latched above): no motion without it.
            return self._result(self._hold(t, True), "waiting for the deadman heartbeat", event)
        measured = self.measured
        if measured is None:
            return self._result(None, "waiting_for_joint_states", event)
        if measured.received < self._states_after:
            # After a clock jump (a sim reset moves the arm): only a state taken since.
            return self._result(None, "waiting for joint states after the clock jump", event)
        if measured.age(wall_now) > cfg.joint_state_timeout_s:
            self._stale_seen = self._stale_seen or filt.started
            command = filt.brake(t)[0] if filt.started else None
            return self._result(command, "joint_states_stale", event)
        if filt.started:
            # Never continue from a command the arm is not at.
            diverged = float(np.max(np.abs(measured.positions - filt.last_command)))
            if self._stale_seen or diverged > cfg.reanchor_tolerance:
                self.reanchors += 1
                event = (
                    "re-anchoring on the measured position (joint states "
                    f"{'back after stale' if self._stale_seen else 'away from the command'}, "
                    f"max difference {diverged:.3f})"
                )
                if diverged > cfg.reanchor_tolerance:
                    # The buffered chunks were planned from where the arm no longer is (a
                    # reset, a push, a collision): hold here until a chunk observed from
                    # this state on arrives, never resume the old plan from a new place.
                    self.buffer.clear()
                    self.accept_after = max(self.accept_after, ros_now - measured.lag)
                    event += "; chunks planned before it dropped, holding for a fresh one"
                filt.release()
        self._stale_seen = False
        if not filt.started:
            filt.start(measured.positions, t)
            self._had_target = False
        target = self.buffer.action_at(ros_now)
        if target is None:
            if self._had_target:
                self.underrun_events += 1
                self._had_target = False
            if self.chunks_received:
                self.underrun_ticks += 1
            return self._result(filt.brake(t)[0], "holding (no action for now)", event)
        self._had_target = True
        command, report = filt.filter(target, t)
        return self._result(command, "ramping" if report.ramping else "running", event)

    def _result(self, command: np.ndarray | None, state: str, event: str) -> TickResult:
        self.state = state
        return TickResult(command, state, event)

    def _hold(self, t: float, publish: bool) -> np.ndarray | None:
        if not (publish and self.filter.started):
            return None
        return self.filter.filter(None, t)[0]

    @property
    def waiting_for_e_stop_input(self) -> bool:
        return self.active and not self._estop_wait_done

    def _advance_safety_clock(self, ros_now: float, wall_now: float) -> str:
        event = ""
        if self._last_ros is not None:
            ros_step = ros_now - self._last_ros
            if not (0.0 <= ros_step <= self.config.max_clock_jump_s):
                event = self._on_time_jump(ros_step, ros_now, wall_now)
            step = min(ros_step, wall_now - self._last_wall, 2.0 * self.config.period)
            self._safety_t += max(step, 0.0)
        self._last_ros, self._last_wall = ros_now, wall_now
        return event

    def _on_time_jump(self, ros_step: float, ros_now: float, wall_now: float) -> str:
        """No chunk from before the jump may run after it; restart from the measured state."""
        with self._accept_lock:
            self.buffer.clear()
            self.accept_after = ros_now
            self._quarantine_until = wall_now + JUMP_QUARANTINE_S
            if ros_step < 0.0:
                self._strict_until = ros_now - ros_step  # the newest time before the jump
        self.filter.release()
        self._had_target = False
        self._states_after = wall_now
        self.time_jumps += 1
        return (
            f"ROS clock jumped by {ros_step:+.3f} s: buffer cleared, restarting from the "
            "measured position"
        )

    def _e_stop_input_ready(self, wall_now: float, pubs: EStopPublishers) -> str:
        """Why the start-up wait for the e-stop input ends now, or "" to keep waiting.

        Heard from: a message arrived (on either subscription, since configure). A latched
        (transient local) publisher has a sample to deliver: wait for it however long
        discovery takes, up to ``e_stop_grace_s`` after the publisher was discovered (or
        after activation, whichever is later). Volatile publishers only: they have nothing
        latched, so ``E_STOP_SETTLE_S`` after discovery is enough.
        """
        why = ""
        if pubs.latched and self._latched_since is None:
            # Discovery may take seconds under load: its sample gets a full grace from here.
            self._latched_since = wall_now
            self._wait_until = max(self._wait_until, wall_now + self.config.e_stop_grace_s)
        if self.e_stop_heard:
            why = "e-stop input heard (a message arrived)"
        elif pubs.count > 0 and pubs.latched == 0:
            if self._publisher_since is None:
                self._publisher_since = wall_now
            if wall_now - self._publisher_since >= E_STOP_SETTLE_S:
                why = "e-stop input heard (a volatile publisher is connected, no stop latched)"
        else:
            self._publisher_since = None
        if not why and wall_now >= self._wait_until:
            latched = (
                " (a latched publisher was discovered but its sample has not arrived within "
                "e_stop_grace_s of that)"
            )
            why = (
                f"no e-stop input heard within e_stop_grace_s {self.config.e_stop_grace_s:g} s"
                f"{latched if pubs.latched else ''}; starting without one"
            )
        if why:
            self._estop_wait_done = True
        return why

    # -- reporting ----------------------------------------------------------------------------

    def counters(self, wall_now: float) -> dict[str, Any]:
        """Figures for /diagnostics."""
        measured = self.measured
        filt = self.filter
        # A copy (one C-level call): the decoder thread may add a key while we read.
        rejected = dict(self.chunks_rejected)
        values: dict[str, Any] = {
            "e_stop": self._estop.is_set(),
            "e_stop_input": self.e_stop_value,
            "e_stop_reason": self.e_stop_reason,
            "buffer_chunks": len(self.buffer),
            "underrun_ticks": self.underrun_ticks,
            "underrun_events": self.underrun_events,
            "chunks_received": self.chunks_received,
            "chunks_rejected": sum(rejected.values()),
            "clamped_ticks": filt.clamped_total,
            "rate_limited_ticks": filt.rate_limited_total,
            "safety_rejects": filt.rejected_total,
            "reanchors": self.reanchors,
            "time_jumps": self.time_jumps,
            "joint_state_stamp_fallbacks": self.stamp_fallbacks,
            "joint_state_age_s": measured.age(wall_now) if measured is not None else math.nan,
            "acceleration_limited": self.acceleration_limited,
        }
        if self.config.deadman_timeout_s > 0:
            values["deadman_alive"] = self._deadman_fresh(wall_now)
        for key, count in rejected.items():
            values[f"chunks_rejected_{key}"] = count
        return values
