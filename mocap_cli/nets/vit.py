"""ViT-B/16 hybrid pieces (timm-0.3-era names): hybrid patch embedding, attention, MLP, pre-norm block.

Key names match the authors' checkpoints: ``patch_embed.backbone.*``, ``patch_embed.proj``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.nets.resnetv2 import ResNetV2


class HybridEmbed(nn.Module):
    """CNN feature map -> 1x1 conv -> tokens, flattened row-major (token index = i * w + j)."""

    def __init__(self, backbone: ResNetV2, embed_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Conv2d(backbone.num_features, embed_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (tokens (N, h*w, D), backbone features (N, C, h, w))."""
        features = self.backbone(x)
        return self.proj(features).flatten(2).transpose(1, 2), features


def split_heads(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, L, 3C) with rows [q | k | v], head-major inside each -> q, k, v of shape (N, heads, L, C/heads)."""
    n, length, three_c = qkv.shape
    qkv = qkv.reshape(n, length, 3, num_heads, three_c // (3 * num_heads)).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(N, heads, L, d) -> (N, L, heads*d), heads concatenated in order."""
    n, heads, length, d = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * d)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over the second-to-last axis (bidirectional, no mask, no dropout)."""
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split_heads(self.qkv(x), self.num_heads)
        return self.proj(merge_heads(attend(q, k, v)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    """Pre-norm transformer block; ``attn`` may be replaced by a variant with the same call signature."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        eps: float = 1e-6,
        attn: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = attn if attn is not None else Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, **attn_kwargs: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), **attn_kwargs)
        return x + self.mlp(self.norm2(x))
