"""Vision pieces shared by the families: backbones, ImageNet normalisation, spatial softmax.

Backbones return a feature map (B, C, h, w):
- ``resnet18``: torchvision ResNet18 up to layer4 (stride 32, 512 channels), with the
  normalisation layers chosen by the config (BatchNorm, frozen BatchNorm as in DETR/ACT, or
  GroupNorm with channels//16 groups as in Diffusion Policy).
- ``tiny_cnn``: three 3x3 stride-2 convolutions (stride 8, 2*width channels), for tests.

Pretrained ResNet18 weights are read only from a local file (never downloaded).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.ops.misc import FrozenBatchNorm2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def norm_layer_factory(kind: str) -> Callable[[int], nn.Module]:
    """Normalisation layer constructor for ``kind`` in batch_norm / frozen_bn / group_norm."""
    if kind == "batch_norm":
        return nn.BatchNorm2d
    if kind == "frozen_bn":
        return FrozenBatchNorm2d
    if kind == "group_norm":
        # Diffusion Policy: GroupNorm with 16 channels per group replaces every BatchNorm.
        return lambda c: nn.GroupNorm(max(1, c // 16), c)
    raise ValueError(f"unknown backbone_norm {kind!r}")


class ImageNormalize(nn.Module):
    """[0, 1] RGB -> mean/std normalised (constant buffers, not in the state dict).

    ImageNet statistics unless ``mean`` / ``std`` (3 values, R G B) are given.
    """

    def __init__(
        self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        m = torch.tensor(IMAGENET_MEAN if mean is None else tuple(mean), dtype=torch.float32)
        s = torch.tensor(IMAGENET_STD if std is None else tuple(std), dtype=torch.float32)
        self.register_buffer("mean", m.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", s.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1]."""
        return (x - self.mean) / self.std


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class ResNet18Trunk(nn.Module):
    """torchvision ResNet18 without avgpool/fc; parameter names match torchvision's."""

    out_channels = 512

    def __init__(self, norm: str) -> None:
        super().__init__()
        net = resnet18(weights=None, norm_layer=norm_layer_factory(norm))
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 512, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    @staticmethod
    def feature_shape(h: int, w: int) -> tuple[int, int]:
        """Spatial size of the layer4 map for an (h, w) input."""

        def f(s: int) -> int:
            s = _conv_out(s, 7, 2, 3)  # conv1
            s = _conv_out(s, 3, 2, 1)  # maxpool
            for _ in range(3):  # layer2..4 stride-2 blocks
                s = _conv_out(s, 3, 2, 1)
            return s

        return f(h), f(w)

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision ResNet18 weights from a local file (.safetensors or .pth/.pt).

        A ``.pth`` file is read with ``torch.load(weights_only=True)``, which refuses
        arbitrary objects. With group_norm only the convolutions are loaded (the GroupNorm
        layers start fresh, as in Diffusion Policy). Raises FileNotFoundError / ValueError.
        """
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(
                f"pretrained backbone weights file {p} does not exist; weights are never "
                "downloaded at run time: put torchvision's resnet18 weights there (e.g. "
                "resnet18-f37072fd.pth) or leave pretrained_backbone_weights unset"
            )
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            src = load_file(str(p))
        else:
            try:
                # weights_only: a restricted unpickler that refuses arbitrary objects/code
                src = torch.load(str(p), map_location="cpu", weights_only=True)
            except Exception as exc:  # UnpicklingError, RuntimeError, ... : all refusals
                raise ValueError(
                    f"{p}: refused by torch.load(weights_only=True) (not a plain state dict "
                    f"of tensors): {str(exc).splitlines()[0]}"
                ) from None
            if not isinstance(src, dict):
                raise ValueError(f"{p} does not hold a state dict")
        own = self.state_dict()
        loaded: dict[str, torch.Tensor] = {}
        for key, tensor in own.items():
            is_norm = ".bn" in f".{key}" or ".downsample.1." in f".{key}"
            if self.norm == "group_norm" and is_norm:
                continue
            if key.endswith("num_batches_tracked") and key not in src:
                continue
            if key not in src:
                raise ValueError(f"{p}: ResNet18 weight {key!r} is missing")
            if tuple(src[key].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"{p}: {key!r} has shape {tuple(src[key].shape)}, "
                    f"expected {tuple(tensor.shape)}"
                )
            loaded[key] = src[key].to(tensor.dtype)
        self.load_state_dict(loaded, strict=False)


class TinyCNN(nn.Module):
    """Three 3x3 stride-2 conv + norm + ReLU blocks: a small stand-in for tests/fixtures."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        make_norm = norm_layer_factory(norm)
        chans = (3, width, 2 * width, 2 * width)
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), make_norm(cout), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.out_channels = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 2*width, H/8, W/8)."""
        return self.net(x)

    @staticmethod
    def feature_shape(h: int, w: int) -> tuple[int, int]:
        """Spatial size of the output map for an (h, w) input."""

        def f(s: int) -> int:
            for _ in range(3):
                s = _conv_out(s, 3, 2, 1)
            return s

        return f(h), f(w)


def build_backbone(
    name: str, norm: str, width: int = 16, pretrained: str | None = None
) -> ResNet18Trunk | TinyCNN:
    """A backbone per the config; ``pretrained`` only for resnet18."""
    if name == "resnet18":
        trunk = ResNet18Trunk(norm)
        if pretrained is not None:
            trunk.load_pretrained(pretrained)
        return trunk
    if name == "tiny_cnn":
        if pretrained is not None:
            raise ValueError("pretrained weights are only supported for resnet18")
        return TinyCNN(width, norm)
    raise ValueError(f"unknown vision_backbone {name!r}")


class SpatialSoftmax(nn.Module):
    """Spatial soft-argmax keypoints (Levine et al. 2016; robomimic / Diffusion Policy).

    A 1x1 conv makes ``num_kp`` attention maps; each is softmaxed over the pixels and the
    expected (x, y) position in [-1, 1] is returned: (B, num_kp, 2). The coordinate grid is
    built for (height, width); other map sizes (a shared encoder over cameras of different
    image sizes) get their own grid, cached.
    """

    def __init__(self, in_channels: int, height: int, width: int, num_kp: int) -> None:
        super().__init__()
        self.kp_conv = nn.Conv2d(in_channels, num_kp, kernel_size=1)
        self.num_kp = num_kp
        self.register_buffer("pos_grid", self._grid(height, width), persistent=False)
        self._hw = (height, width)
        self._other_grids: dict[tuple, torch.Tensor] = {}

    @staticmethod
    def _grid(height: int, width: int) -> torch.Tensor:
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)  # (h*w, 2): (x, y)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, num_kp, 2)."""
        x = self.kp_conv(features)
        b, _, h, w = x.shape
        attn = torch.softmax(x.flatten(2), dim=-1)  # (B, K, h*w)
        if (h, w) == self._hw:
            grid = self.pos_grid
        else:
            key = (h, w, attn.device, attn.dtype)
            if key not in self._other_grids:
                self._other_grids[key] = self._grid(h, w).to(attn.device, attn.dtype)
            grid = self._other_grids[key]
        return (attn @ grid.to(attn.dtype)).view(b, self.num_kp, 2)


def crop_images(
    x: torch.Tensor, shape: tuple[int, int] | None, random: bool, rounding: str = "floor"
) -> torch.Tensor:
    """Crop (B, C, H, W) to ``shape``: one random offset per batch when ``random``, else centre
    (offset rounded down, or to nearest with ``rounding="round"`` as torchvision does)."""
    if shape is None:
        return x
    h, w = x.shape[-2:]
    ch, cw = shape
    if (ch, cw) == (h, w):
        return x
    if random:
        top = int(torch.randint(0, h - ch + 1, ()).item())
        left = int(torch.randint(0, w - cw + 1, ()).item())
    elif rounding == "round":
        top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)
    else:
        top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]
