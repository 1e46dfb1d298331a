"""Imitation MLP (behaviour cloning) on a ResNet18 trunk per camera.

Each camera image goes through the backbone (one shared or one per camera), is
global-average pooled, the pooled features of all cameras are concatenated with the
normalised joint positions, and an MLP predicts ``chunk_size`` normalised actions at once.
State and action use mean/std normalisation; the loss is MSE (or L1) over non-padded actions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robot_policy_ros.checkpoint.config import NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.base import Policy
from robot_policy_ros.policies.config import MLPConfig
from robot_policy_ros.policies.vision import build_backbone


class MLPPolicy(Policy):
    """Behaviour-cloning MLP; see module docstring."""

    config_class = MLPConfig
    state_norm_mode = "mean_std"
    action_norm_mode = "mean_std"
    config: MLPConfig

    def __init__(
        self,
        config: MLPConfig,
        stats: NormalizationStats | None = None,
        limits: JointLimits | None = None,
    ) -> None:
        super().__init__(config, stats, limits)
        c = config
        n_backbones = 1 if c.share_backbone else len(c.cameras)
        self.backbones = nn.ModuleList(
            build_backbone(
                c.vision_backbone, c.backbone_norm, c.backbone_width, c.pretrained_backbone_weights
            )
            for _ in range(n_backbones)
        )
        feat_dim = self.backbones[0].out_channels
        layers: list[nn.Module] = []
        d = feat_dim * len(c.cameras) + c.num_joints
        for h in c.hidden_dims:
            layers += [nn.Linear(d, h), nn.ReLU()]
            if c.dropout > 0:
                layers.append(nn.Dropout(c.dropout))
            d = h
        layers.append(nn.Linear(d, c.chunk_size * c.num_joints))
        self.head = nn.Sequential(*layers)

    def _features(self, images: dict[str, torch.Tensor], state: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, cam in enumerate(self.config.camera_names):
            x = images[cam][:, -1]  # (B, 3, H, W): the MLP reads the current frame only
            backbone = self.backbones[0 if self.config.share_backbone else i]
            fmap = backbone(self._encode_camera_input(x, cam))
            feats.append(fmap.mean(dim=(2, 3)))  # global average pooling
        feats.append(state[:, -1].to(feats[0].dtype))
        return torch.cat(feats, dim=1)

    def _forward(self, images: dict[str, torch.Tensor], state: torch.Tensor) -> torch.Tensor:
        out = self.head(self._features(images, state))
        return out.view(out.shape[0], self.config.chunk_size, self.config.num_joints)

    def _predict_normalized(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        return self._forward(images, state)

    def _compute_loss_normalized(self, images, state, action, action_is_pad):
        pred = self._forward(images, state).float()
        if self.config.loss == "mse":
            err = F.mse_loss(pred, action, reduction="none")
        else:
            err = F.l1_loss(pred, action, reduction="none")
        valid = (~action_is_pad).unsqueeze(-1).to(err.dtype)
        loss = (err * valid).sum() / (valid.sum() * err.shape[-1]).clamp(min=1.0)
        return loss, {self.config.loss: float(loss.detach())}
