"""UNSPAT: uncertainty-guided spatio-temporal transformer on HybrIK ResNet-34 features (spec: specs/unspat.md).

Pipeline per window of T frames: frozen ResNet-34 trunk -> (B, T, 512, h, w) -> SAM (one global scale +
translation warp per frame onto the centre frame) -> [training] synthetic artifacts -> uncertainty network ->
Space2Batch (cells into the batch) -> temporal transformer whose attention logits get ``-gamma_l * u_j``
-> Batch2Space -> centre frame -> HybrIK head + IK (:mod:`mocap_cli.nets.hybrik`).

Zero initialisation (SAM's last layer, every attention output projection and MLP ``fc2``) makes a model with
HybrIK weights only reproduce per-frame HybrIK on the centre frame exactly. To keep that exact, the
positional embedding is added to the residual stream for the blocks and removed again at the transformer
output (spec §2.6 keeps it in the output; that would shift the features the pretrained head sees).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.errors import MocapError
from mocap_cli.nets.hybrik import (
    HybrIKHead,
    HybrIKPrediction,
    SMPLBody,
    Variant,
    detect_variant,
    load_official_into,
    predict_from_head,
    read_hybrik_state_dict,
)
from mocap_cli.nets.resnet import resnet34_trunk

FORMAT_VERSION = 1


@dataclass
class UnspatConfig:
    variant: Variant = "paper24"
    seq_len: int = 16
    center_index: int = 8
    feat_dim: int = 512
    feat_hw: int = 8
    img_size: int = 256
    deconv: tuple[int, int, int] = (256, 256, 256)
    sam_hidden: int = 128
    unc_channels: int = 128
    depth: int = 3
    heads: int = 8
    mlp_hidden: int = 512
    dropout: float = 0.1
    gamma_init: float = 1.0
    attention_mode: Literal["space2batch", "full"] = "space2batch"
    artifact_p_frame: float = 0.5
    artifact_max_side: int = 4

    def to_dict(self) -> dict:
        d = asdict(self)
        d["deconv"] = list(self.deconv)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UnspatConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "deconv" in known:
            known["deconv"] = tuple(known["deconv"])
        return cls(**known)


# --------------------------------------------------------------------------------------------- layout


def space_to_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C, h, w) -> (B*h*w, T, C); token (b, t, y, x) lands at row b*h*w + y*w + x, position t."""
    b, t, c, h, w = x.shape
    return x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)


def batch_to_space(z: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """Exact inverse of :func:`space_to_batch`."""
    t, c = z.shape[1:]
    return z.reshape(b, h, w, t, c).permute(0, 3, 4, 1, 2)


def uncertainty_to_batch(u: torch.Tensor) -> torch.Tensor:
    """(B, T, h, w) -> (B*h*w, T), same row order as :func:`space_to_batch`."""
    b, t, h, w = u.shape
    return u.permute(0, 2, 3, 1).reshape(b * h * w, t)


# --------------------------------------------------------------------------------------------- SAM


class SpatialAlignment(nn.Module):
    """All-pairs cosine correlation with the centre frame -> 2 FC -> (log s, tx, ty) -> affine warp."""

    def __init__(self, cells: int, hidden: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cells * cells, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        nn.init.trunc_normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    @staticmethod
    def affine(params: torch.Tensor) -> torch.Tensor:
        """(..., 3) (s, tx, ty) -> (..., 2, 3) ``[[s, 0, tx], [0, s, ty]]``."""
        s, tx, ty = params.unbind(-1)
        z = torch.zeros_like(s)
        return torch.stack([s, z, tx, z, s, ty], dim=-1).reshape(*params.shape[:-1], 2, 3)

    @staticmethod
    def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """x (N, C, h, w), theta (N, 2, 3) mapping centre-frame grid coords to sampling coords in x."""
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(self, x: torch.Tensor, center: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, c, h, w = x.shape
        xn = F.normalize(x.reshape(b, t, c, h * w), dim=2)
        corr = torch.einsum("bcp,btcq->btpq", xn[:, center], xn).reshape(b, t, -1)
        raw = self.fc2(F.relu(self.fc1(corr)))
        params = torch.cat([torch.exp(raw[..., :1]), raw[..., 1:]], dim=-1)
        keep = torch.zeros(t, dtype=torch.bool, device=x.device)
        keep[center] = True
        identity = torch.tensor([1.0, 0.0, 0.0], dtype=x.dtype, device=x.device)
        params = torch.where(keep.view(1, t, 1), identity, params)
        warped = self.warp(x.reshape(b * t, c, h, w), self.affine(params).reshape(b * t, 2, 3)).reshape(b, t, c, h, w)
        # the centre frame is passed through untouched (an identity warp is bit-exact anyway)
        aligned = torch.where(keep.view(1, t, 1, 1, 1), x, warped)
        return aligned, params


# --------------------------------------------------------------------------------------------- artifacts


def inject_artifacts(
    x: torch.Tensor, *, p_frame: float = 0.5, max_side: int = 4, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace one random rectangle of cells per (clip, frame) (prob. ``p_frame``) by the donor clip's cells.

    Donor of clip b = (b + r) mod B, r ~ U{1..B-1} once per batch; same frame and cells. Returns the
    corrupted features and the 0/1 mask (B, T, h, w). No-op for B = 1.
    """
    b, t, c, h, w = x.shape
    mask = torch.zeros(b, t, h, w, dtype=x.dtype, device=x.device)
    if b < 2:
        return x, mask
    cpu = dict(generator=generator, device="cpu")
    r = int(torch.randint(1, b, (1,), **cpu))
    donor = x.roll(-r, dims=0)  # donor[b] = x[(b + r) mod B]
    apply = torch.rand(b, t, **cpu) < p_frame
    hh = torch.randint(1, min(max_side, h) + 1, (b, t), **cpu)
    ww = torch.randint(1, min(max_side, w) + 1, (b, t), **cpu)
    y0 = (torch.rand(b, t, **cpu) * (h - hh + 1)).long()
    x0 = (torch.rand(b, t, **cpu) * (w - ww + 1)).long()
    ys = torch.arange(h).view(1, 1, h, 1)
    xs = torch.arange(w).view(1, 1, 1, w)
    rect = (
        (ys >= y0[..., None, None])
        & (ys < (y0 + hh)[..., None, None])
        & (xs >= x0[..., None, None])
        & (xs < (x0 + ww)[..., None, None])
    )
    rect = (rect & apply[..., None, None]).to(x.device)
    mask = rect.to(x.dtype)
    return torch.where(rect.unsqueeze(2), donor, x), mask


# --------------------------------------------------------------------------------------------- uncertainty


class UncertaintyNet(nn.Module):
    """Per frame: 1x1 (C->128) - ReLU - 3x3 (128) - ReLU - 1x1 (->1): artifact logits per cell."""

    def __init__(self, in_ch: int = 512, ch: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv3 = nn.Conv2d(ch, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        y = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x.reshape(b * t, c, h, w))))))
        return y.reshape(b, t, h, w)


# --------------------------------------------------------------------------------------------- transformer


class UncertaintyAttention(nn.Module):
    """Multi-head self-attention with logits ``qk/sqrt(d) - gamma * u[key]``, gamma = softplus(gamma_raw)."""

    def __init__(self, dim: int, heads: int, dropout: float, gamma_init: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.gamma_raw = nn.Parameter(torch.tensor(math.log(math.expm1(gamma_init))))
        self.attn_drop = nn.Dropout(dropout)
        self.proj_drop = nn.Dropout(dropout)

    @property
    def gamma(self) -> torch.Tensor:
        return F.softplus(self.gamma_raw)

    def probabilities(self, z: torch.Tensor, u: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, c = z.shape
        qkv = self.qkv(z).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        if u is not None:
            logits = logits - self.gamma * u.view(n, 1, 1, t)
        return torch.softmax(logits, dim=-1), v

    def forward(self, z: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        n, t, c = z.shape
        attn, v = self.probabilities(z, u)
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(n, t, c)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int, dropout: float, gamma_init: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = UncertaintyAttention(dim, heads, dropout, gamma_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, mlp_hidden, dropout)

    def forward(self, z: torch.Tensor, u: torch.Tensor | None, pos: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-LN block on the stream ``z + pos``; returns the updated stream minus ``pos``."""
        zp = z if pos is None else z + pos
        z = z + self.attn(self.norm1(zp), u)
        zp = z if pos is None else z + pos
        return z + self.mlp(self.norm2(zp))


class TemporalTransformer(nn.Module):
    def __init__(self, cfg: UnspatConfig) -> None:
        super().__init__()
        d = cfg.feat_dim
        self.mode = cfg.attention_mode
        self.time_embed = nn.Parameter(torch.zeros(cfg.seq_len, d))
        self.space_embed = nn.Parameter(torch.zeros(cfg.feat_hw * cfg.feat_hw, d))
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        nn.init.trunc_normal_(self.space_embed, std=0.02)
        self.blocks = nn.ModuleList(
            [Block(d, cfg.heads, cfg.mlp_hidden, cfg.dropout, cfg.gamma_init) for _ in range(cfg.depth)]
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:  # start as the identity
            for lin in (blk.attn.proj, blk.mlp.fc2):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C, h, w), u (B, T, h, w) or None -> (B, T, C, h, w)."""
        b, t, c, h, w = x.shape
        s = h * w
        pos = self.time_embed[:t].view(1, t, 1, c) + self.space_embed[:s].view(1, 1, s, c)  # (1, T, S, C)
        if self.mode == "space2batch":
            z0 = space_to_batch(x)
            pos_z = pos.permute(0, 2, 1, 3).expand(b, s, t, c).reshape(b * s, t, c)
            uz = uncertainty_to_batch(u) if u is not None else None
        else:  # ablation: full attention over all T*S tokens of a clip
            z0 = x.reshape(b, t, c, s).permute(0, 1, 3, 2).reshape(b, t * s, c)
            pos_z = pos.expand(b, t, s, c).reshape(b, t * s, c)
            uz = u.reshape(b, t * s) if u is not None else None
        # same as adding pos once at the entry and subtracting it at the exit, written as h = z - pos so
        # that zero branches leave the features bit-exact
        z = z0
        for blk in self.blocks:
            z = blk(z, uz, pos_z)
        if self.mode == "space2batch":
            return batch_to_space(z, b, h, w)
        return z.reshape(b, t, s, c).permute(0, 1, 3, 2).reshape(b, t, c, h, w)


# --------------------------------------------------------------------------------------------- model


@dataclass
class UnspatOutput:
    pred: HybrIKPrediction  # centre frame: head outputs, skeleton, SMPL (if a body is attached)
    uncertainty_logits: torch.Tensor  # (B, T, h, w)
    sam_params: torch.Tensor  # (B, T, 3) (s, tx, ty), identity at the centre frame
    artifact_mask: torch.Tensor | None = None  # (B, T, h, w) in training
    center_feature: torch.Tensor | None = None  # (B, C, h, w) m_c

    @property
    def uncertainty(self) -> torch.Tensor:
        return torch.sigmoid(self.uncertainty_logits)


class UNSPAT(nn.Module):
    def __init__(self, cfg: UnspatConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or UnspatConfig()
        self.backbone = resnet34_trunk()
        self.sam = SpatialAlignment(cfg.feat_hw * cfg.feat_hw, cfg.sam_hidden)
        self.unc = UncertaintyNet(cfg.feat_dim, cfg.unc_channels)
        self.transformer = TemporalTransformer(cfg)
        self.head = HybrIKHead(cfg.variant, cfg.deconv, cfg.feat_dim)
        self.body: SMPLBody | None = None
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def attach_body(self, body: SMPLBody) -> None:
        self.body = body

    def train(self, mode: bool = True) -> "UNSPAT":
        super().train(mode)
        self.backbone.eval()  # frozen, BN statistics fixed
        for m in self.head.modules():  # head BN keeps HybrIK's running statistics
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def temporal_modules(self) -> list[nn.Module]:
        return [self.sam, self.unc, self.transformer]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised crops -> (B, T, C, h, w) with the frozen trunk."""
        b, t = images.shape[:2]
        with torch.no_grad():
            f = self.backbone(images.reshape(b * t, *images.shape[2:]))
        return f.reshape(b, t, *f.shape[1:])

    def forward(
        self,
        images: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        artifacts: bool | None = None,
        generator: torch.Generator | None = None,
        with_smpl: bool = True,
        adaptive_ik: bool | None = None,
        **geometry: torch.Tensor,
    ) -> UnspatOutput:
        """Window of crops (B, T, 3, H, W) or features (B, T, C, h, w); ``geometry`` as for HybrIK, for the centre
        frame."""
        cfg = self.cfg
        x = features if features is not None else self.features(images)
        if x.shape[1] != cfg.seq_len:
            raise ValueError(f"UNSPAT expects windows of {cfg.seq_len} frames, got {x.shape[1]}")
        x_al, sam_params = self.sam(x, cfg.center_index)
        mask = None
        if artifacts if artifacts is not None else self.training:
            x_al, mask = inject_artifacts(
                x_al, p_frame=cfg.artifact_p_frame, max_side=cfg.artifact_max_side, generator=generator
            )
        logits = self.unc(x_al)
        z = self.transformer(x_al, torch.sigmoid(logits).detach())
        m_c = z[:, cfg.center_index].contiguous()
        out = self.head(m_c)
        adaptive = (not self.training) if adaptive_ik is None else adaptive_ik
        pred = predict_from_head(
            out,
            cfg.variant,
            self.body if with_smpl else None,
            adaptive_ik=adaptive,
            with_vertices=not self.training,
            **geometry,
        )
        return UnspatOutput(
            pred=pred, uncertainty_logits=logits, sam_params=sam_params, artifact_mask=mask, center_feature=m_c
        )


# --------------------------------------------------------------------------------------------- checkpoints


@dataclass
class UnspatLoadInfo:
    variant: Variant
    temporal_trained: bool
    sources: list[str] = field(default_factory=list)
    kept_initialisation: list[str] = field(default_factory=list)  # e.g. head.dec_sigma.* absent from HybrIK files
    note: str = ""


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_unspat(model: UNSPAT, path: str | Path, *, temporal_trained: bool, extra: dict | None = None) -> Path:
    """``<name>.safetensors`` (float32 state dict, no SMPL buffers) + ``<name>.json`` (config and provenance)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(sd, str(path))
    meta = {
        "format": "unspat",
        "format_version": FORMAT_VERSION,
        "config": model.cfg.to_dict(),
        "temporal_trained": temporal_trained,
        "pixel_mean": [0.406, 0.457, 0.480],
        "pixel_std": [0.225, 0.224, 0.229],
    }
    meta.update(extra or {})
    _sidecar(path).write_text(json.dumps(meta, indent=1))
    return path


def _read_ours(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    side = _sidecar(path)
    if not path.is_file():
        raise MocapError(f"Weights file {path} does not exist; check the path.")
    if not side.is_file():
        raise MocapError(f"{path} has no {side.name} next to it; keep the .json file that was saved with the weights.")
    try:
        meta = json.loads(side.read_text())
        sd = load_file(str(path))
    except (OSError, ValueError) as exc:
        raise MocapError(
            f"{path} is not a readable UNSPAT checkpoint ({exc.__class__.__name__}); re-create it."
        ) from exc
    if meta.get("format") != "unspat" or int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise MocapError(f"{side} is not a UNSPAT checkpoint description this version understands; update mocap.")
    return meta, sd


def load_unspat(
    path_or_paths: str | Path | Sequence[str | Path], *, body: SMPLBody | None = None
) -> tuple[UNSPAT, UnspatLoadInfo]:
    """Build UNSPAT from HybrIK's released ResNet-34 file(s) and/or our full checkpoint (``.safetensors`` + ``.json``).

    HybrIK files (paper ``pretrained_res34.pth`` or the camera models) fill backbone and head; the class
    follows the file's keys. Our checkpoint sets everything and is applied after any HybrIK file.
    ``info.temporal_trained`` is False when only HybrIK weights were given (SAM, uncertainty network and
    transformer are then at their identity initialisation: the model equals per-frame HybrIK).
    """
    paths = [Path(p) for p in ([path_or_paths] if isinstance(path_or_paths, (str, Path)) else path_or_paths)]
    if not paths:
        raise MocapError("No UNSPAT weights were given; pass a HybrIK ResNet-34 file or a UNSPAT checkpoint.")
    ours = [p for p in paths if p.suffix == ".safetensors"]
    official = [p for p in paths if p.suffix != ".safetensors"]
    if len(ours) > 1 or len(official) > 1:
        raise MocapError("Give at most one HybrIK file and one UNSPAT checkpoint.")
    meta, own_sd = _read_ours(ours[0]) if ours else (None, None)
    official_sd = read_hybrik_state_dict(official[0]) if official else None

    if meta is not None:
        cfg = UnspatConfig.from_dict(meta["config"])
    else:
        assert official_sd is not None
        variant = detect_variant(official_sd)
        widths = tuple(int(official_sd[f"deconv_layers.{i}.weight"].shape[1]) for i in (0, 3, 6))
        cfg = UnspatConfig(variant=variant, deconv=widths)  # type: ignore[arg-type]
    model = UNSPAT(cfg)
    info = UnspatLoadInfo(variant=cfg.variant, temporal_trained=False)
    if official_sd is not None:
        if detect_variant(official_sd) != cfg.variant:
            raise MocapError(
                f"{official[0]} is a HybrIK {detect_variant(official_sd)} file but the UNSPAT checkpoint expects "
                f"{cfg.variant}."
            )
        info.kept_initialisation = load_official_into(model, official_sd)
        info.sources.append(str(official[0]))
    if own_sd is not None:
        assert meta is not None
        try:
            model.load_state_dict(own_sd, strict=True)
        except RuntimeError as exc:
            raise MocapError(
                f"{ours[0]} does not match the UNSPAT layout in its .json ({str(exc).splitlines()[0]}); re-create it."
            ) from exc
        info.kept_initialisation = []
        info.temporal_trained = bool(meta.get("temporal_trained", False))
        info.sources.append(str(ours[0]))
    info.note = "temporal modules trained" if info.temporal_trained else "temporal modules untrained (per-frame HybrIK)"
    if body is not None:
        model.attach_body(body)
    return model.eval(), info


def sliding_window_indices(num_frames: int, seq_len: int = 16, center: int = 8, step: int = 1) -> torch.Tensor:
    """(N, T) source-frame indices: window n holds frame n at ``center``, neighbours ``step`` apart, edges clamped."""
    offsets = (torch.arange(seq_len) - center) * step
    return (torch.arange(num_frames).view(-1, 1) + offsets.view(1, -1)).clamp(0, num_frames - 1)
