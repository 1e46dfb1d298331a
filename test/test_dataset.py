"""Dataset: batch format, observation history, frame cache, splits, statistics and limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import robot_policy_ros.data.dataset as dataset_mod
from robot_policy_ros.data.bag_reader import find_bags
from robot_policy_ros.data.dataset import (
    DatasetConfig,
    DemonstrationDataset,
    load_episodes,
    normalization_from_episodes,
    split_episodes,
)
from robot_policy_ros.data.stats import estimate_limits
from robot_policy_ros.data.synthetic import (
    SyntheticEpisode,
    write_synthetic_dataset,
    write_synthetic_episode,
)

SPEC = SyntheticEpisode(
    duration_s=1.0, cameras=("front", "wrist"), image_hw=(24, 32), motion="reach"
)
DELTAS = tuple(range(-1, 6))


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("demos")
    write_synthetic_dataset(root, 4, SPEC)
    return find_bags([root])


def _config(cache: Path, **kw) -> DatasetConfig:
    base = {
        "image_size": (16, 16),
        "fps": 10.0,
        "action_delta_indices": DELTAS,
        "observation_delta_indices": (-1, 0),
        "cache_dir": str(cache),
    }
    base.update(kw)
    return DatasetConfig(**base)


def test_samples_follow_the_training_batch_contract(bags, tmp_path: Path) -> None:
    episodes, report = load_episodes(bags, _config(tmp_path))
    assert report.episodes == 4 and not report.failed
    ds = DemonstrationDataset(episodes, (-1, 0), fps=10.0)
    assert len(ds) == report.samples == sum(len(e) for e in episodes)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5, shuffle=True)))
    assert set(batch["images"]) == {"front", "wrist"}
    for img in batch["images"].values():
        assert img.shape == (5, 2, 3, 16, 16) and img.dtype == torch.float32
        assert img.min() >= 0.0 and img.max() <= 1.0
    assert batch["state"].shape == (5, 2, 3) and batch["state"].dtype == torch.float32
    assert batch["action"].shape == (5, len(DELTAS), 3)
    assert batch["action_is_pad"].shape == (5, len(DELTAS))
    assert batch["action_is_pad"].dtype == torch.bool


def test_observation_history_uses_earlier_frames_clamped_at_episode_start(
    bags, tmp_path: Path
) -> None:
    episodes, _ = load_episodes(bags[:1], _config(tmp_path))
    ep = episodes[0]
    ds = DemonstrationDataset(episodes, (-1, 0), fps=10.0)
    first = ds[0]
    torch.testing.assert_close(first["state"][0], first["state"][1])  # clamped
    k = 12
    sample = ds[k]
    t = ep.aligned.times
    prev = int(np.argmin(np.abs(t - (t[k] - 0.1))))
    np.testing.assert_allclose(sample["state"][0].numpy(), ep.aligned.state[prev], rtol=1e-6)
    np.testing.assert_allclose(sample["state"][1].numpy(), ep.aligned.state[k], rtol=1e-6)
    frame = ep.frames["front"][ep.aligned.frame_indices["front"][prev]]
    expected = torch.from_numpy(frame.transpose(2, 0, 1).astype(np.float32) / 255.0)
    torch.testing.assert_close(sample["images"]["front"][0], expected)


def test_second_load_reads_the_frame_cache_not_the_bags(bags, tmp_path: Path, monkeypatch) -> None:
    cfg = _config(tmp_path)
    first, report1 = load_episodes(bags, cfg)
    assert report1.cache_hits == 0

    def no_bag_reading(*args, **kwargs):
        raise AssertionError("the bag was read again")

    monkeypatch.setattr(dataset_mod, "read_episode", no_bag_reading)
    second, report2 = load_episodes(bags, cfg)
    assert report2.cache_hits == 4 and not report2.failed
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.frames["front"], b.frames["front"])
        np.testing.assert_array_equal(a.aligned.action, b.aligned.action)
    # Another image size is another cache entry: the bags must be read.
    _, report3 = load_episodes(bags, _config(tmp_path, image_size=(8, 8)))
    assert len(report3.failed) == 4


def test_validation_split_is_by_whole_episode_and_seeded(bags, tmp_path: Path) -> None:
    episodes, _ = load_episodes(bags, _config(tmp_path))
    train, val = split_episodes(episodes, 0.25, seed=3)
    assert len(train) == 3 and len(val) == 1
    assert not {e.index for e in train} & {e.index for e in val}
    again, _ = split_episodes(episodes, 0.25, seed=3)
    assert [e.index for e in again] == [e.index for e in train]
    only_train, none = split_episodes(episodes[:1], 0.5, seed=0)
    assert len(only_train) == 1 and none == []


def test_bag_without_commands_is_reported_and_skipped(tmp_path: Path, bags) -> None:
    spec = SyntheticEpisode(duration_s=0.5, image_hw=(8, 8), command_rate_hz=0.0)
    write_synthetic_episode(tmp_path / "no_commands", spec, seed=1)
    episodes, report = load_episodes(
        [bags[0], tmp_path / "no_commands"], _config(tmp_path / "c", cameras=("front",))
    )
    assert len(episodes) == 1
    assert "no_commands" in next(iter(report.failed))
    assert report.skipped["no_commands"] > 0


def test_normalization_statistics_ignore_padding(bags, tmp_path: Path) -> None:
    episodes, _ = load_episodes(bags, _config(tmp_path))
    stats = normalization_from_episodes(episodes)
    states = np.concatenate([e.aligned.state for e in episodes])
    actions = np.concatenate([e.aligned.action[~e.aligned.action_is_pad] for e in episodes])
    np.testing.assert_allclose(stats["state"]["mean"], states.mean(0))
    np.testing.assert_allclose(stats["action"]["std"], actions.std(0))
    np.testing.assert_allclose(stats["action"]["max"], actions.max(0))


def test_limits_widen_the_demonstrated_range_and_respect_the_robot() -> None:
    t = np.linspace(0.0, 1.0, 101)
    q = np.stack([t, -2.0 * t], axis=1)  # speeds 1 and 2 rad/s
    lim = estimate_limits(["a", "b"], [q], [t])
    np.testing.assert_allclose(lim.lower, [0 - 0.05 * 1 - 0.05, -2 - 0.05 * 2 - 0.05])
    np.testing.assert_allclose(lim.upper, [1 + 0.1, 0 + 0.15])
    np.testing.assert_allclose(lim.max_velocity, [1.5, 3.0])
    robot = {
        "joints": [
            {"name": "b", "lower": -2.05, "upper": 3.0, "max_velocity": 2.5},
            {"name": "a", "lower": -3.0, "upper": 1.02, "max_velocity": 9.0},
        ]
    }
    lim = estimate_limits(["a", "b"], [q], [t], robot_limits=robot, max_velocity=4.0)
    np.testing.assert_allclose(lim.lower, [-0.1, -2.05])
    np.testing.assert_allclose(lim.upper, [1.02, 0.15])
    np.testing.assert_allclose(lim.max_velocity, [4.0, 2.5])
    assert lim.names == ("a", "b") and lim.max_acceleration is None


def test_limits_estimate_is_the_one_limits_type_with_the_given_margins() -> None:
    """The only estimator from demonstrations: a JointLimits named by the joints (what the
    checkpoint stores), with margins as asked (here 10% of the range, nothing absolute)."""
    from robot_policy_ros.core.joint_limits import JointLimits

    pos = np.array([[0.0, 1.0], [0.5, 1.0], [1.0, 1.2]])
    t = np.arange(3) / 10.0
    lim = estimate_limits(
        ["a", "b"], [pos], [t], margin_frac=0.1, margin_abs=0.0, velocity_margin=2.0
    )
    assert isinstance(lim, JointLimits) and lim.names == ("a", "b")
    np.testing.assert_allclose(lim.lower, [-0.1, 1.0 - 0.02])
    np.testing.assert_allclose(lim.upper, [1.1, 1.2 + 0.02])
    np.testing.assert_allclose(lim.max_velocity, [10.0, 4.0])
    assert JointLimits.from_columns(lim.names, lim.to_columns()) == lim


def test_robot_limits_are_read_by_joint_limits_in_any_form() -> None:
    from robot_policy_ros.core.joint_limits import JointLimits

    t = np.linspace(0.0, 1.0, 101)
    q = np.stack([t, -2.0 * t], axis=1)
    joints = [
        {"name": "b", "lower": -2.05, "upper": 3.0, "max_velocity": 2.5, "max_acceleration": None},
        {"name": "a", "lower": -3.0, "upper": 1.02, "max_velocity": 9.0, "max_acceleration": None},
    ]
    by_name = estimate_limits(["a", "b"], [q], [t], robot_limits={"joints": joints})
    robot = JointLimits.from_dict({"joints": joints})
    assert estimate_limits(["a", "b"], [q], [t], robot_limits=robot) == by_name
    assert by_name.max_acceleration is None  # the robot gives none: none is invented
    columns = robot.reorder(["a", "b"]).to_dict()["joints"]
    columns = {k: [j[k] for j in columns] for k in ("lower", "upper", "max_velocity")}
    assert estimate_limits(["a", "b"], [q], [t], robot_limits=columns) == by_name
    np.testing.assert_allclose(by_name.upper, [1.02, 0.15])
    np.testing.assert_allclose(by_name.max_velocity, [1.5, 2.5])
    # The JointLimits rules, not "a missing limit is unbounded".
    del joints[0]["max_velocity"]
    with pytest.raises(ValueError, match=r"joint 'b' lacks \['max_velocity'\]"):
        estimate_limits(["a", "b"], [q], [t], robot_limits={"joints": joints})
    with pytest.raises(KeyError, match=r"\['c'\]"):
        estimate_limits(["a", "c"], [q], [t], robot_limits=robot)


def test_limits_carry_the_robots_acceleration_limit() -> None:
    """Demonstrations bound positions and speeds, not accelerations: the robot's acceleration
    limit goes into the checkpoint, so the streamer never outruns what the arm can follow."""
    t = np.linspace(0.0, 1.0, 101)
    q = np.stack([t, -2.0 * t], axis=1)
    robot = {
        "joints": [
            {"name": "b", "lower": -3, "upper": 3, "max_velocity": 2.5, "max_acceleration": 10},
            {"name": "a", "lower": -3, "upper": 3, "max_velocity": 9.0, "max_acceleration": 8},
        ]
    }
    lim = estimate_limits(["a", "b"], [q], [t], robot_limits=robot)
    np.testing.assert_allclose(lim.max_acceleration, [8.0, 10.0])
    assert estimate_limits(["a", "b"], [q], [t]).max_acceleration is None


def test_velocity_estimate_ignores_a_reset_jump_faster_than_the_robot() -> None:
    # A sim that snaps home on reset leaves the last pre-reset joint state at the start of
    # the next episode's bag: a 1 rad jump in 10 ms (100 rad/s) that no joint made.
    t = np.arange(0.0, 1.0, 0.01)
    q = np.stack([0.5 * t, -1.0 * t], axis=1)  # real motion: 0.5 and 1.0 rad/s
    q[0] = [1.0, 1.0]
    robot = {
        "joints": [
            {"name": "a", "lower": -3.0, "upper": 3.0, "max_velocity": 2.0},
            {"name": "b", "lower": -3.0, "upper": 3.0, "max_velocity": 2.0},
        ]
    }
    lim = estimate_limits(["a", "b"], [q], [t], robot_limits=robot)
    np.testing.assert_allclose(lim.max_velocity, [0.75, 1.5])
    # Without robot limits nothing tells a jump from motion: capped by nothing.
    assert min(estimate_limits(["a", "b"], [q], [t]).max_velocity) > 50.0


def test_random_shift_augmentation_keeps_shape_and_moves_content(bags, tmp_path: Path) -> None:
    episodes, _ = load_episodes(bags[:1], _config(tmp_path))
    plain = DemonstrationDataset(episodes, (0,), fps=10.0)
    shifted = DemonstrationDataset(episodes, (0,), fps=10.0, shift_px=3, seed=1)
    moved = 0
    for i in range(10):
        a, b = plain[i]["images"]["front"], shifted[i]["images"]["front"]
        assert a.shape == b.shape == (1, 3, 16, 16)
        moved += int(not torch.equal(a, b))
        torch.testing.assert_close(plain[i]["action"], shifted[i]["action"])
    assert moved >= 5


def test_parallel_decoding_fills_the_same_cache(bags, tmp_path: Path, monkeypatch) -> None:
    cfg = _config(tmp_path, cameras=("front", "wrist"), joint_names=SPEC.joint_names)
    assert dataset_mod.warm_cache(bags, cfg, workers=2) == 4
    assert dataset_mod.warm_cache(bags, cfg, workers=2) == 0  # all cached now

    def no_bag_reading(*args, **kwargs):
        raise AssertionError("the bag was read again")

    monkeypatch.setattr(dataset_mod, "read_episode", no_bag_reading)
    episodes, report = load_episodes(bags, cfg, decode_workers=2)
    assert report.cache_hits == 4 and len(episodes) == 4
