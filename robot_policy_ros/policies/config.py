"""Configuration dataclasses of the three policy families, validated on construction.

The split follows LeRobot: a config (this module) says *what* to build, the policy module
builds it, and the normalizer handles units. Every field except ``joint_names``,
``cameras``, ``fps`` and ``pretrained_backbone_weights`` is a hyper-parameter stored in the
checkpoint's ``config.json`` under ``"hyperparameters"``; a wrong value raises ValueError
naming the field.

Backbones: ``vision_backbone="resnet18"`` (default, torchvision ResNet18 trunk) or
``"tiny_cnn"`` (three strided 3x3 convolutions of ``backbone_width`` channels), which only
exists to keep test fixtures and toy experiments small: a ResNet18 alone is ~45 MB.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from robot_policy_ros.checkpoint.config import CameraInput, check_name

BACKBONES = ("resnet18", "tiny_cnn")
BACKBONE_NORMS = ("batch_norm", "frozen_bn", "group_norm")

# Fields that are not hyper-parameters: stored at the top level of config.json (joints,
# cameras, fps) or only used when building a fresh model (pretrained weights file).
NON_HYPERPARAMETER_FIELDS = ("joint_names", "cameras", "fps", "pretrained_backbone_weights")

# Hyper-parameters added after checkpoints existed: may be absent from config.json (their
# default applies) and are not written while they hold their default, so checkpoints
# written before and after they existed stay identical.
OPTIONAL_HYPERPARAMETERS = (
    "image_normalization",
    "global_cond_order",
    "final_conv_groups",
    "crop_rounding",
    "resize_shape",
    "sampler",
)


def _check_int(cfg: Any, name: str, low: int = 1, high: int | None = None) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {rng}, got {v!r}")


def _check_float(cfg: Any, name: str, low: float = 0.0, low_inclusive: bool = True) -> None:
    v = getattr(cfg, name)
    ok = (
        not isinstance(v, bool)
        and isinstance(v, (int, float))
        and math.isfinite(v)
        and (v >= low if low_inclusive else v > low)
    )
    if not ok:
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be a finite number {op} {low}, got {v!r}")
    setattr(cfg, name, float(v))


def _check_choice(cfg: Any, name: str, choices: tuple[str, ...]) -> None:
    v = getattr(cfg, name)
    if v not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {v!r}")


def _check_bool(cfg: Any, name: str) -> None:
    if not isinstance(getattr(cfg, name), bool):
        raise ValueError(f"{name} must be true or false, got {getattr(cfg, name)!r}")


def _check_int_tuple(cfg: Any, name: str, allow_empty: bool = False) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, (list, tuple)) or (not v and not allow_empty):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {v!r}")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ValueError(f"{name} must contain positive integers, got {v!r}")
    setattr(cfg, name, tuple(v))


def _check_image_normalization(value: Any, cameras: list[str]) -> dict[str, dict[str, list]]:
    """Validate {camera: {"mean": [3 floats], "std": [3 floats > 0]}} for exactly ``cameras``."""
    if not isinstance(value, dict) or set(value) != set(cameras):
        got = sorted(value) if isinstance(value, dict) else value
        raise ValueError(f"image_normalization must map every camera {cameras} to stats, got {got}")
    out: dict[str, dict[str, list]] = {}
    for cam in cameras:
        entry = value[cam]
        if not isinstance(entry, dict) or set(entry) != {"mean", "std"}:
            raise ValueError(f"image_normalization[{cam!r}] must be {{'mean': [..], 'std': [..]}}")
        vals = {}
        for key in ("mean", "std"):
            v = entry[key]
            ok = isinstance(v, (list, tuple)) and len(v) == 3
            ok = ok and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in v
            )
            if not ok or (key == "std" and min(v) <= 0):
                raise ValueError(
                    f"image_normalization[{cam!r}][{key!r}] must be 3 finite numbers"
                    f"{' > 0' if key == 'std' else ''} (R, G, B), got {v!r}"
                )
            vals[key] = [float(x) for x in v]
        out[cam] = vals
    return out


@dataclass(kw_only=True)
class PolicyConfig:
    """Fields shared by all families.

    Attributes:
        joint_names: joints in the order of state and action vectors.
        cameras: cameras read by the policy with their expected image shape.
        fps: rate of the actions in a chunk (action i is for t_obs + i/fps).
        vision_backbone: "resnet18" (default) or "tiny_cnn" (tests / toy runs).
        backbone_width: channels of the first tiny_cnn layer (ignored for resnet18).
        backbone_norm: normalisation layers of the backbone: "batch_norm", "frozen_bn"
            (ImageNet statistics frozen, as in ACT/DETR) or "group_norm" (as in Diffusion Policy).
        share_backbone: one backbone for all cameras (True) or one per camera.
        pretrained_backbone_weights: local file with torchvision ResNet18 weights
            (.safetensors, or a .pth state dict read with weights_only=True); never downloaded.
            Only used when building a fresh model; a checkpoint already holds its weights.
        image_normalization: None (ImageNet mean/std for every camera) or, per camera name,
            {"mean": [r, g, b], "std": [r, g, b]} applied to [0, 1] RGB as (x - mean) / std
            (policies imported from LeRobot carry their dataset's per-camera statistics).
    """

    policy_type: ClassVar[str] = ""

    joint_names: tuple[str, ...]
    cameras: tuple[CameraInput, ...]
    fps: float = 50.0
    vision_backbone: str = "resnet18"
    backbone_width: int = 16
    backbone_norm: str = "batch_norm"
    share_backbone: bool = True
    pretrained_backbone_weights: str | None = None
    image_normalization: dict[str, dict[str, list[float]]] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.joint_names, str) or not self.joint_names:
            raise ValueError("joint_names must be a non-empty list of names")
        self.joint_names = tuple(self.joint_names)
        for name in self.joint_names:
            check_name(name, "joint name")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names has duplicates: {list(self.joint_names)}")
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        cams = []
        for c in self.cameras:
            cams.append(c if isinstance(c, CameraInput) else CameraInput.from_dict(c))
        self.cameras = tuple(cams)
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names have duplicates: {names}")
        _check_float(self, "fps", 0.0, low_inclusive=False)
        _check_choice(self, "vision_backbone", BACKBONES)
        _check_int(self, "backbone_width", 1, 512)
        _check_choice(self, "backbone_norm", BACKBONE_NORMS)
        _check_bool(self, "share_backbone")
        if self.pretrained_backbone_weights is not None:
            if not isinstance(self.pretrained_backbone_weights, str):
                raise ValueError("pretrained_backbone_weights must be a file path or None")
            if self.vision_backbone != "resnet18":
                raise ValueError("pretrained_backbone_weights needs vision_backbone='resnet18'")
        if self.image_normalization is not None:
            self.image_normalization = _check_image_normalization(
                self.image_normalization, [c.name for c in self.cameras]
            )

    # --- derived -------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        """Number of joints J."""
        return len(self.joint_names)

    @property
    def camera_names(self) -> list[str]:
        """Camera names in order."""
        return [c.name for c in self.cameras]

    @property
    def chunk_size(self) -> int:
        """Actions returned per inference call."""
        raise NotImplementedError

    @property
    def n_obs_steps(self) -> int:
        """Observation frames read per inference call."""
        return 1

    @property
    def observation_delta_indices(self) -> list[int]:
        """Frame offsets (in control steps) of the observations a sample needs."""
        return list(range(-(self.n_obs_steps - 1), 1))

    @property
    def action_delta_indices(self) -> list[int]:
        """Action offsets (in control steps) a training sample needs."""
        return list(range(self.chunk_size))

    # --- (de)serialisation ---------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """The JSON-able hyper-parameters (everything but joints, cameras, fps, weights file)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in NON_HYPERPARAMETER_FIELDS:
                continue
            v = getattr(self, f.name)
            if f.name in OPTIONAL_HYPERPARAMETERS and v == f.default:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def hyperparameter_names(cls) -> list[str]:
        """Names of the hyper-parameter fields."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in NON_HYPERPARAMETER_FIELDS]

    @classmethod
    def from_hyperparameters(
        cls,
        joint_names: list[str],
        cameras: list[CameraInput],
        fps: float,
        hyperparameters: dict[str, Any],
        strict: bool = True,
    ) -> PolicyConfig:
        """Build from the checkpoint form. ``strict``: every field present, none unknown."""
        names = set(cls.hyperparameter_names())
        unknown = sorted(set(hyperparameters) - names)
        if unknown:
            raise ValueError(f"unknown hyperparameters for {cls.policy_type}: {unknown}")
        missing = sorted(names - set(hyperparameters) - set(OPTIONAL_HYPERPARAMETERS))
        if strict and missing:
            raise ValueError(f"missing hyperparameters for {cls.policy_type}: {missing}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hyperparameters.items()}
        return cls(joint_names=tuple(joint_names), cameras=tuple(cameras), fps=fps, **kwargs)


@dataclass(kw_only=True)
class MLPConfig(PolicyConfig):
    """Imitation MLP (behaviour cloning).

    Pooled backbone features of every camera, concatenated with the normalised joint
    positions, go through an MLP that outputs ``chunk_size`` future actions (1 = a single
    action). Default 10: a short chunk that the streamer can blend.
    """

    policy_type: ClassVar[str] = "mlp"

    chunk_size: int = 10  # type: ignore[assignment]
    hidden_dims: tuple[int, ...] = (512, 512)
    dropout: float = 0.0
    loss: str = "mse"
    backbone_norm: str = "batch_norm"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "chunk_size", 1, 10000)
        _check_int_tuple(self, "hidden_dims")
        _check_float(self, "dropout", 0.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must be < 1, got {self.dropout}")
        _check_choice(self, "loss", ("mse", "l1"))


@dataclass(kw_only=True)
class ACTConfig(PolicyConfig):
    """ACT (Zhao et al. 2023); defaults follow the paper / reference implementation.

    The reference code declares 7 decoder layers but only the first is used (a known quirk),
    hence ``n_decoder_layers=1``. ``pre_norm=False`` is the post-norm DETR layout.
    """

    policy_type: ClassVar[str] = "act"

    chunk_size: int = 100  # type: ignore[assignment]
    d_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    pre_norm: bool = False
    dropout: float = 0.1
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    kl_weight: float = 10.0
    backbone_norm: str = "frozen_bn"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "chunk_size", 1, 10000)
        _check_int(self, "d_model", 2)
        _check_int(self, "n_heads", 1)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads")
        if self.d_model % 2:
            raise ValueError("d_model must be even (2D sinusoidal position embedding)")
        _check_int(self, "dim_feedforward", 1)
        _check_choice(self, "feedforward_activation", ("relu", "gelu"))
        _check_int(self, "n_encoder_layers", 1)
        _check_int(self, "n_decoder_layers", 1)
        _check_bool(self, "pre_norm")
        _check_float(self, "dropout", 0.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must be < 1, got {self.dropout}")
        _check_bool(self, "use_vae")
        _check_int(self, "latent_dim", 1)
        _check_int(self, "n_vae_encoder_layers", 1)
        _check_float(self, "kl_weight", 0.0)


@dataclass(kw_only=True)
class DiffusionConfig(PolicyConfig):
    """Diffusion Policy (Chi et al. 2023), CNN (U-Net) variant; defaults as in the paper.

    ``horizon`` actions are denoised, starting at the oldest observation frame; the policy
    returns ``n_action_steps`` of them starting at the current frame.
    ``sampling_seed``: seed of the initial noise, re-applied at every ``reset()`` so that an
    episode's actions are reproducible (None: not re-seeded).

    Options for LeRobot compatibility (defaults: this project's own layout):
    ``global_cond_order`` "images_first" (per frame [cameras..., state]) or "state_first"
    (LeRobot: [state, cameras...]); ``final_conv_groups`` GroupNorm groups of the U-Net's
    final conv block (None: ``n_groups``; LeRobot: 8); ``crop_rounding`` "floor" or "round"
    (LeRobot / torchvision CenterCrop) for the centre-crop offset; ``resize_shape`` (H, W)
    bilinear (antialiased) resize before the crop; ``sampler`` "ddim" or "ddpm" at inference.
    """

    policy_type: ClassVar[str] = "diffusion"

    horizon: int = 16
    n_obs_steps: int = 2  # type: ignore[assignment]
    n_action_steps: int = 8
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 128
    use_film_scale_modulation: bool = True
    spatial_softmax_num_keypoints: int = 32
    crop_shape: tuple[int, ...] | None = None
    crop_is_random: bool = True
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    num_inference_steps: int = 10
    do_mask_loss_for_padding: bool = False
    sampling_seed: int | None = 0
    backbone_norm: str = "group_norm"
    global_cond_order: str = "images_first"
    final_conv_groups: int | None = None
    crop_rounding: str = "floor"
    resize_shape: tuple[int, ...] | None = None
    sampler: str = "ddim"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "horizon", 1, 10000)
        _check_int(self, "n_obs_steps", 1, 100)
        _check_int(self, "n_action_steps", 1)
        if self.n_obs_steps - 1 + self.n_action_steps > self.horizon:
            raise ValueError(
                f"n_action_steps ({self.n_action_steps}) + n_obs_steps - 1 "
                f"({self.n_obs_steps - 1}) must be <= horizon ({self.horizon})"
            )
        _check_int_tuple(self, "down_dims")
        factor = 2 ** (len(self.down_dims) - 1)
        if self.horizon % factor:
            raise ValueError(
                f"horizon ({self.horizon}) must be a multiple of {factor} "
                f"(2^(len(down_dims)-1), the U-Net's downsampling factor)"
            )
        _check_int(self, "kernel_size", 1)
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        _check_int(self, "n_groups", 1)
        for d in self.down_dims:
            if d % self.n_groups:
                raise ValueError(f"down_dims entries must be divisible by n_groups ({d})")
        _check_int(self, "diffusion_step_embed_dim", 2)
        if self.diffusion_step_embed_dim % 2:
            raise ValueError("diffusion_step_embed_dim must be even")
        _check_bool(self, "use_film_scale_modulation")
        _check_int(self, "spatial_softmax_num_keypoints", 1)
        if self.resize_shape is not None:
            _check_int_tuple(self, "resize_shape")
            if len(self.resize_shape) != 2:
                raise ValueError(f"resize_shape must be (H, W) or None, got {self.resize_shape}")
        if self.crop_shape is not None:
            if isinstance(self.crop_shape, list):
                self.crop_shape = tuple(self.crop_shape)
            _check_int_tuple(self, "crop_shape")
            if len(self.crop_shape) != 2:
                raise ValueError(f"crop_shape must be (H, W) or None, got {self.crop_shape}")
            for cam in self.cameras:
                h, w = self.resize_shape if self.resize_shape else (cam.height, cam.width)
                if self.crop_shape[0] > h or self.crop_shape[1] > w:
                    raise ValueError(f"crop_shape {self.crop_shape} larger than camera {cam.name}")
        _check_bool(self, "crop_is_random")
        _check_choice(self, "global_cond_order", ("images_first", "state_first"))
        if self.final_conv_groups is not None:
            _check_int(self, "final_conv_groups", 1)
            if self.down_dims[0] % self.final_conv_groups:
                raise ValueError("down_dims[0] must be divisible by final_conv_groups")
        _check_choice(self, "crop_rounding", ("floor", "round"))
        _check_choice(self, "sampler", ("ddim", "ddpm"))
        _check_int(self, "num_train_timesteps", 1)
        _check_choice(self, "beta_schedule", ("squaredcos_cap_v2", "linear", "scaled_linear"))
        _check_float(self, "beta_start", 0.0, low_inclusive=False)
        _check_float(self, "beta_end", 0.0, low_inclusive=False)
        _check_choice(self, "prediction_type", ("epsilon", "sample"))
        _check_bool(self, "clip_sample")
        _check_float(self, "clip_sample_range", 0.0, low_inclusive=False)
        _check_int(self, "num_inference_steps", 1, self.num_train_timesteps)
        _check_bool(self, "do_mask_loss_for_padding")
        if self.sampling_seed is not None:
            _check_int(self, "sampling_seed", 0)

    @property
    def chunk_size(self) -> int:
        """Actions per call: n_action_steps."""
        return self.n_action_steps

    @property
    def action_delta_indices(self) -> list[int]:
        """The denoised horizon starts at the oldest observation frame."""
        return list(range(-(self.n_obs_steps - 1), self.horizon - (self.n_obs_steps - 1)))


CONFIG_CLASSES: dict[str, type[PolicyConfig]] = {
    "mlp": MLPConfig,
    "act": ACTConfig,
    "diffusion": DiffusionConfig,
}
