"""Strided Transformer (Li et al., IEEE TMM 2022) 2D→3D lifter and its refine MLP, as the authors' code runs them.

Module and parameter names follow ``Vegetebird/StridedTransformer-Pose3D`` so the released flat state dicts
load with ``strict=True``. Inference only: the dropouts of the official model own no weights and are omitted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.errors import MocapError

NUM_HEADS = 8  # fixed in the official code
# The only stride tables the official code knows (opt.py), plus the paper's 81/243-frame ones.
KNOWN_STRIDES: dict[int, tuple[int, ...]] = {27: (3, 3, 3), 351: (3, 9, 13), 81: (3, 3, 9), 243: (3, 9, 9)}


@dataclass(frozen=True)
class StridedConfig:
    """Constructor attributes of the official ``Model``; defaults = the released 351-frame lifter."""

    layers: int = 3  # N1, VTE depth
    channel: int = 256  # C
    d_hid: int = 512  # FFN width
    frames: int = 351  # T, window length (odd); the prediction is for frame (T-1)//2
    stride_num: tuple[int, ...] = field(default=(3, 9, 13))  # one STE layer per stride
    n_joints: int = 17
    out_joints: int = 17

    @classmethod
    def from_official(cls, attrs: dict) -> "StridedConfig":
        """From the official constructor namespace attributes (as a dict)."""
        return cls(
            layers=int(attrs["layers"]),
            channel=int(attrs["channel"]),
            d_hid=int(attrs["d_hid"]),
            frames=int(attrs["frames"]),
            stride_num=tuple(int(s) for s in attrs["stride_num"]),
            n_joints=int(attrs.get("n_joints", 17)),
            out_joints=int(attrs.get("out_joints", 17)),
        )

    @property
    def pad(self) -> int:
        return (self.frames - 1) // 2


class LayerNorm(nn.Module):
    """The authors' LayerNorm: unbiased std, eps added to the std (not ``nn.LayerNorm``)."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class MultiHeadedAttention(nn.Module):
    """Separate q/k/v/out projections (``linears.0..3``); head n owns channels [n*d_k, (n+1)*d_k)."""

    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.linears = nn.ModuleList(nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (lin(x).reshape(b, n, self.heads, c // self.heads).transpose(1, 2) for lin in self.linears[:3])
        out = F.scaled_dot_product_attention(q, k, v)
        return self.linears[3](out.transpose(1, 2).reshape(b, n, c))


class PositionwiseFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.relu(self.w_1(x)))  # the official attribute is named ``gelu`` but holds a ReLU


class StridedFeedForward(nn.Module):
    """STE feed-forward: 1x1 conv, ReLU, kernel-3 conv with the layer's stride (shortens the sequence)."""

    def __init__(self, dim: int, hidden: int, stride: int) -> None:
        super().__init__()
        self.w_1 = nn.Conv1d(dim, hidden, kernel_size=1)
        self.w_2 = nn.Conv1d(hidden, dim, kernel_size=3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, L', C)
        return self.w_2(F.relu(self.w_1(x.transpose(1, 2)))).transpose(1, 2)


class SublayerNorm(nn.Module):
    """Holds the pre-norm of one residual branch (official ``SublayerConnection``; only ``norm`` has weights)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm(dim)


class EncoderLayer(nn.Module):
    """Pre-norm layer. With ``stride`` set it is an STE layer: the residual keeps frames 0, s, 2s, ..."""

    def __init__(self, dim: int, hidden: int, stride: int | None = None) -> None:
        super().__init__()
        self.self_attn = MultiHeadedAttention(NUM_HEADS, dim)
        self.feed_forward = (
            PositionwiseFeedForward(dim, hidden) if stride is None else StridedFeedForward(dim, hidden, stride)
        )
        self.sublayer = nn.ModuleList(SublayerNorm(dim) for _ in range(2))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.sublayer[0].norm(x))
        residual = x if not self.stride or self.stride == 1 else x[:, :: self.stride]
        return residual + self.feed_forward(self.sublayer[1].norm(x))


class VanillaEncoder(nn.Module):
    def __init__(self, cfg: StridedConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg.channel, cfg.d_hid) for _ in range(cfg.layers))
        self.norm = LayerNorm(cfg.channel)  # saved in the checkpoints but never applied by the official code


class VanillaTransformer(nn.Module):
    """VTE: one positional table added once, then N1 layers over the full window."""

    def __init__(self, cfg: StridedConfig) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.zeros(1, cfg.frames, cfg.channel))
        self.model = VanillaEncoder(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embedding
        for layer in self.model.layers:
            x = layer(x)
        return x


class StridedEncoder(nn.Module):
    def __init__(self, cfg: StridedConfig) -> None:
        super().__init__()
        # Always three full-length tables (layers >= 3 get none; shorter sequences use a prefix).
        self.pos_embedding_1 = nn.Parameter(torch.zeros(1, cfg.frames, cfg.channel))
        self.pos_embedding_2 = nn.Parameter(torch.zeros(1, cfg.frames, cfg.channel))
        self.pos_embedding_3 = nn.Parameter(torch.zeros(1, cfg.frames, cfg.channel))
        self.layers = nn.ModuleList(EncoderLayer(cfg.channel, cfg.d_hid, s) for s in cfg.stride_num)
        self.norm = LayerNorm(cfg.channel)  # unused, as in the official code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tables = (self.pos_embedding_1, self.pos_embedding_2, self.pos_embedding_3)
        for i, layer in enumerate(self.layers):
            if i < len(tables):
                x = x + tables[i][:, : x.shape[1]]
            x = layer(x)
        return x


class StridedTransformerReduce(nn.Module):
    def __init__(self, cfg: StridedConfig) -> None:
        super().__init__()
        self.model = StridedEncoder(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _head(channel: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(channel, momentum=0.1), nn.Conv1d(channel, out, kernel_size=1))


class StridedTransformer(nn.Module):
    """(B, T, 17, 2) normalised keypoints → (centre pose (B, 1, 17, 3), full-sequence poses (B, T, 17, 3))."""

    def __init__(self, config: StridedConfig = StridedConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channel
        self.encoder = nn.Sequential(
            nn.Conv1d(2 * config.n_joints, c, kernel_size=1),
            nn.BatchNorm1d(c, momentum=0.1),
            nn.ReLU(),
            nn.Dropout(0.25),
        )
        self.Transformer = VanillaTransformer(config)
        self.Transformer_reduce = StridedTransformerReduce(config)
        self.fcn = _head(c, 3 * config.out_joints)
        self.fcn_1 = _head(c, 3 * config.out_joints)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, j, _ = x.shape
        if t != self.config.frames:
            raise ValueError(f"Strided Transformer needs windows of exactly {self.config.frames} frames, got {t}")
        x = self.encoder(x.reshape(b, t, 2 * j).transpose(1, 2)).transpose(1, 2)  # channel 2*j + xy
        x = self.Transformer(x)
        full = self._decode(self.fcn_1, x)
        center = self._decode(self.fcn, self.Transformer_reduce(x))
        return center, full

    def _decode(self, head: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        return head(x.transpose(1, 2)).transpose(1, 2).reshape(b, length, self.config.out_joints, 3)


class RefineNet(nn.Module):
    """The authors' refine MLP: blends the lifted x, y with a back-projection of the 2D input, per joint."""

    def __init__(self, n_joints: int = 17) -> None:
        super().__init__()
        self.n_joints = n_joints
        self.post_refine = nn.Sequential(
            nn.Linear(6 * n_joints, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 2 * n_joints), nn.Sigmoid()
        )

    def forward(self, pose: torch.Tensor, backprojected: torch.Tensor) -> torch.Tensor:
        """``pose``, ``backprojected``: (N, 1, J, 3) → refined (N, 1, J, 3); z is kept from ``pose``."""
        n, t, j, _ = pose.shape
        w = self.post_refine(torch.cat([pose, backprojected], dim=-1).reshape(n, -1)).reshape(n, t, j, 2)
        return torch.cat([w * pose[..., :2] + (1 - w) * backprojected[..., :2], pose[..., 2:]], dim=-1)


def _layer_count(sd: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in sd if (m := pattern.match(k))})


def default_strides(frames: int, count: int) -> tuple[int, ...]:
    """Strides for ``count`` STE layers: the authors' table when it applies, else 3s and a final stride to length 1.

    Strides leave no trace in the weights (every strided conv has kernel 3), so they cannot be read from a file.
    """
    known = KNOWN_STRIDES.get(frames)
    if known is not None and len(known) == count:
        return known
    strides, length = [], frames
    for i in range(count):
        s = length if i == count - 1 else min(3, length)
        strides.append(max(s, 1))
        length = math.ceil(length / strides[-1])
    return tuple(strides)


def strided_config_from_state_dict(
    sd: dict[str, torch.Tensor], stride_num: tuple[int, ...] | None = None
) -> StridedConfig:
    """The configuration of a Strided Transformer state dict, read from tensor shapes (strides: see
    ``default_strides``)."""
    try:
        _, frames, channel = sd["Transformer.pos_embedding"].shape
        d_hid = sd["Transformer.model.layers.0.feed_forward.w_1.weight"].shape[0]
        n_joints = sd["encoder.0.weight"].shape[1] // 2
        out_joints = sd["fcn.1.weight"].shape[0] // 3
    except (KeyError, ValueError, IndexError) as exc:
        raise MocapError(
            "The weights are not a Strided Transformer state dict; check that the file is a Strided Transformer "
            "lifter checkpoint."
        ) from exc
    layers = _layer_count(sd, "Transformer.model.layers.")
    n_strided = _layer_count(sd, "Transformer_reduce.model.layers.")
    strides = tuple(stride_num) if stride_num is not None else default_strides(int(frames), n_strided)
    return StridedConfig(
        layers=layers,
        channel=int(channel),
        d_hid=int(d_hid),
        frames=int(frames),
        stride_num=strides,
        n_joints=int(n_joints),
        out_joints=int(out_joints),
    )
