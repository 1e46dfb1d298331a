"""trajectory_wire: serialized JointTrajectory decoding, cross-checked against rclpy.

The reference is rclpy itself: messages are built with trajectory_msgs, serialized with
``rclpy.serialization.serialize_message`` (rmw_fastrtps, little endian on this machine) and
the decoded chunk is compared with the message's own fields. Big-endian input comes from
:func:`encode`, a test-only encoder whose little-endian output is checked byte for byte
against rclpy's (except the padding, which Fast DDS leaves uninitialized) and whose
big-endian output rclpy's own deserializer (Fast CDR honours the encapsulation) must turn
back into the same message.
"""

from __future__ import annotations

import contextlib
import math
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core import trajectory_wire as tw
from robot_policy_ros.core.trajectory_wire import WireError, decode_chunk, point_count

serialization = pytest.importorskip("rclpy.serialization")
from builtin_interfaces.msg import Duration  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

serialize_message = serialization.serialize_message
deserialize_message = serialization.deserialize_message


# -- building messages and bytes ------------------------------------------------------------------


def make_msg(
    positions: np.ndarray,
    names: list[str] | None = None,
    stamp: tuple[int, int] = (12, 345),
    frame_id: str = "base",
    durations: list[tuple[int, int]] | None = None,
    extras: list[tuple[int, int, int]] | None = None,
) -> JointTrajectory:
    """A JointTrajectory with positions (P, J); ``extras`` per point: how many velocities,
    accelerations and efforts it carries (values derived from the index)."""
    positions = np.asarray(positions, dtype=float)
    num_points, num_joints = positions.shape
    msg = JointTrajectory()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    msg.joint_names = names if names is not None else [f"j{i}" for i in range(num_joints)]
    for k in range(num_points):
        sec, nanosec = durations[k] if durations else divmod(k * 50_000_000, 1_000_000_000)
        point = JointTrajectoryPoint(
            positions=positions[k].tolist(), time_from_start=Duration(sec=sec, nanosec=nanosec)
        )
        if extras:
            nv, na, ne = extras[k]
            point.velocities = [k + 0.5] * nv
            point.accelerations = [-k - 0.25] * na
            point.effort = [1e3 + k] * ne
        msg.points.append(point)
    return msg


class _Writer:
    """CDR writer (alignment relative to the byte after the encapsulation header)."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.body = bytearray()
        self.padding: list[int] = []  # body offsets of padding bytes

    def align(self, n: int) -> None:
        while len(self.body) % n:
            self.padding.append(len(self.body))
            self.body.append(0)

    def put(self, fmt: str, *values) -> None:
        self.align(struct.calcsize(fmt.lstrip("0123456789")[0]))
        self.body += struct.pack(self.order + fmt, *values)

    def string(self, text: str) -> None:
        data = text.encode("utf-8") + b"\x00"
        self.put("I", len(data))
        self.body += data

    def doubles(self, values) -> None:
        self.put("I", len(values))
        if len(values):
            self.put(f"{len(values)}d", *values)


def encode(msg: JointTrajectory, order: str = "<") -> tuple[bytes, list[int]]:
    """XCDR1 bytes of ``msg`` in byte order ``order``, and the raw offsets of padding bytes."""
    w = _Writer(order)
    w.put("iI", msg.header.stamp.sec, msg.header.stamp.nanosec)
    w.string(msg.header.frame_id)
    w.put("I", len(msg.joint_names))
    for name in msg.joint_names:
        w.string(name)
    w.put("I", len(msg.points))
    for p in msg.points:
        for values in (p.positions, p.velocities, p.accelerations, p.effort):
            w.doubles(list(values))
        w.put("iI", p.time_from_start.sec, p.time_from_start.nanosec)
    header = b"\x00\x01\x00\x00" if order == "<" else b"\x00\x00\x00\x00"
    return header + bytes(w.body), [4 + i for i in w.padding]


def assert_matches(chunk: tw.WireChunk, msg: JointTrajectory) -> None:
    num_joints = len(msg.joint_names)
    assert chunk.joint_names == tuple(msg.joint_names)
    assert chunk.stamp_sec == msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    expected = np.array([list(p.positions) for p in msg.points], dtype=float)
    expected = expected.reshape(len(msg.points), num_joints)
    assert chunk.positions.shape == expected.shape
    assert chunk.positions.dtype == np.float64 and chunk.positions.dtype.isnative
    np.testing.assert_array_equal(chunk.positions, expected)
    offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_array_equal(chunk.offsets, np.array(offsets, dtype=float))
    assert chunk.num_points == len(msg.points)


def _align(o: int, n: int) -> int:
    return (o + n - 1) // n * n


def points_count_at(raw: bytes) -> int:
    """Raw offset of the points count of a little-endian message (walks header and names)."""
    body = raw[4:]
    o = 8  # stamp
    (n,) = struct.unpack_from("<I", body, o)
    o = _align(o + 4 + n, 4)  # frame_id
    (count,) = struct.unpack_from("<I", body, o)
    o += 4
    for _ in range(count):
        o = _align(o, 4)
        (n,) = struct.unpack_from("<I", body, o)
        o += 4 + n
    return 4 + _align(o, 4)


def sequence_counts_at(raw: bytes) -> list[list[int]]:
    """Raw offsets of the four sequence counts of every point of a little-endian message."""
    body = raw[4:]
    o = points_count_at(raw) - 4
    (count,) = struct.unpack_from("<I", body, o)
    o += 4
    points = []
    for _ in range(count):
        fields = []
        for _ in range(4):
            o = _align(o, 4)
            fields.append(4 + o)
            (n,) = struct.unpack_from("<I", body, o)
            o += 4
            if n:
                o = _align(o, 8) + 8 * n
        o = _align(o, 4) + 8
        points.append(fields)
    return points


def _reject(raw, key: str = "bad_message", **kw) -> WireError:
    kw.setdefault("max_points", 100_000)
    with pytest.raises(WireError) as info:
        decode_chunk(raw, **kw)
    assert info.value.key == key, info.value
    assert isinstance(info.value, ValueError)
    return info.value


# -- cross-checks against rclpy ------------------------------------------------------------------


SHAPES = [(0, 0), (0, 7), (1, 1), (2, 7), (3, 0), (7, 6), (100, 7), (1000, 3), (64, 1), (5, 64)]


@pytest.mark.parametrize("num_points,num_joints", SHAPES)
def test_decode_matches_rclpy(num_points, num_joints):
    rng = np.random.default_rng(num_points * 100 + num_joints)
    msg = make_msg(rng.normal(size=(num_points, num_joints)))
    raw = serialize_message(msg)
    assert_matches(decode_chunk(raw, max_points=10_000), msg)
    assert point_count(raw) == num_points
    # bytes, bytearray and memoryview alike
    assert_matches(decode_chunk(memoryview(bytearray(raw)), max_points=10_000), msg)


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "wörld_frame"])
@pytest.mark.parametrize("extras", [None, (1, 0, 0), (0, 0, 3), (7, 7, 7), (2, 1, 0)])
def test_alignment_variants_match_rclpy(frame_id, extras):
    # The frame_id length and the skipped sequences move every later field by 0..7 bytes.
    rng = np.random.default_rng(len(frame_id))
    positions = rng.normal(size=(9, 5))
    msg = make_msg(positions, frame_id=frame_id, extras=[extras] * 9 if extras else None)
    assert_matches(decode_chunk(serialize_message(msg), max_points=100), msg)


def test_points_of_differing_layouts_match_rclpy():
    # Only some points carry velocities etc.: the uniform fast path must notice and fall back.
    positions = np.arange(40.0).reshape(10, 4)
    extras = [(0, 0, 0)] * 9 + [(4, 0, 0)]
    for variant in (extras, extras[::-1], [(k % 3, k % 2, 0) for k in range(10)]):
        msg = make_msg(positions, extras=variant)
        assert_matches(decode_chunk(serialize_message(msg), max_points=100), msg)


def test_extreme_stamps_and_durations_match_rclpy():
    positions = np.array([[math.pi, -0.0], [1e308, -1e-308], [np.inf, np.nan], [0.0, 5e-324]])
    durations = [(0, 0), (-(2**31), 999_999_999), (2**31 - 1, 2**32 - 1), (-1, 1)]
    msg = make_msg(positions, stamp=(-(2**31), 2**32 - 1), durations=durations)
    chunk = decode_chunk(serialize_message(msg), max_points=10)
    np.testing.assert_array_equal(chunk.positions, positions)  # nan == nan here, bit-exact
    offsets = [s + n * 1e-9 for s, n in durations]
    np.testing.assert_array_equal(chunk.offsets, offsets)
    assert chunk.stamp_sec == -(2**31) + (2**32 - 1) * 1e-9


def test_result_arrays_read_only():
    chunk = decode_chunk(serialize_message(make_msg(np.ones((3, 2)))), max_points=10)
    with pytest.raises(ValueError):
        chunk.positions[0, 0] = 2.0
    with pytest.raises(ValueError):
        chunk.offsets[0] = 2.0


def test_trailing_bytes_ignored():
    # serialize_message itself returns a buffer longer than the data (estimated size).
    msg = make_msg(np.ones((3, 2)))
    exact, _ = encode(msg)
    assert len(serialize_message(msg)) >= len(exact)
    assert_matches(decode_chunk(exact + b"\xff" * 13, max_points=10), msg)


def test_encoder_reproduces_rclpy_bytes_and_rclpy_reads_big_endian():
    msg = make_msg(
        np.arange(12.0).reshape(4, 3),
        names=["a", "bé", "ccc"],
        frame_id="xy",
        extras=[(1, 0, 2), (0, 0, 0), (3, 3, 3), (0, 1, 0)],
    )
    _check_encoder(msg)


def _check_encoder(msg: JointTrajectory) -> None:
    ours, padding = encode(msg, "<")
    theirs = serialize_message(msg)
    assert len(theirs) >= len(ours)
    mask = np.ones(len(ours), dtype=bool)
    mask[padding] = False
    a = np.frombuffer(ours, dtype=np.uint8)
    b = np.frombuffer(theirs[: len(ours)], dtype=np.uint8)
    np.testing.assert_array_equal(a[mask], b[mask])
    big, _ = encode(msg, ">")
    assert deserialize_message(big, JointTrajectory) == msg
    assert deserialize_message(ours, JointTrajectory) == msg


@pytest.mark.parametrize("num_points,num_joints", SHAPES)
def test_big_endian_decodes_like_little_endian(num_points, num_joints):
    rng = np.random.default_rng(7 + num_points)
    msg = make_msg(rng.normal(size=(num_points, num_joints)), frame_id="odd")
    big, _ = encode(msg, ">")
    chunk = decode_chunk(big, max_points=10_000)
    assert_matches(chunk, msg)
    assert point_count(big) == num_points


# -- property tests ------------------------------------------------------------------------------

names_st = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=0,
    max_size=12,
)
finite = st.floats(allow_nan=False, width=64)


@st.composite
def trajectories(draw):
    num_joints = draw(st.integers(0, 9))
    num_points = draw(st.integers(0, 25))
    names = draw(st.lists(names_st, min_size=num_joints, max_size=num_joints))
    values = draw(
        st.lists(finite, min_size=num_points * num_joints, max_size=num_points * num_joints)
    )
    positions = np.array(values, dtype=float).reshape(num_points, num_joints)
    stamp = (draw(st.integers(-(2**31), 2**31 - 1)), draw(st.integers(0, 2**32 - 1)))
    duration = st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1))
    durations = draw(st.lists(duration, min_size=num_points, max_size=num_points))
    extra = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4))
    if draw(st.booleans()):
        extras = [draw(extra)] * num_points  # uniform layout (what producers send)
    else:
        extras = draw(st.lists(extra, min_size=num_points, max_size=num_points))
    frame_id = draw(names_st)
    return make_msg(positions, names, stamp, frame_id, durations, extras)


@fuzz_settings(150)
@given(msg=trajectories())
def test_property_decode_matches_rclpy_both_byte_orders(msg):
    raw = serialize_message(msg)
    assert_matches(decode_chunk(raw, max_points=100), msg)
    assert point_count(raw) == len(msg.points)
    _check_encoder(msg)
    big, _ = encode(msg, ">")
    assert_matches(decode_chunk(big, max_points=100), msg)
    # The walk (points of differing layouts) decodes exactly what the strided path decodes.
    prefix = tw._read_prefix(raw, 64, 256, True)
    if msg.points:
        fast = tw._decode_uniform(prefix, len(msg.points), len(msg.joint_names))
        slow = tw._decode_walk(prefix, len(msg.points), len(msg.joint_names))
        layouts = {
            (len(p.positions), len(p.velocities), len(p.accelerations), len(p.effort))
            for p in msg.points
        }
        # Points of one layout (what producers send) take the strided path.
        assert (fast is not None) == (len(layouts) == 1)
        if fast is not None:
            np.testing.assert_array_equal(fast[0], slow[0])
            np.testing.assert_array_equal(fast[1], slow[1])


@fuzz_settings(300)
@given(
    msg=trajectories(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_property_corrupted_bytes_only_raise_wire_error(msg, edits, cut):
    raw = bytearray(encode(msg, "<")[0])
    for at, value in edits:
        raw[at % len(raw)] = value
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    try:
        chunk = decode_chunk(bytes(raw), max_points=50, max_joints=16, max_name_len=40)
    except WireError as exc:
        assert exc.key in ("bad_message", "too_many_points")
    else:
        assert chunk.positions.shape == (chunk.offsets.shape[0], len(chunk.joint_names))
        assert chunk.offsets.shape[0] <= 50
    try:
        count = point_count(bytes(raw), max_joints=16, max_name_len=40)
    except WireError as exc:
        assert exc.key == "bad_message"
    else:
        assert count * 24 <= len(raw)


# -- rejections ----------------------------------------------------------------------------------


def test_truncated_chunk_rejected():
    msg = make_msg(np.arange(15.0).reshape(5, 3), extras=[(1, 0, 0)] * 5)
    raw, _ = encode(msg)
    assert_matches(decode_chunk(raw, max_points=10), msg)
    for cut in range(len(raw)):
        err = _reject(raw[:cut])
        assert "malformed" in str(err)


def _peak_allocation(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_lying_point_count_refused_without_allocation():
    raw, _ = encode(make_msg(np.ones((3, 7))))  # exact bytes: nothing after the last point
    raw = bytearray(raw)
    at = points_count_at(bytes(raw))
    assert struct.unpack_from("<I", raw, at)[0] == 3
    for lie in (4, 1000, 2**31, 2**32 - 1):
        struct.pack_into("<I", raw, at, lie)
        errors = []

        def refuse(data=bytes(raw), errors=errors):
            errors.append(_reject(data, max_points=2**32))
            with pytest.raises(WireError):
                point_count(data)

        peak = _peak_allocation(refuse)
        assert peak < 64 * 1024, f"lying count {lie}: peak {peak} bytes allocated"
        assert f"{lie} points" in str(errors[0]) and "bytes" in str(errors[0])


def test_lying_sequence_count_inside_a_point_refused_without_allocation():
    raw, _ = encode(make_msg(np.ones((4, 2))))
    fields = sequence_counts_at(raw)
    for which in (1, 2, 3):  # velocities, accelerations, effort of point 2
        for lie in (3, 2**29, 2**32 - 1):
            bad = bytearray(raw)
            struct.pack_into("<I", bad, fields[2][which], lie)
            errors = []
            peak = _peak_allocation(lambda b=bytes(bad), e=errors: e.append(_reject(b)))
            assert peak < 64 * 1024
            assert "point 2" in str(errors[0]) or "point 3" in str(errors[0]), errors[0]


def test_point_positions_count_mismatch_rejected():
    msg = make_msg(np.ones((6, 3)))
    msg.points[4].positions = [1.0, 2.0]
    err = _reject(serialize_message(msg))
    assert "point 4" in str(err) and "2 positions for 3 joint names" in str(err)
    msg.points[4].positions = [1.0, 2.0, 3.0, 4.0]
    err = _reject(serialize_message(msg))
    assert "point 4" in str(err)
    msg = make_msg(np.ones((6, 3)))
    msg.points[0].positions = []
    err = _reject(serialize_message(msg))
    assert "point 0" in str(err)


def test_oversized_chunk_refused_by_point_count():
    msg = make_msg(np.ones((5000, 7)))
    raw = serialize_message(msg)
    assert point_count(raw) == 5000
    err = _reject(raw, "too_many_points", max_points=1000)
    assert "5000" in str(err) and "1000" in str(err)
    # Refused before any point is read: garbage in every point changes nothing.
    at = points_count_at(raw)
    garbage = raw[: at + 4] + b"\xff" * (len(raw) - at - 4)
    assert point_count(garbage) == 5000
    _reject(garbage, "too_many_points", max_points=1000)
    _reject(raw, "too_many_points", max_points=4999)
    assert decode_chunk(raw, max_points=5000).num_points == 5000


def test_point_count_cost_does_not_grow_with_points():
    import time

    small = serialize_message(make_msg(np.ones((2, 7))))
    large = serialize_message(make_msg(np.ones((20_000, 7))))

    def best(raw: bytes) -> float:
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            point_count(raw)
            times.append(time.perf_counter() - t0)
        return min(times)

    assert best(large) < 10 * best(small) + 20e-6


def test_too_many_joints_rejected():
    msg = make_msg(np.ones((2, 9)))
    raw = serialize_message(msg)
    err = _reject(raw, max_joints=8)
    assert "9 joint names" in str(err)
    with pytest.raises(WireError):
        point_count(raw, max_joints=8)
    assert_matches(decode_chunk(raw, max_points=10, max_joints=9), msg)


def test_lying_name_count_refused():
    raw = bytearray(serialize_message(make_msg(np.ones((2, 2)))))
    at = 4 + 8 + 4 + 8  # after stamp, frame_id "base\0" (len 5, padded to 8)
    assert struct.unpack_from("<I", raw, at)[0] == 2
    struct.pack_into("<I", raw, at, 60)
    err = _reject(bytes(raw), max_joints=64)
    assert "60 joint names" in str(err)
    struct.pack_into("<I", raw, at, 2**32 - 1)
    _reject(bytes(raw), max_joints=2**32)


def test_string_length_past_end_rejected():
    raw = bytearray(serialize_message(make_msg(np.ones((2, 2)))))
    name_len_at = 4 + 8 + 4 + 8 + 4
    struct.pack_into("<I", raw, name_len_at, 2**31)
    err = _reject(bytes(raw))
    assert "joint_names[0]" in str(err) and "past the end" in str(err)
    raw = bytearray(serialize_message(make_msg(np.ones((2, 2)))))
    struct.pack_into("<I", raw, 4 + 8, 2**32 - 1)  # frame_id length
    err = _reject(bytes(raw))
    assert "frame_id" in str(err)


def test_name_too_long_rejected():
    msg = make_msg(np.ones((2, 2)), names=["a" * 300, "b"])
    err = _reject(serialize_message(msg))
    assert "300 bytes" in str(err)
    assert_matches(decode_chunk(serialize_message(msg), max_points=5, max_name_len=300), msg)
    # the bound is in UTF-8 bytes, inclusive
    msg = make_msg(np.ones((2, 2)), names=["é" * 5, "b"])  # 10 bytes
    assert_matches(decode_chunk(serialize_message(msg), max_points=5, max_name_len=10), msg)
    assert "10 bytes" in str(_reject(serialize_message(msg), max_name_len=9))


def test_non_utf8_name_rejected():
    raw = bytearray(serialize_message(make_msg(np.ones((2, 2)), names=["ab", "cd"])))
    at = raw.index(b"cd\x00")
    raw[at] = 0xFF
    err = _reject(bytes(raw))
    assert "joint_names[1]" in str(err) and "UTF-8" in str(err)


def test_name_without_terminating_nul_or_with_inner_nul_rejected():
    raw = bytearray(serialize_message(make_msg(np.ones((2, 2)), names=["ab", "cd"])))
    at = raw.index(b"cd\x00")
    raw[at + 2] = ord("e")
    assert "NUL" in str(_reject(bytes(raw)))
    raw[at + 2] = 0
    raw[at + 1] = 0
    assert "NUL" in str(_reject(bytes(raw)))


@pytest.mark.parametrize(
    "header", [b"", b"\x00", b"\x00\x01\x00", b"\x00\x07\x00\x00", b"\x00\x03\x00\x00", b"\x01"]
)
def test_unsupported_or_missing_encapsulation_rejected(header):
    raw = serialize_message(make_msg(np.ones((2, 2))))
    err = _reject(header + raw[len(header) :] if len(header) == 4 else header)
    assert "encapsulation" in str(err)


def test_module_does_not_import_rclpy():
    code = (
        "import sys, robot_policy_ros.core.trajectory_wire as t; "
        "assert not [m for m in sys.modules if m.startswith('rclpy')], 'rclpy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_exception_but_wire_error_for_random_small_inputs():
    rng = np.random.default_rng(3)
    for size in range(0, 200):
        for _ in range(5):
            raw = b"\x00\x01\x00\x00" + rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
            with contextlib.suppress(WireError):
                decode_chunk(raw, max_points=1000)
