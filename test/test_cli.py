"""robot-policy CLI: init-checkpoint, inspect, train delegation, from outside (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robot_policy_ros import cli
from robot_policy_ros.checkpoint.config import read_checkpoint_config

FRANKA = ",".join(f"panda_joint{i}" for i in range(1, 8))
SO101 = "shoulder_pan,shoulder_lift,elbow_flex,wrist_flex,wrist_roll,gripper"
TINY_SET = {
    "mlp": ['vision_backbone="tiny_cnn"', "backbone_width=4", "hidden_dims=[16]"],
    "act": [
        'vision_backbone="tiny_cnn"',
        "backbone_width=4",
        "d_model=16",
        "n_heads=2",
        "dim_feedforward=32",
        "n_encoder_layers=1",
        "n_vae_encoder_layers=1",
        "latent_dim=4",
    ],
    "diffusion": [
        'vision_backbone="tiny_cnn"',
        "backbone_width=4",
        "down_dims=[16,32]",
        "n_groups=4",
        "diffusion_step_embed_dim=8",
        "spatial_softmax_num_keypoints=4",
    ],
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m robot_policy_ros.cli ARGS`` (what the console script runs)."""
    return subprocess.run(
        [sys.executable, "-m", "robot_policy_ros.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def init_args(family: str, joints: str, out: Path, *extra: str) -> list[str]:
    sets = [a for s in TINY_SET[family] for a in ("--set", s)]
    return [
        "init-checkpoint",
        "--policy",
        family,
        "--joints",
        joints,
        "--out",
        str(out),
        *sets,
        *extra,
    ]


def test_init_then_inspect_from_outside_franka(tmp_path: Path) -> None:
    out = tmp_path / "mlp"
    r = run_cli(
        *init_args("mlp", FRANKA, out, "--cameras", "front:32x32,wrist:24x32", "--fps", "30")
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("inspect", str(out))
    assert r.returncode == 0, r.stderr
    assert "policy:       mlp" in r.stdout
    assert "panda_joint1" in r.stdout and "panda_joint7" in r.stdout
    assert "front 32x32 rgb8, wrist 24x32 rgb8" in r.stdout
    assert "fps:          30" in r.stdout
    assert "chunk size:   10" in r.stdout
    assert "parameters:" in r.stdout and "model.safetensors" in r.stdout


@pytest.mark.parametrize("family", ["act", "diffusion"])
def test_init_then_inspect_each_family_so101(tmp_path: Path, family: str) -> None:
    out = tmp_path / family
    r = run_cli(*init_args(family, SO101, out, "--cameras", "front:32x32", "--chunk-size", "20"))
    assert r.returncode == 0, r.stderr
    r = run_cli("inspect", str(out))
    assert r.returncode == 0, r.stderr
    assert f"policy:       {family}" in r.stdout
    assert "joints:       6: shoulder_pan, shoulder_lift" in r.stdout
    assert "chunk size:   20" in r.stdout
    if family == "diffusion":  # horizon grown to hold n_obs_steps - 1 + 20 actions
        assert json.loads((out / "config.json").read_text())["hyperparameters"]["horizon"] == 22


def test_tampered_checkpoint_refused_by_inspect(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert cli.main(init_args("mlp", SO101, out, "--cameras", "front:32x32")) == 0
    cfg = json.loads((out / "config.json").read_text())
    cfg["joint_names"].append("extra_joint")
    (out / "config.json").write_text(json.dumps(cfg))
    r = run_cli("inspect", str(out))
    assert r.returncode != 0
    assert "invalid checkpoint" in r.stderr and "limits: 'lower' must list 7 values" in r.stderr


def test_init_checkpoint_limits_velocity_chunk_and_seed(tmp_path: Path, capsys) -> None:
    args = ["--cameras", "front:32x32", "--limits", "-1.5:2.5", "--max-velocity", "0.5,1,1,1,1,3"]
    assert cli.main(init_args("mlp", SO101, tmp_path / "a", *args, "--chunk-size", "4")) == 0
    cfg = read_checkpoint_config(tmp_path / "a")
    assert cfg.joint_names == SO101.split(",")
    assert cfg.limits.lower.tolist() == [-1.5] * 6 and cfg.limits.upper.tolist() == [2.5] * 6
    assert cfg.limits.max_velocity.tolist() == [0.5, 1, 1, 1, 1, 3]
    assert cfg.chunk_size == 4
    # same seed -> same weights; different seed -> different weights
    assert cli.main(init_args("mlp", SO101, tmp_path / "b", *args, "--chunk-size", "4")) == 0
    assert (
        cli.main(init_args("mlp", SO101, tmp_path / "c", *args, "--chunk-size", "4", "--seed", "7"))
        == 0
    )
    a, b, c = (read_checkpoint_config(tmp_path / n).weights["sha256"] for n in "abc")
    assert a == b != c


def test_init_checkpoint_defaults_limits(tmp_path: Path) -> None:
    assert cli.main(init_args("mlp", "a,b", tmp_path / "d", "--cameras", "cam:32x32")) == 0
    d = read_checkpoint_config(tmp_path / "d").joint_limits_dict()
    assert d["joints"][1] == {"name": "b", "lower": -3.14, "upper": 3.14, "max_velocity": 2.0}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cameras", "front"], "name:HEIGHTxWIDTH"),
        (["--cameras", "front:32x32", "--limits", "1:0"], "lower limit 1.0 must be below upper"),
        (["--cameras", "front:32x32", "--max-velocity", "1,2"], "got 2 values for 6 joints"),
        (["--cameras", "front:32x32", "--set", "hidden_dims=[0]"], "hidden_dims"),
        (["--cameras", "front:32x32", "--set", "nonsense=1"], "unknown mlp config fields"),
    ],
)
def test_init_checkpoint_bad_arguments_exit_2(tmp_path: Path, capsys, extra, message) -> None:
    assert cli.main(init_args("mlp", SO101, tmp_path / "x", *extra)) == 2
    assert message in capsys.readouterr().err


def test_init_checkpoint_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c"
    assert cli.main(init_args("mlp", "a", out, "--cameras", "f:32x32")) == 0
    assert cli.main(init_args("mlp", "a", out, "--cameras", "f:32x32")) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(init_args("mlp", "a", out, "--cameras", "f:32x32", "--force")) == 0


def test_inspect_json_and_missing_dir(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c"
    assert cli.main(init_args("mlp", "a,b", out, "--cameras", "f:32x32")) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["policy_type"] == "mlp" and summary["joint_names"] == ["a", "b"]
    assert summary["files"]["model.safetensors"] > 0 and summary["num_parameters"] > 0
    assert cli.main(["inspect", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_train_without_trainer_module_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli.train, "TRAIN_MODULE", "robot_policy_ros.training.no_such_module")
    assert cli.main(["train", "--anything"]) == 2
    assert "no_such_module" in capsys.readouterr().err


def test_train_delegates_to_trainer_module(monkeypatch, tmp_path: Path) -> None:
    pkg = tmp_path / "fake_trainer_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train_cli.py").write_text(
        "def add_arguments(parser):\n"
        "    parser.add_argument('--steps', type=int, default=1)\n"
        "def run(args):\n"
        "    return 40 + args.steps\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli.train, "TRAIN_MODULE", "fake_trainer_pkg.train_cli")
    assert cli.main(["train", "--steps", "2"]) == 42


def test_import_weights_converts_trusted_state_dict(tmp_path: Path, capsys) -> None:
    import torch

    from robot_policy_ros.checkpoint.weights import load_checkpoint

    like = tmp_path / "like"
    assert cli.main(init_args("mlp", "a,b", like, "--cameras", "f:32x32", "--seed", "3")) == 0
    other = tmp_path / "other"
    assert cli.main(init_args("mlp", "a,b", other, "--cameras", "f:32x32", "--seed", "4")) == 0
    trained = load_checkpoint(other)
    torch.save({"state_dict": trained.state_dict(), "step": 10}, tmp_path / "trained.pt")
    args = ["import-weights", str(tmp_path / "trained.pt"), "--like", str(like)]
    assert cli.main([*args, "--out", str(tmp_path / "new")]) == 2
    assert "--weights-only" in capsys.readouterr().err
    assert cli.main([*args, "--out", str(tmp_path / "new"), "--weights-only"]) == 0
    new = load_checkpoint(tmp_path / "new")
    for k, v in trained.state_dict().items():
        assert torch.equal(new.state_dict()[k], v)


def test_import_weights_refuses_code_and_mismatches(tmp_path: Path, capsys) -> None:
    import pickle

    import torch

    like = tmp_path / "like"
    assert cli.main(init_args("mlp", "a,b", like, "--cameras", "f:32x32")) == 0

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": Payload()}))
    args = ["--like", str(like), "--weights-only", "--out", str(tmp_path / "n")]
    assert cli.main(["import-weights", str(tmp_path / "evil.pt"), *args]) == 1
    assert "refused by torch.load(weights_only=True)" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()
    torch.save({"head.0.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    assert cli.main(["import-weights", str(tmp_path / "wrong.pt"), *args]) == 1
    assert "missing keys" in capsys.readouterr().err
