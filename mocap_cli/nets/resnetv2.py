"""BiT-style ResNetV2 trunk (non-pre-activation, "R50 hybrid") as used by the R50+ViT-B/16 hybrid.

Only the pieces MAED and INT need: weight-standardised convolutions with TF-"SAME" padding, GroupNorm(32) and
the first N stages of bottlenecks. Module and parameter names follow the authors' timm-derived code
(``stem.conv``, ``stem.norm``, ``stages.{s}.blocks.{b}.{conv1..3,norm1..3,downsample.conv,downsample.norm}``)
so released state dicts load key for key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) along one axis; the odd extra pixel goes after (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


def make_div(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class StdConv2dSame(nn.Conv2d):
    """Bias-free conv whose weight is standardised per output channel on every call.

    ``W_hat = (W - mean) / (std + eps)`` with the population std and eps (1e-5) added outside the square root,
    as in the authors' code (later timm versions changed both), then TF-SAME padding.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, eps: float = 1e-5) -> None:
        super().__init__(in_chs, out_chs, kernel_size, stride=stride, padding=0, bias=False)
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        std, mean = torch.std_mean(self.weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (self.weight - mean) / (std + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.standardized_weight(), None, self.stride)


class GroupNormAct(nn.GroupNorm):
    """GroupNorm (32 groups, eps 1e-5) optionally followed by ReLU."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5, act: bool = True) -> None:
        super().__init__(groups, channels, eps=eps, affine=True)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        return F.relu(x) if self.act else x


class MaxPool2dSame(nn.Module):
    """3x3/2 max pool with SAME padding filled with -inf."""

    def __init__(self, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel, self.stride, value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class Stem(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, groups: int) -> None:
        super().__init__()
        self.conv = StdConv2dSame(in_chs, out_chs, 7, stride=2)
        self.norm = GroupNormAct(out_chs, groups)
        self.pool = MaxPool2dSame(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.norm(self.conv(x)))


class DownsampleConv(nn.Module):
    """Projection shortcut: 1x1 strided StdConv + GroupNorm without activation."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = StdConv2dSame(in_chs, out_chs, 1, stride=stride)
        self.norm = GroupNormAct(out_chs, groups, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """Non-pre-activation bottleneck, stride on the 3x3; ReLU after the residual add."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, project: bool, groups: int) -> None:
        super().__init__()
        mid = make_div(out_chs * 0.25)
        self.downsample = DownsampleConv(in_chs, out_chs, stride, groups) if project else None
        self.conv1 = StdConv2dSame(in_chs, mid, 1)
        self.norm1 = GroupNormAct(mid, groups)
        self.conv2 = StdConv2dSame(mid, mid, 3, stride=stride)
        self.norm2 = GroupNormAct(mid, groups)
        self.conv3 = StdConv2dSame(mid, out_chs, 1)
        self.norm3 = GroupNormAct(out_chs, groups, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm1(self.conv1(x))
        x = self.norm2(self.conv2(x))
        x = self.norm3(self.conv3(x))
        return F.relu(x + shortcut)


class ResNetStage(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, depth: int, stride: int, groups: int) -> None:
        super().__init__()
        # Every stage's first block has a projection shortcut (stage 0 included), as in the authors' code.
        self.blocks = nn.Sequential(
            *[
                Bottleneck(in_chs if i == 0 else out_chs, out_chs, stride if i == 0 else 1, i == 0, groups)
                for i in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetV2(nn.Module):
    """Stem + ``len(layers)`` bottleneck stages; no final norm, pooling or head (feature map out).

    ``channels`` may list more entries than ``layers`` (the authors pass 4 for 3 stages); extras are unused.
    Output stride is 4 · 2^(stages-1) (16 for the three-stage hybrid trunk).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 9),
        channels: Sequence[int] = (256, 512, 1024),
        stem_chs: int = 64,
        in_chans: int = 3,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.stem = Stem(in_chans, stem_chs, groups)
        stages = []
        prev = stem_chs
        for index, (depth, out_chs) in enumerate(zip(layers, channels)):
            stages.append(ResNetStage(prev, out_chs, depth, 1 if index == 0 else 2, groups))
            prev = out_chs
        self.stages = nn.Sequential(*stages)
        self.num_features = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))
