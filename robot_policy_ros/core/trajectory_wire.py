"""Decode serialized trajectory_msgs/JointTrajectory chunks without rclpy (numpy + stdlib).

Why: rclpy turns a subscribed message into Python objects in C code that holds the GIL
(a JointTrajectoryPoint, four array.array and a Duration per point): tens of ms for a chunk
of thousands of points, during which no other thread of the process runs, the control thread
and the e-stop callback included. A ``raw=True`` subscription hands over the serialized bytes
instead (cheap to take), and this module decodes them in whichever thread the node chooses,
at a cost that is both far smaller and made of short pieces:

* :func:`point_count` reads only the encapsulation, header, joint names and the points count
  (O(number of joints), no allocation), so an oversized chunk is refused before decoding;
* :func:`decode_chunk` checks every declared count against its bound and against the bytes
  actually present, then decodes the points. Real producers write every point with the same
  layout (the same numbers of positions, velocities, accelerations and efforts); then every
  point after the first starts at the same alignment phase, the points are equally spaced
  and each field of every point is one strided numpy view of the buffer. The layout is
  verified (each point's four counts read where predicted) and positions and durations are
  copied from the views: a handful of numpy calls of well under a millisecond each, even at
  10,000 points. Velocities, accelerations and efforts are skipped, never copied.
* Points of differing layouts are walked by a tight Python loop that records where each
  point's positions and time_from_start are (numpy then gathers them). It is plain Python
  bytecode, which the interpreter interrupts every ``sys.getswitchinterval()`` (0.5 ms in
  command_streamer) to let a waiting thread such as the control thread take the GIL, unlike
  one long C call.

Wire format (XCDR1 "plain CDR", as rmw_fastrtps and rclpy.serialization produce it): a
4-byte encapsulation header (``00 00`` big endian or ``00 01`` little endian, then two option
bytes), then the message; primitives are aligned to their size (8-byte doubles to 8)
relative to the byte after the header; a sequence is a uint32 count followed by its
elements (a double sequence aligns to 8 only when it has elements); a string is a uint32
length that counts a terminating NUL, then the bytes and the NUL. Padding bytes are not read
(Fast DDS leaves them uninitialized), nor are bytes after the last point
(``serialize_message`` returns a buffer longer than the data). XCDR2 and parameter-list
encapsulations are refused.

Contract: every declared count (joint names, string lengths, points, and the four sequences
of each point) is checked against its bound and against the bytes present before anything
proportional to it is allocated; malformed input raises :class:`WireError` (``key``
``"too_many_points"`` or ``"bad_message"``), never IndexError, struct.error or MemoryError.
Values are not judged: non-finite positions, unevenly spaced or unsorted time_from_start and
duplicate joint names are the caller's to reject.

Measured with ``benchmarks/trajectory_wire_decode.py`` (doc/benchmarks.md has the table and
the machine: the project's 2-core shared VM): for 10,000 points x 7 joints,
``deserialize_message`` took about 80-140 ms and held the GIL up to tens of ms at a stretch,
``decode_chunk`` well under 1 ms, ``point_count`` a few microseconds whatever the size.
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
        offsets = np.zeros(0, dtype=np.float64)
        positions = np.zeros((0, num_joints), dtype=np.float64)
    else:
        decoded = _decode_uniform(prefix, count, num_joints)
        if decoded is None:
            decoded = _decode_walk(prefix, count, num_joints)
        offsets, positions = decoded
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


class _Column:
    """Views of one field of every point: the first point at ``first``, the others at
    ``rest + k * stride`` (byte offsets into the body)."""

    def __init__(self, count: int, stride: int, end: int) -> None:
        self.count, self.stride, self.end = count, stride, end

    def take(self, view: np.ndarray, first: int, rest: int, width: int = 1) -> np.ndarray:
        """(count, width) copy of ``width`` consecutive items of ``view`` per point."""
        item = view.itemsize
        n_rest = self.count - 1
        # Memory safety of as_strided: the last item read must lie inside the data.
        last = max(first, rest + (n_rest - 1) * self.stride if n_rest else first)
        if first % item or rest % item or last + width * item > len(view) * item:
            raise WireError("bad_message", "internal: strided read outside the data")
        out = np.empty((self.count, width), dtype=view.dtype)
        out[0] = view[first // item : first // item + width]
        if n_rest:
            out[1:] = np.lib.stride_tricks.as_strided(
                view[rest // item :], shape=(n_rest, width), strides=(self.stride, item),
                writeable=False,
            )  # fmt: skip
        return out


def _decode_uniform(
    prefix: _Prefix, count: int, num_joints: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets, positions) if every point has the first point's layout, else None.

    A point's layout in bytes depends only on its start offset modulo 8 (0 or 4), and its
    end modulo 8 does not (the first non-empty double sequence re-aligns to 8; a point of
    empty sequences is 24 bytes): so every point after the first starts at the same phase
    and they are equally spaced. Each field of every point is then one strided view: the
    layout is verified (each point's four counts read where predicted) and positions and
    durations copied with a handful of numpy calls, no Python loop over the points.
    """
    body, end, codec = prefix.body, prefix.end, prefix.codec
    o0 = prefix.offset  # 4-aligned: right after the points count
    o = o0
    counts = []
    try:
        for _ in range(4):
            o = (o + 3) & ~3
            n = codec.u32(body, o)[0]
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
    p0 = o0 & 7
    walk0 = _walk(p0, layout)
    o1 = o0 - p0 + walk0[3]  # where the second point starts
    p1 = o1 & 7
    walk1 = _walk(p1, layout)
    stride = walk1[3] - p1
    if stride % 8 or o1 + (count - 1) * stride > end:
        return None  # (the first cannot happen); past the data: the walk says where
    column = _Column(count, stride, end)

    def first(rel: int) -> int:
        return o0 - p0 + rel

    def rest(rel: int) -> int:
        return o1 - p1 + rel

    words = np.frombuffer(body, dtype=codec.u4, count=end // 4)
    for i, n in enumerate(layout):
        if not np.all(column.take(words, first(walk0[0][i]), rest(walk1[0][i])) == n):
            return None
    dur = column.take(words, first(walk0[2]), rest(walk1[2]), 2)
    offsets = dur[:, 0].view(codec.i4).astype(np.float64) + dur[:, 1] * 1e-9
    if num_joints:
        doubles = np.frombuffer(body, dtype=codec.f8, count=end // 8)
        positions = column.take(doubles, first(walk0[1]), rest(walk1[1]), num_joints)
        positions = positions.astype(np.float64, copy=False)
    else:
        positions = np.zeros((count, 0), dtype=np.float64)
    return offsets, positions


def _decode_walk(prefix: _Prefix, count: int, num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, positions), walking the points one by one (points of differing layouts).

    A tight Python loop records where each point's positions and time_from_start are, then
    numpy gathers them. Plain bytecode: the interpreter may switch threads inside it.
    """
    pos_at, dur_at = _locate_loop(prefix, count, num_joints)
    body, codec, end = prefix.body, prefix.codec, prefix.end
    # Every index lies inside the data the points were located in (checked by the walk).
    words = np.frombuffer(body, dtype=codec.u4, count=end // 4)
    sec = words[dur_at // 4].view(codec.i4).astype(np.float64)
    offsets = sec + words[dur_at // 4 + 1] * 1e-9
    if num_joints:
        doubles = np.frombuffer(body, dtype=codec.f8, count=end // 8)
        index = (pos_at // 8)[:, None] + np.arange(num_joints)
        positions = np.take(doubles, index).astype(np.float64, copy=False)
    else:
        positions = np.zeros((count, 0), dtype=np.float64)
    return offsets, positions


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
