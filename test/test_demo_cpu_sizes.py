"""The demo's CPU sizes of ACT and Diffusion Policy (robot_policy_ros.demo.config): each
constructs, trains a few steps at the demo's 64x64 images, saves, loads and infers a chunk
of its size; the command line the demo passes to training carries exactly those sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_policy_ros.checkpoint.weights import load_checkpoint
from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_dataset
from robot_policy_ros.demo.config import (
    CPU_DEMO_SIZES,
    TASK_DEMO_SIZES,
    DemoConfig,
    demo_sizes,
    family_train_args,
)
from robot_policy_ros.policies.base import Observation
from robot_policy_ros.training.train_cli import parse_overrides
from robot_policy_ros.training.trainer import TrainConfig, train

SPEC = SyntheticEpisode(duration_s=2.0, image_hw=(64, 64), motion="reach")
CHUNK = {
    ("act", "reach"): 20,
    ("diffusion", "reach"): 12,
    ("act", "cued_targets"): 45,
    ("diffusion", "cued_targets"): 45,
}


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    write_synthetic_dataset(root, 3, SPEC)
    return root


@pytest.fixture(autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_demo_train_options_carry_exactly_the_cpu_sizes():
    for family, sizes in CPU_DEMO_SIZES.items():
        args = family_train_args(family)
        assert parse_overrides(args[1::2]) == sizes
        assert all(flag == "--set" for flag in args[0::2])
    for task, families in TASK_DEMO_SIZES.items():
        for family, changes in families.items():
            sizes = parse_overrides(family_train_args(family, task)[1::2])
            assert sizes == {**CPU_DEMO_SIZES[family], **changes}


@pytest.mark.parametrize("family, task", sorted(CHUNK))
def test_cpu_size_trains_saves_and_loads(
    demos: Path, tmp_path: Path, family: str, task: str
) -> None:
    out = tmp_path / family
    h, w = (int(v) for v in DemoConfig().image_size.split("x"))
    result = train(
        TrainConfig(
            data=[str(demos)],
            out=str(out),
            policy=family,
            steps=3,
            batch_size=4,
            image_size=(h, w),
            fps=15.0,
            checkpoint_every=0,
            val_fraction=0.34,
            overrides=demo_sizes(family, task),
            cache_dir=str(tmp_path / "cache"),
            torch_threads=1,
            progress=False,
            log_every=1,
        )
    )
    assert result.steps == 3 and np.isfinite(result.final_train_loss)
    saved = json.loads((out / "config.json").read_text())
    hyper = json.dumps(saved)
    for key, value in demo_sizes(family, task).items():
        assert f'"{key}": {json.dumps(value)}' in hyper, key
    policy = load_checkpoint(out)
    assert policy.policy_type == family and policy.chunk_size == CHUNK[family, task]
    policy.reset()
    chunk = policy.predict_chunk(
        Observation(
            images={"front": np.zeros((h, w, 3), np.uint8)},
            joint_positions=np.zeros(len(SPEC.joint_names)),
        )
    )
    assert chunk.shape == (CHUNK[family, task], len(SPEC.joint_names)) and np.isfinite(chunk).all()
