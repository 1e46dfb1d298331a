"""Diffusion Policy (Chi et al. 2023, "Diffusion Policy: Visuomotor Policy Learning via Action
Diffusion"), CNN-based variant, following the reference implementation's behaviour.

- Observation encoder per camera (shared by default): ResNet18 trunk with every BatchNorm
  replaced by GroupNorm (channels // 16 groups), optional crop (random while training,
  centre at inference), spatial softmax over the layer4 map (``spatial_softmax_num_keypoints``
  keypoints -> 2K coordinates), then Linear + ReLU.
- Global conditioning: for each of the ``n_obs_steps`` frames, [features of every camera,
  normalised joint positions], all concatenated.
- Noise model: 1D temporal U-Net over the ``horizon`` actions (``down_dims`` levels, kernel 5,
  GroupNorm with ``n_groups``, Mish), conditional residual blocks with FiLM (per-channel
  scale and bias predicted from [diffusion-step embedding, global cond]); the diffusion step
  is a sinusoidal embedding (``diffusion_step_embed_dim``) -> Linear -> Mish -> Linear.
- Training: DDPM (diffusers ``DDPMScheduler``, 100 steps, squared-cosine schedule, epsilon
  prediction, clipped samples); MSE between predicted and true noise (or sample).
- Inference: DDIM (diffusers ``DDIMScheduler``, same schedule) with ``num_inference_steps``
  (10 by default); the denoised horizon starts at the oldest observation frame, and the
  returned chunk is its ``n_action_steps`` actions starting at the current frame:
  [n_obs_steps - 1, n_obs_steps - 1 + n_action_steps).
State and action are min/max normalised to [-1, 1].
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from robot_policy_ros.checkpoint.config import NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.base import Policy
from robot_policy_ros.policies.config import DiffusionConfig
from robot_policy_ros.policies.vision import SpatialSoftmax, build_backbone, crop_images


class RgbEncoder(nn.Module):
    """ResNet18 (GroupNorm) -> spatial softmax keypoints -> Linear + ReLU."""

    def __init__(self, c: DiffusionConfig, height: int, width: int) -> None:
        super().__init__()
        self.backbone = build_backbone(
            c.vision_backbone, c.backbone_norm, c.backbone_width, c.pretrained_backbone_weights
        )
        h, w = c.resize_shape if c.resize_shape is not None else (height, width)
        h, w = c.crop_shape if c.crop_shape is not None else (h, w)
        fh, fw = type(self.backbone).feature_shape(h, w)
        if fh < 1 or fw < 1:
            raise ValueError(f"image {height}x{width} too small for the backbone")
        self.pool = SpatialSoftmax(
            self.backbone.out_channels, fh, fw, c.spatial_softmax_num_keypoints
        )
        self.feature_dim = 2 * c.spatial_softmax_num_keypoints
        self.out = nn.Linear(self.feature_dim, self.feature_dim)
        self.crop_shape = c.crop_shape
        self.crop_is_random = c.crop_is_random
        self.crop_rounding = c.crop_rounding
        self.resize_shape = c.resize_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) ImageNet-normalised -> (N, feature_dim)."""
        if self.resize_shape is not None and tuple(x.shape[-2:]) != tuple(self.resize_shape):
            x = F.interpolate(
                x,
                size=tuple(self.resize_shape),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        x = crop_images(
            x,
            self.crop_shape,
            random=self.training and self.crop_is_random,
            rounding=self.crop_rounding,
        )
        kp = self.pool(self.backbone(x)).flatten(1)
        return F.relu(self.out(kp))


class SinusoidalStepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step (as for Transformer positions)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * -(math.log(10000.0) / max(half - 1, 1)))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) steps -> (B, dim)."""
        # float32 whatever the network dtype: sin/cos of steps up to ~1000 need the precision
        arg = t.float().unsqueeze(1) * self.freqs.float().unsqueeze(0)
        return torch.cat((arg.sin(), arg.cos()), dim=-1).to(self.freqs.dtype)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, cin: int, cout: int, kernel: int, n_groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(cin, cout, kernel, padding=kernel // 2),
            nn.GroupNorm(n_groups, cout),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, cin, T) -> (B, cout, T)."""
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks; FiLM from the conditioning vector between them; residual 1x1 conv."""

    def __init__(
        self, cin: int, cout: int, cond_dim: int, kernel: int, n_groups: int, film_scale: bool
    ) -> None:
        super().__init__()
        self.film_scale = film_scale
        self.cout = cout
        self.conv1 = Conv1dBlock(cin, cout, kernel, n_groups)
        self.cond_encoder = nn.Sequential(
            nn.Mish(), nn.Linear(cond_dim, 2 * cout if film_scale else cout)
        )
        self.conv2 = Conv1dBlock(cout, cout, kernel, n_groups)
        self.residual_conv = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, T); cond: (B, cond_dim) -> (B, cout, T)."""
        out = self.conv1(x)
        film = self.cond_encoder(cond).unsqueeze(-1)
        if self.film_scale:  # FiLM: per-channel scale and bias
            scale, bias = film[:, : self.cout], film[:, self.cout :]
            out = scale * out + bias
        else:
            out = out + film
        out = self.conv2(out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """1D U-Net over the action horizon, conditioned by FiLM on [step embedding, obs cond]."""

    def __init__(self, c: DiffusionConfig, action_dim: int, global_cond_dim: int) -> None:
        super().__init__()
        dsed = c.diffusion_step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(dsed),
            nn.Linear(dsed, dsed * 4),
            nn.Mish(),
            nn.Linear(dsed * 4, dsed),
        )
        cond_dim = dsed + global_cond_dim
        dims = (action_dim, *c.down_dims)
        in_out = list(itertools.pairwise(dims))

        def block(cin: int, cout: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(
                cin, cout, cond_dim, c.kernel_size, c.n_groups, c.use_film_scale_modulation
            )

        self.down_modules = nn.ModuleList()
        for i, (cin, cout) in enumerate(in_out):
            is_last = i == len(in_out) - 1
            self.down_modules.append(
                nn.ModuleList(
                    [
                        block(cin, cout),
                        block(cout, cout),
                        nn.Conv1d(cout, cout, 3, 2, 1) if not is_last else nn.Identity(),
                    ]
                )
            )
        mid = c.down_dims[-1]
        self.mid_modules = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up_modules = nn.ModuleList()
        for cout, cin in reversed(in_out[1:]):
            # input: the previous level's output concatenated with the skip connection
            self.up_modules.append(
                nn.ModuleList(
                    [
                        block(cin * 2, cout),
                        block(cout, cout),
                        nn.ConvTranspose1d(cout, cout, 4, 2, 1),
                    ]
                )
            )
        final_groups = c.final_conv_groups if c.final_conv_groups is not None else c.n_groups
        self.final_conv = nn.Sequential(
            Conv1dBlock(c.down_dims[0], c.down_dims[0], c.kernel_size, final_groups),
            nn.Conv1d(c.down_dims[0], action_dim, 1),
        )

    def forward(
        self, x: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """x: (B, T, A) noisy actions; timestep: (B,); global_cond: (B, G) -> (B, T, A)."""
        x = x.transpose(1, 2)
        cond = torch.cat([self.step_encoder(timestep).to(global_cond.dtype), global_cond], -1)
        skips = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for mid in self.mid_modules:
            x = mid(x, cond)
        for res1, res2, up in self.up_modules:
            x = torch.cat((x, skips.pop()), dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final_conv(x).transpose(1, 2)


class DiffusionPolicy(Policy):
    """Diffusion Policy; see module docstring."""

    config_class = DiffusionConfig
    state_norm_mode = "min_max"
    action_norm_mode = "min_max"
    config: DiffusionConfig

    def __init__(
        self,
        config: DiffusionConfig,
        stats: NormalizationStats | None = None,
        limits: JointLimits | None = None,
    ) -> None:
        super().__init__(config, stats, limits)
        from diffusers import DDIMScheduler, DDPMScheduler

        c = config
        if c.share_backbone:
            cam0 = c.cameras[0]
            self.rgb_encoders = nn.ModuleList([RgbEncoder(c, cam0.height, cam0.width)])
        else:
            self.rgb_encoders = nn.ModuleList(
                RgbEncoder(c, cam.height, cam.width) for cam in c.cameras
            )
        feat = self.rgb_encoders[0].feature_dim
        global_cond_dim = (feat * len(c.cameras) + c.num_joints) * c.n_obs_steps
        self.unet = ConditionalUnet1D(c, c.num_joints, global_cond_dim)
        sched_kwargs = {
            "num_train_timesteps": c.num_train_timesteps,
            "beta_start": c.beta_start,
            "beta_end": c.beta_end,
            "beta_schedule": c.beta_schedule,
            "clip_sample": c.clip_sample,
            "clip_sample_range": c.clip_sample_range,
            "prediction_type": c.prediction_type,
        }
        self.noise_scheduler = DDPMScheduler(**sched_kwargs)
        self.sampler = (DDPMScheduler if c.sampler == "ddpm" else DDIMScheduler)(**sched_kwargs)
        self.sampler.set_timesteps(c.num_inference_steps)
        self._generator: torch.Generator | None = None
        self._sample_buf: torch.Tensor | None = None
        self._timesteps_dev: torch.Tensor | None = None
        self._initial_noise: torch.Tensor | None = None

    # --- inference settings ----------------------------------------------------------------
    def set_num_inference_steps(self, steps: int) -> None:
        """Change the number of DDIM steps used by predict_chunk (1..num_train_timesteps)."""
        if not 1 <= int(steps) <= self.config.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be in [1, {self.config.num_train_timesteps}]"
            )
        self.config.num_inference_steps = int(steps)
        self.sampler.set_timesteps(int(steps))
        self._timesteps_dev = None

    def set_initial_noise(self, noise: torch.Tensor | None) -> None:
        """Use ``noise`` (B, horizon, J), normalised action space, as the initial sample of the
        next predict_chunk only (offline comparisons with a given noise); None: drawn."""
        if noise is not None:
            shape = (self.config.horizon, self.config.num_joints)
            if noise.ndim != 3 or tuple(noise.shape[1:]) != shape:
                raise ValueError(
                    f"noise has shape {tuple(noise.shape)}, expected (B, {shape[0]}, {shape[1]})"
                )
            if not torch.isfinite(noise).all():
                raise ValueError("noise is not finite")
        self._initial_noise = noise

    def _on_runtime_change(self) -> None:
        self._generator = None
        self._sample_buf = None
        self._timesteps_dev = None

    def _reset_family(self) -> None:
        # Re-seed the initial noise so that an episode's actions are reproducible.
        self._generator = None

    def _make_generator(self, device: torch.device) -> torch.Generator | None:
        if self.config.sampling_seed is None:
            return None
        g = torch.Generator(device=device)
        g.manual_seed(self.config.sampling_seed)
        return g

    # --- model -----------------------------------------------------------------------------
    def _global_cond(self, images: dict[str, torch.Tensor], state: torch.Tensor) -> torch.Tensor:
        """images[cam]: (B, n_obs, 3, H, W); state (B, n_obs, J) -> (B, global_cond_dim)."""
        b, n = state.shape[:2]
        feats = []
        for i, cam in enumerate(self.config.camera_names):
            x = images[cam].flatten(0, 1)  # (B*n_obs, 3, H, W)
            enc = self.rgb_encoders[0 if self.config.share_backbone else i]
            feats.append(enc(self._encode_camera_input(x, cam)).view(b, n, -1))
        if self.config.global_cond_order == "state_first":
            feats.insert(0, state.to(feats[0].dtype))
        else:
            feats.append(state.to(feats[0].dtype))
        return torch.cat(feats, dim=-1).flatten(1)

    def _predict_normalized(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        cond = self._global_cond(images, state)
        return self.denoise(cond, lambda x, t: self.unet(x.to(self._runtime_dtype), t, cond))

    def global_cond_from_history(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        """History tensors (see Policy.prepare_inputs) -> (1, global_cond_dim) conditioning."""
        return self._global_cond(*self.prepare_inputs(images, state))

    def denoise(self, cond: torch.Tensor, eps_fn) -> torch.Tensor:
        """The DDIM sampler loop: (B, G) cond -> (B, n_action_steps, J) normalised actions.

        ``eps_fn(sample (B, horizon, J) float32, t (B,) int64)`` returns the U-Net output;
        the torch path passes the U-Net, the exported backends their denoiser graph, so the
        noise (seeded generator), timesteps and scheduler arithmetic are shared.
        """
        c = self.config
        device = cond.device
        b = cond.shape[0]
        shape = (b, c.horizon, c.num_joints)
        if (
            self._sample_buf is None
            or self._sample_buf.shape != shape
            or self._sample_buf.device != device
        ):
            self._sample_buf = torch.empty(shape, dtype=torch.float32, device=device)
        if self._generator is None:
            self._generator = self._make_generator(device)
        if self._timesteps_dev is None:
            self._timesteps_dev = self.sampler.timesteps.to(device)
        # The sample and the scheduler arithmetic stay float32; only the U-Net runs in the
        # runtime dtype (half precision on CUDA).
        if self._initial_noise is not None:
            noise, self._initial_noise = self._initial_noise, None
            if noise.shape[0] != b:
                raise ValueError(f"noise has batch size {noise.shape[0]}, observations {b}")
            sample = self._sample_buf.copy_(noise)
        else:
            sample = torch.randn(
                shape, generator=self._generator, device=device, out=self._sample_buf
            )
        ddpm = self.config.sampler == "ddpm"
        for i, t in enumerate(self.sampler.timesteps):
            t_batch = self._timesteps_dev[i].expand(b)
            eps = eps_fn(sample, t_batch).float()
            if ddpm:  # DDPM adds noise at every step: drawn from the policy's generator
                step = self.sampler.step(eps, int(t), sample, generator=self._generator)
            else:
                step = self.sampler.step(eps, int(t), sample)
            sample = step.prev_sample
        start = c.n_obs_steps - 1
        return sample[:, start : start + c.n_action_steps]

    def _compute_loss_normalized(self, images, state, action, action_is_pad):
        c = self.config
        b = action.shape[0]
        cond = self._global_cond(images, state)
        noise = torch.randn_like(action)
        t = torch.randint(0, c.num_train_timesteps, (b,), device=action.device).long()
        noisy = self.noise_scheduler.add_noise(action, noise, t)
        pred = self.unet(noisy.to(cond.dtype), t, cond).float()
        target = noise if c.prediction_type == "epsilon" else action
        err = F.mse_loss(pred, target, reduction="none")
        if c.do_mask_loss_for_padding:
            valid = (~action_is_pad).unsqueeze(-1).to(err.dtype)
            loss = (err * valid).sum() / (valid.sum() * err.shape[-1]).clamp(min=1.0)
        else:
            loss = err.mean()
        return loss, {"mse": float(loss.detach())}
