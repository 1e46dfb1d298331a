"""command_streamer: buffered, blended, safety-filtered joint commands at a fixed rate.

Subscribes ``action_chunk`` (trajectory_msgs/JointTrajectory from policy_node or anything
else), ``joint_states`` and ``e_stop``; publishes ``joint_commands`` at ``control_rate_hz``.

Threads:
    * the executor thread runs the callbacks, which only validate and hand data over
      (chunks into the thread-safe :class:`ChunkBuffer`, the measured position as one
      atomic reference swap, the e-stop as an Event), plus the diagnostics timer;
    * a dedicated control thread paces itself with absolute deadlines on the monotonic
      clock (:class:`FixedRateTicker`), looks up the action for the ROS-clock "now",
      passes it through the :class:`SafetyFilter` and publishes a preallocated message.
      It never waits for a callback, inference, image conversion or logging.

Behaviour per tick (in this order):
    0. after activation: publish nothing until the e-stop input has been heard from (a
       message, or a discovered publisher) or ``e_stop_grace_s`` has passed (logged which);
    1. e-stop latched: hold the last safe command (``e_stop_behavior`` hold) or publish
       nothing (silent);
    2. no joint state seen yet: publish nothing;
    3. joint state older than ``joint_state_timeout_s`` (by arrival time): hold the last
       command if one was sent, else publish nothing; never start or ramp blindly;
    4. first tick with a fresh joint state, the first after stale ones, or one more than
       ``reanchor_tolerance`` from the last command: the safety filter (re)starts at the
       measured position (a joint outside its limits comes in at ``bring_in_velocity``)
       and ramps its velocity limit in over ``ramp_in_s``;
    5. otherwise: target = blended action for now (None if no chunk covers now -> hold,
       counted as an underrun), filtered, published.

The safety filter runs on its own "safety clock", which advances every tick by the
smallest of the ROS-clock step, the wall-clock step and two control periods: a ROS time
jump (sim reset, clock change) or a stalled control thread can never widen the step a
joint may take in one tick. A ROS clock step backwards, or forwards beyond
``max_clock_jump_s``, clears the buffer (no chunk observed before it runs after it) and
re-anchors.

Commands go out in the controller's joint order: the limits file's when given (it must name
the same joints as the checkpoint), else the checkpoint's; chunks and joint states are
mapped to it by name.
"""

from __future__ import annotations

import array
import ctypes
import gc
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy_ros.core.chunk_buffer import BlendConfig, BlendMode, ChunkBuffer
from robot_policy_ros.core.diagnostics import RateTracker
from robot_policy_ros.core.params import ParamSpec
from robot_policy_ros.core.safety import JointLimits, SafetyFilter
from robot_policy_ros.core.timing import FixedRateTicker, PeriodTracker
from robot_policy_ros.nodes.lifecycle import (
    CHUNK_QOS,
    ConfigurationError,
    LogThrottle,
    ManagedNode,
    diagnostic_array,
    diagnostic_status,
    guarded,
    main_for,
    stamp_to_sec,
)

NODE_NAME = "command_streamer"

SPECS: list[ParamSpec] = [
    ParamSpec(
        "checkpoint",
        "",
        "Checkpoint directory: the streamer reads its joint order and stored joint limits "
        "(config only, no weights). Empty: joint order and limits come from limits_file.",
    ),
    ParamSpec(
        "limits_file",
        "",
        "YAML with per-joint lower/upper/max_velocity[/max_acceleration]; overrides the "
        "checkpoint's stored limits. With neither, the streamer refuses to start.",
    ),
    ParamSpec(
        "control_rate_hz",
        50.0,
        "Rate at which joint commands are published.",
        min_value=1.0,
        max_value=1000.0,
    ),
    ParamSpec(
        "blending",
        "replace",
        "How overlapping chunks are combined.",
        choices=tuple(m.value for m in BlendMode),
    ),
    ParamSpec(
        "ensemble_k",
        0.01,
        "temporal_ensemble: weight of the i-th oldest chunk is exp(-ensemble_k * i).",
        min_value=0.0,
        max_value=100.0,
    ),
    ParamSpec(
        "average_weight",
        0.5,
        "average: weight of the newest chunk against the blend of the older ones.",
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        "crossfade_s",
        0.1,
        "crossfade: seconds over which a new chunk fades in over the older ones.",
        min_value=0.0,
        max_value=10.0,
    ),
    ParamSpec(
        "command_interface",
        "position_array",
        "Message type on joint_commands: position_array (std_msgs/Float64MultiArray for "
        "forward_position_controller), joint_state (sensor_msgs/JointState) or "
        "joint_trajectory (single-point trajectory_msgs/JointTrajectory).",
        choices=("position_array", "joint_state", "joint_trajectory"),
    ),
    ParamSpec(
        "ramp_in_s",
        2.0,
        "Seconds over which the velocity limit ramps from 0 to full after (re)starting "
        "from the measured position.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "use_acceleration_limit",
        True,
        "Also limit accelerations where the limits carry max_acceleration (every preset does); "
        "limits without accelerations run with the velocity limit only (logged).",
    ),
    ParamSpec(
        "bring_in_velocity",
        0.1,
        "Top speed (joint units/s) at which a joint measured outside its limits is brought "
        "inside; it is never snapped in.",
        min_value=1e-4,
        max_value=10.0,
    ),
    ParamSpec(
        "reanchor_tolerance",
        0.25,
        "If the measured position and the last command differ by more than this on any joint "
        "(arm moved by hand, driver restart, sim reset), hold, restart from the measured "
        "position and ramp in again.",
        min_value=1e-3,
        max_value=100.0,
    ),
    ParamSpec(
        "max_clock_jump_s",
        1.0,
        "A ROS clock step forward by more than this (or any step backwards) clears the buffered "
        "chunks and restarts from the measured position.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "e_stop_behavior",
        "hold",
        "While the e-stop is latched: hold (keep publishing the last safe command) or silent "
        "(publish nothing).",
        choices=("hold", "silent"),
    ),
    ParamSpec(
        "joint_state_timeout_s",
        0.5,
        "If no joint state arrived for this long, hold the last command and report it.",
        min_value=0.001,
        max_value=60.0,
    ),
    ParamSpec(
        "e_stop_grace_s",
        3.0,
        "After activation, publish nothing until the e-stop input has been heard from (a "
        "message, or a discovered publisher) or this many seconds have passed, so that a "
        "latched e-stop published before the streamer started is honoured before anything "
        "moves. The log says which ended the wait.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "max_chunk_future_s",
        0.5,
        "Chunks stamped further than this ahead of the node clock are rejected (clock mismatch).",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "max_chunk_points",
        1000,
        "Chunks with more points than this are rejected (diagnostics counter chunks_rejected).",
        min_value=2,
        max_value=100000,
    ),
    ParamSpec(
        "max_chunk_duration_s",
        30.0,
        "Chunks spanning more seconds than this (first to last point) are rejected.",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "realtime_priority",
        10,
        "SCHED_FIFO priority of the control thread where permitted; the executor thread gets "
        "one less, so it cannot hold the GIL while preempted (0: normal scheduling).",
        min_value=0,
        max_value=99,
    ),
    ParamSpec(
        "lock_memory",
        True,
        "mlockall() the process at activation so that no page the control loop touches can be "
        "paged out (a major page fault stalls it for tens of ms). Skipped where torch is loaded "
        "in the same process (policy_stack) or where it is not permitted.",
    ),
]

# The e-stop topic is latched: a transient-local subscription sees a stop published before
# this node started. A second, volatile subscription hears plain publishers too (a volatile
# publisher does not match a transient-local subscription, and an e-stop must never be
# silently ignored for a QoS mismatch).
E_STOP_QOS_LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Best effort + volatile matches every publisher (reliable or best effort, volatile or
# transient local): teleop pendants and `ros2 topic pub --qos-reliability best_effort` too.
E_STOP_QOS_VOLATILE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT
)
# Only the newest command matters: depth 1 so a slow subscriber never gets a backlog.
COMMAND_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
)

# After an e_stop publisher is discovered, the time its latched sample may take to arrive.
E_STOP_SETTLE_S = 0.2

# Why the GIL switch interval is lowered in this process: a thread holding the GIL keeps it
# for up to the interval (5 ms by default) before a waiting thread gets it; the control thread
# must never wait that long behind a callback.
GIL_SWITCH_INTERVAL_S = 0.0005


def _expected_mismatch(_event: Any) -> None:
    """A best-effort e-stop publisher vs. the latched subscription: heard on the other one."""


@dataclass(frozen=True)
class Measured:
    """Latest joint state in streamer order, with its arrival time (monotonic)."""

    positions: np.ndarray
    received: float
    stamp: float


def load_joint_setup(checkpoint: str, limits_file: str) -> tuple[tuple[str, ...], JointLimits]:
    """Joint order and limits from the checkpoint config and/or a limits YAML.

    Joint order (the order of every published command): the limits file's when given (the
    controller's order), else the checkpoint's. Limits: the file's when given, else the
    checkpoint's stored limits. Chunks and joint states are mapped to this order by name.

    Raises:
        ConfigurationError: naming what is missing or inconsistent.
    """
    names: tuple[str, ...] | None = None
    ckpt_limits: JointLimits | None = None
    if checkpoint:
        from robot_policy_ros.checkpoint_config import CheckpointError, read_checkpoint_config

        try:
            cfg = read_checkpoint_config(checkpoint)
        except (CheckpointError, OSError) as exc:
            raise ConfigurationError(f"parameter 'checkpoint' = {checkpoint!r}: {exc}") from exc
        names = tuple(cfg.joint_names)
        if getattr(cfg, "limits", None):
            try:
                ckpt_limits = cfg.joint_limits()
            except (ValueError, KeyError) as exc:
                raise ConfigurationError(
                    f"checkpoint {checkpoint!r} stores invalid joint limits: {exc}"
                ) from exc
    if limits_file:
        try:
            file_limits = JointLimits.from_yaml(limits_file)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"parameter 'limits_file' = {limits_file!r}: {exc}") from exc
        # The limits file is the controller's joint order (a forward_position_controller's
        # `joints` list): commands go out in it, chunks are mapped to it by name.
        if names is not None and set(names) != set(file_limits.names):
            raise ConfigurationError(
                f"parameter 'limits_file' = {limits_file!r} lists joints "
                f"{list(file_limits.names)} but the checkpoint {checkpoint!r} has {list(names)}; "
                "they must name the same joints (the order may differ)"
            )
        return file_limits.names, file_limits
    if ckpt_limits is not None and names is not None:
        return names, ckpt_limits
    if checkpoint:
        raise ConfigurationError(
            f"no joint limits: checkpoint {checkpoint!r} stores none and limits_file is not "
            "set; refusing to stream commands without position and velocity limits "
            "(set -p limits_file:=/path/to/limits.yaml)"
        )
    raise ConfigurationError(
        "no joint limits: set limits_file (a YAML with lower/upper/max_velocity per joint) or "
        "checkpoint (one that stores limits); refusing to stream commands without them"
    )


def lock_process_memory() -> str:
    """mlockall(MCL_CURRENT | MCL_FUTURE); returns "" on success, else why not."""
    if "torch" in sys.modules:
        # Locking would fault in and pin every mapped page of torch's libraries (GBs).
        return "torch is loaded in this process"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(1 | 2) != 0:  # MCL_CURRENT | MCL_FUTURE
            return os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        return str(exc)
    return ""


class GcPauses:
    """Longest garbage-collector pause in this process (a pause stalls every thread)."""

    def __init__(self) -> None:
        self.max_ms = 0.0
        self.count = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.count += 1
            self.max_ms = max(self.max_ms, 1e3 * (time.perf_counter() - self._t0))


GC_PAUSES = GcPauses()


class ChunkRejectedError(ValueError):
    """A chunk the streamer will not buffer; ``key`` names the counter."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class CommandStreamer(ManagedNode):
    """Lifecycle node streaming safety-filtered joint commands at a fixed rate."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, SPECS, **kwargs)
        self._log = LogThrottle(self.log, period_s=2.0)
        self._subs: list[Any] = []
        self._pubs: list[Any] = []
        self._timers: list[Any] = []
        self._srv = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._estop = threading.Event()
        self._estop_value = False  # latest value seen on e_stop
        self._restart = threading.Event()  # control thread: restart the filter from measured
        self._configured = False
        self._rt_refusal_logged = False
        self._memory_locked = False
        self._executor_rt = False
        self.joint_state_error = ""
        self._reset_counters()

    # -- configuration -----------------------------------------------------------------------

    def _reset_counters(self) -> None:
        self.chunks_received = 0
        self.chunks_rejected: dict[str, int] = {}
        self.underrun_ticks = 0
        self.underrun_events = 0
        self.published = 0
        self.state = "unconfigured"
        self.tick_errors = 0
        self.reanchors = 0
        self.time_jumps = 0

    def configure(self, params: dict[str, Any]) -> None:
        self.joint_names, self.limits = load_joint_setup(
            params["checkpoint"], params["limits_file"]
        )
        self.num_joints = len(self.joint_names)
        self.rate_hz = params["control_rate_hz"]
        self.period = 1.0 / self.rate_hz
        blend = BlendConfig(
            mode=BlendMode(params["blending"]),
            ensemble_k=params["ensemble_k"],
            average_weight=params["average_weight"],
            crossfade_s=params["crossfade_s"],
        )
        self.buffer = ChunkBuffer(self.num_joints, blend)
        try:
            use_accel = params["use_acceleration_limit"]
            if use_accel and self.limits.max_acceleration is None:
                use_accel = False
                self.log.warning(
                    "the joint limits carry no max_acceleration: velocity limit only "
                    "(add max_acceleration per joint to the limits file to limit acceleration)"
                )
            self.filter = SafetyFilter(
                self.limits,
                ramp_in_s=params["ramp_in_s"],
                use_acceleration_limit=use_accel,
                bring_in_velocity=params["bring_in_velocity"],
            )
        except ValueError as exc:
            raise ConfigurationError(f"parameter 'use_acceleration_limit': {exc}") from exc
        self.period_stats = PeriodTracker(self.period, window=max(50, int(10 * self.rate_hz)))
        self.command_rate = RateTracker(window_s=2.0, capacity=max(64, int(3 * self.rate_hz)))
        self.chunk_rate = RateTracker(window_s=10.0, capacity=256)
        self._joint_index_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._chunk_index_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._measured: Measured | None = None
        self._accept_after = -math.inf
        self._missed_base = 0
        self._ticker: FixedRateTicker | None = None
        self._make_command_message(params["command_interface"])

        log = self._log
        self._subs = [
            self.create_subscription(
                JointTrajectory, "action_chunk", guarded(self._on_chunk, log, "chunk"), CHUNK_QOS
            ),
            self.create_subscription(
                JointState,
                "joint_states",
                guarded(self._on_joint_state, log, "joint_states"),
                qos_profile_sensor_data,
            ),
            # The e-stop callback is not guarded: it is simple, and must never fail silently.
            # A best-effort publisher cannot match the latched (reliable) subscription; the
            # best-effort one hears it, so that mismatch is expected and not warned about.
            self.create_subscription(
                Bool,
                "e_stop",
                self._on_e_stop,
                E_STOP_QOS_LATCHED,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=_expected_mismatch),
            ),
            self.create_subscription(Bool, "e_stop", self._on_e_stop, E_STOP_QOS_VOLATILE),
        ]
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._pubs = [self._cmd_pub, self._diag_pub]
        self._srv = self.create_service(Trigger, "~/reset_e_stop", self._on_reset_e_stop)
        self._timers = [
            self.create_timer(params["diagnostics_period_s"], self._publish_diagnostics),
            self.create_timer(params["status_log_period_s"], self._log_status),
        ]
        self._configured = True
        self.state = "inactive"
        self.log.info(
            f"{self.num_joints} joints {list(self.joint_names)}, {self.rate_hz:g} Hz, "
            f"blending {blend.mode.value}, command_interface {params['command_interface']}"
        )

    def _make_command_message(self, interface: str) -> None:
        """Preallocate the command message; each tick only copies J floats into it."""
        zeros = array.array("d", bytes(8 * self.num_joints))
        if interface == "position_array":
            msg = Float64MultiArray()
            msg.data = zeros
            self._cmd_view = np.frombuffer(msg.data, dtype=np.float64)
            self._stamp_msg = None
            self._cmd_pub = self.create_publisher(Float64MultiArray, "joint_commands", COMMAND_QOS)
        elif interface == "joint_state":
            msg = JointState()
            msg.name = list(self.joint_names)
            msg.position = zeros
            self._cmd_view = np.frombuffer(msg.position, dtype=np.float64)
            self._stamp_msg = msg.header
            self._cmd_pub = self.create_publisher(JointState, "joint_commands", COMMAND_QOS)
        else:
            msg = JointTrajectory()
            msg.joint_names = list(self.joint_names)
            point = JointTrajectoryPoint()
            point.positions = zeros
            nanos = round(1e9 / self.rate_hz)
            point.time_from_start = Duration(
                sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000
            )
            msg.points = [point]
            self._cmd_view = np.frombuffer(msg.points[0].positions, dtype=np.float64)
            # Zero stamp: joint_trajectory_controller starts the trajectory on receipt, so
            # the target is reached one control period after it arrives.
            self._stamp_msg = None
            self._cmd_pub = self.create_publisher(JointTrajectory, "joint_commands", COMMAND_QOS)
        self._cmd_msg = msg

    def cleanup(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_publisher(pub)
        for timer in self._timers:
            self.destroy_timer(timer)
        if self._srv is not None:
            self.destroy_service(self._srv)
        self._subs, self._pubs, self._timers, self._srv = [], [], [], None
        self._configured = False
        self.state = "unconfigured"

    # -- activation --------------------------------------------------------------------------

    def activate(self) -> None:
        self.buffer.clear()
        self.filter.reset()
        self._measured = None
        self.period_stats.reset()
        self.command_rate.clear()
        # Nothing observed before activation is ever used: chunks stamped earlier are dropped.
        self._accept_after = self._ros_now()
        self._stop.clear()
        self._restart.clear()
        self._start_after = time.monotonic() + self.params["e_stop_grace_s"]
        self._estop_heard = False  # set by a message on e_stop
        self._estop_publisher_since: float | None = None
        self._estop_wait_done = False
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        # Move everything allocated so far out of the collector's reach: later collections
        # only scan young objects, so a GC pause cannot stall a tick for long.
        if self.params["lock_memory"] and not self._memory_locked:
            why_not = lock_process_memory()
            self._memory_locked = not why_not
            self.log.info(
                "process memory locked (mlockall)"
                if not why_not
                else f"process memory not locked: {why_not}"
            )
        gc.collect()
        gc.freeze()
        if GC_PAUSES not in gc.callbacks:
            gc.callbacks.append(GC_PAUSES)
        self.state = "waiting_for_joint_states"
        # The executor thread (this one) and the log writer also take the GIL. If the OS
        # preempted one of them while it holds the GIL, the control thread would wait for it
        # however high its own priority (priority inversion); one FIFO level below the
        # control thread prevents that. (Both only run briefly.)
        priority = self.params["realtime_priority"]
        if priority > 1:
            self._executor_rt = self._set_thread_priority(priority - 1, "executor thread")
            log_tid = self.log.writer.thread.native_id
            if log_tid is not None:
                self._set_thread_priority(priority - 1, "log thread", log_tid)
        self._thread = threading.Thread(target=self._control_loop, name="control", daemon=True)
        self._thread.start()

    def deactivate(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                self.log.error("control thread did not stop within 2 s")
            self._thread = None
        if self._executor_rt:
            self._executor_rt = not self._set_thread_priority(0, "executor thread")
        # Drop everything buffered: nothing old is replayed after re-activation.
        self.buffer.clear()
        self.filter.reset()
        self._measured = None
        self.state = "inactive"

    # -- callbacks (executor thread): validate and hand over, O(1) in the loop's terms -----

    def _ros_now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _index_for(
        self, cache: dict[tuple[str, ...], np.ndarray], names: tuple[str, ...], what: str
    ) -> np.ndarray:
        idx = cache.get(names)
        if idx is None:
            position = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.joint_names if n not in position]
            if missing:
                raise ChunkRejectedError(
                    "missing_joints",
                    f"{what} lacks joint(s) {missing} (has {list(names)}); the streamer needs "
                    f"{list(self.joint_names)}",
                )
            if len(position) != len(names):
                raise ChunkRejectedError("bad_message", f"{what} has duplicate joint names")
            idx = np.array([position[n] for n in self.joint_names], dtype=np.intp)
            if len(cache) > 64:
                cache.clear()
            cache[names] = idx
        return idx

    def _on_joint_state(self, msg: JointState) -> None:
        if not self.active:
            return
        try:
            names = tuple(msg.name)
            idx = self._index_for(self._joint_index_cache, names, "joint_states")
            if len(msg.position) != len(names):
                raise ChunkRejectedError(
                    "bad_message",
                    f"joint_states has {len(names)} names but {len(msg.position)} positions",
                )
            positions = np.frombuffer(msg.position, dtype=np.float64)[idx]
            if not np.all(np.isfinite(positions)):
                raise ChunkRejectedError("bad_message", "joint_states has non-finite positions")
        except ChunkRejectedError as exc:
            self.joint_state_error = str(exc)
            self._log("joint_states", "error", str(exc))
            return
        self.joint_state_error = ""
        # One reference assignment: the control thread always sees a consistent snapshot.
        self._measured = Measured(positions, time.monotonic(), stamp_to_sec(msg.header.stamp))

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if not self.active:
            return
        self.chunks_received += 1
        try:
            self._add_chunk(msg)
        except ChunkRejectedError as exc:
            self.chunks_rejected[exc.key] = self.chunks_rejected.get(exc.key, 0) + 1
            self._log(f"chunk_{exc.key}", "error", f"action_chunk rejected: {exc}")
            return
        self.chunk_rate.add(time.monotonic())

    def _add_chunk(self, msg: JointTrajectory) -> None:
        idx = self._index_for(self._chunk_index_cache, tuple(msg.joint_names), "chunk")
        points = msg.points
        if len(points) < 2:
            raise ChunkRejectedError("bad_message", f"chunk has {len(points)} point(s), needs >= 2")
        if len(points) > self.params["max_chunk_points"]:
            # Checked before decoding: a flood of huge chunks must not cost the executor much.
            raise ChunkRejectedError(
                "too_many_points",
                f"chunk has {len(points)} points, more than max_chunk_points "
                f"{self.params['max_chunk_points']}",
            )
        width = len(msg.joint_names)
        if any(len(p.positions) != width for p in points):
            raise ChunkRejectedError(
                "bad_message", "chunk points must each have one position per joint"
            )
        positions = np.array([p.positions for p in points], dtype=np.float64)[:, idx]
        if not np.all(np.isfinite(positions)):
            raise ChunkRejectedError("non_finite", "chunk contains non-finite positions")
        offsets = np.array(
            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in points]
        )
        steps = np.diff(offsets)
        step = float(steps.mean())
        if not step > 0 or np.abs(steps - step).max() > 1e-3 * step + 1e-6:
            raise ChunkRejectedError(
                "bad_message",
                "chunk points must be evenly spaced in time_from_start (action i at i/fps)",
            )
        duration = float(offsets[-1] - offsets[0])
        if duration > self.params["max_chunk_duration_s"]:
            raise ChunkRejectedError(
                "too_long",
                f"chunk spans {duration:.3f} s, more than max_chunk_duration_s "
                f"{self.params['max_chunk_duration_s']:g}",
            )
        now = self._ros_now()
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp == 0.0:
            stamp = now  # as joint_trajectory_controller: a zero stamp means "start now"
        t0 = stamp + float(offsets[0])
        if t0 - now > self.params["max_chunk_future_s"]:
            raise ChunkRejectedError(
                "future",
                f"chunk starts {t0 - now:.3f} s in the future of the node clock "
                f"(max_chunk_future_s {self.params['max_chunk_future_s']:g}; clock mismatch?)",
            )
        fps = 1.0 / step
        end = t0 + (len(points) - 1) * step
        if end < now:
            raise ChunkRejectedError(
                "stale", f"chunk ended {now - end:.3f} s ago (stamp {stamp:.3f}); dropped"
            )
        if stamp < self._accept_after:
            raise ChunkRejectedError(
                "before_activation",
                "chunk observed before the streamer was (re)activated or e-stopped",
            )
        try:
            self.buffer.add(positions, t0, fps)
        except ValueError as exc:
            raise ChunkRejectedError("bad_message", str(exc)) from exc

    def _on_e_stop(self, msg: Bool) -> None:
        self._estop_value = bool(msg.data)
        self._estop_heard = True
        if msg.data and not self._estop.is_set():
            self._estop.set()  # the control thread holds from its next tick on
            self.buffer.clear()
            self._accept_after = self._ros_now()
            self.log.error("E-STOP: holding; call ~/reset_e_stop after releasing it")

    def _on_reset_e_stop(self, request: Trigger.Request, response: Trigger.Response):
        if not self._estop.is_set():
            response.success = True
            response.message = "e-stop was not latched"
        elif self._estop_value:
            response.success = False
            response.message = "e_stop is still true: publish false on e_stop first"
        else:
            self._restart.set()  # restart from the measured position, ramping in
            self._estop.clear()
            response.success = True
            response.message = "e-stop released; ramping in from the measured position"
            self.log.warning(response.message)
        return response

    # -- control thread ------------------------------------------------------------------------

    def _set_thread_priority(self, priority: int, what: str, tid: int = 0) -> bool:
        """SCHED_FIFO ``priority`` for thread ``tid`` (0: the calling thread); priority 0
        restores normal scheduling."""
        try:
            if priority > 0:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            else:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, PermissionError, OSError) as exc:
            if priority > 0 and not self._rt_refusal_logged:
                self._rt_refusal_logged = True
                self.log.info(f"{what} keeps normal scheduling (SCHED_FIFO not permitted: {exc})")
            return False
        return True

    def _control_loop(self) -> None:
        priority = self.params["realtime_priority"]
        if priority > 0 and self._set_thread_priority(priority, "control thread"):
            self.log.info(f"control thread runs SCHED_FIFO priority {priority}")
        ticker = FixedRateTicker(self.rate_hz)
        self._ticker = ticker
        ticker.start(time.monotonic() + self.period)
        self._safety_t = 0.0
        self._last_ros = None
        self._last_wall = None
        self._had_target = False
        self._stale_seen = False
        while True:
            tick = ticker.wait(self._stop)
            if tick is None:
                break
            try:
                self._tick(tick.woke)
            except Exception as exc:  # never let the loop die silently
                self.tick_errors += 1
                self._log("tick_error", "error", f"control tick failed: {exc!r}")
            self.period_stats.tick(tick.woke)
        self._missed_base += ticker.missed_total
        self._ticker = None

    def _advance_safety_clock(self, ros_now: float, wall_now: float) -> float:
        if self._last_ros is not None:
            ros_step = ros_now - self._last_ros
            if ros_step < 0.0 or ros_step > self.params["max_clock_jump_s"]:
                self._on_time_jump(ros_step)
            step = min(ros_step, wall_now - self._last_wall, 2.0 * self.period)
            self._safety_t += max(step, 0.0)
        self._last_ros, self._last_wall = ros_now, wall_now
        return self._safety_t

    def _on_time_jump(self, ros_step: float) -> None:
        """The ROS clock jumped: no chunk from before it may run after it; start afresh."""
        self.buffer.clear()
        self._accept_after = self._ros_now()
        self._restart.set()
        self.time_jumps += 1
        self._log(
            "time_jump",
            "warning",
            f"ROS clock jumped by {ros_step:+.3f} s: buffer cleared, restarting from the "
            "measured position",
        )

    def _tick(self, wall_now: float) -> None:
        ros_now = self._ros_now()
        t = self._advance_safety_clock(ros_now, wall_now)
        if self._restart.is_set():
            self._restart.clear()
            self.filter.reset()
            self._had_target = False
        filt = self.filter
        if self._estop.is_set():
            self.state = "e_stop"
            if self.params["e_stop_behavior"] == "hold" and filt.started:
                self._publish(filt.filter(None, t)[0], ros_now, wall_now)
            return
        if not self._estop_wait_done and not self._estop_input_ready(wall_now):
            self.state = "starting (waiting for the e-stop input)"
            return
        measured = self._measured
        if measured is None:
            self.state = "waiting_for_joint_states"
            return
        if wall_now - measured.received > self.params["joint_state_timeout_s"]:
            self.state = "joint_states_stale"
            if filt.started:
                self._publish(filt.filter(None, t)[0], ros_now, wall_now)
                self._stale_seen = True
            return
        if filt.started:
            # Never continue from a command the arm is not at: after stale joint states, or
            # when the arm is measured away from the last command, restart from where it is.
            last = filt.last_command
            diverged = float(np.max(np.abs(measured.positions - last)))
            if self._stale_seen or diverged > self.params["reanchor_tolerance"]:
                self.reanchors += 1
                self._log(
                    "reanchor",
                    "warning",
                    f"re-anchoring on the measured position (joint states "
                    f"{'back after stale' if self._stale_seen else 'away from the command'}, "
                    f"max difference {diverged:.3f})",
                )
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
            self.state = "holding (no action for now)"
        else:
            self._had_target = True
        command, report = filt.filter(target, t)
        if target is not None:
            self.state = "ramping" if report.ramping else "running"
        self._publish(command, ros_now, wall_now)
        if self.published % 64 == 0:
            self.buffer.prune(ros_now)

    def _estop_input_ready(self, wall_now: float) -> bool:
        """Before the first command: has the e-stop input been heard from (or waited for)?

        Heard from: a message arrived, or an e_stop publisher has been discovered for
        ``E_STOP_SETTLE_S`` (time for its latched sample, if any, to arrive). Otherwise the
        wait ends after ``e_stop_grace_s``. Logs which, once per activation.
        """
        why = ""
        if self._estop_heard:
            why = "e-stop input heard (a message arrived)"
        elif self.count_publishers("e_stop") > 0:
            if self._estop_publisher_since is None:
                self._estop_publisher_since = wall_now
            if wall_now - self._estop_publisher_since >= E_STOP_SETTLE_S:
                why = "e-stop input heard (a publisher is connected, no stop latched)"
        if not why and wall_now >= self._start_after:
            why = (
                f"no e-stop input heard within e_stop_grace_s {self.params['e_stop_grace_s']:g} s"
                "; starting without one"
            )
        if not why:
            return False
        self._estop_wait_done = True
        self.log.info(f"{why}: commands may start")
        return True

    def _publish(self, command: np.ndarray, ros_now: float, wall_now: float) -> None:
        self._cmd_view[:] = command
        if self._stamp_msg is not None:
            sec = math.floor(ros_now)
            self._stamp_msg.stamp.sec = sec
            self._stamp_msg.stamp.nanosec = min(int((ros_now - sec) * 1e9), 999_999_999)
        self._cmd_pub.publish(self._cmd_msg)
        self.published += 1
        self.last_command = command
        self.command_rate.add(wall_now)

    # -- diagnostics (executor thread) ----------------------------------------------------------

    @property
    def missed_ticks(self) -> int:
        ticker = self._ticker
        return self._missed_base + (ticker.missed_total if ticker is not None else 0)

    def snapshot(self) -> dict[str, Any]:
        """Current figures, for /diagnostics and the status line."""
        period = self.period_stats.summary() if self._configured else None
        now = self._ros_now()
        measured = self._measured if self._configured else None
        filt = self.filter if self._configured else None
        values: dict[str, Any] = {
            "state": self.state,
            "active": self.active,
            "e_stop": self._estop.is_set(),
            "e_stop_input": self._estop_value,
        }
        if not self._configured:
            return values
        values.update(
            {
                "control_rate_hz_target": self.rate_hz,
                "command_rate_hz": self.command_rate.rate(time.monotonic()),
                "tick_rate_hz": period.rate_hz,
                "period_error_p50_ms": period.error_p50_ms,
                "period_error_p99_ms": period.error_p99_ms,
                "period_error_max_ms": period.error_max_ms,
                "jitter_ms": period.jitter_ms,
                "missed_ticks": self.missed_ticks,
                "ticks": self.period_stats.ticks_total,
                "commands_published": self.published,
                "buffer_chunks": len(self.buffer),
                "buffer_horizon_s": self.buffer.horizon(now),
                "underrun_ticks": self.underrun_ticks,
                "underrun_events": self.underrun_events,
                "chunks_received": self.chunks_received,
                "chunks_rejected": sum(self.chunks_rejected.values()),
                "chunk_rate_hz": self.chunk_rate.rate(time.monotonic()),
                "clamped_ticks": filt.clamped_total,
                "rate_limited_ticks": filt.rate_limited_total,
                "safety_rejects": filt.rejected_total,
                "joint_state_age_s": (
                    time.monotonic() - measured.received if measured is not None else math.nan
                ),
                "tick_errors": self.tick_errors,
                "gc_pause_max_ms": GC_PAUSES.max_ms,
                "log_lines_dropped": self.log.dropped,
            }
        )
        for key, count in self.chunks_rejected.items():
            values[f"chunks_rejected_{key}"] = count
        return values

    def _publish_diagnostics(self) -> None:
        values = self.snapshot()
        state = values["state"]
        if values["e_stop"] or values.get("tick_errors"):
            level = 2
        elif state in ("running", "ramping", "inactive"):
            level = 0
        else:
            level = 1
        status = diagnostic_status(f"{self.get_name()}: commands", level, state, values)
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _log_status(self) -> None:
        if not self.active:
            return
        v = self.snapshot()
        self.log.info(
            f"{v['state']} | {v['tick_rate_hz']:.1f} Hz, period err p99 "
            f"{v['period_error_p99_ms']:.2f} ms max {v['period_error_max_ms']:.2f} ms, "
            f"missed {v['missed_ticks']} | buffer {v['buffer_chunks']} chunks "
            f"{v['buffer_horizon_s']:.2f} s, underruns {v['underrun_events']} | chunks "
            f"{v['chunks_received']} ({v['chunks_rejected']} rejected) | clamped "
            f"{v['clamped_ticks']} rate-limited {v['rate_limited_ticks']} | e-stop "
            f"{'LATCHED' if v['e_stop'] else 'off'}"
        )


def main() -> None:
    """Entry point: ``command_streamer --ros-args -p limits_file:=... -p checkpoint:=...``."""
    main_for([CommandStreamer])


if __name__ == "__main__":
    main()
