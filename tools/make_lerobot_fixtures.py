"""Build the LeRobot test fixtures in test/fixtures/lerobot/ (run in a LeRobot venv, not by CI).

    /work/lerobot-venvs/v061/bin/python tools/make_lerobot_fixtures.py [NAME ...]

Each fixture is a real LeRobot ``pretrained_model`` folder written by LeRobot's own
``save_pretrained`` for a small ACT or Diffusion policy whose every weight and statistic is
set from a seeded generator, plus ``io.npz``: fixed inputs in LeRobot's units and the
actions LeRobot itself returns for them.

Every spec names the LeRobot release it is made with (``made_with``: "0.3", "0.4", "0.5" or
"0.6"); a run builds the specs of the installed release only, so each venv (one per
release, e.g. ``pip install lerobot==0.3.3``) writes its own fixtures:
- LeRobot >= 0.4 saves the processor pipeline (policy_preprocessor.json / postprocessor)
  with the statistics in its state files; the actions are ``predict_action_chunk``
  followed by the postprocessor.
- LeRobot 0.3 keeps the statistics as normalisation buffers inside model.safetensors
  (the "legacy" layout) and normalises inside the policy; the actions are what its
  ``predict_action_chunk`` returns (Diffusion: after the observation queues are filled
  as ``select_action`` fills them, with the initial noise drawn from torch's generator
  seeded just before, the same numbers stored as ``noise``).

To keep the committed files small, every tensor longer than a short period repeats a
seeded random vector of that period (a different one for every tensor; 31 numbers in the
ResNet18 backbone, 61 elsewhere), and LeRobot's ``model.safetensors`` is stored losslessly
as ``model.safetensors.pack``: an xz stream of a JSON manifest and a payload, where each
segment of the file is a byte string repeated a whole number of times. The tests rebuild
the file and check its size and SHA-256 against those of the file LeRobot wrote (kept in
``fixture.json``, with the LeRobot and torch versions that made the fixture). Images use
16 grey levels per channel for the same reason. Deterministic: running the script twice
writes the same weights and actions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import lzma
import math
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

LEROBOT_VERSION = importlib.metadata.version("lerobot")
RELEASE = ".".join(LEROBOT_VERSION.split(".")[:2])  # e.g. "0.3"
# Before 0.4 there is no processor pipeline: the policy normalises with buffers it saves.
LEGACY = tuple(int(x) for x in RELEASE.split(".")) < (0, 4)
if not LEGACY:
    from lerobot.policies.factory import make_pre_post_processors

DEFAULT_MAPPING = {
    "VISUAL": NormalizationMode.MEAN_STD,
    "STATE": NormalizationMode.MIN_MAX,
    "ACTION": NormalizationMode.MIN_MAX,
}
OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "lerobot"
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def seeded_values(name: str, shape: tuple[int, ...], seed: int, tile: bool) -> torch.Tensor:
    """Deterministic values for one tensor, scaled so activations stay O(1)."""
    rng = np.random.default_rng([seed, sum(name.encode()) * 7919 + len(name)])
    n = int(np.prod(shape)) if shape else 1
    period = 31 if tile else 61
    base = rng.standard_normal(period if n > period else n)
    v = np.resize(base, n).reshape(shape)
    leaf = name.rsplit(".", 1)[-1]
    is_norm = ".bn" in name or "downsample.1" in name or "norm" in name
    if leaf == "running_var":
        v = 1.0 + 0.2 * np.abs(v)
    elif leaf == "running_mean":
        v = 0.1 * v
    elif is_norm and leaf == "weight":
        v = 1.0 + 0.1 * v
    elif leaf == "bias" or leaf.endswith("_bias"):
        v = 0.1 * v
    elif len(shape) >= 2:
        fan_in = n // shape[0]
        v = v / math.sqrt(fan_in)
    else:
        v = 0.5 * v
    return torch.as_tensor(v, dtype=torch.float32)


def stats_for(rng: np.random.Generator, dim: int, lo_scale: float) -> dict[str, torch.Tensor]:
    mean = rng.uniform(-30, 30, dim) * lo_scale
    std = rng.uniform(5, 20, dim) * lo_scale
    lo = mean - 2.5 * std
    hi = mean + 2.5 * std
    return {
        "mean": torch.tensor(mean, dtype=torch.float32),
        "std": torch.tensor(std, dtype=torch.float32),
        "min": torch.tensor(lo, dtype=torch.float32),
        "max": torch.tensor(hi, dtype=torch.float32),
    }


# Legacy normalisation buffers: they hold the dataset statistics, not weights.
NORM_BUFFERS = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")


def _seed_weights(policy: torch.nn.Module, seed: int) -> None:
    with torch.no_grad():
        for key, t in policy.state_dict().items():
            if not t.is_floating_point():
                continue
            if key.endswith(("vae_encoder_pos_enc", "pos_grid")) or key.startswith(NORM_BUFFERS):
                continue  # fixed tables and statistics, not weights
            t.copy_(seeded_values(key, tuple(t.shape), seed, tile="backbone" in key))


def _image_stats(rng: np.random.Generator, keys, image_range: bool = False) -> dict:
    """Per-camera statistics (ImageNet for the first camera, dataset-like for the others);
    ``image_range``: min/max other than 0/1 as well (for MIN_MAX image normalisation)."""
    stats = {}
    for i, key in enumerate(keys):
        if i == 0:
            mean, std = IMAGENET
        else:
            mean, std = rng.uniform(0.3, 0.6, 3).tolist(), rng.uniform(0.15, 0.3, 3).tolist()
        lo, hi = [0.0] * 3, [1.0] * 3
        if image_range:
            lo, hi = rng.uniform(0.0, 0.2, 3).tolist(), rng.uniform(0.75, 1.0, 3).tolist()
        stats[key] = {
            "mean": torch.tensor(mean, dtype=torch.float32).view(3, 1, 1),
            "std": torch.tensor(std, dtype=torch.float32).view(3, 1, 1),
            "min": torch.tensor(lo, dtype=torch.float32).view(3, 1, 1),
            "max": torch.tensor(hi, dtype=torch.float32).view(3, 1, 1),
        }
    return stats


def pack_safetensors(raw: bytes) -> bytes:
    """Lossless: each tensor's bytes as (chunk, repeat count) segments where they repeat."""
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    base = 8 + hlen
    pieces: list[bytes] = []
    segments: list[list[int]] = []
    pos = 0

    def add(chunk: bytes, count: int) -> None:
        nonlocal pos
        segments.append([pos, len(chunk), count])
        pieces.append(chunk)
        pos += len(chunk)

    add(raw[:base], 1)
    end = base
    entries = sorted(
        (v["data_offsets"] for k, v in header.items() if k != "__metadata__"),
        key=lambda o: o[0],
    )
    for start, stop in entries:
        assert base + start == end, "safetensors data not contiguous"
        data = raw[base + start : base + stop]
        end = base + stop
        done = False
        for period in (31, 61):
            pb = period * 4
            if len(data) > 2 * pb:
                count, rem = divmod(len(data), pb)
                if data[:pb] * count + data[:rem] == data:
                    add(data[:pb], count)
                    if rem:
                        add(data[:rem], 1)
                    done = True
                    break
        if not done:
            add(data, 1)
    assert end == len(raw)
    manifest = json.dumps({"size": len(raw), "segments": segments}).encode()
    blob = b"RPPK1" + struct.pack("<Q", len(manifest)) + manifest + b"".join(pieces)
    return lzma.compress(blob, preset=9)


def unpack_safetensors(packed: bytes) -> bytes:
    blob = lzma.decompress(packed)
    (mlen,) = struct.unpack("<Q", blob[5:13])
    manifest = json.loads(blob[13 : 13 + mlen])
    payload = blob[13 + mlen :]
    return b"".join(payload[o : o + n] * c for o, n, c in manifest["segments"])


def _save(out: Path, policy, pre, post, arrays: dict, spec: dict) -> None:
    policy.save_pretrained(out)
    if pre is not None:
        pre.save_pretrained(out)
        post.save_pretrained(out)
    np.savez_compressed(out / "io.npz", **arrays)
    raw = (out / "model.safetensors").read_bytes()
    packed = pack_safetensors(raw)
    assert unpack_safetensors(packed) == raw  # lossless, checked before anything is written
    (out / "model.safetensors.pack").write_bytes(packed)
    (out / "model.safetensors").unlink()
    record = {
        "lerobot_version": LEROBOT_VERSION,
        "torch_version": torch.__version__,
        "model_safetensors_size": len(raw),
        "model_safetensors_sha256": hashlib.sha256(raw).hexdigest(),
        "spec": {k: v for k, v in spec.items() if k not in ("normalization_mapping", "made_with")},
    }
    if LEGACY:
        record["layout"] = "legacy"
    (out / "fixture.json").write_text(json.dumps(record, indent=1, default=str) + "\n")


def _images(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 RGB with 16 levels per channel: low entropy, still every pixel distinct in use."""
    return (rng.integers(0, 16, shape) * 17).astype(np.uint8)


def _config(cls, **kwargs):
    """The config with only the fields this LeRobot version has; refuse a non-default one
    that it lacks (the fixture would silently test something else)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    kept = {}
    for key, value in kwargs.items():
        if key in names:
            kept[key] = value
        elif value not in (None, 1.0, False):
            raise SystemExit(f"{cls.__name__} of this LeRobot has no {key} (wanted {value!r})")
    return cls(**kept)


def build_diffusion(name: str, spec: dict) -> None:
    """A small Diffusion policy (DDIM, so that a given initial noise fixes the actions)."""
    seed = spec["seed"]
    rng = np.random.default_rng(seed)
    j, t = spec["joints"], spec["n_obs_steps"]
    inputs = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(j,))}
    for key, (h, w) in spec["cameras"].items():
        inputs[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(j,))}
    cfg = _config(
        DiffusionConfig,
        input_features=inputs,
        output_features=outputs,
        device="cpu",
        push_to_hub=False,
        n_obs_steps=t,
        horizon=spec["horizon"],
        n_action_steps=spec["n_action_steps"],
        crop_shape=spec.get("crop_shape"),
        resize_shape=spec.get("resize_shape"),
        crop_ratio=spec.get("crop_ratio", 1.0),
        pretrained_backbone_weights=None,
        use_group_norm=spec["use_group_norm"],
        spatial_softmax_num_keypoints=4,
        use_separate_rgb_encoder_per_camera=spec["separate"],
        down_dims=tuple(spec.get("down_dims", (16, 32))),
        kernel_size=spec.get("kernel_size", 3),
        n_groups=4,
        diffusion_step_embed_dim=8,
        use_film_scale_modulation=spec.get("film_scale", True),
        noise_scheduler_type=spec.get("scheduler", "DDIM"),
        beta_schedule=spec.get("beta_schedule", "squaredcos_cap_v2"),
        normalization_mapping=spec.get("normalization_mapping", DEFAULT_MAPPING),
        num_inference_steps=spec["num_inference_steps"],
        prediction_type=spec["prediction_type"],
        clip_sample=spec["clip_sample"],
        clip_sample_range=spec.get("clip_sample_range", 1.0),
    )
    stats = {"observation.state": stats_for(rng, j, 1.0), "action": stats_for(rng, j, 1.0)}
    stats.update(_image_stats(rng, spec["cameras"], spec.get("image_range", False)))
    torch.manual_seed(seed)
    policy = DiffusionPolicy(cfg, dataset_stats=stats) if LEGACY else DiffusionPolicy(cfg)
    _seed_weights(policy, seed)
    policy.eval()
    pre, post = (None, None) if LEGACY else make_pre_post_processors(cfg, dataset_stats=stats)
    out = OUT / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    n = 2
    st = stats["observation.state"]
    state = (st["mean"].numpy() + st["std"].numpy() * rng.standard_normal((n, t, j))).astype(
        np.float32
    )
    images = {key: _images(rng, (n, t, h, w, 3)) for key, (h, w) in spec["cameras"].items()}
    noise = rng.standard_normal((n, spec["horizon"], j)).astype(np.float32)
    obs = {"observation.state": torch.from_numpy(state)}
    for key, img in images.items():
        obs[key] = torch.from_numpy(img).permute(0, 1, 4, 2, 3).float() / 255.0
    with torch.no_grad():
        if LEGACY:
            noise, actions = _legacy_diffusion_actions(policy, obs, t, (n, spec["horizon"], j))
        elif RELEASE in ("0.4", "0.5"):
            # predict_action_chunk reads the observation queues only (no offline mode yet).
            frames = _fill_queues(policy, pre(obs), t)
            chunk = policy.predict_action_chunk(frames, noise=torch.from_numpy(noise))
            actions = post(chunk).numpy()
        else:
            batch = pre(obs)
            chunk = policy.predict_action_chunk(batch, noise=torch.from_numpy(noise))
            actions = post(chunk).numpy()
    arrays = {"state": state, "actions": actions.astype(np.float64), "noise": noise}
    for key, img in images.items():
        arrays[f"image.{key}"] = img
    _save(out, policy, pre, post, arrays, spec)
    print(name, "ok")


def _fill_queues(policy, batch: dict, t: int) -> dict:
    """The policy's observation queues filled frame by frame (oldest first) as its
    ``select_action`` fills them: cameras stacked under observation.images, then
    ``populate_queues``. ``batch`` is normalised, (N, T, ...). Returns the last frame."""
    from lerobot.policies.utils import populate_queues

    policy.reset()
    keys = ["observation.state", *policy.config.image_features]
    for k in range(t):
        frame = {key: batch[key][:, k] for key in keys}
        frame["observation.images"] = torch.stack(
            [frame[key] for key in policy.config.image_features], dim=-4
        )
        populate_queues(policy._queues, frame)
    return frame


def _legacy_diffusion_actions(
    policy, obs: dict, t: int, noise_shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """LeRobot < 0.4: the policy normalises (as its ``select_action`` does) and its
    ``predict_action_chunk`` reads the queues and unnormalises. It draws the initial noise
    from torch's global generator: that is seeded, and the same draw returned as the noise."""
    frame = _fill_queues(policy, policy.normalize_inputs(obs), t)
    torch.manual_seed(1234)
    noise = torch.randn(noise_shape, dtype=torch.float32)
    torch.manual_seed(1234)
    actions = policy.predict_action_chunk(frame)
    return noise.numpy(), actions.numpy()


def build_act(name: str, spec: dict) -> None:
    seed = spec["seed"]
    rng = np.random.default_rng(seed)
    j = spec["joints"]
    inputs = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(j,))}
    for key, (h, w) in spec["cameras"].items():
        inputs[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(j,))}
    cfg = _config(
        ACTConfig,
        input_features=inputs,
        output_features=outputs,
        device="cpu",
        push_to_hub=False,
        chunk_size=spec["chunk_size"],
        n_action_steps=spec["n_action_steps"],
        temporal_ensemble_coeff=spec.get("temporal_ensemble_coeff"),
        dim_model=32,
        n_heads=4,
        dim_feedforward=48,
        n_encoder_layers=spec.get("n_encoder_layers", 2),
        n_decoder_layers=spec.get("n_decoder_layers", 1),
        use_vae=spec.get("use_vae", True),
        latent_dim=8,
        n_vae_encoder_layers=1,
        pre_norm=spec["pre_norm"],
        feedforward_activation=spec.get("activation", "relu"),
        pretrained_backbone_weights=None,
        normalization_mapping=spec["normalization_mapping"],
    )
    stats = {"observation.state": stats_for(rng, j, 1.0), "action": stats_for(rng, j, 1.0)}
    stats.update(_image_stats(rng, spec["cameras"], spec.get("image_range", False)))
    torch.manual_seed(seed)
    policy = ACTPolicy(cfg, dataset_stats=stats) if LEGACY else ACTPolicy(cfg)
    _seed_weights(policy, seed)
    policy.eval()
    pre, post = (None, None) if LEGACY else make_pre_post_processors(cfg, dataset_stats=stats)

    out = OUT / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # Fixed inputs in LeRobot's units; LeRobot's own actions for them.
    n = 2
    st = stats["observation.state"]
    state = (st["mean"].numpy() + st["std"].numpy() * rng.standard_normal((n, j))).astype(
        np.float32
    )
    images = {key: _images(rng, (n, h, w, 3)) for key, (h, w) in spec["cameras"].items()}
    actions = []
    for i in range(n):
        obs = {"observation.state": torch.from_numpy(state[i])}
        for key, img in images.items():
            obs[key] = torch.from_numpy(img[i]).permute(2, 0, 1).float() / 255.0
        with torch.no_grad():
            if LEGACY:  # the policy normalises; it wants a batch dimension
                batch = {k: v.unsqueeze(0) for k, v in obs.items()}
                actions.append(policy.predict_action_chunk(batch).numpy()[0])
            else:
                batch = pre(obs)
                chunk = policy.predict_action_chunk(batch)
                actions.append(post(chunk).numpy()[0])
    arrays = {"state": state, "actions": np.stack(actions).astype(np.float64)}
    for key, img in images.items():
        arrays[f"image.{key}"] = img
    _save(out, policy, pre, post, arrays, spec)
    print(name, "ok", json.dumps({k: list(v) for k, v in spec["cameras"].items()}))


SPECS = {
    "act_one_camera": {
        "made_with": "0.6",
        "seed": 1,
        "joints": 6,
        "cameras": {"observation.images.front": (64, 64)},
        "chunk_size": 10,
        "n_action_steps": 5,
        "pre_norm": False,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    },
    "act_two_cameras": {
        "made_with": "0.6",
        "seed": 2,
        "joints": 5,
        "cameras": {
            "observation.images.top": (64, 96),
            "observation.images.wrist": (48, 64),
        },
        "chunk_size": 8,
        "n_action_steps": 1,
        "temporal_ensemble_coeff": 0.01,
        "pre_norm": True,
        "activation": "gelu",
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        },
    },
    # LeRobot 0.3 (legacy layout: statistics as buffers in model.safetensors): pre-norm,
    # two cameras of different sizes (the second with dataset statistics), MIN_MAX state and
    # MEAN_STD actions, the whole chunk used.
    "act_legacy_pre_norm_two_cameras": {
        "made_with": "0.3",
        "seed": 6,
        "joints": 6,
        "cameras": {
            "observation.images.front": (48, 80),
            "observation.images.wrist": (56, 56),
        },
        "chunk_size": 6,
        "n_action_steps": 6,
        "pre_norm": True,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    },
    # LeRobot 0.5: three cameras of three sizes (ImageNet statistics for the first, the
    # dataset's for the others), gelu, MIN_MAX actions, one encoder layer.
    "act_three_cameras": {
        "made_with": "0.5",
        "seed": 10,
        "joints": 5,
        "cameras": {
            "observation.images.left": (40, 40),
            "observation.images.right": (48, 64),
            "observation.images.wrist": (32, 56),
        },
        "chunk_size": 8,
        "n_action_steps": 4,
        "pre_norm": False,
        "activation": "gelu",
        "n_encoder_layers": 1,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MIN_MAX,
        },
    },
    # LeRobot 0.4: no VAE (no VAE weights saved), three encoder and two decoder layers,
    # MIN_MAX images with dataset min/max, unnormalised (IDENTITY) state, one camera.
    "act_no_vae_two_decoder_layers": {
        "made_with": "0.4",
        "seed": 8,
        "joints": 4,
        "cameras": {"observation.images.front": (56, 72)},
        "chunk_size": 12,
        "n_action_steps": 6,
        "pre_norm": False,
        "use_vae": False,
        "n_encoder_layers": 3,
        "n_decoder_layers": 2,
        "image_range": True,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MIN_MAX,
            "STATE": NormalizationMode.IDENTITY,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    },
}


DIFFUSION_SPECS = {
    # Two cameras through one shared BatchNorm ResNet18; resize 50x70 -> 43x47 then a centre
    # crop of 0.75 (32x35): an offset of 5.5 rows that torchvision rounds to 6.
    "diffusion_two_cameras": {
        "made_with": "0.6",
        "seed": 3,
        "joints": 4,
        "n_obs_steps": 2,
        "horizon": 8,
        "n_action_steps": 4,
        "cameras": {"observation.images.top": (50, 70), "observation.images.side": (50, 70)},
        "resize_shape": (43, 47),
        "crop_ratio": 0.75,
        "use_group_norm": False,
        "separate": False,
        "num_inference_steps": 5,
        "prediction_type": "epsilon",
        "clip_sample": True,
    },
    # One camera, GroupNorm ResNet18, DDIM with sample prediction, MEAN_STD state/action.
    "diffusion_group_norm_one_camera": {
        "made_with": "0.6",
        "seed": 4,
        "joints": 3,
        "n_obs_steps": 2,
        "horizon": 8,
        "n_action_steps": 3,
        "cameras": {"observation.images.front": (40, 48)},
        "crop_shape": (32, 40),
        "use_group_norm": True,
        "separate": False,
        "num_inference_steps": 4,
        "prediction_type": "sample",
        "clip_sample": False,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    },
    # Two cameras, one GroupNorm ResNet18 per camera, DDPM. LeRobot's DDPM draws fresh noise
    # at every step t > 0 from torch's global generator, which `predict` cannot be given, so
    # one inference step (t = 0, no added noise) keeps the actions a function of the inputs.
    "diffusion_separate_encoders_ddpm": {
        "made_with": "0.6",
        "seed": 5,
        "joints": 4,
        "n_obs_steps": 2,
        "horizon": 8,
        "n_action_steps": 4,
        "cameras": {"observation.images.top": (40, 48), "observation.images.wrist": (40, 48)},
        "crop_shape": (32, 32),
        "use_group_norm": True,
        "separate": True,
        "scheduler": "DDPM",
        "num_inference_steps": 1,
        "prediction_type": "epsilon",
        "clip_sample": True,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    },
    # LeRobot 0.3 (legacy layout): one BatchNorm ResNet18 per camera, a 30x36 centre crop
    # of 39x45 images (offsets of 4.5 pixels, which torchvision rounds to 4), MIN_MAX images
    # with dataset min/max, MEAN_STD state, MIN_MAX actions.
    "diffusion_legacy_separate_batch_norm": {
        "made_with": "0.3",
        "seed": 7,
        "joints": 5,
        "n_obs_steps": 2,
        "horizon": 8,
        "n_action_steps": 4,
        "cameras": {"observation.images.front": (39, 45), "observation.images.wrist": (39, 45)},
        "crop_shape": (30, 36),
        "use_group_norm": False,
        "separate": True,
        "num_inference_steps": 3,
        "prediction_type": "epsilon",
        "clip_sample": True,
        "image_range": True,
        "normalization_mapping": {
            "VISUAL": NormalizationMode.MIN_MAX,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MIN_MAX,
        },
    },
    # LeRobot 0.4: one observation step, no crop and no resize, a three-level U-Net with
    # kernel 5 and FiLM bias only (no scale), a linear beta schedule, DDIM sample prediction
    # with a clip range of 0.8.
    "diffusion_single_step_no_crop": {
        "made_with": "0.4",
        "seed": 9,
        "joints": 3,
        "n_obs_steps": 1,
        "horizon": 8,
        "n_action_steps": 6,
        "cameras": {"observation.images.front": (36, 44)},
        "crop_shape": None,
        "use_group_norm": True,
        "separate": False,
        "down_dims": (16, 32, 64),
        "kernel_size": 5,
        "film_scale": False,
        "beta_schedule": "linear",
        "num_inference_steps": 10,
        "prediction_type": "sample",
        "clip_sample": True,
        "clip_sample_range": 0.8,
    },
}


def main() -> int:
    torch.use_deterministic_algorithms(True)
    only = set(sys.argv[1:])
    for specs, build in ((SPECS, build_act), (DIFFUSION_SPECS, build_diffusion)):
        for name, spec in specs.items():
            if only and name not in only:
                continue
            if spec["made_with"] != RELEASE:
                if only:
                    want = spec["made_with"]
                    raise SystemExit(
                        f"{name} is made with LeRobot {want}, this is {LEROBOT_VERSION}"
                    )
                continue
            build(name, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
