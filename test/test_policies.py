"""Policy families: shapes and units, observation checks, overfitting a tiny batch.

Each family runs with tiny hyper-parameters (tiny_cnn backbone, small widths, 32x32 images)
so the suite stays fast; ResNet18 paths are exercised with random init at small image sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_policy_ros.checkpoint.config import POLICY_TYPES, NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
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
    "diffusion": {
        "vision_backbone": "tiny_cnn",
        "backbone_width": 8,
        "horizon": 8,
        "n_obs_steps": 2,
        "n_action_steps": 4,
        "down_dims": (16, 32),
        "n_groups": 4,
        "diffusion_step_embed_dim": 16,
        "spatial_softmax_num_keypoints": 8,
        "num_inference_steps": 5,
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
    from robot_policy_ros.checkpoint.config import CameraInput
    from robot_policy_ros.policies.config import ACTConfig

    c = ACTConfig(joint_names=("a",), cameras=(CameraInput("f", 64, 64),))
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


# --- Diffusion ---------------------------------------------------------------------------------
def test_diffusion_defaults_follow_the_paper() -> None:
    from robot_policy_ros.checkpoint.config import CameraInput
    from robot_policy_ros.policies.config import DiffusionConfig

    c = DiffusionConfig(joint_names=("a",), cameras=(CameraInput("f", 96, 96),))
    assert (c.horizon, c.n_obs_steps, c.n_action_steps) == (16, 2, 8)
    assert (c.num_train_timesteps, c.beta_schedule, c.prediction_type) == (
        100,
        "squaredcos_cap_v2",
        "epsilon",
    )
    assert c.clip_sample and c.num_inference_steps == 10
    assert (c.down_dims, c.kernel_size, c.n_groups, c.diffusion_step_embed_dim) == (
        (256, 512, 1024),
        5,
        8,
        128,
    )
    assert c.use_film_scale_modulation and c.spatial_softmax_num_keypoints == 32
    assert c.backbone_norm == "group_norm" and c.vision_backbone == "resnet18"


def test_diffusion_uses_diffusers_schedulers() -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    p = tiny_policy("diffusion")
    assert isinstance(p.noise_scheduler, DDPMScheduler)
    assert isinstance(p.sampler, DDIMScheduler)
    for s in (p.noise_scheduler, p.sampler):
        assert s.config.beta_schedule == "squaredcos_cap_v2"
        assert s.config.num_train_timesteps == 100
        assert s.config.prediction_type == "epsilon" and s.config.clip_sample


def test_diffusion_chunk_and_indices() -> None:
    p = tiny_policy("diffusion").eval()
    out = p.predict_chunk(observation(p))
    assert out.shape == (4, 4) and out.dtype == np.float64 and np.isfinite(out).all()
    assert p.chunk_size == 4 and p.n_obs_steps == 2
    assert p.observation_delta_indices == [-1, 0]
    assert p.action_delta_indices == list(range(-1, 7))


def test_diffusion_returns_actions_from_the_current_step() -> None:
    """With sample prediction, DDIM's last step returns the model's x0: the chunk must be the
    horizon's slice [n_obs_steps - 1, n_obs_steps - 1 + n_action_steps)."""
    p = tiny_policy("diffusion", prediction_type="sample", n_obs_steps=3, n_action_steps=4)
    p.set_normalization(
        NormalizationStats.from_limits(JointLimits.uniform(p.joint_names, -1.0, 1.0))
    )
    trajectory = torch.linspace(-0.9, 0.9, 8).view(1, 8, 1).expand(1, 8, 4)

    class Stub(torch.nn.Module):
        def forward(self, x, t, cond):
            return trajectory.expand(x.shape[0], -1, -1)

    p.unet = Stub()
    out = p.eval().predict_chunk(observation(p))
    np.testing.assert_allclose(out, trajectory[0, 2:6].double().numpy(), atol=1e-5)


def test_diffusion_observation_history_pads_with_first_frame() -> None:
    p = tiny_policy("diffusion", n_obs_steps=3, horizon=8, n_action_steps=4).eval()
    seen = []
    original = p._predict_normalized

    def spy(images, state):
        seen.append((images["front"].clone(), state.clone()))
        return original(images, state)

    p._predict_normalized = spy
    o = [observation(p, seed=i) for i in range(3)]
    p.predict_chunk(o[0])
    p.predict_chunk(o[1])
    p.reset()
    p.predict_chunk(o[2])
    img0 = torch.from_numpy(o[0].images["front"]).permute(2, 0, 1).float() / 255
    img1 = torch.from_numpy(o[1].images["front"]).permute(2, 0, 1).float() / 255
    img2 = torch.from_numpy(o[2].images["front"]).permute(2, 0, 1).float() / 255
    first, second, after_reset = seen
    for k in range(3):
        torch.testing.assert_close(first[0][0, k], img0)  # [o0, o0, o0]
        torch.testing.assert_close(after_reset[0][0, k], img2)  # reset: [o2, o2, o2]
    torch.testing.assert_close(second[0][0, 0], img0)  # [o0, o0, o1]: oldest first
    torch.testing.assert_close(second[0][0, 2], img1)
    q = p.normalizer.normalize_state(torch.as_tensor(o[1].joint_positions).view(1, 4))[0]
    torch.testing.assert_close(second[1][0, 2], q)


def test_diffusion_sampling_is_reproducible_per_episode() -> None:
    p = tiny_policy("diffusion").eval()
    obs = observation(p)
    a = p.predict_chunk(obs)
    p.reset()
    np.testing.assert_array_equal(a, p.predict_chunk(obs))
    unseeded = tiny_policy("diffusion", sampling_seed=None).eval()
    b = unseeded.predict_chunk(obs)
    unseeded.reset()
    assert not np.array_equal(b, unseeded.predict_chunk(obs))


def test_diffusion_inference_steps_configurable() -> None:
    p = tiny_policy("diffusion", num_inference_steps=3).eval()
    calls = []
    p.unet.register_forward_hook(lambda *_: calls.append(1))
    p.predict_chunk(observation(p))
    assert len(calls) == 3
    p.set_num_inference_steps(7)
    calls.clear()
    p.predict_chunk(observation(p))
    assert len(calls) == 7
    with pytest.raises(ValueError, match="num_inference_steps"):
        p.set_num_inference_steps(0)


def test_diffusion_resnet18_uses_group_norm_only() -> None:
    p = make_policy("diffusion", JOINTS, {"front": (64, 64)}, down_dims=(32, 64), seed=0)
    norms = [m for m in p.rgb_encoders.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == m.num_channels // 16 for m in norms)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in p.modules())
    assert p.eval().predict_chunk(observation(p)).shape == (8, 4)


def test_spatial_softmax_finds_the_peak() -> None:
    from robot_policy_ros.policies.vision import SpatialSoftmax

    ss = SpatialSoftmax(in_channels=1, height=5, width=9, num_kp=1)
    with torch.no_grad():
        ss.kp_conv.weight.fill_(1.0)
        ss.kp_conv.bias.zero_()
    fmap = torch.zeros(1, 1, 5, 9)
    fmap[0, 0, 4, 2] = 100.0  # bottom row, third column
    kp = ss(fmap)
    torch.testing.assert_close(kp, torch.tensor([[[-0.5, 1.0]]]), atol=1e-4, rtol=0)


def test_film_blocks_predict_scale_and_bias() -> None:
    from robot_policy_ros.policies.diffusion import ConditionalResidualBlock1D

    blk = ConditionalResidualBlock1D(4, 8, cond_dim=6, kernel=5, n_groups=4, film_scale=True)
    assert blk.cond_encoder[-1].out_features == 16
    x, cond = torch.randn(2, 4, 8), torch.randn(2, 6)
    assert blk(x, cond).shape == (2, 8, 8)
    # a different conditioning changes the output
    assert not torch.allclose(blk(x, cond), blk(x, cond + 1.0))


# --- shared behaviour ------------------------------------------------------------------------
FAMILIES = list(POLICY_TYPES)


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
    limits = JointLimits.uniform(JOINTS, -1.0, 1.0, 1.0)
    p = make_policy(family, JOINTS, {"front": (32, 32)}, limits=limits, seed=0, **TINY[family])
    out = p.eval().predict_chunk(observation(p))
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 10.0


@pytest.mark.parametrize("family", FAMILIES)
def test_reduced_precision_path_keeps_float32_normalisation(family: str) -> None:
    """The float16/bfloat16 path (CUDA only in use) run with bfloat16 on the CPU: the network
    runs in bfloat16, (un)normalisation stays float32, the output stays float64 and close."""
    p = tiny_policy(family).eval()
    obs = observation(p)
    reference = p.predict_chunk(obs)
    p.reset()
    p._set_runtime(torch.device("cpu"), torch.bfloat16)
    assert p.runtime_dtype == torch.bfloat16
    assert p.normalizer.action_scale.dtype == torch.float32
    out = p.predict_chunk(obs)
    assert out.dtype == np.float64 and out.shape == reference.shape
    scale = p.normalization_stats.action_std.max() * 4 + 1e-3
    assert np.abs(out - reference).max() < 0.1 * scale


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_module_to_is_followed(family: str) -> None:
    """A trainer may call policy.to(...) / .double() directly: predict_chunk follows."""
    p = tiny_policy(family).eval()
    obs = observation(p)
    reference = p.predict_chunk(obs)
    p.reset()
    p.double()
    assert p.runtime_dtype == torch.float64
    np.testing.assert_allclose(p.predict_chunk(obs), reference, rtol=1e-4, atol=1e-4)


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
    # The diffusion loss is a stochastic estimate (random noise and step per sample): the
    # tiny batch includes its noise and diffusion steps (same seed every step).
    "diffusion": {"steps": 400, "lr": 3e-3, "metric": "mse", "overrides": {}, "fixed_noise": 1},
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
        if spec.get("fixed_noise"):
            torch.manual_seed(1)
        loss, logs = p.compute_loss(batch)
        assert torch.isfinite(loss)
        if first_loss is None:
            first_loss, first_metric = float(loss.detach()), logs[spec["metric"]]
        # Stop early to keep the suite fast, with margin: the check below draws its own
        # noise / CVAE latent, so it does not see exactly this value.
        if logs[spec["metric"]] < 0.05 * first_metric and float(loss.detach()) < 0.05 * first_loss:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.manual_seed(1)
    loss, logs = p.compute_loss(batch)
    assert float(loss.detach()) < 0.1 * first_loss, (first_loss, float(loss))
    assert logs[spec["metric"]] < 0.1 * first_metric, (first_metric, logs)
