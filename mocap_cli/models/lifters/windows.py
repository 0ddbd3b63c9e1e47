"""Whole-clip 2D→3D lifting with MixSTE or the Strided Transformer, windowed the way each authors' code does it.

Input: (F, 17, 2) Human3.6M-order keypoints already normalised with ``keypoints.normalize_screen`` (both axes
divided by the image width). Output: (F, 17, 3) camera-frame metres (x right, y down, z forward), root-relative.

* MixSTE (run.py ``evaluate``): non-overlapping T-frame windows, the last one aligned to the clip's end; the
  raw network output is returned (joint 0 near, not exactly, zero — the authors do not zero it).
* Strided Transformer (demo/vis.py): one window centred on every frame, indices clamped to the clip (edge
  replication); the centre-frame (STE) output with joint 0 set to 0, as the authors do.
* Both: test-time flip averaging (mirror x, swap left/right joints, un-mirror the prediction, average).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.loading import load_mixste, load_strided
from mocap_cli.nets.mixste import MixSTE2
from mocap_cli.nets.strided import RefineNet, StridedTransformer

__all__ = [
    "lift_clip",
    "load_mixste",
    "load_strided",
    "flip_keypoints_2d",
    "unflip_pose_3d",
    "mixste_window_starts",
    "strided_window_indices",
    "backproject_center",
    "refine_center_pose",
]

# Subject's own sides in the Human3.6M 17-joint order; the same lists serve 2D input and 3D output.
LEFT = [4, 5, 6, 11, 12, 13]
RIGHT = [1, 2, 3, 14, 15, 16]
_SWAP = list(range(17))
for _l, _r in zip(LEFT, RIGHT):
    _SWAP[_l], _SWAP[_r] = _r, _l


def flip_keypoints_2d(x: torch.Tensor) -> torch.Tensor:
    """Mirror normalised 2D keypoints (..., 17, 2) about the image's vertical centre line and swap sides."""
    out = x[..., _SWAP, :].clone()
    out[..., 0] *= -1
    return out


def unflip_pose_3d(y: torch.Tensor) -> torch.Tensor:
    """Undo the mirroring on a prediction for flipped input (..., 17, 3): negate x, swap sides."""
    out = y[..., _SWAP, :].clone()
    out[..., 0] *= -1
    return out


def mixste_window_starts(length: int, window: int) -> list[int]:
    """Start frames of MixSTE's evaluation windows: k*T for all but the last, which ends at the clip's end.

    A clip shorter than the window gets one window starting at 0 (padded at the end by the caller).
    """
    n = max(math.ceil(length / window), 1)
    return [k * window for k in range(n - 1)] + [max(length - window, 0)]


def strided_window_indices(frames: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """(len(frames), window) source-frame indices of windows centred on ``frames``, clamped to [0, length-1]."""
    pad = (window - 1) // 2
    offsets = torch.arange(-pad, window - pad, device=frames.device)
    return (frames[:, None] + offsets[None, :]).clamp_(0, length - 1)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _batches(count: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def _run_tta(fn: Callable[[torch.Tensor], torch.Tensor], windows: torch.Tensor, flip: bool) -> torch.Tensor:
    """``fn`` on the windows, averaged with the un-mirrored prediction for the mirrored windows when ``flip``."""
    if not flip:
        return fn(windows).float()
    both = fn(torch.cat([windows, flip_keypoints_2d(windows)])).float()
    plain, mirrored = both.chunk(2)
    return (plain + unflip_pose_3d(mirrored)) / 2


def _check_input(keypoints_2d: np.ndarray, joints: int) -> torch.Tensor:
    kp = np.asarray(keypoints_2d)
    if kp.ndim != 3 or kp.shape[1:] != (joints, 2) or kp.shape[0] < 1:
        raise MocapError(
            f"The 2D keypoints have shape {kp.shape}, but the lifter needs (frames, {joints}, 2); convert them to "
            "Human3.6M order first."
        )
    if not np.isfinite(kp).all():
        raise MocapError(
            "The 2D keypoints contain missing (NaN or infinite) values; fill the gaps before lifting "
            "(keypoints.fill_low_confidence)."
        )
    return torch.from_numpy(kp.astype(np.float32, copy=False))


def _lift_mixste(
    model: MixSTE2, kp: torch.Tensor, flip: bool, batch_size: int, device: torch.device, autocast: bool
) -> np.ndarray:
    length, window = kp.shape[0], model.config.num_frame
    if length < window:
        # Clip shorter than one window: repeat the last frame until it fills the window (as run.py does).
        kp = torch.cat([kp, kp[-1:].expand(window - length, -1, -1)])
    starts = mixste_window_starts(length, window)
    windows = torch.stack([kp[s : s + window] for s in starts])
    preds = []
    with torch.inference_mode(), _autocast(device, autocast):
        for part in _batches(len(windows), batch_size):
            preds.append(_run_tta(model, windows[part].to(device), flip).cpu())
    pred = torch.cat(preds)  # (n, T, 17, 3)
    # Stitching: window k < n-1 gives frames [kT, (k+1)T); the last window gives only its frames not covered
    # yet (its tail). For a clip shorter than T we take the FIRST ``length`` frames of the padded window. The
    # authors' render path squeezes away the window axis when there is one window and then slices the wrong
    # axis (every frame becomes the padded window's last pose, or a broadcast error); this is the fix.
    if length < window:
        return pred[0, :length].numpy()
    tail = length - (len(starts) - 1) * window
    return torch.cat([pred[:-1].reshape(-1, *pred.shape[2:]), pred[-1, window - tail :]]).numpy()


def _lift_strided(
    model: StridedTransformer, kp: torch.Tensor, flip: bool, batch_size: int, device: torch.device, autocast: bool
) -> np.ndarray:
    length, window = kp.shape[0], model.config.frames
    kp_dev = kp.to(device)
    out = []

    def center(x: torch.Tensor) -> torch.Tensor:
        return model(x)[0]

    with torch.inference_mode(), _autocast(device, autocast):
        for part in _batches(length, batch_size):
            frames = torch.arange(part.start, part.stop, device=device)
            windows = kp_dev[strided_window_indices(frames, length, window)]  # (b, T, 17, 2), built per batch
            pose = _run_tta(center, windows, flip)[:, 0]
            pose[:, 0] = 0  # the authors overwrite the root joint with 0 after flip averaging
            out.append(pose.cpu())
    return torch.cat(out).numpy()


def lift_clip(
    model: MixSTE2 | StridedTransformer,
    keypoints_2d: np.ndarray,
    *,
    flip: bool = True,
    batch_size: int = 64,
    device: str = "cpu",
    autocast: bool = False,
) -> np.ndarray:
    """Lift a whole clip of normalised (F, 17, 2) keypoints to (F, 17, 3) float32 camera-frame metres.

    ``batch_size`` counts windows per forward pass (doubled internally when ``flip``); ``autocast`` runs
    float16 autocast on CUDA devices and is ignored elsewhere. The model is moved to ``device``, set to eval.
    """
    if batch_size < 1:
        raise MocapError(f"The lifting batch size must be at least 1, got {batch_size}.")
    dev = torch.device(device)
    model = model.to(dev).eval()
    if isinstance(model, MixSTE2):
        kp = _check_input(keypoints_2d, model.config.num_joints)
        return _lift_mixste(model, kp, flip, batch_size, dev, autocast)
    if isinstance(model, StridedTransformer):
        kp = _check_input(keypoints_2d, model.config.n_joints)
        return _lift_strided(model, kp, flip, batch_size, dev, autocast)
    raise TypeError(f"lift_clip needs a MixSTE2 or StridedTransformer, got {type(model).__name__}")


def backproject_center(
    keypoints_center: torch.Tensor, pose: torch.Tensor, cam_intrinsic: torch.Tensor, root_depth: torch.Tensor
) -> torch.Tensor:
    """The refine stage's second input: the 2D centre frame lifted with the predicted depths (authors' test step).

    ``keypoints_center`` (N, 17, 2) normalised, un-mirrored; ``pose`` (N, 17, 3) flip-averaged prediction (root
    not zeroed); ``cam_intrinsic`` (N, 9) ``[fx, fy, cx, cy, ...]`` normalised like the keypoints;
    ``root_depth`` (N,) camera-space root depth in metres. Returns (N, 17, 3) root-relative, joint 0 = 0.
    """
    depth = pose[..., 2] + root_depth[:, None]
    depth = torch.cat([root_depth[:, None], depth[:, 1:]], dim=1)
    f, c = cam_intrinsic[:, None, 0:2], cam_intrinsic[:, None, 2:4]
    xyz = torch.cat([(keypoints_center - c) * depth[..., None] / f, depth[..., None]], dim=-1)
    return xyz - xyz[:, :1]


def refine_center_pose(
    refine: RefineNet,
    pose: torch.Tensor,
    keypoints_center: torch.Tensor,
    cam_intrinsic: torch.Tensor,
    root_depth: torch.Tensor,
) -> torch.Tensor:
    """The authors' Human3.6M refine step on (N, 17, 3) flip-averaged poses → refined poses with joint 0 = 0.

    Needs ground-truth intrinsics and root depth, so it is for evaluation on calibrated data only.
    """
    with torch.no_grad():
        q = backproject_center(keypoints_center, pose, cam_intrinsic, root_depth)
        refined = refine(pose[:, None], q[:, None])[:, 0].clone()
        refined[:, 0] = 0
    return refined
