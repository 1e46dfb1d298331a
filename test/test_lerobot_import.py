"""import-lerobot / predict: LeRobot checkpoints give LeRobot's own actions; bad folders refused.

The fixtures in test/fixtures/lerobot/ are real LeRobot ACT and Diffusion checkpoints
(0.6.1, 0.5.1 and 0.4.4 in the processor layout, 0.3.3 in the legacy layout with the statistics
inside model.safetensors; fixture.json names the version) written by
tools/make_lerobot_fixtures.py with LeRobot's own classes and save_pretrained,
model.safetensors packed losslessly; io.npz holds fixed inputs and the actions LeRobot
returned for them, in LeRobot's units (degrees here). Every fixture folder is tested.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from robot_policy_ros import cli
from robot_policy_ros.lerobot.source import LeRobotImportError, read_lerobot_folder

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot"
# Every fixture folder, so a new one is compared with LeRobot without editing this list.
NAMES = tuple(sorted(p.name for p in FIXTURES.iterdir() if (p / "io.npz").is_file()))
TOLERANCE = 1e-4


def fixture_record(name: str) -> dict:
    """fixture.json: the LeRobot version that wrote the fixture and the spec it was built from."""
    return json.loads((FIXTURES / name / "fixture.json").read_text())


def made_before_processors(name: str) -> bool:
    """LeRobot before 0.4 had no processor pipeline (the legacy layout)."""
    major, minor = (int(x) for x in fixture_record(name)["lerobot_version"].split(".")[:2])
    return (major, minor) < (0, 4)


def lerobot_folder(name: str, tmp_path: Path) -> Path:
    """A copy of a fixture as LeRobot wrote it (model.safetensors decompressed, no io.npz)."""
    dst = tmp_path / f"{name}_src"
    shutil.copytree(FIXTURES / name, dst)
    packed = dst / "model.safetensors.pack"
    if packed.exists():
        (dst / "model.safetensors").write_bytes(unpack_model(packed, dst / "fixture.json"))
        packed.unlink()
        (dst / "fixture.json").unlink()
    else:
        xz = dst / "model.safetensors.xz"
        (dst / "model.safetensors").write_bytes(lzma.decompress(xz.read_bytes()))
        xz.unlink()
    (dst / "io.npz").unlink()
    return dst


def unpack_model(packed: Path, record: Path) -> bytes:
    """LeRobot's model.safetensors rebuilt from tools/make_lerobot_fixtures.py's lossless
    pack; refused unless its size and SHA-256 equal those of the file LeRobot wrote."""
    blob = lzma.decompress(packed.read_bytes())
    assert blob[:5] == b"RPPK1"
    (mlen,) = struct.unpack("<Q", blob[5:13])
    manifest = json.loads(blob[13 : 13 + mlen])
    payload = blob[13 + mlen :]
    raw = b"".join(payload[o : o + n] * c for o, n, c in manifest["segments"])
    want = json.loads(record.read_text())
    assert len(raw) == want["model_safetensors_size"]
    assert hashlib.sha256(raw).hexdigest() == want["model_safetensors_sha256"]
    return raw


def units_for(j: int, gripper_scale: float = 0.0004) -> tuple[str, np.ndarray, np.ndarray]:
    """Degrees for every joint but the last (a gripper 0..100 mapped to metres-like units)."""
    scale = np.full(j, math.pi / 180.0)
    offset = np.zeros(j)
    scale[-1], offset[-1] = gripper_scale, 0.01
    text = ",".join(["deg"] * (j - 1) + [f"{gripper_scale}:0.01"])
    return text, scale, offset


def state_is_unnormalised(name: str) -> bool:
    """The fixture's LeRobot config leaves the state as it is (IDENTITY)."""
    cfg = json.loads((FIXTURES / name / "config.json").read_text())
    return cfg["normalization_mapping"].get("STATE", "IDENTITY") == "IDENTITY"


def import_and_predict(name: str, src: Path, tmp_path: Path, capsys) -> tuple[np.ndarray, ...]:
    """Run import-lerobot then predict via the CLI; (predicted, expected) in ROS units."""
    io = np.load(FIXTURES / name / "io.npz")
    j = io["state"].shape[-1]
    # An unnormalised state keeps the unit scale itself as its scale, which must be at
    # least the 1e-3 joint units the project's normaliser can represent (see
    # test_unnormalised_state_with_a_tiny_unit_scale_refused).
    text, scale, offset = units_for(j, 0.002 if state_is_unnormalised(name) else 0.0004)
    joints = ",".join(f"joint{i}" for i in range(j))
    ckpt = tmp_path / f"{name}_ckpt"
    rc = cli.main(
        [
            "import-lerobot",
            str(src),
            "--out",
            str(ckpt),
            "--joints",
            joints,
            "--fps",
            "30",
            "--units",
            text,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    state = io["state"] * scale + offset
    history = state.ndim == 3  # (N, T, J) for diffusion, (N, J) for ACT
    arrays = {"joint_positions": state if history else state[:, None, :]}
    for key in io:
        if key.startswith("image."):
            cam = key[len("image.observation.images.") :]
            arrays[f"images.{cam}"] = io[key] if history else io[key][:, None]
    if "noise" in io:
        arrays["noise"] = io["noise"]
    np.savez(tmp_path / "in.npz", **arrays)
    rc = cli.main(
        [
            "predict",
            str(ckpt),
            "--inputs",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "out.npz"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    predicted = np.load(tmp_path / "out.npz")["actions"]
    return predicted, io["actions"] * scale + offset, ckpt


@pytest.mark.parametrize("name", NAMES)
def test_imported_policy_returns_lerobot_actions(name: str, tmp_path: Path, capsys) -> None:
    src = lerobot_folder(name, tmp_path)
    want_layout = "legacy" if made_before_processors(name) else "processor"
    assert read_lerobot_folder(src).layout == want_layout
    predicted, expected, _ = import_and_predict(name, src, tmp_path, capsys)
    assert predicted.dtype == np.float64
    assert predicted.shape == expected.shape
    assert np.abs(predicted - expected).max() < TOLERANCE
    # The samples differ from one another: a comparison that could fail.
    assert np.abs(expected[0] - expected[1]).max() > 100 * TOLERANCE


def test_fixtures_cover_both_layouts_and_several_lerobot_versions() -> None:
    """Real checkpoints of each policy type in each layout, from more than one release."""
    seen = {
        (fixture_record(n)["lerobot_version"], n.split("_")[0], made_before_processors(n))
        for n in NAMES
    }
    for policy in ("act", "diffusion"):
        for legacy in (True, False):
            assert any(p == policy and lg == legacy for _, p, lg in seen), (policy, legacy)
    assert len({v for v, _, lg in seen if not lg}) >= 2  # processor layout: two releases
    for name in NAMES:
        src = FIXTURES / name
        has_processor_files = (src / "policy_preprocessor.json").is_file()
        assert has_processor_files != made_before_processors(name), name


def test_diffusion_import_uses_lerobot_layout_options(tmp_path: Path, capsys) -> None:
    name = "diffusion_two_cameras"
    _, _, ckpt = import_and_predict(name, lerobot_folder(name, tmp_path), tmp_path, capsys)
    hp = json.loads((ckpt / "config.json").read_text())["hyperparameters"]
    assert hp["global_cond_order"] == "state_first"
    assert hp["final_conv_groups"] == 8
    assert hp["crop_rounding"] == "round"
    assert hp["resize_shape"] == [43, 47] and hp["crop_shape"] == [32, 35]
    assert "sampler" not in hp  # DDIM: the default, not written
    assert hp["num_inference_steps"] == 5
    assert hp["backbone_norm"] == "batch_norm" and hp["share_backbone"] is True


def test_diffusion_other_noise_gives_other_actions(tmp_path: Path, capsys) -> None:
    """The given noise is what the sampler starts from (not ignored)."""
    name = "diffusion_two_cameras"
    predicted, _, ckpt = import_and_predict(name, lerobot_folder(name, tmp_path), tmp_path, capsys)
    data = dict(np.load(tmp_path / "in.npz"))
    data["noise"] = data["noise"][::-1].copy()
    np.savez(tmp_path / "in2.npz", **data)
    out = tmp_path / "out2.npz"
    assert (
        cli.main(["predict", str(ckpt), "--inputs", str(tmp_path / "in2.npz"), "--out", str(out)])
        == 0
    )
    assert np.abs(np.load(out)["actions"] - predicted).max() > 1e-3


def test_inspect_shows_units_deployment_and_provenance(tmp_path: Path, capsys) -> None:
    name = "act_two_cameras"
    src = lerobot_folder(name, tmp_path)
    _, _, ckpt = import_and_predict(name, src, tmp_path, capsys)
    capsys.readouterr()
    assert cli.main(["inspect", str(ckpt)]) == 0
    text = capsys.readouterr().out
    assert "units:" in text and "0.0004:0.01" in text
    assert "n_action_steps 1, temporal_ensemble_coeff 0.01" in text
    cfg = json.loads((ckpt / "config.json").read_text())
    lerobot = cfg["provenance"]["lerobot"]
    assert lerobot["files_sha256"]["model.safetensors"] == _sha256(src / "model.safetensors")
    assert lerobot["config"]["type"] == "act"
    assert [c["name"] for c in cfg["cameras"]] == ["top", "wrist"]
    assert [(c["height"], c["width"]) for c in cfg["cameras"]] == [(64, 96), (48, 64)]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_camera_names_mapped(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_two_cameras", tmp_path)
    rc = cli.main(
        [
            "import-lerobot",
            str(src),
            "--out",
            str(tmp_path / "c"),
            "--joints",
            "a,b,c,d,e",
            "--cameras",
            "top=overhead,observation.images.wrist=hand",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert [c["name"] for c in cfg["cameras"]] == ["overhead", "hand"]


def test_compiled_model_prefix_accepted(tmp_path: Path, capsys) -> None:
    name = "act_one_camera"
    src = lerobot_folder(name, tmp_path)
    w = load_file(str(src / "model.safetensors"))
    save_file({f"_orig_mod.{k}": v for k, v in w.items()}, str(src / "model.safetensors"))
    predicted, expected, _ = import_and_predict(name, src, tmp_path, capsys)
    assert np.abs(predicted - expected).max() < TOLERANCE


def test_legacy_layout_with_buffers_in_model(tmp_path: Path, capsys) -> None:
    """LeRobot before the processor pipeline kept the statistics inside model.safetensors."""
    name = "act_two_cameras"
    src = lerobot_folder(name, tmp_path)
    w = load_file(str(src / "model.safetensors"))
    stats = load_file(str(src / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    for key, value in stats.items():
        feature, _, stat = key.rpartition(".")
        buf = f"buffer_{feature.replace('.', '_')}.{stat}"
        if feature == "action":
            w[f"normalize_targets.{buf}"] = value
            w[f"unnormalize_outputs.{buf}"] = value
        else:
            w[f"normalize_inputs.{buf}"] = value
    save_file(w, str(src / "model.safetensors"))
    for p in src.glob("policy_*processor*"):
        p.unlink()
    assert read_lerobot_folder(src).layout == "legacy"
    predicted, expected, _ = import_and_predict(name, src, tmp_path, capsys)
    assert np.abs(predicted - expected).max() < TOLERANCE


def test_reading_needs_neither_torch_nor_lerobot(tmp_path: Path) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    code = (
        "import sys\n"
        "from robot_policy_ros.lerobot.source import read_lerobot_folder\n"
        f"s = read_lerobot_folder({str(src)!r})\n"
        "assert s.policy_type == 'act' and s.layout == 'processor'\n"
        "assert 'torch' not in sys.modules and 'lerobot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- refused folders -------------------------------------------------------------------------
def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _refused(src: Path, tmp_path: Path, capsys, *extra: str) -> str:
    out = tmp_path / "refused_ckpt"
    rc = cli.main(
        ["import-lerobot", str(src), "--out", str(out), "--joints", "a,b,c,d,e,f", *extra]
    )
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not (out / "config.json").exists()
    return err


def test_pickle_weights_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    (src / "model.safetensors").unlink()
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04cos\nsystem\n(S'touch pwned'\ntR.")
    err = _refused(src, tmp_path, capsys)
    assert "pytorch_model.bin" in err and "never loaded" in err
    assert not Path("pwned").exists()


def test_unsupported_policy_type_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(src / "config.json", lambda c: c.update(type="pi0"))
    assert "'pi0' is not supported" in _refused(src, tmp_path, capsys)


def test_other_backbone_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(src / "config.json", lambda c: c.update(vision_backbone="resnet34"))
    assert "vision_backbone 'resnet34' is not supported" in _refused(src, tmp_path, capsys)


def test_quantile_normalisation_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(
        src / "policy_preprocessor.json",
        lambda c: c["steps"][3]["config"]["norm_map"].update(STATE="QUANTILES"),
    )
    assert "quantile normalisation is not supported" in _refused(src, tmp_path, capsys)


def test_state_dim_different_from_action_dim_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(src / "config.json", lambda c: c["output_features"]["action"].update(shape=[7]))
    assert "differs from action shape" in _refused(src, tmp_path, capsys)


def test_degenerate_statistics_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    f = src / "policy_preprocessor_step_3_normalizer_processor.safetensors"
    stats = load_file(str(f))
    stats["observation.state.std"][2] = 0.0
    save_file(stats, str(f))
    assert "degenerate statistics" in _refused(src, tmp_path, capsys)


def test_unnormalised_state_with_a_tiny_unit_scale_refused(tmp_path: Path, capsys) -> None:
    """IDENTITY state: the unit scale is the normaliser's scale, and one under 1e-3 cannot be
    reproduced; the refusal says so rather than blaming the statistics."""
    name = "act_no_vae_two_decoder_layers"
    assert state_is_unnormalised(name)
    src = lerobot_folder(name, tmp_path)
    rc = cli.main(
        [
            "import-lerobot",
            str(src),
            "--out",
            str(tmp_path / "c"),
            "--joints",
            "a,b,c,d",
            "--units",
            "deg,deg,deg,0.0004:0.01",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "c" / "config.json").exists()
    assert "IDENTITY" in err and "d (0.0004)" in err and "degenerate" not in err


def test_env_state_input_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(
        src / "config.json",
        lambda c: c["input_features"].update(
            {"observation.environment_state": {"type": "ENV", "shape": [4]}}
        ),
    )
    assert "environment state" in _refused(src, tmp_path, capsys)


def test_peft_adapter_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    (src / "adapter_config.json").write_text("{}")
    assert "PEFT adapter" in _refused(src, tmp_path, capsys)


def test_unknown_processor_step_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(
        src / "policy_preprocessor.json",
        lambda c: c["steps"].insert(0, {"registry_name": "my_custom_step", "config": {}}),
    )
    assert "'my_custom_step' is not supported" in _refused(src, tmp_path, capsys)


def test_state_file_outside_folder_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    _edit_json(
        src / "policy_preprocessor.json",
        lambda c: c["steps"][3].update(state_file="../../etc/stats.safetensors"),
    )
    assert "must be a plain file name" in _refused(src, tmp_path, capsys)


def test_corrupt_safetensors_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    (src / "model.safetensors").write_bytes(b"\xff" * 64)
    assert "not a valid safetensors file" in _refused(src, tmp_path, capsys)


def test_wrong_joint_count_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    out = tmp_path / "x"
    assert cli.main(["import-lerobot", str(src), "--out", str(out), "--joints", "a,b"]) == 2
    assert "2 names for a policy with 6 joints" in capsys.readouterr().err


def test_bad_units_refused(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    err = _refused(src, tmp_path, capsys, "--units", "-1")
    assert "SCALE must be finite and > 0" in err


def test_predict_refuses_wrong_input_shape(tmp_path: Path, capsys) -> None:
    src = lerobot_folder("act_one_camera", tmp_path)
    ckpt = tmp_path / "ckpt"
    assert (
        cli.main(["import-lerobot", str(src), "--out", str(ckpt), "--joints", "a,b,c,d,e,f"]) == 0
    )
    np.savez(
        tmp_path / "in.npz",
        joint_positions=np.zeros((2, 1, 5)),
        **{"images.front": np.zeros((2, 1, 64, 64, 3), np.uint8)},
    )
    rc = cli.main(
        [
            "predict",
            str(ckpt),
            "--inputs",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "o.npz"),
        ]
    )
    assert rc == 2
    assert "expected (N, 1, 6)" in capsys.readouterr().err


def test_refusals_are_lerobot_import_errors(tmp_path: Path) -> None:
    with pytest.raises(LeRobotImportError, match="not a directory"):
        read_lerobot_folder(tmp_path / "missing")


def test_per_camera_image_statistics_change_the_output_and_survive_a_round_trip(
    tmp_path: Path,
) -> None:
    """image_normalization is optional: absent = ImageNet (old checkpoints), present = used."""
    from robot_policy_ros.checkpoint.weights import load_checkpoint, save_checkpoint
    from robot_policy_ros.policies.base import Observation
    from robot_policy_ros.policies.factory import make_policy

    small = dict(vision_backbone="tiny_cnn", backbone_width=4, hidden_dims=(8,))
    obs = Observation(
        images={"cam": np.full((16, 16, 3), 200, np.uint8)}, joint_positions=np.zeros(2)
    )
    outputs = []
    for norm in (None, {"cam": {"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5]}}):
        policy = make_policy(
            "mlp", ["a", "b"], {"cam": (16, 16)}, seed=3, image_normalization=norm, **small
        )
        path = save_checkpoint(policy, tmp_path / f"m{norm is None}")
        cfg = json.loads((path / "config.json").read_text())
        assert ("image_normalization" in cfg["hyperparameters"]) == (norm is not None)
        loaded = load_checkpoint(path)
        assert loaded.config.image_normalization == norm
        outputs.append(loaded.predict_chunk(obs))
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-6


def test_diffusion_defaults_keep_existing_checkpoints_unchanged(tmp_path: Path) -> None:
    """The compatibility options are not written at their defaults and load as before."""
    from robot_policy_ros.checkpoint.weights import load_checkpoint, save_checkpoint
    from robot_policy_ros.policies.factory import make_policy

    small = dict(
        vision_backbone="tiny_cnn",
        backbone_width=4,
        down_dims=(16, 32),
        n_groups=4,
        diffusion_step_embed_dim=8,
        spatial_softmax_num_keypoints=4,
    )
    policy = make_policy("diffusion", ["a", "b"], {"cam": (16, 16)}, seed=1, **small)
    path = save_checkpoint(policy, tmp_path / "d")
    hp = json.loads((path / "config.json").read_text())["hyperparameters"]
    for key in (
        "global_cond_order",
        "final_conv_groups",
        "crop_rounding",
        "resize_shape",
        "sampler",
        "image_normalization",
    ):
        assert key not in hp
    loaded = load_checkpoint(path)
    assert loaded.config.global_cond_order == "images_first"
    assert loaded.config.sampler == "ddim"


@pytest.mark.parametrize(
    ("name", "policy_node", "streamer"),
    [
        # n_action_steps 5 of a 10-action chunk at 30 Hz: infer again after 5 actions.
        (
            "act_one_camera",
            {"inference_trigger": "horizon", "refill_threshold_s": 5 / 30},
            {"blending": "replace"},
        ),
        # temporal_ensemble_coeff 0.01: infer every step, blend exp(-0.01 i).
        (
            "act_two_cameras",
            {"inference_trigger": "rate", "inference_rate_hz": 30.0},
            {"blending": "temporal_ensemble", "ensemble_k": 0.01},
        ),
    ],
)
def test_params_file_runs_the_policy_as_lerobot_does(
    name: str, policy_node: dict, streamer: dict, tmp_path: Path, capsys
) -> None:
    import yaml

    src = lerobot_folder(name, tmp_path)
    j = 6 if name == "act_one_camera" else 5
    params = tmp_path / "deploy.yaml"
    rc = cli.main(
        [
            "import-lerobot",
            str(src),
            "--out",
            str(tmp_path / "c"),
            "--joints",
            ",".join(f"q{i}" for i in range(j)),
            "--fps",
            "30",
            "--params-out",
            str(params),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    doc = yaml.safe_load(params.read_text())
    got_node = doc["/**/policy_node"]["ros__parameters"]
    assert got_node.keys() == policy_node.keys()
    for key, value in policy_node.items():
        assert got_node[key] == pytest.approx(value)
    got_streamer = doc["/**/command_streamer"]["ros__parameters"]
    assert got_streamer.keys() == streamer.keys()
    for key, value in streamer.items():
        assert got_streamer[key] == pytest.approx(value)


def test_limits_file_is_read_as_joint_limits_by_name(tmp_path: Path) -> None:
    """``--limits``: per-joint columns in --joints order, read by the one JointLimits parser."""
    from robot_policy_ros.core.joint_limits import JointLimits
    from robot_policy_ros.lerobot.convert import read_limits

    path = tmp_path / "limits.json"
    columns = {"lower": [-1.0, -2.0], "upper": [1.0, 2.0], "max_velocity": [0.5, 0.6]}
    path.write_text(json.dumps(columns))
    limits = read_limits(str(path), ["a", "b"])
    assert limits == JointLimits.from_columns(["a", "b"], columns)
    assert read_limits(None, ["a", "b"]) == JointLimits.uniform(["a", "b"])
    path.write_text(json.dumps({**columns, "upper": [1.0, -3.0]}))
    with pytest.raises(ValueError, match=r"limits\.json: joint 'b': lower limit"):
        read_limits(str(path), ["a", "b"])
