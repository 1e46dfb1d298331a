"""Shared lifecycle plumbing for the managed nodes (policy_node, command_streamer).

:class:`ManagedNode` is a ``rclpy.lifecycle.LifecycleNode`` that declares its parameters
from :class:`~robot_policy_ros.core.params.ParamSpec` lists, reads and validates them at
configure time, and turns every exception raised in a transition into a logged message
and a FAILURE (rclpy itself swallows them silently). Subclasses implement
``configure(params)``, ``activate()``, ``deactivate()`` and ``cleanup()``.

:func:`autostart_node` walks a node to *active*; the executables' ``main()`` is
:func:`robot_policy_ros.nodes.runner.run_nodes`, which calls it when the node's
``autostart`` parameter is true and ends the process once every node has taken the
lifecycle ``shutdown`` transition.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import Log, SetParametersResult
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from robot_policy_ros.core.params import ParameterError, ParamSpec
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.params.managed import MANAGED_SPECS

# Action chunks: reliable (a lost chunk is a gap in the robot's motion), a short queue.
CHUNK_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)


def _rosout_enabled(node_kwargs: dict[str, Any]) -> bool:
    """False when the node was built with ``enable_rosout=False`` or ``--disable-rosout-logs``."""
    if node_kwargs.get("enable_rosout") is False:
        return False
    return "--disable-rosout-logs" not in sys.argv


def stamp_to_sec(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


class ConfigurationError(RuntimeError):
    """Configure cannot succeed; the message says why and what to change."""


class ManagedNode(LifecycleNode):
    """Lifecycle node with parameter specs, logged transitions and an ``active`` flag.

    Args:
        node_name: default node name (remappable with ``__node``).
        specs: the node's parameters (``autostart`` is added).
        **kwargs: passed to ``LifecycleNode`` (``context``, ``namespace``, ...).

    Raises:
        ParameterError: a parameter override has the wrong type or is out of range.
    """

    def __init__(self, node_name: str, specs: Sequence[ParamSpec], **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        # All logging of these nodes goes through a non-blocking writer (see BackgroundLog),
        # which also publishes it on /rosout unless rosout is disabled for the node.
        rosout = RosoutSink(self) if _rosout_enabled(kwargs) else None
        self.log = BackgroundLog(
            self.get_logger().name, int(self.get_logger().get_effective_level()), rosout
        )
        self.specs: list[ParamSpec] = [*specs, *MANAGED_SPECS]
        # Writable while unconfigured, read-only once configured: the lifecycle decides,
        # not the descriptor (see _on_set_parameters).
        declare_parameters(self, self.specs, read_only=False)
        self._specs_by_name = {spec.name: spec for spec in self.specs}
        self.params: dict[str, Any] = {}
        self.active = False
        self.configured = False  # inactive or active: parameters are read-only
        self.failure = ""  # why the last transition failed ("" if it did not)
        self.finalized = False  # the shutdown transition ran: the process may end
        # Parameters the user set (core/deployment.py: only those beat a checkpoint's
        # deployment defaults): overrides given at start (command line, launch file, params
        # file; rclpy keeps them in _parameter_overrides) and later `ros2 param set`s.
        overrides = getattr(self, "_parameter_overrides", {})
        self.user_set_parameters: set[str] = {s.name for s in self.specs if s.name in overrides}
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Accept a change only while unconfigured, and only a valid value."""
        if self.configured:
            names = ", ".join(p.name for p in parameters)
            return SetParametersResult(
                successful=False,
                reason=(
                    f"{self.get_fully_qualified_name()} is configured: parameters ({names}) "
                    "are read-only while inactive or active; deactivate and clean up first "
                    "(ros2 lifecycle set <node> deactivate, then cleanup), set them, then "
                    "configure again"
                ),
            )
        for parameter in parameters:
            spec = self._specs_by_name.get(parameter.name)
            if spec is None:
                continue  # rclpy's own (use_sim_time, ...)
            value = parameter.value
            if spec.is_list:
                value = [] if value is None else list(value)
            try:
                spec.validate(value)
            except ParameterError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        self.user_set_parameters.update(p.name for p in parameters if p.name in self._specs_by_name)
        return SetParametersResult(successful=True)

    def destroy_node(self) -> None:
        """Write the queued log lines, stop /rosout publishing, then destroy the node."""
        self.log.close()
        super().destroy_node()

    # -- to be implemented by subclasses ----------------------------------------------------

    def configure(self, params: dict[str, Any]) -> None:
        """Load and validate everything; raise ParameterError / ConfigurationError."""

    def activate(self) -> None:
        """Start publishing / threads."""

    def deactivate(self) -> None:
        """Stop publishing and threads, drop buffered data."""

    def cleanup(self) -> None:
        """Release what configure created."""

    # -- lifecycle callbacks -----------------------------------------------------------------

    @property
    def autostart(self) -> bool:
        """Value of the ``autostart`` parameter."""
        return bool(self.get_parameter("autostart").value)

    def _run(self, what: str, func: Callable[[], None]) -> TransitionCallbackReturn:
        try:
            func()
        except (ParameterError, ConfigurationError, ValueError, KeyError, OSError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self.failure = f"{what} failed: {message}"
            self.log.error(self.failure)
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # a bug: log it with its traceback, never swallow it
            self.failure = f"{what} failed: {type(exc).__name__}: {exc}"
            self.log.error(f"{self.failure}\n{traceback.format_exc()}")
            return TransitionCallbackReturn.FAILURE
        self.failure = ""
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        def _configure() -> None:
            self.params = read_parameters(self, self.specs)
            try:
                self.configure(self.params)
            except Exception:
                self._quiet_cleanup()
                raise

        result = self._run("configure", _configure)
        if result == TransitionCallbackReturn.SUCCESS:
            self.configured = True
            self.log.info("configured")
        return result

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        def _activate() -> None:
            try:
                self.activate()
            except Exception:
                self.active = False
                # Already failing: the first error is the one to report.
                with contextlib.suppress(Exception):
                    self.deactivate()
                raise
            self.active = True

        result = self._run("activate", _activate)
        if result == TransitionCallbackReturn.SUCCESS:
            self.log.info("active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        def _deactivate() -> None:
            self.active = False
            self.deactivate()

        result = self._run("deactivate", _deactivate)
        if result == TransitionCallbackReturn.SUCCESS:
            self.log.info("inactive")
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._run("cleanup", self.cleanup)
        if result == TransitionCallbackReturn.SUCCESS:
            self.configured = False
            self.log.info("unconfigured: parameters are writable")
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_quietly()
        # runner.run_nodes ends the spin once the transition (and its service reply) is done.
        self.finalized = True
        self.log.info("shut down (finalized)")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_quietly()
        return TransitionCallbackReturn.SUCCESS

    def _quiet_cleanup(self) -> None:
        try:
            self.cleanup()
        except Exception as exc:
            self.log.warning(f"cleanup after a failed configure: {exc}")

    def shutdown_quietly(self) -> None:
        """Stop threads and release resources whatever the state (idempotent)."""
        if self.active:
            self.active = False
            try:
                self.deactivate()
            except Exception as exc:
                self.log.warning(f"deactivate at shutdown: {exc}")
        if self.configured:
            self.configured = False
            self._quiet_cleanup()


def autostart_node(node: ManagedNode) -> str:
    """Configure and activate ``node``; returns "" on success, else the reason."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return node.failure or "configure failed"
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        return node.failure or "activate failed"
    return ""


class _LineWriter:
    """One daemon thread per process that writes queued log records.

    Each record is a console line for stderr (``os.write``, which releases the GIL while
    it blocks) and, when the node logs to /rosout, a ``rcl_interfaces/Log`` built and
    published here, off the caller's thread: a control tick only pays for a queue put.
    """

    def __init__(self, fd: int = 2, capacity: int = 2000) -> None:
        self._fd = fd
        self.queue: queue.Queue[_Record] = queue.Queue(maxsize=capacity)
        self.dropped = 0
        self.publish_errors = 0
        self._busy = threading.Event()  # set while a record is being written
        self.thread = threading.Thread(target=self._write_loop, name="log", daemon=True)
        self.thread.start()

    def _write_loop(self) -> None:
        while True:
            record = self.queue.get()
            self._busy.set()
            try:
                with contextlib.suppress(OSError):
                    os.write(self._fd, record.line)
                if record.rosout is not None:
                    record.rosout.publish(record)
            finally:
                self._busy.clear()

    def put(self, record: _Record) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while (not self.queue.empty() or self._busy.is_set()) and time.monotonic() < deadline:
            time.sleep(0.005)


class _Record:
    """One queued log line (plain slots: cheap to build on a control thread)."""

    __slots__ = ("level", "line", "message", "rosout", "stamp")

    def __init__(
        self, level: int, stamp: float, message: str, line: bytes, rosout: RosoutSink | None
    ) -> None:
        self.level = level
        self.stamp = stamp
        self.message = message
        self.line = line
        self.rosout = rosout


class RosoutSink:
    """Publishes a node's log records on /rosout from the writer thread.

    rclpy's own /rosout path runs inside the logging call, on the caller's thread and under
    the GIL; this sink keeps that work on the writer thread. ``close()`` (before the node is
    destroyed) makes later records console-only.
    """

    def __init__(self, node: LifecycleNode) -> None:
        self.logger_name = node.get_logger().name
        self._publisher: Any = node.create_publisher(Log, "/rosout", ROSOUT_QOS)
        self._lock = threading.Lock()
        self.errors = 0

    def publish(self, record: _Record) -> None:
        msg = Log()
        sec = int(record.stamp)
        msg.stamp.sec = sec
        msg.stamp.nanosec = int((record.stamp - sec) * 1e9)
        msg.level = record.level
        msg.name = self.logger_name
        msg.msg = record.message
        with self._lock:
            if self._publisher is None:
                return
            try:
                self._publisher.publish(msg)
            except Exception:  # context shut down under us: the console line was written
                self.errors += 1

    def close(self) -> None:
        """Stop publishing (call before the node is destroyed)."""
        with self._lock:
            self._publisher = None


# The QoS rcl gives its own /rosout publishers (rcl_qos_profile_rosout_default), so
# rqt_console and late joiners see these lines exactly like rclpy's.
ROSOUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    lifespan=Duration(seconds=10),
)


_WRITER: _LineWriter | None = None
_WRITER_LOCK = threading.Lock()


def log_writer() -> _LineWriter:
    """The process's background line writer (started on first use)."""
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = _LineWriter()
        return _WRITER


class BackgroundLog:
    """Non-blocking node log for processes with a control thread.

    Lines are queued and written by one daemon thread per process: to stderr with
    ``os.write``, which releases the GIL while it writes, and, given a :class:`RosoutSink`,
    on /rosout at their severity (rqt_console, recorded bags). Why not the rclpy logger: it
    holds the GIL while it writes (stderr, the log file, /rosout), so a slow consumer (a
    full pipe, disk writeback under I/O load) would stall every Python thread of the
    process, the control loop included, for as long as the write takes. Lines keep the ROS
    console format (``[LEVEL] [stamp] [logger name]: message``; the logger name carries the
    namespace). When the queue is full, lines are dropped and counted (``dropped``).
    """

    LEVELS: ClassVar[dict[str, int]] = {
        "debug": 10,
        "info": 20,
        "warning": 30,
        "error": 40,
        "fatal": 50,
    }

    def __init__(self, name: str, min_level: int = 20, rosout: RosoutSink | None = None) -> None:
        self.name = name
        self.min_level = min_level
        self.rosout = rosout
        self.writer = log_writer()

    @property
    def dropped(self) -> int:
        """Lines dropped because the queue was full (process-wide)."""
        return self.writer.dropped

    def log(self, level: str, message: str) -> None:
        """Queue one line (never blocks)."""
        severity = self.LEVELS[level]
        if severity < self.min_level:
            return
        label = "WARN" if level == "warning" else level.upper()
        stamp = time.time()
        line = f"[{label}] [{stamp:.9f}] [{self.name}]: {message}\n".encode(errors="replace")
        self.writer.put(_Record(severity, stamp, message, line, self.rosout))

    def debug(self, message: str) -> None:
        self.log("debug", message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warning(self, message: str) -> None:
        self.log("warning", message)

    def error(self, message: str) -> None:
        self.log("error", message)

    def fatal(self, message: str) -> None:
        self.log("fatal", message)

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until the queued lines are written (at exit)."""
        self.writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued, then stop publishing on /rosout (before destroying the node)."""
        self.flush()
        if self.rosout is not None:
            self.rosout.close()


class LogThrottle:
    """Log a message at most once per ``period_s`` per key (thread-safe enough: a race can
    only let one extra line through)."""

    def __init__(self, logger: Any, period_s: float = 2.0) -> None:
        self._logger = logger
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def __call__(self, key: str, level: str, message: str) -> bool:
        """Log ``message`` with ``level`` ("info", "warning", "error") unless throttled."""
        now = time.monotonic()
        if now - self._last.get(key, -1e18) < self.period_s:
            return False
        self._last[key] = now
        # One call site per severity: rclpy refuses a call site whose severity changes.
        if level == "error":
            self._logger.error(message)
        elif level == "warning":
            self._logger.warning(message)
        else:
            self._logger.info(message)
        return True


def diagnostic_status(
    name: str, level: int, message: str, values: dict[str, Any], hardware_id: str = ""
) -> DiagnosticStatus:
    """A ``diagnostic_msgs/DiagnosticStatus`` (level: 0 OK, 1 WARN, 2 ERROR, 3 STALE)."""
    status = DiagnosticStatus()
    status.level = bytes([level])
    status.name = name
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
    return status


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def diagnostic_array(stamp: Any, statuses: Sequence[DiagnosticStatus]) -> DiagnosticArray:
    """A ``diagnostic_msgs/DiagnosticArray`` stamped ``stamp`` (builtin_interfaces/Time)."""
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = list(statuses)
    return array


def guarded(callback: Callable[..., Any], log: LogThrottle, name: str) -> Callable[..., Any]:
    """Wrap a subscription callback so an unexpected exception is logged, not fatal.

    An exception escaping a callback would end ``executor.spin()`` and with it the node;
    for a node feeding a robot, a logged error and a dropped message are the safer outcome.
    """

    def _guarded(*args: Any) -> Any:
        try:
            return callback(*args)
        except Exception as exc:
            log(f"callback_{name}", "error", f"{name} callback failed: {exc!r}")
            return None

    return _guarded
