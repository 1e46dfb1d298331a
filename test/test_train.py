"""Training: the loss goes down, checkpoints are loadable, resume is exact, DDP runs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robot_policy_ros.checkpoint.weights import load_checkpoint
from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_dataset
from robot_policy_ros.policies.base import Observation
from robot_policy_ros.training.train_cli import (
    add_arguments,
    config_from_args,
    parse_image_size,
    parse_overrides,
    run,
)
from robot_policy_ros.training.trainer import TrainConfig, lr_lambda, train

REPO = Path(__file__).resolve().parents[1]
TINY = {"vision_backbone": "tiny_cnn", "backbone_width": 8, "hidden_dims": [64, 64]}
SPEC = SyntheticEpisode(duration_s=1.5, image_hw=(32, 32), motion="reach")


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    write_synthetic_dataset(root, 5, SPEC)
    return root


@pytest.fixture(autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _config(demos: Path, out: Path, **kw) -> TrainConfig:
    base = {
        "data": [str(demos)],
        "out": str(out),
        "policy": "mlp",
        "steps": 150,
        "batch_size": 16,
        "lr": 2e-3,
        "image_size": (24, 24),
        "fps": 10.0,
        "chunk_size": 4,
        "checkpoint_every": 50,
        "val_fraction": 0.2,
        "overrides": dict(TINY),
        "cache_dir": str(out.parent / "cache"),
        "torch_threads": 1,
        "progress": False,
        "log_every": 5,
    }
    base.update(kw)
    return TrainConfig(**base)


def test_training_reduces_the_loss_and_writes_a_loadable_checkpoint(
    demos: Path, tmp_path: Path
) -> None:
    result = train(_config(demos, tmp_path / "run"))

    assert result.steps == 150
    assert result.final_train_loss < 0.1 * result.first_train_loss
    assert np.isfinite(result.final_val_loss) and result.val_samples > 0
    out = tmp_path / "run"
    policy = load_checkpoint(out)
    cfg = json.loads((out / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["trained"] is True and prov["steps"] == 150
    assert prov["train_episodes"] == 4 and prov["val_episodes"] == 1
    assert prov["data_dirs"] == [str(demos.resolve())]
    assert prov["val_loss"] == pytest.approx(result.final_val_loss)
    # Limits enclose every demonstrated position; normalization is the training data's.
    limits = cfg["limits"]
    assert all(lo < hi for lo, hi in zip(limits["lower"], limits["upper"], strict=True))
    assert policy.joint_names == list(SPEC.joint_names) and policy.chunk_size == 4
    obs = Observation(
        images={"front": np.zeros((24, 24, 3), np.uint8)},
        joint_positions=np.zeros(3),
        stamp=0.0,
    )
    chunk = policy.predict_chunk(obs)
    assert chunk.shape == (4, 3) and np.isfinite(chunk).all()
    assert (out / "checkpoints" / "step_0000050" / "config.json").is_file()
    assert load_checkpoint(out / "checkpoints" / "step_0000050").chunk_size == 4
    with (out / "train_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["train_loss"]][:3] == [5, 10, 15]
    assert any(r["val_loss"] for r in rows) and float(rows[-1]["samples_per_s"]) > 0
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "dataset_report.json").read_text())
    assert len(report["train_episodes"]) == 4 and len(report["val_episodes"]) == 1


def test_resume_from_a_periodic_checkpoint_matches_the_uninterrupted_run(
    demos: Path, tmp_path: Path
) -> None:
    kw = {"steps": 20, "checkpoint_every": 10, "overrides": {**TINY, "dropout": 0.1}}
    full = train(_config(demos, tmp_path / "full", **kw))
    resumed = train(
        _config(
            demos,
            tmp_path / "resumed",
            resume=str(tmp_path / "full" / "checkpoints" / "step_0000010"),
            **kw,
        )
    )
    assert resumed.steps == 20
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert resumed.final_train_loss == pytest.approx(full.final_train_loss, rel=1e-5)


def test_ddp_with_two_cpu_processes_trains_and_rank0_writes_the_checkpoint(
    demos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "robot_policy_ros.training.train_cli",
        "--data",
        str(demos),
        "--policy",
        "mlp",
        "--out",
        str(out),
        "--steps",
        "8",
        "--batch-size",
        "8",
        "--image-size",
        "24x24",
        "--fps",
        "10",
        "--chunk-size",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--checkpoint-every",
        "4",
        "--log-every",
        "2",
        "--no-progress",
        "--device",
        "cpu",
        "--set",
        'vision_backbone="tiny_cnn"',
        "--set",
        "backbone_width=8",
        "--set",
        "hidden_dims=[32]",
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summaries = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(summaries) == 1  # only rank 0 reports
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["provenance"]["world_size"] == 2 and cfg["provenance"]["steps"] == 8
    policy = load_checkpoint(out)
    assert policy.num_joints == 3
    assert (out / "checkpoints" / "step_0000004" / "optimizer.safetensors").is_file()


def test_cli_options_map_to_the_training_config(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--data",
            "a",
            "b",
            "--policy",
            "act",
            "--out",
            str(tmp_path),
            "--image-size",
            "64x80",
            "--set",
            "d_model=64",
            "--set",
            "loss=l1",
            "--max-velocity",
            "1.5,2",
            "--action-source",
            "measured",
            "--chunk-size",
            "20",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.data == ["a", "b"] and cfg.image_size == (64, 80)
    assert cfg.overrides == {"d_model": 64, "loss": "l1"}
    assert cfg.max_velocity == [1.5, 2.0] and cfg.action_source == "measured"
    assert parse_image_size("96") == (96, 96)
    assert parse_overrides(["hidden_dims=[8, 8]"]) == {"hidden_dims": [8, 8]}


def test_missing_data_is_a_usage_error(tmp_path: Path, capsys) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--data", str(tmp_path / "nope"), "--policy", "mlp", "--out", str(tmp_path / "o")]
    )
    assert run(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    f = lr_lambda("cosine", warmup=10, total=110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)
    assert lr_lambda("constant", 0, 100)(99) == 1.0


def test_robot_policy_train_subcommand_trains(demos: Path, tmp_path: Path, capsys) -> None:
    from robot_policy_ros.cli import main

    out = tmp_path / "cli_run"
    code = main(
        [
            "train",
            "--data",
            str(demos),
            "--policy",
            "mlp",
            "--out",
            str(out),
            "--steps",
            "3",
            "--image-size",
            "16x16",
            "--fps",
            "10",
            "--chunk-size",
            "2",
            "--set",
            'vision_backbone="tiny_cnn"',
            "--set",
            "hidden_dims=[16]",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--checkpoint-every",
            "0",
            "--torch-threads",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["checkpoint"] == str(out)
    assert load_checkpoint(out).chunk_size == 2


FAMILY_OVERRIDES = {
    "act": {
        **{k: v for k, v in TINY.items() if k != "hidden_dims"},
        "d_model": 32,
        "n_heads": 2,
        "dim_feedforward": 64,
        "n_encoder_layers": 1,
        "n_vae_encoder_layers": 1,
        "latent_dim": 4,
    },
    "diffusion": {
        **{k: v for k, v in TINY.items() if k != "hidden_dims"},
        "down_dims": [16, 32],
        "horizon": 8,
        "diffusion_step_embed_dim": 16,
        "spatial_softmax_num_keypoints": 4,
        "n_groups": 4,
        "num_inference_steps": 2,
    },
}


@pytest.mark.parametrize("family", ["act", "diffusion"])
def test_every_policy_family_trains_from_bags(demos: Path, tmp_path: Path, family: str) -> None:
    out = tmp_path / family
    result = train(
        _config(
            demos,
            out,
            policy=family,
            steps=30,
            checkpoint_every=0,
            overrides=FAMILY_OVERRIDES[family],
        )
    )
    assert np.isfinite(result.final_train_loss) and np.isfinite(result.final_val_loss)
    if family == "act":
        assert result.final_train_loss < 0.5 * result.first_train_loss
    policy = load_checkpoint(out)
    assert policy.policy_type == family and policy.chunk_size == 4
    if family == "diffusion":  # history of 2 frames, actions from the previous frame on
        assert policy.observation_delta_indices == [-1, 0]
        assert policy.action_delta_indices[0] == -1
    policy.reset()
    chunk = policy.predict_chunk(
        Observation(images={"front": np.zeros((24, 24, 3), np.uint8)}, joint_positions=np.zeros(3))
    )
    assert chunk.shape == (4, 3) and np.isfinite(chunk).all()


def test_limits_file_is_read_by_joint_limits_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.training.trainer import TrainingError, _robot_limits

    arm = tmp_path / "arm.yaml"
    joints = [
        {"name": "b", "lower": -1.0, "upper": 1.0, "max_velocity": 2.0},
        {"name": "a", "lower": -2.0, "upper": 2.0, "max_velocity": 3.0},
    ]
    arm.write_text(yaml.safe_dump({"joints": joints}))
    config = TrainConfig(data=[], out=str(tmp_path), limits_file=str(arm))
    limits = _robot_limits(config, [], ["a", "b"])
    assert limits == JointLimits.from_dict({"joints": joints}).reorder(["a", "b"])
    with pytest.raises(TrainingError, match=r"--limits-file .*\['c'\]"):
        _robot_limits(config, [], ["a", "c"])
    joints[1]["upper"] = -5.0
    arm.write_text(yaml.safe_dump({"joints": joints}))
    with pytest.raises(TrainingError, match=r"joint 'a': lower limit"):
        _robot_limits(config, [], ["a", "b"])
