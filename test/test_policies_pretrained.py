"""Pretrained ResNet18 weights: only from a local file, never downloaded; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

from robot_policy_ros.checkpoint.weights import load_checkpoint, save_checkpoint
from robot_policy_ros.policies.factory import make_policy

CAMS = {"front": (64, 64)}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    net = resnet18(weights=None)
    with torch.no_grad():  # non-default BN statistics, to see that they are carried over
        net.bn1.running_mean.uniform_(-1, 1)
        net.bn1.running_var.uniform_(0.5, 2)
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_weights_load_from_local_safetensors(tmp_path: Path, reference_state) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "resnet18.safetensors"
    save_file(reference_state, str(path))
    p = make_policy("mlp", ["a"], CAMS, pretrained_backbone_weights=str(path), seed=0)
    trunk = p.backbones[0]
    torch.testing.assert_close(trunk.conv1.weight, reference_state["conv1.weight"])
    torch.testing.assert_close(
        trunk.layer4[1].conv2.weight, reference_state["layer4.1.conv2.weight"]
    )
    torch.testing.assert_close(trunk.bn1.running_mean, reference_state["bn1.running_mean"])


def test_weights_load_from_torchvision_pth_with_weights_only(
    tmp_path: Path,
    reference_state,
) -> None:
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference_state, path)
    p = make_policy("act", ["a"], CAMS, pretrained_backbone_weights=str(path), seed=0)
    torch.testing.assert_close(p.backbones[0].conv1.weight, reference_state["conv1.weight"])
    # frozen BN (ACT default) keeps the ImageNet statistics
    torch.testing.assert_close(p.backbones[0].bn1.running_var, reference_state["bn1.running_var"])


def test_group_norm_backbone_loads_convolutions_only(tmp_path: Path, reference_state) -> None:
    path = tmp_path / "r.pth"
    torch.save(reference_state, path)
    p = make_policy(
        "diffusion", ["a"], CAMS, pretrained_backbone_weights=str(path), down_dims=[16, 32]
    )
    trunk = p.rgb_encoders[0].backbone
    torch.testing.assert_close(trunk.conv1.weight, reference_state["conv1.weight"])
    assert isinstance(trunk.bn1, torch.nn.GroupNorm)


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        make_policy("mlp", ["a"], CAMS, pretrained_backbone_weights=str(tmp_path / "nope.pth"))


def test_pickle_with_code_is_refused_by_weights_only(tmp_path: Path) -> None:
    import pickle

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(ValueError, match="weights_only"):
        make_policy("mlp", ["a"], CAMS, pretrained_backbone_weights=str(path))
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_does_not_need_the_pretrained_file(tmp_path: Path, reference_state) -> None:
    path = tmp_path / "r.pth"
    torch.save(reference_state, path)
    p = make_policy("mlp", ["a"], CAMS, pretrained_backbone_weights=str(path), hidden_dims=[8])
    save_checkpoint(p, tmp_path / "ckpt")
    path.unlink()
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["provenance"]["pretrained_backbone_weights"] == str(path)
    assert "pretrained_backbone_weights" not in cfg["hyperparameters"]
    loaded = load_checkpoint(tmp_path / "ckpt")
    torch.testing.assert_close(loaded.backbones[0].conv1.weight, reference_state["conv1.weight"])


def test_pretrained_needs_resnet18() -> None:
    with pytest.raises(ValueError, match="resnet18"):
        make_policy(
            "mlp", ["a"], CAMS, vision_backbone="tiny_cnn", pretrained_backbone_weights="/x.pth"
        )
