"""The interface shared by every policy family, and the inference plumbing they share.

A :class:`Policy` is an ``nn.Module`` that knows its joints, cameras and control rate
(from its config), normalises with statistics stored in the checkpoint, and offers:

- ``predict_chunk(obs)``: uint8 RGB images + joint positions -> (chunk_size, J) float64
  joint targets; action i is for ``obs.stamp + i / fps``. Keeps its own observation
  history when the family reads several frames (``n_obs_steps``), reset by ``reset()``.
- ``compute_loss(batch)``: the training loss for a batch built by the dataset.

Families implement ``_predict_normalized`` and ``_compute_loss_normalized``; this class
does validation, (un)normalisation, the observation history and device/dtype handling.
Input tensors for inference are allocated once per device (pinned host memory on CUDA) and
reused; the history shift copies frame by frame inside those buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from robot_policy_ros.checkpoint.config import NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.config import PolicyConfig
from robot_policy_ros.policies.normalize import Normalizer
from robot_policy_ros.policies.vision import ImageNormalize

DTYPES: dict[str | None, torch.dtype] = {
    None: torch.float32,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Parse float32 / float16 / bfloat16 / None (float32) / a torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of float32, float16, bfloat16, got {dtype!r}")
    return DTYPES[dtype]


def check_device_dtype(device: str | torch.device, dtype: torch.dtype) -> torch.device:
    """Validate a device/dtype pair: half precision only on CUDA, CUDA only if present."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if dtype != torch.float32 and dev.type != "cuda":
        raise ValueError(
            f"{str(dtype).removeprefix('torch.')} inference needs a CUDA device; "
            "use dtype float32 on the CPU"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    return dev


def _check_limits(limits: JointLimits, joint_names: list[str] | tuple[str, ...]) -> JointLimits:
    """``limits`` if they are a JointLimits for exactly ``joint_names`` (ValueError if not)."""
    if not isinstance(limits, JointLimits):
        raise TypeError(f"limits must be a JointLimits, got {type(limits).__name__}")
    if limits.names != tuple(joint_names):
        raise ValueError(
            f"limits are for joints {list(limits.names)}, the policy has {list(joint_names)} "
            "(same names, same order)"
        )
    return limits


@dataclass
class Observation:
    """One observation in the checkpoint's conventions.

    Attributes:
        images: camera name -> uint8 RGB (H, W, 3), already at the checkpoint's image size.
        joint_positions: (J,) joint positions in checkpoint joint order, joint units.
        stamp: observation time (seconds); action 0 of the predicted chunk is for this time.
        history: None, or the n_obs_steps - 1 earlier frames (oldest first, each an
            Observation without history, 1/fps apart as in training): then they replace
            the policy's kept history instead of it shifting by one (policy_node builds
            them by stamp, robot_policy_ros.core.obs_history).
    """

    images: dict[str, np.ndarray] = field(default_factory=dict)
    joint_positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stamp: float = 0.0
    history: list[Observation] | None = None


class Policy(nn.Module):
    """Base class of MLPPolicy, ACTPolicy and DiffusionPolicy (see module docstring)."""

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    state_norm_mode: ClassVar[str] = "mean_std"
    action_norm_mode: ClassVar[str] = "mean_std"

    def __init__(
        self,
        config: PolicyConfig,
        stats: NormalizationStats | None = None,
        limits: JointLimits | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.limits = _check_limits(
            limits if limits is not None else JointLimits.uniform(config.joint_names),
            config.joint_names,
        )
        if stats is None:
            stats = NormalizationStats.from_limits(self.limits)
        self.normalizer = Normalizer(stats, self.state_norm_mode, self.action_norm_mode)
        self.image_normalize = ImageNormalize()
        # Per-camera statistics (imported LeRobot policies); None: ImageNet for every camera.
        self.camera_normalize = (
            None
            if config.image_normalization is None
            else nn.ModuleDict(
                {
                    cam: ImageNormalize(v["mean"], v["std"])
                    for cam, v in config.image_normalization.items()
                }
            )
        )
        self._runtime_dtype = torch.float32  # refreshed from the parameters at each call
        self._buffers_device: torch.device | None = None
        self._frames_seen = 0
        self._stage_img: dict[str, torch.Tensor] = {}
        self._stage_img_np: dict[str, np.ndarray] = {}
        self._stage_state = torch.empty(0)
        self._stage_state_np = np.empty(0)
        self._dev_img: dict[str, torch.Tensor] = {}
        self._dev_state = torch.empty(0)

    # --- description ---------------------------------------------------------------------
    @property
    def policy_type(self) -> str:
        """The family: mlp, act or diffusion."""
        return self.config.policy_type

    @property
    def fps(self) -> float:
        """Rate of the actions within a chunk (Hz)."""
        return self.config.fps

    @property
    def joint_names(self) -> list[str]:
        """Joints in the order of state and action vectors."""
        return list(self.config.joint_names)

    @property
    def num_joints(self) -> int:
        """J."""
        return self.config.num_joints

    @property
    def camera_names(self) -> list[str]:
        """Cameras read by the policy, in order."""
        return self.config.camera_names

    @property
    def image_shapes(self) -> dict[str, tuple[int, int]]:
        """Camera name -> expected (H, W) of its uint8 RGB image."""
        return {c.name: (c.height, c.width) for c in self.config.cameras}

    @property
    def chunk_size(self) -> int:
        """Actions returned per predict_chunk."""
        return self.config.chunk_size

    @property
    def n_obs_steps(self) -> int:
        """Observation frames the policy reads (current one last)."""
        return self.config.n_obs_steps

    @property
    def observation_delta_indices(self) -> list[int]:
        """Frame offsets a training sample needs, e.g. [0] or [-1, 0]."""
        return self.config.observation_delta_indices

    @property
    def action_delta_indices(self) -> list[int]:
        """Action offsets a training sample needs, e.g. range(0, H) or range(-1, 15)."""
        return self.config.action_delta_indices

    @property
    def normalization_stats(self) -> NormalizationStats:
        """The statistics in use."""
        return self.normalizer.stats

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    @property
    def runtime_dtype(self) -> torch.dtype:
        """Floating dtype the network runs in (normalisation always runs in float32)."""
        return next(self.parameters()).dtype

    def num_parameters(self) -> int:
        """Number of parameters (buffers such as frozen BatchNorm statistics not counted)."""
        return sum(p.numel() for p in self.parameters())

    # --- setters -------------------------------------------------------------------------
    def set_normalization(self, stats: NormalizationStats) -> None:
        """Use new normalisation statistics (e.g. computed from the training set)."""
        self.normalizer.set_stats(stats)

    def set_limits(self, limits: JointLimits) -> None:
        """Joint limits stored with the checkpoint (used by the command streamer); named by
        the policy's joints, in its order."""
        self.limits = _check_limits(limits, self.joint_names)

    def to_runtime(self, device: str | torch.device = "cpu", dtype: Any = None) -> Policy:
        """Move to ``device`` and run the network in ``dtype`` (half only on CUDA)."""
        dt = parse_dtype(dtype)
        dev = check_device_dtype(device, dt)
        return self._set_runtime(dev, dt)

    def _set_runtime(self, device: torch.device, dtype: torch.dtype) -> Policy:
        """to_runtime without the checks (tests run the reduced-precision path on the CPU)."""
        self.to(device=device, dtype=dtype)
        self._runtime_dtype = dtype
        self._buffers_device = None  # reallocate the input buffers on the next call
        self._on_runtime_change()
        return self

    def _on_runtime_change(self) -> None:
        """Hook for families with device-bound state (e.g. random generators)."""

    # --- inference -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the observation history (call at the start of every episode)."""
        self._frames_seen = 0
        self._reset_family()

    def _reset_family(self) -> None:
        """Hook: family-specific reset."""

    def _allocate_buffers(self, device: torch.device) -> None:
        n, j = self.n_obs_steps, self.num_joints
        pin = device.type == "cuda"
        self._stage_img, self._stage_img_np, self._dev_img = {}, {}, {}
        for cam in self.config.cameras:
            host = torch.zeros((n, cam.height, cam.width, 3), dtype=torch.uint8, pin_memory=pin)
            self._stage_img[cam.name] = host
            self._stage_img_np[cam.name] = host.numpy()
            self._dev_img[cam.name] = host if device.type == "cpu" else host.to(device)
        self._stage_state = torch.zeros((n, j), dtype=torch.float32, pin_memory=pin)
        self._stage_state_np = self._stage_state.numpy()
        self._dev_state = (
            self._stage_state if device.type == "cpu" else self._stage_state.to(device)
        )
        self._buffers_device = device
        self._frames_seen = 0

    def _validate_observation(self, obs: Observation) -> np.ndarray:
        if not isinstance(obs, Observation):
            raise TypeError(f"predict_chunk needs an Observation, got {type(obs).__name__}")
        for cam in self.config.cameras:
            img = obs.images.get(cam.name)
            if img is None:
                raise ValueError(
                    f"observation has no image for camera {cam.name!r} (has {sorted(obs.images)})"
                )
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
                raise ValueError(
                    f"camera {cam.name!r}: image must be a uint8 numpy array, got "
                    f"{getattr(img, 'dtype', type(img).__name__)}"
                )
            if img.shape != (cam.height, cam.width, 3):
                raise ValueError(
                    f"camera {cam.name!r}: image shape {img.shape}, expected "
                    f"{(cam.height, cam.width, 3)} (uint8 RGB at the checkpoint's image size)"
                )
        q = np.asarray(obs.joint_positions, dtype=np.float64)
        if q.shape != (self.num_joints,):
            raise ValueError(
                f"joint_positions has shape {q.shape}, expected ({self.num_joints},) in the "
                f"order {self.joint_names}"
            )
        if not np.isfinite(q).all():
            raise ValueError(f"joint_positions are not finite: {q.tolist()}")
        return q

    def _push_observation(self, obs: Observation, q: np.ndarray) -> None:
        """Write the newest frame into the history buffers (oldest first)."""
        n = self.n_obs_steps
        if obs.history is not None:
            if len(obs.history) != n - 1:
                raise ValueError(
                    f"observation history has {len(obs.history)} frames, expected "
                    f"n_obs_steps - 1 = {n - 1}"
                )
            frames = [*obs.history, obs]
            qs = [self._validate_observation(f) for f in obs.history] + [q]
            for cam in self.config.cameras:
                buf = self._stage_img_np[cam.name]
                for i, f in enumerate(frames):
                    buf[i] = f.images[cam.name]
            for i, qi in enumerate(qs):
                self._stage_state_np[i] = qi
            self._frames_seen += 1
            return
        first = self._frames_seen == 0
        for cam in self.config.cameras:
            buf = self._stage_img_np[cam.name]
            if first:
                buf[:] = obs.images[cam.name]  # pad by repeating the first frame
            else:
                for i in range(n - 1):
                    buf[i] = buf[i + 1]
                buf[n - 1] = obs.images[cam.name]
        if first:
            self._stage_state_np[:] = q
        else:
            for i in range(n - 1):
                self._stage_state_np[i] = self._stage_state_np[i + 1]
            self._stage_state_np[n - 1] = q
        self._frames_seen += 1

    def stage_observation(self, obs: Observation) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Validate ``obs`` and push it into the observation history; return the history.

        Returns (camera -> uint8 (n_obs, H, W, 3), float32 (n_obs, J) joint units), oldest
        frame first: views of the reused host buffers, valid until the next call. Shared by
        predict_chunk and the exported-model backends (robot_policy_ros.inference), so that
        validation and history behave the same whatever runs the network.
        """
        if self.training:
            raise RuntimeError("predict_chunk needs eval mode: call policy.eval() first")
        q = self._validate_observation(obs)
        p0 = next(self.parameters())
        device = p0.device
        if self._buffers_device != device or self._runtime_dtype != p0.dtype:
            # moved (to_runtime, or a plain .to()/.half()): new buffers, history restarts
            self._runtime_dtype = p0.dtype
            self._allocate_buffers(device)
            self._on_runtime_change()
        self._push_observation(obs, q)
        return self._stage_img_np, self._stage_state_np

    def prepare_inputs(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """History tensors -> network inputs (the first step of the exported graphs too).

        images[cam]: uint8 (n_obs, H, W, 3); state: (n_obs, J) joint units. Returns
        images[cam] (1, n_obs, 3, H, W) in [0, 1] in the network dtype and the normalised
        float32 state (1, n_obs, J).
        """
        # contiguous NCHW: a permuted (channels-last strided) input makes torch run the whole
        # backbone channels-last, which on the CPU measured ~1.4x slower (ResNet18, 64x64).
        out = {
            name: buf.permute(0, 3, 1, 2)
            .unsqueeze(0)
            .to(self._runtime_dtype, memory_format=torch.contiguous_format)
            .div_(255.0)
            for name, buf in images.items()
        }
        return out, self.normalizer.normalize_state(state.unsqueeze(0))

    def chunk_from_history(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        """History tensors (see prepare_inputs) -> (chunk_size, J) float32 joint targets."""
        imgs, norm_state = self.prepare_inputs(images, state)
        actions = self._predict_normalized(imgs, norm_state)  # (1, chunk, J) normalised
        return self.normalizer.unnormalize_action(actions)[0]

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """(chunk_size, J) float64 joint targets for ``obs``; action i is for stamp + i/fps.

        Raises ValueError on a missing camera, a wrong image shape/dtype or bad joint
        positions, and RuntimeError if the module is in training mode (call ``eval()``).
        Not re-entrant: the input buffers and the observation history are shared, so call
        it from one thread at a time.
        """
        self.stage_observation(obs)
        with torch.inference_mode():
            if self._buffers_device is not None and self._buffers_device.type != "cpu":
                for name, host in self._stage_img.items():
                    self._dev_img[name].copy_(host, non_blocking=True)
                self._dev_state.copy_(self._stage_state, non_blocking=True)
            out = self.chunk_from_history(self._dev_img, self._dev_state)
            return out.to("cpu", torch.float64).numpy()

    def _predict_normalized(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        """images[cam]: (B, n_obs, 3, H, W) in [0,1]; state (B, n_obs, J) normalised float32.

        Returns (B, chunk_size, J) normalised actions.
        """
        raise NotImplementedError

    # --- training ------------------------------------------------------------------------
    def _prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Validate a training batch, move it to the device, normalise state and action."""
        p0 = next(self.parameters())
        device, self._runtime_dtype = p0.device, p0.dtype
        n, j = self.n_obs_steps, self.num_joints
        n_act = len(self.action_delta_indices)
        if "state" not in batch or "action" not in batch or "images" not in batch:
            raise KeyError("batch needs 'images', 'state' and 'action'")
        state = torch.as_tensor(batch["state"]).to(device, non_blocking=True)
        if state.ndim == 2 and n == 1:
            state = state.unsqueeze(1)
        if state.ndim != 3 or state.shape[1:] != (n, j):
            raise ValueError(
                f"batch['state'] has shape {tuple(state.shape)}, expected (B, {n}, {j})"
            )
        b = state.shape[0]
        action = torch.as_tensor(batch["action"]).to(device, non_blocking=True)
        if action.shape != (b, n_act, j):
            raise ValueError(
                f"batch['action'] has shape {tuple(action.shape)}, expected ({b}, {n_act}, {j})"
            )
        pad = batch.get("action_is_pad")
        if pad is None:
            pad = torch.zeros((b, n_act), dtype=torch.bool, device=device)
        else:
            pad = torch.as_tensor(pad).to(device, non_blocking=True).bool()
            if pad.shape != (b, n_act):
                raise ValueError(
                    f"batch['action_is_pad'] has shape {tuple(pad.shape)}, expected ({b}, {n_act})"
                )
        images = {}
        for cam in self.config.cameras:
            if cam.name not in batch["images"]:
                raise KeyError(f"batch['images'] has no camera {cam.name!r}")
            img = torch.as_tensor(batch["images"][cam.name]).to(device, non_blocking=True)
            if img.ndim == 4 and n == 1:
                img = img.unsqueeze(1)
            expected = (b, n, 3, cam.height, cam.width)
            if tuple(img.shape) != expected:
                raise ValueError(
                    f"batch['images'][{cam.name!r}] has shape {tuple(img.shape)}, "
                    f"expected {expected}"
                )
            if img.dtype == torch.uint8:
                img = img.float().div_(255.0)
            images[cam.name] = img.to(self._runtime_dtype)
        return {
            "images": images,
            "state": self.normalizer.normalize_state(state),
            "action": self.normalizer.normalize_action(action),
            "action_is_pad": pad,
        }

    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss (scalar tensor with grad) and a dict of float logs.

        batch["images"][cam]: float32 (B, n_obs, 3, H, W) in [0, 1];
        batch["state"]: (B, n_obs, J) joint units;
        batch["action"]: (B, len(action_delta_indices), J) joint units;
        batch["action_is_pad"]: bool (B, len(action_delta_indices)), optional.
        """
        prepared = self._prepare_batch(batch)
        return self._compute_loss_normalized(**prepared)

    def _compute_loss_normalized(
        self,
        images: dict[str, torch.Tensor],
        state: torch.Tensor,
        action: torch.Tensor,
        action_is_pad: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    # --- helpers for families ------------------------------------------------------------
    def _encode_camera_input(self, x: torch.Tensor, camera: str | None = None) -> torch.Tensor:
        """(N, 3, H, W) [0, 1] -> normalised (ImageNet, or ``camera``'s statistics when the
        config has per-camera ones), in the network dtype."""
        if self.camera_normalize is not None and camera is not None:
            return self.camera_normalize[camera](x.to(self._runtime_dtype))
        return self.image_normalize(x.to(self._runtime_dtype))
