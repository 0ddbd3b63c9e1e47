"""Run the clip-based image mesh networks (MAED, INT) over a whole track as the authors evaluate them.

Official evaluation (both repositories' ``Evaluator``, ``EVAL.SAMPLE_POOL=128``): the track's frame indices
are reflection-padded at the end to a multiple of 128 and cut into non-overlapping 128-frame windows; each
window runs as ``128 // T`` interleaved clips (clip ``i`` = window frames ``i, i+k, i+2k, …`` with
``k = 128 // T``). MAED: T=16 → 8 clips, 8 frames apart. INT: T=64 → 2 clips (even / odd frames).
Predictions are put back in frame order and positions beyond the track (the padding) are dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mocap_cli.nets.smpl_params import MeshNetOutput

CropSource = torch.Tensor | Callable[[int, int], torch.Tensor]
"""Preprocessed crops (F, 3, S, S), or a callable ``(start, stop) -> crops of frames start..stop-1``."""


@dataclass(frozen=True)
class ClipSchedule:
    seqlen: int  # frames per clip (the network's T)
    window: int = 128  # frames per window (EVAL.SAMPLE_POOL)

    def __post_init__(self) -> None:
        if self.window % self.seqlen:
            raise ValueError(f"window {self.window} is not a multiple of the clip length {self.seqlen}")

    @property
    def stride(self) -> int:
        return self.window // self.seqlen


MAED_SCHEDULE = ClipSchedule(seqlen=16)
INT_SCHEDULE = ClipSchedule(seqlen=64)  # both released INT files are evaluated at T=64 (Model-1 resamples 16 -> 64)
SCHEDULES: dict[str, ClipSchedule] = {"maed": MAED_SCHEDULE, "int": INT_SCHEDULE}


@dataclass
class MeshSequence:
    """Per-frame SMPL parameters of one track (float32 numpy, frame order)."""

    rotmats: np.ndarray  # (F, 24, 3, 3) local rotations, joint 0 global; image-aligned frame (y down)
    betas: np.ndarray  # (F, 10)
    cam: np.ndarray  # (F, 3) weak-perspective crop camera [s, tx, ty]


def window_clips(num_frames: int, schedule: ClipSchedule) -> np.ndarray:
    """Source frame index of every clip slot: (windows, clips per window, seqlen).

    Slot (w, i, t) is padded position ``p = w·window + i + t·stride``; positions ≥ ``num_frames`` come from the
    end reflection (numpy ``'reflect'``) and are later dropped, positions below it are frame ``p`` itself.
    """
    if num_frames < 1:
        raise ValueError("a track needs at least one frame")
    windows = -(-num_frames // schedule.window)
    padded = np.pad(np.arange(num_frames), (0, windows * schedule.window - num_frames), mode="reflect")
    positions = window_positions(windows, schedule)
    return padded[positions]


def window_positions(windows: int, schedule: ClipSchedule) -> np.ndarray:
    """Padded position of every clip slot: (windows, clips per window, seqlen)."""
    w = np.arange(windows)[:, None, None] * schedule.window
    i = np.arange(schedule.stride)[None, :, None]
    t = np.arange(schedule.seqlen)[None, None, :] * schedule.stride
    return w + i + t


def _crops_for(source: CropSource, start: int, stop: int) -> torch.Tensor:
    crops = source[start:stop] if isinstance(source, torch.Tensor) else source(start, stop)
    if crops.shape[0] != stop - start:
        raise ValueError(f"crop source returned {crops.shape[0]} frames for range {start}..{stop}")
    return crops


def _batches(windows: int, per_batch: int) -> Iterator[range]:
    for first in range(0, windows, per_batch):
        yield range(first, min(first + per_batch, windows))


@torch.no_grad()
def run_clip_model(
    model: nn.Module,
    crops: CropSource,
    num_frames: int,
    schedule: ClipSchedule,
    *,
    windows_per_batch: int = 1,
    device: torch.device | str = "cpu",
    autocast: bool = False,
) -> MeshSequence:
    """Per-frame rotmats/betas/cam of a track with the official interleaved-window schedule.

    ``model`` maps (B, T, 3, S, S) to a :class:`MeshNetOutput` (MAED, INT). Crops are fetched one batch of
    windows at a time (at most ``windows_per_batch × window`` distinct frames in memory). ``autocast`` runs
    float16 autocast on CUDA (ignored elsewhere); outputs are always float32.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    sources = window_clips(num_frames, schedule)
    positions = window_positions(len(sources), schedule)
    rotmats = np.zeros((num_frames, 24, 3, 3), np.float32)
    betas = np.zeros((num_frames, 10), np.float32)
    cam = np.zeros((num_frames, 3), np.float32)
    use_amp = autocast and device.type == "cuda"
    for batch in _batches(len(sources), windows_per_batch):
        idx = sources[batch.start : batch.stop].reshape(-1, schedule.seqlen)  # (clips, T)
        pos = positions[batch.start : batch.stop].reshape(-1)
        start, stop = int(idx.min()), int(idx.max()) + 1
        frames = _crops_for(crops, start, stop).to(device)
        images = frames[torch.as_tensor(idx - start, device=device)]  # (clips, T, 3, S, S)
        amp = torch.autocast("cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()
        with amp:
            out: MeshNetOutput = model(images)
        keep = pos < num_frames  # rows are batch-major (clip, t), like ``pos``
        target = pos[keep]
        rotmats[target] = out.rotmats.float().cpu().numpy()[keep]
        betas[target] = out.betas.float().cpu().numpy()[keep]
        cam[target] = out.cam.float().cpu().numpy()[keep]
    return MeshSequence(rotmats, betas, cam)
