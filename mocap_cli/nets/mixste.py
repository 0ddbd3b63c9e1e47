"""MixSTE (Zhang et al., CVPR 2022): the ``MixSTE2`` 2D→3D lifter as the authors' code runs it.

Module and parameter names follow the official ``common/model_cross.py`` so the released state dicts load
with ``strict=True`` once the DataParallel ``module.`` prefix is removed. Inference only: dropout and
stochastic depth (all zero or identity in the released evaluation model) are left out; they own no weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.errors import MocapError

# The released model hard-codes 8 heads in run.py; the head count leaves no trace in the weights.
RELEASED_NUM_HEADS = 8


@dataclass(frozen=True)
class MixSTEConfig:
    """Constructor arguments of ``MixSTE2`` (official names in comments); defaults = released 243-frame model."""

    num_frame: int = 243  # T, fixed window length
    num_joints: int = 17
    in_chans: int = 2
    embed_dim: int = 512  # official ``embed_dim_ratio`` (it is the width, not a ratio)
    depth: int = 8
    num_heads: int = RELEASED_NUM_HEADS
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    qk_scale: float | None = None

    @classmethod
    def from_official(cls, kwargs: dict) -> "MixSTEConfig":
        """From the official ``MixSTE2`` constructor keyword arguments (training-only ones are ignored)."""
        return cls(
            num_frame=int(kwargs["num_frame"]),
            num_joints=int(kwargs.get("num_joints", 17)),
            in_chans=int(kwargs.get("in_chans", 2)),
            embed_dim=int(kwargs["embed_dim_ratio"]),
            depth=int(kwargs["depth"]),
            num_heads=int(kwargs.get("num_heads", RELEASED_NUM_HEADS)),
            mlp_ratio=float(kwargs.get("mlp_ratio", 2.0)),
            qkv_bias=bool(kwargs.get("qkv_bias", True)),
            qk_scale=kwargs.get("qk_scale"),
        )


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (channels q | k | v, heads contiguous)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, qk_scale: float | None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        # The official code uses ``qk_scale or head_dim ** -0.5`` (so a scale of 0 also means "default").
        self.scale = qk_scale or head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, c = x.shape
        qkv = self.qkv(x).reshape(n, s, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(n, s, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU, as in the official code
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; LayerNorm eps 1e-6 (timm-style ``norm_layer`` of the official code)."""

    def __init__(self, cfg: MixSTEConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias, cfg.qk_scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixSTE2(nn.Module):
    """Seq2seq lifter: (B, T, 17, 2) normalised screen coordinates → (B, T, 17, 3) root-relative camera metres.

    ``T`` must equal ``config.num_frame``: the temporal position table has exactly that length.
    """

    def __init__(self, config: MixSTEConfig = MixSTEConfig()) -> None:
        super().__init__()
        self.config = config
        c, j, t = config.embed_dim, config.num_joints, config.num_frame
        # Registration order reproduces the official state-dict order.
        self.Spatial_patch_to_embedding = nn.Linear(config.in_chans, c)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, j, c))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, t, c))
        self.STEblocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.TTEblocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        # One LayerNorm shared by all spatial blocks and one by all temporal blocks (not per block).
        self.Spatial_norm = nn.LayerNorm(c, eps=1e-6)
        self.Temporal_norm = nn.LayerNorm(c, eps=1e-6)
        # The head's LayerNorm uses PyTorch's default eps 1e-5, unlike every other norm in the model.
        self.head = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = x.shape
        if t != self.config.num_frame:
            raise ValueError(f"MixSTE2 needs windows of exactly {self.config.num_frame} frames, got {t}")
        c = self.config.embed_dim
        z = self.Spatial_patch_to_embedding(x.reshape(b * t, j, -1)) + self.Spatial_pos_embed
        for i, (spatial, temporal) in enumerate(zip(self.STEblocks, self.TTEblocks)):
            s = self.Spatial_norm(spatial(z.reshape(b * t, j, c)))  # sequences over joints of one frame
            u = s.reshape(b, t, j, c).transpose(1, 2).reshape(b * j, t, c)  # sequences over frames of one joint
            if i == 0:
                u = u + self.Temporal_pos_embed
            u = self.Temporal_norm(temporal(u))
            z = u.reshape(b, j, t, c).transpose(1, 2)
        return self.head(z).reshape(b, t, j, 3)


def mixste_config_from_state_dict(sd: dict[str, torch.Tensor], num_heads: int = RELEASED_NUM_HEADS) -> MixSTEConfig:
    """The configuration a bare (prefix-free) MixSTE2 state dict was built with, read from tensor shapes.

    The head count cannot be read from weights; it defaults to the released value (8).
    """
    try:
        _, joints, width = sd["Spatial_pos_embed"].shape
        frames = sd["Temporal_pos_embed"].shape[1]
        in_chans = sd["Spatial_patch_to_embedding.weight"].shape[1]
        hidden = sd["STEblocks.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError, IndexError) as exc:
        raise MocapError(
            "The weights are not a MixSTE model state dict; check that the file is a MixSTE checkpoint."
        ) from exc
    depth = len({m.group(1) for k in sd if (m := re.match(r"STEblocks\.(\d+)\.", k))})
    return MixSTEConfig(
        num_frame=int(frames),
        num_joints=int(joints),
        in_chans=int(in_chans),
        embed_dim=int(width),
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=hidden / width,
        qkv_bias="STEblocks.0.attn.qkv.bias" in sd,
    )
