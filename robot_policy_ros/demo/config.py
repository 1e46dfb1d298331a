"""What the demo does: its configuration, the per-family training options, progress lines."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

ARM_NS = "/demo_arm"
CAMERA = "front"


# Per-family training options the demo adds. The MLP is the product's family and the one
# tuned to meet the bar. ACT's default 100-action chunk is far longer than a 2 s episode.
# Diffusion on a CPU: its default U-Net (76 M parameters, 10 DDIM steps) infers in ~0.4-0.5 s,
# longer than its 8-action chunk lasts at 15 Hz, so every chunk would arrive stale; a
# smaller U-Net, 5 DDIM steps and 12 actions per chunk (~70 ms for a 0.73 s chunk).
FAMILY_TRAIN_ARGS: dict[str, list[str]] = {
    "mlp": [],
    "act": ["--chunk-size", "10"],
    "diffusion": [
        "--chunk-size", "12",
        "--set", "down_dims=[128,256,512]",
        "--set", "num_inference_steps=5",
    ],
}  # fmt: skip


@dataclass
class DemoConfig:
    """What the demo does; the defaults meet the bar on a 2-core CPU machine (doc/demo.md)."""

    policy: str = "mlp"
    demo_episodes: int = 100
    eval_episodes: int = 20
    train_seed: int = 1
    eval_seed: int = 7777
    # Training: ResNet18 from scratch at 64x64 (2.5x the samples/s of 96x96 on a CPU;
    # the target disc stays ~3 px wide), AdamW at 3e-4 with cosine decay, 2 CPU threads.
    train_steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    image_size: str = "64x64"
    val_fraction: float = 0.05
    train_threads: int = 2
    # The sim's camera: small frames (the policy sees 64x64) keep bags, rendering and
    # decoding cheap.
    image_width: int = 160
    image_height: int = 120
    camera_rate_hz: float = 15.0
    expert_noise_std: float = 0.01
    episode_timeout_s: float = 10.0
    # Deployment.
    control_rate_hz: float = 50.0
    blending: str = "replace"
    # policy_node's horizon trigger: infer again when less than this much of the published
    # chunk remains, i.e. execute ~(chunk span - this) of every chunk. Executing only the
    # first ~0.1 s of each chunk can stall at the pauses of the expert's moves (start, hover).
    refill_threshold_s: float = 0.3
    # Between evaluation episodes, deactivate the policy stack, reset the scene, activate
    # it again (what an operator does on a real arm): nothing from the previous episode is
    # replayed and the streamer ramps in from the measured position.
    restart_each_episode: bool = True
    out_dir: Path = Path("demo_output")
    domain_id: int | None = None
    extra_train_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in ("mlp", "act", "diffusion"):
            raise ValueError(f"policy {self.policy!r}: choose mlp, act or diffusion")
        for name in ("demo_episodes", "eval_episodes", "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.blending not in ("replace", "temporal_ensemble", "average", "crossfade"):
            raise ValueError(f"blending {self.blending!r} is not a command_streamer mode")


class Stopwatch:
    """Elapsed time since the demo started, for progress lines."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f"[demo {self():6.1f}s] {text}", flush=True)
