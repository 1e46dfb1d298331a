"""Training loop behind ``robot-policy train``: bags -> aligned dataset -> policy checkpoint.

- data: episode bags are loaded once (decoded frames cached, see :mod:`..data.dataset`),
  split into training and validation *by episode*; normalization statistics come from the
  training episodes, joint limits from all demonstrations (never beyond the robot's).
- optimisation: AdamW, linear warm-up then cosine (or constant) learning rate, gradient
  clipping, optional mixed precision on CUDA (bf16 or fp16 with loss scaling).
- output (rank 0 only): ``OUT/checkpoints/step_XXXXXXX/`` every ``checkpoint_every`` steps
  and the final checkpoint in ``OUT/`` itself, each in the safe checkpoint format
  (``config.json`` + safetensors weights) plus the training state for ``--resume``
  (``optimizer.safetensors`` + ``training_state.json``: no pickles); ``train_log.csv``,
  ``loss_curve.png``, ``dataset_report.json`` and, when the tensorboard package is
  installed, TensorBoard event files.
- multi-GPU / multi-process: under ``torchrun`` the same code runs with
  DistributedDataParallel (NCCL on CUDA, Gloo on the CPU) and a DistributedSampler.
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
import math
import os
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from robot_policy_ros.checkpoint.config import IMAGE_FITS, CameraInput
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.data.bag_reader import TopicConfig, find_bags
from robot_policy_ros.data.dataset import (
    DatasetConfig,
    DemonstrationDataset,
    Episode,
    load_episodes,
    load_recording,
    normalization_from_episodes,
    split_episodes,
)
from robot_policy_ros.data.stats import estimate_limits
from robot_policy_ros.training import ddp

LOG = logging.getLogger("robot_policy_ros.train")

TRAINING_STATE_FILE = "training_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
LOG_FILE = "train_log.csv"
CURVE_FILE = "loss_curve.png"
CSV_FIELDS = ("step", "epoch", "train_loss", "val_loss", "lr", "samples_per_s", "elapsed_s")


class TrainingError(RuntimeError):
    """Training cannot start or continue (message says why and what to change)."""


@dataclass
class TrainConfig:
    """Everything ``robot-policy train`` can set (see train_cli for the options)."""

    data: list[str]
    out: str
    policy: str = "mlp"
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_steps: int | None = None
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    seed: int = 0
    image_size: tuple[int, int] = (96, 96)
    image_fit: str = "resize"
    chunk_size: int | None = None
    fps: float | None = None
    device: str = "auto"
    resume: str | None = None
    checkpoint_every: int = 1000
    val_every: int | None = None
    log_every: int = 10
    num_workers: int | None = None
    action_source: str = "commands"
    max_velocity: list[float] | None = None
    limits_file: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    log_dir: str | None = None
    amp: str = "off"
    cache_dir: str | None = None
    cameras: list[str] | None = None
    joint_names: list[str] | None = None
    topics: TopicConfig = field(default_factory=TopicConfig)
    shift_px: int = 0
    max_state_gap_s: float = 0.1
    torch_threads: int | None = None
    decode_workers: int | None = None
    progress: bool = True
    tensorboard: bool = True

    def validate(self) -> None:
        if not self.data:
            raise TrainingError("give at least one --data directory")
        if self.steps is not None and self.steps < 1:
            raise TrainingError("--steps must be >= 1")
        if self.epochs is not None and self.epochs < 1:
            raise TrainingError("--epochs must be >= 1")
        if self.batch_size < 1:
            raise TrainingError("--batch-size must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError("--lr must be a positive number")
        if self.lr_schedule not in ("cosine", "constant"):
            raise TrainingError("--lr-schedule must be cosine or constant")
        if self.amp not in ("off", "bf16", "fp16"):
            raise TrainingError("--amp must be off, bf16 or fp16")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainingError("--val-fraction must be in [0, 1)")
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise TrainingError("--image-size must be HxW with both at least 8")
        if self.action_source not in ("commands", "measured"):
            raise TrainingError("--action-source must be commands or measured")
        if self.image_fit not in IMAGE_FITS:
            raise TrainingError(f"--image-fit must be one of {', '.join(IMAGE_FITS)}")


def _resumed_fit(policy: Any) -> str:
    """The image fit a resumed checkpoint was trained with (one for all its cameras)."""
    fits = {c.fit for c in policy.config.cameras}
    if len(fits) != 1:
        raise TrainingError(f"resuming needs one image fit for every camera, got {sorted(fits)}")
    return fits.pop()


@dataclass
class TrainResult:
    """What a run produced."""

    out_dir: Path
    checkpoint: Path
    steps: int
    epochs: float
    first_train_loss: float
    final_train_loss: float
    final_val_loss: float
    samples_per_s: float
    train_samples: int
    val_samples: int
    history: list[dict[str, Any]] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def git_commit() -> str | None:
    """The source tree's git commit, if it is a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def auto_num_workers(local_world_size: int = 1) -> int:
    """DataLoader workers: none on small machines (frames are cached), a few on big ones."""
    cores = os.cpu_count() or 1
    per_rank = cores // max(1, local_world_size)
    if per_rank <= 4:
        return 0
    return min(8, per_rank // 4)


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """Multiplier of the base LR at a step: linear warm-up, then cosine to 0 or constant."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


class LossModule(nn.Module):
    """Wraps ``policy.compute_loss`` as ``forward`` so that DDP synchronises gradients."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.policy.compute_loss(batch)


def has_unused_parameters(policy: nn.Module, batch: dict[str, Any]) -> bool:
    """Whether a training loss leaves some parameter without a gradient (DDP must know).

    Runs one forward/backward without side effects (RNG and module state restored).
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    saved = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    devices = [params[0].device] if params and params[0].device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        loss, _ = policy.compute_loss(batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    policy.load_state_dict(saved)
    return any(g is None for g in grads)


class SkipSampler(Sampler):
    """The indices of ``base`` without the first ``skip`` ones (resume mid-epoch)."""

    def __init__(self, base: Sampler, skip: int) -> None:
        self.base = base
        self.skip = int(skip)

    def __iter__(self):
        for i, idx in enumerate(self.base):
            if i >= self.skip:
                yield idx

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)  # type: ignore[arg-type]


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move tensors to ``device``; uint8 images become float32 in [0, 1] on the device."""
    nb = device.type == "cuda"
    images = {
        cam: (
            img.to(device, non_blocking=nb).float().div_(255.0)
            if img.dtype == torch.uint8
            else img.to(device, non_blocking=nb)
        )
        for cam, img in batch["images"].items()
    }
    return {
        "images": images,
        "state": batch["state"].to(device, non_blocking=nb),
        "action": batch["action"].to(device, non_blocking=nb),
        "action_is_pad": batch["action_is_pad"].to(device, non_blocking=nb),
    }


# -- optimizer / training state (safetensors + json, no pickles) ------------------------


def save_training_state(
    out: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    state: dict[str, Any],
) -> None:
    """Write ``optimizer.safetensors`` and ``training_state.json`` into ``out``."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            name = f"state.{pid}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().to("cpu").contiguous()
            else:
                scalars[name] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    tmp = out / (OPTIMIZER_FILE + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(out / OPTIMIZER_FILE)
    sched_state = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    py_state = random.getstate()
    doc = {
        **state,
        "optimizer": {"param_groups": sd["param_groups"], "scalars": scalars},
        "scheduler": sched_state,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": {
            "python": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        },
    }
    tmp = out / (TRAINING_STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default))
    tmp.replace(out / TRAINING_STATE_FILE)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else value.tolist()
    return str(value)


def load_training_state(
    path: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    device: torch.device,
) -> dict[str, Any]:
    """Restore optimizer/scheduler/scaler/RNG state written by :func:`save_training_state`."""
    from safetensors.torch import load_file

    meta_path = path / TRAINING_STATE_FILE
    opt_path = path / OPTIMIZER_FILE
    if not meta_path.is_file() or not opt_path.is_file():
        raise TrainingError(
            f"{path} has no {TRAINING_STATE_FILE}/{OPTIMIZER_FILE}: not a training checkpoint "
            "(resume from OUT or OUT/checkpoints/step_N of an earlier run)"
        )
    doc = json.loads(meta_path.read_text())
    tensors = load_file(str(opt_path))
    groups = doc["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in doc["optimizer"]["scalars"].items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise TrainingError(f"optimizer state in {path} does not fit this model: {exc}") from exc
    for pstate in optimizer.state.values():  # move moments to the parameters' device
        for key, value in pstate.items():
            if torch.is_tensor(value) and key != "step":
                pstate[key] = value.to(device)
    # The LR lambda is rebuilt from the config; only the counters are restored.
    scheduler.load_state_dict({**doc["scheduler"], "lr_lambdas": [None] * len(groups)})
    if scaler is not None and scaler.is_enabled() and doc.get("scaler"):
        scaler.load_state_dict(doc["scaler"])
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    rng = doc.get("rng", {})
    if "python" in rng:
        v, s, g = rng["python"]
        random.setstate((v, tuple(s), g))
    if "numpy" in rng and "rng.numpy" in tensors:
        name, pos, has_gauss, cached = rng["numpy"]
        keys = tensors["rng.numpy"].numpy().astype(np.uint32)
        np.random.set_state((name, keys, pos, has_gauss, cached))
    return doc


# -- logging ------------------------------------------------------------------------------


class RunLog:
    """CSV (+ optional TensorBoard) log and the PNG loss curve; only rank 0 writes."""

    def __init__(self, log_dir: Path, enabled: bool, resume_step: int, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = log_dir / LOG_FILE
        self.curve = log_dir / CURVE_FILE
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        if not enabled:
            return
        log_dir.mkdir(parents=True, exist_ok=True)
        if resume_step > 0 and self.path.is_file():
            with self.path.open() as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(self.rows)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(log_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: the CSV has the same numbers
                self.tb = None
                LOG.info("TensorBoard logging off (install tensorboard); CSV log: %s", self.path)

    def add(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: row.get(k, "") for k in CSV_FIELDS}
        for k, v in clean.items():
            if isinstance(v, float):
                clean[k] = "" if math.isnan(v) else f"{v:.6g}"
        self.rows.append(clean)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow(clean)
        if self.tb is not None:
            step = int(row["step"])
            for key in ("train_loss", "val_loss", "lr", "samples_per_s"):
                v = row.get(key)
                if isinstance(v, float) and math.isfinite(v):
                    self.tb.add_scalar(key, v, step)

    def plot(self) -> None:
        """Write the loss curve (train and validation loss against step)."""
        if not self.enabled or not self.rows:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def series(key: str) -> tuple[list[int], list[float]]:
            xs, ys = [], []
            for r in self.rows:
                if r.get(key) not in ("", None):
                    xs.append(int(r["step"]))
                    ys.append(float(r[key]))
            return xs, ys

        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        tx, ty = series("train_loss")
        vx, vy = series("val_loss")
        if tx:
            ax.plot(tx, ty, label="train", lw=1.2)
        if vx:
            ax.plot(vx, vy, "o-", label="validation", lw=1.5, ms=4)
        if all(v > 0 for v in ty + vy) and (ty or vy):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.curve.with_name(self.curve.stem + ".tmp.png")
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(self.curve)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# -- the trainer --------------------------------------------------------------------------


def _policy_api():
    """The policy factory and checkpoint functions (imported lazily: torch loads on first use)."""
    from robot_policy_ros.checkpoint.config import NormalizationStats
    from robot_policy_ros.checkpoint.weights import load_checkpoint, save_checkpoint
    from robot_policy_ros.policies.factory import make_config, make_policy

    return {
        "make_policy": make_policy,
        "make_config": make_config,
        "load_checkpoint": load_checkpoint,
        "save_checkpoint": save_checkpoint,
        "NormalizationStats": NormalizationStats,
    }


def chunk_overrides(policy_type: str, chunk: int | None, overrides: dict[str, Any]) -> dict:
    """``--chunk-size``: mlp/act ``chunk_size``; diffusion ``n_action_steps`` (horizon grown
    to fit n_obs_steps - 1 + chunk, rounded up to the U-Net's downsampling factor)."""
    out = dict(overrides)
    if chunk is None:
        return out
    if policy_type != "diffusion":
        out["chunk_size"] = int(chunk)
        return out
    n_obs = int(out.get("n_obs_steps", 2))
    down = out.get("down_dims", (256, 512, 1024))
    factor = 2 ** (len(down) - 1)
    horizon = int(out.get("horizon", 16))
    need = chunk + n_obs - 1
    if horizon < need:
        horizon = int(math.ceil(need / factor) * factor)
    out.update({"n_action_steps": int(chunk), "horizon": horizon})
    return out


def _estimate_fps(stamps: np.ndarray) -> float:
    if stamps.size < 2:
        raise TrainingError("cannot estimate the camera rate from fewer than 2 frames; give --fps")
    dt = float(np.median(np.diff(stamps)))
    if dt <= 0:
        raise TrainingError("camera stamps do not increase; give --fps")
    return round(1.0 / dt, 3)


def _robot_limits(
    config: TrainConfig, episodes: Sequence[Episode], joint_names: Sequence[str]
) -> JointLimits | None:
    """The robot's limits for ``joint_names``: --limits-file, else the robot config the
    recorder stored with the episodes, else None. Read by JointLimits (one set of rules)."""
    import yaml

    if config.limits_file:
        source = f"--limits-file {config.limits_file}"
        try:
            data = yaml.safe_load(Path(config.limits_file).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TrainingError(f"cannot read {source}: {exc}") from exc
    else:
        for ep in episodes:  # the recorder stores the robot config next to each bag
            data = ep.recording.metadata.get("robot_config")
            if isinstance(data, dict) and isinstance(data.get("joints"), list):
                source = f"the robot_config recorded with {ep.recording.path}"
                break
        else:
            return None
    try:
        return JointLimits.from_mapping(data, joint_names)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise TrainingError(
            f"robot joint limits from {source}: {message} (fix them, or give --limits-file)"
        ) from None


def train(config: TrainConfig, api: dict[str, Any] | None = None) -> TrainResult:
    """Run a training job (one process of a torchrun job, or the only one)."""
    config.validate()
    api = api or _policy_api()
    info = ddp.init_distributed(config.device)
    try:
        return _train(config, api, info)
    finally:
        ddp.cleanup(info)


def _train(config: TrainConfig, api: dict[str, Any], info: ddp.DistInfo) -> TrainResult:
    device = info.device
    main = info.is_main
    out = Path(config.out).expanduser()
    log_dir = Path(config.log_dir).expanduser() if config.log_dir else out
    if main:
        out.mkdir(parents=True, exist_ok=True)
    if device.type == "cpu":
        cores = os.cpu_count() or 1
        threads = config.torch_threads or max(1, cores // max(1, info.local_world_size))
        torch.set_num_threads(threads)
    seed_everything(config.seed + info.rank)

    bags = find_bags(config.data)
    peek_cfg = DatasetConfig(
        image_size=tuple(config.image_size),
        fps=1.0,
        action_delta_indices=(0,),
        cameras=tuple(config.cameras) if config.cameras else None,
        joint_names=tuple(config.joint_names) if config.joint_names else None,
        topics=config.topics,
        cache_dir=config.cache_dir,
        image_fit=config.image_fit,
    )

    resumed = None
    if config.resume:
        resumed = api["load_checkpoint"](config.resume, device="cpu")
        joint_names = list(resumed.joint_names)
        cameras = list(resumed.camera_names)
        shapes = {c: tuple(s) for c, s in resumed.image_shapes.items()}
        if len(set(shapes.values())) != 1:
            raise TrainingError("resuming needs every camera at the same image size")
        image_size = next(iter(shapes.values()))
        fps = float(resumed.fps)
    else:
        # Joints, cameras and the frame rate come from the first bag unless given.
        if main:
            first, _ = load_recording(bags[0], peek_cfg)
        ddp.barrier(info)
        if not main:
            first, _ = load_recording(bags[0], peek_cfg)
        joint_names = list(config.joint_names or first.joint_names)
        cameras = list(config.cameras or sorted(first.cameras))
        image_size = tuple(config.image_size)
        fps = float(config.fps or _estimate_fps(first.cameras[cameras[0]].stamps))
        # The checkpoint records how frames were mapped and from what size, so policy_node
        # applies the same transform and refuses a camera of another aspect ratio.
        camera_inputs = [
            CameraInput(
                name=c,
                height=int(image_size[0]),
                width=int(image_size[1]),
                fit=config.image_fit,
                source_height=int(first.cameras[c].source_shape[0]),
                source_width=int(first.cameras[c].source_shape[1]),
            )
            for c in cameras
        ]
    overrides = chunk_overrides(config.policy, config.chunk_size, config.overrides)
    if resumed is None:
        policy_cfg = api["make_config"](config.policy, joint_names, camera_inputs, fps, **overrides)
        obs_deltas = list(policy_cfg.observation_delta_indices)
        act_deltas = list(policy_cfg.action_delta_indices)
    else:
        obs_deltas = list(resumed.observation_delta_indices)
        act_deltas = list(resumed.action_delta_indices)

    ds_cfg = DatasetConfig(
        image_size=tuple(image_size),
        fps=fps,
        action_delta_indices=tuple(act_deltas),
        observation_delta_indices=tuple(obs_deltas),
        cameras=tuple(cameras),
        joint_names=tuple(joint_names),
        action_source=config.action_source,
        topics=config.topics,
        max_state_gap_s=config.max_state_gap_s,
        cache_dir=config.cache_dir,
        image_fit=config.image_fit if resumed is None else _resumed_fit(resumed),
    )
    # Rank 0 decodes and caches first (in parallel processes on machines with cores to
    # spare); the other ranks then read the cache.
    cores = os.cpu_count() or 1
    decode_workers = (
        config.decode_workers
        if config.decode_workers is not None
        else (min(8, cores) if cores >= 4 else 1)
    )
    episodes: list[Episode] = []
    report = None
    if main:
        if config.progress:
            LOG.info("loading %d bags", len(bags))
        episodes, report = load_episodes(bags, ds_cfg, decode_workers=decode_workers)
    ddp.barrier(info)
    if not main:
        episodes, report = load_episodes(bags, ds_cfg)
    assert report is not None
    if not episodes:
        raise TrainingError(f"no usable episodes in {config.data}: {report.failed}")
    if main:
        LOG.info("dataset: %s", report.summary())
        for bag, why in report.failed.items():
            LOG.warning("skipped bag %s: %s", bag, why)

    train_eps, val_eps = split_episodes(episodes, config.val_fraction, config.seed)
    stats = normalization_from_episodes(train_eps)
    robot = _robot_limits(config, episodes, joint_names)
    limits = estimate_limits(
        joint_names,
        [e.recording.joint_positions for e in episodes],
        [e.recording.joint_stamps for e in episodes],
        [e.recording.command_positions for e in episodes],
        max_velocity=config.max_velocity,
        robot_limits=robot,
    )
    j = len(joint_names)
    stats_obj = api["NormalizationStats"].from_dict(stats, j)
    if resumed is None:
        policy = api["make_policy"](
            config.policy,
            joint_names,
            camera_inputs,
            fps,
            stats=stats_obj,
            limits=limits,
            seed=config.seed,
            **overrides,
        )
    else:
        policy = resumed  # keeps the statistics and limits it was trained with
    policy.to(device)
    policy.train()

    train_ds = DemonstrationDataset(
        train_eps, obs_deltas, fps, shift_px=config.shift_px, image_dtype="uint8", seed=config.seed
    )
    val_ds = (
        DemonstrationDataset(val_eps, obs_deltas, fps, image_dtype="uint8") if val_eps else None
    )
    workers = (
        config.num_workers
        if config.num_workers is not None
        else auto_num_workers(info.local_world_size)
    )
    if info.distributed:
        from torch.utils.data.distributed import DistributedSampler

        base_sampler: Sampler = DistributedSampler(
            train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed
        )
    else:
        base_sampler = _SeededRandomSampler(train_ds, config.seed)
    batches_per_epoch = max(1, math.ceil(len(base_sampler) / config.batch_size))  # type: ignore[arg-type]
    total_steps = config.steps or (config.epochs or 20) * batches_per_epoch
    warmup = (
        config.warmup_steps
        if config.warmup_steps is not None
        else min(500, max(0, total_steps // 20))
    )

    module: nn.Module = LossModule(policy)
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        probe = next(iter(DataLoader(train_ds, batch_size=min(2, len(train_ds)))))
        unused = has_unused_parameters(policy, batch_to_device(probe, device))
        module = DistributedDataParallel(
            module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=unused,
        )
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.lr_schedule, warmup, total_steps)
    )
    use_amp = config.amp != "off" and device.type == "cuda"
    amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and config.amp == "fp16")

    step = 0
    best_val = math.inf
    if config.resume:
        doc = load_training_state(Path(config.resume), optimizer, scheduler, scaler, device)
        step = int(doc.get("step", 0))
        best_val = float(doc.get("best_val_loss", math.inf))
        if main:
            LOG.info("resumed from %s at step %d", config.resume, step)
    if step >= total_steps and main:
        LOG.warning("already at step %d >= %d; only saving", step, total_steps)

    run_log = RunLog(log_dir, main, step, config.tensorboard)
    if main:
        (out / "dataset_report.json").write_text(
            json.dumps(
                {
                    "summary": report.summary(),
                    "bags": [str(b) for b in bags],
                    "train_episodes": [str(e.path) for e in train_eps],
                    "val_episodes": [str(e.path) for e in val_eps],
                    "skipped_frames": dict(report.skipped),
                    "failed_bags": report.failed,
                    "warnings": report.warnings[:200],
                    "normalization": stats,
                    # The checkpoint's columns and the limits_file's joints list.
                    "limits": {**limits.to_columns(), **limits.to_dict()},
                },
                indent=1,
            )
        )

    def make_loader(epoch: int, skip_batches: int) -> DataLoader:
        if hasattr(base_sampler, "set_epoch"):
            base_sampler.set_epoch(epoch)
        sampler = SkipSampler(base_sampler, skip_batches * config.batch_size)
        # The loader's own generator (worker seeds) keeps the global RNG untouched, so a run
        # resumed mid-epoch draws the same dropout/noise as the uninterrupted one.
        gen = torch.Generator()
        gen.manual_seed(config.seed * 7919 + epoch * 104729 + info.rank)
        return DataLoader(
            train_ds,
            batch_size=config.batch_size,
            sampler=sampler,
            generator=gen,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            drop_last=False,
            persistent_workers=False,
        )

    def validate() -> float:
        if val_ds is None:
            return math.nan
        from torch.utils.data import SequentialSampler

        if info.distributed:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                val_ds, num_replicas=info.world_size, rank=info.rank, shuffle=False
            )
        else:
            sampler = SequentialSampler(val_ds)
        loader = DataLoader(val_ds, batch_size=config.batch_size, sampler=sampler, num_workers=0)
        policy.eval()
        total, count = 0.0, 0
        # Fixed noise for the stochastic losses (diffusion), so validation is comparable.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed + 12345)
            with torch.no_grad():
                for batch in loader:
                    b = batch_to_device(batch, device)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                        loss, _ = policy.compute_loss(b)
                    n = b["state"].shape[0]
                    total += float(loss) * n
                    count += n
        policy.train()
        total, count = ddp.all_reduce_sum([total, float(count)], info)
        return total / count if count else math.nan

    def save(dest: Path, final: bool, train_loss: float, val_loss: float) -> None:
        if not main:
            return
        provenance = {
            "source": "robot-policy train",
            "trained": True,
            "data_dirs": [str(Path(d).resolve()) for d in config.data],
            "train_episodes": len(train_eps),
            "val_episodes": len(val_eps),
            "train_samples": len(train_ds),
            "val_samples": len(val_ds) if val_ds is not None else 0,
            "steps": step,
            "epochs": round(step / batches_per_epoch, 3),
            "final": final,
            "train_loss": _finite_or_none(train_loss),
            "val_loss": _finite_or_none(val_loss),
            "best_val_loss": _finite_or_none(best_val),
            "seed": config.seed,
            "batch_size": config.batch_size,
            "world_size": info.world_size,
            "lr": config.lr,
            "action_source": config.action_source,
            "image_size": list(image_size),
            "git_commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "skipped_frames": dict(report.skipped),
        }
        dest.mkdir(parents=True, exist_ok=True)
        api["save_checkpoint"](policy, dest, provenance=provenance)
        save_training_state(
            dest,
            optimizer,
            scheduler,
            scaler,
            {
                "step": step,
                "total_steps": total_steps,
                "best_val_loss": _finite_or_none(best_val),
                "train_config": _jsonable_config(config),
            },
        )

    from tqdm import tqdm

    bar = tqdm(
        total=total_steps,
        initial=min(step, total_steps),
        disable=not (main and config.progress),
        unit="step",
        dynamic_ncols=True,
        desc=f"train {config.policy}",
    )
    t_start = time.perf_counter()
    window_loss, window_n, window_samples = 0.0, 0, 0
    window_t = time.perf_counter()
    first_loss = math.nan
    last_train = math.nan
    last_val = math.nan
    speed = math.nan
    history: list[dict[str, Any]] = []
    val_every = config.val_every or config.checkpoint_every or batches_per_epoch
    epoch = step // batches_per_epoch
    skip = step % batches_per_epoch
    while step < total_steps:
        for batch in make_loader(epoch, skip):
            b = batch_to_device(batch, device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss, _logs = module(b)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {float(loss)} at step {step}: lower --lr, check the data "
                    "(dataset_report.json) or use --amp off"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            if math.isnan(first_loss):
                first_loss = value
            n = b["state"].shape[0]
            window_loss += value * n
            window_n += n
            window_samples += n * info.world_size
            if step % config.log_every == 0 or step == total_steps:
                s, c = ddp.all_reduce_sum([window_loss, float(window_n)], info)
                last_train = s / max(c, 1.0)
                elapsed = time.perf_counter() - window_t
                speed = window_samples / elapsed if elapsed > 0 else math.nan
                row = {
                    "step": step,
                    "epoch": round(step / batches_per_epoch, 4),
                    "train_loss": last_train,
                    "val_loss": math.nan,
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": speed,
                    "elapsed_s": round(time.perf_counter() - t_start, 2),
                }
                run_log.add(row)
                history.append(row)
                window_loss, window_n, window_samples = 0.0, 0, 0
                window_t = time.perf_counter()
                bar.set_postfix(
                    loss=f"{last_train:.4g}",
                    val=f"{last_val:.4g}",
                    sps=f"{speed:.0f}",
                    refresh=False,
                )
            bar.update(1)
            if step % val_every == 0 and step < total_steps:
                last_val = validate()
                best_val = min(best_val, last_val) if math.isfinite(last_val) else best_val
                row = {
                    "step": step,
                    "epoch": round(step / batches_per_epoch, 4),
                    "train_loss": math.nan,
                    "val_loss": last_val,
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": math.nan,
                    "elapsed_s": round(time.perf_counter() - t_start, 2),
                }
                run_log.add(row)
                history.append(row)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                if step < total_steps:
                    save(out / "checkpoints" / f"step_{step:07d}", False, last_train, last_val)
                    run_log.plot()
                ddp.barrier(info)
                window_t = time.perf_counter()  # the speed excludes validation and saving
            elif step % val_every == 0:
                window_t = time.perf_counter()
            if step >= total_steps:
                break
        epoch += 1
        skip = 0
    bar.close()
    if window_n:
        s, c = ddp.all_reduce_sum([window_loss, float(window_n)], info)
        last_train = s / max(c, 1.0)
    last_val = validate()
    if math.isfinite(last_val):
        best_val = min(best_val, last_val)
    final_row = {
        "step": step,
        "epoch": round(step / batches_per_epoch, 4),
        "train_loss": last_train,
        "val_loss": last_val,
        "lr": scheduler.get_last_lr()[0],
        "samples_per_s": speed,
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }
    run_log.add(final_row)
    history.append(final_row)
    save(out, True, last_train, last_val)
    run_log.plot()
    run_log.close()
    ddp.barrier(info)
    total_time = time.perf_counter() - t_start
    if main:
        LOG.info(
            "done: %d steps, train loss %.4g, val loss %.4g, %.1f s; checkpoint %s",
            step,
            last_train,
            last_val,
            total_time,
            out,
        )
    return TrainResult(
        out_dir=out,
        checkpoint=out,
        steps=step,
        epochs=step / batches_per_epoch,
        first_train_loss=first_loss,
        final_train_loss=last_train,
        final_val_loss=last_val,
        samples_per_s=speed,
        train_samples=len(train_ds),
        val_samples=len(val_ds) if val_ds is not None else 0,
        history=history,
    )


class _SeededRandomSampler(Sampler):
    """A shuffling sampler whose order depends only on (seed, epoch): resumable."""

    def __init__(self, data: Any, seed: int) -> None:
        self.n = len(data)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _finite_or_none(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _jsonable_config(config: TrainConfig) -> dict[str, Any]:
    d = asdict(config)
    d["image_size"] = list(config.image_size)
    return json.loads(json.dumps(d, default=_json_default))
