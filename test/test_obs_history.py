"""Observation history by stamp (robot_policy_ros.core.obs_history) and its use by Policy."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.core.obs_history import (
    ObservationHistory,
    StampedHistory,
    history_targets,
)


def test_targets_are_one_over_fps_apart_oldest_first():
    np.testing.assert_allclose(history_targets(5.0, 3, 10.0), [4.8, 4.9, 5.0])
    assert history_targets(5.0, 1, 10.0) == [5.0]


def test_pick_nearest_to_target_not_after_current():
    h = StampedHistory(3, 10.0)
    for i in range(30):  # a 30 Hz camera
        h.add(i / 30.0, i)
    # target 0.5 - 0.1 = 0.4 -> frame 12 (0.4 s); never newer than not_after
    assert h.pick(0.4, not_after=0.5).payload == 12
    assert h.pick(0.41, not_after=0.5).payload == 12
    assert h.pick(0.49, not_after=0.45).stamp <= 0.45


def test_tie_goes_to_the_older_entry():
    h = StampedHistory(2, 10.0)
    h.add(1.0, "a")
    h.add(1.5, "b")
    assert h.pick(1.25, not_after=1.5).payload == "a"


def test_before_enough_history_pads_with_the_earliest_entry():
    h = ObservationHistory(["cam", "joint_states"], n_obs_steps=3, fps=10.0)
    h.add("cam", 2.0, "c0")
    h.add("joint_states", 2.0, "q0")
    frames = h.frames(2.0, {"cam": 2.0, "joint_states": 2.0})
    assert [f["cam"].payload for f in frames] == ["c0", "c0"]
    h.add("cam", 2.05, "c1")
    h.add("joint_states", 2.05, "q1")
    frames = h.frames(2.05, {"cam": 2.05, "joint_states": 2.05})
    assert [f["cam"].payload for f in frames] == ["c0", "c0"]  # 1.85, 1.95 -> nearest 2.0


def test_history_independent_of_how_often_frames_are_requested():
    """Frames picked at t-k/fps whatever the inference rate: the same at every call."""
    h = ObservationHistory(["cam", "joint_states"], n_obs_steps=3, fps=10.0)
    for i in range(200):
        t = i / 100.0
        h.add("joint_states", t, t)
        if i % 3 == 0:  # camera at ~33 Hz
            h.add("cam", t, t)
        if i > 60 and i % 3 == 0:
            frames = h.frames(t, {"cam": t, "joint_states": t})
            cams = [f["cam"].stamp for f in frames]  # within half a camera period of target
            np.testing.assert_allclose(cams, [t - 0.2, t - 0.1], atol=0.015 + 1e-9)
            joints = [f["joint_states"].stamp for f in frames]
            np.testing.assert_allclose(joints, [t - 0.2, t - 0.1], atol=0.005 + 1e-9)


def test_out_of_order_entry_ignored_and_clear_forgets():
    h = StampedHistory(2, 10.0)
    assert h.add(1.0, "a")
    assert not h.add(0.9, "old")
    assert h.out_of_order == 1
    assert h.add(1.0, "a2")  # same stamp replaces
    assert h.pick(1.0, 1.0).payload == "a2"
    h.clear()
    assert h.pick(1.0, 1.0) is None
    assert h.add(0.5, "after reset")  # a clock jump back: cleared first, then accepted


def test_pruned_to_what_targets_can_reach():
    h = StampedHistory(3, 10.0, keep_margin_s=0.1)
    for i in range(1000):
        h.add(i / 100.0, i)
    # span 0.2 s + margin 0.1 s at 100 Hz, plus the one entry at the horizon
    assert len(h) <= 32
    assert h.pick(9.99 - 0.2, 9.99).payload == 979


def test_bad_construction_refused():
    with pytest.raises(ValueError, match="fps"):
        StampedHistory(2, 0.0)
    with pytest.raises(ValueError, match="n_obs_steps"):
        StampedHistory(0, 10.0)


def test_policy_uses_given_history_instead_of_shifting():
    """Observation.history replaces the kept frames: oldest first, then the current one."""
    from robot_policy_ros.policies.base import Observation
    from robot_policy_ros.policies.factory import make_policy

    policy = make_policy(
        "diffusion",
        ["a", "b"],
        {"front": (16, 16)},
        10.0,
        seed=0,
        vision_backbone="tiny_cnn",
        backbone_width=4,
        horizon=8,
        n_action_steps=5,
        n_obs_steps=3,
        down_dims=(8, 16),
        n_groups=4,
        diffusion_step_embed_dim=8,
        spatial_softmax_num_keypoints=4,
        num_inference_steps=2,
    ).eval()

    def obs(v: int) -> Observation:
        return Observation(
            images={"front": np.full((16, 16, 3), v, np.uint8)},
            joint_positions=np.array([v / 100.0, -v / 100.0]),
            stamp=v,
        )

    policy.reset()
    policy.stage_observation(obs(50))  # something else kept before
    imgs, state = policy.stage_observation(
        Observation(**{**obs(3).__dict__, "history": [obs(1), obs(2)]})
    )
    assert [int(imgs["front"][i, 0, 0, 0]) for i in range(3)] == [1, 2, 3]
    np.testing.assert_allclose(state[:, 0], [0.01, 0.02, 0.03], rtol=1e-6)
    with pytest.raises(ValueError, match="n_obs_steps - 1 = 2"):
        policy.stage_observation(Observation(**{**obs(3).__dict__, "history": [obs(1)]}))
