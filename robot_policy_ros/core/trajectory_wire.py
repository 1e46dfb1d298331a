"""Decode serialized trajectory_msgs/JointTrajectory chunks without rclpy (numpy + stdlib).

Why: rclpy deserializes a subscribed message into Python objects in one C call that holds the
GIL (a JointTrajectoryPoint, four array.array and a Duration per point): tens of ms for a
chunk of thousands of points, during which no other thread of the process runs, the control
thread and the e-stop callback included. A ``raw=True`` subscription hands over the serialized
bytes instead (cheap to take), and this module decodes them in whichever thread the node
chooses, at a cost that is both smaller and preemptible:

* :func:`point_count` reads only the encapsulation, header, joint names and the points count
  (O(number of joints), no allocation), so an oversized chunk is refused before any decoding;
* :func:`decode_chunk` first checks every declared count against its bound and against the
  bytes actually present, then locates the points. Real producers write every point with the
  same layout (the same number of positions, velocities, accelerations, efforts), so it
  predicts each point's offset from the first point and verifies the prediction with a few
  vectorized numpy reads (each one well under a millisecond at 10,000 points); positions are
  gathered straight from the buffer (one ``np.frombuffer`` view, no per-point copy), and
  velocities, accelerations and efforts are skipped, never copied. A chunk whose points differ
  in layout is walked by a tight Python loop instead: plain bytecode, which the interpreter
  interrupts every ``sys.getswitchinterval()`` (0.5 ms in command_streamer) to let the control
  thread run, unlike the one long C call of ``deserialize_message``.

Wire format (XCDR1 / "plain CDR", as rmw_fastrtps and rclpy.serialization produce it): a
4-byte encapsulation header (``00 00`` big endian or ``00 01`` little endian, then two option
bytes), then the message; primitives are aligned to their size (8-byte doubles to 8) relative
to the byte after the header, a sequence is a uint32 count followed by its elements (a double
sequence aligns to 8 only when it has elements), a string is a uint32 length that counts a
terminating NUL, then the bytes and the NUL. Padding bytes are not read (Fast DDS leaves them
uninitialized), nor are bytes after the last point (``serialize_message`` returns a buffer
longer than the data).

Contract: every declared count (joint names, name lengths, points, and the four sequences of
each point) is checked against its bound and against the bytes present before anything
proportional to it is allocated; malformed input raises :class:`WireError` (``key``
``"too_many_points"`` or ``"bad_message"``), never IndexError, struct.error or MemoryError.

Measured (``python -m robot_policy_ros.core.trajectory_wire``; 7 joints, positions only,
median of repeated runs, on the project's 2-core shared AMD EPYC VM with other agents'
load, CPython 3.11, numpy 2.4, rclpy 7.1 / rmw_fastrtps 8.4; doc/benchmarks.md has the table):

    points | deserialize_message | decode_chunk | decode_chunk, loop path | point_count
       100 |             0.39 ms |      0.04 ms |                0.19 ms |      1.5 us
     1,000 |             3.9 ms  |      0.12 ms |                1.8 ms  |      1.5 us
    10,000 |            41 ms    |      1.0 ms  |               19 ms    |      1.5 us
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["WireChunk", "WireError", "decode_chunk", "point_count"]

#: Encapsulation identifiers (first two bytes, big endian) of XCDR1 plain CDR.
CDR_BE = 0x0000
CDR_LE = 0x0001

# Smallest encoding of a JointTrajectoryPoint: four empty sequences (4 bytes each) and a
# Duration (8 bytes); each position adds 8 bytes.
_MIN_POINT_BYTES = 24


class WireError(ValueError):
    """A serialized chunk that will not be decoded; ``key`` names the rejection counter."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _bad(message: str) -> WireError:
    return WireError("bad_message", f"malformed action_chunk: {message}")


@dataclass(frozen=True, eq=False)
class WireChunk:
    """A decoded chunk. Arrays are read-only, native float64.

    Attributes:
        stamp_sec: header.stamp as float seconds (sec + nanosec * 1e-9).
        joint_names: the message's joint names, in its order.
        offsets: (P,) time_from_start of each point in seconds.
        positions: (P, J) positions, columns in ``joint_names`` order.
    """

    stamp_sec: float
    joint_names: tuple[str, ...]
    offsets: np.ndarray
    positions: np.ndarray

    @property
    def num_points(self) -> int:
        return int(self.offsets.shape[0])


class _Codec:
    """Precompiled unpackers of one byte order."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.u32 = struct.Struct(order + "I").unpack_from
        self.stamp = struct.Struct(order + "iI").unpack_from
        self.u4 = np.dtype(order + "u4")
        self.i4 = np.dtype(order + "i4")
        self.f8 = np.dtype(order + "f8")


_CODECS = {CDR_LE: _Codec("<"), CDR_BE: _Codec(">")}


def _as_buffer(raw: bytes | bytearray | memoryview) -> memoryview:
    view = raw if isinstance(raw, memoryview) else memoryview(raw)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


class _Prefix:
    """What precedes the points: parsed by :func:`_read_prefix`."""

    __slots__ = ("body", "codec", "count", "end", "names", "offset", "stamp_sec")


def _read_prefix(
    raw: bytes | bytearray | memoryview, max_joints: int, max_name_len: int, decode_names: bool
) -> _Prefix:
    buf = _as_buffer(raw)
    if len(buf) < 4:
        raise _bad(f"{len(buf)} bytes, shorter than the 4-byte encapsulation header")
    encapsulation = (buf[0] << 8) | buf[1]
    codec = _CODECS.get(encapsulation)
    if codec is None:
        raise _bad(
            f"encapsulation 0x{encapsulation:04x} is not plain CDR (XCDR1: 0x0000 big endian, "
            "0x0001 little endian)"
        )
    body = buf[4:]  # alignment is relative to the byte after the header
    end = len(body)
    u32 = codec.u32
    try:
        sec, nanosec = codec.stamp(body, 0)
        o = 8
        # header.frame_id: skipped (checked, not decoded)
        length = u32(body, o)[0]
        o += 4
        if length > end - o:
            raise _bad(f"header.frame_id length {length} runs past the end ({end - o} bytes left)")
        if length and body[o + length - 1] != 0:
            raise _bad("header.frame_id lacks its terminating NUL")
        o += length
        o = (o + 3) & ~3
        num_names = u32(body, o)[0]
        o += 4
        if num_names > max_joints:
            raise _bad(f"{num_names} joint names, more than max_joints {max_joints}")
        if 4 * num_names > end - o:
            raise _bad(f"{num_names} joint names declared, only {end - o} bytes left")
        names: list[str] = []
        for i in range(num_names):
            o = (o + 3) & ~3
            length = u32(body, o)[0]
            o += 4
            if length > end - o:
                raise _bad(f"joint_names[{i}] length {length} runs past the end")
            if length > max_name_len + 1:
                raise _bad(f"joint_names[{i}] is {length - 1} bytes, more than {max_name_len}")
            if length:
                if body[o + length - 1] != 0:
                    raise _bad(f"joint_names[{i}] lacks its terminating NUL")
                if decode_names:
                    data = bytes(body[o : o + length - 1])
                    if b"\x00" in data:
                        raise _bad(f"joint_names[{i}] contains a NUL byte")
                    try:
                        names.append(data.decode("utf-8"))
                    except UnicodeDecodeError as exc:
                        raise _bad(f"joint_names[{i}] is not UTF-8 ({exc.reason})") from None
            elif decode_names:
                names.append("")
            o += length
        o = (o + 3) & ~3
        count = u32(body, o)[0]
        o += 4
    except struct.error:
        raise _bad(f"truncated before the points ({end} bytes after the header)") from None
    prefix = _Prefix()
    prefix.body, prefix.codec, prefix.end = body, codec, end
    prefix.stamp_sec = sec + nanosec * 1e-9
    prefix.names = tuple(names) if decode_names else num_names
    prefix.count, prefix.offset = count, o
    return prefix


def point_count(
    raw: bytes | bytearray | memoryview, *, max_joints: int = 64, max_name_len: int = 256
) -> int:
    """The declared number of points of a serialized JointTrajectory, without decoding it.

    Reads the encapsulation, header, joint names (lengths only, no UTF-8 decoding) and the
    points count: O(joints), allocates nothing. A count that the bytes present cannot hold
    (every point takes at least 24 bytes) raises.

    Raises:
        WireError: ``bad_message`` (malformed, truncated, a count larger than the data).
    """
    prefix = _read_prefix(raw, max_joints, max_name_len, decode_names=False)
    _check_count(prefix, prefix.count, prefix.names)
    return prefix.count


def _check_count(prefix: _Prefix, count: int, num_joints: int) -> None:
    need = count * (_MIN_POINT_BYTES + 8 * num_joints)
    left = prefix.end - prefix.offset
    if need > left:
        raise _bad(
            f"{count} points of {num_joints} joints declared need at least {need} bytes, "
            f"only {left} left (truncated or a lying count)"
        )


def decode_chunk(
    raw: bytes | bytearray | memoryview,
    *,
    max_points: int,
    max_joints: int = 64,
    max_name_len: int = 256,
) -> WireChunk:
    """Decode a serialized trajectory_msgs/JointTrajectory (XCDR1, either byte order).

    Every point must carry one position per joint name; velocities, accelerations and
    efforts may have any length (they are skipped). Bytes after the last point are ignored.

    Raises:
        WireError: ``too_many_points`` (more than ``max_points`` declared, refused before
            reading them) or ``bad_message`` (truncated, a count larger than the data or a
            bound, a name that is not NUL-terminated UTF-8, a positions count that is not
            the number of joint names, an unsupported encapsulation).
    """
    prefix = _read_prefix(raw, max_joints, max_name_len, decode_names=True)
    names = prefix.names
    num_joints = len(names)
    count = prefix.count
    if count > max_points:
        raise WireError(
            "too_many_points",
            f"chunk has {count} points, more than max_chunk_points {max_points}",
        )
    _check_count(prefix, count, num_joints)
    if count == 0:
        pos_at = dur_at = np.zeros(0, dtype=np.int64)
    else:
        located = _locate_uniform(prefix, count, num_joints)
        if located is None:
            located = _locate_loop(prefix, count, num_joints)
        pos_at, dur_at = located
    body, codec = prefix.body, prefix.codec
    # Every index below lies inside the data the points were located in (checked there).
    words = np.frombuffer(body, dtype=codec.u4, count=prefix.end // 4)
    sec = words[dur_at // 4].view(codec.i4).astype(np.float64)
    nanosec = words[dur_at // 4 + 1].astype(np.float64)
    offsets = sec + nanosec * 1e-9
    if num_joints and count:
        doubles = np.frombuffer(body, dtype=codec.f8, count=prefix.end // 8)
        index = (pos_at // 8)[:, None] + np.arange(num_joints)
        positions = doubles[index].astype(np.float64, copy=False)
    else:
        positions = np.zeros((count, num_joints), dtype=np.float64)
    offsets.setflags(write=False)
    positions.setflags(write=False)
    return WireChunk(prefix.stamp_sec, names, offsets, positions)


def _walk(o: int, layout: tuple[int, int, int, int]) -> tuple[tuple[int, ...], int, int, int]:
    """Walk one point whose four sequences have ``layout`` counts, from offset ``o``.

    Returns (offsets of the four counts, offset of its first position, offset of its
    time_from_start, end offset).
    """
    fields = []
    pos_at = 0
    for i, n in enumerate(layout):
        o = (o + 3) & ~3
        fields.append(o)
        o += 4
        if n:
            o = (o + 7) & ~7
        if i == 0:
            pos_at = o
        o += 8 * n
    dur_at = (o + 3) & ~3
    return tuple(fields), pos_at, dur_at, dur_at + 8


def _locate_uniform(
    prefix: _Prefix, count: int, num_joints: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets of every point's positions and time_from_start, if all points share the first
    point's layout (else None). Vectorized: a few numpy calls, no Python loop over points."""
    body, end, u32 = prefix.body, prefix.end, prefix.codec.u32
    o0 = prefix.offset  # 4-aligned: right after the points count
    o = o0
    counts = []
    try:
        for _ in range(4):
            o = (o + 3) & ~3
            n = u32(body, o)[0]
            counts.append(n)
            o += 4
            if n:
                if n > (end - o) >> 3:
                    return None
                o = ((o + 7) & ~7) + 8 * n
    except struct.error:
        return None
    if counts[0] != num_joints:
        return None
    layout = (counts[0], counts[1], counts[2], counts[3])
    # A point's layout depends only on its start offset modulo 8 (0 or 4). Its end modulo 8
    # does not depend on it: the first non-empty double sequence re-aligns to 8 (and a point
    # of only empty sequences is 24 bytes). So the first point starts at phase p0 and every
    # later one at the same phase p1.
    walk = {phase: _walk(phase, layout) for phase in (0, 4)}
    size = {phase: walk[phase][3] - phase for phase in (0, 4)}
    p0 = o0 & 7
    p1 = (p0 + size[p0]) & 7
    phases = np.full(count, p1, dtype=np.int64)
    phases[0] = p0
    is0 = phases == 0
    sizes = np.where(is0, size[0], size[4])
    starts = np.empty(count, dtype=np.int64)
    starts[0] = o0
    np.cumsum(sizes[:-1], out=starts[1:])
    starts[1:] += o0
    if int(starts[-1]) + int(sizes[-1]) > end:
        return None  # runs past the data: the loop finds out where

    def at(rel0: int, rel4: int) -> np.ndarray:
        return starts + np.where(is0, rel0, rel4 - 4)

    # Verify: each point's four counts, read where the prediction puts them, are the layout's.
    # Then every point starts where predicted (by induction over the points).
    words = np.frombuffer(body, dtype=prefix.codec.u4, count=end // 4)
    for i, n in enumerate(layout):
        if not np.all(words[at(walk[0][0][i], walk[4][0][i]) // 4] == n):
            return None
    return at(walk[0][1], walk[4][1]), at(walk[0][2], walk[4][2])


def _locate_loop(prefix: _Prefix, count: int, num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of every point's positions and time_from_start, walking the points one by one
    (points of differing layouts). Plain bytecode: the interpreter may switch threads inside."""
    body, end, u32 = prefix.body, prefix.end, prefix.codec.u32
    pos_at = [0] * count
    dur_at = [0] * count
    o = prefix.offset
    k = 0
    try:
        for k in range(count):
            n = u32(body, o)[0]  # positions: o is 4-aligned here
            if n != num_joints:
                raise _bad(
                    f"point {k} has {n} positions for {num_joints} joint names "
                    "(each point needs one position per joint)"
                )
            o += 4
            if n:
                o = (o + 7) & ~7
            pos_at[k] = o
            o += 8 * n
            for _ in range(3):  # velocities, accelerations, effort: skipped
                o = (o + 3) & ~3
                n = u32(body, o)[0]
                o += 4
                if n:
                    if n > (end - o) >> 3:
                        raise _bad(f"point {k}: a sequence of {n} doubles runs past the end")
                    o = ((o + 7) & ~7) + 8 * n
            o = (o + 3) & ~3
            dur_at[k] = o
            o += 8
    except struct.error:
        raise _bad(f"truncated in point {k} of {count}") from None
    if o > end:
        raise _bad(f"truncated in point {count - 1} of {count}")
    return np.array(pos_at, dtype=np.int64), np.array(dur_at, dtype=np.int64)
