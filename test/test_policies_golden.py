"""Golden-output regression tests against tiny checkpoints committed under test/fixtures/golden.

A failure means the numbers of a family changed: predictions (inference path, observation
history, normalisation) or the training loss. If the change is intended, regenerate with
``.venv/bin/python test/fixtures/golden/regenerate.py`` and explain why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robot_policy_ros.checkpoint.config import POLICY_TYPES, read_checkpoint_config
from robot_policy_ros.checkpoint.weights import load_checkpoint

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
FAMILIES = list(POLICY_TYPES)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _regen():
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", FAMILIES)
def test_golden_checkpoint_outputs_unchanged(family: str) -> None:
    regen = _regen()
    policy = load_checkpoint(GOLDEN / family)
    assert policy.policy_type == family
    assert policy.joint_names == regen.JOINTS
    with np.load(GOLDEN / family / "io.npz", allow_pickle=False) as data:
        io = {k: data[k] for k in data.files}
    chunks, loss = regen.run_policy(policy, io)
    expected = io["expected_chunks"]
    assert chunks.shape == expected.shape == (regen.N_STEPS, policy.chunk_size, 5)
    np.testing.assert_allclose(chunks, expected, rtol=1e-4, atol=1e-5)
    assert loss == pytest.approx(float(io["expected_loss"]), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_golden_fixture_is_small_and_readable(family: str) -> None:
    size = sum(p.stat().st_size for p in (GOLDEN / family).iterdir())
    assert size < 200 * 1024
    cfg = read_checkpoint_config(GOLDEN / family)
    assert cfg.policy_type == family and cfg.fps == 25.0
    assert cfg.hyperparameters["vision_backbone"] == "tiny_cnn"
