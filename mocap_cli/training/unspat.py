"""Training path for UNSPAT (spec §2.3, §2.8, §3): losses, clip dataset over rendered synthetic clips, loop.

The synthetic clips (``<data_dir>/<clip>/{video.mp4, gt.npz}``) give per-frame 3D joints in camera
coordinates and 2D joints in pixels; their first 24 joints follow SMPL order. They have no SMPL parameters,
so the shape / rotation / twist terms are implemented but only active for samples that carry SMPL ground
truth. Frames are decoded and cropped exactly as inference does (``capture.video.iter_frames``: rotation
metadata, ``$MOCAP_FFMPEG``; ``models.unspat.hybrik_crops``: ``warp_crops`` with uint8 rounding and HybrIK's
normalisation), so the network is trained on the pixels it will see at run time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mocap_cli.capture.video import close_frames, iter_frames
from mocap_cli.errors import MocapError
from mocap_cli.models.mesh.crops import SquareBoxes
from mocap_cli.models.unspat import hybrik_crops
from mocap_cli.nets.hybrik import SMPLBody, detect_variant, load_official_into, read_hybrik_state_dict
from mocap_cli.nets.unspat import UNSPAT, UnspatConfig, UnspatOutput, save_unspat

SQRT2 = math.sqrt(2.0)
DEPTH_UNIT_M = 2.2
# joints whose twist the spec's L_tw supervises: the 17 single-child joints
TWIST_JOINTS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 16, 17, 18, 19, 20, 21)


# --------------------------------------------------------------------------------------------- losses


def laplacian_loss(err: torch.Tensor, sigma: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7: ``sum w [log(sqrt2 sigma) + sqrt2 |e| / sigma] / max(sum w, 1)``; err (B, K, C), sigma (B, K)."""
    w = torch.ones_like(err) if weight is None else weight.expand_as(err).to(err.dtype)
    s = sigma.unsqueeze(-1)
    per = torch.log(SQRT2 * s) + SQRT2 * err.abs() / s
    return (w * per).sum() / w.sum().clamp(min=1.0)


def project(points_m: torch.Tensor, cam_hybrik: torch.Tensor) -> torch.Tensor:
    """Weak perspective into [-1, 1] crop coordinates: ``2 s (P_xy + t)`` (HybrIK's s doubled, A.8)."""
    s = 2.0 * cam_hybrik[:, :1].unsqueeze(1)
    return s * (points_m[..., :2] + cam_hybrik[:, 1:].unsqueeze(1))


def unspat_losses(
    out: UnspatOutput,
    gt3d_m: torch.Tensor,
    gt2d: torch.Tensor,
    *,
    w3d: torch.Tensor | None = None,
    w2d: torch.Tensor | None = None,
    gt_betas: torch.Tensor | None = None,
    gt_rotmats: torch.Tensor | None = None,
    gt_twist: torch.Tensor | None = None,
    has_smpl: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All terms of spec §2.8 on the centre frame (+ ``L_unc`` on all frames); weights 1.

    gt3d_m (B, 24, 3) root-relative metres in camera axes; gt2d (B, 24, 2) in [-1, 1] crop coordinates;
    w3d / w2d per-coordinate masks; SMPL terms use ``has_smpl`` (B,) bool.
    """
    pred = out.pred
    p = pred.skeleton_m[:, :24]
    sigma = pred.head.sigma[:, :24] + 1e-9
    e3 = (p - gt3d_m) / DEPTH_UNIT_M
    e2 = (project(p, pred.head.cam) - gt2d) / 2.0
    losses = {"pose3d": laplacian_loss(e3, sigma, w3d), "pose2d": laplacian_loss(e2, sigma, w2d)}
    zero = p.new_zeros(())
    mask = has_smpl if has_smpl is not None else None
    if gt_betas is not None and mask is not None and mask.any():
        losses["beta"] = ((pred.head.betas - gt_betas) ** 2)[mask].mean()
    if gt_rotmats is not None and mask is not None and mask.any() and "rot_mats" in pred.smpl:
        losses["theta"] = ((pred.smpl["rot_mats"] - gt_rotmats) ** 2)[mask].mean()
    if gt_twist is not None and mask is not None and mask.any():
        rows = [j - 1 for j in TWIST_JOINTS]
        losses["twist"] = (pred.head.phis[:, rows] - gt_twist[:, rows]).norm(dim=-1)[mask].mean()
    if out.artifact_mask is not None:
        losses["unc"] = F.binary_cross_entropy_with_logits(out.uncertainty_logits, out.artifact_mask)
    losses["total"] = sum((v for v in losses.values()), zero)
    return losses


# --------------------------------------------------------------------------------------------- data


DECODE_BATCH = 8  # frames cropped together while a clip is loaded


def crop_box_from_joints(joints2d: np.ndarray, margin: float = 1.2, scale: float = 1.25) -> np.ndarray:
    """Square box (cx, cy, side) around 2D joints: joint extent x margin, then HybrIK's 1.25 (A.3)."""
    lo, hi = joints2d.min(axis=-2), joints2d.max(axis=-2)
    c = (lo + hi) / 2
    side = (hi - lo).max(axis=-1) * margin * scale
    return np.concatenate([c, side[..., None]], axis=-1)


def crop_frame(frame: torch.Tensor | np.ndarray, box: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size) normalised: the inference crop of the (cx, cy, side) window."""
    return hybrik_crops(np.asarray(frame)[None], _windows(np.asarray(box)[None]), size, "cpu")[0]


def _windows(boxes: np.ndarray) -> SquareBoxes:
    """(F, 3) (cx, cy, side) rows → the crop windows inference uses."""
    return SquareBoxes(boxes[:, :2].astype(np.float64), boxes[:, 2].astype(np.float64))


def _decoded_crops(video_path: Path, boxes: np.ndarray, img_size: int) -> list[torch.Tensor]:
    """The inference crop of window ``boxes[i]`` (F, 3) on frame i, for the first F frames of the video."""
    crops: list[torch.Tensor] = []
    images: list[np.ndarray] = []
    rows: list[int] = []

    def flush() -> None:
        crops.extend(hybrik_crops(np.stack(images), _windows(boxes[rows]), img_size, "cpu"))
        images.clear()
        rows.clear()

    frames = iter_frames(video_path)
    try:
        for frame in frames:
            if frame.index >= len(boxes):
                break
            images.append(frame.image)
            rows.append(frame.index)
            if len(images) == DECODE_BATCH:
                flush()
        if images:
            flush()
    finally:
        close_frames(frames)
    return crops


@dataclass
class Clip:
    name: str
    crops: torch.Tensor  # (F, 3, S, S) normalised
    joints3d: torch.Tensor  # (F, 24, 3) root-relative metres, camera axes
    joints2d: torch.Tensor  # (F, 24, 2) in [-1, 1] crop coordinates


def load_clip(folder: Path, img_size: int, max_frames: int | None = None) -> Clip:
    gt_path, video_path = folder / "gt.npz", folder / "video.mp4"
    if not gt_path.is_file() or not video_path.is_file():
        raise MocapError(f"{folder} lacks video.mp4 or gt.npz; point the trainer at the synthetic clips folder.")
    gt = np.load(gt_path, allow_pickle=False)
    j3 = gt["joints3d_cam"][:, :24].astype(np.float32)
    j2 = gt["joints2d"][:, :24].astype(np.float32)
    n = len(j3) if max_frames is None else min(len(j3), max_frames)
    boxes = crop_box_from_joints(j2[:n])
    crops = _decoded_crops(video_path, boxes, img_size)
    n = len(crops)
    if n == 0:
        raise MocapError(f"{video_path} could not be decoded; check the file.")
    k2 = 2 * (j2[:n] - boxes[:n, None, :2]) / boxes[:n, None, 2:3]
    rel3 = j3[:n] - j3[:n, :1]
    return Clip(folder.name, torch.stack(crops), torch.from_numpy(rel3), torch.from_numpy(k2))


class ClipWindows:
    """Random windows of ``seq_len`` consecutive frames from the clips; targets for the centre frame."""

    def __init__(self, clips: list[Clip], seq_len: int, center: int) -> None:
        self.clips = [c for c in clips if len(c.crops) >= seq_len]
        if not self.clips:
            raise MocapError(f"No clip has the {seq_len} frames a training window needs.")
        self.seq_len, self.center = seq_len, center

    def batch(self, batch_size: int, rng: random.Random) -> dict[str, torch.Tensor]:
        imgs, j3, j2 = [], [], []
        for _ in range(batch_size):
            clip = rng.choice(self.clips)
            s = rng.randrange(0, len(clip.crops) - self.seq_len + 1)
            imgs.append(clip.crops[s : s + self.seq_len])
            j3.append(clip.joints3d[s + self.center])
            j2.append(clip.joints2d[s + self.center])
        return {"images": torch.stack(imgs), "joints3d": torch.stack(j3), "joints2d": torch.stack(j2)}


# --------------------------------------------------------------------------------------------- loop


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    losses: list[float] = field(default_factory=list)  # total loss per step
    terms: list[dict[str, float]] = field(default_factory=list)


def _build_model(cfg: UnspatConfig, init_weights: str | Path | None) -> UNSPAT:
    if init_weights is None:
        return UNSPAT(cfg)
    sd = read_hybrik_state_dict(Path(init_weights))
    variant = detect_variant(sd)
    widths = tuple(int(sd[f"deconv_layers.{i}.weight"].shape[1]) for i in (0, 3, 6))
    model = UNSPAT(UnspatConfig(**{**cfg.to_dict(), "variant": variant, "deconv": widths}))
    load_official_into(model, sd)
    return model


def train_unspat(
    data_dir: str | Path,
    out_path: str | Path,
    *,
    steps: int,
    batch_size: int,
    device: str | torch.device = "cpu",
    init_weights: str | Path | None = None,
    log: Callable[[str], None] = print,
    seq_len: int = 16,
    img_size: int = 256,
    deconv: tuple[int, int, int] = (256, 256, 256),
    variant: str = "paper24",
    lr: float = 1e-4,
    grad_clip: float = 5.0,
    max_clips: int | None = None,
    max_frames: int | None = None,
    body: SMPLBody | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train SAM, uncertainty network, transformer and head (backbone frozen) and write a UNSPAT checkpoint.

    ``init_weights``: a HybrIK ResNet-34 file (spec §3 initialisation); without it everything is random
    (only useful for smoke tests). ``img_size`` must be a multiple of 32; the feature grid is img_size/32.
    """
    if img_size % 32:
        raise MocapError(f"Image size {img_size} is not a multiple of 32; use e.g. 256.")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    data_dir = Path(data_dir)
    folders = sorted(p for p in data_dir.iterdir() if (p / "gt.npz").is_file()) if data_dir.is_dir() else []
    if not folders:
        raise MocapError(f"No training clips (folders with video.mp4 and gt.npz) in {data_dir}.")
    folders = folders[:max_clips] if max_clips else folders
    clips = [load_clip(f, img_size, max_frames) for f in folders]
    log(f"loaded {len(clips)} clips, {sum(len(c.crops) for c in clips)} frames at {img_size}px")

    center = seq_len // 2
    cfg = UnspatConfig(
        variant=variant, seq_len=seq_len, center_index=center, feat_hw=img_size // 32, img_size=img_size, deconv=deconv
    )  # type: ignore[arg-type]
    model = _build_model(cfg, init_weights).to(device)
    if body is not None:
        model.attach_body(body.to(device))
    data = ClipWindows(clips, seq_len, center)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    result = TrainResult(checkpoint=Path(out_path), steps=steps)
    model.train()
    for step in range(steps):
        batch = data.batch(batch_size, rng)
        out = model(batch["images"].to(device), generator=gen, with_smpl=body is not None, adaptive_ik=False)
        losses = unspat_losses(out, batch["joints3d"].to(device), batch["joints2d"].to(device))
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        terms = {k: float(v.detach()) for k, v in losses.items()}
        result.losses.append(terms["total"])
        result.terms.append(terms)
        log(f"step {step + 1}/{steps} " + " ".join(f"{k}={v:.4f}" for k, v in terms.items()))
    model.eval()
    result.checkpoint = save_unspat(
        model.cpu(),
        out_path,
        temporal_trained=True,
        extra={
            "training": {
                "data": str(data_dir),
                "steps": steps,
                "batch_size": batch_size,
                "lr": lr,
                "init_weights": str(init_weights) if init_weights else None,
            }
        },
    )
    log(f"wrote {result.checkpoint}")
    return result
