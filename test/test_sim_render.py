"""Sim renderer: size, encoding, determinism, and that target and arm show in the image."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy_ros.sim.arm import ArmKinematics, load_arm_config
from robot_policy_ros.sim.render import TARGET, Renderer
from robot_policy_ros.sim.task import sample_target

CFG = load_arm_config()


@pytest.fixture(scope="module")
def front() -> Renderer:
    return Renderer(CFG, CFG.cameras["front"], 640, 480)


def test_render_is_rgb_uint8_of_the_declared_size(front):
    img = front.render(CFG.home, sample_target(0, 0, CFG.workspace))
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert img.flags["C_CONTIGUOUS"]


def test_render_is_deterministic(front):
    target = sample_target(0, 1, CFG.workspace)
    a = front.render(CFG.home, target)
    b = Renderer(CFG, CFG.cameras["front"], 640, 480).render(CFG.home, target)
    np.testing.assert_array_equal(a, b)


def test_render_into_a_buffer_matches_a_fresh_render(front):
    target = sample_target(0, 2, CFG.workspace)
    buf = np.zeros((480, 640, 3), np.uint8)
    out = front.render(CFG.home, target, out=buf)
    assert out is buf
    np.testing.assert_array_equal(buf, front.render(CFG.home, target))


@pytest.mark.parametrize("view", ["front", "top"])
def test_target_disc_is_drawn_where_it_projects(view):
    r = Renderer(CFG, CFG.cameras[view], 640, 480)
    for k in range(10):
        target = sample_target(2, k, CFG.workspace)
        # Arm straight up, out of the way of the target.
        img = r.render(np.zeros(4), target)
        uv, _ = r.camera.project(target[None])
        u, v = np.round(uv[0]).astype(int)
        assert 0 <= u < 640 and 0 <= v < 480
        np.testing.assert_array_equal(img[v, u], TARGET)


def test_whole_workspace_is_in_the_front_view(front):
    ws = CFG.workspace
    for radius in ws.radius_m:
        for yaw in np.linspace(*ws.yaw_rad, 5):
            p = np.array([[radius * np.cos(yaw), radius * np.sin(yaw), 0.0]])
            uv, depth = front.camera.project(p)
            assert depth[0] > 0
            assert 20 <= uv[0, 0] <= 620 and 20 <= uv[0, 1] <= 460


def test_arm_pose_changes_the_image_around_the_tip(front):
    target = sample_target(0, 0, CFG.workspace)
    q2 = CFG.home + np.array([0.6, 0.3, -0.2, 0.0])
    a = front.render(CFG.home, target)
    b = front.render(q2, target)
    uv, _ = front.camera.project(ArmKinematics(CFG).tip(q2)[None])
    u, v = np.round(uv[0]).astype(int)
    patch = (slice(v - 3, v + 4), slice(u - 3, u + 4))
    assert np.abs(a[patch].astype(int) - b[patch].astype(int)).sum() > 0


def test_small_render_shows_the_target(front):
    small = Renderer(CFG, CFG.cameras["front"], 96, 96)
    target = sample_target(0, 3, CFG.workspace)
    img = small.render(np.zeros(4), target)
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red.sum() >= 4  # a few pixels even at 96x96


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="too small"):
        Renderer(CFG, CFG.cameras["front"], 4, 4)
