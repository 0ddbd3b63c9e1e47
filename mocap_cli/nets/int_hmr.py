"""INT (Yang et al., ICLR 2023): independent joint/shape/camera tokens on an R50+ViT hybrid + per-joint
temporal transformer.

Mirrors ``TokenPoseRot6d`` of github.com/yangsenius/INT_HMR_Model @ 8f7ee91 (built by ``Token3d``) with the
authors' parameter names, so both released checkpoints (temporal embedding of 16 or 64 rows) load key for key.
Input (B, T, 3, S, S) ImageNet-normalised crops; output per frame, batch-major (row = b * T + t).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.errors import MocapError
from mocap_cli.nets.checkpoints import read_state_dict
from mocap_cli.nets.resnetv2 import ResNetV2
from mocap_cli.nets.smpl_params import MeshNetOutput, rot6d_to_rotmat
from mocap_cli.nets.vit import Block, HybridEmbed
from mocap_cli.weights.registry import WeightSpec, family_spec

NUM_JOINTS = 24


@dataclass(frozen=True)
class INTConfig:
    """Defaults are the released Model-1 (Model-2 differs only by ``seq_length=64``).

    ``img_size`` is nominal: the position embedding fixes the token grid (img_size // 16)², and any input whose
    trunk output has that grid works (e.g. 56 px → 4×4 like 64 px).
    """

    img_size: int = 224
    embed_dim: int = 768
    depth: int = 6
    num_heads: int = 12
    mlp_ratio: float = 4.0
    layers: tuple[int, ...] = (3, 4, 9)
    channels: tuple[int, ...] = (256, 512, 1024)
    stem_chs: int = 64
    seq_length: int = 16  # rows of the stored temporal embedding
    temporal_layers: int = 3
    temporal_num_heads: int = 12
    enable_temp_modeling: bool = True
    enable_temp_embedding: bool = True
    layernorm_eps: float = 1e-6
    groupnorm_groups: int = 32

    @property
    def num_patches(self) -> int:
        return (self.img_size // 16) ** 2


def resample_temporal_embedding(embedding: torch.Tensor, length: int) -> torch.Tensor:
    """(1, L, D) -> (1, length, D) by 1-D linear interpolation, align_corners=False (identity when L == length).

    Always resampled from the stored embedding. (The authors' forward overwrites its parameter with the
    resampled copy; their evaluation always uses one clip length, for which both rules agree.)
    """
    if embedding.shape[1] == length:
        return embedding
    return F.interpolate(embedding.permute(0, 2, 1), size=length, mode="linear", align_corners=False).permute(0, 2, 1)


class INT(nn.Module):
    def __init__(self, cfg: INTConfig = INTConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        backbone = ResNetV2(cfg.layers, cfg.channels, cfg.stem_chs, groups=cfg.groupnorm_groups)
        self.patch_embed = HybridEmbed(backbone, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, d))
        self.joint3d_tokens = nn.Parameter(torch.zeros(1, NUM_JOINTS, d))
        self.shape_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cam_token = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList(
            [Block(d, cfg.num_heads, cfg.mlp_ratio, eps=cfg.layernorm_eps) for _ in range(cfg.depth)]
        )
        self.norm = nn.LayerNorm(d, eps=cfg.layernorm_eps)
        self.temporal_transformer: nn.ModuleList | None = None
        self.temporal_pos_embedding: nn.Parameter | None = None
        if cfg.enable_temp_modeling:
            self.temporal_transformer = nn.ModuleList(
                [
                    Block(d, cfg.temporal_num_heads, cfg.mlp_ratio, eps=cfg.layernorm_eps)
                    for _ in range(cfg.temporal_layers)
                ]
            )
            if cfg.enable_temp_embedding:
                self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, cfg.seq_length, d))
        self.joint3d_head = nn.Linear(d, 6)
        self.shape_head = nn.Linear(d, 10)
        self.cam_head = nn.Linear(d, 3)

    def forward(self, images: torch.Tensor, return_intermediates: bool = False) -> MeshNetOutput:
        """images (B, T, 3, S, S) -> per-frame outputs (B*T rows)."""
        b, t = images.shape[:2]
        n = b * t
        tokens, features = self.patch_embed(images.reshape(n, *images.shape[2:]))
        x = torch.cat([self.cls_token.expand(n, -1, -1), tokens], dim=1) + self.pos_embed
        # Independent tokens carry no position embedding; read-out indices 0..23 / 24 / 25.
        x = torch.cat(
            [
                self.joint3d_tokens.expand(n, -1, -1),
                self.shape_token.expand(n, -1, -1),
                self.cam_token.expand(n, -1, -1),
                x,
            ],
            dim=1,
        )
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        joints, shape_token, cam_token = x[:, :NUM_JOINTS], x[:, NUM_JOINTS], x[:, NUM_JOINTS + 1]
        trace: dict[str, torch.Tensor] = {}
        if return_intermediates:
            trace.update(backbone_features=features, patch_tokens=tokens, encoder_output=x)
            trace["joint_tokens_pre_temporal"] = joints
        if self.temporal_transformer is not None:
            d = joints.shape[-1]
            seq = joints.reshape(b, t, NUM_JOINTS, d).permute(0, 2, 1, 3).reshape(b * NUM_JOINTS, t, d)
            if self.temporal_pos_embedding is not None:
                embedding = resample_temporal_embedding(self.temporal_pos_embedding, t)
                seq = seq + embedding
                if return_intermediates:
                    trace["temporal_pos_embedding_used"] = embedding
            for block in self.temporal_transformer:
                seq = block(seq)
            joints = seq.reshape(b, NUM_JOINTS, t, d).permute(0, 2, 1, 3).reshape(n, NUM_JOINTS, d)
        if return_intermediates:
            trace["joint_tokens_post_temporal"] = joints
        pose_6d = self.joint3d_head(joints)
        return MeshNetOutput(
            rot6d_to_rotmat(pose_6d), self.shape_head(shape_token), self.cam_head(cam_token), pose_6d, None, trace
        )


# ------------------------------------------------------------------------------------------------ loading


def int_config_from_state_dict(
    sd: dict[str, torch.Tensor], num_heads: int | None = None, temporal_num_heads: int | None = None
) -> INTConfig:
    """Infer every size from tensor shapes (temporal embedding length included).

    Head counts are not visible in shapes: default width/64 (12 for the release) unless given.
    """
    d = sd["cls_token"].shape[-1]
    stage_blocks: dict[int, set[int]] = {}
    for key in sd:
        m = re.match(r"patch_embed\.backbone\.stages\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            stage_blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    stages = sorted(stage_blocks)
    temporal = {int(m[1]) for k in sd if (m := re.match(r"temporal_transformer\.(\d+)\.", k))}
    default_heads = max(1, d // 64)
    return INTConfig(
        img_size=round((sd["pos_embed"].shape[1] - 1) ** 0.5) * 16,
        embed_dim=d,
        depth=len({int(m[1]) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}),
        num_heads=num_heads if num_heads is not None else default_heads,
        mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / d,
        layers=tuple(len(stage_blocks[s]) for s in stages),
        channels=tuple(sd[f"patch_embed.backbone.stages.{s}.blocks.0.conv3.weight"].shape[0] for s in stages),
        stem_chs=sd["patch_embed.backbone.stem.conv.weight"].shape[0],
        seq_length=sd["temporal_pos_embedding"].shape[1] if "temporal_pos_embedding" in sd else 16,
        temporal_layers=len(temporal) if temporal else 3,
        temporal_num_heads=temporal_num_heads if temporal_num_heads is not None else default_heads,
        enable_temp_modeling=bool(temporal),
        enable_temp_embedding="temporal_pos_embedding" in sd,
    )


def build_int(
    sd: dict[str, torch.Tensor], where: Path, num_heads: int | None = None, temporal_num_heads: int | None = None
) -> INT:
    """Model with sizes inferred from ``sd`` and exactly these weights; a mismatch is a MocapError."""
    try:
        cfg = int_config_from_state_dict(sd, num_heads, temporal_num_heads)
        model = INT(cfg)
        model.load_state_dict(sd, strict=True)
    except (KeyError, RuntimeError, IndexError, ValueError) as exc:
        raise MocapError(
            f"{where} is not an INT checkpoint in the layout the authors released ({exc.__class__.__name__}); "
            "check that you passed one of the two INT weights files."
        ) from exc
    return model.eval()


def load_int(
    path: str | Path,
    num_heads: int | None = None,
    temporal_num_heads: int | None = None,
    *,
    spec: WeightSpec | None = None,
) -> INT:
    """Load a released INT checkpoint (Model-1 or Model-2) in eval mode; the temporal length comes from the file."""
    path = Path(path)
    sd = read_state_dict(path, spec or family_spec("int"), "INT")  # SMPL buffers dropped per weights/int.toml
    return build_int(sd, path, num_heads, temporal_num_heads)
