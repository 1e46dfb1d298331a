"""policy_node: camera images + joint states -> learned policy -> action chunks.

The checkpoint says which joints and cameras the policy needs. Joint states are matched by
name (any order, extra joints ignored, a missing joint is an error naming it). The camera
named NAME is read from the relative topic ``NAME/image_raw`` (``NAME/image_raw/compressed``
with ``image_transport:=compressed``), so ``--ros-args -r NAME/image_raw:=/arm/cam`` or a
launch remap points it anywhere.

Threads:
    * executor thread: callbacks store a reference to the latest message per input with
      its ``header.stamp`` (O(1); the joint state is mapped to checkpoint order there, which
      also makes a missing joint an immediate error) and publish diagnostics;
    * one inference worker: decides when to infer (``inference_trigger``), takes a snapshot
      of the inputs through the freshness gate, converts the images (OpenCV, once), runs the
      policy and publishes the chunk. There is exactly one worker, so while an inference
      runs no second one queues up; a trigger that comes due meanwhile is simply served
      when the worker is free.

Each chunk goes out on ``action_chunk`` as trajectory_msgs/JointTrajectory: header.stamp =
observation time (the oldest stamp among the inputs used), joint_names in checkpoint order,
point i = action i with time_from_start = i / fps. Chunks with any non-finite value are
dropped and counted, never published.

Observation history (``n_obs_steps`` > 1): every input is also kept by stamp
(robot_policy_ros.core.obs_history) and the policy is given, for an observation at ``t``,
the frames nearest ``t - k / fps`` (k = n_obs_steps - 1 ... 0), as the training dataset
and LeRobot sample them, whatever rate inference runs at; padded with the earliest frame
until enough history exists. Activation and clock jumps clear it.

A ROS clock jump (backwards, e.g. a sim reset restarting ``/clock``, or forwards by more than
``max_clock_jump_s``) resets everything time-indexed: the published horizon, the stored
inputs and their stamp watch, the policy's observation history. Inputs stamped before the
jump are dropped, an inference in flight is not published, and the next chunk is computed
from inputs stamped after the jump at once (not when the clock has caught up with the old
horizon). With ``use_sim_time`` the jumps come from rcl's clock jump callbacks; on the
system clock (for which rcl reports none) the worker compares it with the monotonic clock.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import ClockChange, JumpThreshold, TimeJump
from rclpy.duration import Duration as RosDuration
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy_ros.core.clock_jumps import JumpFilter, SystemClockWatch
from robot_policy_ros.core.deployment import (
    DEPLOYMENT_PARAMETERS,
    Resolved,
    deployment_of,
    describe_resolved,
    resolve_parameters,
)
from robot_policy_ros.core.deployment import diagnostic_values as deployment_diagnostics
from robot_policy_ros.core.diagnostics import RateTracker, WindowStats
from robot_policy_ros.core.images import ImageDecodeError
from robot_policy_ros.core.obs_history import ObservationHistory
from robot_policy_ros.core.observation import JOINTS, ObservationGate
from robot_policy_ros.core.observation_builder import ObservationBuilder
from robot_policy_ros.core.observation_health import (
    JointStateError,
    JointStateMapper,
    StampWatch,
    arm_mismatches,
    parse_camera_sizes,
)
from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.core.state_jumps import StateJumpDetector
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
from robot_policy_ros.params.policy_node import SPECS

NODE_NAME = "policy_node"


def reuse_freed_memory() -> str:
    """Tell glibc malloc to keep and reuse freed memory; returns "" or why it did not."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError) as exc:
        return f"no glibc mallopt: {exc}"
    m_trim_threshold, m_mmap_threshold = -1, -3
    # 32 MiB is glibc's largest mmap threshold on 64-bit; trimming off: the heap stays mapped.
    ok = mallopt(m_mmap_threshold, 32 * 1024 * 1024) and mallopt(m_trim_threshold, 2**31 - 1)
    return "" if ok else "mallopt refused"


def default_torch_threads() -> int:
    """Leave one core for the control loop and the callbacks: max(1, cores - 1)."""
    return max(1, (os.cpu_count() or 1) - 1)


def chunk_to_trajectory(
    chunk: np.ndarray, joint_names: list[str], stamp: float, fps: float
) -> JointTrajectory:
    """JointTrajectory with point i = chunk[i] at time_from_start i / fps, stamped ``stamp``."""
    msg = JointTrajectory()
    sec = math.floor(stamp)
    msg.header.stamp.sec = int(sec)
    msg.header.stamp.nanosec = min(round((stamp - sec) * 1e9), 999_999_999)
    msg.joint_names = list(joint_names)
    points = []
    for i, row in enumerate(chunk):
        point = JointTrajectoryPoint()
        point.positions = row.tolist()
        nanos = round(i * 1e9 / fps)
        point.time_from_start = Duration(sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000)
        points.append(point)
    msg.points = points
    return msg


class PolicyNode(ManagedNode):
    """Lifecycle node running a checkpoint on fresh observations, publishing action chunks."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, SPECS, **kwargs)
        self._log = LogThrottle(self.log, period_s=2.0)
        self._subs: list[Any] = []
        self._pubs: list[Any] = []
        self._timers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Set by every camera frame: a worker waiting for fresh inputs takes the frame as it
        # arrives instead of at its next poll (part of camera-to-command latency).
        self._frame_arrived = threading.Event()
        self.policy = None
        self.predictor = None
        self._configured = False
        self.latency = WindowStats(200)
        self._latency_p95 = 0.0  # of the window, updated after every inference
        self.obs_age = WindowStats(200)
        # The rest of frame -> chunk (camera-to-command latency, doc/benchmarks.md): images
        # converted into the network's input, and the chunk built and handed to DDS.
        self.build_time = WindowStats(200)
        self.publish_time = WindowStats(200)
        self.chunk_rate = RateTracker(window_s=10.0, capacity=512)
        # Clock jumps: _jump_lock orders a jump's reset against a chunk's publication and
        # against storing an input, so nothing from before a jump gets past it.
        self._jump_lock = threading.Lock()
        self._jumps = JumpFilter()
        self._jump_handle: Any = None
        self._wall_watch: SystemClockWatch | None = None
        self._published_end = -math.inf
        self._history: ObservationHistory | None = None
        self.last_history_offsets: list[float] = []  # frame stamp - observation stamp
        self.deployment: dict[str, Resolved] = {}  # trigger/threshold/rate in use and source
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.chunks_published = 0
        self.chunks_non_finite = 0
        self.stale_skips = 0
        self.inference_errors = 0
        self.stale_reason = ""
        self.joint_error = ""
        self.images_rejected = 0
        self.frames_received: dict[str, int] = {}  # per camera, whatever the state
        self.joint_states_received = 0
        self.time_jumps = 0
        self.arm_jumps = 0
        self.dropped_before_jump = 0  # inputs and chunks from before a clock jump
        self.state = "unconfigured"

    # -- configuration ------------------------------------------------------------------------

    def configure(self, params: dict[str, Any]) -> None:
        from robot_policy_ros.inference.threads import passive_omp_wait

        passive_omp_wait()  # before torch loads: no OpenMP spinning on a shared CPU
        import torch

        from robot_policy_ros.checkpoint.weights import load_checkpoint

        if params["reuse_memory"]:
            why_not = reuse_freed_memory()
            if why_not:
                self.log.info(f"reuse_memory: {why_not}")
        threads = params["torch_threads"] or default_torch_threads()
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # settable once per process only
            torch.set_num_interop_threads(1)
        try:
            policy = load_checkpoint(
                params["checkpoint"], device=params["device"], dtype=params["dtype"]
            )
        except (ValueError, OSError, RuntimeError) as exc:
            raise ConfigurationError(
                f"parameter 'checkpoint' = {params['checkpoint']!r}: {exc}"
            ) from exc
        policy.eval()
        if policy.chunk_size < 2:
            raise ConfigurationError(
                f"checkpoint {params['checkpoint']!r} has chunk_size {policy.chunk_size}: a chunk "
                "needs at least 2 actions to cover any time"
            )
        problems = arm_mismatches(
            list(policy.joint_names),
            dict(policy.image_shapes),
            params["arm_joint_names"],
            parse_camera_sizes(params["arm_cameras"]),
        )
        if problems:
            raise ConfigurationError(
                f"checkpoint {params['checkpoint']!r} does not fit this arm: "
                + "; ".join(problems)
                + " (use the checkpoint trained for this arm, or fix arm_joint_names/arm_cameras)"
            )
        self.deployment = self._resolve_deployment(params)
        self.predictor = self._make_predictor(policy, params)
        self.policy = policy
        self.joint_names = list(policy.joint_names)
        self.camera_names = list(policy.camera_names)
        self.image_shapes = dict(policy.image_shapes)
        self.fps = float(policy.fps)
        self.chunk_span = (policy.chunk_size - 1) / self.fps
        self.gate = ObservationGate(self.camera_names, params["max_observation_age_s"])
        self._joints = JointStateMapper(self.joint_names)
        self._state_jumps = StateJumpDetector(
            policy.limits.max_velocity, params["arm_jump_tolerance"]
        )
        self._stamps = StampWatch()
        self._published_end = -math.inf
        self.n_obs_steps = int(policy.n_obs_steps)
        # Messages -> Observation (image conversion as in training, the history by stamp):
        # core/observation_builder.py, shared with the bag replay (data/replay.py).
        self._builder = ObservationBuilder(
            policy.config.cameras,
            self.n_obs_steps,
            self.fps,
            image_fit=params["image_fit"],
            keep_margin_s=params["max_observation_age_s"] + 1.0 / self.fps,
        )
        self._history = self._builder.history
        self._warm_up()
        self._watch_clock_jumps(params["max_clock_jump_s"])

        compressed = params["image_transport"] == "compressed"
        self._subs = [
            self.create_subscription(
                JointState,
                "joint_states",
                guarded(self._on_joint_state, self._log, "joint_states"),
                qos_profile_sensor_data,
            )
        ]
        for name in self.camera_names:
            topic = f"{name}/image_raw/compressed" if compressed else f"{name}/image_raw"
            self._subs.append(
                self.create_subscription(
                    CompressedImage if compressed else Image,
                    topic,
                    guarded(self._camera_callback(name), self._log, f"camera_{name}"),
                    # Latest frame only: a queue of old frames is exactly what must not be used.
                    qos_profile_sensor_data,
                )
            )
        self._chunk_pub = self.create_publisher(JointTrajectory, "action_chunk", CHUNK_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._pubs = [self._chunk_pub, self._diag_pub]
        self._timers = [
            self.create_timer(params["diagnostics_period_s"], self._publish_diagnostics),
            self.create_timer(params["status_log_period_s"], self._log_status),
        ]
        self._configured = True
        self.state = "inactive"
        topics = [s.topic_name for s in self._subs]
        self.log.info(
            f"{policy.policy_type} checkpoint: {len(self.joint_names)} joints, cameras "
            f"{self.image_shapes}, chunk {policy.chunk_size} @ {self.fps:g} fps "
            f"({self.chunk_span:.2f} s), torch threads {threads}; inputs {topics}"
            + (
                f"; observation history {self.n_obs_steps} frames {1e3 / self.fps:.0f} ms apart"
                if self.n_obs_steps > 1
                else ""
            )
        )

    def _resolve_deployment(self, params: dict[str, Any]) -> dict[str, Resolved]:
        """Trigger, refill threshold and rate: the user's parameter, else the checkpoint's
        deployment section, else the built-in default (core/deployment.py); ``params`` is
        updated to the values in use."""
        from robot_policy_ros.checkpoint.config import CheckpointError, read_checkpoint_config

        try:
            ckpt = deployment_of(read_checkpoint_config(params["checkpoint"]))
            resolved = resolve_parameters(
                SPECS,
                params,
                self.user_set_parameters,
                ckpt.get(NODE_NAME, {}),
                DEPLOYMENT_PARAMETERS[NODE_NAME],
            )
        except (CheckpointError, OSError, ParameterError) as exc:
            raise ConfigurationError(f"checkpoint {params['checkpoint']!r}: {exc}") from exc
        for name, r in resolved.items():
            params[name] = r.value
        self.log.info(f"deployment: {describe_resolved(resolved)}")
        return resolved

    def _make_predictor(self, policy: Any, params: dict[str, Any]) -> Any:
        from robot_policy_ros.inference import make_predictor
        from robot_policy_ros.inference.export import cache_dir_for

        try:
            predictor = make_predictor(
                policy, params["inference_backend"], cache_dir=cache_dir_for(params["checkpoint"])
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"parameter 'inference_backend' = {params['inference_backend']!r}: {exc}; "
                "use inference_backend:=torch or auto"
            ) from exc
        self.log.info(f"inference backend: {predictor.describe()}")
        return predictor

    def _warm_up(self) -> None:
        """One inference on a blank observation so the first real one is not slow."""
        from robot_policy_ros.policies.base import Observation

        images = {
            name: np.zeros((h, w, 3), dtype=np.uint8) for name, (h, w) in self.image_shapes.items()
        }
        obs = Observation(images=images, joint_positions=np.zeros(len(self.joint_names)))
        t0 = time.perf_counter()
        try:
            self.predictor.predict_chunk(obs)
        except (ValueError, RuntimeError) as exc:
            raise ConfigurationError(f"the checkpoint cannot run inference: {exc}") from exc
        finally:
            self.policy.reset()
        self.log.info(f"warm-up inference took {1e3 * (time.perf_counter() - t0):.0f} ms")

    def _watch_clock_jumps(self, max_jump_s: float) -> None:
        # Backwards: any step; forwards: beyond max_clock_jump_s; and ROS time switched on/off.
        threshold = JumpThreshold(
            min_forward=RosDuration(nanoseconds=round(max_jump_s * 1e9)),
            min_backward=RosDuration(nanoseconds=-1),
            on_clock_change=True,
        )
        self._jump_handle = self.get_clock().create_jump_callback(
            threshold, pre_callback=self._before_ros_jump, post_callback=self._after_ros_jump
        )
        self._wall_watch = SystemClockWatch(max_forward_s=max_jump_s)

    def cleanup(self) -> None:
        if self._jump_handle is not None:
            self._jump_handle.unregister()
            self._jump_handle = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_publisher(pub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._pubs, self._timers = [], [], []
        self.policy = None
        self.predictor = None
        self._configured = False
        self.state = "unconfigured"

    # -- activation ----------------------------------------------------------------------------

    def _clear_history(self) -> None:
        if self._history is not None:
            self._history.clear()
        self.last_history_offsets = []

    def activate(self) -> None:
        self.gate.clear()
        self._state_jumps.reset()
        self._clear_history()
        self.policy.reset()
        self._published_end = -math.inf
        self._jumps.reset()
        self._wall_watch.reset()
        self._stop.clear()
        self.state = "waiting for inputs"
        self._thread = threading.Thread(target=self._worker, name="inference", daemon=True)
        self._thread.start()

    def deactivate(self) -> None:
        self._stop.set()
        self._frame_arrived.set()  # wake a worker waiting for a frame
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            if self._thread.is_alive():
                self.log.error("inference worker did not stop within 30 s")
            self._thread = None
        # Forget every input and what was published: nothing old is used after re-activation.
        self.gate.clear()
        self._stamps.clear()
        self._clear_history()
        self._published_end = -math.inf
        if self.policy is not None:
            self.policy.reset()
        self.state = "inactive"

    # -- callbacks: store references only ------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _camera_callback(self, name: str):
        gate = self.gate

        def _on_image(msg: Image | CompressedImage) -> None:
            self.frames_received[name] = self.frames_received.get(name, 0) + 1
            if self.active:
                stamp = stamp_to_sec(msg.header.stamp)
                with self._jump_lock:
                    if self._jumps.from_before(stamp, self._now):
                        self.dropped_before_jump += 1
                        return
                    self._stamps.note(name, stamp)
                    gate.set_camera(name, stamp, msg)
                    if self._history is not None:
                        self._history.add(name, stamp, msg)
                self._frame_arrived.set()

        return _on_image

    def _on_joint_state(self, msg: JointState) -> None:
        self.joint_states_received += 1
        if not self.active:
            return
        try:
            # By name every message: reordering is read correctly; duplicates, missing joints
            # and non-finite positions are refused (core/observation_health.py).
            positions = self._joints.map(msg.name, msg.position)
        except JointStateError as exc:
            self.joint_error = str(exc)
            self._log("joints", "error", self.joint_error)
            return
        self.joint_error = ""
        stamp = stamp_to_sec(msg.header.stamp)
        with self._jump_lock:
            if self._jumps.from_before(stamp, self._now):
                self.dropped_before_jump += 1
                return
            stamp_or_now = stamp if stamp > 0.0 else self._now()
            moved = self._state_jumps.check(stamp_or_now, positions)
        if moved:
            self._arm_jumped(stamp_or_now, moved)
        with self._jump_lock:
            self.gate.set_joints(stamp, positions)
            if self._history is not None:
                self._history.add(JOINTS, stamp, positions)

    # -- clock jumps ---------------------------------------------------------------------------

    def _before_ros_jump(self) -> None:
        """rcl pre-jump callback (executor thread, inside the /clock subscription)."""
        try:
            if self._now() > 0.0:  # 0: ROS time had no /clock yet, nothing to forget
                self._forget_before_jump()
        except Exception as exc:  # an exception here would end the executor's spin
            self._log("time_jump_error", "error", f"clock jump handling failed: {exc!r}")

    def _after_ros_jump(self, jump: TimeJump) -> None:
        """rcl post-jump callback: the clock now reads the new time."""
        try:
            after = self._now()
            before = after - jump.delta.nanoseconds * 1e-9
            if before <= 0.0 and jump.clock_change == ClockChange.ROS_TIME_NO_CHANGE:
                return  # the first /clock message: no jump
            if jump.clock_change in (
                ClockChange.ROS_TIME_ACTIVATED,
                ClockChange.ROS_TIME_DEACTIVATED,
            ):
                self._forget_before_jump()  # no pre-callback guarantee for a clock switch
                why = "ROS time switched " + (
                    "on" if jump.clock_change == ClockChange.ROS_TIME_ACTIVATED else "off"
                )
            else:
                why = "/clock"
            self._jumped(before, after, why)
        except Exception as exc:
            self._log("time_jump_error", "error", f"clock jump handling failed: {exc!r}")

    def _check_system_clock(self) -> None:
        """Worker thread: without ROS time, find steps of the system clock (rcl reports none)."""
        watch = self._wall_watch
        if watch is None or self.get_clock().ros_time_is_active:
            return
        found = watch.check(self._now)
        if found is not None:
            self._forget_before_jump()
            self._jumped(found[0], found[1], "system clock")

    def _forget_before_jump(self) -> None:
        """Reset the horizon bookkeeping; chunks in flight from here on are not published."""
        with self._jump_lock:
            self._jumps.invalidate()
            self._published_end = -math.inf
            if self._configured:
                self.gate.clear()
                self._stamps.clear()
                self._clear_history()
                self._state_jumps.reset()

    def _arm_jumped(self, stamp: float, moved: float) -> None:
        """The arm is not where the inputs and the published horizon say (a reset, a push):
        start over from inputs stamped from this joint state on."""
        self._forget_before_jump()
        with self._jump_lock:
            self._jumps.jumped(stamp, stamp, 0.0)
            self.arm_jumps += 1
        self._log(
            "arm_jump",
            "warning",
            f"joint states jumped ({moved:.3f} beyond the velocity limits; a reset, a push or "
            "a collision): published horizon and history reset, inferring from inputs "
            "stamped from then on",
        )

    def _jumped(self, before: float, after: float, why: str) -> None:
        with self._jump_lock:
            max_ahead = self.params.get("max_observation_age_s", 0.25)
            self._jumps.jumped(before, after, max_ahead)
            self._published_end = -math.inf
            self.time_jumps += 1
        self._log(
            "time_jump",
            "warning",
            f"ROS clock jumped by {after - before:+.3f} s ({why}): published horizon reset, "
            "inputs and chunks from before the jump dropped; inferring from fresh inputs",
        )

    # -- inference worker ----------------------------------------------------------------------

    def _due(self) -> bool:
        """horizon trigger: is the time still covered by published chunks below threshold?

        The threshold is never below the recent inference latency (p95): asked for later, a
        chunk would arrive after the published ones ran out, and the arm would stop for
        every inference (a threshold of 0, e.g. LeRobot's n_action_steps = chunk_size).
        """
        return self._published_end - self._now() < self._refill_threshold()

    def _refill_threshold(self) -> float:
        return max(self.params["refill_threshold_s"], self._latency_p95)

    def _until_due(self) -> float:
        """Seconds (ROS time) until :meth:`_due` turns true, 0 if it is."""
        return max(self._published_end - self._refill_threshold() - self._now(), 0.0)

    def _worker(self) -> None:
        # Inference must never run real-time (it would starve the machine): a thread inherits
        # its creator's policy, and in policy_stack the creator may be a SCHED_FIFO thread.
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        rate_mode = self.params["inference_trigger"] == "rate"
        period = 1.0 / self.params["inference_rate_hz"]
        next_due = time.monotonic()
        # Longest wait between checks: the trigger is in ROS time (sim time may run at
        # another rate than the wall clock), and joint states do not wake the worker.
        retry_s = 0.01
        epoch = self._jumps.epoch
        while not self._stop.is_set():
            self._check_system_clock()
            if self._jumps.epoch != epoch:
                # A clock jump: the observation history is from the old timeline.
                epoch = self._jumps.epoch
                self.policy.reset()
                next_due = time.monotonic()
            if rate_mode:
                wait = next_due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                # On the grid, but never bursting: a late run moves the grid, no catch-up.
                next_due = max(next_due + period, time.monotonic())
            elif not self._due():
                self._stop.wait(min(self._until_due(), retry_s))
                continue
            self._frame_arrived.clear()  # before the snapshot: a later frame wakes the wait
            stale_before = self.stale_skips
            try:
                ran = self._infer_once(epoch)
            except Exception as exc:  # report, keep serving: one bad frame must not kill it
                self.inference_errors += 1
                self.state = f"inference error: {exc}"
                self._log("infer_error", "error", f"inference failed: {exc!r}")
                ran = False
            if not ran:
                # Retry on the next frame (or after retry_s). In rate mode, an attempt refused
                # for stale inputs inferred nothing, so it used no slot: retry at once then.
                # One that inferred (an error, a non-finite chunk) keeps the grid, so that
                # a failing policy never runs faster than inference_rate_hz.
                self._frame_arrived.wait(retry_s)
                if rate_mode and self.stale_skips != stale_before:
                    next_due = time.monotonic()

    def _infer_once(self, epoch: int | None = None) -> bool:
        """Snapshot, convert, infer, publish. Returns False if nothing was published.

        ``epoch``: the clock-jump epoch the worker is in; if a jump comes in between, the
        chunk is dropped (its observation is from before the jump).
        """
        if epoch is None:
            epoch = self._jumps.epoch
        gate = self.gate.snapshot(self._now())
        frozen = [p for p in map(self._stamps.problem, self.camera_names) if p]
        if not gate.ok or frozen:
            reason = "; ".join(([gate.reason] if gate.reason else []) + frozen)
            self.stale_skips += 1
            self.stale_reason = reason
            self.state = f"no inference: {reason}"
            self._log("stale", "warning", f"no inference: {reason}")
            return False
        self.stale_reason = ""
        t_build = time.perf_counter()
        try:
            built = self._builder.build(gate, self._jump_lock)
        except ImageDecodeError as exc:
            # The whole observation is dropped (never a partly decoded frame); the node keeps
            # serving and infers again from the camera's next good frame.
            name = getattr(exc, "camera", "")
            self.images_rejected += 1
            self.state = f"bad image from camera '{name}': {exc}"
            self._log("image", "error", f"camera '{name}': {exc}")
            return False
        if built is None:
            return False  # cleared by a clock jump since the snapshot
        obs, offsets = built
        if self._history is not None:
            self.last_history_offsets = offsets
        t0 = time.perf_counter()
        self.build_time.add(t0 - t_build)
        chunk = self.predictor.predict_chunk(obs)
        self.latency.add(time.perf_counter() - t0)
        self._latency_p95 = self.latency.p95()
        chunk = np.asarray(chunk, dtype=np.float64)
        expected = (self.policy.chunk_size, len(self.joint_names))
        if chunk.shape != expected:
            raise ValueError(f"policy returned shape {chunk.shape}, expected {expected}")
        if not np.isfinite(chunk).all():
            self.chunks_non_finite += 1
            self.state = "dropping non-finite chunks"
            self._log("nan", "error", "policy produced non-finite actions: chunk dropped")
            return False
        if self._stop.is_set():
            return False  # deactivated while inferring: publish nothing
        self._check_system_clock()
        t_publish = time.perf_counter()
        msg = chunk_to_trajectory(chunk, self.joint_names, gate.stamp, self.fps)
        with self._jump_lock:
            if self._jumps.epoch != epoch:
                self.dropped_before_jump += 1
                return False  # the clock jumped while inferring: the chunk is from before
            self._chunk_pub.publish(msg)
            self._published_end = max(self._published_end, gate.stamp + self.chunk_span)
        self.publish_time.add(time.perf_counter() - t_publish)
        self.chunks_published += 1
        self.chunk_rate.add(time.monotonic())
        self.obs_age.add(gate.max_age)
        self.state = "running"
        return True

    # -- diagnostics -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Current figures, for /diagnostics and the status line."""
        values: dict[str, Any] = {"state": self.state, "active": self.active}
        if not self._configured:
            return values
        now = self._now()
        ages = self.gate.snapshot(now).ages
        values.update(
            {
                "inference_latency_median_ms": 1e3 * self.latency.median(),
                "inference_latency_p95_ms": 1e3 * self.latency.p95(),
                "inferences": self.latency.total,
                "observation_age_median_ms": 1e3 * self.obs_age.median(),
                "observation_build_median_ms": 1e3 * self.build_time.median(),
                "chunk_publish_median_ms": 1e3 * self.publish_time.median(),
                "chunk_rate_hz": self.chunk_rate.rate(time.monotonic()),
                "chunks_published": self.chunks_published,
                "chunks_dropped_non_finite": self.chunks_non_finite,
                "stale_skips": self.stale_skips,
                "inference_errors": self.inference_errors,
                "published_horizon_s": max(self._published_end - now, 0.0),
                "time_jumps": self.time_jumps,
                "arm_jumps": self.arm_jumps,
                "dropped_before_clock_jump": self.dropped_before_jump,
                "stale_reason": self.stale_reason,
                "joint_error": self.joint_error,
                "images_rejected": self.images_rejected,
                "observation_history_offsets_ms": " ".join(
                    f"{1e3 * o:.1f}" for o in self.last_history_offsets
                ),
            }
        )
        values.update(deployment_diagnostics(self.deployment))
        for name, age in ages.items():
            values[f"age_{name}_ms"] = 1e3 * age
        for name in self.camera_names:
            values[f"frames_received_{name}"] = self.frames_received.get(name, 0)
        values["joint_states_received"] = self.joint_states_received
        return values

    def _publish_diagnostics(self) -> None:
        values = self.snapshot()
        if values.get("joint_error") or values.get("chunks_dropped_non_finite"):
            level = 2
        elif self.state in ("running", "inactive"):
            level = 0
        else:
            level = 1
        message = values.get("joint_error") or self.state
        fqn = self.get_fully_qualified_name()
        status = diagnostic_status(
            f"{fqn}: inference", level, message, values, self.params.get("hardware_id") or fqn
        )
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _log_status(self) -> None:
        if not self.active:
            return
        v = self.snapshot()
        self.log.info(
            f"{v['state']} | inference median {v['inference_latency_median_ms']:.0f} ms p95 "
            f"{v['inference_latency_p95_ms']:.0f} ms | chunks {v['chunks_published']} "
            f"({v['chunk_rate_hz']:.2f}/s), non-finite dropped {v['chunks_dropped_non_finite']}"
            f", stale skips {v['stale_skips']}"
        )


def main(args: list[str] | None = None) -> int:
    """Entry point: ``policy_node --ros-args -p checkpoint:=/path/to/checkpoint``."""
    return run_nodes([PolicyNode], args=args)


if __name__ == "__main__":
    sys.exit(main())
