"""Checkpoint format: save/load round trip, strict validation, refusal of pickles."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_policy_ros.checkpoint.config import (
    CheckpointError,
    NormalizationStats,
    read_checkpoint_config,
)
from robot_policy_ros.checkpoint.weights import file_sha256, load_checkpoint, save_checkpoint
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.base import Observation
from robot_policy_ros.policies.factory import make_policy


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny models on a shared 2-core machine run far faster so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


JOINTS = ["shoulder", "elbow", "wrist"]
TINY_MLP = {"vision_backbone": "tiny_cnn", "backbone_width": 4, "hidden_dims": (16,)}


def _obs(seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(
        images={"front": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)},
        joint_positions=rng.uniform(-1, 1, 3),
    )


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    policy = make_policy("mlp", JOINTS, {"front": (32, 32)}, fps=30.0, seed=1, **TINY_MLP)
    return save_checkpoint(policy, tmp_path / "ckpt", provenance={"dataset": "unit-test"})


def _edit_config(path: Path, edit) -> None:
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    limits = JointLimits(
        tuple(JOINTS), lower=[-1.0, -2.0, -0.5], upper=[1.0, 2.0, 0.5], max_velocity=[1.0, 1.5, 3.0]
    )
    rng = np.random.default_rng(3)
    stats = NormalizationStats.from_data(rng.normal(size=(50, 3)), rng.normal(size=(50, 3)))
    policy = make_policy(
        "mlp", JOINTS, {"front": (32, 32)}, fps=30.0, limits=limits, stats=stats, **TINY_MLP
    ).eval()
    save_checkpoint(policy, tmp_path / "c")
    loaded = load_checkpoint(tmp_path / "c")
    assert not loaded.training
    np.testing.assert_array_equal(loaded.predict_chunk(_obs()), policy.predict_chunk(_obs()))
    assert loaded.joint_names == JOINTS and loaded.fps == 30.0
    assert loaded.limits == limits and isinstance(loaded.limits, JointLimits)
    np.testing.assert_array_equal(loaded.normalization_stats.action_std, stats.action_std)


FAMILY_TINY = {
    "mlp": TINY_MLP,
    "act": {
        "vision_backbone": "tiny_cnn",
        "backbone_width": 4,
        "chunk_size": 6,
        "d_model": 16,
        "n_heads": 2,
        "dim_feedforward": 32,
        "n_encoder_layers": 1,
        "n_vae_encoder_layers": 1,
        "latent_dim": 4,
    },
    "diffusion": {
        "vision_backbone": "tiny_cnn",
        "backbone_width": 4,
        "horizon": 8,
        "n_action_steps": 5,
        "down_dims": (8, 16),
        "n_groups": 4,
        "diffusion_step_embed_dim": 8,
        "spatial_softmax_num_keypoints": 4,
        "num_inference_steps": 3,
        "share_backbone": False,
    },
}


@pytest.mark.parametrize("family", sorted(FAMILY_TINY))
def test_round_trip_each_family(tmp_path: Path, family: str) -> None:
    cams = {"front": (32, 32), "wrist": (24, 40)}
    policy = make_policy(family, JOINTS, cams, seed=4, **FAMILY_TINY[family]).eval()
    save_checkpoint(policy, tmp_path / family)
    loaded = load_checkpoint(tmp_path / family)
    assert type(loaded) is type(policy)
    assert loaded.config == policy.config
    rng = np.random.default_rng(0)
    for step in range(3):  # several steps: families with an observation history too
        obs = Observation(
            images={n: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for n, hw in cams.items()},
            joint_positions=rng.uniform(-1, 1, 3),
            stamp=step * 0.02,
        )
        np.testing.assert_array_equal(loaded.predict_chunk(obs), policy.predict_chunk(obs))


def test_config_json_is_plain_readable_json(ckpt: Path) -> None:
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["format_version"] == 1
    assert cfg["policy_type"] == "mlp"
    assert cfg["joint_names"] == JOINTS
    assert cfg["cameras"] == [{"name": "front", "height": 32, "width": 32, "encoding": "rgb8"}]
    assert cfg["fps"] == 30.0 and cfg["chunk_size"] == 10 and cfg["n_obs_steps"] == 1
    assert cfg["limits"]["lower"] == [-3.14] * 3 and cfg["limits"]["max_velocity"] == [2.0] * 3
    assert set(cfg["normalization"]) == {"state", "action"}
    assert cfg["provenance"]["dataset"] == "unit-test"
    assert cfg["weights"]["sha256"] == file_sha256(ckpt / "model.safetensors")


def test_read_checkpoint_config_gives_limits_dict(ckpt: Path) -> None:
    cfg = read_checkpoint_config(ckpt)
    d = cfg.joint_limits_dict()
    assert [j["name"] for j in d["joints"]] == JOINTS
    assert d["joints"][0] == {
        "name": "shoulder",
        "lower": -3.14,
        "upper": 3.14,
        "max_velocity": 2.0,
    }
    assert cfg.image_shapes == {"front": (32, 32)}


def test_checkpoint_config_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, robot_policy_ros.checkpoint.config as c; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format_version=2), "format_version"),
        (lambda c: c.pop("limits"), "misses keys ['limits']"),
        (lambda c: c.update(extra=1), "unknown keys ['extra']"),
        (lambda c: c["joint_names"].pop(), "limits: 'lower' must list 2 values"),
        (lambda c: c["normalization"]["state"]["std"].__setitem__(1, float("nan")), "NaN"),
        (lambda c: c["normalization"]["action"]["mean"].pop(), "normalization.action.mean"),
        (lambda c: c["limits"]["lower"].__setitem__(0, 5.0), "joint 'shoulder': lower limit"),
        (lambda c: c["limits"]["max_velocity"].__setitem__(2, 0.0), "'wrist': max_velocity"),
        (lambda c: c["limits"].update(max_accel=[1.0] * 3), "limits: unknown keys"),
        (lambda c: c["limits"]["upper"].__setitem__(1, True), "'elbow': upper must be a number"),
        (lambda c: c["limits"]["upper"].__setitem__(1, "2.0"), "upper must be a number"),
        (lambda c: c["limits"]["upper"].__setitem__(1, float("inf")), "Infinity"),
        (lambda c: c["limits"].update(max_acceleration=[1.0, None, 2.0]), "all joints or none"),
        (lambda c: c.update(limits=[1.0]), "limits must be an object"),
        (lambda c: c["cameras"].append(dict(c["cameras"][0], name="wrist")), "shape"),
        (lambda c: c["cameras"][0].update(height=4), "height must be"),
        (lambda c: c["hyperparameters"].update(hidden_dims=[32]), "shape"),
        (lambda c: c["hyperparameters"].pop("hidden_dims"), "missing hyperparameters"),
        (lambda c: c["hyperparameters"].update(d_model=3), "unknown hyperparameters"),
        (lambda c: c["hyperparameters"].update(dropout=2.0), "dropout"),
        (lambda c: c.update(chunk_size=5), "chunk_size is 5"),
        (lambda c: c.update(policy_type="transformer"), "unknown policy_type"),
        (lambda c: c["weights"].update(file="model.pt"), "pickle"),
        (lambda c: c["joint_names"].__setitem__(1, "shoulder"), "duplicates"),
        (lambda c: c.update(fps=-1), "fps"),
    ],
)
def test_strict_load_errors_name_the_problem(ckpt: Path, edit, message: str) -> None:
    _edit_config(ckpt, edit)  # json.dumps writes NaN literally: must be refused too
    with pytest.raises(CheckpointError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_checkpoint(ckpt)


def test_tampered_weights_are_refused(ckpt: Path) -> None:
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"  # last float -> NaN
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(ckpt)


def test_weights_with_wrong_shape_refused_even_with_matching_hash(
    ckpt: Path, tmp_path: Path
) -> None:
    other = make_policy("mlp", JOINTS, {"front": (32, 32)}, **{**TINY_MLP, "hidden_dims": (8,)})
    save_checkpoint(other, tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", ckpt / "model.safetensors")
    _edit_config(
        ckpt, lambda c: c["weights"].update(sha256=file_sha256(ckpt / "model.safetensors"))
    )
    with pytest.raises(CheckpointError, match=r"has shape \(8, .*expects \(16,"):
        load_checkpoint(ckpt)


def test_non_finite_weights_refused(ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    key = next(k for k in tensors if k.startswith("head"))
    tensors[key][0] = float("inf")
    save_file(tensors, str(ckpt / "model.safetensors"))
    _edit_config(
        ckpt, lambda c: c["weights"].update(sha256=file_sha256(ckpt / "model.safetensors"))
    )
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(ckpt)


def test_missing_and_extra_weight_keys_refused(ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    tensors.pop(sorted(tensors)[0])
    tensors["bogus.weight"] = torch.zeros(2)
    save_file(tensors, str(ckpt / "model.safetensors"))
    _edit_config(
        ckpt, lambda c: c["weights"].update(sha256=file_sha256(ckpt / "model.safetensors"))
    )
    with pytest.raises(CheckpointError, match=r"missing keys .*unexpected keys .*bogus"):
        load_checkpoint(ckpt)


def test_missing_weights_file_refused(ckpt: Path) -> None:
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        load_checkpoint(ckpt)


def test_missing_directory_and_config_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_checkpoint(tmp_path / "empty")


def test_invalid_json_refused(ckpt: Path) -> None:
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(ckpt)


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".pth"])
def test_pickle_checkpoint_refused_without_running_it(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / f"policy{suffix}"
    bad.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_refused(ckpt: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (ckpt / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    _edit_config(
        ckpt, lambda c: c["weights"].update(sha256=file_sha256(ckpt / "model.safetensors"))
    )
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(ckpt)
    assert not marker.exists()


def test_directory_with_only_pickles_explains_refusal(tmp_path: Path) -> None:
    d = tmp_path / "old"
    d.mkdir()
    (d / "model.pt").write_bytes(pickle.dumps(_Payload(tmp_path / "pwned")))
    with pytest.raises(CheckpointError, match="never loaded"):
        load_checkpoint(d)
    assert not (tmp_path / "pwned").exists()


def test_half_precision_on_cpu_refused(ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="needs a CUDA device"):
        load_checkpoint(ckpt, device="cpu", dtype="float16")
    with pytest.raises(CheckpointError, match="dtype"):
        load_checkpoint(ckpt, dtype="int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_requested_without_cuda_refused(ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="CUDA is not available"):
        load_checkpoint(ckpt, device="cuda", dtype="bfloat16")


def test_config_limits_are_joint_limits_named_by_the_joints(ckpt: Path) -> None:
    cfg = read_checkpoint_config(ckpt)
    assert isinstance(cfg.limits, JointLimits) and cfg.limits.names == tuple(JOINTS)
    assert cfg.joint_limits() is cfg.limits
    # Written in the same per-joint columns form it is read from.
    stored = json.loads((ckpt / "config.json").read_text())["limits"]
    assert stored == cfg.limits.to_columns()
    assert stored["max_acceleration"] is None and stored["lower"] == [-3.14] * 3


def test_config_with_limits_for_other_joints_is_refused(ckpt: Path) -> None:
    import dataclasses

    cfg = read_checkpoint_config(ckpt)
    other = cfg.limits.reorder(list(reversed(JOINTS)))
    with pytest.raises(CheckpointError, match="limits are for joints"):
        dataclasses.replace(cfg, limits=other)
    with pytest.raises(CheckpointError, match="must be a JointLimits"):
        dataclasses.replace(cfg, limits=cfg.limits.to_columns())
