"""MAED (Wan et al., ICCV 2021): STE encoder (R50+ViT hybrid with spatial/temporal attention) + KTD decoder.

Mirrors ``MAED(encoder='ste', st_mode='parallel', decoder='ktd')`` of github.com/ziniuwan/maed @ d16043d with
the authors' parameter names (``encoder.*``, ``decoder.*``), so the released checkpoint loads key for key.
Input (B, T, 3, S, S) ImageNet-normalised crops (T <= 16); output per frame, batch-major (row = b * T + t).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mocap_cli.errors import MocapError
from mocap_cli.nets.checkpoints import read_state_dict
from mocap_cli.nets.resnetv2 import ResNetV2
from mocap_cli.nets.smpl_params import MeshNetOutput, rot6d_to_rotmat
from mocap_cli.nets.vit import Block, HybridEmbed, attend, merge_heads, split_heads
from mocap_cli.weights.registry import WeightSpec, family_spec

SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def smpl_ancestors(joint: int) -> list[int]:
    """Ancestors of an SMPL joint, root first, parent last."""
    chain: list[int] = []
    parent = SMPL_PARENTS[joint]
    while parent >= 0:
        chain.append(parent)
        parent = SMPL_PARENTS[parent]
    return chain[::-1]


@dataclass(frozen=True)
class MAEDConfig:
    """Defaults are the released model (configs/config_stage2.yaml).

    ``img_size`` is nominal: the position embedding fixes the token grid (img_size // 16)².
    """

    img_size: int = 224
    embed_dim: int = 768
    num_blocks: int = 6
    num_heads: int = 12
    mlp_ratio: float = 4.0
    representation_size: int = 768
    hidden_dim: int = 1024
    layers: tuple[int, ...] = (3, 4, 9)
    channels: tuple[int, ...] = (256, 512, 1024)
    stem_chs: int = 64
    temp_len: int = 16
    layernorm_eps: float = 1e-6
    groupnorm_groups: int = 32

    @property
    def num_tokens(self) -> int:
        return (self.img_size // 16) ** 2 + 1


class STEAttention(nn.Module):
    """'parallel' spatio-temporal attention: one qkv, a spatial and a temporal branch, a per-frame channel gate.

    The gate ``ts_attn`` maps the token-mean of [Y_s | Y_t] (2C) to 2C logits read as C interleaved
    (spatial, temporal) pairs, softmaxed per pair. One output projection serves both branches.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.ts_attn = nn.Linear(dim * 2, dim * 2)

    def forward(self, x: torch.Tensor, seqlen: int) -> torch.Tensor:
        """x (BT, N, C), frames batch-major with ``seqlen`` frames per clip."""
        bt, n, c = x.shape
        t = seqlen
        b = bt // t
        q, k, v = split_heads(self.qkv(x), self.num_heads)  # (BT, h, N, d)
        spatial = merge_heads(attend(q, k, v))  # (BT, N, C)

        h, d = q.shape[1], q.shape[-1]

        def to_time(z: torch.Tensor) -> torch.Tensor:  # (BT,h,N,d) -> (B,h,N,T,d) -> 4-D (B, h*N, T, d)
            return z.reshape(b, t, h, n, d).permute(0, 2, 3, 1, 4).reshape(b, h * n, t, d)

        temporal = attend(to_time(q), to_time(k), to_time(v)).reshape(b, h, n, t, d)
        temporal = temporal.permute(0, 3, 2, 1, 4).reshape(bt, n, c)  # (B,T,N,h,d) -> (BT,N,C)

        gate = self.ts_attn(torch.cat([spatial, temporal], dim=-1).mean(dim=1, keepdim=True))  # (BT,1,2C)
        gate = gate.reshape(bt, 1, c, 2).softmax(dim=-1)
        mixed = gate[..., 0] * spatial + gate[..., 1] * temporal
        return self.proj(mixed)


class PreLogits(nn.Module):
    def __init__(self, dim: int, representation_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, representation_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x))


class MAEDEncoder(nn.Module):
    def __init__(self, cfg: MAEDConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        backbone = ResNetV2(cfg.layers, cfg.channels, cfg.stem_chs, groups=cfg.groupnorm_groups)
        self.patch_embed = HybridEmbed(backbone, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, d))
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.temp_len, 1, d))
        self.blocks = nn.ModuleList(
            [
                Block(d, cfg.num_heads, cfg.mlp_ratio, eps=cfg.layernorm_eps, attn=STEAttention(d, cfg.num_heads))
                for _ in range(cfg.num_blocks)
            ]
        )
        self.norm = nn.LayerNorm(d, eps=cfg.layernorm_eps)
        self.pre_logits = PreLogits(d, cfg.representation_size)

    def forward(self, images: torch.Tensor, seqlen: int, trace: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(BT, 3, S, S) -> per-frame feature f (BT, representation_size)."""
        tokens, features = self.patch_embed(images)
        bt = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(bt, -1, -1), tokens], dim=1) + self.pos_embed
        x = (x.reshape(bt // seqlen, seqlen, *x.shape[1:]) + self.temp_embed[:, :seqlen]).reshape(x.shape)
        if trace is not None:
            trace["cnn_features"], trace["patch_tokens"] = features, tokens
        for i, block in enumerate(self.blocks):
            x = block(x, seqlen=seqlen)
            if trace is not None:
                trace[f"block{i}_out"] = x
        return self.pre_logits(self.norm(x)[:, 0])


class KTD(nn.Module):
    """Kinematic-tree decoder: each joint's 6D from the hidden vector and the 6D of all its ancestors."""

    def __init__(self, feat_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feat_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.ancestors = [smpl_ancestors(j) for j in range(len(SMPL_PARENTS))]
        self.joint_regs = nn.ModuleList([nn.Linear(hidden_dim + 6 * len(a), 6) for a in self.ancestors])
        self.decshape = nn.Linear(hidden_dim, 10)
        self.deccam = nn.Linear(hidden_dim, 3)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """f (N, feat) -> pose_6d (N, 24, 6), betas (N, 10), cam (N, 3), hidden g (N, hidden)."""
        g = self.fc2(self.fc1(f))  # no activation between (dropout only in training)
        pose: list[torch.Tensor] = []
        for reg, ancestors in zip(self.joint_regs, self.ancestors):
            pose.append(reg(torch.cat([g, *[pose[a] for a in ancestors]], dim=-1)))
        return torch.stack(pose, dim=1), self.decshape(g), self.deccam(g), g


class MAED(nn.Module):
    def __init__(self, cfg: MAEDConfig = MAEDConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = MAEDEncoder(cfg)
        self.decoder = KTD(cfg.representation_size, cfg.hidden_dim)

    def forward(self, images: torch.Tensor, return_intermediates: bool = False) -> MeshNetOutput:
        """images (B, T, 3, S, S) with T <= 16 -> per-frame outputs (B*T rows)."""
        b, t = images.shape[:2]
        if t > self.cfg.temp_len:
            raise ValueError(f"MAED clips hold at most {self.cfg.temp_len} frames, got {t}")
        trace: dict[str, torch.Tensor] | None = {} if return_intermediates else None
        f = self.encoder(images.reshape(b * t, *images.shape[2:]), t, trace)
        pose_6d, betas, cam, g = self.decoder(f)
        if trace is not None:
            trace["ktd_hidden"] = g
        return MeshNetOutput(rot6d_to_rotmat(pose_6d), betas, cam, pose_6d, f, trace or {})


# ------------------------------------------------------------------------------------------------ loading


def maed_config_from_state_dict(sd: dict[str, torch.Tensor], num_heads: int | None = None) -> MAEDConfig:
    """Infer every size from tensor shapes. Head count is not visible in shapes: default width/64 (ViT-B: 12)."""
    embed_dim = sd["encoder.cls_token"].shape[-1]
    grid = round((sd["encoder.pos_embed"].shape[1] - 1) ** 0.5)
    stage_blocks: dict[int, set[int]] = {}
    for key in sd:
        m = re.match(r"encoder\.patch_embed\.backbone\.stages\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            stage_blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    stages = sorted(stage_blocks)
    prefix = "encoder.patch_embed.backbone.stages"
    return MAEDConfig(
        img_size=grid * 16,
        embed_dim=embed_dim,
        num_blocks=len({int(m[1]) for k in sd if (m := re.match(r"encoder\.blocks\.(\d+)\.", k))}),
        num_heads=num_heads if num_heads is not None else max(1, embed_dim // 64),
        mlp_ratio=sd["encoder.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        representation_size=sd["encoder.pre_logits.fc.weight"].shape[0],
        hidden_dim=sd["decoder.fc1.weight"].shape[0],
        layers=tuple(len(stage_blocks[s]) for s in stages),
        channels=tuple(sd[f"{prefix}.{s}.blocks.0.conv3.weight"].shape[0] for s in stages),
        stem_chs=sd["encoder.patch_embed.backbone.stem.conv.weight"].shape[0],
        temp_len=sd["encoder.temp_embed"].shape[1],
    )


def build_maed(sd: dict[str, torch.Tensor], where: Path, num_heads: int | None = None) -> MAED:
    """Model with sizes inferred from ``sd`` and exactly these weights; a mismatch is a MocapError."""
    try:
        cfg = maed_config_from_state_dict(sd, num_heads)
        model = MAED(cfg)
        model.load_state_dict(sd, strict=True)
    except (KeyError, RuntimeError, IndexError, ValueError) as exc:
        raise MocapError(
            f"{where} is not a MAED checkpoint in the layout the authors released ({exc.__class__.__name__}); "
            "check that you passed the MAED weights file."
        ) from exc
    return model.eval()


def load_maed(path: str | Path, num_heads: int | None = None, *, spec: WeightSpec | None = None) -> MAED:
    """Load the released MAED checkpoint (``{'epoch','state_dict','performance','optimizer'}``) in eval mode."""
    path = Path(path)
    sd = read_state_dict(path, spec or family_spec("maed"), "MAED")  # SMPL buffers dropped per weights/maed.toml
    return build_maed(sd, path, num_heads)
