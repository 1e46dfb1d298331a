"""Inference backends: ONNX Runtime and OpenVINO equal torch, the export cache is trusted
only by hash.

Tiny models (tiny_cnn, see test_policies) so the exports take about a second each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_policies import observation, tiny_policy

from robot_policy_ros.checkpoint.config import POLICY_TYPES
from robot_policy_ros.inference import backends, export
from robot_policy_ros.inference.backends import (
    GRAPH_PREDICTORS,
    OnnxRuntimePredictor,
    OpenVinoPredictor,
    Predictor,
    make_predictor,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _chunks(predictor: Predictor, n: int = 3) -> list[np.ndarray]:
    """Chunks for a fixed sequence of observations from a fresh history."""
    predictor.reset()
    out = [predictor.predict_chunk(observation(predictor.policy, seed=i)) for i in range(n)]
    predictor.reset()
    return out


@pytest.mark.parametrize("backend", list(GRAPH_PREDICTORS))
@pytest.mark.parametrize("family", POLICY_TYPES)
def test_graph_backend_chunks_equal_torch_within_1e4(family: str, backend: str, tmp_path) -> None:
    cams = {"front": (32, 32), "wrist": (24, 40)} if family != "diffusion" else None
    policy = tiny_policy(family, cameras=cams).eval()
    pred = GRAPH_PREDICTORS[backend](policy, cache_dir=tmp_path)
    assert pred.name == backend
    expected = _chunks(Predictor(policy))
    got = _chunks(pred)
    for e, g in zip(expected, got, strict=True):
        assert g.shape == (policy.chunk_size, policy.num_joints) and g.dtype == np.float64
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)
    # the history matters (diffusion reads two frames): different inputs, different chunks
    assert not np.allclose(got[0], got[1])


@pytest.mark.parametrize("backend", list(GRAPH_PREDICTORS))
def test_graph_predictor_validates_like_torch(backend: str, tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    pred = GRAPH_PREDICTORS[backend](policy, cache_dir=tmp_path)
    obs = observation(policy)
    obs.images["front"] = obs.images["front"][:16]
    with pytest.raises(ValueError, match="image shape"):
        pred.predict_chunk(obs)


def test_cached_graph_is_reused_when_its_hash_matches(tmp_path) -> None:
    policy = tiny_policy("act").eval()
    first = OnnxRuntimePredictor(policy, cache_dir=tmp_path)
    assert "chunk exported" in first.note
    second = OnnxRuntimePredictor(policy, cache_dir=tmp_path)
    assert "chunk cached" in second.note
    assert second.files == first.files


def test_tampered_cached_graph_is_rebuilt_not_used(tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    path = OnnxRuntimePredictor(policy, cache_dir=tmp_path).files["chunk"]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # flip bits inside the last initializer
    path.write_bytes(bytes(data))
    pred = OnnxRuntimePredictor(policy, cache_dir=tmp_path)
    assert "does not match its recorded sha256" in pred.note
    np.testing.assert_allclose(_chunks(pred)[0], _chunks(Predictor(policy))[0], atol=1e-4)


def test_cache_of_other_weights_is_not_used(tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    old = OnnxRuntimePredictor(policy, cache_dir=tmp_path)
    with torch.no_grad():
        policy.head[-1].bias.add_(0.5)
    new = OnnxRuntimePredictor(policy, cache_dir=tmp_path)
    assert new.files["chunk"] != old.files["chunk"] and "chunk exported" in new.note
    np.testing.assert_allclose(_chunks(new)[0], _chunks(Predictor(policy))[0], atol=1e-4)


def test_sidecar_naming_other_weights_forces_rebuild(tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    path = OnnxRuntimePredictor(policy, cache_dir=tmp_path).files["chunk"]
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["digest"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    assert "built from other weights" in OnnxRuntimePredictor(policy, cache_dir=tmp_path).note


def test_digest_changes_with_normalisation_stats() -> None:
    policy = tiny_policy("mlp").eval()
    before = export.policy_digest(policy)
    with torch.no_grad():
        policy.normalizer.action_offset.add_(1.0)
    assert export.policy_digest(policy) != before


def test_cache_beside_checkpoint_or_in_user_cache(tmp_path, monkeypatch) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    assert export.cache_dir_for(ckpt) == ckpt / export.CACHE_FOLDER
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # a folder that cannot be written (here: does not exist) -> the user cache
    user = tmp_path / "xdg" / "robot_policy_ros"
    assert export.cache_dir_for(tmp_path / "missing" / "ckpt") == user
    assert export.cache_dir_for(None) == user


def test_auto_falls_back_to_torch_when_no_graph_runtime_is_installed(monkeypatch) -> None:
    policy = tiny_policy("mlp").eval()
    monkeypatch.setattr(backends, "available_backends", lambda: ["torch"])
    pred = make_predictor(policy, "auto")
    assert pred.name == "torch"
    assert "onnxruntime not used" in pred.note and "openvino not used" in pred.note
    for backend in GRAPH_PREDICTORS:
        with pytest.raises(ValueError, match=f"{backend} is not installed"):
            make_predictor(policy, backend)


def test_auto_without_openvino_still_uses_onnxruntime(monkeypatch, tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    monkeypatch.setattr(backends, "available_backends", lambda: ["torch", "onnxruntime"])
    pred = make_predictor(policy, "auto", cache_dir=tmp_path)
    assert "onnxruntime" in pred.note and "openvino not used: openvino is not installed" in (
        pred.note
    )
    np.testing.assert_allclose(_chunks(pred)[0], _chunks(Predictor(policy))[0], atol=1e-4)


def test_auto_times_every_installed_backend_and_keeps_the_fastest(tmp_path, monkeypatch) -> None:
    policy = tiny_policy("act").eval()
    seen: list[list[str]] = []
    real = backends.fastest_of

    def fake_times(predictors, obs, rounds=3):
        real(predictors, obs, rounds=1)  # every candidate runs (and must not raise)
        seen.append([p.name for p in predictors])
        return {"torch": 3.0, "onnxruntime": 2.0, "openvino": 1.0}

    monkeypatch.setattr(backends, "fastest_of", fake_times)
    pred = make_predictor(policy, "auto", cache_dir=tmp_path)
    assert seen == [["torch", "onnxruntime", "openvino"]]
    assert isinstance(pred, OpenVinoPredictor)
    assert pred.note.startswith("auto: torch 3000.0 ms vs onnxruntime 2000.0 ms vs openvino")
    np.testing.assert_allclose(_chunks(pred)[0], _chunks(Predictor(policy))[0], atol=1e-4)


def test_auto_picks_a_backend_that_matches_torch(tmp_path) -> None:
    policy = tiny_policy("act").eval()
    pred = make_predictor(policy, "auto", cache_dir=tmp_path)
    assert pred.name in ("torch", *GRAPH_PREDICTORS) and pred.note.startswith("auto:")
    np.testing.assert_allclose(_chunks(pred)[0], _chunks(Predictor(policy))[0], atol=1e-4)


def test_graph_that_fails_verification_is_not_used(tmp_path, monkeypatch) -> None:
    """A runtime whose graph differs from torch is refused by name, and auto leaves it out."""
    policy = tiny_policy("mlp").eval()
    load = OpenVinoPredictor._load

    def off_by_a_little(self, data, threads):
        run = load(self, data, threads)
        return lambda feeds: run(feeds) + 1e-3

    monkeypatch.setattr(OpenVinoPredictor, "_load", off_by_a_little)
    with pytest.raises(ValueError, match=r"differs from torch by 1\.00e-03"):
        make_predictor(policy, "openvino", cache_dir=tmp_path)
    pred = make_predictor(policy, "auto", cache_dir=tmp_path)
    assert pred.name != "openvino" and "openvino not used" in pred.note


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown inference backend 'tensorrt'"):
        make_predictor(tiny_policy("mlp").eval(), "tensorrt")


@pytest.mark.parametrize("backend", list(GRAPH_PREDICTORS))
def test_graph_backend_refuses_half_precision(backend: str, tmp_path) -> None:
    policy = tiny_policy("mlp").eval()
    policy._set_runtime(torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ValueError, match="float32 only"):
        make_predictor(policy, backend, cache_dir=tmp_path)


def _omp_policy_after_configure_import(env_value: str | None) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    code = (
        "import os\n"
        "from robot_policy_ros.inference.threads import passive_omp_wait\n"
        "passive_omp_wait()\n"
        "import torch\n"
        "print(os.environ['OMP_WAIT_POLICY'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_openmp_does_not_spin_unless_the_user_asks() -> None:
    assert _omp_policy_after_configure_import(None) == "PASSIVE"
    assert _omp_policy_after_configure_import("ACTIVE") == "ACTIVE"


@pytest.mark.parametrize("family", POLICY_TYPES)
def test_predict_graph_backends_equal_torch(family: str, tmp_path, capsys) -> None:
    """``robot-policy predict --backend onnxruntime|openvino`` writes torch's actions (within
    1e-4)."""
    from test_policies import TINY

    from robot_policy_ros import cli

    ckpt = tmp_path / "ckpt"
    sets = [a for k, v in TINY[family].items() for a in ("--set", f"{k}={json.dumps(v)}")]
    init = ["init-checkpoint", "--policy", family, "--joints", "a,b,c", "--cameras"]
    assert cli.main([*init, "front:32x32", "--out", str(ckpt), "--seed", "3", *sets]) == 0
    config = json.loads((ckpt / "config.json").read_text())
    n, t, j = 2, config["n_obs_steps"], 3
    rng = np.random.default_rng(0)
    inputs = {
        "images.front": rng.integers(0, 256, (n, t, 32, 32, 3), dtype=np.uint8),
        "joint_positions": rng.uniform(-1, 1, (n, t, j)),
    }
    if family == "diffusion":  # the initial sample: both backends denoise the same noise
        horizon = config["hyperparameters"]["horizon"]
        inputs["noise"] = rng.standard_normal((n, horizon, j)).astype(np.float32)
    np.savez(tmp_path / "in.npz", **inputs)
    capsys.readouterr()
    actions = {}
    for backend in ("torch", *GRAPH_PREDICTORS):
        out = tmp_path / f"{backend}.npz"
        args = ["predict", str(ckpt), "--inputs", str(tmp_path / "in.npz"), "--out", str(out)]
        assert cli.main([*args, "--backend", backend]) == 0
        printed = capsys.readouterr().out
        assert f"backend {backend})" in printed, printed
        with np.load(out) as data:
            assert list(data.keys()) == ["actions"]  # same file whichever backend ran
            actions[backend] = data["actions"]
    assert list((ckpt / export.CACHE_FOLDER).glob("*.onnx"))  # the graphs they ran, beside it
    assert actions["torch"].shape == (n, config["chunk_size"], j)
    for backend in GRAPH_PREDICTORS:
        assert actions[backend].dtype == np.float64
        np.testing.assert_allclose(actions[backend], actions["torch"], rtol=0, atol=1e-4)
    assert not np.allclose(actions["torch"][0], actions["torch"][1])  # inputs matter
