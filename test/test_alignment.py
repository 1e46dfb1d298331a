"""Alignment of frames, joint states and commands, on synthetic bags with known timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_policy_ros.data.alignment import AlignConfig, align_episode, interpolate
from robot_policy_ros.data.bag_reader import (
    BagReadError,
    TopicConfig,
    _trajectory_points,
    camera_name_for_topic,
    decode_image,
    find_bags,
    read_episode,
    topic_matches,
)
from robot_policy_ros.data.synthetic import (
    SyntheticEpisode,
    joint_positions_linear,
    write_synthetic_episode,
)

FPS = 10.0
DELTAS = tuple(range(-1, 8))
SPEC = SyntheticEpisode(duration_s=1.5, cameras=("front",), image_hw=(12, 16))


def _aligned(path: Path, source: str = "commands", spec: SyntheticEpisode = SPEC):
    rec = read_episode(path)
    cfg = AlignConfig(fps=FPS, action_delta_indices=DELTAS, action_source=source)
    stamps = {c: s.stamps for c, s in rec.cameras.items()}
    al = align_episode(
        stamps,
        rec.joint_stamps,
        rec.joint_positions,
        rec.command_times,
        rec.command_positions,
        cfg,
    )
    return rec, al


@pytest.fixture(scope="module")
def linear_bag(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("align") / "episode_000000"
    info = write_synthetic_episode(path, SPEC, seed=11)
    return path, info


def test_state_is_the_linear_interpolation_at_the_frame_stamp(linear_bag) -> None:
    path, info = linear_bag
    rec, al = _aligned(path)
    assert rec.joint_names == list(SPEC.joint_names)
    assert len(al) > 30
    expected = joint_positions_linear(al.times, SPEC, seed=11)
    np.testing.assert_allclose(al.state, expected, atol=1e-9)
    # Frame times are the camera's header stamps, not log times.
    gaps = np.abs(al.times[:, None] - info["camera_t"]["front"][None, :]).min(axis=1)
    assert gaps.max() < 1e-6


def test_command_times_come_from_log_times_mapped_onto_the_stamp_clock(linear_bag) -> None:
    path, info = linear_bag
    rec = read_episode(path)
    assert rec.command_source == "commands"
    np.testing.assert_allclose(rec.clock_fit, (1.0, SPEC.log_offset_s), atol=1e-6)
    np.testing.assert_allclose(rec.command_times, info["command_t"], atol=1e-6)


def test_action_targets_hold_the_latest_command(linear_bag) -> None:
    path, info = linear_bag
    _, al = _aligned(path)
    cmd_t, cmd_q = info["command_t"], info["command_q"]
    end = info["joint_t"][-1]
    for k, t in enumerate(al.times):
        for a, d in enumerate(DELTAS):
            tau = t + d / FPS
            if tau > end or tau < cmd_t[0]:
                assert al.action_is_pad[k, a]
                continue
            latest = max(i for i in range(len(cmd_t)) if cmd_t[i] <= tau)
            assert not al.action_is_pad[k, a]
            np.testing.assert_allclose(al.action[k, a], cmd_q[latest], atol=1e-9)


def test_measured_action_source_uses_future_joint_positions(linear_bag) -> None:
    path, info = linear_bag
    _, al = _aligned(path, source="measured")
    tau = al.times[:, None] + np.asarray(DELTAS)[None, :] / FPS
    expected = joint_positions_linear(tau.reshape(-1), SPEC, seed=11).reshape(*tau.shape, -1)
    valid = ~al.action_is_pad
    np.testing.assert_allclose(al.action[valid], expected[valid], atol=1e-9)
    assert np.array_equal(
        al.action_is_pad, (tau > info["joint_t"][-1]) | (tau < info["joint_t"][0])
    )


def test_targets_past_the_episode_end_are_padding_repeating_the_last(linear_bag) -> None:
    path, _ = linear_bag
    _, al = _aligned(path)
    last = len(al) - 1
    pad = al.action_is_pad[last]
    assert pad.any() and not pad[1]  # delta 0 is inside the episode
    last_valid = np.flatnonzero(~pad).max()
    for a in np.flatnonzero(pad):
        if a > last_valid:
            np.testing.assert_array_equal(al.action[last, a], al.action[last, last_valid])


def test_frames_without_joint_states_or_across_gaps_are_skipped_with_reasons() -> None:
    joint_t = np.concatenate([np.arange(0.0, 1.0, 0.01), np.arange(1.5, 2.0, 0.01)])
    joint_q = np.stack([joint_t, -joint_t], axis=1)
    frames = np.array([-0.1, 0.2, 0.5, 1.2, 1.3, 1.7, 2.5])
    cmd_t = np.array([0.0, 1.0])
    cmd_q = np.array([[0.0, 0.0], [1.0, -1.0]])
    cfg = AlignConfig(fps=10.0, action_delta_indices=(0, 1), max_state_gap_s=0.05)
    al = align_episode({"cam": frames}, joint_t, joint_q, cmd_t, cmd_q, cfg)
    np.testing.assert_allclose(al.times, [0.2, 0.5, 1.7])
    assert al.skipped == {"outside_joint_states": 2, "joint_state_gap": 2}
    assert al.num_frames == 7 and "kept 3/7" in al.skip_report()


def test_frames_before_the_first_command_are_skipped_and_earlier_targets_padded() -> None:
    joint_t = np.arange(0.0, 2.0, 0.01)
    joint_q = np.zeros((joint_t.size, 1))
    cmd_t = np.array([0.5, 0.9])
    cmd_q = np.array([[1.0], [2.0]])
    cfg = AlignConfig(fps=10.0, action_delta_indices=(-2, -1, 0, 1, 2, 3, 4))
    al = align_episode({"cam": np.array([0.3, 0.55, 0.75])}, joint_t, joint_q, cmd_t, cmd_q, cfg)
    assert al.skipped == {"before_first_command": 1}
    # t=0.55: targets at 0.35 0.45 (pad: before the first command) 0.55 .. 0.95
    np.testing.assert_array_equal(
        al.action_is_pad[0], [True, True, False, False, False, False, False]
    )
    np.testing.assert_allclose(al.action[0, :, 0], [1, 1, 1, 1, 1, 1, 2])
    np.testing.assert_allclose(al.action[1, :, 0], [1, 1, 1, 1, 2, 2, 2])


def test_secondary_camera_uses_its_latest_frame_or_skips() -> None:
    joint_t = np.arange(0.0, 3.0, 0.01)
    joint_q = np.zeros((joint_t.size, 1))
    cfg = AlignConfig(fps=10.0, action_delta_indices=(0,), max_camera_lag_s=0.05)
    al = align_episode(
        {"a": np.array([1.0, 1.5, 2.0]), "b": np.array([0.99, 1.2, 1.98])},
        joint_t,
        joint_q,
        np.array([0.0]),
        np.array([[0.0]]),
        cfg,
    )
    np.testing.assert_allclose(al.times, [1.0, 2.0])
    np.testing.assert_array_equal(al.frame_indices["b"], [0, 2])
    assert al.skipped == {"camera_b_missing": 1}


def test_interpolate_is_exact_on_samples_and_flags_outside() -> None:
    t = np.array([0.0, 1.0, 3.0])
    v = np.array([[0.0], [10.0], [30.0]])
    out, inside, gap_ok = interpolate(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 4.0]), t, v, 1.5)
    np.testing.assert_allclose(out[1:5, 0], [0.0, 5.0, 10.0, 20.0])
    np.testing.assert_array_equal(inside, [False, True, True, True, True, False])
    np.testing.assert_array_equal(gap_ok[1:5], [True, True, True, False])


def test_large_clock_offset_between_stamps_and_log_times_is_removed(tmp_path: Path) -> None:
    spec = SyntheticEpisode(duration_s=1.0, image_hw=(8, 8), log_offset_s=0.75)
    info = write_synthetic_episode(tmp_path / "ep", spec, seed=2)
    rec = read_episode(tmp_path / "ep")
    np.testing.assert_allclose(rec.command_times, info["command_t"], atol=1e-6)


def test_sqlite3_bag_reads_the_same_as_mcap(tmp_path: Path) -> None:
    spec_sql = SyntheticEpisode(duration_s=0.5, image_hw=(8, 8), storage="sqlite3")
    spec_mcap = SyntheticEpisode(duration_s=0.5, image_hw=(8, 8))
    write_synthetic_episode(tmp_path / "a", spec_sql, seed=4)
    write_synthetic_episode(tmp_path / "b", spec_mcap, seed=4)
    a, b = read_episode(tmp_path / "a"), read_episode(tmp_path / "b")
    np.testing.assert_array_equal(a.joint_positions, b.joint_positions)
    np.testing.assert_array_equal(a.cameras["front"].frames, b.cameras["front"].frames)
    assert find_bags([tmp_path]) == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]


def test_frames_are_resized_once_at_read_time(linear_bag) -> None:
    path, _ = linear_bag
    rec = read_episode(path, image_size=(6, 10))
    assert rec.cameras["front"].frames.shape[1:] == (6, 10, 3)
    assert rec.cameras["front"].frames.dtype == np.uint8


class _Img:
    def __init__(self, enc: str, data: np.ndarray, h: int, w: int, step: int) -> None:
        self.encoding, self.height, self.width, self.step = enc, h, w, step
        self.data, self.is_bigendian = data.reshape(-1), 0


def test_decode_image_handles_common_encodings_and_row_padding() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(decode_image(_Img("rgb8", rgb, 2, 3, 9)), rgb)
    np.testing.assert_array_equal(decode_image(_Img("bgr8", rgb[:, :, ::-1].copy(), 2, 3, 9)), rgb)
    padded = np.zeros((2, 12), dtype=np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(decode_image(_Img("rgb8", padded, 2, 3, 12)), rgb)
    mono = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    out = decode_image(_Img("mono8", mono, 2, 3, 3))
    assert out.shape == (2, 3, 3) and np.array_equal(out[:, :, 1], mono)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_image(_Img("rgba8", rgba, 2, 3, 12)), rgb)
    with pytest.raises(BagReadError, match="not supported"):
        decode_image(_Img("yuv422", rgb, 2, 3, 9))


def test_topic_and_camera_names() -> None:
    assert topic_matches("/robot/joint_states", "joint_states")
    assert not topic_matches("/my_joint_states", "joint_states")
    assert camera_name_for_topic("/front/image_raw") == "front"
    assert camera_name_for_topic("/arm/wrist/image_raw/compressed") == "arm_wrist"
    assert TopicConfig().commands == "forward_position_controller/commands"


class _Stamp:
    def __init__(self, t: float) -> None:
        self.sec, self.nanosec = int(t), round((t - int(t)) * 1e9)


class _Point:
    def __init__(self, t: float, pos: list[float]) -> None:
        self.time_from_start, self.positions = _Stamp(t), pos


class _Traj:
    def __init__(self, stamp: float, points: list[tuple[float, list[float]]]) -> None:
        self.header = type("H", (), {"stamp": _Stamp(stamp)})()
        self.joint_names = ["b", "a"]
        self.points = [_Point(t, p) for t, p in points]


def test_a_new_trajectory_replaces_the_unreached_points_of_the_previous() -> None:
    order = {"a": 0, "b": 1}
    msgs = [
        (10.0, _Traj(10.0, [(0.1, [1.0, 2.0]), (0.2, [3.0, 4.0]), (0.3, [5.0, 6.0])])),
        (10.15, _Traj(10.15, [(0.1, [7.0, 8.0])])),
    ]
    times, points = _trajectory_points(msgs, order, lambda t: t)
    np.testing.assert_allclose(times, [10.1, 10.25])
    np.testing.assert_allclose(points, [[2.0, 1.0], [8.0, 7.0]])  # reordered to (a, b)


def test_named_camera_found_under_a_namespace():
    from robot_policy_ros.data.bag_reader import camera_topic_matches

    assert camera_topic_matches("/demo_arm/front/image_raw", "front")
    assert camera_topic_matches("/demo_arm/front/image_raw", "demo_arm_front")
    assert camera_topic_matches("/front/image_raw/compressed", "front")
    assert not camera_topic_matches("/demo_arm/wrist/image_raw", "front")
    assert not camera_topic_matches("/demo_arm/myfront/image_raw", "front")
