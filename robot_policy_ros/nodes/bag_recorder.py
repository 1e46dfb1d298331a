"""bag_recorder: record demonstration episodes into rosbag2 bags (one bag per episode).

Subscriptions take the serialized CDR bytes (``raw=True``): nothing is deserialized or
re-serialized, and the callback only hands ``(topic, bytes, receive time)`` to a
:class:`~robot_policy_ros.data.bag_writer.BagWriter` whose own thread writes the bag
(MCAP by default, sqlite3 with ``storage:=sqlite3``). Every message received while an
episode is recording is written; the per-topic counts (received / written / dropped) are
logged and stored in the episode's ``episode.json`` when it closes.

Episodes (one bag ``<output_dir>/episode_000123/`` each):
- services ``~/start`` and ``~/stop`` (std_srvs/Trigger); ``~/status`` returns the counts
  so far as JSON (and, per topic, the messages that arrived while no bag was open);
- or the simulator's episode topic (``episode_topic``, std_msgs/String JSON with
  ``index, seed, success, elapsed_s, done``): a new index starts a bag, ``done`` closes it
  and stores ``success``. An episode already running for more than ``join_late_s`` when
  the recorder starts is not recorded (its beginning would be missing);
- ``autostart:=true`` starts one right away.

The recorder's resident memory follows its write queue: frames the writer thread has
written are freed, and a background thread gives the freed heap back to the OS
(:class:`~robot_policy_ros.core.heap.HeapTrimmer`, glibc ``malloc_trim``) so that a queue
that backed up once (a slow disk, a busy CPU) does not leave the process at its high-water
mark; ``~/status`` counts the trims (``heap_trims``).

Topics are subscribed when they appear in the graph (their type and the publishers' QoS
are taken from it), so the recorder can start before the robot. SIGINT / SIGTERM close
the open bag cleanly (queue drained, metadata.yaml written).

Storage faults (disk full, file size limit, I/O error, read-only or removed output folder)
stop the current recording, never the node: the bag is cut back to its last flush and
closed readable where the disk allows (see :mod:`robot_policy_ros.data.bag_writer`), one
error line names the file, the errno and what was lost, ``/diagnostics`` turns ERROR with
the reason (until a recording starts again) and ``~/status`` shows it. Bags closed before
are never touched; ``~/start`` (or the next episode) records a new bag once the disk
allows. An output folder that cannot be created or written at start-up is a configuration
error (exit code 2). SIGXFSZ is ignored so that a file size limit (``ulimit -f``,
``LimitFSIZE=``) is an EFBIG write error like any other rather than a killed process.

Equivalent recording with the ROS 2 tools (no episode handling)::

    ros2 bag record -s mcap -o demo_000 /joint_states /front/image_raw \
        /forward_position_controller/commands
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from robot_policy_ros.core.heap import HeapTrimmer
from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.data.bag_writer import (
    STORAGES,
    BagStats,
    BagWriteError,
    BagWriter,
    describe_error,
    make_qos,
)
from robot_policy_ros.nodes.lifecycle import diagnostic_array, diagnostic_status
from robot_policy_ros.nodes.params import declare_parameters, read_parameters
from robot_policy_ros.nodes.runner import run_nodes
from robot_policy_ros.params.bag_recorder import SPECS

_INFINITE_NS = 9223372036854775807
#: How often the recorder publishes its status on /diagnostics (s); faults at once.
DIAGNOSTICS_PERIOD_S = 1.0
#: GIL switch interval of the recorder process (see main()).
GIL_SWITCH_INTERVAL_S = 0.0005
#: How often the recorder checks for freed heap memory to give back to the OS (s), and
#: the least free heap worth a trim (bytes): frames freed by the writer thread otherwise
#: keep the resident size at the write queue's high-water mark (robot_policy_ros.core.heap).
HEAP_TRIM_PERIOD_S = 1.0
#: Most extra messages one subscription callback takes from its topic (see _on_message).
TAKE_BATCH = 100
HEAP_TRIM_MIN_FREE_BYTES = 32 * 1024 * 1024


def _duration_ns(d: Any) -> int:
    ns = int(getattr(d, "nanoseconds", 0))
    return _INFINITE_NS if ns <= 0 else ns


def offered_qos(profile: QoSProfile):
    """rclpy QoS profile -> rosbags Qos for the bag metadata."""
    return make_qos(
        reliable=profile.reliability == ReliabilityPolicy.RELIABLE,
        transient_local=profile.durability == DurabilityPolicy.TRANSIENT_LOCAL,
        depth=max(int(profile.depth), 1),
        deadline_ns=_duration_ns(profile.deadline),
        lifespan_ns=_duration_ns(profile.lifespan),
        liveliness_lease_ns=_duration_ns(profile.liveliness_lease_duration),
    )


def next_episode_dir(output_dir: Path, index: int | None) -> Path:
    """``episode_<index>`` if free, else the next free ``episode_<n>`` (n past the largest)."""
    pattern = re.compile(r"^episode_(\d+)")
    used = (
        [
            int(m.group(1))
            for p in output_dir.iterdir()
            if p.is_dir() and (m := pattern.match(p.name))
        ]
        if output_dir.is_dir()
        else []
    )
    if index is not None and not (output_dir / f"episode_{index:06d}").exists():
        return output_dir / f"episode_{index:06d}"
    n = max(used) + 1 if used else 0
    while (output_dir / f"episode_{n:06d}").exists():
        n += 1
    return output_dir / f"episode_{n:06d}"


class BagRecorder(Node):
    """Records the configured topics into one rosbag2 bag per episode."""

    def __init__(self, parameter_overrides: list[Parameter] | None = None, **kwargs: Any) -> None:
        super().__init__("bag_recorder", parameter_overrides=parameter_overrides or [], **kwargs)
        declare_parameters(self, SPECS)
        self.params = read_parameters(self, SPECS)
        self.output_dir = Path(self.params["output_dir"]).expanduser()
        _check_output_dir(self.output_dir)
        self._wanted = {self.resolve_topic_name(t): t for t in dict.fromkeys(self.params["topics"])}
        self._subs: dict[str, Any] = {}
        self._types: dict[str, str] = {}
        self._qos: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._writer: BagWriter | None = None
        self._episode: dict[str, Any] = {}
        self._idle_received: dict[str, int] = {}  # per topic, while no bag was open
        self._episodes_done = 0
        self._ignored_episode: int | None = None
        self._episode_seen = False
        self._last_episode_index: int | None = None
        self._robot_config = self._load_robot_config(self.params["robot_config"])
        self._last_error: str | None = None
        self._error_active = False  # /diagnostics is ERROR until a recording starts again
        self._errors = 0
        # The bag writer's thread reports a storage fault through this guard condition, so
        # the recording is stopped in the executor thread (never inside the writer thread).
        self._fault_guard = self.create_guard_condition(self._on_writer_fault)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._heap = HeapTrimmer(HEAP_TRIM_PERIOD_S, HEAP_TRIM_MIN_FREE_BYTES).start()

        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/status", self._srv_status)
        if self.params["episode_topic"]:
            latched = QoSProfile(
                depth=10,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            self.create_subscription(
                String, self.params["episode_topic"], self._on_episode, latched
            )
        self._discover()
        self.create_timer(self.params["discovery_period_s"], self._discover)
        self.get_logger().info(
            f"recording {sorted(self._wanted)} to {self.output_dir} "
            f"({self.params['storage']}); episodes from "
            f"{self.params['episode_topic'] or 'services'} and ~/start, ~/stop"
        )
        if self.params["autostart"]:
            with contextlib.suppress(BagWriteError):  # reported; ~/start can try again
                self.start_episode(reason="autostart")

    # -- topics ----------------------------------------------------------------------------
    def _load_robot_config(self, path: str) -> dict | None:
        if not path:
            return None
        try:
            return yaml.safe_load(Path(path).expanduser().read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(
                f"parameter 'robot_config' = {path!r}: cannot read it ({exc}); "
                "give an existing YAML file or ''"
            ) from exc

    def _discover(self) -> None:
        """Subscribe to wanted topics that have appeared, with their publishers' QoS."""
        missing = [t for t in self._wanted if t not in self._subs]
        if not missing:
            return
        graph = dict(self.get_topic_names_and_types())
        for topic in missing:
            types = graph.get(topic)
            if not types:
                continue
            if len(types) > 1:
                self.get_logger().error(f"{topic} has several types {types}; not recording it")
                continue
            pubs = self.get_publishers_info_by_topic(topic)
            if not pubs:
                continue
            profiles = [p.qos_profile for p in pubs]
            reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in profiles)
            latched = all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in profiles)
            depth = self.params["qos_depth"]
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST if depth > 0 else HistoryPolicy.KEEP_ALL,
                depth=depth if depth > 0 else 1000,
                reliability=ReliabilityPolicy.RELIABLE
                if reliable
                else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL
                if latched
                else DurabilityPolicy.VOLATILE,
            )
            msg_class = _import_message(types[0])
            if msg_class is None:
                self.get_logger().error(f"cannot import {types[0]} for {topic}; not recording it")
                self._subs[topic] = None
                continue
            self._types[topic] = types[0]
            self._qos[topic] = [offered_qos(profiles[0])]
            self._subs[topic] = self.create_subscription(
                msg_class,
                topic,
                lambda data, topic=topic: self._on_message(topic, data),
                qos,
                raw=True,
            )
            with self._lock:
                if self._writer is not None:
                    self._add_topic(self._writer, topic)
            self.get_logger().info(
                f"subscribed {topic} [{types[0]}] "
                f"({'reliable' if reliable else 'best effort'}"
                f"{', transient local' if latched else ''})"
            )

    def _add_topic(self, writer: BagWriter, topic: str) -> None:
        try:
            writer.add_topic(topic, self._types[topic], self._qos[topic])
        except BagWriteError as exc:
            self.get_logger().error(str(exc))

    def _on_message(self, topic: str, data: bytes) -> None:
        # Hot path: never blocks, never deserializes.
        self._record(topic, data)
        # The executor takes one message per subscription and wait cycle. A CPU-starved
        # recorder manages few cycles, so a 500 Hz topic got only as many messages per
        # second as cycles (benchmarks/soak.py at load 15: ~40 of 500 joint states/s, the
        # rest piling up in the keep-all reader until the publisher's history overwrote
        # them). Take what else is waiting on this topic now, up to TAKE_BATCH.
        sub = self._subs.get(topic)
        for _ in range(TAKE_BATCH):
            try:
                with sub.handle:
                    taken = sub.handle.take_message(sub.msg_type, sub.raw)
            except Exception:  # destroyed meanwhile (InvalidHandle), or no subscription
                return
            if taken is None:
                return
            self._record(topic, taken[0])

    def _record(self, topic: str, data: bytes) -> None:
        stamp = self.get_clock().now().nanoseconds
        writer = self._writer
        if writer is None:
            self._idle_received[topic] = self._idle_received.get(topic, 0) + 1
            return
        writer.write(topic, data, stamp)

    # -- episodes --------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._writer is not None

    def start_episode(
        self, index: int | None = None, seed: Any = None, reason: str = "service"
    ) -> Path:
        """Open the bag of a new episode (closing the current one first).

        Raises BagWriteError (already reported: logged, /diagnostics ERROR) when the bag
        cannot be created.
        """
        if self._writer is not None:
            self.stop_episode(reason="next_episode")
        try:
            path = next_episode_dir(self.output_dir, index)
            writer = BagWriter(
                path,
                self.params["storage"],
                max_queue=self.params["max_queue"],
                max_queue_bytes=self.params["max_queue_mb"] * 1024 * 1024,
                flush_interval_s=self.params["flush_interval_s"],
                on_error=self._fault_guard.trigger,
            )
            writer.open()
        except (BagWriteError, OSError) as exc:
            text = str(exc) if isinstance(exc, BagWriteError) else _path_error(exc, self.output_dir)
            self._report_fault(f"cannot start recording ({reason}): {text}")
            raise BagWriteError(text) from exc
        for topic in self._types:
            self._add_topic(writer, topic)
        self._episode = {
            "bag": path.name,
            "index": index,
            "seed": seed,
            "success": None,
            "storage": self.params["storage"],
            "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "start_reason": reason,
            "topics": dict(self._types),
            "robot_config_path": self.params["robot_config"] or None,
            "robot_config": self._robot_config,
            "complete": False,
        }
        self._write_episode_json(path)
        with self._lock:
            self._writer = writer
        self._error_active = False
        self._log(f"recording episode {path.name} ({reason})")
        return path

    def stop_episode(
        self, success: bool | None = None, reason: str = "service", extra: dict | None = None
    ) -> BagStats | None:
        """Close the current bag (drains its queue) and write episode.json."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return None
        stats = writer.close()
        self._episodes_done += 1
        self._episode.update(extra or {})
        self._episode.update(
            {
                "success": success if success is not None else self._episode.get("success"),
                "stop_reason": reason,
                "duration_s": round(stats.duration_s, 3),
                "complete": stats.complete,
                "counts": {t: c.as_dict() for t, c in stats.topics.items()},
                "received": stats.received,
                "written": stats.written,
                "lost": stats.lost,
                "topics": {t: self._types.get(t, "") for t in stats.topics},
            }
        )
        if stats.error:
            self._episode["error"] = stats.error
            self._episode["outcome"] = stats.outcome
        json_error = (
            self._write_episode_json(stats.path, report=False) if stats.path.is_dir() else None
        )
        if stats.error:
            text = (
                f"recording stopped: {stats.error}. {stats.path.name} {stats.outcome}; "
                f"{stats.lost} of {stats.received} messages of this episode lost in all"
                + (f"; {json_error}" if json_error else "")
                + ". Bags closed before are untouched; the recorder keeps running and "
                "records the next episode (~/start) once the disk allows"
            )
            self._report_fault(text)
            return stats
        if json_error:
            self._log(json_error, True)
        line = f"closed {stats.summary()}, success={self._episode['success']} ({reason})"
        if stats.lost or not stats.complete:
            self._log(line + f": {stats.lost} messages LOST, complete={stats.complete}", True)
        else:
            self._log(line)
        return stats

    def _on_writer_fault(self) -> None:
        """The writer thread hit a storage fault: stop this recording (executor thread)."""
        writer = self._writer
        if writer is not None and writer.failed:
            self.stop_episode(reason="write_error")

    def _report_fault(self, text: str) -> None:
        """One error line, and /diagnostics ERROR with the reason at once."""
        self._last_error = text
        self._error_active = True
        self._errors += 1
        self._log(text, error=True)
        if self.context.ok():
            self._publish_diagnostics()

    def _free_mb(self) -> float | str:
        """Free space of the output folder's file system (MB), '' if it cannot be read."""
        folder = self.output_dir
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        try:
            return round(shutil.disk_usage(folder).free / 1e6, 1)
        except OSError:
            return ""

    def _publish_diagnostics(self) -> None:
        writer = self._writer
        values: dict[str, Any] = {
            "recording": writer is not None,
            "bag": str(writer.path) if writer is not None else "",
            "output_dir": str(self.output_dir),
            "free_mb": self._free_mb(),
            "episodes_recorded": self._episodes_done,
            "write_errors": self._errors,
            "last_error": self._last_error or "",
            "heap_trims": self._heap.trims,
        }
        if writer is not None:
            counts = writer.counts().values()
            values["received"] = sum(c.received for c in counts)
            values["written"] = sum(c.written for c in counts)
            values["lost"] = sum(c.dropped + c.failed for c in counts)
        if self._error_active:
            level, message = 2, self._last_error or "error"
        else:
            level = 0
            message = f"recording {writer.path.name}" if writer is not None else "idle"
        fqn = self.get_fully_qualified_name()
        status = diagnostic_status(f"{fqn}: recording", level, message, values, fqn)
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _log(self, text: str, error: bool = False) -> None:
        """Log through ROS, or print once the context is shut down (SIGINT / SIGTERM)."""
        if self.context.ok():
            # Two call sites: rclpy refuses two severities from one line.
            if error:
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
        else:
            print(f"[{'ERROR' if error else 'INFO'}] [bag_recorder]: {text}", flush=True)

    def _write_episode_json(self, path: Path, report: bool = True) -> str | None:
        """Write episode.json atomically; returns (and unless ``report`` logs) any error."""
        tmp = path / "episode.json.tmp"
        try:
            tmp.write_text(json.dumps(self._episode, indent=2, default=str))
            tmp.replace(path / "episode.json")
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            text = f"cannot write {path / 'episode.json'}: {describe_error(exc)}"
            if report:
                self._log(text, True)
            return text
        return None

    def _on_episode(self, msg: String) -> None:
        try:
            info = json.loads(msg.data)
            index = int(info["index"])
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().warning(f"ignoring episode message {msg.data!r}: {exc}")
            return
        done = bool(info.get("done", False))
        first_seen = not self._episode_seen
        self._episode_seen = True
        current = self._episode.get("index") if self._writer is not None else None
        if not done:
            if current == index or index == self._ignored_episode:
                self._episode["elapsed_s"] = info.get("elapsed_s")
                return
            if index == self._last_episode_index:
                return  # already recorded and closed
            elapsed = float(info.get("elapsed_s") or 0.0)
            # Only an episode already running when the recorder starts can be joined late.
            if first_seen and current is None and elapsed > self.params["join_late_s"]:
                self._ignored_episode = index
                self.get_logger().warning(
                    f"episode {index} is already {elapsed:.1f} s old; recording from the next one"
                )
                return
            self._last_episode_index = index
            with contextlib.suppress(BagWriteError):  # reported; the next episode tries again
                self.start_episode(index=index, seed=info.get("seed"), reason="episode_topic")
        elif current == index:
            self.stop_episode(
                success=info.get("success"),
                reason="episode_done",
                extra={"elapsed_s": info.get("elapsed_s")},
            )

    # -- services --------------------------------------------------------------------------
    def _srv_start(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        if self._writer is not None:
            resp.success = False
            resp.message = f"already recording {self._writer.path}"
            return resp
        try:
            path = self.start_episode(reason="service")
        except BagWriteError as exc:
            resp.success = False
            resp.message = f"cannot start: {exc}"
            return resp
        resp.success = True
        resp.message = str(path)
        return resp

    def _srv_stop(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        stats = self.stop_episode(reason="service")
        if stats is None:
            resp.success = False
            resp.message = "not recording"
            return resp
        resp.success = stats.complete and stats.lost == 0
        resp.message = json.dumps(stats.as_dict())
        return resp

    def _srv_status(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        writer = self._writer
        status = {
            "recording": writer is not None,
            "bag": str(writer.path) if writer is not None else None,
            "subscribed": sorted(t for t, s in self._subs.items() if s is not None),
            "waiting_for": sorted(t for t in self._wanted if t not in self._subs),
            "episodes_recorded": self._episodes_done,
            "counts": (
                {t: c.as_dict() for t, c in writer.counts().items()} if writer is not None else {}
            ),
            "pending": writer.pending() if writer is not None else 0,
            "pending_mb": round(writer.pending_bytes() / 1e6, 3) if writer is not None else 0.0,
            "idle_received": dict(self._idle_received),
            "write_errors": self._errors,
            "last_error": self._last_error,
            "error_active": self._error_active,
            "heap_trims": self._heap.trims,
        }
        resp.success = True
        resp.message = json.dumps(status)
        return resp

    def shutdown(self) -> None:
        """Close the open bag (called on SIGINT / SIGTERM / exit)."""
        if self._writer is not None:
            self.stop_episode(reason="shutdown")
        self._heap.stop()

    def destroy_node(self) -> None:
        heap = getattr(self, "_heap", None)  # absent when __init__ failed early
        if heap is not None:
            heap.stop()
        super().destroy_node()


def _path_error(exc: OSError, path: Path) -> str:
    """'Not a directory (ENOTDIR) at /x/afile' for an OSError about ``path``."""
    text = describe_error(exc)
    if exc.filename is not None and Path(exc.filename) != path:
        text += f" at {exc.filename}"
    return text


def _check_output_dir(path: Path) -> None:
    """Create the output folder and prove it writable, else a ParameterError (exit code 2)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".bag_recorder_probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParameterError(
            f"parameter 'output_dir' = {str(path)!r}: cannot record there: "
            f"{_path_error(exc, path)}; give a writable directory"
        ) from exc


def _import_message(msgtype: str):
    """``pkg/msg/Type`` -> the generated Python message class (None if not importable)."""
    import importlib

    parts = msgtype.split("/")
    if len(parts) != 3:
        return None
    try:
        module = importlib.import_module(f"{parts[0]}.{parts[1]}")
        return getattr(module, parts[2])
    except (ImportError, AttributeError):
        return None


def parse_cli(argv: list[str]) -> tuple[list[Parameter], list[str]]:
    """Plain CLI options (before ``--ros-args``) -> parameter overrides."""
    parser = argparse.ArgumentParser(
        prog="bag_recorder",
        description="Record demonstration episodes into rosbag2 bags (one per episode).",
    )
    parser.add_argument("--output-dir", help="directory for the episode bags")
    parser.add_argument("--topics", nargs="+", help="topics to record")
    parser.add_argument("--storage", choices=STORAGES, help="storage plugin (default mcap)")
    parser.add_argument("--episode-topic", help="episode JSON topic ('' to disable)")
    parser.add_argument("--autostart", action="store_true", help="start an episode right away")
    parser.add_argument("--robot-config", help="robot YAML stored in episode.json")
    parser.add_argument(
        "--recover",
        nargs="+",
        metavar="BAG",
        help="rebuild bags left without metadata.yaml by a killed recorder, then exit",
    )
    args = parser.parse_args(argv)
    overrides: list[Parameter] = []
    for name, value in (
        ("output_dir", args.output_dir),
        ("topics", args.topics),
        ("storage", args.storage),
        ("episode_topic", args.episode_topic),
        ("robot_config", args.robot_config),
    ):
        if value is not None:
            overrides.append(Parameter(name, value=value))
    if args.autostart:
        overrides.append(Parameter("autostart", value=True))
    return overrides, list(args.recover or [])


def main(args: list[str] | None = None) -> int:
    """Entry point of ``bag_recorder`` / ``python -m robot_policy_ros.nodes.bag_recorder``."""
    argv = list(sys.argv if args is None else args)
    from rclpy.utilities import remove_ros_args

    overrides, recover = parse_cli(remove_ros_args(argv)[1:])
    # The writer thread copies megabytes per image while holding the GIL; with the default
    # 5 ms switch interval the executor thread, which gives the GIL up and takes it back at
    # every rcl call, waits up to 5 ms each time and falls far behind (measured by
    # benchmarks/soak.py: ~20 executor cycles/s, most joint states lost). 0.5 ms as in
    # command_streamer.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # A file size limit (ulimit -f) then fails a write with EFBIG, which ends that bag
    # cleanly, instead of killing the recorder (SIGXFSZ's default) with the bag unclosed.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if recover:
        from robot_policy_ros.data.bag_writer import recover_bag

        for bag in recover:
            print(json.dumps(recover_bag(bag)))
        return 0

    def close(node: BagRecorder) -> None:
        t0 = time.monotonic()
        node.shutdown()
        print(f"bag_recorder: closed cleanly in {time.monotonic() - t0:.2f} s", flush=True)

    return run_nodes(
        [lambda: BagRecorder(parameter_overrides=overrides)],
        args=argv,
        config_errors=(ParameterError, OSError),
        on_stop=close,
    )


if __name__ == "__main__":
    sys.exit(main())
