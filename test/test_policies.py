"""Policy families: shapes and units, observation checks, overfitting a tiny batch.

Each family runs with tiny hyper-parameters (tiny_cnn backbone, small widths, 32x32 images)
so the suite stays fast; ResNet18 paths are exercised with random init at small image sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_policy_ros.checkpoint_config import JointLimitsSpec, NormalizationStats
from robot_policy_ros.policies.base import Observation, Policy
from robot_policy_ros.policies.factory import make_policy


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny models on a shared 2-core machine run far faster so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


JOINTS = ["j1", "j2", "j3", "j4"]
TINY = {
    "mlp": {"vision_backbone": "tiny_cnn", "backbone_width": 8, "hidden_dims": (64, 64)},
    "act": {
        "vision_backbone": "tiny_cnn",
        "backbone_width": 8,
        "chunk_size": 8,
        "d_model": 32,
        "n_heads": 2,
        "dim_feedforward": 64,
        "n_encoder_layers": 2,
        "n_vae_encoder_layers": 1,
        "latent_dim": 8,
        "dropout": 0.0,
    },
}


def tiny_policy(family: str, cameras=None, **kw) -> Policy:
    cams = cameras or {"front": (32, 32)}
    return make_policy(family, JOINTS, cams, fps=20.0, seed=0, **{**TINY[family], **kw})


def observation(policy: Policy, seed: int = 0, stamp: float = 0.0) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(
        images={
            n: rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for n, (h, w) in policy.image_shapes.items()
        },
        joint_positions=rng.uniform(-1, 1, policy.num_joints),
        stamp=stamp,
    )


def batch_for(policy: Policy, batch_size: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n_obs, n_act, j = policy.n_obs_steps, len(policy.action_delta_indices), policy.num_joints
    return {
        "images": {
            n: torch.rand(batch_size, n_obs, 3, h, w, generator=g)
            for n, (h, w) in policy.image_shapes.items()
        },
        "state": torch.rand(batch_size, n_obs, j, generator=g) * 2 - 1,
        "action": torch.rand(batch_size, n_act, j, generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(batch_size, n_act, dtype=torch.bool),
    }


# --- MLP -------------------------------------------------------------------------------------
def test_mlp_chunk_shape_dtype_and_description() -> None:
    p = tiny_policy("mlp", chunk_size=5).eval()
    out = p.predict_chunk(observation(p))
    assert out.shape == (5, 4) and out.dtype == np.float64
    assert p.chunk_size == 5 and p.n_obs_steps == 1 and p.fps == 20.0
    assert p.joint_names == JOINTS and p.camera_names == ["front"]
    assert p.image_shapes == {"front": (32, 32)}
    assert p.observation_delta_indices == [0]
    assert p.action_delta_indices == [0, 1, 2, 3, 4]


def test_mlp_default_chunk_is_ten() -> None:
    p = tiny_policy("mlp").eval()
    assert p.predict_chunk(observation(p)).shape == (10, 4)


def test_mlp_outputs_are_in_joint_units() -> None:
    """Zeroing the last layer gives the normalised mean, i.e. the action mean in joint units."""
    stats = NormalizationStats.from_data(
        np.zeros((2, 4)), np.array([[10.0, -5.0, 0.0, 100.0], [12.0, -7.0, 0.0, 300.0]])
    )
    p = tiny_policy("mlp", chunk_size=3)
    p.set_normalization(stats)
    with torch.no_grad():
        p.head[-1].weight.zero_()
        p.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0] * 3))
    out = p.eval().predict_chunk(observation(p))
    np.testing.assert_allclose(out[0], [11.0, -6.0, 0.0, 200.0 + 100.0], rtol=1e-6)


def test_mlp_separate_backbones_per_camera() -> None:
    cams = {"front": (32, 32), "wrist": (24, 40)}
    shared = tiny_policy("mlp", cameras=cams)
    separate = tiny_policy("mlp", cameras=cams, share_backbone=False)
    assert len(shared.backbones) == 1 and len(separate.backbones) == 2
    assert separate.eval().predict_chunk(observation(separate)).shape == (10, 4)


def test_resnet18_mlp_runs_at_small_image_size() -> None:
    p = make_policy("mlp", JOINTS, {"front": (64, 64)}, hidden_dims=(32,), seed=0).eval()
    assert p.predict_chunk(observation(p)).shape == (10, 4)
    assert 11_000_000 < p.num_parameters() < 12_000_000  # ResNet18 trunk ~11.2M


# --- ACT -------------------------------------------------------------------------------------
def test_act_defaults_follow_the_paper() -> None:
    from robot_policy_ros.checkpoint_config import CameraSpec
    from robot_policy_ros.policies.config import ACTConfig

    c = ACTConfig(joint_names=("a",), cameras=(CameraSpec("f", 64, 64),))
    assert (c.chunk_size, c.d_model, c.n_encoder_layers, c.n_decoder_layers) == (100, 512, 4, 1)
    assert (c.kl_weight, c.latent_dim, c.dim_feedforward, c.dropout) == (10.0, 32, 3200, 0.1)
    assert c.vision_backbone == "resnet18" and c.use_vae


def test_act_returns_whole_chunk_deterministically() -> None:
    p = tiny_policy("act", cameras={"front": (32, 32), "wrist": (24, 40)}).eval()
    obs = observation(p)
    a = p.predict_chunk(obs)
    assert a.shape == (8, 4) and a.dtype == np.float64
    np.testing.assert_array_equal(a, p.predict_chunk(obs))  # z = 0 at inference, no dropout
    assert p.action_delta_indices == list(range(8)) and p.observation_delta_indices == [0]


def test_act_resnet18_default_size_and_chunk() -> None:
    p = make_policy("act", JOINTS, {"front": (64, 64)}, seed=0, dim_feedforward=64).eval()
    assert p.predict_chunk(observation(p)).shape == (100, 4)
    # ResNet18 trunk + input projection + transformers of the paper's width
    assert p.config.d_model == 512 and p.num_parameters() > 20_000_000


def test_act_loss_has_l1_and_weighted_kl() -> None:
    p = tiny_policy("act", kl_weight=10.0).train()
    torch.manual_seed(0)
    loss, logs = p.compute_loss(batch_for(p))
    assert set(logs) == {"l1", "kl", "loss"}
    assert logs["kl"] > 0
    assert loss.item() == pytest.approx(logs["l1"] + 10.0 * logs["kl"], rel=1e-5)
    no_vae = tiny_policy("act", use_vae=False).train()
    _, logs = no_vae.compute_loss(batch_for(no_vae))
    assert logs["kl"] == 0.0 and logs["loss"] == pytest.approx(logs["l1"])


def test_act_padded_actions_do_not_change_the_loss() -> None:
    p = tiny_policy("act").train()
    batch = batch_for(p)
    batch["action_is_pad"][:, 5:] = True
    torch.manual_seed(1)
    loss_a, _ = p.compute_loss(batch)
    batch["action"][:, 5:] = 100.0  # garbage where padded: masked in the CVAE and the L1
    torch.manual_seed(1)
    loss_b, _ = p.compute_loss(batch)
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-6)


def test_act_2d_position_embedding_is_sinusoidal() -> None:
    from robot_policy_ros.policies.act import sinusoid_embedding_2d, sinusoid_table_1d

    emb = sinusoid_embedding_2d(3, 5, 8)
    assert emb.shape == (8, 3, 5)
    # channel 0 of the y half: sin(y * 2pi / h); channel 4 (x half start): sin(x * 2pi / w)
    ys = torch.arange(1, 4) / (3 + 1e-6) * 2 * torch.pi
    xs = torch.arange(1, 6) / (5 + 1e-6) * 2 * torch.pi
    torch.testing.assert_close(emb[0, :, 0], torch.sin(ys))
    torch.testing.assert_close(emb[4, 0, :], torch.sin(xs))
    torch.testing.assert_close(emb[1, :, 0], torch.cos(ys))
    table = sinusoid_table_1d(4, 6)
    torch.testing.assert_close(table[2, 0], torch.sin(torch.tensor(2.0)))
    torch.testing.assert_close(table[2, 1], torch.cos(torch.tensor(2.0)))


# --- shared behaviour ------------------------------------------------------------------------
FAMILIES = ["mlp", "act"]


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_image_shape_names_camera(family: str) -> None:
    p = tiny_policy(family).eval()
    obs = observation(p)
    obs.images["front"] = np.zeros((31, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"camera 'front': image shape \(31, 32, 3\)"):
        p.predict_chunk(obs)
    obs.images["front"] = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="camera 'front': image must be a uint8"):
        p.predict_chunk(obs)
    del obs.images["front"]
    with pytest.raises(ValueError, match="no image for camera 'front'"):
        p.predict_chunk(obs)


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_joint_positions_rejected(family: str) -> None:
    p = tiny_policy(family).eval()
    obs = observation(p)
    obs.joint_positions = np.zeros(3)
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        p.predict_chunk(obs)
    obs.joint_positions = np.array([0.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="not finite"):
        p.predict_chunk(obs)


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_in_training_mode_refused(family: str) -> None:
    p = tiny_policy(family).train()
    with pytest.raises(RuntimeError, match="eval"):
        p.predict_chunk(observation(p))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights(family: str) -> None:
    a, b = tiny_policy(family), tiny_policy(family)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("family", FAMILIES)
def test_random_init_default_stats_keep_actions_near_limits(family: str) -> None:
    limits = JointLimitsSpec.uniform(4, -1.0, 1.0, 1.0)
    p = make_policy(family, JOINTS, {"front": (32, 32)}, limits=limits, seed=0, **TINY[family])
    out = p.eval().predict_chunk(observation(p))
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 10.0


@pytest.mark.parametrize("family", FAMILIES)
def test_compute_loss_checks_batch_shapes(family: str) -> None:
    p = tiny_policy(family).train()
    batch = batch_for(p)
    batch["action"] = batch["action"][:, :-1]
    with pytest.raises(ValueError, match=r"batch\['action'\] has shape"):
        p.compute_loss(batch)
    batch = batch_for(p)
    del batch["images"]["front"]
    with pytest.raises(KeyError, match="front"):
        p.compute_loss(batch)


# Overfitting a tiny fixed batch: the training signal reaches every part of the model.
# "metric" is the reconstruction term (ACT's total loss also holds the KL term, which alone
# drops fast); it and the total loss must both fall by at least 90%.
OVERFIT = {
    "mlp": {"steps": 300, "lr": 3e-3, "metric": "mse", "overrides": {}},
    "act": {"steps": 400, "lr": 3e-3, "metric": "l1", "overrides": {"chunk_size": 4}},
}


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_batch_overfits(family: str) -> None:
    spec = OVERFIT[family]
    torch.manual_seed(0)
    p = tiny_policy(family, **spec["overrides"]).train()
    batch = batch_for(p, batch_size=4)
    opt = torch.optim.AdamW(p.parameters(), lr=spec["lr"])
    first_loss = first_metric = None
    for _ in range(spec["steps"]):
        loss, logs = p.compute_loss(batch)
        assert torch.isfinite(loss)
        if first_loss is None:
            first_loss, first_metric = float(loss.detach()), logs[spec["metric"]]
        if logs[spec["metric"]] < 0.1 * first_metric and float(loss.detach()) < 0.1 * first_loss:
            break  # reached: stop early to keep the suite fast
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.manual_seed(1)
    loss, logs = p.compute_loss(batch)
    assert float(loss.detach()) < 0.1 * first_loss, (first_loss, float(loss))
    assert logs[spec["metric"]] < 0.1 * first_metric, (first_metric, logs)
