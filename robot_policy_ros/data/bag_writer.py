"""Threaded rosbag2 writer around the ``rosbags`` library (MCAP by default, sqlite3 on request).

The writer never blocks its caller: :meth:`BagWriter.write` only appends the serialized
message to a queue, and a background thread writes it into the bag. This keeps ROS
subscription callbacks cheap, so the executor keeps up with camera-rate topics.

Durability:
- :meth:`BagWriter.close` drains the queue and writes ``metadata.yaml`` (rosbag2 format
  version 9, the one ROS 2 Jazzy writes), so ``ros2 bag info`` / ``ros2 bag play`` and any
  rosbag2 reader can open the bag.
- Every ``flush_interval_s`` the writer closes the current MCAP chunk (or commits the
  sqlite3 transaction) and flushes it to disk. A process killed hard (SIGKILL, power loss)
  therefore leaves a storage file whose complete part holds everything up to the last
  flush; :func:`recover_bag` turns such a partial bag back into a complete, readable one.
- At those periodic flushes an MCAP file is also ``fdatasync``-ed and the synced range
  dropped from the page cache (``POSIX_FADV_DONTNEED``): a flushed range then survives
  power loss too, and the recorder's dirty pages stay bounded. Without it, three 640x480
  cameras (~83 MB/s) piled up ~2.2 GB of dirty pages that the kernel wrote back in one
  burst every ~30 s, and bag data evicted other processes' pages. (It did not change the
  control loop's missed ticks in the soak: doc/benchmarks.md.)

Storage faults (disk full, file too large, I/O error, read-only or removed folder): the
first ``OSError`` (or sqlite3 error) the storage raises, at open, while writing or at
close, ends the bag. Nothing more is written to it; the bag is cut back to its last
flush (the MCAP file is truncated there and closed with a valid summary and footer, the
sqlite3 transaction is rolled back) and closed with metadata.yaml when the disk allows,
else left for :func:`recover_bag`. Messages that were not flushed yet, were queued or
arrive afterwards are counted as ``failed``; :attr:`BagWriter.error` names the file and
the errno, :attr:`BagWriter.outcome` says what became of the bag, and ``on_error`` is
called once (from the writer thread). A bag whose directory is deleted, renamed or
replaced while it is written is ended the same way (checked at every flush and at close).

Pure module: no rclpy import (QoS profiles are given as ``rosbags.interfaces.Qos``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import queue
import shutil
import sqlite3
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter, write_record, write_uint16, write_uint64
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

LOG = logging.getLogger(__name__)

STORAGES = ("mcap", "sqlite3")
#: rosbag2 metadata version written (Jazzy writes 9).
BAG_VERSION = 9
#: Duration rosbag2 writes for "infinite" QoS durations (deadline, lifespan, lease).
_INFINITE_NS = 9223372036854775807


#: MCAP Message record up to its data: opcode, record length, channel id, sequence,
#: log time, publish time.
_MCAP_MESSAGE = struct.Struct("<BQHIQQ")
#: MCAP Chunk record up to its data: opcode, record length, message start and end time,
#: uncompressed size, CRC (0: none), compression string length.
_MCAP_CHUNK = struct.Struct("<BQQQQII")
#: rosbags closes a chunk once it holds more than this many bytes.
_MCAP_CHUNK_BYTES = 2**20


class LeanMcapWriter(McapWriter):
    """rosbags' MCAP storage writer, writing the same bytes with fewer copies of the data.

    rosbags copies each message four times on its way to the file (into a record buffer,
    into the chunk buffer, out of it as bytes, into the chunk record buffer). For a 0.9 MB
    camera frame that is four short-lived 0.9 MB allocations: CPU (memcpy, page faults) in
    the writer thread, which holds the GIL meanwhile, and heap churn that glibc keeps as
    resident memory. Here a message is copied once, into the chunk buffer, and an
    uncompressed chunk is written to the file straight from that buffer. Same records, same
    attributes (``chunk``, ``chunks``, ``channel_stats``...), so :class:`BagWriter`'s
    flush, fault and recover paths work unchanged; compressed chunks use rosbags' code.
    """

    def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
        """Append one message record to the open chunk (closing the chunk when full)."""
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        chunk = self.chunk
        chunk.message_start_time = min(timestamp, chunk.message_start_time)
        chunk.message_end_time = max(timestamp, chunk.message_end_time)
        bio = chunk.bio
        chunk.msgs[connection.id].append((timestamp, bio.tell()))
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        bio.write(_MCAP_MESSAGE.pack(0x05, 22 + size, connection.id, 0, timestamp, timestamp))
        bio.write(data)
        if bio.tell() > _MCAP_CHUNK_BYTES:
            self.close_chunk()

    def close_chunk(self) -> None:
        """Write the open chunk, its message indexes, and start a new chunk."""
        if self.compression:
            super().close_chunk()
            return
        chunk = self.chunk
        size = chunk.bio.tell()
        chunk_start = self.bio.tell()
        length = 8 + 8 + 8 + 4 + 4 + 8 + size
        with chunk.bio.getbuffer() as view:
            self.bio.write(
                _MCAP_CHUNK.pack(
                    0x06, length, chunk.message_start_time, chunk.message_end_time, size, 0, 0
                )
                + size.to_bytes(8, "little")
            )
            self.bio.write(view)
        chunk_end = self.bio.tell()
        offsets: list[tuple[int, int]] = []
        for cid, msgs in chunk.msgs.items():
            offsets.append((cid, self.bio.tell()))
            rec = io.BytesIO()
            write_uint16(rec, cid)
            rec.write((len(msgs) * 16).to_bytes(4, "little"))
            for ts, offset in msgs:
                write_uint64(rec, ts)
                write_uint64(rec, offset)
            write_record(self.bio, 0x07, rec)
        rec = io.BytesIO()
        for value in (chunk.message_start_time, chunk.message_end_time, chunk_start):
            write_uint64(rec, value)
        write_uint64(rec, chunk_end - chunk_start)
        rec.write((len(offsets) * 10).to_bytes(4, "little"))
        for cid, offset in offsets:
            write_uint16(rec, cid)
            write_uint64(rec, offset)
        write_uint64(rec, self.bio.tell() - chunk_end)
        rec.write((0).to_bytes(4, "little"))  # compression: ''
        write_uint64(rec, size)  # compressed size
        write_uint64(rec, size)  # uncompressed size
        self.chunks.append(rec)
        self.chunk = type(chunk)(2**63 - 1, 0, io.BytesIO(), defaultdict(list))


class _Writer(Writer):
    """rosbags' rosbag2 Writer with :class:`LeanMcapWriter` as its MCAP storage."""

    STORAGE_PLUGINS: ClassVar[Mapping[StoragePlugin, Any]] = {
        **Writer.STORAGE_PLUGINS,
        StoragePlugin.MCAP: LeanMcapWriter,
    }


class BagWriteError(RuntimeError):
    """The bag could not be created or written."""


#: What a storage raises when the disk or the file system fails it.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, sqlite3.Error)


def describe_error(exc: BaseException) -> str:
    """Short text of a storage error with its errno name: 'No space left on device (ENOSPC)'.

    sqlite3 errors carry their SQLite error name instead ('SQLITE_FULL').
    """
    if isinstance(exc, OSError) and exc.errno:
        name = errno.errorcode.get(exc.errno, f"errno {exc.errno}")
        return f"{exc.strerror or os.strerror(exc.errno)} ({name})"
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", None)
        return f"{exc} ({name})" if name else str(exc)
    return str(exc) or type(exc).__name__


def _likely_cause(folder: Path, growth: int = 0) -> str:
    """For errors without an errno (SQLite's 'disk I/O error'): what the OS most likely said.

    ``growth``: bytes the failed write was adding (the file size limit is checked with it).
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and any(
            f.stat().st_size + growth + 65536 > soft for f in folder.iterdir() if f.is_file()
        ):
            return (
                f"{os.strerror(errno.EFBIG)} (EFBIG): a file reached this process's size limit "
                f"(RLIMIT_FSIZE {soft} bytes)"
            )
        vfs = os.statvfs(folder)
        if vfs.f_flag & os.ST_RDONLY:
            return f"{os.strerror(errno.EROFS)} (EROFS)"
        if vfs.f_bavail * vfs.f_frsize < 1024 * 1024:
            return f"{os.strerror(errno.ENOSPC)} (ENOSPC)"
    except (OSError, ImportError, ValueError):
        pass
    return ""


def _os_error_text(exc: BaseException, path: Path, growth: int = 0) -> str:
    """describe_error(), plus the file the OS named when it is not ``path`` itself."""
    text = describe_error(exc)
    name = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and name and Path(name) != path:
        text += f" at {name}"
    if isinstance(exc, sqlite3.Error) and (cause := _likely_cause(path.parent, growth)):
        text += f"; likely cause: {cause}"
    return text


class _BagGoneError(Exception):
    """The bag's path no longer leads to the file being written."""


def _qos_time(ns: int) -> QosTime:
    ns = int(min(max(ns, 0), _INFINITE_NS))
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def make_qos(
    reliable: bool = True,
    transient_local: bool = False,
    depth: int = 10,
    deadline_ns: int = _INFINITE_NS,
    lifespan_ns: int = _INFINITE_NS,
    liveliness_lease_ns: int = _INFINITE_NS,
) -> Qos:
    """A rosbags ``Qos`` (an offered QoS profile as stored in the bag metadata).

    ``ros2 bag play`` uses the offered profiles to publish with matching QoS (e.g. a
    transient-local episode topic stays latched on replay).
    """
    return Qos(
        QosHistory.KEEP_LAST,
        int(depth),
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        _qos_time(deadline_ns),
        _qos_time(lifespan_ns),
        QosLiveliness.AUTOMATIC,
        _qos_time(liveliness_lease_ns),
        False,
    )


@dataclass
class TopicCounts:
    """Per-topic message accounting of one bag."""

    received: int = 0  # handed to write()
    written: int = 0  # stored in the bag
    dropped: int = 0  # rejected because the queue was full
    failed: int = 0  # the storage raised while writing

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
        }


@dataclass
class BagStats:
    """Summary reported when a bag is closed."""

    path: Path
    storage: str
    topics: dict[str, TopicCounts] = field(default_factory=dict)
    duration_s: float = 0.0
    bytes_written: int = 0
    complete: bool = True  # metadata.yaml written
    error: str | None = None  # the storage fault that ended the bag (path and errno)
    outcome: str = ""  # what became of the bag after that fault

    @property
    def received(self) -> int:
        return sum(c.received for c in self.topics.values())

    @property
    def written(self) -> int:
        return sum(c.written for c in self.topics.values())

    @property
    def lost(self) -> int:
        """Messages received but not in the bag (dropped or failed)."""
        return self.received - self.written

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "storage": self.storage,
            "complete": self.complete,
            "received": self.received,
            "written": self.written,
            "lost": self.lost,
            "bytes_written": self.bytes_written,
            "duration_s": round(self.duration_s, 3),
            "topics": {t: c.as_dict() for t, c in self.topics.items()},
            "error": self.error,
            "outcome": self.outcome,
        }

    def summary(self) -> str:
        """One line: written/received per topic."""
        parts = [
            f"{t} {c.written}/{c.received}" + (f" (dropped {c.dropped})" if c.dropped else "")
            for t, c in sorted(self.topics.items())
        ]
        head = f"{self.path.name}: {self.written}/{self.received} messages written/received"
        return head + (" [" + ", ".join(parts) + "]" if parts else "")


_TYPESTORE = None
_TYPESTORE_LOCK = threading.Lock()


def default_typestore():
    """The ROS 2 Jazzy typestore (message definitions and type hashes), created once."""
    global _TYPESTORE
    with _TYPESTORE_LOCK:
        if _TYPESTORE is None:
            _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
        return _TYPESTORE


def message_definition(msgtype: str, typestore=None) -> tuple[str, str]:
    """(msgdef text, RIHS01 hash) of ``msgtype`` ("pkg/msg/Type").

    Looks the type up in the Jazzy typestore; types it lacks are read from the installed
    package's ``.msg`` file (``<pkg>/msg/<Type>.msg`` next to the Python package or in an
    ament share directory) and registered. Raises BagWriteError when neither works.
    """
    store = typestore or default_typestore()
    if msgtype not in store.fielddefs:
        _register_from_msg_file(store, msgtype)
    msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
    return msgdef, store.hash_rihs01(msgtype)


def _register_from_msg_file(store, msgtype: str, depth: int = 0) -> None:
    parts = msgtype.split("/")
    if len(parts) != 3 or depth > 8:
        raise BagWriteError(f"unknown message type {msgtype!r} (expected pkg/msg/Type)")
    pkg, kind, name = parts
    text = None
    candidates: list[Path] = []
    try:
        import importlib.util

        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                candidates.append(Path(loc) / kind / f"{name}.{kind}")
                candidates.append(Path(loc).parent / "share" / pkg / kind / f"{name}.{kind}")
    except (ImportError, ValueError):
        pass
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / pkg / kind / f"{name}.{kind}")
    for cand in candidates:
        if cand.is_file():
            text = cand.read_text()
            break
    if text is None:
        raise BagWriteError(
            f"no message definition for {msgtype!r}: not in the Jazzy typestore and no "
            f".msg file found; install its package or record another topic"
        )
    types = get_types_from_msg(text, msgtype)
    # Register dependencies first (fields of types the store does not know yet).
    for fields in types.values():
        for _fname, ftype in fields[1]:
            for sub in _referenced_types(ftype):
                if sub not in store.fielddefs and sub != msgtype:
                    _register_from_msg_file(store, sub, depth + 1)
    store.register(types)


def _referenced_types(ftype: Any) -> Iterator[str]:
    """Names of message types referenced by a rosbags field type description."""
    if isinstance(ftype, str):
        if "/" in ftype:
            yield ftype
        return
    if isinstance(ftype, (tuple, list)):
        for item in ftype:
            yield from _referenced_types(item)


_STOP = object()
_FLUSH = object()


@dataclass
class _Durable:
    """What the storage held on disk at its last successful flush (restored after a fault)."""

    offset: int = 0  # MCAP: file size
    chunks: int = 0  # MCAP: chunks in the file
    channel_stats: dict[int, int] = field(default_factory=dict)
    times: tuple[int, int] = (2**63 - 1, 0)  # MCAP: message start / end time
    writer_counts: dict[int, int] = field(default_factory=dict)
    writer_times: tuple[int, int] = (2**63 - 1, 0)
    written: dict[str, int] = field(default_factory=dict)  # per topic
    payload_bytes: int = 0

    @property
    def messages(self) -> int:
        return sum(self.written.values())


class BagWriter:
    """Write one rosbag2 bag from any thread without blocking the caller.

    Usage::

        w = BagWriter(path, storage="mcap")
        w.open()
        w.add_topic("/joint_states", "sensor_msgs/msg/JointState", [make_qos()])
        w.write("/joint_states", cdr_bytes, time_ns)  # any thread, never blocks
        stats = w.close()  # drains the queue, writes metadata.yaml

    Args:
        path: bag directory to create (must not exist).
        storage: "mcap" (default) or "sqlite3".
        max_queue: most messages waiting for the writer thread; beyond it messages are
            dropped (counted and reported) rather than blocking the caller.
        max_queue_bytes: most payload bytes waiting; same policy.
        flush_interval_s: how often written data is made durable on disk (0 disables).
        custom_data: strings stored in metadata.yaml ``custom_data``.
        on_error: called once, from the writer thread, after a storage fault ended the
            bag (:attr:`error` and :attr:`outcome` are set by then); must not block.
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        *,
        max_queue: int = 100_000,
        max_queue_bytes: int = 2 * 1024**3,
        flush_interval_s: float = 1.0,
        custom_data: dict[str, str] | None = None,
        typestore=None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage {storage!r} not supported; use one of {STORAGES}")
        if max_queue < 1 or max_queue_bytes < 1:
            raise ValueError("max_queue and max_queue_bytes must be positive")
        self.path = Path(path)
        self.storage = storage
        self.max_queue = int(max_queue)
        self.max_queue_bytes = int(max_queue_bytes)
        self.flush_interval_s = float(flush_interval_s)
        self.custom_data = dict(custom_data or {})
        self._typestore = typestore
        self._on_error = on_error
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._pending_bytes = 0
        self._counts: dict[str, TopicCounts] = {}
        self._types: dict[str, str] = {}
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._failed = False  # a storage fault ended the bag: nothing more is written
        self._sealed = False  # ... and the bag was closed readable after it
        self._opened_at = 0.0
        self._stats: BagStats | None = None
        self._opened = threading.Event()
        self._file: Path | None = None  # the storage file
        self._identity: tuple[int, int] | None = None  # its (st_dev, st_ino)
        self._durable = _Durable()
        self._cache_dropped_to = 0  # file offset up to which the page cache was dropped
        #: The storage fault that ended the bag (file, errno text), None while all is well.
        self.error: str | None = None
        #: What became of the bag after that fault.
        self.outcome = ""
        self.bytes_written = 0

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> BagWriter:
        """Create the bag directory and start the writer thread (which owns the storage).

        Raises BagWriteError naming the path and the errno when the bag cannot be created
        (missing permission, read-only or full file system, a file where a folder should be).
        """
        if self._thread is not None:
            raise BagWriteError(f"{self.path} is already open")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BagWriteError(
                f"cannot create bag {self.path}: {_os_error_text(exc, self.path)}"
            ) from exc
        self._opened = threading.Event()
        self._opened_at = time.monotonic()
        # sqlite3 connections may only be used by the thread that created them, so the
        # storage is created inside the writer thread.
        self._thread = threading.Thread(
            target=self._run, name=f"bag-writer-{self.path.name}", daemon=True
        )
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            self._thread.join()
            raise BagWriteError(
                f"cannot create bag {self.path}: {_os_error_text(self._error, self.path)}"
            ) from self._error
        return self

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._thread is not None and not self._closed

    @property
    def failed(self) -> bool:
        """True once a storage fault ended the bag (see :attr:`error`)."""
        return self._failed

    # -- producer side (any thread) -------------------------------------------------------
    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos: Sequence[Qos] = (),
        msgdef: str | None = None,
        rihs01: str | None = None,
    ) -> None:
        """Register a topic (before or while writing). Idempotent for the same type.

        The message definition is looked up now (raising BagWriteError for unknown types),
        so errors surface to the caller instead of in the writer thread.
        """
        with self._lock:
            if topic in self._types:
                if self._types[topic] != msgtype:
                    raise BagWriteError(
                        f"topic {topic} already recorded as {self._types[topic]}, not {msgtype}"
                    )
                return
            if msgdef is None or rihs01 is None:
                msgdef, rihs01 = message_definition(msgtype, self._typestore)
            self._types[topic] = msgtype
            self._counts[topic] = TopicCounts()
            self._queue.put(("conn", topic, msgtype, tuple(qos), msgdef, rihs01))

    def write(self, topic: str, data: bytes | memoryview, timestamp_ns: int) -> bool:
        """Queue one serialized (CDR) message; never blocks. False if it was dropped."""
        size = len(data)
        with self._lock:
            counts = self._counts.get(topic)
            if counts is None:
                raise BagWriteError(f"topic {topic} was not added to {self.path}")
            counts.received += 1
            if self._failed:
                counts.failed += 1
                return False
            if self._closed:
                counts.dropped += 1
                return False
            if self._pending >= self.max_queue or self._pending_bytes + size > self.max_queue_bytes:
                counts.dropped += 1
                if counts.dropped == 1 or counts.dropped % 100 == 0:
                    LOG.error(
                        "bag writer queue full (%d msgs, %d bytes): dropped %d on %s; "
                        "the disk is too slow or max_queue too small",
                        self._pending,
                        self._pending_bytes,
                        counts.dropped,
                        topic,
                    )
                return False
            self._pending += 1
            self._pending_bytes += size
            # Queued under the lock so that close() cannot slip its stop marker in between.
            self._queue.put(("msg", topic, data, int(timestamp_ns), size))
        return True

    def flush(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Ask the writer thread to make everything queued so far durable on disk.

        With ``wait``, returns once it did (True), or False after ``timeout`` seconds or
        when the bag has failed or closed meanwhile.
        """
        if not wait:
            self._queue.put(_FLUSH)
            return True
        done = threading.Event()
        self._queue.put(("flush", done))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if self._failed or (self._thread is not None and not self._thread.is_alive()):
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
        return not self._failed

    def counts(self) -> dict[str, TopicCounts]:
        """A snapshot of the per-topic counts."""
        with self._lock:
            return {
                t: TopicCounts(c.received, c.written, c.dropped, c.failed)
                for t, c in self._counts.items()
            }

    def pending(self) -> int:
        """Messages queued but not yet written."""
        with self._lock:
            return self._pending

    def pending_bytes(self) -> int:
        """Payload bytes queued but not yet written (memory the queue holds)."""
        with self._lock:
            return self._pending_bytes

    def close(self, timeout: float | None = None) -> BagStats:
        """Drain the queue, close the storage and write metadata.yaml. Idempotent."""
        if self._stats is not None:
            return self._stats
        with self._lock:
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)
        finished = False
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOG.error("bag writer for %s did not finish within %ss", self.path, timeout)
            else:
                finished = True
        if self._error is not None and self.error is None:
            LOG.error("bag writer for %s failed: %s", self.path, self._error)
        ok = self._sealed if self._failed else self._error is None
        stats = BagStats(
            path=self.path,
            storage=self.storage,
            topics=self.counts(),
            duration_s=time.monotonic() - self._opened_at if self._opened_at else 0.0,
            bytes_written=self.bytes_written,
            complete=finished and ok and (self.path / "metadata.yaml").is_file(),
            error=self.error,
            outcome=self.outcome,
        )
        self._stats = stats
        return stats

    # -- writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        writer = None
        try:
            writer = _Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
            writer.open()
            self._writer = writer
            self._file = Path(writer.storage.path)
            if self.storage == "mcap":
                writer.storage.bio.flush()  # the header: fails now on a full disk
                st = os.fstat(writer.storage.bio.fileno())
            else:
                st = os.stat(self._file)
            self._identity = (st.st_dev, st.st_ino)
            self._snapshot()
        except Exception as exc:
            self._error = exc
            if writer is not None:
                # Writer() refuses an existing path, so whatever is there now is ours.
                with contextlib.suppress(Exception):
                    writer.abort()
                shutil.rmtree(self.path, ignore_errors=True)
            self._opened.set()
            return
        self._opened.set()
        try:
            self._loop(writer)
            self._check_path()
            for key, value in self.custom_data.items():
                writer.set_custom_data(key, str(value))
            writer.close()
        except STORAGE_ERRORS as exc:
            self._fault(writer, exc)
        except _BagGoneError as gone:
            self._gone(writer, str(gone))
        except BaseException as exc:  # recorded and reported by close()
            self._error = exc
            LOG.exception("bag writer thread for %s stopped", self.path)
            with contextlib.suppress(Exception):
                writer.abort()

    def _loop(self, writer: Writer) -> None:
        """Write queued items until the stop marker; storage faults propagate."""
        last_flush = time.monotonic()
        dirty = False
        while True:
            timeout = None
            if self.flush_interval_s > 0:
                # Also when idle: the periodic check notices a removed bag directory.
                timeout = max(0.0, last_flush + self.flush_interval_s - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = _FLUSH
            if item is _STOP:
                return
            if item is _FLUSH or item[0] == "flush":
                if dirty:
                    self._flush_storage(sync=True)
                else:
                    self._check_path()
                dirty = False
                last_flush = time.monotonic()
                if item is not _FLUSH:
                    item[1].set()
                continue
            if item[0] == "conn":
                _, topic, msgtype, qos, msgdef, rihs01 = item
                self._connections[topic] = writer.add_connection(
                    topic, msgtype, msgdef=msgdef, rihs01=rihs01, offered_qos_profiles=qos
                )
                if self.storage == "sqlite3":
                    # Topics are committed at once, so a rollback after a fault never
                    # leaves metadata.yaml naming a topic the database lacks.
                    self._flush_storage()
                    dirty = False
                continue
            _, topic, data, stamp, size = item
            chunks = self._chunk_count()
            try:
                writer.write(self._connections[topic], stamp, data)
                ok = True
            except STORAGE_ERRORS:
                with self._lock:
                    self._pending -= 1
                    self._pending_bytes -= size
                    self._counts[topic].failed += 1
                raise
            except Exception as exc:  # keep writing the other messages
                ok = False
                LOG.error("failed to write a message on %s: %s", topic, exc)
            with self._lock:
                self._pending -= 1
                self._pending_bytes -= size
                if ok:
                    self._counts[topic].written += 1
                else:
                    self._counts[topic].failed += 1
            self.bytes_written += size if ok else 0
            dirty = True
            if self.flush_interval_s > 0 and time.monotonic() - last_flush >= self.flush_interval_s:
                self._flush_storage(sync=True)
                dirty = False
                last_flush = time.monotonic()
            elif self._chunk_count() != chunks:
                # The MCAP storage wrote a full chunk by itself: make it the durable point.
                self._flush_storage()

    def _chunk_count(self) -> int:
        storage = getattr(self._writer, "storage", None)
        return len(getattr(storage, "chunks", ()))

    def _flush_storage(self, sync: bool = False) -> None:
        """Make everything written so far durable (relies on rosbags 0.11 storage classes).

        ``sync``: also ``fdatasync`` an MCAP file and drop what is now on disk from the page
        cache (see the module docstring). Storage errors propagate (they end the bag); the
        path is checked first so that nothing is written on after the bag's directory was
        removed or replaced.
        """
        storage = getattr(self._writer, "storage", None)
        if storage is None:
            return
        self._check_path()
        if self.storage == "mcap":
            chunk = getattr(storage, "chunk", None)
            if chunk is not None and chunk.bio.tell() and hasattr(storage, "close_chunk"):
                storage.close_chunk()
            storage.bio.flush()
            if sync:
                self._sync_and_drop_cache(storage.bio)
        else:
            storage.conn.commit()
        self._snapshot()

    def _sync_and_drop_cache(self, bio: Any) -> None:
        """fdatasync ``bio``'s file, then advise the kernel to drop the synced pages."""
        try:
            fd = bio.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (tests' buffers)
            return
        os.fdatasync(fd)
        end = bio.tell()
        if end > self._cache_dropped_to and hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):  # advice only
                os.posix_fadvise(
                    fd,
                    self._cache_dropped_to,
                    end - self._cache_dropped_to,
                    os.POSIX_FADV_DONTNEED,
                )
            self._cache_dropped_to = end

    def _snapshot(self) -> None:
        """Remember what is on disk now (called after a successful flush)."""
        writer = self._writer
        storage = getattr(writer, "storage", None)
        d = _Durable()
        if self.storage == "mcap" and storage is not None:
            d.offset = storage.bio.tell()
            d.chunks = len(storage.chunks)
            d.channel_stats = dict(storage.channel_stats)
            d.times = (storage.message_start_time, storage.message_end_time)
        if writer is not None:
            d.writer_counts = dict(writer.counts)
            d.writer_times = (writer.min_timestamp, writer.max_timestamp)
        with self._lock:
            d.written = {t: c.written for t, c in self._counts.items()}
        d.payload_bytes = self.bytes_written
        self._durable = d

    def _check_path(self) -> None:
        """Raise _BagGoneError when the bag's path no longer leads to the file being written."""
        if self._file is None or self._identity is None:
            return
        try:
            st = os.stat(self._file)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise _BagGoneError(
                f"{self._file} disappeared while recording: {describe_error(exc)}; the bag "
                "directory or the output folder was removed, renamed or replaced"
            ) from exc
        if (st.st_dev, st.st_ino) != self._identity:
            raise _BagGoneError(f"{self._file} was replaced by another file while recording")

    # -- storage faults ------------------------------------------------------------------
    def _stop_accepting(self) -> tuple[int, int]:
        """Mark the bag failed; count unflushed and queued messages as failed.

        Returns (unflushed, queued): messages written after the last flush (now lost) and
        messages still waiting in the queue.
        """
        durable = self._durable.written
        unflushed = 0
        with self._lock:
            self._failed = True
            for topic, counts in self._counts.items():
                keep = min(durable.get(topic, 0), counts.written)
                unflushed += counts.written - keep
                counts.failed += counts.written - keep
                counts.written = keep
        return unflushed, self._drain_queue()

    def _drain_queue(self) -> int:
        queued = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return queued
            if isinstance(item, tuple) and item[0] == "msg":
                _, topic, _data, _stamp, size = item
                queued += 1
                with self._lock:
                    self._pending -= 1
                    self._pending_bytes -= size
                    self._counts[topic].failed += 1

    def _fault(self, writer: Writer, exc: BaseException) -> None:
        """A storage error: cut the bag back to its last flush and close it if possible."""
        try:
            self._check_path()
        except _BagGoneError as gone:  # the error is a consequence (e.g. sqlite DBMOVED)
            self._gone(writer, f"{gone}; the storage then failed: {describe_error(exc)}")
            return
        stage = "close" if self._closed else "write"
        growth = self.bytes_written - self._durable.payload_bytes
        text = _os_error_text(exc, self._file, growth)
        self.error = f"cannot {stage} bag file {self._file}: {text}"
        if writer.storage is None:  # the storage file closed complete; metadata.yaml failed
            with self._lock:
                self._failed = True
            self._remove_metadata_tmp()
            self.outcome = (
                f"has a complete {self.storage} file with all its messages but no "
                f"metadata.yaml; `bag_recorder --recover {self.path}` adds it"
            )
            self._announce()
            return
        unflushed, queued = self._stop_accepting()
        self.bytes_written = self._durable.payload_bytes
        try:
            how = self._seal_durable(writer)
        except _BagGoneError as gone:
            self._gone(writer, str(gone), announce=False)
            how = self.outcome
        lost = f"{unflushed} written after the last flush and {queued} still queued are lost"
        self.outcome = f"{how}; {lost}"
        self._announce()

    def _seal_durable(self, writer: Writer) -> str:
        """Truncate the storage to the last flush and close it; returns what became of it."""
        d = self._durable
        kept = f"the {d.messages} messages flushed before the error"
        storage = writer.storage
        if self.storage == "sqlite3":
            with contextlib.suppress(Exception):
                storage.conn.rollback()
        else:
            self._discard(storage.bio)
            try:
                bio = open(self._file, "r+b")  # noqa: SIM115 - handed to the storage
            except FileNotFoundError as exc:
                raise _BagGoneError(f"{self._file} disappeared ({describe_error(exc)})") from exc
            except OSError as exc:
                return (
                    f"could not be reopened ({describe_error(exc)}): {self._file} holds {kept} "
                    f"and a torn tail; `bag_recorder --recover {self.path}` makes it readable"
                )
            st = os.fstat(bio.fileno())
            if (st.st_dev, st.st_ino) != self._identity:
                bio.close()
                raise _BagGoneError(f"{self._file} was replaced by another file while recording")
            storage.bio = bio
        try:
            self._restore(writer, d)
            writer.set_custom_data("write_error", self.error or "")
            writer.close()
        except STORAGE_ERRORS as exc:
            if writer.storage is None:  # storage closed, metadata.yaml failed
                self._remove_metadata_tmp()
                return (
                    f"was cut back to {kept} and its {self.storage} file closed, but "
                    f"metadata.yaml could not be written ({describe_error(exc)}); "
                    f"`bag_recorder --recover {self.path}` adds it"
                )
            with contextlib.suppress(Exception):
                writer.abort()
            if self.storage == "mcap":
                with contextlib.suppress(OSError):
                    os.truncate(self._file, d.offset)
            return (
                f"could not be closed ({describe_error(exc)}): it holds {kept}; "
                f"`bag_recorder --recover {self.path}` makes it readable once there is space"
            )
        self._sealed = True
        return f"was closed (readable, metadata.yaml written) with {kept}"

    def _restore(self, writer: Writer, d: _Durable) -> None:
        """Put the rosbags writer and storage back to the state of the last flush."""
        writer.counts = {cid: d.writer_counts.get(cid, 0) for cid in writer.counts}
        writer.min_timestamp, writer.max_timestamp = d.writer_times
        storage = writer.storage
        if self.storage != "mcap":
            return
        storage.bio.truncate(d.offset)
        storage.bio.seek(d.offset)
        del storage.chunks[d.chunks :]
        storage.chunk = type(storage.chunk)(2**63 - 1, 0, io.BytesIO(), defaultdict(list))
        storage.channel_stats = {cid: d.channel_stats.get(cid, 0) for cid in storage.channel_stats}
        storage.message_start_time, storage.message_end_time = d.times

    def _remove_metadata_tmp(self) -> None:
        """Remove a half-written metadata.yaml.tmp (the real one is written atomically)."""
        with contextlib.suppress(OSError):
            (self.path / "metadata.yaml.tmp").unlink()

    @staticmethod
    def _discard(bio: Any) -> None:
        """Close a file object whose buffer the disk refused, without writing it."""
        raw = getattr(bio, "raw", None)
        with contextlib.suppress(Exception):
            if raw is not None:
                raw.close()  # drops the buffered bytes: they are past the durable part
            bio.close()

    def _gone(self, writer: Writer, reason: str, announce: bool = True) -> None:
        """The bag's directory was removed, renamed or replaced: end the bag there."""
        self.error = reason
        moved_to = self._where_is_file_now()
        with self._lock:
            self._failed = True
        queued = self._drain_queue()
        if moved_to is not None and moved_to.is_dir():
            # The file lives on elsewhere (renamed folder): close it complete there.
            self.path = moved_to
            writer.metapath = moved_to / "metadata.yaml"
            try:
                writer.set_custom_data("write_error", reason)
                writer.close()
                self._sealed = True
                how = f"was moved to {moved_to} and closed there"
            except STORAGE_ERRORS as exc:
                with contextlib.suppress(Exception):
                    writer.abort()
                how = (
                    f"was moved to {moved_to} but could not be closed there "
                    f"({describe_error(exc)}); `bag_recorder --recover {moved_to}` rebuilds it"
                )
        else:
            with contextlib.suppress(Exception):
                writer.abort()
            with self._lock:
                lost = sum(c.written for c in self._counts.values())
                for counts in self._counts.values():
                    counts.failed += counts.written
                    counts.written = 0
            self.bytes_written = 0
            how = f"was deleted with it: the {lost} messages recorded in it are lost"
        self.outcome = how + (f"; {queued} still queued are lost" if queued else "")
        if announce:
            self._announce()

    def _where_is_file_now(self) -> Path | None:
        """The directory the open storage file is in now, None if it was deleted."""
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
            link = f"/proc/self/fd/{name}"
            try:
                st = os.stat(link)
                if (st.st_dev, st.st_ino) != self._identity:
                    continue
                return Path(os.readlink(link)).parent if st.st_nlink > 0 else None
            except OSError:
                continue
        return None

    def _announce(self) -> None:
        if self._on_error is not None:
            try:
                self._on_error()
            except Exception:
                LOG.exception("on_error callback of %s failed", self.path)


# ---------------------------------------------------------------------------------------
# Recovery of bags whose writer was killed before close()
# ---------------------------------------------------------------------------------------


@dataclass
class RawConnection:
    """A topic read back from a partial storage file."""

    topic: str
    msgtype: str
    msgdef: str
    qos: str  # serialized offered QoS (YAML text), may be ""


def _read_str(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, off)
    off += 4
    return buf[off : off + n].decode(), off + n


def _parse_records(
    buf: bytes | memoryview, schemas: dict, channels: dict
) -> Iterator[tuple[int, int, bytes]]:
    """Yield (channel id, log time, data) from a run of MCAP records; stops at a torn one."""
    off = 0
    end = len(buf)
    while off + 9 <= end:
        op = buf[off]
        (length,) = struct.unpack_from("<Q", buf, off + 1)
        start = off + 9
        if start + length > end:
            return  # torn record at the end of the file
        rec = bytes(buf[start : start + length])
        off = start + length
        if op == 0x03:  # schema
            (sid,) = struct.unpack_from("<H", rec, 0)
            name, p = _read_str(rec, 2)
            _enc, p = _read_str(rec, p)
            (dlen,) = struct.unpack_from("<I", rec, p)
            schemas[sid] = (name, rec[p + 4 : p + 4 + dlen].decode())
        elif op == 0x04:  # channel
            cid, sid = struct.unpack_from("<HH", rec, 0)
            topic, p = _read_str(rec, 4)
            _enc, p = _read_str(rec, p)
            (mlen,) = struct.unpack_from("<I", rec, p)
            p += 4
            meta_end = p + mlen
            meta: dict[str, str] = {}
            while p < meta_end:
                key, p = _read_str(rec, p)
                val, p = _read_str(rec, p)
                meta[key] = val
            name, msgdef = schemas.get(sid, ("", ""))
            channels[cid] = RawConnection(topic, name, msgdef, meta.get("offered_qos_profiles", ""))
        elif op == 0x05:  # message
            cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", rec, 0)
            yield cid, log_time, rec[22:]
        elif op == 0x06:  # chunk: records inside, maybe compressed
            _s, _e, _usize, _crc = struct.unpack_from("<QQQI", rec, 0)
            comp, p = _read_str(rec, 28)
            (clen,) = struct.unpack_from("<Q", rec, p)
            payload = rec[p + 8 : p + 8 + clen]
            if comp == "zstd":
                try:
                    from compression import zstd  # type: ignore[import-not-found]
                except ImportError:
                    from backports import zstd  # type: ignore[no-redef]
                payload = zstd.decompress(payload)
            elif comp == "lz4":
                from lz4.frame import decompress as lz4_decompress

                payload = lz4_decompress(payload)
            yield from _parse_records(payload, schemas, channels)
        # other records (index, summary, footer...) carry nothing new


def _iter_partial_mcap(path: Path) -> Iterator[tuple[RawConnection, int, bytes]]:
    data = path.read_bytes()
    magic = b"\x89MCAP0\r\n"
    if not data.startswith(magic):
        raise BagWriteError(f"{path} is not an MCAP file")
    schemas: dict = {}
    channels: dict[int, RawConnection] = {}
    for cid, log_time, payload in _parse_records(memoryview(data)[8:], schemas, channels):
        conn = channels.get(cid)
        if conn is not None:
            yield conn, log_time, payload


def _iter_partial_sqlite(path: Path) -> Iterator[tuple[RawConnection, int, bytes]]:
    # Opening read-write lets sqlite roll back a hot journal left by a killed writer.
    con = sqlite3.connect(f"file:{path}", uri=True)
    try:
        defs = {}
        try:
            for ttype, enc_def in con.execute(
                "SELECT topic_type, encoded_message_definition FROM message_definitions"
            ):
                defs[ttype] = enc_def
        except sqlite3.DatabaseError:
            pass
        topics = {
            tid: RawConnection(name, ttype, defs.get(ttype, ""), qos or "")
            for tid, name, ttype, qos in con.execute(
                "SELECT id, name, type, offered_qos_profiles FROM topics"
            )
        }
        for tid, stamp, data in con.execute(
            "SELECT topic_id, timestamp, data FROM messages ORDER BY id"
        ):
            if tid in topics:
                yield topics[tid], stamp, data
    finally:
        con.close()


def bag_is_complete(path: str | Path) -> bool:
    """True when the bag directory has a metadata.yaml naming existing storage files."""
    path = Path(path)
    meta = path / "metadata.yaml"
    if not meta.is_file():
        return False
    import yaml

    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        files = info["relative_file_paths"]
    except Exception:
        return False
    return all((path / Path(f).name).is_file() for f in files)


def recover_bag(path: str | Path, storage: str | None = None, keep_partial: bool = False) -> dict:
    """Make a bag whose writer was killed (no metadata.yaml, no MCAP footer) readable.

    Reads every complete message from the partial storage file and writes a new bag with
    the same directory name (other files in the directory, e.g. ``episode.json``, are kept).
    Returns a report dict (``recovered`` message count, per-topic counts). A complete bag is
    left alone (``{"recovered": 0, "already_complete": True}``).
    """
    path = Path(path)
    if bag_is_complete(path):
        return {"path": str(path), "recovered": 0, "already_complete": True}
    mcaps = sorted(path.glob("*.mcap"))
    dbs = sorted(path.glob("*.db3"))
    if storage is None:
        storage = "mcap" if mcaps else "sqlite3"
    files = mcaps if storage == "mcap" else dbs
    if not files:
        raise BagWriteError(f"no {storage} storage file in {path}")
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        raise BagWriteError(f"{partial} exists; remove it or finish the earlier recovery")
    path.rename(partial)
    counts: dict[str, int] = {}
    try:
        store = default_typestore()
        writer = Writer(
            path,
            version=BAG_VERSION,
            storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3,
        )
        writer.open()
        conns: dict[tuple[str, str], Any] = {}
        try:
            for fname in files:
                src = partial / fname.name
                reader = _iter_partial_mcap if storage == "mcap" else _iter_partial_sqlite
                for raw, stamp, data in reader(src):
                    key = (raw.topic, raw.msgtype)
                    if key not in conns:
                        conns[key] = _add_recovered_connection(writer, raw, store)
                    writer.write(conns[key], stamp, data)
                    counts[raw.topic] = counts.get(raw.topic, 0) + 1
            writer.set_custom_data("recovered", "true")
            writer.close()
        except BaseException:
            writer.abort()
            raise
        # Keep side files (episode.json, ...) next to the recovered bag.
        for item in partial.iterdir():
            if item.suffix in (".mcap", ".db3") or item.name.endswith(
                (".db3-journal", ".db3-wal", ".db3-shm")
            ):
                continue
            if item.name == "metadata.yaml" or (path / item.name).exists():
                continue
            shutil.move(str(item), str(path / item.name))
    except BaseException:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        partial.rename(path)
        raise
    if not keep_partial:
        shutil.rmtree(partial, ignore_errors=True)
    report = {
        "path": str(path),
        "storage": storage,
        "recovered": sum(counts.values()),
        "topics": counts,
        "already_complete": False,
    }
    LOG.info("recovered %s: %s", path, json.dumps(report))
    return report


def _add_recovered_connection(writer: Writer, raw: RawConnection, store) -> Any:
    from rosbags.rosbag2.metadata import parse_qos

    try:
        qos = parse_qos(raw.qos) if raw.qos else []
    except Exception:
        qos = []
    if raw.msgtype not in store.fielddefs and raw.msgdef:
        try:
            store.register(get_types_from_msg(raw.msgdef, raw.msgtype))
        except Exception as exc:
            LOG.warning("cannot parse the definition of %s: %s", raw.msgtype, exc)
    msgdef, rihs01 = message_definition(raw.msgtype, store)
    return writer.add_connection(
        raw.topic, raw.msgtype, msgdef=msgdef, rihs01=rihs01, offered_qos_profiles=qos
    )
