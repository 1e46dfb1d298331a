"""ACT: Action Chunking with Transformers (Zhao et al. 2023, "Learning Fine-Grained Bimanual
Manipulation with Low-Cost Hardware"), following the reference implementation's behaviour.

Model (DETR-style):
- Each camera image -> ResNet18 layer4 feature map (frozen BatchNorm by default) -> 1x1 conv
  to ``d_model``; every feature-map cell is a token with a fixed 2D sinusoidal position
  embedding.
- Two more encoder tokens: the latent z (projected from ``latent_dim``) and the
  proprioception (projected joint positions), each with a learned 1D position embedding.
- Transformer encoder (``n_encoder_layers``) over [latent, proprio, image tokens]; the
  decoder (``n_decoder_layers``) runs ``chunk_size`` queries (zeros + learned position
  embeddings) with self-attention and cross-attention to the encoder memory; a linear head
  gives one normalised action per query. Position embeddings are added to queries and keys
  in every attention layer (DETR); post-norm by default (``pre_norm`` to change).
- Training: a CVAE encoder (transformer over [CLS, proprio, action sequence] with a fixed
  1D sinusoidal position table, padded actions masked) gives mu / log-variance of z;
  z = mu + sigma * eps. Loss = L1 over non-padded actions + kl_weight * KL, the KL summed
  over latent dimensions and averaged over the batch.
- Inference: z = 0 (the prior mean).
State and action use mean/std normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robot_policy_ros.checkpoint.config import NormalizationStats
from robot_policy_ros.core.joint_limits import JointLimits
from robot_policy_ros.policies.base import Policy
from robot_policy_ros.policies.config import ACTConfig
from robot_policy_ros.policies.vision import build_backbone


def sinusoid_table_1d(n_positions: int, dim: int) -> torch.Tensor:
    """(n_positions, dim) fixed sinusoidal table (Attention Is All You Need / ACT's VAE)."""
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(dim, dtype=torch.float64).unsqueeze(0)
    angle = pos / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def sinusoid_embedding_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """(dim, height, width) DETR 2D sine embedding: dim/2 channels for y, then dim/2 for x.

    Positions are normalised to (0, 2*pi] along each axis; temperature 10000.
    """
    half = dim // 2
    eps, scale, temperature = 1e-6, 2 * math.pi, 10000.0
    y = torch.arange(1, height + 1, dtype=torch.float32).view(height, 1).expand(height, width)
    x = torch.arange(1, width + 1, dtype=torch.float32).view(1, width).expand(height, width)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    inv_freq = temperature ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)
    px = x.unsqueeze(-1) / inv_freq  # (h, w, half)
    py = y.unsqueeze(-1) / inv_freq
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=-1).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=-1).flatten(2)
    return torch.cat((py, px), dim=-1).permute(2, 0, 1).contiguous()  # (dim, h, w)


def _activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU()


class EncoderLayer(nn.Module):
    """DETR transformer encoder layer: position added to queries/keys, post- or pre-norm."""

    def __init__(self, c: ACTConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            c.d_model, c.n_heads, dropout=c.dropout, batch_first=True
        )
        self.linear1 = nn.Linear(c.d_model, c.dim_feedforward)
        self.linear2 = nn.Linear(c.dim_feedforward, c.d_model)
        self.norm1, self.norm2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(c.dropout) for _ in range(3))
        self.activation = _activation(c.feedforward_activation)
        self.pre_norm = c.pre_norm

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor | None, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """x: (B, S, D); pos: broadcastable to x; key_padding_mask: (B, S) True = ignore."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x if pos is None else x + pos
        x = self.self_attn(qk, qk, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = skip + self.dropout1(x)
        if self.pre_norm:
            skip = x
            x = self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        x = skip + self.dropout2(x)
        if not self.pre_norm:
            x = self.norm2(x)
        return x


class Encoder(nn.Module):
    """A stack of encoder layers (final LayerNorm only with pre-norm, as in DETR)."""

    def __init__(self, c: ACTConfig, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(n_layers))
        self.norm = nn.LayerNorm(c.d_model) if c.pre_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, S, D) -> (B, S, D)."""
        for layer in self.layers:
            x = layer(x, pos, key_padding_mask)
        return self.norm(x)


class DecoderLayer(nn.Module):
    """DETR decoder layer: self-attention over queries, cross-attention to the memory."""

    def __init__(self, c: ACTConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            c.d_model, c.n_heads, dropout=c.dropout, batch_first=True
        )
        self.cross_attn = nn.MultiheadAttention(
            c.d_model, c.n_heads, dropout=c.dropout, batch_first=True
        )
        self.linear1 = nn.Linear(c.d_model, c.dim_feedforward)
        self.linear2 = nn.Linear(c.dim_feedforward, c.d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(c.d_model) for _ in range(3))
        self.dropout, self.dropout1, self.dropout2, self.dropout3 = (
            nn.Dropout(c.dropout) for _ in range(4)
        )
        self.activation = _activation(c.feedforward_activation)
        self.pre_norm = c.pre_norm

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor,
        memory_pos: torch.Tensor,
    ) -> torch.Tensor:
        """x: (B, T, D) queries; memory: (B, S, D)."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x + query_pos
        x = self.self_attn(qk, qk, x, need_weights=False)[0]
        x = skip + self.dropout1(x)
        if self.pre_norm:
            skip = x
            x = self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        x = self.cross_attn(x + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        x = skip + self.dropout2(x)
        if self.pre_norm:
            skip = x
            x = self.norm3(x)
        else:
            x = self.norm2(x)
            skip = x
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        x = skip + self.dropout3(x)
        if not self.pre_norm:
            x = self.norm3(x)
        return x


class Decoder(nn.Module):
    """A stack of decoder layers with a final LayerNorm (always, as in DETR/ACT)."""

    def __init__(self, c: ACTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_decoder_layers))
        self.norm = nn.LayerNorm(c.d_model)

    def forward(self, x, memory, query_pos, memory_pos):
        for layer in self.layers:
            x = layer(x, memory, query_pos, memory_pos)
        return self.norm(x)


class ACTPolicy(Policy):
    """ACT; see module docstring."""

    config_class = ACTConfig
    state_norm_mode = "mean_std"
    action_norm_mode = "mean_std"
    config: ACTConfig

    def __init__(
        self,
        config: ACTConfig,
        stats: NormalizationStats | None = None,
        limits: JointLimits | None = None,
    ) -> None:
        super().__init__(config, stats, limits)
        c = config
        d, j = c.d_model, c.num_joints
        n_backbones = 1 if c.share_backbone else len(c.cameras)
        self.backbones = nn.ModuleList(
            build_backbone(
                c.vision_backbone, c.backbone_norm, c.backbone_width, c.pretrained_backbone_weights
            )
            for _ in range(n_backbones)
        )
        backbone_cls = type(self.backbones[0])
        self.input_proj = nn.Conv2d(self.backbones[0].out_channels, d, kernel_size=1)
        # Fixed 2D sine embeddings per camera (feature-map size depends on the image size).
        for i, cam in enumerate(c.cameras):
            fh, fw = backbone_cls.feature_shape(cam.height, cam.width)
            if fh < 1 or fw < 1:
                raise ValueError(f"camera {cam.name!r}: image too small for the backbone")
            emb = sinusoid_embedding_2d(fh, fw, d).flatten(1).t().unsqueeze(0)  # (1, hw, d)
            self.register_buffer(f"_cam_pos_{i}", emb, persistent=False)

        # Main transformer.
        self.latent_proj = nn.Linear(c.latent_dim, d)
        self.state_proj = nn.Linear(j, d)
        self.token_pos_embed = nn.Embedding(2, d)  # learned: [latent, proprio]
        self.encoder = Encoder(c, c.n_encoder_layers)
        self.decoder = Decoder(c)
        self.query_pos_embed = nn.Embedding(c.chunk_size, d)
        self.action_head = nn.Linear(d, j)

        # CVAE encoder (training only).
        if c.use_vae:
            self.vae_cls_embed = nn.Embedding(1, d)
            self.vae_state_proj = nn.Linear(j, d)
            self.vae_action_proj = nn.Linear(j, d)
            self.vae_encoder = Encoder(c, c.n_vae_encoder_layers)
            self.vae_latent_out = nn.Linear(d, 2 * c.latent_dim)
            self.register_buffer(
                "_vae_pos", sinusoid_table_1d(2 + c.chunk_size, d).unsqueeze(0), persistent=False
            )
        self.register_buffer("_zero", torch.zeros(1), persistent=False)
        self._reset_transformer_parameters()

    def _reset_transformer_parameters(self) -> None:
        # As in DETR/ACT: Xavier-uniform for every matrix in the transformers.
        modules = [self.encoder, self.decoder]
        if self.config.use_vae:
            modules.append(self.vae_encoder)
        for module in modules:
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    # --- model ---------------------------------------------------------------------------
    def _image_tokens(self, images: dict[str, torch.Tensor]) -> tuple[list, list]:
        tokens, pos = [], []
        for i, cam in enumerate(self.config.camera_names):
            x = images[cam][:, -1]  # ACT reads the current frame only
            backbone = self.backbones[0 if self.config.share_backbone else i]
            fmap = self.input_proj(backbone(self._encode_camera_input(x, cam)))  # (B, d, h, w)
            tokens.append(fmap.flatten(2).transpose(1, 2))  # (B, h*w, d)
            pos.append(getattr(self, f"_cam_pos_{i}").to(fmap.dtype))
        return tokens, pos

    def _decode(
        self, images: dict[str, torch.Tensor], state: torch.Tensor, latent: torch.Tensor
    ) -> torch.Tensor:
        """state (B, J) normalised, latent (B, latent_dim) -> (B, chunk, J) normalised."""
        b = state.shape[0]
        img_tokens, img_pos = self._image_tokens(images)
        dtype = img_tokens[0].dtype
        first = torch.stack(
            [self.latent_proj(latent.to(dtype)), self.state_proj(state.to(dtype))], dim=1
        )  # (B, 2, d)
        tokens = torch.cat([first, *img_tokens], dim=1)
        pos = torch.cat([self.token_pos_embed.weight.unsqueeze(0), *img_pos], dim=1)
        memory = self.encoder(tokens, pos)
        # Decoder input: zeros (the information is in the query position embeddings).
        queries = self._zero.to(dtype).expand(b, self.config.chunk_size, self.config.d_model)
        out = self.decoder(queries, memory, self.query_pos_embed.weight.unsqueeze(0), pos)
        return self.action_head(out)

    def _predict_normalized(
        self, images: dict[str, torch.Tensor], state: torch.Tensor
    ) -> torch.Tensor:
        s = state[:, -1]
        latent = self._zero.expand(s.shape[0], self.config.latent_dim)  # prior mean at inference
        return self._decode(images, s, latent)

    def _compute_loss_normalized(self, images, state, action, action_is_pad):
        c = self.config
        s = state[:, -1]
        b = s.shape[0]
        logs: dict[str, float] = {}
        if c.use_vae:
            cls = self.vae_cls_embed.weight.unsqueeze(0).expand(b, -1, -1)
            st = self.vae_state_proj(s).unsqueeze(1)
            act = self.vae_action_proj(action)
            x = torch.cat([cls, st, act], dim=1)  # (B, 2 + chunk, d)
            mask = torch.cat(
                [torch.zeros((b, 2), dtype=torch.bool, device=s.device), action_is_pad], dim=1
            )
            h = self.vae_encoder(x, self._vae_pos, key_padding_mask=mask)[:, 0]
            params = self.vae_latent_out(h)
            mu, logvar = params[:, : c.latent_dim], params[:, c.latent_dim :]
            latent = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        else:
            latent = torch.zeros((b, c.latent_dim), device=s.device)
            kl = torch.zeros((), device=s.device)
        pred = self._decode(images, s, latent).float()
        valid = (~action_is_pad).unsqueeze(-1).to(pred.dtype)
        l1 = (F.l1_loss(pred, action, reduction="none") * valid).mean()
        loss = l1 + c.kl_weight * kl
        logs.update(l1=float(l1.detach()), kl=float(kl.detach()), loss=float(loss.detach()))
        return loss, logs
