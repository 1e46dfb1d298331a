"""command_streamer: buffered, blended, safety-filtered joint commands at a fixed rate.

Subscribes ``action_chunk`` (trajectory_msgs/JointTrajectory from policy_node or anything
else), ``joint_states`` and ``e_stop``; publishes ``joint_commands`` at ``control_rate_hz``.

A thin adapter around :class:`~robot_policy_ros.core.streamer.StreamerCore`, which makes
every decision (what each tick publishes and why, chunk acceptance, the e-stop latch and
deadman, the safety clock, re-anchoring, clock jumps; see its module docstring). This node
wires it to topics and threads:

    * one executor thread runs the callbacks, each short: the e-stop sets an Event the
      control thread reads at its next tick (so it waits behind at most one other short
      callback); the joint-state callback maps and hands over one array (a reference swap);
    * ``action_chunk`` is taken raw (serialized bytes) and decoded on the chunk-decoder
      thread (:class:`ChunkDecoder`, :mod:`robot_policy_ros.core.trajectory_wire`), which
      refuses oversized chunks from their point count before decoding; neither the executor
      nor the control thread ever decodes a chunk;
    * a dedicated control thread paces itself with absolute deadlines on the monotonic
      clock (:class:`FixedRateTicker`), asks the core for the tick's command and publishes
      a preallocated message. It never waits for a callback, inference or logging.

Commands go out in the controller's joint order: the limits file's when given (it must name
the same joints as the checkpoint), else the checkpoint's; chunks and joint states are
mapped to it by name.
"""

from __future__ import annotations

import array
import collections
import ctypes
import gc
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
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

from robot_policy_ros.core.chunk_buffer import BlendConfig, BlendMode
from robot_policy_ros.core.deployment import (
    DEPLOYMENT_PARAMETERS,
    Resolved,
    deployment_of,
    describe_resolved,
    resolve_parameters,
)
from robot_policy_ros.core.deployment import diagnostic_values as deployment_diagnostics
from robot_policy_ros.core.diagnostics import RateTracker
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.core.streamer import (
    ChunkRejectedError,
    EStopPublishers,
    StreamerConfig,
    StreamerCore,
)
from robot_policy_ros.core.timing import FixedRateTicker, PeriodTracker
from robot_policy_ros.core.trajectory_wire import WireError, decode_chunk, point_count
from robot_policy_ros.nodes.lifecycle import (
    CHUNK_QOS,
    ConfigurationError,
    LogThrottle,
    ManagedNode,
    diagnostic_array,
    diagnostic_status,
    guarded,
    stamp_to_sec,
)
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.command_streamer import SPECS

NODE_NAME = "command_streamer"


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

# Why the GIL switch interval is lowered in this process: a thread holding the GIL keeps it
# for up to the interval (5 ms by default) before a waiting thread gets it; the control thread
# must never wait that long behind a callback.
GIL_SWITCH_INTERVAL_S = 0.0005


def _expected_mismatch(_event: Any) -> None:
    """A best-effort e-stop publisher vs. the latched subscription: heard on the other one."""


def load_joint_setup(
    checkpoint: str, limits_file: str, controller_joints: Sequence[str] = ()
) -> tuple[tuple[str, ...], JointLimits]:
    """Joint order and limits from the checkpoint config and/or a limits YAML.

    Joint order (the order of every published command): ``controller_joints`` when given,
    else the limits file's (the controller's order), else the checkpoint's. Limits: the
    file's when given, else the checkpoint's stored limits. Chunks and joint states are
    mapped to this order by name; no two lists are assumed to share an order.

    Raises:
        ConfigurationError: naming what is missing or inconsistent.
    """
    names, limits = _joint_setup(checkpoint, limits_file)
    if not controller_joints:
        return names, limits
    wanted = tuple(controller_joints)
    if len(set(wanted)) != len(wanted) or set(wanted) != set(names):
        source = f"limits_file {limits_file!r}" if limits_file else f"checkpoint {checkpoint!r}"
        raise ConfigurationError(
            f"parameter 'controller_joints' = {list(wanted)} must name each joint of the "
            f"{source} once: it has {list(names)} (the order may differ)"
        )
    return wanted, limits.reorder(wanted)


def _joint_setup(checkpoint: str, limits_file: str) -> tuple[tuple[str, ...], JointLimits]:
    names: tuple[str, ...] | None = None
    ckpt_limits: JointLimits | None = None
    if checkpoint:
        from robot_policy_ros.checkpoint.config import CheckpointError, read_checkpoint_config

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


class ChunkDecoder:
    """Decodes raw action chunks on its own thread and hands them to the core.

    The subscription callback only queues the serialized bytes (:meth:`put`), so a flood of
    long chunks costs the executor almost nothing. An oversized chunk is refused from its
    point count before it is decoded. The queue keeps the newest ``backlog`` chunks; older
    ones are dropped and counted (``dropped``): only recent chunks matter to the robot.
    """

    def __init__(
        self,
        core: StreamerCore,
        ros_now: Callable[[], float],
        on_rejected: Callable[[ChunkRejectedError], None],
        backlog: int = 8,
    ) -> None:
        self._core = core
        self._ros_now = ros_now
        self._on_rejected = on_rejected
        self._queue: collections.deque[bytes] = collections.deque(maxlen=backlog)
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.max_decode_s = 0.0

    def start(self) -> None:
        with self._cond:
            self._queue.clear()
            self._running = True
        self._thread = threading.Thread(target=self._run, name="chunk_decoder", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """OS thread id of the decoder thread while it runs (None otherwise)."""
        return self._thread.native_id if self._thread is not None else None

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._queue.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def put(self, raw: bytes) -> None:
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(raw)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._cond.wait()
                if not self._running:
                    return
                raw = self._queue.popleft()
            t0 = time.perf_counter()
            try:
                self._handle(raw)
            except ChunkRejectedError as exc:
                self._on_rejected(exc)
            except Exception as exc:  # a decoder bug must not end the thread
                self._on_rejected(ChunkRejectedError("bad_message", f"undecodable: {exc!r}"))
            self.max_decode_s = max(self.max_decode_s, time.perf_counter() - t0)

    def _handle(self, raw: bytes) -> None:
        core = self._core
        max_points = core.config.max_chunk_points
        try:
            core.check_point_count(point_count(raw))
            chunk = decode_chunk(raw, max_points=max_points)
        except WireError as exc:
            core.count_rejected(exc.key)
            raise ChunkRejectedError(exc.key, str(exc)) from exc
        except ChunkRejectedError as exc:
            core.count_rejected(exc.key)
            raise
        core.add_chunk(
            chunk.joint_names,
            chunk.offsets,
            chunk.positions,
            chunk.stamp_sec,
            self._ros_now(),
            time.monotonic(),
        )


class CommandStreamer(ManagedNode):
    """Lifecycle node streaming safety-filtered joint commands at a fixed rate.

    A thin adapter around :class:`StreamerCore`: subscriptions hand their data to it, a
    decoder thread turns raw chunks into arrays for it, the control thread asks it for each
    tick's command and publishes that.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, SPECS, **kwargs)
        self._log = LogThrottle(self.log, period_s=2.0)
        self._subs: list[Any] = []
        self._pubs: list[Any] = []
        self._timers: list[Any] = []
        self._srv = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._configured = False
        self._rt_refusal_logged = False
        self._memory_locked = False
        self._executor_rt = False
        self.joint_state_error = ""
        self.core: StreamerCore | None = None
        self.published = 0
        self.tick_errors = 0
        self.deployment: dict[str, Resolved] = {}  # blending/ensemble_k in use and source
        self.state = "unconfigured"

    # -- configuration -----------------------------------------------------------------------

    def configure(self, params: dict[str, Any]) -> None:
        self.joint_names, self.limits = load_joint_setup(
            params["checkpoint"], params["limits_file"], params["controller_joints"]
        )
        self.num_joints = len(self.joint_names)
        self.rate_hz = params["control_rate_hz"]
        self.period = 1.0 / self.rate_hz
        self.deployment = self._resolve_deployment(params)
        blend = BlendConfig(
            mode=BlendMode(params["blending"]),
            ensemble_k=params["ensemble_k"],
            average_weight=params["average_weight"],
            crossfade_s=params["crossfade_s"],
        )
        if params["use_acceleration_limit"] and self.limits.max_acceleration is None:
            self.log.warning(
                "the joint limits carry no max_acceleration: velocity limit only, and an "
                "underrun holds instead of decelerating (add max_acceleration per joint to "
                "the limits file)"
            )
        try:
            self.core = StreamerCore(
                StreamerConfig(
                    joint_names=self.joint_names,
                    limits=self.limits,
                    rate_hz=self.rate_hz,
                    blend=blend,
                    ramp_in_s=params["ramp_in_s"],
                    use_acceleration_limit=params["use_acceleration_limit"],
                    bring_in_velocity=params["bring_in_velocity"],
                    reanchor_tolerance=params["reanchor_tolerance"],
                    max_clock_jump_s=params["max_clock_jump_s"],
                    joint_state_timeout_s=params["joint_state_timeout_s"],
                    max_stamp_lag_s=params["joint_state_max_stamp_lag_s"],
                    e_stop_behavior=params["e_stop_behavior"],
                    e_stop_grace_s=params["e_stop_grace_s"],
                    deadman_timeout_s=params["deadman_timeout_s"],
                    max_chunk_future_s=params["max_chunk_future_s"],
                    max_chunk_points=params["max_chunk_points"],
                    max_chunk_duration_s=params["max_chunk_duration_s"],
                )
            )
        except ValueError as exc:
            raise ConfigurationError(f"streamer parameters: {exc}") from exc
        self.buffer = self.core.buffer
        self.filter = self.core.filter
        self.period_stats = PeriodTracker(self.period, window=max(50, int(10 * self.rate_hz)))
        self.command_rate = RateTracker(window_s=2.0, capacity=max(64, int(3 * self.rate_hz)))
        self.chunk_rate = RateTracker(window_s=10.0, capacity=256)
        self._decoder = ChunkDecoder(self.core, self._ros_now, self._on_chunk_rejected)
        self._missed_base = 0
        self._ticker: FixedRateTicker | None = None
        self._make_command_message(params["command_interface"])

        log = self._log
        # Every callback on the executor thread is short (chunks arrive raw, as bytes, and
        # are decoded on the decoder thread), so an e-stop waits behind at most one of them;
        # its effect is an Event the control thread reads at the next tick.
        self._e_stop_subs = [
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
        self._subs = [
            self.create_subscription(
                JointTrajectory,
                "action_chunk",
                guarded(self._on_chunk, log, "chunk"),
                CHUNK_QOS,
                raw=True,
            ),
            self.create_subscription(
                JointState,
                "joint_states",
                guarded(self._on_joint_state, log, "joint_states"),
                qos_profile_sensor_data,
            ),
            *self._e_stop_subs,
        ]
        if params["deadman_timeout_s"] > 0:
            self._subs.append(
                self.create_subscription(
                    Bool,
                    "deadman",
                    self._on_deadman,
                    E_STOP_QOS_VOLATILE,
                )
            )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._pubs = [self._cmd_pub, self._diag_pub]
        self._srv = self.create_service(Trigger, "~/reset_e_stop", self._on_reset_e_stop)
        self._timers = [
            # Guarded: a reporting fault is logged and never ends the executor's spin.
            self.create_timer(
                params["diagnostics_period_s"], guarded(self._publish_diagnostics, log, "diag")
            ),
            self.create_timer(
                params["status_log_period_s"], guarded(self._log_status, log, "status")
            ),
        ]
        self._configured = True
        self.state = "inactive"
        deadman = (
            f", deadman {params['deadman_timeout_s']:g} s" if params["deadman_timeout_s"] else ""
        )
        self.log.info(
            f"{self.num_joints} joints {list(self.joint_names)}, {self.rate_hz:g} Hz, "
            f"blending {blend.mode.value}, command_interface {params['command_interface']}, "
            f"acceleration limit {'on' if self.core.acceleration_limited else 'off'}{deadman}"
        )

    def _resolve_deployment(self, params: dict[str, Any]) -> dict[str, Resolved]:
        """Blending and ensemble_k: the user's parameter, else the checkpoint's deployment
        section, else the built-in default (core/deployment.py); ``params`` is updated to
        the values in use."""
        ckpt: dict[str, dict[str, Any]] = {}
        if params["checkpoint"]:
            from robot_policy_ros.checkpoint.config import CheckpointError, read_checkpoint_config

            try:
                ckpt = deployment_of(read_checkpoint_config(params["checkpoint"]))
            except (CheckpointError, OSError) as exc:
                raise ConfigurationError(
                    f"parameter 'checkpoint' = {params['checkpoint']!r}: {exc}"
                ) from exc
        try:
            resolved = resolve_parameters(
                SPECS,
                params,
                self.user_set_parameters,
                ckpt.get(NODE_NAME, {}),
                DEPLOYMENT_PARAMETERS[NODE_NAME],
            )
        except ParameterError as exc:
            raise ConfigurationError(f"checkpoint {params['checkpoint']!r}: {exc}") from exc
        for name, r in resolved.items():
            params[name] = r.value
        self.log.info(f"deployment: {describe_resolved(resolved)}")
        return resolved

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
        assert self.core is not None
        self.period_stats.reset()
        self.command_rate.clear()
        # Nothing observed before activation is ever used: chunks stamped earlier are dropped.
        self.core.activate(self._ros_now(), time.monotonic())
        self._decoder.start()
        self._stop.clear()
        self.state = self.core.state
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        if self.params["lock_memory"] and not self._memory_locked:
            why_not = lock_process_memory()
            self._memory_locked = not why_not
            self.log.info(
                "process memory locked (mlockall)"
                if not why_not
                else f"process memory not locked: {why_not}"
            )
        # Move everything allocated so far out of the collector's reach: later collections
        # only scan young objects, so a GC pause cannot stall a tick for long.
        gc.collect()
        gc.freeze()
        if GC_PAUSES not in gc.callbacks:
            gc.callbacks.append(GC_PAUSES)
        # The executor thread (this one), the log writer and the chunk decoder also take the
        # GIL. If the OS preempted one of them while it holds the GIL, the control thread would
        # wait for it however high its own priority (priority inversion); one FIFO level below
        # the control thread prevents that. (All three only run briefly.)
        priority = self.params["realtime_priority"]
        if priority > 1:
            self._executor_rt = self._set_thread_priority(priority - 1, "executor thread")
            for what, tid in (
                ("log thread", self.log.writer.thread.native_id),
                ("chunk decoder thread", self._decoder.native_id),
            ):
                if tid is not None:
                    self._set_thread_priority(priority - 1, what, tid)
        self._thread = threading.Thread(target=self._control_loop, name="control", daemon=True)
        self._thread.start()

    def deactivate(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                self.log.error("control thread did not stop within 2 s")
            self._thread = None
        self._decoder.stop()
        if self._executor_rt:
            self._executor_rt = not self._set_thread_priority(0, "executor thread")
        # Drop everything buffered: nothing old is replayed after re-activation.
        assert self.core is not None
        self.core.deactivate()
        self.state = "inactive"

    # -- callbacks (executor threads): hand over, O(1) in the loop's terms --------------------

    def _ros_now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        if not self.active or self.core is None:
            return
        error = self.core.on_joint_state(
            tuple(msg.name),
            np.frombuffer(msg.position, dtype=np.float64),
            stamp_to_sec(msg.header.stamp),
            self._ros_now(),
            time.monotonic(),
        )
        self.joint_state_error = error
        if error:
            self._log("joint_states", "error", error)

    def _on_chunk(self, raw: bytes) -> None:
        if not self.active:
            return
        self._decoder.put(raw)
        self.chunk_rate.add(time.monotonic())

    def _on_chunk_rejected(self, exc: ChunkRejectedError) -> None:
        self._log(f"chunk_{exc.key}", "error", f"action_chunk rejected: {exc}")

    def _on_e_stop(self, msg: Bool) -> None:
        assert self.core is not None
        if self.core.on_e_stop(bool(msg.data), self._ros_now()):
            self.log.error("E-STOP: holding; call ~/reset_e_stop after releasing it")

    def _on_deadman(self, msg: Bool) -> None:
        assert self.core is not None
        if self.core.on_deadman(bool(msg.data), time.monotonic(), self._ros_now()):
            self.log.error("E-STOP: deadman released; call ~/reset_e_stop with it held")

    def _on_reset_e_stop(self, request: Trigger.Request, response: Trigger.Response):
        assert self.core is not None
        response.success, response.message = self.core.reset_e_stop(time.monotonic())
        if response.success:
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

    def _tick(self, wall_now: float) -> None:
        core = self.core
        assert core is not None
        ros_now = self._ros_now()
        pubs = self._e_stop_publishers() if core.waiting_for_e_stop_input else None
        result = core.tick(ros_now, wall_now, pubs)
        if result.command is not None:
            self._publish(result.command, ros_now, wall_now)
        self.state = result.state
        if result.event:
            self._log(f"event_{result.event[:12]}", "warning", result.event)
        if self.published % 64 == 0:
            core.buffer.prune(ros_now)

    def _e_stop_publishers(self) -> EStopPublishers:
        """Publishers on the (resolved) e_stop topic, and how many of them are latched."""
        infos = self.get_publishers_info_by_topic(self._e_stop_subs[0].topic_name)
        latched = sum(
            1 for info in infos if info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
        )
        return EStopPublishers(count=len(infos), latched=latched)

    def _publish(self, command: np.ndarray, ros_now: float, wall_now: float) -> None:
        if not self.context.ok():
            return  # shutting down (SIGINT/SIGTERM): the last command stands
        self._cmd_view[:] = command
        if self._stamp_msg is not None:
            sec = math.floor(ros_now)
            self._stamp_msg.stamp.sec = sec
            self._stamp_msg.stamp.nanosec = min(int((ros_now - sec) * 1e9), 999_999_999)
        try:
            self._cmd_pub.publish(self._cmd_msg)
        except Exception:  # rclpy's RCLError: "publisher's context is invalid"
            if self.context.ok():
                raise
            return  # the context went down between the check and the publish
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
        core = self.core if self._configured else None
        values: dict[str, Any] = {"state": self.state, "active": self.active}
        if core is None:
            values.update({"e_stop": False, "e_stop_input": False})
            return values
        wall = time.monotonic()
        period = self.period_stats.summary()
        values.update(core.counters(wall))
        values.update(
            {
                "control_rate_hz_target": self.rate_hz,
                "command_rate_hz": self.command_rate.rate(wall),
                "tick_rate_hz": period.rate_hz,
                "period_error_p50_ms": period.error_p50_ms,
                "period_error_p99_ms": period.error_p99_ms,
                "period_error_max_ms": period.error_max_ms,
                "jitter_ms": period.jitter_ms,
                "missed_ticks": self.missed_ticks,
                "ticks": self.period_stats.ticks_total,
                "commands_published": self.published,
                "buffer_horizon_s": core.buffer.horizon(self._ros_now()),
                "chunk_rate_hz": self.chunk_rate.rate(wall),
                "chunks_dropped_backlog": self._decoder.dropped,
                "chunk_decode_max_ms": 1e3 * self._decoder.max_decode_s,
                "tick_errors": self.tick_errors,
                "gc_pause_max_ms": GC_PAUSES.max_ms,
                "log_lines_dropped": self.log.dropped,
            }
        )
        values.update(deployment_diagnostics(self.deployment))
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
        fqn = self.get_fully_qualified_name()
        hardware_id = self.params.get("hardware_id") or fqn
        status = diagnostic_status(f"{fqn}: commands", level, state, values, hardware_id)
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


def main(args: list[str] | None = None) -> int:
    """Entry point: ``command_streamer --ros-args -p limits_file:=... -p checkpoint:=...``."""
    return run_nodes([CommandStreamer], args=args)


if __name__ == "__main__":
    sys.exit(main())
